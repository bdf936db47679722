"""Evaluation: per-task accuracy / macro-F1 / MAE, missing-modality robustness, and the XR metrics.

Every function takes a model and one or more clients' windows and returns plain floats and dicts (JSON
ready). The XR metric definitions follow the metric table of the XR FedFM literature (inference latency,
storage footprint, on-device training time, communication, energy, submodule activation, personalization
effectiveness and necessity, cross-context generalization, task continuity, model-inferred QoE, privacy
leakage); each function's docstring says how it is measured here.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch

from xrdata.fed_training.config import FedConfig, TaskSpec, group_of, selected
from xrdata.fed_training.data import ClientData, concat, to_tensors
from xrdata.fed_training.model import M3T, task_loss
from xrdata.store import Store, open_store

if TYPE_CHECKING:
    from xrdata.fed_training.train import Cohort

__all__ = [
    "Predictions", "client_log_prior", "expert_activation", "footprint", "inference_latency", "label_counts",
    "macro_f1", "mean_macro_f1", "membership_losses", "missing_steps", "predict", "robustness_curve",
    "task_metrics", "with_prior",
]


#: Windows the missing-modality robustness curve is computed on (a seeded sample when there are more).
ROBUSTNESS_WINDOWS = 3000


@dataclass
class Predictions:
    """Model outputs over a set of windows."""

    outputs: dict[str, np.ndarray]  # task -> (N, C) logits, or (N,) regression values
    expert_counts: np.ndarray | None  # (N, n_layers, n_experts) tokens routed per expert, None without MoE


def _blank(data: ClientData, drop: Sequence[str]) -> ClientData:
    """A view of ``data`` with the modalities in ``drop`` removed (zeros, never present)."""
    if not drop:
        return data
    x = dict(data.x)
    present = dict(data.present)
    for m in drop:
        if m in x:
            x[m] = np.zeros_like(x[m])
            present[m] = np.zeros_like(present[m])
    return ClientData(data.user, x, present, data.y, data.session, data.start_ns, data.split)


@torch.no_grad()
def predict(model: M3T, data: ClientData, *, batch_size: int = 256, drop: Sequence[str] = (),
            device: str = "cpu") -> Predictions:
    """Run ``model`` (eval mode) over every window of ``data``, with the modalities in ``drop`` removed."""
    model.to(device).eval()
    view = _blank(data, drop)
    outs: dict[str, list[np.ndarray]] = {}
    counts: list[np.ndarray] = []
    for start in range(0, len(view), batch_size):
        x, present, _ = to_tensors(view.subset(np.arange(start, min(start + batch_size, len(view)))), device)
        out = model(x, present)
        for t, v in out.outputs.items():
            outs.setdefault(t, []).append(v.float().cpu().numpy())
        if out.expert_counts is not None:
            counts.append(out.expert_counts.cpu().numpy())
    outputs = {t: np.concatenate(v) for t, v in outs.items()}
    return Predictions(outputs, np.concatenate(counts) if counts else None)


def client_log_prior(data: ClientData, tasks: Sequence[TaskSpec]) -> dict[str, np.ndarray]:
    """Per classification task, the ``(C,)`` log class frequencies of ``data``'s labelled windows with one
    pseudo-count per class (Laplace), float32; uniform for a task without labels. Computed by a client on its
    own windows: nothing leaves the device. (Training-time logit adjustment uses
    :func:`~xrdata.fed_training.local.label_log_prior` instead, which leaves a class the client never saw at
    ~0 share so its logit gets no gradient; at inference such a class must stay possible.)"""
    out = {}
    for t in tasks:
        if t.regression:
            continue
        y = data.y[t.name]
        counts = np.bincount(y[y >= 0].astype(np.int64), minlength=len(t.classes))[: len(t.classes)]
        out[t.name] = np.log((counts + 1.0) / (counts.sum() + len(t.classes))).astype(np.float32)
    return out


def with_prior(pred: Predictions, log_prior: Mapping[str, np.ndarray]) -> Predictions:
    """``pred`` with each task's logits shifted by a client's log label prior (:func:`client_log_prior`).

    The federated heads are calibrated on class-balanced virtual features (``fed.calibrate_heads``), so their
    softmax estimates p(y | x) under equal class priors; adding log p_client(y) gives the posterior under the
    client's own label distribution (the prior correction of Saerens et al. 2002, i.e. post-hoc logit
    adjustment). Under label skew that persists over a user's weeks this is what a pooled model partly learns
    by recognising the user, at no training cost and without sharing the labels.
    """
    outputs = {t: v + log_prior[t] if t in log_prior else v for t, v in pred.outputs.items()}
    return Predictions(outputs, pred.expert_counts)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-averaged F1 over the classes that occur in ``y_true`` or ``y_pred`` (sklearn's convention for
    labels=None). Written here because scikit-learn is not a dependency; tests check it by hand."""
    classes = np.union1d(np.unique(y_true), np.unique(y_pred))
    classes = classes[(classes >= 0) & (classes < n_classes)]
    if classes.size == 0:
        return float("nan")
    f1 = []
    for c in classes:
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        fp = float(np.sum((y_pred == c) & (y_true != c)))
        fn = float(np.sum((y_pred != c) & (y_true == c)))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


