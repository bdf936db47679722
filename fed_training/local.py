"""One client's round of local training, and the conversions between a model and numpy parameters.

Optimizer state (``FedConfig.optimizer_state``): with ``"reset"`` (default) every round starts a fresh AdamW,
as in cross-device FL where a client may never be seen twice and keeps nothing between rounds; with
``"keep"`` the engine keeps each client's AdamW moments between the rounds it takes part in (they refer to
the client's own trajectory, are never sent, and are saved in checkpoints).

The compute budget is ``steps`` optimizer steps (deterministic), or ``time_s`` seconds of wall time when given
(not reproducible: the number of steps then depends on the machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xrdata.errors import ValidationError
from xrdata.fed_training.aggregate import ClientUpdate
from xrdata.fed_training.config import TaskSpec, group_of, selected
from xrdata.fed_training.data import ClientData, to_tensors
from xrdata.fed_training.model import M3T, decorrelation_loss, set_trainable, task_loss

__all__ = [
    "LocalResult", "drop_modalities", "fit", "get_params", "group_weights", "label_log_prior", "local_train",
    "set_params",
]


def get_params(model: torch.nn.Module, patterns: tuple[str, ...] = ("*",)) -> dict[str, np.ndarray]:
    """The model's parameters of the selected groups as float32 numpy copies (name -> array)."""
    return {n: p.detach().cpu().numpy().astype(np.float32, copy=True)
            for n, p in model.named_parameters() if selected(group_of(n), patterns)}


