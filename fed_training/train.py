"""``xrdata train`` / ``xrdata evaluate``: federated training on a store's users, baselines, and the evaluation.

Protocol (the same for every method, in one run):

- Clients are the store's users. Training users train on their ``train`` windows; their ``future`` windows
  (the last weeks) test generalization over time. Held-out users (``test_users``) never train: the first
  half of their sessions (by start time: the catalog's UTC anchor, then the session id) is their
  *adaptation* data (local-only training and personalization use it), the rest their *evaluation* data
  ("unseen users").
- ``federated``: :func:`~xrdata.fed_training.engine.run_federated` over the training users.
- ``centralized`` (upper bound): the same model trained on the pooled training windows for as many windows
  as the federated run processed.
- ``local``: one model per user trained on that user's own data only (training users: train windows,
  evaluated on their future windows; held-out users: adaptation data, evaluated on their evaluation data).
- ``zero_fill``: the federated run again with missing steps zero-filled instead of the learned token.

A run folder holds ``config.json``, ``tasks.json``, one ``<method>.safetensors`` per global model,
``history.json`` (rounds), ``local.json`` (local-only metrics), and after evaluation ``results.json``,
``results.md`` and ``report.html``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xrdata.errors import NotFoundError, ValidationError
from xrdata.fed_training.config import MODALITIES, ModalitySpec, TaskSpec, TrainConfig
from xrdata.fed_training.data import ClientData, concat, discover_tasks, load_clients, user_devices
from xrdata.fed_training.engine import FedResult, run_federated
from xrdata.fed_training.local import fit, get_params, set_params
from xrdata.fed_training.model import M3T
from xrdata.store import Store, open_store

__all__ = ["Cohort", "build_model", "load_cohort", "load_model", "train"]


@dataclass
class Cohort:
    """A store's users as clients, split by the protocol of the module docstring."""

    tasks: list[TaskSpec]
    modalities: list[ModalitySpec]
    train: dict[str, ClientData]  # training user -> train windows
    future: dict[str, ClientData]  # training user -> future windows
    adapt: dict[str, ClientData]  # held-out user -> adaptation windows (first half of sessions)
    unseen: dict[str, ClientData]  # held-out user -> evaluation windows
    devices: dict[str, str]  # user -> device preset name
    device_modalities: dict[str, list[str]]  # device -> modalities its users have
    load_s: float  # wall time of loading the windows

    def windows(self) -> dict[str, int]:
        return {k: sum(len(c) for c in getattr(self, k).values()) for k in ("train", "future", "adapt", "unseen")}


def _split(data: ClientData, mask: np.ndarray) -> ClientData:
    return data.subset(np.flatnonzero(mask))