def task_metrics(pred: Predictions, data: ClientData, tasks: Sequence[TaskSpec]) -> dict[str, dict[str, float]]:
    """Per task over the labelled windows: ``n``, ``accuracy`` and ``macro_f1`` (classification) or ``mae``
    (regression); tasks without labelled windows get ``n = 0`` only."""
    out: dict[str, dict[str, float]] = {}
    for t in tasks:
        y = data.y[t.name]
        if t.regression:
            keep = ~np.isnan(y)
            if not keep.any():
                out[t.name] = {"n": 0}
                continue
            err = np.abs(pred.outputs[t.name][keep] - y[keep])
            out[t.name] = {"n": int(keep.sum()), "mae": float(err.mean())}
        else:
            keep = y >= 0
            if not keep.any():
                out[t.name] = {"n": 0}
                continue
            guess = pred.outputs[t.name][keep].argmax(axis=1)
            out[t.name] = {
                "n": int(keep.sum()), "accuracy": float(np.mean(guess == y[keep])),
                "macro_f1": macro_f1(y[keep], guess, len(t.classes)),
            }
    return out


def label_counts(parts: Mapping[str, ClientData], tasks: Sequence[TaskSpec]) -> dict[str, dict[str, int]]:
    """Labelled windows per class of each classification task over the clients ``parts``:
    ``{task: {class: n}}`` with every class listed (0 when absent)."""
    out: dict[str, dict[str, int]] = {}
    for t in tasks:
        if t.regression:
            continue
        counts = np.zeros(len(t.classes), np.int64)
        for d in parts.values():
            y = d.y[t.name]
            counts += np.bincount(y[y >= 0], minlength=len(t.classes))[: len(t.classes)]
        out[t.name] = {c: int(n) for c, n in zip(t.classes, counts, strict=True)}
    return out


