"""Gaze: fixations, main-sequence saccades, microsaccades, drift, blinks, pupil, tracker noise.

Mechanisms (REALISM.md E1-E12):

- **Scan path**: fixation targets from a task model in the body frame (yaw/pitch, degrees): free viewing /
  search (gamma-distributed steps, occasional jumps, bounded field), reading (word-to-word steps of ~2 deg,
  12 % regressions, return sweeps, page turns), target following (``Segment.targets``; for gaze_selection
  without targets a deterministic trial sequence of distractor glances and dwells on the selected target,
  see :func:`selection_targets`), gesture segments (the gaze follows the gesturing hand, from
  :func:`xrdata.synth.hand.hand_gaze_targets`). Target saccades have a 100-500 ms latency and undershoot by
  ~7 %, followed by a corrective saccade.
- **Fixation durations**: shifted log-normal (right-skewed), scaled by ``traits.gaze_style``, longer under
  cognitive load, shorter with arousal, shorter for reading.
- **Saccades**: peak velocity on the user's main sequence Vp = eta (1 - exp(-A / c)) (x 8 % log-normal
  scatter); velocity profile a beta-shaped bell, more skewed for larger amplitudes; duration = A / Vp x the
  profile's peak/mean ratio, which reproduces D ~ 2.2 A + 21 ms; slightly curved paths.
- **Fixational eye movements**: microsaccades (0.1-1 deg, in fixations > 350 ms, fewer under load),
  Ornstein-Uhlenbeck drift (0.05 deg, 0.5 s) and tremor.
- **Blinks**: renewal process per segment (``traits.blink_rate_per_min`` for neutral tasks, x 0.3 reading,
  x 1.6 talking, more with arousal); invalid interval log-normal (median 170 ms); the lid closes and reopens
  around it (openness); gaze, origin and pupil are NaN and valid flags 0 while the pupil is covered.
- **Pupil**: user resting diameter, light reflex (Moon-Spencer-like tanh of log illuminance; passthrough
  headsets compress ambient light), task-evoked dilation with load (+0.55 mm at load 1) and arousal
  (+0.35 mm), hippus (0.08 mm, < 0.5 Hz), a post-blink constriction dip, small anisocoria; clipped to
  1.5-8 mm.
- **Head coupling**: the gaze path lives in the body frame; the head takes part of large shifts
  (:func:`xrdata.synth.head.head_recruitment`), and the stream reports eye-in-head gaze (view space).
- **Device**: white precision noise with RMS sample-to-sample ``precision_deg`` on the combined ray
  (independent per eye, sqrt(2) larger), a calibration offset ``plan.gaze_offset_deg`` that grows during
  the session, sampling at the declared rate with timestamp jitter and a clock error of a few ppm.

Sensor parameters read (``SensorSpec.params``): ``precision_deg`` (RMS sample-to-sample of the combined ray,
degrees, default 0.1), ``offset_drift_deg_per_h`` (growth of the calibration offset, default 0.5),
``jitter_ms`` (timestamp jitter RMS, default 2 % of the sample interval), ``clock_ppm_sd`` (default 20).

Label imprints in gaze: cognitive load (larger pupil, fewer saccades and microsaccades, longer fixations),
affect/arousal (larger pupil, more blinks, shorter fixations), gaze_selection (dwell direction = the selected
target), gesture class (gaze follows the hand: swipe direction), speech/affect talking (blink rate x 1.6),
reading (small rightward saccades, return sweeps, fewer blinks), rest eyes closed (no valid gaze, openness 0),
activity (walking: gait-driven head motion is not compensated, light differs by place).

Outputs: the ``"gaze"`` stream (canonical channels, view space), events ``fixation`` / ``saccade`` (value:
amplitude in degrees) / ``blink``; ``ctx.blinks``, ``ctx.saccades`` (start, stop, amplitude, peak velocity)
and ``ctx.gaze_shifts`` (time, d_yaw, d_pitch of every saccadic gaze shift in the body frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from xrdata.model import Stream
from xrdata.synth.audio import gaussian_noise
from xrdata.synth.head import (
    direction_components,
    head_coupling,
    head_recruitment,
    minjerk_interp,
    segment_keyframes,
    smooth_noise,
    stable_rng,
    stable_uniform,
)
from xrdata.synth.types import Context, ModalityOutput, Segment, SensorSpec, SessionPlan

GAZE_CHANNELS = [
    "left_origin_x", "left_origin_y", "left_origin_z", "left_dir_x", "left_dir_y", "left_dir_z",
    "right_origin_x", "right_origin_y", "right_origin_z", "right_dir_x", "right_dir_y", "right_dir_z",
    "combined_origin_x", "combined_origin_y", "combined_origin_z",
    "combined_dir_x", "combined_dir_y", "combined_dir_z",
    "left_pupil_diameter", "right_pupil_diameter", "left_openness", "right_openness",
    "left_valid", "right_valid", "combined_valid",
]
GAZE_UNITS = ["m"] * 3 + ["1"] * 3 + ["m"] * 3 + ["1"] * 3 + ["m"] * 3 + ["1"] * 3 + ["mm", "mm"] + ["1"] * 5

#: Fixation durations per behaviour: shift (s), median of the log-normal part (s), log-sd.
FIXATION = {"scan": (0.06, 0.19, 0.5), "reading": (0.06, 0.16, 0.42), "dwell": (0.06, 0.21, 0.5)}
#: Fixation depth (m) per behaviour when targets do not give one.
DEPTH = {"scan": 2.0, "reading": 0.7, "dwell": 1.5, "gesture": 0.45}
#: Selected-target directions (yaw deg, positive left; pitch deg) for gaze_selection labels.
LABEL_DIRECTIONS = {
    "left": (20.0, 0.0), "right": (-20.0, 0.0), "up": (0.0, 12.0), "down": (0.0, -12.0), "center": (0.0, 0.0),
    "up_left": (14.0, 9.0), "up_right": (-14.0, 9.0), "down_left": (14.0, -9.0), "down_right": (-14.0, -9.0),
}
#: Scan field (yaw, pitch half-extents around the centre) for free viewing, degrees.
SCAN_CENTER = (0.0, -3.0)
SCAN_HALF = (30.0, 18.0)


def label_direction(label: str) -> tuple[float, float]:
    """Where the selected target of a gaze_selection label is (yaw, pitch deg); unknown labels get a
    stable position on a ring of 18 deg."""
    if label in LABEL_DIRECTIONS:
        return LABEL_DIRECTIONS[label]
    ang = 2 * np.pi * stable_uniform("gaze_selection_label", label)
    return 18.0 * float(np.cos(ang)), 11.0 * float(np.sin(ang))


def selection_targets(plan: SessionPlan, index: int) -> tuple[tuple[int, float, float, float], ...]:
    """The gaze targets of segment ``index``: ``Segment.targets`` when given, else (gaze_selection) a
    deterministic trial sequence: 1-2 glances at distractors, then a 1.2-2.2 s dwell on the selected target
    (the label). Shared with the hand generator (reaches go to targets dwelt on >= 1 s)."""
    seg = plan.segments[index]
    if seg.targets:
        return tuple((int(t), float(y), float(p), float(d)) for t, y, p, d in seg.targets)
    if seg.task != "gaze_selection":
        return ()
    rng = stable_rng(plan.user.key, plan.session_id, index, "selection")
    sel_yaw, sel_pitch = label_direction(seg.label)
    a, b = seg.start_ns * 1e-9, seg.stop_ns * 1e-9
    t = a + 0.4
    out: list[tuple[int, float, float, float]] = []
    while t < b - 0.8:
        for _ in range(int(rng.integers(1, 3))):
            ang = rng.uniform(0, 2 * np.pi)
            out.append((round(t * 1e9), 18.0 * float(np.cos(ang)), 11.0 * float(np.sin(ang)), 1.5))
            t += float(rng.lognormal(np.log(0.5), 0.3))
        out.append((round(t * 1e9), sel_yaw + float(rng.normal(0, 0.5)), sel_pitch + float(rng.normal(0, 0.5)), 1.5))
        t += float(rng.uniform(1.2, 2.2))
    return tuple(x for x in out if x[0] < seg.stop_ns)


# --------------------------------------------------------------------------------------------------------------
# Saccade kinematics


def saccade_shape(amplitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta-profile parameters (a, b) of the velocity bell: a peaked, near-symmetric bell for small saccades
    (peak/mean ~2.3) and a flatter, skewed one (longer deceleration, peak/mean ~1.95) for large saccades,
    whose velocity saturates."""
    # np.clip's values without its wrapper, which costs more than the work on the few saccades of a fixation run
    r = np.minimum(np.maximum(amplitude / 30.0, 0.0), 1.0)
    a = 4.5 - 2.0 * r
    return a, a * (1.0 + 0.45 * r)


