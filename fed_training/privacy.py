"""Client-level differential privacy (DP-FedAvg) and a membership-inference check.

DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models"): every client
update is clipped to L2 norm ``C`` over the whole update, the server takes the *unweighted* mean over the
``n`` clients of the round and adds Gaussian noise of sd ``z * C / n`` to every entry. One client changes that
mean by at most ``C / n`` (its clipped update over the fixed denominator ``n``), so the noise calibrates to that
sensitivity. A data-size weighted or module-wise average would let one client move the mean by more than
``C / n``, which is why :func:`dp_average` ignores the update weights. The privacy loss over the rounds is
accounted with opacus's RDP accountant (:func:`epsilon`).

Numpy only, except :func:`epsilon`, which imports opacus (``pip install 'xrdata[train]'``) when called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xrdata.errors import ValidationError, require

__all__ = ["clip_update", "dp_average", "epsilon", "gaussian_noise_", "membership_inference_auc", "update_norm"]

Params = dict[str, np.ndarray]


def update_norm(delta: Mapping[str, np.ndarray]) -> float:
    """Global L2 norm of an update: ``sqrt(sum over every entry of every tensor of d^2)`` (float64)."""
    return math.sqrt(math.fsum(float(np.sum(np.square(np.asarray(a, dtype=np.float64)))) for a in delta.values()))


def clip_update(delta: Mapping[str, np.ndarray], max_norm: float) -> tuple[Params, float]:
    """Scale ``delta`` so its global L2 norm is at most ``max_norm``.

    Returns ``(clipped, scale)`` with ``scale = min(1, max_norm / ||delta||)`` (1 for a zero update); the
    clipped arrays are float32 copies.
    """
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValidationError(f"clip_update: max_norm must be > 0, got {max_norm}")
    norm = update_norm(delta)
    if not math.isfinite(norm):
        raise ValidationError("clip_update: delta has non-finite entries (NaN/inf)")
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return {k: (np.asarray(a, dtype=np.float64) * scale).astype(np.float32) for k, a in delta.items()}, scale


def gaussian_noise_(
    mean_delta: dict[str, np.ndarray],
    noise_multiplier: float,
    max_norm: float,
    n_clients: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Add N(0, (noise_multiplier * max_norm / n_clients)^2) to every entry of ``mean_delta``, in place.

    ``mean_delta`` must be the *unweighted* mean of ``n_clients`` updates each clipped to ``max_norm`` (see
    :func:`dp_average`): only then is one client's influence bounded by ``max_norm / n_clients``. The arrays must
    be writable float arrays; returns ``mean_delta`` for chaining.
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise ValidationError(f"gaussian_noise_: noise_multiplier must be >= 0, got {noise_multiplier}")
    if not (math.isfinite(max_norm) and max_norm > 0):
        raise ValidationError(f"gaussian_noise_: max_norm must be > 0, got {max_norm}")
    if n_clients < 1:
        raise ValidationError(f"gaussian_noise_: n_clients must be >= 1, got {n_clients}")
    sd = noise_multiplier * max_norm / n_clients
    for key, a in mean_delta.items():
        if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.floating):
            raise ValidationError(f"gaussian_noise_: mean_delta[{key!r}] must be a float numpy array")
        if sd > 0:
            a += rng.normal(0.0, sd, size=a.shape).astype(a.dtype)
    return mean_delta


def dp_average(
    updates_deltas: Sequence[Mapping[str, np.ndarray]],
    max_norm: float,
    noise_multiplier: float,
    rng: np.random.Generator,
) -> Params:
    """DP-FedAvg server step: clip each update to ``max_norm``, take the unweighted mean, add Gaussian noise.

    A parameter a client did not send counts as a zero delta from it (the denominator stays the number of
    clients, which the sensitivity ``max_norm / n`` needs); parameters nobody sent are absent. Returns float32.
    """
    n = len(updates_deltas)
    if n == 0:
        raise ValidationError("dp_average: updates_deltas is empty (no client to average)")
    clipped = [clip_update(d, max_norm)[0] for d in updates_deltas]
    sums: dict[str, np.ndarray] = {}
    for i, c in enumerate(clipped):
        for key, a in c.items():
            if key in sums:
                if sums[key].shape != a.shape:
                    raise ValidationError(
                        f"dp_average: client {i} parameter {key!r} has shape {a.shape}, "
                        f"earlier clients {sums[key].shape}"
                    )
                sums[key] += a
            else:
                sums[key] = a.astype(np.float64)
    mean = {k: (s / n).astype(np.float32) for k, s in sums.items()}
    return gaussian_noise_(mean, noise_multiplier, max_norm, n, rng)


def epsilon(noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """The epsilon of client-level (epsilon, delta)-DP after ``rounds`` rounds of DP-FedAvg.

    Renyi-DP accounting of the subsampled Gaussian mechanism (opacus ``RDPAccountant``): each round samples
    clients with probability ``sample_rate`` (clients per round / clients; the analysis assumes Poisson
    sampling) and adds noise ``noise_multiplier`` times the clip norm. ``rounds = 0`` gives 0; a zero noise
    multiplier gives ``inf``. Needs opacus (``pip install 'xrdata[train]'``).
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise ValidationError(f"epsilon: noise_multiplier must be >= 0, got {noise_multiplier}")
    if not (0 < sample_rate <= 1):
        raise ValidationError(f"epsilon: sample_rate must be in (0, 1], got {sample_rate}")
    if rounds < 0:
        raise ValidationError(f"epsilon: rounds must be >= 0, got {rounds}")
    if not (0 < delta < 1):
        raise ValidationError(f"epsilon: delta must be in (0, 1), got {delta}")
    if rounds == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    accountants: Any = require("opacus.accountants", "train")
    accountant = accountants.RDPAccountant()
    accountant.history = [(float(noise_multiplier), float(sample_rate), int(rounds))]
    return float(accountant.get_epsilon(delta=float(delta)))


def membership_inference_auc(
    member_losses: Sequence[float] | np.ndarray, nonmember_losses: Sequence[float] | np.ndarray
) -> float:
    """AUC of the loss-threshold membership attack (Yeom et al. 2018).

    The attacker calls a sample a training member when its loss is low, i.e. scores it by ``-loss``. The AUC is
    the probability that a random member scores above a random non-member, ties counting 1/2 (Mann-Whitney U
    with average ranks): 0.5 = no leakage, 1 = every member has lower loss than every non-member.
    ``member_losses`` is ``(n1,)``, ``nonmember_losses`` ``(n0,)``, both finite and non-empty.
    """
    m = np.asarray(member_losses, dtype=np.float64).ravel()
    nm = np.asarray(nonmember_losses, dtype=np.float64).ravel()
    for name, a in (("member_losses", m), ("nonmember_losses", nm)):
        if a.size == 0:
            raise ValidationError(f"membership_inference_auc: {name} is empty")
        if not np.all(np.isfinite(a)):
            raise ValidationError(f"membership_inference_auc: {name} has non-finite values")
    scores = -np.concatenate([m, nm])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of the first element of each tie group
    ranks = (first + (counts + 1) / 2.0)[inverse]  # 1-based average ranks
    n1, n0 = m.size, nm.size
    u = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)