def missing_steps(parts: Mapping[str, ClientData], devices: Mapping[str, str],
                  device_modalities: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Per modality, the share of window steps without samples over the clients whose device has that modality
    (NaN when none has it): what bursty and session-level loss leave the model, device-level absence apart."""
    lost: dict[str, list[int]] = {}
    for user, d in parts.items():
        for m in device_modalities.get(devices.get(user, ""), ()):
            if m in d.present:
                acc = lost.setdefault(m, [0, 0])
                acc[0] += int(d.present[m].size - np.count_nonzero(d.present[m]))
                acc[1] += int(d.present[m].size)
    return {m: a / n if n else float("nan") for m, (a, n) in sorted(lost.items())}


def mean_macro_f1(metrics: Mapping[str, Mapping[str, float]]) -> float:
    """The mean macro-F1 over the classification tasks that have labelled windows (NaN if none)."""
    vals = [m["macro_f1"] for m in metrics.values() if m.get("n", 0) and "macro_f1" in m]
    return float(np.mean(vals)) if vals else float("nan")


def robustness_curve(model: M3T, data: ClientData, tasks: Sequence[TaskSpec], modalities: Sequence[str], *,
                     random_draws: int = 3, seed: int = 0, device: str = "cpu") -> dict[str, object]:
    """Mean macro-F1 with modalities removed at test time.

    ``single``: each modality removed alone; ``curve``: for k = 0..M-1 removed modalities, the mean over
    ``random_draws`` random subsets of size k (all subsets when there are fewer) among the modalities the
    data actually contain.
    """
    have = [m for m in modalities if m in data.present and data.present[m].any()]
    full = mean_macro_f1(task_metrics(predict(model, data, device=device), data, tasks))
    single = {m: mean_macro_f1(task_metrics(predict(model, data, drop=[m], device=device), data, tasks))
              for m in have}
    rng = np.random.default_rng(seed)
    curve = [{"removed": 0, "macro_f1": full, "subsets": [[]]}]
    for k in range(1, len(have)):
        combos = list(itertools.combinations(have, k))
        picks = combos if len(combos) <= random_draws else [combos[i] for i in
                                                               rng.choice(len(combos), random_draws, replace=False)]
        scores = [mean_macro_f1(task_metrics(predict(model, data, drop=list(c), device=device), data, tasks))
                  for c in picks]
        curve.append({"removed": k, "macro_f1": float(np.nanmean(scores)), "subsets": [list(c) for c in picks]})
    return {"full": full, "single": single, "curve": curve}


def inference_latency(model: M3T, example: ClientData, *, device: str = "cpu", repeats: int = 30,
                      batch_size: int = 1) -> dict[str, Any]:
    """Wall time per window (ms) of one forward pass at ``batch_size`` windows: median and p95 over ``repeats``
    runs after 3 warm-up runs, on ``device`` (the host CPU stands for the device class; scale by the
    profile speed for a headset estimate)."""
    model.to(device).eval()
    batch = example.subset(np.arange(min(batch_size, len(example))))
    x, present, _ = to_tensors(batch, device)
    times = []
    with torch.no_grad():
        for i in range(repeats + 3):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x, present)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1e3 / len(batch))
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "batch_size": len(batch), "device": device}


def footprint(model: M3T, device_modalities: Mapping[str, Sequence[str]],
              peft_only: bool = False) -> dict[str, dict[str, float]]:
    """On-device model size (MB) per device: the encoders of the modalities the device has, the backbone,
    experts, heads and PEFT modules, as float32 and as int8 (1 byte per weight + a float32 scale per tensor).
    ``peft_only`` adds the size of the personalised part alone (PEFT + heads), which is what a device stores
    per user beside a shared base model."""
    sizes: dict[str, tuple[int, int]] = {}
    for n, p in model.named_parameters():
        g = group_of(n)
        a, b = sizes.get(g, (0, 0))
        sizes[g] = (a + p.numel(), b + 1)
    out: dict[str, dict[str, float]] = {}
    for device, mods in device_modalities.items():
        keep = [g for g in sizes if not g.startswith("encoder/") or g[8:] in mods]
        numel = sum(sizes[g][0] for g in keep)
        tensors = sum(sizes[g][1] for g in keep)
        entry = {"params": float(numel), "fp32_mb": numel * 4 / 1e6, "int8_mb": (numel + 4 * tensors) / 1e6}
        if peft_only:
            pers = sum(sizes[g][0] for g in keep if selected(g, ("peft", "head")))
            entry["personal_fp32_mb"] = pers * 4 / 1e6
        out[device] = entry
    return out


def expert_activation(pred: Predictions, data: ClientData, tasks: Sequence[TaskSpec],
                      threshold: float = 0.05) -> dict[str, dict[str, object]]:
    """Per task (over its labelled windows): the share of routed tokens each expert received, summed over
    layers, and how many experts get at least ``threshold`` of them ("active experts")."""
    if pred.expert_counts is None:
        return {}
    out: dict[str, dict[str, object]] = {}
    for t in tasks:
        y = data.y[t.name]
        keep = ~np.isnan(y) if t.regression else y >= 0
        if not keep.any():
            continue
        load = pred.expert_counts[keep].sum(axis=(0, 1)).astype(float)
        share = load / max(load.sum(), 1.0)
        out[t.name] = {"share": [round(float(s), 4) for s in share], "active": int((share >= threshold).sum())}
    return out


@torch.no_grad()
def membership_losses(model: M3T, data: ClientData, tasks: Sequence[TaskSpec], *, max_windows: int = 512,
                      seed: int = 0, device: str = "cpu") -> np.ndarray:
    """Per-window task loss (for the loss-threshold membership-inference audit), on up to ``max_windows``
    labelled windows drawn with ``seed``."""
    model.to(device).eval()
    labelled = np.zeros(len(data), bool)
    for t in tasks:
        y = data.y[t.name]
        labelled |= ~np.isnan(y) if t.regression else y >= 0
    idx = np.flatnonzero(labelled)
    if idx.size > max_windows:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_windows, replace=False))
    losses = []
    for i in idx:
        x, present, y = to_tensors(data.subset(np.array([i])), device)
        loss, _ = task_loss(model(x, present), y, tasks)
        losses.append(float(loss))
    return np.asarray(losses)



def concat_predictions(preds: Sequence[Predictions]) -> Predictions:
    """Predictions of several clients, in order."""
    tasks = preds[0].outputs if preds else {}
    counts = [p.expert_counts for p in preds if p.expert_counts is not None]
    return Predictions({t: np.concatenate([p.outputs[t] for p in preds]) for t in tasks},
                       np.concatenate(counts) if counts and len(counts) == len(preds) else None)


def _personalize(model: M3T, users: Mapping[str, tuple[ClientData, ClientData]], tasks: Sequence[TaskSpec],
                 fed: FedConfig, groups: tuple[str, ...], *, seed: int, device: str) -> dict[str, Predictions]:
    """Per user, the test windows predicted by ``model`` with its ``groups`` fine-tuned for
    ``fed.personalize_steps`` steps on the user's own windows (``users``: user -> (own, test)); every user
    starts from the model as given, which is restored after. Users without own or test windows are left out."""
    from xrdata.fed_training.local import fit, get_params, set_params

    base = get_params(model)
    out = {}
    for i, (u, (own, test)) in enumerate(sorted(users.items())):
        if len(own) and len(test):
            fit(model, base, own, tasks, steps=fed.personalize_steps, batch_size=fed.batch_size, lr=fed.lr,
                seed=seed + i, weight_decay=fed.weight_decay, groups=groups, device=device)
            out[u] = predict(model, test, device=device)
    set_params(model, base)
    return out


def _user_mean(per_user: Mapping[str, Mapping[str, Mapping[str, float]]]) -> float:
    """Mean over users of each user's mean macro-F1 (users with no labelled window left out)."""
    vals = [mean_macro_f1(m) for m in per_user.values()]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def evaluate_run(run: str | os.PathLike[str], store: Store | str | os.PathLike[str], *,
                 cohort: Cohort | None = None, progress: bool = False, workers: int = 1,
                 necessity_threshold: float = 0.8) -> dict[str, Any]:
    """Evaluate every model of a run folder on ``store`` and write ``results.json``, ``results.md`` and
    ``report.html`` there; returns the results.

    Sections: per-method task metrics on future windows of training users and on unseen users (pooled
    windows and the mean over users), the local-only baseline, personalization (effectiveness: mean gain
    of fine-tuning the PEFT modules and heads on the user's own training data; necessity rate: share of
    (user, task) pairs whose global-model accuracy already reaches ``necessity_threshold``), task continuity
    (drop on a user's earlier sessions after adapting to the later ones), the missing-modality robustness
    curve (federated and zero-fill), and the XR metrics (latency, footprint, on-device training time,
    communication, energy, submodule activation, cross-context generalization, QoE, privacy).
    """
    from xrdata.fed_training.privacy import membership_inference_auc
    from xrdata.fed_training.profiles import PROFILES, profile_for, radio_energy_j
    from xrdata.fed_training.report import write_report
    from xrdata.fed_training.train import load_cohort, load_model
    from xrdata.progress import progress_bar

    folder = Path(run)
    st = store if isinstance(store, Store) else open_store(store, "r")
    fed_model, cfg, tasks = load_model(folder, "federated")
    cohort = cohort or load_cohort(st, cfg, workers=workers, progress=progress)
    device = cfg.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    future = concat(list(cohort.future.values())) if cohort.future else None
    unseen = concat(list(cohort.unseen.values())) if cohort.unseen else None
    results: dict[str, Any] = {"run": str(folder), "store": str(st.url), "tasks": [t.name for t in tasks],
                               "windows": cohort.windows(), "users": {"train": sorted(cohort.train),
                                                                       "held_out": sorted(cohort.unseen)}}
    # Labelled windows per class and split: a class that a test split holds and no training window has cannot
    # be predicted by the global models (tiny cohorts with Dirichlet label skew), which the report flags.
    results["labels"] = {split: label_counts(getattr(cohort, split), tasks)
                         for split in ("train", "future", "adapt", "unseen")}
    results["missing_steps"] = {split: missing_steps(getattr(cohort, split), cohort.devices, cohort.device_modalities)
                                for split in ("train", "future", "adapt", "unseen")}
    bar = progress_bar(total=5, desc="evaluate", unit="part", enabled=progress)
    bar.set_postfix_str("scores")
    methods: dict[str, Any] = {}
    models = {"federated": fed_model}
    for name in ("centralized", "zero_fill"):
        if (folder / f"{name}.safetensors").exists():
            models[name] = load_model(folder, name)[0]
    # Each split's users with the windows a user's own label prior comes from: a training user's training
    # windows for its future weeks, a held-out user's adaptation windows (what personalization tunes on).
    splits = (("future", future, cohort.future, cohort.train), ("unseen", unseen, cohort.unseen, cohort.adapt))
    for name, model in models.items():
        entry: dict[str, Any] = {}
        prior_entry: dict[str, Any] = {}
        for split, pooled, parts, own in splits:
            if pooled is None or len(pooled) == 0:
                continue
            preds = {u: predict(model, d, device=device) for u, d in parts.items() if len(d)}
            windows = concat([parts[u] for u in preds])  # the pooled windows, user by user
            variants = [(entry, preds)]
            if name == "federated":
                variants.append((prior_entry, {u: with_prior(p, client_log_prior(own[u], tasks) if u in own else {})
                                               for u, p in preds.items()}))
            for target, by_user in variants:
                target[split] = task_metrics(concat_predictions(list(by_user.values())), windows, tasks)
                target[f"{split}_mean_macro_f1"] = mean_macro_f1(target[split])
                target[f"{split}_user_mean_macro_f1"] = _user_mean(
                    {u: task_metrics(p, parts[u], tasks) for u, p in by_user.items()})
        methods[name] = entry
        if prior_entry:
            methods["federated_prior"] = prior_entry
    local_path = folder / "local.json"
    if local_path.exists():
        local = json.loads(local_path.read_text())
        methods["local"] = {}
        for split in ("future", "unseen"):
            if local.get(split, {}).get("pooled"):
                methods["local"][split] = local[split]["pooled"]
                methods["local"][f"{split}_mean_macro_f1"] = mean_macro_f1(local[split]["pooled"])
                methods["local"][f"{split}_user_mean_macro_f1"] = _user_mean(local[split]["users"])
    results["methods"] = methods

    bar.update()
    bar.set_postfix_str("personalization")

    # --- personalization (federated and centralized models), necessity, continuity (federated model)
    fed = cfg.fed
    groups: tuple[str, ...] = ("peft", "head") if any(
        group_of(n) == "peft" for n, _ in fed_model.named_parameters()) else ("head",)
    # (own windows, test windows) per user: a training user tunes on its training weeks and is tested on its
    # future ones, a held-out user tunes on its adaptation sessions (what local-only trains on)
    own_test = {"future": {u: (cohort.train[u], d) for u, d in cohort.future.items() if u in cohort.train},
                "unseen": {u: (cohort.adapt[u], d) for u, d in cohort.unseen.items() if u in cohort.adapt}}
    fed_future: dict[str, Predictions] = {}  # the federated model's, reused for effectiveness below
    for name in ("federated", "centralized"):
        if name not in models:
            continue
        entry = {}
        for k, (split, users) in enumerate(own_test.items()):
            preds = _personalize(models[name], users, tasks, fed, groups, seed=fed.seed + 100 * k, device=device)
            if (name, split) == ("federated", "future"):
                fed_future = preds
            if preds:
                scores = {u: task_metrics(p, users[u][1], tasks) for u, p in preds.items()}
                entry[split] = task_metrics(concat_predictions(list(preds.values())),
                                            concat([users[u][1] for u in preds]), tasks)
                entry[f"{split}_mean_macro_f1"] = mean_macro_f1(entry[split])
                entry[f"{split}_user_mean_macro_f1"] = _user_mean(scores)
        methods[f"{name}_personalized"] = entry
    if "centralized" in methods and methods["centralized"].get("future"):
        cen = methods["centralized"]["future"]
        for name in ("federated", "federated_prior", "federated_personalized"):
            if methods.get(name, {}).get("future"):
                results[f"{name}_vs_centralized"] = {
                    t: methods[name]["future"][t].get("macro_f1", float("nan")) / cen[t]["macro_f1"]
                    for t in cen if cen[t].get("macro_f1")}
    # continuity: the same tuning on the future weeks, then the user's earlier (training) weeks scored
    later = _personalize(fed_model, {u: (test, own) for u, (own, test) in own_test["future"].items()}, tasks, fed,
                         groups, seed=fed.seed, device=device)
    gains, continuity, above, pairs = [], [], 0, 0
    per_user: dict[str, Any] = {}
    for u, (own, test) in sorted(own_test["future"].items()):
        if u not in fed_future:
            continue
        g = task_metrics(predict(fed_model, test, device=device), test, tasks)
        g_old = task_metrics(predict(fed_model, own, device=device), own, tasks)
        for m in g.values():
            if m.get("n") and "accuracy" in m:
                pairs += 1
                above += m["accuracy"] >= necessity_threshold
        p_old = task_metrics(later[u], own, tasks)
        p = mean_macro_f1(task_metrics(fed_future[u], test, tasks))
        gain = p - mean_macro_f1(g)
        drop = mean_macro_f1(g_old) - mean_macro_f1(p_old)
        per_user[u] = {"global": mean_macro_f1(g), "personalized": p, "continuity_drop": drop}
        if not np.isnan(gain):
            gains.append(gain)
        if not np.isnan(drop):
            continuity.append(drop)
    results["personalization"] = {
        "groups": list(groups), "steps": fed.personalize_steps,
        "effectiveness": float(np.mean(gains)) if gains else None,
        "necessity_rate": above / pairs if pairs else None, "necessity_threshold": necessity_threshold,
        "continuity_drop": float(np.mean(continuity)) if continuity else None, "users": per_user,
    }

    bar.update()
    bar.set_postfix_str("robustness")

    # --- robustness to missing modalities (federated and zero-fill, on future + unseen windows; at most
    # ROBUSTNESS_WINDOWS of them, drawn with the seed: the curve takes about 26 passes over its windows)
    parts = [d for d in (future, unseen) if d is not None and len(d)]
    test_all = concat(parts) if parts else None
    if test_all is not None:
        probe = test_all
        if len(probe) > ROBUSTNESS_WINDOWS:
            pick = np.random.default_rng(fed.seed).choice(len(probe), ROBUSTNESS_WINDOWS, replace=False)
            probe = probe.subset(np.sort(pick))
        results["robustness"] = {name: robustness_curve(models[name], probe, tasks, cfg.data.modalities,
                                                        seed=fed.seed, device=device)
                                 for name in ("federated", "zero_fill") if name in models}
        results["robustness_windows"] = len(probe)

    bar.update()
    bar.set_postfix_str("XR metrics")

    # --- XR metrics
    xr: dict[str, Any] = {}
    example = test_all if test_all is not None else next(iter(cohort.train.values()))
    lat = {"cpu_batch1": inference_latency(fed_model, example, device="cpu", batch_size=1),
           "cpu_batch32": inference_latency(fed_model, example, device="cpu", batch_size=32)}
    if torch.cuda.is_available():
        lat["cuda_batch1"] = inference_latency(fed_model, example, device="cuda", batch_size=1)
        lat["cuda_name"] = torch.cuda.get_device_name(0)  # type: ignore[assignment]
        fed_model.to("cpu")
    xr["inference_latency"] = lat
    xr["footprint_by_device"] = footprint(fed_model, cohort.device_modalities, peft_only=True)
    history = json.loads((folder / "history.json").read_text())
    rounds = history["rounds"]
    per_step = [t / s for r in rounds for u, t in r["local_time_s"].items()
                if (s := r["local_steps"].get(u))]
    host_step_s = float(np.median(per_step)) if per_step else float("nan")
    ups = [r["bytes_up"] / max(1, len(r["participants"])) for r in rounds if r["participants"]]
    downs = [r["bytes_down"] / max(1, len(r["participants"]) + len(r["dropped"])) for r in rounds
             if r["participants"] or r["dropped"]]
    up_round, down_round = (float(np.mean(ups)) if ups else 0.0), (float(np.mean(downs)) if downs else 0.0)
    xr["communication"] = {**history["summary"], "bytes_up_per_client_round": up_round,
                           "bytes_down_per_client_round": down_round,
                           "bytes_up_by_group": _sum_groups(rounds)}
    xr["on_device"] = {}
    for name, prof in PROFILES.items():
        train_s = host_step_s * fed.local_steps / prof.speed
        infer_s = lat["cpu_batch1"]["median_ms"] / 1e3 / prof.speed
        xr["on_device"][name] = {
            "training_s_per_round": train_s,
            "energy_j_per_round": train_s * prof.power_w + radio_energy_j(up_round, down_round, prof),
            "radio_energy_j_per_round": radio_energy_j(up_round, down_round, prof),
            "inference_ms": infer_s * 1e3, "inference_mj_per_window": infer_s * prof.power_w * 1e3,
            "battery_pct_per_round": 100 * (train_s * prof.power_w) / (prof.battery_wh * 3600),
        }
    xr["host_step_s"] = host_step_s
    xr["device_classes"] = {u: profile_for(d).name for u, d in cohort.devices.items()}
    if future is not None and len(future):
        xr["submodule_activation"] = {
            "experts": expert_activation(predict(fed_model, future, device=device), future, tasks),
            "encoders_used_per_window": float(np.mean(np.sum([p.any(axis=1) for p in future.present.values()],
                                                             axis=0))),
        }
    fm = methods["federated"]
    xr["cross_context"] = {
        "future_mean_macro_f1": fm.get("future_mean_macro_f1"), "unseen_mean_macro_f1": fm.get("unseen_mean_macro_f1"),
        "unseen_by_device_class": {
            cls: mean_macro_f1(task_metrics(predict(fed_model, d, device=device), d, tasks))
            for cls, d in _by_class(cohort.unseen, xr["device_classes"]).items()},
    }
    xr["qoe"] = _qoe(fed_model, st, cohort, tasks, device)
    if test_all is not None and cohort.train:
        members = concat(list(cohort.train.values()))
        nonmembers = unseen if unseen is not None and len(unseen) else future
        if nonmembers is not None and len(nonmembers):
            xr["privacy"] = {
                "membership_inference_auc": membership_inference_auc(
                    membership_losses(fed_model, members, tasks, seed=fed.seed, device=device),
                    membership_losses(fed_model, nonmembers, tasks, seed=fed.seed, device=device)),
                "dp_epsilon": history["summary"].get("epsilon"), "dp_delta": fed.dp_delta if fed.dp_clip else None,
            }
    results["xr_metrics"] = xr
    results["history"] = {"summary": history["summary"],
                          "val_macro_f1": [(r["round"], r["metrics"].get("val_macro_f1")) for r in rounds
                                           if r["metrics"]],
                          "loss": [(r["round"], r["loss"]) for r in rounds]}
    zero_hist = folder / "history_zero_fill.json"
    if zero_hist.exists():
        zr = json.loads(zero_hist.read_text())["rounds"]
        results["history"]["zero_fill_val_macro_f1"] = [(r["round"], r["metrics"].get("val_macro_f1"))
                                                         for r in zr if r["metrics"]]
    timing = folder / "timing.json"
    results["timing"] = json.loads(timing.read_text()) if timing.exists() else {}
    (folder / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    bar.update()
    bar.set_postfix_str("report")
    write_report(results, folder)
    bar.update()
    bar.close()
    return results


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _sum_groups(rounds: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rounds:
        for g, b in r["bytes_up_by_group"].items():
            out[g] = out.get(g, 0) + int(b)
    return out


def _by_class(clients: Mapping[str, ClientData], classes: Mapping[str, str]) -> dict[str, ClientData]:
    groups: dict[str, list[ClientData]] = {}
    for u, d in clients.items():
        if len(d):
            groups.setdefault(classes.get(u, "unknown"), []).append(d)
    return {k: concat(v) for k, v in sorted(groups.items())}


def _qoe(model: M3T, st: Store, cohort: Cohort, tasks: Sequence[TaskSpec], device: str) -> dict[str, Any]:
    """Model-inferred QoE: the ``qoe`` head's error against self-reports, and how its per-session mean
    follows the system latency and the implicit signals (synthetic stores' ground truth ``qoe`` table)."""
    if not any(t.name == "qoe" for t in tasks):
        return {}
    out: dict[str, Any] = {}
    rows = []
    for split, clients in (("future", cohort.future), ("unseen", cohort.unseen)):
        for u, d in clients.items():
            if not len(d):
                continue
            pred = predict(model, d, device=device).outputs["qoe"]
            for s in np.unique(d.session):
                sel = d.session == s
                rows.append({"user": u, "session": str(s), "split": split, "qoe_pred": float(pred[sel].mean()),
                             "likert": float(np.nanmean(d.y["qoe"][sel])) if (~np.isnan(d.y["qoe"][sel])).any()
                             else float("nan")})
    if not rows:
        return {}
    df = pl.DataFrame(rows)
    rep = df.filter(pl.col("likert").is_not_nan())
    out["sessions"] = df.height
    out["self_reported_sessions"] = rep.height
    if rep.height:
        out["mae_vs_likert"] = float((rep["qoe_pred"] - rep["likert"]).abs().mean())  # type: ignore[arg-type]
        out["spearman_vs_likert"] = _spearman(rep["qoe_pred"].to_numpy(), rep["likert"].to_numpy())
    from xrdata.ground_truth import read_table

    truth = read_table(st, "qoe", users=sorted(set(df["user"].to_list())))  # None: not a synthetic store
    if truth is not None and truth.height and "latency_ms" in truth.columns:
        j = df.join(truth.select("user", "session", "latency_ms", "repeat_rate", "abort_rate", "hesitation_rate"),
                    on=["user", "session"])
        if j.height >= 3:
            out["spearman_vs_latency"] = _spearman(j["qoe_pred"].to_numpy(), j["latency_ms"].to_numpy())
            implicit = (j["repeat_rate"] + j["abort_rate"] + j["hesitation_rate"]).to_numpy()
            out["spearman_vs_implicit_signals"] = _spearman(j["qoe_pred"].to_numpy(), implicit)
    return out