def profile_peak_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Peak / mean velocity of a beta(a, b) profile (its maximum density)."""
    from scipy import special

    x = (a - 1.0) / (a + b - 2.0)
    return np.exp((a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - special.betaln(a, b))


#: Peak/mean ratio of :func:`saccade_shape` tabulated over amplitude 0-30 deg (constant above).
_RATIO_AMP = np.linspace(0.0, 30.0, 121)
_RATIO_TABLE: np.ndarray | None = None


def _peak_ratio(amplitude: np.ndarray) -> np.ndarray:
    global _RATIO_TABLE
    if _RATIO_TABLE is None:
        _RATIO_TABLE = profile_peak_ratio(*saccade_shape(_RATIO_AMP))
    return np.interp(amplitude, _RATIO_AMP, _RATIO_TABLE)


def saccade_kinematics(rng: np.random.Generator, amplitude: np.ndarray, eta: float, c: float) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Peak velocity (deg/s), duration (s) and profile (a, b) for saccades of ``amplitude`` degrees."""
    amp = np.maximum(amplitude, 0.05)
    vp = eta * (1.0 - np.exp(-amp / c)) * rng.lognormal(0.0, 0.08, amp.shape)
    a, b = saccade_shape(amp)
    dur = np.maximum(amp / vp * _peak_ratio(amp), 0.012)
    return vp, dur, a, b


