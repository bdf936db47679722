"""Server-side aggregation, server optimizers, uplink compression and decentralized topologies.

Everything here is a plain numpy function (Flower-style: "the averaging is a plain function"), no torch, so
each piece is testable alone. Parameters are ``dict[str, np.ndarray]`` of float32 keyed by the parameter
names of :class:`~xrdata.fed_training.model.M3T`; a *delta* is trained parameters minus the global
parameters a client started from. Sums are accumulated in float64 and returned as float32.

Module-wise averaging (:func:`modulewise_average`) is the default of the trainer: each parameter is averaged
only over the clients that trained it, weighted by how much data that module saw (e.g. the windows with EEG
present for ``encoder/eeg``). Plain FedAvg (:func:`fedavg_deltas`) gives one weight per client and counts a
client that did not train a module as a zero delta, which dilutes e.g. the EEG encoder by every client without
an EEG headset: with 2 of 10 equally weighted clients having EEG, the encoder moves 1/5 as far as its trainers
agreed on.

FedProx (Li et al. 2020) only adds a proximal term ``mu/2 ||w - w_global||^2`` to the *client* objective (the
local trainer does it); its server side is FedAvg, i.e. :class:`ServerOptimizer` with ``kind="fedavg"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from xrdata.errors import ValidationError
from xrdata.fed_training.config import FedConfig, group_of

__all__ = [
    "ClientUpdate",
    "Compressed",
    "ErrorFeedback",
    "ServerOptimizer",
    "clusters",
    "compress",
    "fedavg_deltas",
    "gossip",
    "metropolis_weights",
    "modulewise_average",
    "payload_bytes",
    "ring_lattice",
    "weighted_average",
]

Params = dict[str, np.ndarray]


@dataclass
class ClientUpdate:
    """What one client sends back after a round of local training."""

    client: str
    delta: dict[str, np.ndarray]  # trained params minus the global params it started from (only the groups it sends)
    weights: dict[str, float]  # module group -> weight (e.g. number of training windows in which that group was
    # active: for encoder/eeg the windows with EEG present); a group absent = not trained
    metrics: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Averaging


def _check_weight(w: float, where: str) -> float:
    w = float(w)
    if not math.isfinite(w) or w < 0:
        raise ValidationError(f"{where} must be a finite weight >= 0, got {w}")
    return w


def weighted_average(arrays: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float]) -> Params:
    """FedAvg: ``sum_i w_i x_i / sum_i w_i`` per parameter.

    ``arrays[i]`` maps parameter name -> array (any shape); every client must have the same names and shapes.
    ``weights[i] >= 0`` (e.g. training windows of client i) with a positive total. Accumulates in float64,
    returns float32 arrays.
    """
    if len(arrays) == 0:
        raise ValidationError("weighted_average: arrays is empty (no client to average)")
    if len(weights) != len(arrays):
        raise ValidationError(f"weighted_average: {len(weights)} weights for {len(arrays)} clients")
    ws = [_check_weight(w, f"weighted_average: weights[{i}]") for i, w in enumerate(weights)]
    total = math.fsum(ws)
    if not total > 0:
        raise ValidationError(f"weighted_average: weights must have a positive total, got {total}")
    ref = arrays[0]
    for i, a in enumerate(arrays[1:], start=1):
        if a.keys() != ref.keys():
            missing = sorted(set(ref) - set(a))
            extra = sorted(set(a) - set(ref))
            raise ValidationError(
                f"weighted_average: client {i} has different parameters than client 0 "
                f"(missing {missing[:5]}, extra {extra[:5]})"
            )
    out: Params = {}
    for key, first in ref.items():
        acc = np.zeros(np.shape(first), dtype=np.float64)
        for i, (a, w) in enumerate(zip(arrays, ws, strict=True)):
            x = np.asarray(a[key])
            if x.shape != acc.shape:
                raise ValidationError(
                    f"weighted_average: client {i} parameter {key!r} has shape {x.shape}, client 0 has {acc.shape}"
                )
            if w:
                acc += w * x.astype(np.float64)
        out[key] = (acc / total).astype(np.float32)
    return out


def modulewise_average(
    updates: Sequence[ClientUpdate], group_of: Callable[[str], str] = group_of
) -> tuple[Params, dict[str, float]]:
    """Average each parameter only over the clients that trained its module group.

    A parameter ``p`` of group ``g = group_of(p)`` gets ``sum_i w_i[g] d_i[p] / sum_i w_i[g]`` over the clients
    ``i`` whose delta has ``p`` and whose ``weights[g] > 0``. A parameter no client trained is absent from the
    result (the server keeps it unchanged); with no update at all both results are empty.

    Returns ``(delta, totals)``: the averaged delta (float32) and, per group that some client trained, the total
    weight of the clients that contributed to it (e.g. the EEG windows behind the ``encoder/eeg`` update).
    """
    sums: dict[str, np.ndarray] = {}
    norm: dict[str, float] = {}
    totals: dict[str, float] = {}
    for i, u in enumerate(updates):
        contributed: set[str] = set()
        for key, value in u.delta.items():
            g = group_of(key)
            w = _check_weight(u.weights.get(g, 0.0), f"modulewise_average: client {i} ({u.client}) weights[{g!r}]")
            if w == 0:
                continue  # sent but not trained (e.g. a frozen group): not part of the average
            x = np.asarray(value, dtype=np.float64)
            if key in sums and sums[key].shape != x.shape:
                raise ValidationError(
                    f"modulewise_average: client {i} ({u.client}) parameter {key!r} has shape {x.shape}, "
                    f"earlier clients sent {sums[key].shape}"
                )
            if key in sums:
                sums[key] += w * x
            else:
                sums[key] = w * x
            norm[key] = norm.get(key, 0.0) + w
            if g not in contributed:
                contributed.add(g)
                totals[g] = totals.get(g, 0.0) + w
    delta = {k: (s / norm[k]).astype(np.float32) for k, s in sums.items()}
    return delta, totals


def fedavg_deltas(updates: Sequence[ClientUpdate], n: Sequence[float] | None = None) -> Params:
    """Plain FedAvg of the deltas, for comparison with :func:`modulewise_average`.

    Client ``i`` gets one weight for every parameter: ``n[i]`` if given (e.g. its training windows), else the
    sum of its group weights. A parameter a client did not send counts as a zero delta from it, so a module only
    some clients train (the EEG encoder) is diluted by all the others. Parameters no client sent are absent.
    """
    if len(updates) == 0:
        raise ValidationError("fedavg_deltas: updates is empty (no client to average)")
    if n is not None and len(n) != len(updates):
        raise ValidationError(f"fedavg_deltas: {len(n)} weights in n for {len(updates)} updates")
    ws = (
        [_check_weight(w, f"fedavg_deltas: n[{i}]") for i, w in enumerate(n)]
        if n is not None
        else [
            math.fsum(_check_weight(w, f"fedavg_deltas: client {i} weights[{g!r}]") for g, w in u.weights.items())
            for i, u in enumerate(updates)
        ]
    )
    shapes: dict[str, tuple[int, ...]] = {}
    for i, u in enumerate(updates):
        for key, value in u.delta.items():
            shape = np.shape(value)
            if shapes.setdefault(key, shape) != shape:
                raise ValidationError(
                    f"fedavg_deltas: client {i} ({updates[i].client}) parameter {key!r} has shape {shape}, "
                    f"another client sent {shapes[key]}"
                )
    full = [{k: u.delta.get(k, np.zeros(s, np.float32)) for k, s in shapes.items()} for u in updates]
    return weighted_average(full, ws)


# ---------------------------------------------------------------------------------------------------------------
# Server optimizers


class ServerOptimizer:
    """Applies an averaged delta to the global parameters (Reddi et al. 2021, "Adaptive Federated Optimization").

    With ``d`` the averaged client delta of a parameter (treated as a pseudo-gradient step direction):

    * ``fedavg``: ``x += lr * d`` (``lr = 1`` is plain averaging; FedProx's server is this too).
    * ``fedavgm``: server momentum (Hsu et al. 2019): ``m = b1 m + d``; ``x += lr m``.
    * ``fedadam``: ``m = b1 m + (1-b1) d``; ``v = b2 v + (1-b2) d^2``; ``x += lr m / (sqrt(v) + tau)``.
    * ``fedyogi``: as fedadam but ``v = v - (1-b2) d^2 sign(v - d^2)`` (v grows slower, never shrinks fast).

    ``m`` starts at 0 and ``v`` at ``tau^2`` (the paper's ``v_{-1} >= tau^2``), per parameter when it first
    receives a delta; no bias correction, as in the paper. Only parameters present in the delta move, so a
    module no client trained this round keeps its value and its moments.
    """

    def __init__(
        self,
        kind: Literal["fedavg", "fedavgm", "fedadam", "fedyogi"] = "fedavg",
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.99),
        tau: float = 1e-3,
    ) -> None:
        if kind not in ("fedavg", "fedavgm", "fedadam", "fedyogi"):
            raise ValidationError(
                f"ServerOptimizer: kind must be 'fedavg', 'fedavgm', 'fedadam' or 'fedyogi', got {kind!r}")
        if not (math.isfinite(lr) and lr > 0):
            raise ValidationError(f"ServerOptimizer: lr must be > 0, got {lr}")
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValidationError(f"ServerOptimizer: betas must be in [0, 1), got {betas}")
        if not (math.isfinite(tau) and tau > 0):
            raise ValidationError(f"ServerOptimizer: tau must be > 0, got {tau}")
        self.kind = kind
        self.lr = float(lr)
        self.betas = (b1, b2)
        self.tau = float(tau)
        self.m: Params = {}
        self.v: Params = {}
        self.steps = 0

    @classmethod
    def from_config(cls, cfg: FedConfig) -> ServerOptimizer:
        """The optimizer ``cfg.server_opt`` with ``cfg``'s learning rate, betas and tau."""
        return cls(cfg.server_opt, cfg.server_lr, cfg.server_betas, cfg.server_tau)

    def step(self, params: Mapping[str, np.ndarray], delta: Mapping[str, np.ndarray]) -> Params:
        """New global parameters: ``params`` moved by ``delta`` (a subset of its names); inputs are not mutated."""
        for key, d in delta.items():
            if key not in params:
                raise ValidationError(f"ServerOptimizer.step: delta has parameter {key!r} that params lacks")
            if np.shape(d) != np.shape(params[key]):
                raise ValidationError(
                    f"ServerOptimizer.step: delta {key!r} has shape {np.shape(d)}, "
                    f"the parameter {np.shape(params[key])}"
                )
        out: Params = dict(params)
        b1, b2 = self.betas
        for key, d in delta.items():
            x = np.asarray(params[key], dtype=np.float64)
            d64 = np.asarray(d, dtype=np.float64)
            if self.kind == "fedavg":
                x = x + self.lr * d64
            elif self.kind == "fedavgm":
                m = b1 * self.m[key].astype(np.float64) + d64 if key in self.m else d64
                x = x + self.lr * m
                self.m[key] = m.astype(np.float32)
            else:
                m = self.m[key].astype(np.float64) if key in self.m else np.zeros_like(d64)
                v = self.v[key].astype(np.float64) if key in self.v else np.full_like(d64, self.tau**2)
                m = b1 * m + (1 - b1) * d64
                d2 = d64 * d64
                if self.kind == "fedadam":
                    v = b2 * v + (1 - b2) * d2
                else:
                    v = v - (1 - b2) * d2 * np.sign(v - d2)
                x = x + self.lr * m / (np.sqrt(v) + self.tau)
                self.m[key] = m.astype(np.float32)
                self.v[key] = v.astype(np.float32)
            out[key] = x.astype(np.float32)
        self.steps += 1
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """The moments (``m/<param>``, ``v/<param>``, float32) plus ``steps`` (``(1,)`` int64), for a checkpoint."""
        state: dict[str, np.ndarray] = {"steps": np.array([self.steps], dtype=np.int64)}
        state.update({f"m/{k}": v.copy() for k, v in self.m.items()})
        state.update({f"v/{k}": v.copy() for k, v in self.v.items()})
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (the hyperparameters come from the constructor)."""
        m: Params = {}
        v: Params = {}
        for key, value in state.items():
            if key == "steps":
                continue
            prefix, _, name = key.partition("/")
            if prefix not in ("m", "v") or not name:
                raise ValidationError(f"ServerOptimizer.load_state_dict: unexpected key {key!r} (want m/<p>, v/<p>)")
            (m if prefix == "m" else v)[name] = np.array(value, dtype=np.float32)
        if m.keys() != v.keys():
            raise ValidationError(
                f"ServerOptimizer.load_state_dict: m and v cover different parameters: "
                f"{sorted(m.keys() ^ v.keys())[:5]}"
            )
        self.m, self.v = m, v
        steps = np.asarray(state.get("steps", 0)).ravel()
        self.steps = int(steps[0]) if steps.size else 0


# ---------------------------------------------------------------------------------------------------------------
# Uplink compression


@dataclass
class Compressed:
    """An uplink delta after compression: what the server reconstructs and what it cost."""

    delta: dict[str, np.ndarray]  # reconstructed delta the server sees (float32, same names and shapes)
    nbytes: int  # exact bytes on the wire
    rel_error: float  # ||d - d_hat|| / ||d|| over the whole update (0 when ||d|| = 0)


def payload_bytes(arrays: Mapping[str, np.ndarray]) -> int:
    """Bytes of ``arrays`` sent as float32 (4 per entry, whatever their dtype in memory)."""
    return 4 * sum(int(np.size(a)) for a in arrays.values())


def _topk_count(size: int, frac: float) -> int:
    return 0 if size == 0 else min(size, max(1, math.ceil(frac * size)))


def compress(
    delta: Mapping[str, np.ndarray], method: Literal["none", "int8", "topk"] = "none", topk_frac: float = 0.1
) -> Compressed:
    """Compress an uplink delta and report what the server reconstructs.

    * ``none``: float32, 4 bytes per entry.
    * ``int8``: per-tensor symmetric absmax quantization, ``q = round(d / s)`` in [-127, 127] with
      ``s = max|d| / 127`` (round to nearest, ties to even); 1 byte per entry + one float32 scale per tensor.
    * ``topk``: per tensor the ``k = ceil(topk_frac * size)`` (at least 1) entries of largest magnitude, sent as
      k int32 flat indices + k float32 values (8 bytes per kept entry); the rest reconstructs as 0.
    """
    if method not in ("none", "int8", "topk"):
        raise ValidationError(f"compress: method must be 'none', 'int8' or 'topk', got {method!r}")
    if method == "topk" and not (0 < topk_frac <= 1):
        raise ValidationError(f"compress: topk_frac must be in (0, 1], got {topk_frac}")
    if method == "none":  # lossless: the arrays as they are (read-only use by the server), no error to measure
        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in delta.items()}
        return Compressed(delta=arrays, nbytes=payload_bytes(arrays), rel_error=0.0)
    out: Params = {}
    nbytes = 0
    err2 = 0.0
    norm2 = 0.0
    for key, value in delta.items():
        d = np.asarray(value, dtype=np.float32)
        if method == "int8":
            absmax = float(np.max(np.abs(d))) if d.size else 0.0
            scale = np.float32(absmax / 127.0)
            if scale > 0:
                q = np.clip(np.rint(d / scale), -127, 127).astype(np.int8)
                d_hat = q.astype(np.float32) * scale
            else:
                d_hat = np.zeros_like(d)
            nbytes += d.size + 4
        else:
            flat = d.ravel()
            k = _topk_count(flat.size, topk_frac)
            keep = np.argpartition(-np.abs(flat), k - 1)[:k] if k else np.zeros(0, np.int64)
            rec = np.zeros_like(flat)
            rec[keep] = flat[keep]
            d_hat = rec.reshape(d.shape)
            nbytes += 8 * k
        out[key] = d_hat
        d64 = d.astype(np.float64)
        err2 += float(np.sum((d64 - d_hat.astype(np.float64)) ** 2))
        norm2 += float(np.sum(d64 * d64))
    rel = math.sqrt(err2 / norm2) if norm2 > 0 else 0.0
    return Compressed(delta=out, nbytes=int(nbytes), rel_error=rel)


class ErrorFeedback:
    """Error feedback for a biased compressor (Seide et al. 2014; Karimireddy et al. 2019).

    Each client keeps the residual ``e = (d + e) - C(d + e)`` of what compression dropped and adds it to its
    next delta, so top-k/int8 errors are sent later instead of lost. One instance holds every client's residual.
    """

    def __init__(self) -> None:
        self.residuals: dict[str, Params] = {}

    def compress(
        self,
        client: str,
        delta: Mapping[str, np.ndarray],
        method: Literal["none", "int8", "topk"] = "none",
        topk_frac: float = 0.1,
    ) -> Compressed:
        """:func:`compress` of ``delta`` plus ``client``'s residual; the new residual is kept."""
        residual = self.residuals.get(client, {})
        corrected: Params = {}
        for k, v in delta.items():
            d = np.asarray(v, dtype=np.float32)
            r = residual.get(k)
            if r is not None and r.shape != d.shape:
                raise ValidationError(
                    f"ErrorFeedback: client {client!r} parameter {k!r} has shape {d.shape}, its residual {r.shape}"
                )
            corrected[k] = d if r is None else d + r
        c = compress(corrected, method, topk_frac)
        # a parameter the client does not send this round keeps its residual for when it does
        kept = {k: r for k, r in residual.items() if k not in corrected}
        kept.update({k: corrected[k] - c.delta[k] for k in corrected})
        self.residuals[client] = kept
        return c


# ---------------------------------------------------------------------------------------------------------------
# Decentralized and semi-decentralized topologies


def ring_lattice(n: int, degree: int) -> np.ndarray:
    """``(n, n)`` bool adjacency of a ring lattice: every node linked to its ``degree // 2`` nearest neighbours
    on each side, plus (odd ``degree``, even ``n``) the opposite node.

    Symmetric, no self loops; ``degree`` is clipped to ``n - 1`` (which gives the complete graph). With odd
    ``degree`` and odd ``n`` the degree is ``degree - 1``. ``n = 1`` gives ``[[False]]``.
    """
    if n < 1:
        raise ValidationError(f"ring_lattice: n must be >= 1, got {n}")
    if degree < 0:
        raise ValidationError(f"ring_lattice: degree must be >= 0, got {degree}")
    degree = min(degree, n - 1)
    adj = np.zeros((n, n), dtype=bool)
    idx = np.arange(n)
    for off in range(1, degree // 2 + 1):
        adj[idx, (idx + off) % n] = True
        adj[idx, (idx - off) % n] = True
    if degree % 2 == 1 and n % 2 == 0:
        adj[idx, (idx + n // 2) % n] = True
    return adj


def metropolis_weights(adjacency: np.ndarray) -> np.ndarray:
    """``(n, n)`` float64 Metropolis-Hastings mixing matrix of an undirected graph.

    ``W_ij = 1 / (1 + max(deg_i, deg_j))`` on edges, ``W_ii = 1 - sum_j W_ij``, 0 elsewhere: symmetric and
    doubly stochastic, so gossip with it preserves the mean and (connected graph) converges to it.
    """
    a = np.asarray(adjacency)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValidationError(f"metropolis_weights: adjacency must be square (n, n), got shape {a.shape}")
    a = a != 0
    if np.any(np.diag(a)):
        raise ValidationError("metropolis_weights: adjacency has self loops (its diagonal must be 0)")
    if not np.array_equal(a, a.T):
        raise ValidationError("metropolis_weights: adjacency must be symmetric (undirected graph)")
    deg = a.sum(axis=1)
    w = np.where(a, 1.0 / (1.0 + np.maximum(deg[:, None], deg[None, :])), 0.0)
    w[np.diag_indices_from(w)] = 1.0 - w.sum(axis=1)
    return w


def gossip(params_by_node: Sequence[Mapping[str, np.ndarray]], W: np.ndarray, steps: int) -> list[Params]:
    """``steps`` rounds of D2D consensus ``x_i <- sum_j W_ij x_j`` on every parameter.

    ``params_by_node[i]`` are node i's parameters (same names and shapes at every node); ``W`` is ``(n, n)``
    (e.g. :func:`metropolis_weights`). Returns new float32 dicts; ``steps = 0`` returns copies.
    """
    n = len(params_by_node)
    w = np.asarray(W, dtype=np.float64)
    if w.shape != (n, n):
        raise ValidationError(f"gossip: W has shape {w.shape}, want ({n}, {n}) for {n} nodes")
    if steps < 0:
        raise ValidationError(f"gossip: steps must be >= 0, got {steps}")
    if n == 0:
        return []
    ref = params_by_node[0]
    for i, p in enumerate(params_by_node[1:], start=1):
        if p.keys() != ref.keys():
            raise ValidationError(
                f"gossip: node {i} has different parameters than node 0: {sorted(p.keys() ^ ref.keys())[:5]}"
            )
    mix = np.linalg.matrix_power(w, steps)
    out: list[Params] = [{} for _ in range(n)]
    for key, first in ref.items():
        shape = np.shape(first)
        for i, p in enumerate(params_by_node):
            if np.shape(p[key]) != shape:
                raise ValidationError(
                    f"gossip: node {i} parameter {key!r} has shape {np.shape(p[key])}, node 0 {shape}"
                )
        x = np.stack([np.asarray(p[key], dtype=np.float64).ravel() for p in params_by_node])
        y = (mix @ x).astype(np.float32)
        for i in range(n):
            out[i][key] = y[i].reshape(shape)
    return out


def clusters(n: int, k: int, rng_seed: int | None = None) -> list[list[int]]:
    """Partition nodes ``0..n-1`` into ``min(k, n)`` non-empty clusters of near-equal size (sizes differ by <= 1).

    ``rng_seed=None``: contiguous blocks ``[0..], [..], ...``; an int: a seeded random assignment (each cluster
    sorted). Every node is in exactly one cluster; ``n = 0`` gives ``[]``.
    """
    if n < 0:
        raise ValidationError(f"clusters: n must be >= 0, got {n}")
    if k < 1:
        raise ValidationError(f"clusters: k must be >= 1, got {k}")
    if n == 0:
        return []
    order = np.arange(n) if rng_seed is None else np.random.default_rng(rng_seed).permutation(n)
    return [sorted(int(i) for i in part) for part in np.array_split(order, min(k, n))]