def set_params(model: torch.nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Copy ``params`` (a subset of the model's parameter names) into the model in place."""
    own = dict(model.named_parameters())
    unknown = sorted(set(params) - set(own))
    if unknown:
        raise ValidationError(f"parameters {unknown[:5]} are not in the model")
    with torch.no_grad():
        for n, v in params.items():
            own[n].copy_(torch.from_numpy(np.asarray(v)))


def group_weights(data: ClientData, idx: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """How many of the windows ``idx`` each module group learned from.

    ``encoder/<m>``: windows where modality ``m`` has at least one present step; ``missing/<m>``: windows
    where it has at least one absent step; ``head/<t>``: windows with a label for ``t``; any other group: all
    windows. Module-wise aggregation weights a group's update by it, so a
    client without EEG contributes nothing to the EEG encoder.
    """
    out: dict[str, float] = {}
    for g in groups:
        kind, _, name = g.partition("/")
        if kind == "encoder":
            out[g] = float(data.present[name][idx].any(axis=1).sum()) if name in data.present else 0.0
        elif kind == "missing":
            out[g] = float((~data.present[name][idx]).any(axis=1).sum()) if name in data.present else float(len(idx))
        elif kind == "head":
            y = data.y[name][idx]
            out[g] = float((~np.isnan(y)).sum() if y.dtype.kind == "f" else (y >= 0).sum())
        else:
            out[g] = float(len(idx))
    return {g: w for g, w in out.items() if w > 0}


def label_log_prior(data: ClientData, tasks: Sequence[TaskSpec], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Per classification task with labels in ``data``: the log of its class shares ``(classes,)``; a class the
    data never show gets a share of 1e-4 of a window (log ~ -9 - log n), so its logit is left alone."""
    out: dict[str, torch.Tensor] = {}
    for t in tasks:
        if t.regression or t.name not in data.y:
            continue
        y = data.y[t.name]
        counts = np.bincount(y[y >= 0], minlength=len(t.classes)).astype(np.float64)
        if counts.sum() > 0:
            out[t.name] = torch.as_tensor(np.log(np.maximum(counts, 1e-4) / counts.sum()), dtype=torch.float32,
                                          device=device)
    return out


def drop_modalities(batch: ClientData, p: float, rng: np.random.Generator) -> None:
    """Hide whole modalities of training windows in place (ModDrop, Neverova et al. 2015, IEEE TPAMI 38(8)).

    Each modality with a present step in a window is hidden from that window with probability ``p``: its
    presence mask turns all False and its input all zero (what a missing stream looks like to the model with
    the learned missing token and to the zero-fill baseline alike). A window keeps at least one of its present
    modalities, so no window trains on nothing. Real missing streams come in bursts that can take any stream;
    hiding streams on purpose makes the model learn to read each label from the streams that remain.
    """
    names = sorted(batch.present)
    if not names:
        return
    has = np.stack([batch.present[m].any(axis=1) for m in names], axis=1)  # (B, M)
    drop = has & (rng.random(has.shape) < p)
    drop[~(has & ~drop).any(axis=1)] = False
    for j, m in enumerate(names):
        rows = np.flatnonzero(drop[:, j])
        if rows.size:
            batch.present[m][rows] = False
            if m in batch.x:
                batch.x[m][rows] = 0


@dataclass
class LocalResult:
    """What one client round produced."""

    update: ClientUpdate  # the delta of the trained groups and their weights
    steps: int  # optimizer steps taken
    windows: int  # windows processed (steps x batch, with repeats)
    loss: float  # mean training loss over the round
    time_s: float  # wall time of the round on this host (s)
    opt_state: dict[str, Any] | None  # the client's AdamW state, when it is kept between rounds


def local_train(
    model: M3T,
    global_params: Mapping[str, np.ndarray],
    data: ClientData,
    tasks: Sequence[TaskSpec],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.01,
    train_groups: tuple[str, ...] = ("*",),
    prox_mu: float = 0.0,
    time_s: float | None = None,
    opt_state: dict[str, Any] | None = None,
    keep_opt_state: bool = False,
    logit_adjust: bool = False,
    decorr: float = 0.0,
    modality_drop: float = 0.0,
    device: str = "cpu",
    on_step: Callable[[], None] | None = None,
) -> LocalResult:
    """Train ``model`` (loaded with ``global_params``) on the client's ``data`` and return its update.

    Args:
        model: the model object to train in place (the engine reuses one object for every client).
        global_params: the parameters the round starts from (every parameter of the model).
        data: the client's training windows (only these are read).
        steps: optimizer steps (the compute budget); the data are walked in shuffled epochs.
        train_groups: module groups that train (the rest is frozen) and are sent.
        prox_mu: FedProx proximal weight: the loss gets ``mu / 2 * ||w - w_global||^2`` over trained params.
        time_s: stop after this much wall time instead (at least one step).
        opt_state: AdamW state from this client's previous round (``optimizer_state="keep"``).
        keep_opt_state: return the AdamW state at the end of the round.
        logit_adjust: train with the logit-adjusted loss under the label prior of ``data``
            (:func:`label_log_prior`, :func:`~xrdata.fed_training.model.task_loss`).
        decorr: weight of the feature decorrelation term
            (:func:`~xrdata.fed_training.model.decorrelation_loss`, FedDecorr) added to every batch's loss.
        modality_drop: per window and present modality, the probability that the modality is hidden for the step
            (:func:`drop_modalities`, ModDrop).
        seed: seeds batch order, dropout and modality drops, so a round is reproducible.
        on_step: called after every optimizer step (progress of a long plain training).
    """
    if len(data) == 0:
        raise ValidationError(f"client {data.user!r} has no training windows")
    if steps < 1:
        raise ValidationError(f"steps must be >= 1, got {steps}")
    if not decorr >= 0:
        raise ValidationError(f"decorr must be >= 0, got {decorr}")
    if not 0 <= modality_drop < 1:
        raise ValidationError(f"modality_drop must be in [0, 1), got {modality_drop}")
    set_params(model, global_params)
    set_trainable(model, train_groups)
    model.to(device).train()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trained:
        raise ValidationError(f"train_groups {train_groups} select no parameter of the model")
    # fused: one kernel per step instead of a dozen per parameter tensor (a tenth of a step on CPU for this model)
    opt = torch.optim.AdamW([p for _, p in trained], lr=lr, weight_decay=weight_decay, fused=True)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    anchor = [p.detach().clone() for _, p in trained] if prox_mu > 0 else None

    log_prior = label_log_prior(data, tasks, device) if logit_adjust else None
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    seen: list[np.ndarray] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    done = 0
    while done < steps or time_s is not None:
        order = rng.permutation(len(data))
        for start in range(0, len(order), batch_size):
            idx = np.sort(order[start:start + batch_size])
            batch = data.subset(idx)
            if modality_drop > 0:
                drop_modalities(batch, modality_drop, rng)
            x, present, y = to_tensors(batch, device)
            out = model(x, present)
            loss, _ = task_loss(out, y, tasks, log_prior)
            if decorr > 0 and out.features is not None and len(idx) > 1:
                loss = loss + decorr * decorrelation_loss(out.features)
            if anchor is not None:
                prox = sum(((p - a) ** 2).sum() for (_, p), a in zip(trained, anchor, strict=True))
                loss = loss + 0.5 * prox_mu * prox
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            seen.append(idx)
            done += 1
            if on_step is not None:
                on_step()
            if (time_s is None and done >= steps) or (time_s is not None and time.perf_counter() - t0 >= time_s):
                break
        if time_s is not None and time.perf_counter() - t0 >= time_s:
            break
    elapsed = time.perf_counter() - t0

    idx_all = np.unique(np.concatenate(seen))
    weights = group_weights(data, idx_all, sorted({group_of(n) for n, _ in trained}))
    # A group that learned from no window (an encoder of a modality the client lacks) is not sent: its
    # parameters moved only by weight decay, and sending them would pull the global module towards zero.
    delta = {n: p.detach().cpu().numpy().astype(np.float32) - np.asarray(global_params[n], np.float32)
             for n, p in trained if group_of(n) in weights}
    update = ClientUpdate(client=data.user, delta=delta, weights=weights,
                          metrics={"loss": float(np.mean(losses)), "steps": float(done)})
    return LocalResult(
        update=update, steps=done, windows=int(sum(len(i) for i in seen)), loss=float(np.mean(losses)),
        time_s=elapsed, opt_state=opt.state_dict() if keep_opt_state else None,
    )


def fit(model: M3T, start: Mapping[str, np.ndarray], data: ClientData, tasks: Sequence[TaskSpec], *, steps: int,
        batch_size: int, lr: float, seed: int, weight_decay: float = 0.01, groups: tuple[str, ...] = ("*",),
        logit_adjust: bool = False, decorr: float = 0.0, modality_drop: float = 0.0,
        device: str = "cpu", on_step: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
    """Plain (non-federated) training: :func:`local_train` from ``start`` for ``steps`` steps (at least 1);
    ``model`` is left holding ``start`` plus the trained update, which is also returned (every parameter)."""
    res = local_train(model, start, data, tasks, steps=max(1, steps), batch_size=batch_size, lr=lr, seed=seed,
                      weight_decay=weight_decay, train_groups=groups, logit_adjust=logit_adjust, decorr=decorr,
                      modality_drop=modality_drop, device=device, on_step=on_step)
    params = {k: np.asarray(start[k], np.float32) + res.update.delta.get(k, 0.0) for k in start}
    set_params(model, params)
    return params