def _angle(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Angle (deg) between yaw/pitch positions ``p`` and ``q`` (..., 2) (haversine)."""
    pr, qr = np.radians(p), np.radians(q)
    dp = 0.5 * (qr[..., 1] - pr[..., 1])
    dy = 0.5 * (qr[..., 0] - pr[..., 0])
    h = np.sin(dp) ** 2 + np.cos(pr[..., 1]) * np.cos(qr[..., 1]) * np.sin(dy) ** 2
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.minimum(np.maximum(h, 0.0), 1.0))))


# --------------------------------------------------------------------------------------------------------------
# Scan-path models


def _fold(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _scan_positions(rng: np.random.Generator, n: int, p0: np.ndarray) -> np.ndarray:
    amp = rng.gamma(1.5, 3.5, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    steps = np.stack([amp * np.cos(ang), amp * np.sin(ang)], axis=1)
    jump = rng.uniform(size=n) < 0.15
    fresh = np.stack([rng.uniform(-SCAN_HALF[0], SCAN_HALF[0], n) + SCAN_CENTER[0],
                      rng.uniform(-SCAN_HALF[1], SCAN_HALF[1], n) + SCAN_CENTER[1]], axis=1)
    group = np.cumsum(jump)
    base = np.concatenate([p0[None], fresh[jump]])[group]
    csum = np.cumsum(np.where(jump[:, None], 0.0, steps), axis=0)
    start_idx = np.concatenate([[0], np.flatnonzero(jump)])[group]
    offset = np.where((group > 0)[:, None], csum - csum[np.maximum(start_idx, 0)], csum)
    pos = base + offset
    pos[:, 0] = _fold(pos[:, 0], SCAN_CENTER[0] - SCAN_HALF[0], SCAN_CENTER[0] + SCAN_HALF[0])
    pos[:, 1] = _fold(pos[:, 1], SCAN_CENTER[1] - SCAN_HALF[1], SCAN_CENTER[1] + SCAN_HALF[1])
    return pos


def _reading_positions(rng: np.random.Generator, n: int) -> np.ndarray:
    line_len, x0, top, spacing, lines = 22.0, 11.0, 6.0, 1.3, 12
    regress = rng.uniform(size=n) < 0.12
    step = np.where(regress, -rng.gamma(2.0, 0.7, n), rng.gamma(4.0, 0.5, n))
    start = rng.uniform(0, line_len * lines)
    cum = np.maximum(start + np.cumsum(step), 0.0)
    line = np.floor(cum / line_len)
    x = cum - line * line_len
    yaw = x0 - x  # reading left to right = decreasing yaw
    pitch = top - spacing * np.mod(line, lines)
    return np.stack([yaw, pitch], axis=1)


def _local_positions(rng: np.random.Generator, n: int, center: np.ndarray, spread: float) -> np.ndarray:
    return center[None] + rng.normal(0.0, spread, (n, 2))


# --------------------------------------------------------------------------------------------------------------
# The fixation sequence


@dataclass
class _Sequence:
    """Fixations in time order; the saccade into fixation i spans [end[i-1], start[i])."""

    start: list[np.ndarray] = field(default_factory=list)
    end: list[np.ndarray] = field(default_factory=list)
    pos: list[np.ndarray] = field(default_factory=list)
    depth: list[np.ndarray] = field(default_factory=list)
    vp: list[np.ndarray] = field(default_factory=list)
    a: list[np.ndarray] = field(default_factory=list)
    b: list[np.ndarray] = field(default_factory=list)
    visible: list[np.ndarray] = field(default_factory=list)

    def last_pos(self) -> np.ndarray:
        return self.pos[-1][-1]

    def set_last_end(self, t: float) -> None:
        self.end[-1][-1] = t


class _Builder:
    def __init__(self, plan: SessionPlan, rng: np.random.Generator) -> None:
        self.plan = plan
        self.rng = rng
        self.eta = float(plan.user.saccade_eta)
        self.c = float(plan.user.saccade_c)
        self.style = float(plan.user.gaze_style)
        self.seq = _Sequence()
        p0 = np.array(SCAN_CENTER, dtype=np.float64)
        f0 = self._durations(1, "scan", None)[0]
        self.seq.start.append(np.zeros(1))
        self.seq.end.append(np.array([f0]))
        self.seq.pos.append(p0[None])
        self.seq.depth.append(np.array([DEPTH["scan"]]))
        for name in ("vp", "a", "b"):
            getattr(self.seq, name).append(np.ones(1))
        self.seq.visible.append(np.ones(1, dtype=bool))

    def _durations(self, n: int, kind: str, seg: Segment | None) -> np.ndarray:
        shift, median, sd = FIXATION[kind]
        scale = self.style
        if seg is not None:
            scale *= (1.0 + 0.35 * (seg.load - 0.3)) * (1.0 - 0.15 * (seg.arousal - 0.3))
        return shift + median * scale * self.rng.lognormal(0.0, sd, n)

    def fill(self, a: float, b: float, pos: np.ndarray, durs: np.ndarray, depth: float, visible: bool) -> None:
        """Saccade at ``a`` to pos[0], then fixations pos[1:]... until ``b``; the last fixation ends at b."""
        if b - a < 0.12:
            self.seq.set_last_end(b)
            return
        prev = np.concatenate([self.seq.last_pos()[None], pos[:-1]])
        amp = _angle(prev, pos)
        vp, dur, pa, pb = saccade_kinematics(self.rng, amp, self.eta, self.c)
        before = np.empty_like(durs)  # the fixation before each saccade: none before the first
        before[0] = 0.0
        before[1:] = durs[:-1]
        starts = a + np.cumsum(dur + before)
        k = int(np.searchsorted(starts, b - 0.1, side="right"))  # the fixations starting by b - 0.1 (starts rise)
        if k == 0:
            self.seq.set_last_end(b)
            return
        self.seq.set_last_end(a)
        ends = starts[:k] + durs[:k]
        ends[-1] = b
        self.seq.start.append(starts[:k])
        self.seq.end.append(ends)
        self.seq.pos.append(pos[:k])
        self.seq.depth.append(np.full(k, depth))
        self.seq.vp.append(vp[:k])
        self.seq.a.append(pa[:k])
        self.seq.b.append(pb[:k])
        self.seq.visible.append(np.full(k, visible))

    def _count(self, a: float, b: float, kind: str) -> int:
        return int((b - a) / (FIXATION[kind][0] + FIXATION[kind][1] * 0.8)) + 8

    def segment(self, index: int, seg: Segment | None, a: float, b: float) -> None:
        rng = self.rng
        if seg is not None and seg.eyes_closed:
            self.seq.set_last_end(b)  # the eyes rest behind closed lids
            self.seq.visible[-1][-1] = False
            return
        targets: tuple[tuple[int, float, float, float], ...] = ()
        spread = 0.45
        if seg is not None:
            targets = selection_targets(self.plan, index)
            if not targets and seg.task == "gesture":
                from xrdata.synth.hand import hand_gaze_targets

                targets = hand_gaze_targets(self.plan, index)
                spread = 0.8
        if targets:
            times = np.array([x[0] * 1e-9 for x in targets])
            lat = np.clip(rng.lognormal(np.log(0.2), 0.25, len(times)), 0.1, 0.5)
            onsets = np.maximum(times + lat, a)
            first = float(onsets[0]) if len(onsets) else b
            if first > a:
                self._free(seg, a, min(first, b))
            for i, (_, yaw, pitch, depth) in enumerate(targets):
                ta = float(onsets[i])
                tb = float(onsets[i + 1]) if i + 1 < len(targets) else b
                tb = min(tb, b)
                if ta >= tb:
                    continue
                tgt = np.array([yaw, pitch])
                n = self._count(ta, tb, "dwell")
                pos = _local_positions(rng, n, tgt, spread)
                vec = tgt - self.seq.last_pos()
                pos[0] = tgt - vec * rng.normal(0.07, 0.04) + rng.normal(0, 0.25, 2)  # undershoot
                durs = self._durations(n, "dwell", seg)
                durs[0] = rng.uniform(0.12, 0.2) if math.sqrt(vec.dot(vec)) > 8 else durs[0]  # |vec| (np.linalg.norm)
                self.fill(ta, tb, pos, durs, float(depth), True)
            return
        self._free(seg, a, b)

    def _free(self, seg: Segment | None, a: float, b: float) -> None:
        rng = self.rng
        if seg is not None and seg.reading:
            n = self._count(a, b, "reading")
            self.fill(a, b, _reading_positions(rng, n), self._durations(n, "reading", seg), DEPTH["reading"], True)
            return
        n = self._count(a, b, "scan")
        pos = _scan_positions(rng, n, self.seq.last_pos().copy())
        self.fill(a, b, pos, self._durations(n, "scan", seg), DEPTH["scan"], True)

    def build(self) -> dict[str, np.ndarray]:
        plan = self.plan
        dur = plan.duration_s
        periods: list[tuple[int, Segment | None, float, float]] = []
        t = 0.0
        for i, seg in enumerate(plan.segments):
            a, b = seg.start_ns * 1e-9, min(seg.stop_ns * 1e-9, dur)
            if a > t + 1e-9:
                periods.append((-1, None, t, a))
            if b > a:
                periods.append((i, seg, max(a, t), b))
            t = max(t, b)
        if t < dur:
            periods.append((-1, None, t, dur))
        first_end = float(self.seq.end[0][0])
        for idx, seg, a, b in periods:
            a = max(a, min(first_end, b)) if a == 0.0 else a
            if b > a:
                self.segment(idx, seg, a, b)
        s = self.seq
        out = {name: np.concatenate(getattr(s, name)) for name in ("start", "end", "pos", "depth", "vp", "a", "b",
                                                                  "visible")}
        out["end"][-1] = dur
        return out


# --------------------------------------------------------------------------------------------------------------
# Generator


def _blinks(plan: SessionPlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blink invalid intervals (K, 2) seconds and the per-segment rates (/min)."""
    base = float(plan.user.blink_rate_per_min)
    starts: list[np.ndarray] = []
    durs: list[np.ndarray] = []
    rates = []
    for seg in plan.segments:
        rate = base * (0.3 if seg.reading else 1.0) * (1.6 if seg.talking else 1.0)
        rate *= 1.0 + 0.5 * (seg.arousal - 0.3)
        rates.append(0.0 if seg.eyes_closed else rate)
        if seg.eyes_closed or rate <= 0:
            continue
        a, b = seg.start_ns * 1e-9, min(seg.stop_ns * 1e-9, plan.duration_s)
        mean = 60.0 / rate
        n = int((b - a) / mean * 2) + 6
        gaps = 0.5 + rng.gamma(2.0, max(mean - 0.5, 0.05) / 2.0, n)
        t = a + rng.uniform(0, mean) + np.concatenate([[0.0], np.cumsum(gaps[1:])])
        d = np.clip(rng.lognormal(np.log(0.17), 0.3, n), 0.06, 0.45)
        ok = t + d < b
        starts.append(t[ok])
        durs.append(d[ok])
    if not starts:
        return np.empty((0, 2)), np.asarray(rates)
    s = np.concatenate(starts)
    d = np.concatenate(durs)
    return np.stack([s, s + d], axis=1), np.asarray(rates)


def _interval_mask(t: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    if len(intervals) == 0:
        return np.zeros(len(t), dtype=bool)
    i = np.searchsorted(intervals[:, 0], t, side="right") - 1
    ok = i >= 0
    return ok & (t < intervals[np.maximum(i, 0), 1])


class _Pupil:
    """Pupil diameter model of a session (left eye, before measurement noise and clipping), mm."""

    FS = 20.0

    def __init__(self, plan: SessionPlan, rng: np.random.Generator, blinks: np.ndarray) -> None:
        from scipy import signal

        lux = max(float(plan.lighting_lux), 0.1)
        if plan.device.kind not in ("AR", "glasses"):
            lux = 300.0 * (lux / 300.0) ** 0.35  # passthrough / displays compress ambient light
        # the trait is the diameter at rest (load, arousal 0.3) in 300 lux
        self.base = float(plan.user.resting_pupil_mm) - 1.5 * float(np.tanh(0.45 * np.log10(lux / 300.0)))
        if plan.segments:
            vals = np.array([[s.load, s.arousal] for s in plan.segments])
            self.kt, self.kv = segment_keyframes(plan, vals, 2.5)
        else:
            self.kt, self.kv = np.zeros(1), np.full((1, 2), 0.3)
        fs = self.FS
        m = int(plan.duration_s * fs) + 4
        slow = smooth_noise(rng, m, fs, 0.5, channels=1, order=2)[:, 0] * 0.08  # hippus
        if len(blinks):  # post-blink constriction: n rho^n response peaking 0.35 s after the blink, -0.12 mm
            imp = np.zeros(m)
            np.add.at(imp, np.minimum((blinks[:, 0] * fs).astype(np.int64), m - 1), 1.0)
            rho = np.exp(-1.0 / (0.35 * fs))
            dip = signal.lfilter([0.0, 1.0], [1.0, -2 * rho, rho * rho], imp)
            slow += dip * (-0.12 * rho / (0.35 * fs * np.exp(-1.0)))
        self.slow = slow

    def at(self, t: np.ndarray) -> np.ndarray:
        la = minjerk_interp(t, self.kt, self.kv)
        d = self.base + 0.55 * (la[:, 0] - 0.3) + 0.35 * (la[:, 1] - 0.3)  # task-evoked: load, arousal
        return np.asarray(d + np.interp(t, np.arange(len(self.slow)) / self.FS, self.slow))


def generate_gaze(plan: SessionPlan, sensor: SensorSpec, rng: np.random.Generator, ctx: Context) -> ModalityOutput:
    """The ``"gaze"`` stream, fixation/saccade/blink events, and ``ctx.blinks/saccades/gaze_shifts``."""
    from scipy import signal, special

    rate = float(sensor.rate_hz)
    params = sensor.params
    precision = float(params.get("precision_deg", 0.1))
    user = plan.user
    duration = plan.duration_s

    # ---- sample times: declared rate, a clock error of a few ppm, jitter
    n = max(int(np.floor(duration * rate)), 2)
    ppm = rng.normal(0.0, float(params.get("clock_ppm_sd", 20.0)))
    jitter = float(params.get("jitter_ms", 20.0 / rate)) * 1e-3
    t = np.arange(n) / rate * (1.0 + ppm * 1e-6) + np.clip(rng.normal(0, jitter, n), -0.3 / rate, 0.3 / rate)
    t[0] = max(t[0], 0.0)
    t_ns = np.round(t * 1e9).astype(np.int64)
    t_ns = np.maximum.accumulate(t_ns)
    t = t_ns * np.float64(1e-9)

    # ---- the fixation sequence and the gaze path in the body frame
    seq = _Builder(plan, rng).build()
    fs, fe, pos, depth = seq["start"], seq["end"], seq["pos"], seq["depth"]
    nf = len(fs)
    # microsaccades: one in fixations > 350 ms (fewer under load), toward a random direction
    loads = np.array([s.load for s in plan.segments]) if plan.segments else np.array([0.3])
    seg_idx = plan.segment_at(np.round(fs * 1e9).astype(np.int64))
    fload = np.where(seg_idx >= 0, loads[np.maximum(seg_idx, 0)], 0.3)
    fdur = fe - fs
    has_ms = (fdur > 0.35) & (rng.uniform(size=nf) < np.clip((fdur - 0.3) * 2.0, 0, 1) * (1.15 - 0.6 * fload))
    ms_t = fs + rng.uniform(0.15, 1.0, nf) * np.maximum(fdur - 0.1, 0.0)
    ms_amp = np.clip(rng.lognormal(np.log(0.3), 0.4, nf), 0.08, 1.0)
    ms_ang = rng.uniform(0, 2 * np.pi, nf)
    ms_vec = np.where(has_ms[:, None], np.stack([np.cos(ms_ang), np.sin(ms_ang)], 1) * ms_amp[:, None], 0.0)
    ms_vp, ms_dur, _, _ = saccade_kinematics(rng, ms_amp, float(user.saccade_eta), float(user.saccade_c))
    pos_end = pos + ms_vec

    curve = rng.normal(0.0, 0.04, nf)  # saccade path curvature

    # ---- gaze shifts (body frame) and the head movements they recruit
    vis = seq["visible"]
    shift_d = np.diff(pos, axis=0)
    shifts = np.concatenate([[[0.0, pos[0, 0], pos[0, 1]]],
                             np.column_stack([np.round(fe[:-1] * 1e9), shift_d])]).astype(np.float64)
    steps = head_recruitment(shifts)

    # ---- calibration offset growing during the session
    off0 = np.asarray(plan.gaze_offset_deg, dtype=np.float64)
    growth = float(params.get("offset_drift_deg_per_h", 0.5))
    norm0 = float(np.linalg.norm(off0))
    ang = rng.uniform(0, 2 * np.pi)  # growth direction when there is no offset yet (always drawn)
    u = off0 / norm0 if norm0 > 1e-3 else np.array([np.cos(ang), np.sin(ang)])

    blinks, rates = _blinks(plan, rng)
    pupil_model = _Pupil(plan, rng, blinks)
    closed_segs = np.array([s.eyes_closed for s in plan.segments] + [False])
    arousal = np.array([s.arousal for s in plan.segments] + [0.3])
    lid = 0.86 + 0.12 * stable_uniform(user.key, "lid")
    ipd = 0.058 + 0.012 * stable_uniform(user.key, "ipd")
    aniso = 0.15 * (2 * stable_uniform(user.key, "anisocoria") - 1)
    s_eye = np.radians(precision / 2.0 * np.sqrt(2.0))
    rho = np.exp(-1.0 / (rate * 0.5))  # drift: Ornstein-Uhlenbeck, 0.05 deg, 0.5 s
    drift_state = np.zeros((1, 2))
    out = np.empty((n, len(GAZE_CHANNELS)), dtype=np.float32)

    def render(i0: int, i1: int) -> None:
        """Samples i0 .. i1-1 (sample-level work in chunks: bounded memory, cache-friendly)."""
        nonlocal drift_state
        tc = t[i0:i1]
        m = i1 - i0
        k = np.clip(np.searchsorted(fs, tc, side="right") - 1, 0, nf - 1)
        in_fix = tc < fe[k]
        g = pos[k]  # (a gather: a new array)
        ms_on = in_fix & has_ms[k] & (tc >= ms_t[k])  # microsaccade inside the fixation
        if ms_on.any():
            kk = k[ms_on]
            tau = np.clip((tc[ms_on] - ms_t[kk]) / ms_dur[kk], 0.0, 1.0)
            g[ms_on] += ms_vec[kk] * special.betainc(2.6, 2.8, tau)[:, None]
        sac = ~in_fix
        d = depth[k]
        if sac.any():
            ks = k[sac]
            nxt = np.minimum(ks + 1, nf - 1)
            span = np.maximum(fs[nxt] - fe[ks], 1e-9)
            tau = np.clip((tc[sac] - fe[ks]) / span, 0.0, 1.0)
            prog = special.betainc(seq["a"][nxt], seq["b"][nxt], tau)
            p0 = pos_end[ks]
            vec = pos[nxt] - p0
            perp = np.stack([-vec[:, 1], vec[:, 0]], axis=1)
            g[sac] = p0 + vec * prog[:, None] + perp * (curve[nxt] * np.sin(np.pi * tau))[:, None]
            d[sac] = depth[ks] + (depth[nxt] - depth[ks]) * prog
        # the sample-level noise, drawn at once from the quantile table (gaussian_noise: ~10x faster than
        # rng.normal): drift (2), tremor (2), two eyes' precision (4), openness (1), pupils (2)
        z = gaussian_noise(rng, 11 * m).reshape(11, m).astype(np.float64)
        drift, drift_state = signal.lfilter([np.sqrt(1 - rho * rho) * 0.05], [1.0, -rho],
                                            z[0:2].T, axis=0, zi=drift_state)
        g += drift + 0.002 * z[2:4].T  # drift and tremor
        # eye-in-head = R_head^T world, R_head = R_y(yaw) R_x(pitch) of the recruited head movement; the vectors
        # are kept as x, y, z rows (m,): no (m, 3) broadcasts, whose 3-long inner loops are slow
        head = np.radians(head_coupling(tc, steps))
        wx, wy, wz = direction_components(g[:, 0], g[:, 1])
        cy, sy = np.cos(head[:, 0]), np.sin(head[:, 0])
        x1 = cy * wx - sy * wz
        z1 = sy * wx + cy * wz
        cp, sp = np.cos(head[:, 1]), np.sin(head[:, 1])
        y2 = cp * wy + sp * z1
        z2 = -sp * wy + cp * z1
        # eye-in-head unit vector d0 = (x1, y2, z2) and its local tangent basis (unit vectors along increasing
        # yaw and pitch): e_yaw = (-cy, 0, sy), e_pitch = (sy y2, cp, cy y2)
        cp = np.sqrt(x1 * x1 + z2 * z2)  # cos(pitch); sin(pitch) = y2
        cy, sy = -z2 / cp, -x1 / cp  # cos(yaw), sin(yaw)
        grown = growth * tc / 3600.0
        off_yaw = np.radians(off0[0] + u[0] * grown) * cp  # a yaw offset is a yaw angle
        off_pitch = np.radians(off0[1] + u[1] * grown)
        # per-eye rays with vergence; offset and precision noise as small rotations in the tangent plane
        px, py, pz = x1 * d, y2 * d, z2 * d
        o = out[i0:i1]

        def ray(col: int, base: tuple[np.ndarray, ...], dyaw: np.ndarray, dpitch: np.ndarray) -> None:
            """o[:, col:col + 3] = the unit vector along base + dyaw e_yaw + dpitch e_pitch."""
            vx = base[0] - dyaw * cy + dpitch * (sy * y2)
            vy = base[1] + dpitch * cp
            vz = base[2] + dyaw * sy + dpitch * (cy * y2)
            norm = np.sqrt(vx * vx + vy * vy + vz * vz)
            o[:, col], o[:, col + 1], o[:, col + 2] = vx / norm, vy / norm, vz / norm

        noise = z[4:8] * s_eye  # yaw, pitch of the left eye, then of the right
        for e, sign in enumerate((-1.0, 1.0)):
            ox = sign * ipd / 2
            vx = px - ox
            norm = np.sqrt(vx * vx + py * py + pz * pz)
            o[:, 6 * e] = ox
            o[:, 6 * e + 1 : 6 * e + 3] = 0.0
            ray(6 * e + 3, (vx / norm, py / norm, pz / norm), off_yaw + noise[2 * e], off_pitch + noise[2 * e + 1])
        o[:, 12:15] = 0.0
        ray(15, (x1, y2, z2), off_yaw + (noise[0] + noise[2]) / 2.0, off_pitch + (noise[1] + noise[3]) / 2.0)
        # blinks, eyes closed, openness
        blink = _interval_mask(tc, blinks)
        sidx = plan.segment_at(t_ns[i0:i1])
        closed = closed_segs[sidx]  # -1 indexes the trailing False
        invalid = blink | closed
        openness = np.clip(lid * (0.95 + 0.1 * arousal[sidx]) + 0.01 * z[8], 0.0, 1.0)
        if len(blinks):
            bi = np.clip(np.searchsorted(blinks[:, 0], tc, side="left"), 0, len(blinks) - 1)  # next blink
            before = blinks[bi, 0] - tc
            closing = (before > 0) & (before < 0.06)
            openness[closing] *= 0.3 + 0.7 * (0.5 + 0.5 * np.cos(np.pi * (1 - before[closing] / 0.06)))
            pj = np.clip(np.searchsorted(blinks[:, 1], tc, side="right") - 1, 0, len(blinks) - 1)  # reopening
            after = tc - blinks[pj, 1]
            opening = (after >= 0) & (after < 0.12)
            openness[opening] *= 0.3 + 0.7 * (0.5 - 0.5 * np.cos(np.pi * after[opening] / 0.12))
        openness[blink] = 0.05
        openness[closed] = np.clip(rng.normal(0.02, 0.01, int(closed.sum())), 0.0, 1.0)
        pupil = pupil_model.at(tc)
        o[:, 18] = np.clip(pupil + aniso / 2 + 0.01 * z[9], 1.5, 8.0)
        o[:, 19] = np.clip(pupil - aniso / 2 + 0.01 * z[10], 1.5, 8.0)
        o[:, 20] = openness
        o[:, 21] = openness
        o[invalid, :20] = np.nan
        o[:, 22:25] = np.where(invalid, 0.0, 1.0)[:, None]

    chunk = 65536
    for i0 in range(0, n, chunk):
        render(i0, min(n, i0 + chunk))

    stream = Stream("gaze", "gaze", t_ns, out, GAZE_CHANNELS, GAZE_UNITS, rate_hz=rate,
                    meta={"reference_space": "view", "source": "xrdata.synth", "precision_deg": precision})

    # ---- events and context
    sac_start = fe[:-1]
    sac_stop = fs[1:]
    amp = _angle(pos_end[:-1], pos[1:])
    show = vis[1:] & vis[:-1]
    sac_rows = np.column_stack([np.round(sac_start * 1e9), np.round(sac_stop * 1e9), amp, seq["vp"][1:]])[show]
    fix_rows = np.column_stack([np.round(fs * 1e9), np.round((fe - fs) * 1e9)])[vis].astype(np.int64)
    blink_ns = np.round(blinks * 1e9).astype(np.int64).reshape(-1, 2)
    sac_ns = sac_rows[:, :2].astype(np.int64)  # (rounded already)
    events: list[tuple[int, int, str, str]] = [
        *zip(*fix_rows.T.tolist(), repeat("fixation"), repeat("")),
        *zip(sac_ns[:, 0].tolist(), (sac_ns[:, 1] - sac_ns[:, 0]).tolist(), repeat("saccade"),
             [f"{x:.2f}" for x in sac_rows[:, 2].tolist()]),
        *zip(blink_ns[:, 0].tolist(), (blink_ns[:, 1] - blink_ns[:, 0]).tolist(), repeat("blink"), repeat("")),
    ]
    events.sort(key=itemgetter(0))
    ctx.blinks = blink_ns
    ctx.saccades = sac_rows
    ctx.gaze_shifts = shifts
    ctx.head_steps = steps
    truth: dict[str, Any] = {
        "precision_deg": precision,
        "rate_hz": rate,
        "clock_ppm": float(ppm),
        "gaze_offset_start_deg": off0.tolist(),
        "gaze_offset_end_deg": (off0 + u * growth * float(t[-1]) / 3600.0).tolist(),
        "pupil_baseline_mm": pupil_model.base,
        "blink_rate_per_min_by_segment": rates.tolist(),
        "microsaccades": int(has_ms.sum()),
        "ms_peak_velocity_median": float(np.median(ms_vp)) if nf else 0.0,
        "head_recruitment_steps": steps,
    }
    return ModalityOutput(streams=[stream], events=events, truth=truth)
