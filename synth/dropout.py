"""Modality dropout: device-level, session-level and bursty within-session loss coupled to events.

Three layers (REALISM T1-T3), all recorded as ground truth:

1. **Device level**: a device without a sensor records no stream of it (``DevicePreset.sensors``); the stream's
   availability row says ``absent_device``.
2. **Session level**, set in the plan (:func:`session_level`): the microphone muted for a session
   (``plan.mic_muted``), the EEG cap not worn (``plan.eeg_worn``); the generators then return no stream.
3. **Bursty within-session loss** per stream (:func:`inject`), applied to the generated streams: a
   Gilbert-Elliott chain (good -> bad with probability ``p`` per sample, bad -> good with ``r``; every sample in
   the bad state lost), so the loss rate is p / (p + r) and bursts last 1 / r samples on average. Each stream
   has a base loss rate and mean burst duration (:data:`BASE`: eye-tracker slips of ~1 s, hand tracking
   dropouts of a few frames, radio packet loss of audio/EEG/IMU of tens of ms, depth frame drops) that is
   multiplied per user (log-normal propensity), per session (log-normal), by a per-user trend over weeks (so a
   user's rate changes over time, T2; each of the three has mean 1 over users and sessions at every week) and
   by the environment: dim light makes camera hand tracking lose more, bright light (sunlight IR) hurts depth
   and eye tracking. Fast head turns (from the head generator's ``ctx.head_yaw_pitch_deg``) add motion-blur
   loss to hand and depth tracking. Lost float samples become NaN (flag channels such as ``*_valid`` /
   ``confidence`` become 0); lost depth frames become 0. Physiological invalidity (blinks, eyes closed, hands
   out of view or overlapping) is the generators' job and comes on top.

Masks are saved as run-lengths (``ground_truth/dropout``: stream, cause, first sample, sample count, start and
stop ns) with the per-stream parameters and the realised missing fractions (``ground_truth/availability``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from xrdata.model import Stream
from xrdata.synth.types import Context, SessionPlan

if TYPE_CHECKING:
    from xrdata.synth.population import UserProfile
    from xrdata.synth.presets import SynthConfig

__all__ = [
    "BASE",
    "StreamLoss",
    "apply_mask",
    "ge_params",
    "gilbert_elliott",
    "inject",
    "mask_runs",
    "plan_session_loss",
    "session_level",
]

#: Per stream: base bursty-loss rate (share of samples) and mean burst duration (s).
BASE: dict[str, tuple[float, float]] = {
    "gaze": (0.015, 1.2),  # headset slip / eye out of the camera; long, rare (short losses are blinks, T3)
    "hand": (0.02, 0.25),  # tracking dropouts of a few frames (on top of the hand generator's own)
    "head": (0.003, 0.3),  # inside-out tracking loss
    "imu": (0.001, 0.02),  # radio / USB packet loss
    "audio": (0.004, 0.08),  # Bluetooth / network packet loss
    "eeg": (0.01, 0.4),  # wireless amplifier packet loss, electrode pops
    "depth": (0.02, 0.5),  # dropped depth frames
}
#: Time step (s) of a stream's loss chain where losses cannot be shorter than one step: an eye tracker that lost
#: the pupil needs ~0.6 s to re-acquire it, so its non-blink losses last >= 0.6 s (short losses are blinks, T3).
SLOT_S: dict[str, float] = {"gaze": 0.6}
#: Head angular speed (deg/s) above which hand and depth tracking suffer motion blur.
FAST_HEAD_DEG_S = 120.0
#: Probability that a fast head turn costs hand/depth tracking, and the mean extra tail (s).
HEAD_BLUR_PROB, HEAD_BLUR_TAIL_S = 0.6, 0.15


@dataclass(frozen=True)
class StreamLoss:
    """Bursty-loss parameters of one stream in one session (rate-free: burst length in seconds)."""

    loss_rate: float  # target stationary loss share p / (p + r)
    burst_s: float  # mean burst duration (s)

    def as_dict(self) -> dict[str, float]:
        return {"loss_rate": self.loss_rate, "burst_s": self.burst_s}


def ge_params(loss_rate: float, burst_s: float, rate_hz: float) -> tuple[float, float]:
    """Gilbert-Elliott transition probabilities per sample: (p good->bad, r bad->good)."""
    r = float(min(1.0, 1.0 / max(burst_s * rate_hz, 1.0)))
    lr = float(np.clip(loss_rate, 0.0, 0.95))
    p = min(1.0, r * lr / (1.0 - lr)) if lr > 0 else 0.0
    return p, r


def gilbert_elliott(rng: np.random.Generator, n: int, p: float, r: float) -> np.ndarray:
    """A (n,) loss mask (True = lost) from a two-state Gilbert-Elliott chain, every bad-state sample lost.

    Vectorised by runs: good runs ~ Geometric(p), bad runs ~ Geometric(r); the first state is drawn from the
    stationary distribution. The draws depend only on ``rng`` and (n, p, r).
    """
    mask = np.zeros(n, dtype=bool)
    if n == 0 or p <= 0.0:
        return mask
    if r >= 1.0 and p >= 1.0:
        mask[:] = True
        return mask
    pi_bad = p / (p + r)
    bad = bool(rng.uniform() < pi_bad)
    pos = 0
    while pos < n:
        # expected runs still needed, with margin; drawn in blocks
        m = int(max(16, 1.3 * (n - pos) * p * r / (p + r) + 16))
        good = rng.geometric(p, m) if p < 1.0 else np.ones(m, dtype=np.int64)
        badr = rng.geometric(r, m) if r < 1.0 else np.ones(m, dtype=np.int64)
        if bad:  # start in the bad state: the first run is a bad one
            lengths = np.column_stack([badr, good]).ravel()
        else:
            lengths = np.column_stack([good, badr]).ravel()
        ends = pos + np.cumsum(lengths)
        starts = ends - lengths
        lost = slice(0 if bad else 1, None, 2)
        for a, b in zip(starts[lost], ends[lost], strict=True):
            if a >= n:
                break
            mask[a:min(b, n)] = True
        pos = int(ends[-1])
    return mask


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of True in a 1-D mask: (first index, length) arrays."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    # one comparison pass over the mask (no padded copy, no int8 difference array): the indices where the
    # value changes alternate start, stop, start, ... once a leading True and a trailing True are closed
    edges = np.flatnonzero(m[1:] != m[:-1]) + 1
    if m[0]:
        edges = np.concatenate([[0], edges])
    if m[-1]:
        edges = np.concatenate([edges, [m.size]])
    starts, stops = edges[0::2], edges[1::2]
    return starts, stops - starts


def _lighting_factor(stream: str, lux: float) -> float:
    lux = max(lux, 1.0)
    if stream == "hand":  # camera tracking loses features in dim light
        return float(np.clip(math.sqrt(150.0 / lux), 1.0, 4.0))
    if stream == "depth":  # ambient IR washes out the projector / ToF signal in bright light; dim is fine
        return float(1.0 + (lux / 3000.0) ** 1.2)
    if stream == "gaze":  # sunlight IR glints
        return float(1.0 + (lux / 8000.0) ** 1.5)
    if stream == "head":  # inside-out tracking needs some light
        return float(np.clip(math.sqrt(50.0 / lux), 1.0, 3.0))
    return 1.0


def plan_session_loss(
    rng: np.random.Generator, profile: UserProfile, streams: tuple[str, ...], study_week: float, lux: float,
    config: SynthConfig,
) -> dict[str, StreamLoss]:
    """Bursty-loss parameters of a session's streams: base x user propensity x user trend x session factor x
    lighting (or ``config.bursty_loss`` as the mean rate, still varying by user and session)."""
    session = math.exp(config.dropout_session_sigma * float(rng.standard_normal())
                       - config.dropout_session_sigma**2 / 2)
    # the per-user log trend b ~ N(0, sd) makes exp(b w) log-normal with mean exp(sd^2 w^2 / 2): without the
    # correction the cohort's mean rate would grow by 50 % in 6 weeks (sd 0.15) and ``bursty_loss`` would not
    # be the mean rate of later weeks; with it every week's mean over users is the base rate
    trend = math.exp(profile.loss_trend_per_week * study_week - (config.dropout_trend_sd * study_week) ** 2 / 2)
    out: dict[str, StreamLoss] = {}
    for s in streams:
        base, burst = BASE.get(s, (0.01, 0.2))
        if config.bursty_loss is not None:
            base = config.bursty_loss
        rate = base * config.dropout_scale * profile.loss_propensity * trend * session * _lighting_factor(s, lux)
        out[s] = StreamLoss(loss_rate=float(np.clip(rate, 0.0, 0.9)), burst_s=burst)
    return out


def session_level(rng: np.random.Generator, has_eeg: bool, config: SynthConfig) -> tuple[bool, bool]:
    """Session-level dropout: (eeg_worn, mic_muted)."""
    u_eeg, u_mic = rng.uniform(size=2)
    return (has_eeg and bool(u_eeg >= config.eeg_off_prob)), bool(u_mic < config.mic_muted_prob)


@cache
def _flag_channels(modality: str) -> frozenset[str]:
    from xrdata.schemas import load

    return frozenset(c["name"] for c in load(modality)["channels"].get("canonical", []) if c.get("flag"))


def apply_mask(stream: Stream, mask: np.ndarray) -> None:
    """Mark the samples of ``stream`` where ``mask`` is True as lost, in place: NaN for float data (0 in the
    flag channels), 0 for integer data (depth frames)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return
    data = stream.data
    if data.dtype.kind != "f":
        data[idx] = 0
        return
    flags = _flag_channels(stream.modality)
    flag_pos = [k for k, c in enumerate(stream.channels) if c in flags] if data.ndim >= 2 else []
    if not flag_pos:
        data[idx] = np.nan
        return
    keep = [k for k in range(len(stream.channels)) if k not in flag_pos]
    sub = data[idx]
    sub[..., keep] = np.nan
    sub[..., flag_pos] = 0
    data[idx] = sub


