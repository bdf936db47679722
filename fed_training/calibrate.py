"""Classifier calibration with virtual representations (CCVR, Luo et al., NeurIPS 2021) after federated training.

Under label skew every client's local steps pull the heads toward the classes it holds, and averaging the
updates does not undo it: the backbone's features separate the classes better than the heads that read them
(on the benchmark cohort retraining the heads alone adds 0.08-0.12 mean macro-F1 on future weeks to the
federated model and 0.01 to the centralized one; benchmarks/README.md).
CCVR retrains only the heads, on features drawn from the class-conditional feature distributions of all
clients, with one extra round after the last:

1. **Clients** run the final global model over their labelled windows and upload, per classification task
   and class, the sufficient statistics of the pooled features the heads read (:meth:`M3T.features`,
   ``D = 2 d_model``): the count ``n``, the sum ``(D,)`` and the sum of outer products ``(D, D)``, float64
   (``(1 + D + D^2) * 8`` bytes per class seen; about 130 KB per class at D = 128).
2. **The server** sums them (exactly: sums of sums), takes each class's Gaussian (mean, covariance +
   ``1e-4 I``; classes with fewer than ``min_count`` windows in the whole federation are skipped), draws
   ``samples`` virtual features per class (the same number for every class, so every class counts the same,
   as in macro-F1), and trains each classification head (its LayerNorm and linear layer, in eval mode: no
   dropout) from its current weights for ``steps`` AdamW steps of ``batch_size`` virtual features. Nothing
   else changes; regression heads are left as they are.

Privacy: class means and covariances of features say more about a client's data than one averaged update,
and the client-level DP of the rounds does not cover them, so calibration is refused when ``dp_clip > 0``.
Everything is seeded (sampling and batches), so the result is bit-reproducible on CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from xrdata.errors import ValidationError
from xrdata.fed_training.config import FedConfig, TaskSpec
from xrdata.fed_training.data import ClientData, to_tensors
from xrdata.fed_training.local import get_params, set_params
from xrdata.fed_training.model import M3T

__all__ = ["ClassStats", "apply_calibration", "calibrate_heads", "check_calibration", "class_stats", "merge_stats",
           "stats_bytes"]

#: task -> class index -> (count, sum of features (D,), sum of outer products (D, D)), float64.
ClassStats = dict[str, dict[int, tuple[float, np.ndarray, np.ndarray]]]


def class_stats(model: M3T, params: Mapping[str, np.ndarray], data: ClientData, tasks: Sequence[TaskSpec], *,
                batch_size: int = 256, device: str = "cpu") -> ClassStats:
    """One client's upload: the feature statistics of its labelled windows per classification task and class."""
    set_params(model, params)
    model.to(device).eval()
    cls_tasks = [t for t in tasks if not t.regression and t.name in data.y]
    out: ClassStats = {t.name: {} for t in cls_tasks}
    labelled = (np.flatnonzero(np.any([data.y[t.name] >= 0 for t in cls_tasks], axis=0)) if cls_tasks
                else np.zeros(0, np.int64))
    with torch.no_grad():
        for start in range(0, len(labelled), batch_size):
            batch = data.subset(labelled[start : start + batch_size])
            x, present, _ = to_tensors(batch, device)
            f = model.features(x, present).double().cpu().numpy()
            for t in cls_tasks:
                y = batch.y[t.name]
                for c in np.unique(y[y >= 0]).tolist():
                    fc = f[y == c]
                    n, s1, s2 = out[t.name].get(c, (0.0, 0.0, 0.0))
                    out[t.name][c] = (n + len(fc), s1 + fc.sum(axis=0), s2 + fc.T @ fc)
    return out


def merge_stats(parts: Iterable[ClassStats]) -> ClassStats:
    """The federation's statistics: the clients' sums added (in the order given)."""
    out: ClassStats = {}
    for part in parts:
        for task, classes in part.items():
            dst = out.setdefault(task, {})
            for c, (n, s1, s2) in classes.items():
                n0, a1, a2 = dst.get(c, (0.0, 0.0, 0.0))
                dst[c] = (n0 + n, a1 + s1, a2 + s2)
    return out


def stats_bytes(stats: ClassStats) -> int:
    """Bytes of a client's upload: float64 count, sum and outer sum per class."""
    return sum(8 * (1 + s1.size + s2.size) for classes in stats.values() for _, s1, s2 in classes.values())


def calibrate_heads(model: M3T, params: Mapping[str, np.ndarray], stats: ClassStats, tasks: Sequence[TaskSpec], *,
                    samples: int = 500, steps: int = 300, lr: float = 1e-3, batch_size: int = 256, seed: int = 0,
                    min_count: int = 5, device: str = "cpu") -> dict[str, np.ndarray]:
    """``params`` with every classification head retrained on virtual features (see the module docstring)."""
    if samples < 1 or steps < 0 or batch_size < 1:
        raise ValidationError(f"calibrate_heads: samples >= 1, steps >= 0 and batch_size >= 1 needed, got "
                              f"{samples}, {steps}, {batch_size}")
    set_params(model, params)
    model.to(device).eval()
    for k, task in enumerate(tasks):
        classes = {c: v for c, v in stats.get(task.name, {}).items() if v[0] >= min_count}
        if task.regression or len(classes) < 2 or steps == 0:
            continue
        feats, labels = [], []
        for c in sorted(classes):
            n, s1, s2 = classes[c]
            mean = s1 / n
            cov = s2 / n - np.outer(mean, mean) + 1e-4 * np.eye(len(mean))
            chol = np.linalg.cholesky((cov + cov.T) / 2)
            z = np.random.default_rng(np.random.SeedSequence([seed, k, c])).standard_normal((samples, len(mean)))
            feats.append(mean + z @ chol.T)
            labels.append(np.full(samples, c))
        x = torch.tensor(np.concatenate(feats), dtype=torch.float32, device=device)
        y = torch.tensor(np.concatenate(labels), device=device)
        head = model.heads[task.name]
        head.requires_grad_(True)
        opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch_size,), generator=gen).to(device)
            loss = torch.nn.functional.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {**params, **get_params(model, ("head",))}


def check_calibration(fed: FedConfig) -> None:
    """Refuse configurations calibration does not support (see the module docstring)."""
    if fed.calibrate_heads and fed.dp_clip > 0:
        raise ValidationError("fed.calibrate_heads uploads feature statistics that client-level DP (dp_clip > 0) "
                              "does not cover; turn one of them off")


def apply_calibration(fed: FedConfig, model: M3T, params: Mapping[str, np.ndarray], uploads: Mapping[str, ClassStats],
                      tasks: Sequence[TaskSpec], comm: dict[str, dict[str, int]], model_bytes: int, device: str = "cpu"
                      ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The server's side of the calibration round (both engines): merge the clients' ``uploads`` in sorted
    client order, calibrate the heads, add each client's bytes (model down, statistics up) to ``comm``; returns
    the calibrated parameters and a summary for the run's history."""
    merged = merge_stats(uploads[u] for u in sorted(uploads))
    new = calibrate_heads(model, params, merged, tasks, samples=fed.calibration_samples,
                          steps=fed.calibration_steps, seed=fed.seed, device=device)
    up = {u: stats_bytes(uploads[u]) for u in sorted(uploads)}
    for u, nbytes in up.items():
        comm[u]["up"] += nbytes
        comm[u]["down"] += model_bytes
    return new, {"clients": len(up), "bytes_up": sum(up.values()), "bytes_down": model_bytes * len(up),
                 "windows": {t: {str(c): int(v[0]) for c, v in sorted(cl.items())} for t, cl in merged.items()}}