def load_cohort(store: Store | str | os.PathLike[str], cfg: TrainConfig, *, workers: int = 1,
                progress: bool = False, users: Sequence[str] | None = None) -> Cohort:
    """Load every user's windows (each from its own partition) and split them by the protocol."""
    st = store if isinstance(store, Store) else open_store(store, "r")
    all_users = list(users) if users is not None else st.users()
    if not all_users:
        raise NotFoundError(f"store {st.url} has no users to train on")
    t0 = time.perf_counter()
    tasks = discover_tasks(st, cfg.data)
    if not tasks:
        raise ValidationError(f"store {st.url} has no task/<name> label events; nothing to train")
    modalities = [MODALITIES[m] for m in cfg.data.modalities]
    loaded = load_clients(st, all_users, cfg.data, tasks, workers=workers, progress=progress)
    cat = st.catalog(all_users).select("user", "session", "device", "stream", "utc_anchor").collect()
    anchors = {(r["user"], r["session"]): r["utc_anchor"] for r in cat.iter_rows(named=True)}
    devices = user_devices(cat)
    device_modalities: dict[str, set[str]] = {}
    for r in cat.iter_rows(named=True):
        device_modalities.setdefault(r["device"], set()).add(r["stream"])
    cohort = Cohort(tasks, modalities, {}, {}, {}, {}, devices,
                    {d: sorted(m & set(cfg.data.modalities)) for d, m in device_modalities.items()}, 0.0)
    for u, data in loaded.items():
        if len(data) == 0:
            continue
        if (data.split == "test_users").all():
            sessions = sorted(set(data.session.tolist()), key=lambda s: (anchors.get((u, s)) or "", s))
            first = set(sessions[: max(1, len(sessions) // 2)]) if len(sessions) > 1 else set()
            in_first = np.isin(data.session, list(first))
            cohort.adapt[u] = _split(data, in_first)
            cohort.unseen[u] = _split(data, ~in_first)
        else:
            train = _split(data, data.split == "train")
            if len(train):
                cohort.train[u] = train
            cohort.future[u] = _split(data, data.split == "future")
    if not cohort.train:
        raise ValidationError(f"store {st.url}: no user has training windows (every session is future or held out)")
    cohort.load_s = time.perf_counter() - t0
    return cohort


def build_model(cfg: TrainConfig, cohort_or_specs: Cohort | tuple[Sequence[ModalitySpec], Sequence[TaskSpec]],
                *, missing: str | None = None) -> M3T:
    """A freshly initialised model (``torch.manual_seed(cfg.fed.seed)``, so every method starts equal)."""
    mods, tasks = ((cohort_or_specs.modalities, cohort_or_specs.tasks) if isinstance(cohort_or_specs, Cohort)
                   else cohort_or_specs)
    mcfg = cfg.model if missing is None else dataclasses.replace(cfg.model, missing=missing)
    torch.manual_seed(cfg.fed.seed)
    return M3T(mcfg, list(mods), list(tasks))


def _save_model(path: Path, model: M3T, params: Mapping[str, np.ndarray], meta: Mapping[str, str]) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_suffix(".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in params.items()}, str(tmp), metadata=dict(meta))
    tmp.replace(path)


def load_model(run: str | os.PathLike[str], method: str = "federated") -> tuple[M3T, TrainConfig, list[TaskSpec]]:
    """The global model ``method`` of a run folder, with its config and tasks."""
    from safetensors.numpy import load_file

    from xrdata.fed_training.config import config_from_preset

    folder = Path(run)
    path = folder / f"{method}.safetensors"
    if not path.exists():
        known = sorted(p.stem for p in folder.glob("*.safetensors"))
        raise NotFoundError(f"no model {method!r} in run folder {folder} (has: {', '.join(known) or 'none'})")
    raw = json.loads((folder / "config.json").read_text())
    cfg = config_from_preset("quickstart", raw)
    tasks = [TaskSpec(t["name"], tuple(t["classes"])) for t in json.loads((folder / "tasks.json").read_text())]
    missing = "zero" if method == "zero_fill" else None
    model = build_model(cfg, ([MODALITIES[m] for m in cfg.data.modalities], tasks), missing=missing)
    set_params(model, load_file(str(path)))
    return model, cfg, tasks


def _total_windows(result: FedResult, batch_size: int) -> int:
    return sum(sum(r.local_steps.values()) for r in result.history) * batch_size


def _train_single(model: M3T, data: ClientData, tasks: Sequence[TaskSpec], cfg: TrainConfig, steps: int,
                  seed: int, on_step: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
    """Plain training of ``model`` from its current parameters on ``data``; returns the parameters."""
    fed = cfg.fed
    return fit(model, get_params(model), data, tasks, steps=steps, batch_size=fed.batch_size, lr=fed.lr, seed=seed,
               weight_decay=fed.weight_decay, logit_adjust=fed.logit_adjust, decorr=fed.decorr,
               modality_drop=fed.modality_drop, device=cfg.device, on_step=on_step)


def train(store: Store | str | os.PathLike[str], cfg: TrainConfig, out: str | os.PathLike[str], *,
          workers: int = 1, progress: bool = False, resume: bool = False, evaluate: bool = True,
          cohort: Cohort | None = None, engine: str = "inprocess") -> dict[str, Any]:
    """Train the federated model and the baselines of ``cfg.baselines`` on ``store``; write the run folder
    ``out``; evaluate unless ``evaluate=False``. Returns the results (or the training summary).

    ``engine``: ``"inprocess"`` (:func:`~xrdata.fed_training.engine.run_federated`) or ``"flower"``
    (:func:`~xrdata.fed_training.flower.run_flower`: the same clients and aggregation under Flower's simulation).
    """
    from xrdata.fed_training.evaluate import (
        concat_predictions,
        evaluate_run,
        mean_macro_f1,
        predict,
        task_metrics,
    )
    from xrdata.progress import progress_bar

    st = store if isinstance(store, Store) else open_store(store, "r")
    unknown = sorted(set(cfg.baselines) - {"centralized", "local", "zero_fill"})
    if unknown:
        raise ValidationError(f"unknown baselines {unknown}; known: centralized, local, zero_fill")
    if engine not in ("inprocess", "flower"):
        raise ValidationError(f"engine must be 'inprocess' or 'flower', got {engine!r}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cohort = cohort or load_cohort(st, cfg, workers=workers, progress=progress)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    (folder / "tasks.json").write_text(json.dumps([{"name": t.name, "classes": list(t.classes)}
                                                   for t in cohort.tasks], indent=1))
    meta = {"store": str(st.url), "format": "xrdata-fed-model-1"}
    timing: dict[str, float] = {"load_s": cohort.load_s}
    val = concat(list(cohort.future.values())) if cohort.future else None
    if val is not None and len(val) > 2000:
        val = val.subset(np.sort(np.random.default_rng(cfg.fed.seed).choice(len(val), 2000, replace=False)))

    def run(missing: str | None, name: str) -> FedResult:
        model = build_model(cfg, cohort, missing=missing)

        def on_round(rnd: int, params: dict[str, np.ndarray]) -> dict[str, float]:
            if val is None or len(val) == 0:
                return {}
            set_params(model, params)
            return {"val_macro_f1": mean_macro_f1(task_metrics(predict(model, val, device=cfg.device), val,
                                                               cohort.tasks))}

        t = time.perf_counter()
        run_engine: Callable[..., FedResult] = run_federated
        if engine == "flower":
            from xrdata.fed_training.flower import run_flower

            run_engine = run_flower
        res = run_engine(cfg, model, cohort.train, cohort.tasks, devices=cohort.devices,
                         checkpoint_dir=folder / "checkpoints" / name, resume=resume, on_round=on_round,
                         progress=progress)
        timing[f"{name}_s"] = time.perf_counter() - t
        _save_model(folder / f"{name}.safetensors", model, res.params, meta)
        return res

    fed_res = run(None, "federated")
    (folder / "history.json").write_text(json.dumps({
        "summary": fed_res.summary(), "rounds": [dataclasses.asdict(r) for r in fed_res.history],
        "comm": fed_res.comm, "energy_j": fed_res.energy_j}, indent=1, default=float))
    if "zero_fill" in cfg.baselines:
        zres = run("zero", "zero_fill")
        (folder / "history_zero_fill.json").write_text(json.dumps(
            {"summary": zres.summary(), "rounds": [dataclasses.asdict(r) for r in zres.history]},
            indent=1, default=float))
    budget = _total_windows(fed_res, cfg.fed.batch_size)
    if "centralized" in cfg.baselines:
        t = time.perf_counter()
        pooled = concat(list(cohort.train.values()))
        steps = int(cfg.centralized_epochs * len(pooled) / cfg.fed.batch_size) if cfg.centralized_epochs > 0 \
            else max(1, budget // cfg.fed.batch_size)
        model = build_model(cfg, cohort)
        with progress_bar(total=steps, desc="centralized", unit="step", enabled=progress) as bar:
            params = _train_single(model, pooled, cohort.tasks, cfg, steps, cfg.fed.seed, on_step=bar.update)
        _save_model(folder / "centralized.safetensors", model, params, meta)
        timing["centralized_s"] = time.perf_counter() - t
    if "local" in cfg.baselines:
        t = time.perf_counter()
        local: dict[str, Any] = {}
        # Each local model gets the steps an average training user's data supports in the federated budget.
        steps = max(1, budget // cfg.fed.batch_size // max(1, len(cohort.train)))
        pairs = [("future", u, cohort.train[u], cohort.future.get(u)) for u in sorted(cohort.train)]
        pairs += [("unseen", u, cohort.adapt[u], cohort.unseen[u]) for u in sorted(cohort.unseen)]
        preds: dict[str, list[tuple[Any, ClientData]]] = {"future": [], "unseen": []}
        for i, (kind, _user, own, test) in enumerate(progress_bar(pairs, desc="local-only", unit="user",
                                                              enabled=progress)):
            if test is None or len(test) == 0 or len(own) == 0:
                continue
            model = build_model(cfg, cohort)
            _train_single(model, own, cohort.tasks, cfg, steps, cfg.fed.seed + 1 + i)
            preds[kind].append((predict(model, test, device=cfg.device), test))
        for kind, items in preds.items():
            local[kind] = {
                "users": {d.user: task_metrics(p, d, cohort.tasks) for p, d in items},
                "pooled": task_metrics(concat_predictions([p for p, _ in items]), concat([d for _, d in items]),
                                       cohort.tasks) if items else {},
            }
        (folder / "local.json").write_text(json.dumps(local, indent=1))
        timing["local_s"] = time.perf_counter() - t
    timing["train_s"] = time.perf_counter() - t0
    (folder / "timing.json").write_text(json.dumps(timing, indent=1))
    if not evaluate:
        return {"run": str(folder), "timing": timing, "federated": fed_res.summary()}
    return evaluate_run(folder, st, cohort=cohort, progress=progress)