def fast_head_intervals(ctx: Context, threshold_deg_s: float = FAST_HEAD_DEG_S) -> np.ndarray:
    """Intervals (K, 2) int64 ns where the head turns faster than ``threshold_deg_s``."""
    t = np.asarray(ctx.head_time_ns, dtype=np.int64)
    yp = np.asarray(ctx.head_yaw_pitch_deg, dtype=np.float64)
    if t.size < 3 or yp.shape[0] != t.size:
        return np.empty((0, 2), dtype=np.int64)
    dt = np.diff(t) * 1e-9
    dyaw = (np.diff(yp[:, 0]) + 180.0) % 360.0 - 180.0
    speed = np.hypot(dyaw * np.cos(np.radians(yp[1:, 1])), np.diff(yp[:, 1])) / np.maximum(dt, 1e-6)
    fast = np.concatenate([[False], speed > threshold_deg_s])
    starts, lengths = mask_runs(fast)
    if starts.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    stops = np.minimum(starts + lengths, t.size - 1)
    return np.column_stack([t[starts], t[stops]]).astype(np.int64)


def _event_mask(rng: np.random.Generator, t_ns: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    mask = np.zeros(t_ns.size, dtype=bool)
    if intervals.size == 0:
        return mask
    hit = rng.uniform(size=len(intervals)) < HEAD_BLUR_PROB
    tails = rng.exponential(HEAD_BLUR_TAIL_S, len(intervals)) * 1e9
    for (a, b), h, tail in zip(intervals, hit, tails, strict=True):
        if h:
            i, j = np.searchsorted(t_ns, [a, b + tail])
            mask[i:j] = True
    return mask


def inject(
    rng: np.random.Generator, stream: Stream, loss: StreamLoss, ctx: Context, *, key: str,
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """Apply bursty loss to ``stream`` in place. Returns (mask, run rows, parameter summary).

    ``key`` is the stream name: it selects the event coupling (hand and depth also lose during fast head turns)
    and the chain's step (:data:`SLOT_S`; p and r are per step, one step = ``ge_step_samples`` samples).
    """
    n = stream.n_samples
    rate = stream.rate_hz or (n / max((stream.time_ns[-1] - stream.time_ns[0]) * 1e-9, 1e-9) if n > 1 else 1.0)
    step = max(1, round(SLOT_S.get(key, 0.0) * rate))  # samples per step of the chain
    p, r = ge_params(loss.loss_rate, loss.burst_s, rate / step)
    ge = np.repeat(gilbert_elliott(rng, -(-n // step), p, r), step)[:n]
    t = stream.time_ns
    ev = _event_mask(rng, t, fast_head_intervals(ctx)) if key in ("hand", "depth") else np.zeros(n, dtype=bool)
    mask = ge | ev
    apply_mask(stream, mask)
    rows: list[dict[str, Any]] = []
    starts, lengths = mask_runs(mask)
    for a, k in zip(starts.tolist(), lengths.tolist(), strict=True):
        b = a + k
        cause = "head_motion" if ev[a:b].any() and not ge[a:b].all() else "burst"
        stop = int(t[b]) if b < n else int(t[-1]) + round(1e9 / rate)
        rows.append({"stream": key, "cause": cause, "first_sample": int(a), "n_samples": int(k),
                     "start_ns": int(t[a]), "stop_ns": stop})
    summary = {"ge_p": p, "ge_r": r, "ge_step_samples": step, "loss_rate_target": loss.loss_rate,
               "burst_s": loss.burst_s, "injected_frac": float(np.count_nonzero(mask)) / n if n else 0.0,
               "event_frac": float(np.count_nonzero(ev)) / n if n else 0.0}
    return mask, rows, summary


def scale_losses(losses: Mapping[str, StreamLoss], factor: float) -> dict[str, StreamLoss]:
    """All rates multiplied by ``factor`` (clipped), bursts unchanged."""
    return {k: StreamLoss(float(np.clip(v.loss_rate * factor, 0.0, 0.9)), v.burst_s) for k, v in losses.items()}


def session_plan_losses(plan: SessionPlan) -> dict[str, StreamLoss]:
    """The bursty-loss parameters stored in ``plan.meta["dropout"]``."""
    raw = plan.meta.get("dropout", {})
    return {k: StreamLoss(float(v["loss_rate"]), float(v["burst_s"])) for k, v in raw.items()}
