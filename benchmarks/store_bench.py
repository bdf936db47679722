"""Write/read throughput of ``xrdata.Store`` against plain ``zarr`` with the same arrays, in the same run.

One session (default 10 minutes) of realistic synthetic XR data:

    gaze   200 Hz  (N, 7)            float32  fixations + saccades + blinks, jittered timestamps
    hand    90 Hz  (N, 2, 26, 9)     float32  smooth articulated motion, tracking loss, jittered timestamps
    audio   48 kHz (N, 1)            float32  speech-like source-filter signal from 16-bit PCM, regular
    depth   30 Hz  (N, 192, 256)     uint16   rendered room + boxes, moving camera, depth-dependent noise,
                                              0-holes (out of range, edges, dropouts), jittered timestamps
    imu      1 kHz (N, 6)            float32  accel + gyro quantised to the sensor LSB, regular
    eeg    500 Hz  (N, 32)           float32  1/f + alpha, ~20 uV, 0.1 uV ADC step, 10-20 names, regular

Measured (see ``benchmarks/README.md`` for the numbers and how to read them):

1. write: ``Store.write(recording)`` into a fresh local store (validation, time base, catalog, fsync'd
   metadata: everything) vs the anchor: ``zarr.create_array`` + ``arr[...] = data`` of the same arrays with
   the shapes, chunks, shards, codecs and fill values read back from what xrdata wrote (time arrays where
   xrdata keeps one, and the events arrays). Alternating order, median of ``--reps``.
2. read: random 10 s windows; ``Store.read(user, session, start_ns, stop_ns)`` then ``.data`` and
   ``.time_ns`` of every stream vs plain zarr reading the same index ranges from precomputed indices
   (opening the arrays per window; a second anchor keeps the array handles open across windows).
   Wall-clock and process CPU time (all threads) are both reported: on a shared machine the CPU time is the
   steadier of the two.
3. compression ratio per modality (uncompressed bytes / bytes of the stream's folder on disk), files per
   session-hour (a 60-minute session of the non-depth streams written for real, its samples repeated from
   the 10-minute session; depth from the encoding rule, which is checked against the 10-minute folder).
4. a sweep over chunk target bytes x blosc-zstd clevel x shuffle per modality (plain zarr, same sharding
   rule as the store), from which the defaults in ``xrdata/encoding.py`` are picked.

Usage::

    python benchmarks/store_bench.py                 # full run (10-min session, sweep): ~6 min on 2 idle-ish cores
    python benchmarks/store_bench.py --quick         # 1-min session, no sweep, no hour run: smoke test
    python benchmarks/store_bench.py --json out.json # also write every number as JSON
    python benchmarks/store_bench.py --update-readme # rewrite this script's tables in benchmarks/README.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr
from _common import cpu_model, md_table, settle, update_readme  # benchmarks/_common.py
from zarr.codecs import BloscCodec, BloscShuffle
from zarr.core.metadata import ArrayV3Metadata
from zarr.storage import LocalStore

import xrdata
from xrdata.encoding import CHUNK_BYTES, SHARD_BYTES, choose_encoding, compressor
from xrdata.model import EVENTS_SCHEMA

USER, SESSION = "bench", "s0001"
WINDOW_S = 10.0
NS = 1_000_000_000

# --------------------------------------------------------------------------------------------------------
# Synthetic session. Every generator is vectorised numpy; the signals are shaped to compress the way real
# sensor data does (band-limited motion, sensor noise at the real noise floor, ADC quantisation where the
# real device has one), not white noise and not constants.
# --------------------------------------------------------------------------------------------------------


def _regular_ns(n: int, rate: int, start_ns: int = 0) -> np.ndarray:
    """Sample k at start + round(k * 1e9 / rate): an exactly regular clock (what an ADC delivers)."""
    k = np.arange(n, dtype=np.int64)
    return start_ns + (k * NS * 2 + rate) // (2 * rate)


def _jittered_ns(rng: np.random.Generator, n: int, rate: float, jitter_ns: float, start_ns: int = 0) -> np.ndarray:
    """Timestamps as headsets deliver them: a nominal clock a few ppm off plus per-sample jitter."""
    period = NS / rate * (1.0 + 25e-6)
    jit = np.clip(rng.normal(0.0, jitter_ns, n), -0.3 * period, 0.3 * period)
    return start_ns + np.round(np.arange(n) * period + jit).astype(np.int64)


def _lowpass(rng: np.random.Generator, n: int, c: int, fs: float, fc: float, order: int = 2) -> np.ndarray:
    """(n, c) Gaussian noise low-passed at ``fc`` Hz (FFT shaping), unit standard deviation, float64."""
    x = np.fft.rfft(rng.standard_normal((n, c)), axis=0)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    x *= (1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order)))[:, None]
    y = np.fft.irfft(x, n, axis=0)
    return y / (y.std(axis=0, keepdims=True) + 1e-12)


def _pink(rng: np.random.Generator, n: int, c: int, fs: float, f0: float = 0.5) -> np.ndarray:
    """(n, c) 1/f ("pink") noise above ``f0`` Hz, unit standard deviation, float64."""
    x = np.fft.rfft(rng.standard_normal((n, c)), axis=0)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    x *= (1.0 / np.sqrt(np.maximum(f, f0)))[:, None]
    x[0] = 0
    y = np.fft.irfft(x, n, axis=0)
    return y / (y.std(axis=0, keepdims=True) + 1e-12)


def _bursts(rng: np.random.Generator, n: int, fs: float, every_s: float, dur_s: tuple[float, float]) -> np.ndarray:
    """Boolean (n,) mask of random bursts: on average one every ``every_s`` s, lasting U(dur_s) s."""
    mask = np.zeros(n, dtype=bool)
    k = rng.poisson(n / fs / every_s)
    starts = rng.integers(0, n, k)
    lens = (rng.uniform(*dur_s, k) * fs).astype(np.int64)
    for s, ln in zip(starts, lens, strict=True):
        mask[s : s + max(1, ln)] = True
    return mask


def make_gaze(rng: np.random.Generator, seconds: float) -> xrdata.Stream:
    fs = 200.0
    n = int(seconds * fs)
    t = np.arange(n) / fs
    # Fixations (gamma-distributed durations) on random targets, joined by saccades on the main sequence.
    m = int(seconds / 0.15) + 10
    dur = 0.08 + rng.gamma(2.0, 0.11, m)
    starts = np.concatenate([[0.0], np.cumsum(dur)[:-1]])
    yaw = np.clip(rng.normal(0, 12, m), -35, 35)
    pitch = np.clip(rng.normal(-3, 8, m), -25, 25)
    k = np.searchsorted(starts, t, side="right") - 1
    prev = np.maximum(k - 1, 0)
    amp = np.hypot(yaw[k] - yaw[prev], pitch[k] - pitch[prev])
    sac = (0.021 + 0.0022 * amp) * (k > 0)
    w = np.clip((t - starts[k]) / np.maximum(sac, 1e-9), 0, 1)
    w = 0.5 - 0.5 * np.cos(np.pi * w)
    drift = _lowpass(rng, n, 2, fs, 1.0) * 0.15  # fixational drift, degrees
    noise = rng.normal(0, 0.25, (n, 2))  # tracker noise, degrees
    yw = np.radians(yaw[prev] + (yaw[k] - yaw[prev]) * w + drift[:, 0] + noise[:, 0])
    pt = np.radians(pitch[prev] + (pitch[k] - pitch[prev]) * w + drift[:, 1] + noise[:, 1])
    dirs = np.stack([np.sin(yw) * np.cos(pt), np.sin(pt), -np.cos(yw) * np.cos(pt)], axis=1)
    pupil_base = 3.6 + 0.8 * _lowpass(rng, n, 1, fs, 0.05)[:, 0]
    pupils = pupil_base[:, None] + np.array([0.0, 0.08]) + rng.normal(0, 0.03, (n, 2))
    open_ = np.clip(0.92 + 0.03 * _lowpass(rng, n, 2, fs, 0.3) + rng.normal(0, 0.01, (n, 2)), 0, 1)
    # Blinks every ~4 s (~150 ms): eyelids close smoothly, the eye's rays and pupils become NaN (missing).
    nb = rng.poisson(seconds / 4.0)
    for b, bd in zip(rng.uniform(0, seconds, nb), rng.uniform(0.1, 0.25, nb), strict=True):
        i, j = int(b * fs), int((b + bd) * fs)
        shape = np.sin(np.linspace(0, np.pi, max(1, j - i))) ** 0.5
        open_[i:j] *= (1.0 - shape[: open_[i:j].shape[0], None])
    closed = open_ < 0.2
    both = closed.all(axis=1)
    dirs[both] = np.nan
    pupils[closed] = np.nan
    data = np.concatenate([dirs, pupils, open_], axis=1).astype(np.float32)
    chans = ["combined_dir_x", "combined_dir_y", "combined_dir_z", "left_pupil_diameter",
             "right_pupil_diameter", "left_openness", "right_openness"]
    units = ["1", "1", "1", "mm", "mm", "1", "1"]
    return xrdata.Stream("gaze", "gaze", _jittered_ns(rng, n, fs, 150_000), data, chans, units, rate_hz=fs,
                         meta={"device": "bench eye tracker"})


# Hand skeleton: per finger, the x offset on the palm and the segment lengths (m) of its joints after the
# metacarpal base, in OpenXR joint order. The thumb has no intermediate joint.
_FINGERS = [  # (x, base_z, [segment lengths to proximal, (intermediate), distal, tip])
    (-0.035, -0.01, [0.04, 0.035, 0.03]),  # thumb: metacarpal -> proximal -> distal -> tip
    (-0.022, -0.03, [0.06, 0.04, 0.025, 0.02]),  # index: metacarpal -> proximal -> intermediate -> distal -> tip
    (0.000, -0.03, [0.065, 0.045, 0.028, 0.022]),
    (0.020, -0.03, [0.06, 0.042, 0.026, 0.02]),
    (0.038, -0.025, [0.055, 0.035, 0.02, 0.018]),
]
_RADII = np.array([0.02, 0.018] + [0.015, 0.012, 0.01, 0.008] + [0.012, 0.01, 0.009, 0.008, 0.007] * 4,
                  dtype=np.float32)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def _quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    u, w = q[..., :3], q[..., 3:]
    tt = 2.0 * np.cross(u, v)
    return v + w * tt + np.cross(u, tt)


def _axis_quat(axis: int, angle: np.ndarray) -> np.ndarray:
    q = np.zeros((*angle.shape, 4))
    q[..., axis] = np.sin(angle / 2)
    q[..., 3] = np.cos(angle / 2)
    return q


def make_hand(rng: np.random.Generator, seconds: float) -> xrdata.Stream:
    fs = 90.0
    n = int(seconds * fs)
    out = np.empty((n, 2, 26, 9), dtype=np.float32)
    for h, side in enumerate((-1.0, 1.0)):
        wrist = np.array([0.2 * side, 1.1, -0.35]) + _lowpass(rng, n, 3, fs, 0.4) * [0.12, 0.08, 0.1]
        ang = _lowpass(rng, n, 3, fs, 0.3) * [0.5, 0.6, 0.4]
        q_hand = _quat_mul(_quat_mul(_axis_quat(1, ang[:, 0]), _axis_quat(0, ang[:, 1] - 0.4)),
                           _axis_quat(2, ang[:, 2]))
        flex = 0.5 + 0.5 * np.tanh(1.5 * _lowpass(rng, n, 5, fs, 0.5))  # per-finger curl in [0, 1]
        pos = np.empty((n, 26, 3))
        quat = np.empty((n, 26, 4))
        pos[:, 0], quat[:, 0] = 0.0, q_hand  # palm at the hand origin
        pos[:, 1] = _quat_rotate(q_hand, np.array([0.0, 0.0, 0.06]))  # wrist behind the palm
        quat[:, 1] = q_hand
        j = 2
        for f, (x, z0, segs) in enumerate(_FINGERS):
            local = np.tile(np.array([x, 0.0, z0]), (n, 1))  # metacarpal base
            angle = np.zeros(n)
            for s, length in enumerate([0.0, *segs]):
                if s:
                    angle = angle + flex[:, f] * (0.9 if s < len(segs) else 0.6)
                    step = np.stack([np.zeros(n), -np.sin(angle) * length, -np.cos(angle) * length], axis=1)
                    local = local + step
                q = _quat_mul(q_hand, _axis_quat(0, -angle))
                pos[:, j], quat[:, j] = _quat_rotate(q_hand, local), q
                j += 1
        pos += wrist[:, None, :]
        pos += rng.normal(0, 0.0015, pos.shape)  # tracker jitter, 1.5 mm
        quat += rng.normal(0, 0.004, quat.shape)
        quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
        conf = np.where(_bursts(rng, n, fs, 60.0, (0.3, 1.5)), 0.5, 1.0)  # low-confidence stretches
        lost = _bursts(rng, n, fs, 40.0, (0.2, 3.0))  # hand out of the tracking volume
        out[:, h, :, 0:3] = pos
        out[:, h, :, 3:7] = quat
        out[:, h, :, 7] = _RADII
        out[:, h, :, 8] = conf[:, None]
        out[lost, h, :, :8] = np.nan
        out[lost, h, :, 8] = 0.0
    units = ["m", "m", "m", "1", "1", "1", "1", "m", "1"]
    chans = ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"]
    return xrdata.Stream("hands", "hand", _jittered_ns(rng, n, fs, 300_000, 3_000_000), out, chans, units,
                         rate_hz=fs, meta={"reference_space": "local"})


def make_audio(rng: np.random.Generator, seconds: float) -> xrdata.Stream:
    """Speech-like: a glottal source (f0 90-220 Hz) through two alternating vowel spectra (12 harmonics each,
    as one-period wavetables), under a ~4 Hz syllable envelope with pauses, fricative noise bursts and room
    noise at -54 dBFS, quantised to 16-bit PCM (what a headset microphone delivers) and stored as float32."""
    fs = 48_000
    n = int(seconds * fs)
    blk = 480  # 10 ms control rate
    nb = -(-n // blk)
    f0 = 150.0 * np.exp(0.25 * _lowpass(rng, nb, 1, 100.0, 0.5)[:, 0])
    vowel = (0.5 + 0.5 * np.tanh(2 * _lowpass(rng, nb, 1, 100.0, 3.0)[:, 0])).astype(np.float32)
    syl = np.maximum(0.0, np.sin(2 * np.pi * np.cumsum(4.0 + 1.5 * _lowpass(rng, nb, 1, 100.0, 0.5)[:, 0]) / 100.0))
    talking = _lowpass(rng, nb, 1, 100.0, 0.15)[:, 0] > -0.2
    env = (syl**0.7 * talking * (0.25 + 0.1 * _lowpass(rng, nb, 1, 100.0, 0.2)[:, 0].clip(-2, 2))).astype(np.float32)
    fric = ((syl < 0.2) * talking * (rng.random(nb) < 0.3) * 0.03).astype(np.float32)
    table_n = 4096
    ph = 2 * np.pi * np.arange(table_n) / table_n
    spectra = {"a": [1.0, 0.9, 0.8, 0.9, 0.5, 0.3, 0.2, 0.25, 0.2, 0.1, 0.08, 0.05],
               "i": [1.0, 0.4, 0.15, 0.1, 0.1, 0.15, 0.3, 0.35, 0.25, 0.15, 0.1, 0.05]}
    tab_a, tab_i = (sum(a / (h + 1) ** 0.5 * np.sin((h + 1) * ph) for h, a in enumerate(spec)).astype(np.float32)
                    for spec in spectra.values())
    out = np.empty(n, dtype=np.float32)
    cycles0 = 0.0
    step = blk * 2000  # 20 s blocks bound the float64 temporaries
    for b0 in range(0, n, step):
        b1 = min(n, b0 + step)
        ctl = slice(b0 // blk, -(-b1 // blk))

        def rep(a: np.ndarray, ctl: slice = ctl, m: int = b1 - b0) -> np.ndarray:
            return np.repeat(a[ctl], blk)[:m]

        cyc = cycles0 + np.cumsum(rep(f0) / fs)
        cycles0 = float(cyc[-1])
        idx = ((cyc % 1.0) * table_n).astype(np.intp)
        mix = rep(vowel)
        voiced = tab_i[idx] + mix * (tab_a[idx] - tab_i[idx])
        noise = rng.standard_normal(b1 - b0, dtype=np.float32)
        hiss = np.diff(noise, prepend=np.float32(0.0))  # high-passed noise for fricatives
        x = rep(env) * voiced + rep(fric) * hiss + np.float32(0.002) * noise
        out[b0:b1] = np.clip(np.rint(x * np.float32(32767.0)), -32768, 32767) / np.float32(32768.0)  # 16-bit PCM
    return xrdata.Stream("audio", "audio", _regular_ns(n, fs), out[:, None], ["mono"], ["1"], rate_hz=fs,
                         meta={"source_dtype": "int16"})


# Depth scene (world, OpenXR: +Y up, -Z forward, metres): a room and three boxes, seen from a head-mounted
# camera that looks around slowly. Faces are axis-aligned rectangles: (axis, value, {other axis: (lo, hi)}).
_Face = tuple[int, float, dict[int, tuple[float, float]]]
_ROOM: list[_Face] = [(0, -2.6, {}), (0, 2.4, {}), (1, 0.0, {}), (1, 2.7, {}), (2, -4.8, {}), (2, 1.6, {})]
_BOXES: list[_Face] = [
    (1, 0.75, {0: (-0.6, 0.6), 2: (-2.1, -1.3)}),  # table top
    (2, -1.3, {0: (-0.6, 0.6), 1: (0.65, 0.75)}),  # table edge
    (2, -3.6, {0: (1.4, 2.4), 1: (0.0, 1.9)}),  # cabinet front
    (0, 1.4, {1: (0.0, 1.9), 2: (-4.8, -3.6)}),  # cabinet side
    (1, 0.5, {0: (-1.9, -1.1), 2: (-3.1, -2.3)}),  # box top
    (2, -2.3, {0: (-1.9, -1.1), 1: (0.0, 0.5)}),  # box front
    (0, -1.1, {1: (0.0, 0.5), 2: (-3.1, -2.3)}),  # box side
]
_H, _W, _FX = 192, 256, 211.0
_MAX_RANGE_MM = 5000.0


def _render_depth(cam: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free z-depth (mm, float32, 0 where nothing is hit) of frames with camera centres ``cam`` (F, 3)
    and rotations ``rot`` (F, 3, 3) (camera -> world), and the mask of depth discontinuities (F, H, W)."""
    v, u = np.mgrid[0:_H, 0:_W].astype(np.float32)
    X = (u - _W / 2 + 0.5) / _FX
    Y = -(v - _H / 2 + 0.5) / _FX
    frames = np.empty((cam.shape[0], _H, _W), dtype=np.float32)
    edges = np.zeros((cam.shape[0], _H, _W), dtype=bool)
    inv = np.empty((_H, _W), dtype=np.float32)
    tmp = np.empty((_H, _W), dtype=np.float32)
    box_corners = [
        np.array(np.meshgrid(*[[value] if a == axis else bounds[a] for a in range(3)], indexing="ij"),
                 dtype=np.float32).reshape(3, -1).T
        for axis, value, bounds in _BOXES
    ]
    for f in range(cam.shape[0]):
        R, C = rot[f].astype(np.float32), cam[f].astype(np.float32)
        D = [R[a, 0] * X + R[a, 1] * Y - R[a, 2] for a in range(3)]  # world direction per unit z-depth
        # Inside a convex room the visible wall is the one with the largest positive inverse depth, and the
        # inverse depth of a plane is affine in the image coordinates: 1/s = D_axis / (value - C_axis).
        inv.fill(0)
        for axis, value, _ in _ROOM:
            np.multiply(D[axis], np.float32(1.0 / (value - C[axis])), out=tmp)
            np.maximum(inv, tmp, out=inv)
        best = np.divide(np.float32(1.0), inv, out=np.zeros_like(inv), where=inv > 0)
        for (axis, value, bounds), corners in zip(_BOXES, box_corners, strict=True):
            # Only the pixels inside the projected bounding box of the rectangle can see it.
            pc = (corners - C) @ R  # camera coordinates (R is camera -> world)
            if (pc[:, 2] > -0.05).any():
                v0, v1, u0, u1 = 0, _H, 0, _W
            else:
                uu = pc[:, 0] / -pc[:, 2] * _FX + _W / 2
                vv = -pc[:, 1] / -pc[:, 2] * _FX + _H / 2
                u0, u1 = max(0, int(uu.min()) - 1), min(_W, int(uu.max()) + 2)
                v0, v1 = max(0, int(vv.min()) - 1), min(_H, int(vv.max()) + 2)
                if u0 >= u1 or v0 >= v1:
                    continue
            win = (slice(v0, v1), slice(u0, u1))
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (value - C[axis]) / D[axis][win]
                ok = s > 0
                for b, (lo, hi) in bounds.items():
                    p = C[b] + s * D[b][win]
                    ok &= (p >= lo) & (p <= hi)
            sub = best[win]
            np.copyto(sub, s, where=ok & ((s < sub) | (sub == 0)))
        best *= np.float32(1000.0)
        frames[f] = best
        e = edges[f]
        e[:, 1:] = np.abs(best[:, 1:] - best[:, :-1]) > 80  # the sensor drops pixels at discontinuities
        e[1:, :] |= np.abs(best[1:, :] - best[:-1, :]) > 80
        e[:, :-1] |= e[:, 1:]
    return frames, edges


def make_depth(rng: np.random.Generator, seconds: float) -> xrdata.Stream:
    """256 x 192 uint16 mm at 30 fps (an iPhone-LiDAR-like sensor). Keyframes are rendered at 10 Hz and
    blended in between (mixed pixels at depth edges come out of the blend); per-pixel noise grows with depth
    (0.6 mm + 1.6e-6 z^2, z in mm); pixels beyond 5 m, at depth discontinuities and 0.5 % random dropouts are
    0 (invalid). The Gaussian noise is drawn from an 8 M-value pool at a random offset per frame (a fresh draw
    per pixel costs ~30 ns here); the depth under it differs per frame, so no byte pattern repeats."""
    fs = 30.0
    n = int(seconds * fs)
    key_every = 3
    nk = n // key_every + 2
    kt = np.arange(nk) * key_every / fs
    look = _lowpass(rng, nk, 3, fs / key_every, 0.08)
    yaw = 0.5 * look[:, 0] + 0.15 * np.sin(2 * np.pi * kt / 45.0)
    pitch = -0.2 + 0.12 * look[:, 1]
    cam = np.stack([0.25 * look[:, 2], 1.6 + 0.03 * np.sin(2 * np.pi * kt / 3.0), -0.2 + 0.2 * look[:, 0]], axis=1)
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    zeros, ones = np.zeros(nk), np.ones(nk)
    r_yaw = np.stack([np.stack([cy, zeros, sy], 1), np.stack([zeros, ones, zeros], 1),
                      np.stack([-sy, zeros, cy], 1)], 1)
    r_pitch = np.stack([np.stack([ones, zeros, zeros], 1), np.stack([zeros, cp, -sp], 1),
                        np.stack([zeros, sp, cp], 1)], 1)
    keys, edges = _render_depth(cam, r_yaw @ r_pitch)
    invalid = edges | (keys == 0)
    pool = rng.standard_normal(1 << 23, dtype=np.float32)
    px = _H * _W
    offsets = rng.integers(0, pool.size - px, n)
    out = np.empty((n, _H, _W), dtype=np.uint16)
    w = (np.arange(key_every) / key_every).astype(np.float32)[:, None, None]
    z = np.empty((key_every, _H, _W), dtype=np.float32)
    for k in range(n // key_every + 1):
        f0 = k * key_every
        m = min(key_every, n - f0)
        if m <= 0:
            break
        np.multiply(keys[k + 1] - keys[k], w, out=z)
        z += keys[k]
        sigma = np.float32(1.6e-6) * z * z + np.float32(0.6)
        for i in range(m):
            z[i] += sigma[i] * pool[offsets[f0 + i] : offsets[f0 + i] + px].reshape(_H, _W)
        z[(z > _MAX_RANGE_MM) | invalid[k] | invalid[k + 1]] = 0
        np.rint(z, out=z)
        out[f0 : f0 + m] = z[:m]
    flat = out.reshape(-1)
    flat[rng.integers(0, flat.size, flat.size // 200)] = 0  # 0.5 % random dropouts
    intr = {"fx": _FX, "fy": _FX, "cx": _W / 2, "cy": _H / 2}
    return xrdata.Stream("depth", "depth", _jittered_ns(rng, n, fs, 400_000, 120_000_000), out, ["depth"], ["mm"],
                         rate_hz=fs, meta={"intrinsics": intr})


def make_imu(rng: np.random.Generator, seconds: float) -> xrdata.Stream:
    fs = 1000
    n = int(seconds * fs)
    ang = _lowpass(rng, n, 3, fs, 0.6) * [0.35, 0.15, 0.08]  # yaw, pitch, roll (rad): head motion
    turns = np.cumsum(_bursts(rng, n, fs, 8.0, (0.2, 0.5)) * rng.choice([-1.0, 1.0]) * 1.5 / fs)
    ang[:, 0] += turns
    gyro = np.gradient(ang, 1.0 / fs, axis=0)[:, [1, 0, 2]]  # body rates, roughly (pitch->x, yaw->y, roll->z)
    gyro += rng.normal(0, 0.004, (n, 3)) + np.array([0.002, -0.001, 0.0015])  # noise density + bias
    g = 9.81
    pitch, roll = ang[:, 1], ang[:, 2]
    accel = np.stack([g * np.sin(roll), g * np.cos(pitch) * np.cos(roll), -g * np.sin(pitch)], axis=1)
    accel += _lowpass(rng, n, 3, fs, 3.0) * 0.25 + rng.normal(0, 0.02, (n, 3))  # linear accel + noise
    lsb_a, lsb_g = 8 * g / 32768, np.radians(2000) / 32768  # +-8 g, +-2000 dps, 16-bit
    data = np.concatenate([np.round(accel / lsb_a) * lsb_a, np.round(gyro / lsb_g) * lsb_g], axis=1)
    chans = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]
    units = ["m/s^2"] * 3 + ["rad/s"] * 3
    return xrdata.Stream("imu", "motion", _regular_ns(n, fs, 1_000_000), data.astype(np.float32), chans, units,
                         rate_hz=float(fs))


EEG_CHANNELS = ["Fp1", "Fp2", "AF3", "AF4", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3",
                "Cz", "C4", "T8", "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "PO3", "PO4", "O1",
                "Oz", "O2"]


def make_eeg(rng: np.random.Generator, seconds: float) -> xrdata.Stream:
    fs = 500
    n = int(seconds * fs)
    c = len(EEG_CHANNELS)
    mixing = rng.normal(0, 1, (8, c))
    x = _pink(rng, n, 8, fs) @ mixing / np.sqrt(8) + 0.6 * _pink(rng, n, c, fs)  # correlated 1/f background
    x += 0.3 * rng.standard_normal((n, c))  # amplifier / electrode noise
    posterior = np.array([1.0 if ch[0] in "PO" else 0.3 for ch in EEG_CHANNELS])
    alpha_env = np.clip(1.0 + _lowpass(rng, n, 1, fs, 0.2)[:, 0], 0, None)
    alpha_phase = 2 * np.pi * np.cumsum(10.0 + 0.5 * _lowpass(rng, n, 1, fs, 0.1)[:, 0]) / fs
    x += 1.2 * (alpha_env * np.sin(alpha_phase))[:, None] * posterior
    x += 0.05 * np.sin(2 * np.pi * 50.0 * np.arange(n) / fs)[:, None]  # mains
    uv = 15.0 * x
    blinks = _bursts(rng, n, fs, 4.0, (0.2, 0.3)).astype(float)
    uv[:, :4] += 80.0 * np.convolve(blinks, np.hanning(100) / 50, mode="same")[:, None]  # frontal blink artefacts
    lsb = 0.1  # uV, a 24-bit amplifier's usual resolution setting
    volts = (np.round(uv / lsb) * lsb * 1e-6).astype(np.float32)
    return xrdata.Stream("eeg", "eeg", _regular_ns(n, fs, 2_000_000), volts, EEG_CHANNELS, ["V"] * c,
                         rate_hz=float(fs), meta={"reference": "Cz"})


MAKERS: dict[str, Callable[[np.random.Generator, float], xrdata.Stream]] = {
    "gaze": make_gaze, "hands": make_hand, "audio": make_audio, "depth": make_depth, "imu": make_imu,
    "eeg": make_eeg,
}


def make_session(minutes: float, seed: int = 0, streams: tuple[str, ...] = tuple(MAKERS),
                 session: str = SESSION) -> xrdata.Recording:
    seconds = minutes * 60.0
    out = []
    for i, name in enumerate(streams):
        out.append(MAKERS[name](np.random.default_rng([seed, i]), seconds))
    edges = np.arange(0, int(seconds) + 1, 30, dtype=np.int64) * NS
    tasks = ["browse", "type", "gesture", "watch"]
    events = pl.DataFrame(
        {"time_ns": edges[:-1], "duration_ns": np.diff(edges), "label": ["task/activity"] * (edges.size - 1),
         "value": [tasks[i % 4] for i in range(edges.size - 1)]},
        schema=EVENTS_SCHEMA,
    )
    return xrdata.Recording(USER, session, out, events=events,
                            meta={"device": "bench headset", "tasks": ["activity"]})


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _tree_files(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


@contextmanager
def _timer(wall: list[float], cpu: list[float]) -> Iterator[None]:
    """Wall-clock and process CPU seconds (all threads: zarr's codec threads included). CPU time barely
    moves when other processes load the machine, so it is reported beside the wall clock."""
    t, c = time.perf_counter(), time.process_time()
    yield
    wall.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)


def _session_arrays(rec: xrdata.Recording) -> dict[str, np.ndarray]:
    """Every array a session folder can hold, by its path below the session, with its in-memory source."""
    arrays: dict[str, np.ndarray] = {}
    for name, s in rec.streams.items():
        arrays[f"streams/{name}/data"] = s.data
        arrays[f"streams/{name}/time"] = s.time_ns
    for col in EVENTS_SCHEMA:
        values = rec.events[col].to_numpy()
        arrays[f"events/{col}"] = values.astype(str) if values.dtype == object else values
    return arrays


def _array_specs(root: Path, session_rel: str, arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """create_array keyword arguments that reproduce each array xrdata wrote (read from its metadata)."""
    store = LocalStore(root, read_only=True)
    specs = {}
    for rel in arrays:
        if not (root / session_rel / rel / "zarr.json").exists():
            continue  # e.g. the time array of a stream with a compact regular time base
        a = zarr.open_array(store, path=f"{session_rel}/{rel}", mode="r")
        meta = a.metadata
        assert isinstance(meta, ArrayV3Metadata), f"{rel} is not a zarr v3 array"
        specs[rel] = {
            "shape": a.shape, "dtype": meta.data_type, "chunks": a.chunks, "shards": a.shards,
            "filters": a.filters, "compressors": a.compressors, "serializer": a.serializer,
            "fill_value": meta.fill_value, "dimension_names": meta.dimension_names,
        }
    return specs


def _metadata_doc(root: Path, path: str) -> dict[str, Any]:
    doc = json.loads((root / path / "zarr.json").read_text())
    doc.pop("attributes", None)
    return doc


def anchor_write(root: Path, session_rel: str, arrays: dict[str, np.ndarray], specs: dict[str, dict[str, Any]]) -> None:
    """The anchor: plain zarr creates and fills the same arrays with the same metadata."""
    store = LocalStore(root)
    for rel, spec in specs.items():
        a = zarr.create_array(store, name=f"{session_rel}/{rel}", overwrite=True, **spec)
        if a.shape[0]:
            a[...] = arrays[rel]


# --------------------------------------------------------------------------------------------------------
# 1. write
# --------------------------------------------------------------------------------------------------------


def bench_write(rec: xrdata.Recording, work: Path, reps: int) -> dict[str, Any]:
    """Median write time of each side over ``reps`` rounds: xrdata ("x"), the anchor ("a") and xrdata with
    ``durable=True`` ("d"); the order rotates (x a d, a d x, d x a ...). The anchor's array specs are read from
    the first xrdata write, so that one always goes first."""
    session_rel = f"users/{rec.user_id}/{rec.session_id}"
    arrays = _session_arrays(rec)
    specs: dict[str, dict[str, Any]] = {}
    wall: dict[str, list[float]] = {"x": [], "a": [], "d": []}
    cpu: dict[str, list[float]] = {"x": [], "a": [], "d": []}
    for r in range(reps):
        order = ("x", "a", "d")[r % 3:] + ("x", "a", "d")[: r % 3]
        last = r == reps - 1
        for side in order:
            root = _fresh(work / {"x": "xrdata", "a": "anchor", "d": "durable"}[side])
            if side == "a":
                root.mkdir(parents=True)
                settle()
                with _timer(wall[side], cpu[side]):
                    anchor_write(root, session_rel, arrays, specs)
            else:
                store = xrdata.open_store(root, durable=side == "d")
                settle()
                with _timer(wall[side], cpu[side]):
                    store.write(rec)
                if not specs:
                    specs = _array_specs(root, session_rel, arrays)
            if not last:
                shutil.rmtree(root)
    t_x, t_a, c_x, c_a = wall["x"], wall["a"], cpu["x"], cpu["a"]
    # The anchor really is the same arrays: identical zarr metadata (minus attributes) for every array.
    for rel in specs:
        a = _metadata_doc(work / "xrdata", f"{session_rel}/{rel}")
        b = _metadata_doc(work / "anchor", f"{session_rel}/{rel}")
        assert a == b, f"anchor metadata differs for {rel}:\n{a}\n{b}"
    nbytes = sum(arrays[rel].nbytes for rel in specs if rel.startswith("streams/"))
    med_x, med_a = statistics.median(t_x), statistics.median(t_a)
    return {
        "bytes": nbytes, "reps": reps, "xrdata_s": t_x, "anchor_s": t_a, "xrdata_cpu_s": c_x, "anchor_cpu_s": c_a,
        "xrdata_mb_s": nbytes / 1e6 / med_x, "anchor_mb_s": nbytes / 1e6 / med_a,
        "durable_s": wall["d"], "durable_cpu_s": cpu["d"],
        "ratio": med_a / med_x,  # throughput ratio xrdata / anchor
        "ratio_best": min(t_a) / min(t_x),
        "ratio_cpu": statistics.median(c_a) / statistics.median(c_x),
        "arrays": sorted(specs),
        "encoding": {rel: {"chunks": list(s["chunks"]), "shards": None if s["shards"] is None else list(s["shards"]),
                           "compressors": [c.to_dict() for c in s["compressors"]]}
                     for rel, s in specs.items() if rel.startswith("streams/")},
    }


def bench_small(work: Path, counts: tuple[int, ...], reps: int = 15) -> list[dict[str, Any]]:
    """Small sessions: ``Store.write`` of a 2-second session (every stream) into a user that
    already holds ``count`` sessions, against plain zarr writing the same arrays into a fresh folder (its cost
    does not depend on other sessions); alternating, ``reps`` each, per count. Per-session costs (documents,
    lock, catalog partition, array metadata) dominate here, and the ones that grow with a user's sessions show."""
    rec = make_session(2.0 / 60.0, seed=3)
    arrays = _session_arrays(rec)
    root = _fresh(work / "small")
    store = xrdata.open_store(root)
    specs: dict[str, dict[str, Any]] = {}
    rows, n = [], 0
    for count in counts:
        while n < count:
            rec.session_id = f"f{n:05d}"
            store.write(rec)
            n += 1
        t_x: list[float] = []
        c_x: list[float] = []
        t_a: list[float] = []
        c_a: list[float] = []
        for r in range(reps):
            rec.session_id = f"t{count}x{r}"
            settle()
            with _timer(t_x, c_x):
                store.write(rec)
            if not specs:
                specs = _array_specs(root, f"users/{rec.user_id}/{rec.session_id}", arrays)
            anchor = _fresh(work / "small-anchor")
            anchor.mkdir()
            settle()
            with _timer(t_a, c_a):
                anchor_write(anchor, f"users/{rec.user_id}/{rec.session_id}", arrays, specs)
            files = _tree_files(root / f"users/{rec.user_id}/{rec.session_id}")
            store.delete(rec.user_id, rec.session_id)
        med = statistics.median
        rows.append({"sessions": count, "xrdata_ms": med(t_x) * 1e3, "anchor_ms": med(t_a) * 1e3,
                     "xrdata_cpu_ms": med(c_x) * 1e3, "anchor_cpu_ms": med(c_a) * 1e3, "reps": reps,
                     "mb": sum(x.data.nbytes for x in rec.streams.values()) / 1e6,
                     "files": files})
        print(f"  small session at {count} sessions: xrdata {rows[-1]['xrdata_ms']:.1f} ms, "
              f"plain zarr {rows[-1]['anchor_ms']:.1f} ms", flush=True)
    shutil.rmtree(root)
    return rows


# --------------------------------------------------------------------------------------------------------
# 2. read random 10 s windows
# --------------------------------------------------------------------------------------------------------


def _window_plan(rec: xrdata.Recording, start: int, stop: int, stored: set[str]) -> list[dict[str, Any]]:
    """What the anchor is told for one window: per stream the index range and how to get its time axis."""
    plan = []
    for name, s in rec.streams.items():
        t = s.time_ns
        i, j = (int(x) for x in np.searchsorted(t, [start, stop], side="left"))
        entry: dict[str, Any] = {"name": name, "i": i, "j": j, "time": f"streams/{name}/time" in stored}
        if not entry["time"]:
            entry["t0"], entry["rate"] = int(t[0]), int(s.rate_hz or 0)
        plan.append(entry)
    return plan


def _anchor_read(arrays: Callable[[str], Any], plan: list[dict[str, Any]], start: int, stop: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in plan:
        i, j = p["i"], p["j"]
        data = np.asarray(arrays(f"streams/{p['name']}/data")[i:j])
        if p["time"]:
            tt = np.asarray(arrays(f"streams/{p['name']}/time")[i:j])
        else:  # regular stream: the anchor knows start and rate
            k = np.arange(i, j, dtype=np.int64)
            tt = p["t0"] + (k * NS * 2 + p["rate"]) // (2 * p["rate"])
        out[p["name"]] = (tt, data)
    ev = {c: np.asarray(arrays(f"events/{c}")[:]) for c in EVENTS_SCHEMA}
    keep = ((ev["time_ns"] + ev["duration_ns"] > start) | (ev["time_ns"] >= start)) & (ev["time_ns"] < stop)
    out["events"] = {c: v[keep] for c, v in ev.items()}
    return out


def bench_read(rec: xrdata.Recording, work: Path, n_windows: int, seed: int = 1) -> dict[str, Any]:
    session_rel = f"users/{rec.user_id}/{rec.session_id}"
    xroot, aroot = work / "xrdata", work / "anchor"
    stored = {rel for rel in _session_arrays(rec) if (aroot / session_rel / rel / "zarr.json").exists()}
    t_end = min(int(s.time_ns[-1]) for s in rec.streams.values())
    t_begin = max(int(s.time_ns[0]) for s in rec.streams.values())
    rng = np.random.default_rng(seed)
    win = int(WINDOW_S * NS)
    starts = rng.integers(t_begin, t_end - win, n_windows)
    plans = [_window_plan(rec, int(s), int(s) + win, stored) for s in starts]
    store = xrdata.open_store(xroot, mode="r")
    astore = LocalStore(aroot, read_only=True)
    handles: dict[str, Any] = {}

    def open_each(rel: str) -> Any:
        return zarr.open_array(astore, path=f"{session_rel}/{rel}", mode="r")

    def open_once(rel: str) -> Any:
        if rel not in handles:
            handles[rel] = open_each(rel)
        return handles[rel]

    def xr(start: int) -> dict[str, Any]:
        r = store.read(rec.user_id, rec.session_id, start_ns=start, stop_ns=start + win)
        return {name: (s.time_ns, s.data) for name, s in r.streams.items()} | {"events": r.events}

    for rel in stored:  # warm the open-once handles outside the timing
        open_once(rel)
    wall: dict[str, list[float]] = {"x": [], "a": [], "h": []}
    cpu: dict[str, list[float]] = {"x": [], "a": [], "h": []}
    window_bytes = []
    for w, s0 in enumerate(starts):
        s = int(s0)
        sides: list[tuple[str, Callable[[], Any]]] = [
            ("x", partial(xr, s)),
            ("a", partial(_anchor_read, open_each, plans[w], s, s + win)),
            ("h", partial(_anchor_read, open_once, plans[w], s, s + win)),
        ]
        if w % 2:
            sides.reverse()
        res = {}
        for side, fn in sides:
            with _timer(wall[side], cpu[side]):
                res[side] = fn()
        if w < 5:  # same samples, same bytes
            for name in rec.streams:
                for k in (0, 1):
                    np.testing.assert_array_equal(res["x"][name][k], res["a"][name][k])
            assert res["x"]["events"].height == res["a"]["events"]["time_ns"].size
        window_bytes.append(sum(res["a"][n][1].nbytes for n in rec.streams))
    med = {k: statistics.median(v) * 1e3 for k, v in wall.items()}
    mcpu = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
    return {
        "windows": n_windows, "window_s": WINDOW_S, "window_mb": statistics.mean(window_bytes) / 1e6,
        "xrdata_ms": med["x"], "anchor_ms": med["a"], "anchor_open_once_ms": med["h"],
        "ratio": med["x"] / med["a"], "ratio_open_once": med["x"] / med["h"],
        "xrdata_cpu_ms": mcpu["x"], "anchor_cpu_ms": mcpu["a"], "anchor_open_once_cpu_ms": mcpu["h"],
        "ratio_cpu": mcpu["x"] / mcpu["a"], "ratio_open_once_cpu": mcpu["x"] / mcpu["h"],
        "xrdata_ms_all": [x * 1e3 for x in wall["x"]], "anchor_ms_all": [x * 1e3 for x in wall["a"]],
    }


# --------------------------------------------------------------------------------------------------------
# 3. compression and files
# --------------------------------------------------------------------------------------------------------


def compression(rec: xrdata.Recording, root: Path) -> list[dict[str, Any]]:
    base = root / "users" / rec.user_id / rec.session_id / "streams"
    rows = []
    for name, s in rec.streams.items():
        folder = base / name
        data_disk = _tree_bytes(folder / "data")
        disk = _tree_bytes(folder)
        has_time = (folder / "time").exists()
        rows.append({
            "stream": name, "modality": s.modality, "shape": list(s.data.shape), "dtype": str(s.data.dtype),
            "rate_hz": s.rate_hz, "data_mb": s.data.nbytes / 1e6, "time_stored": has_time,
            "disk_mb": disk / 1e6, "time_disk_mb": _tree_bytes(folder / "time") / 1e6 if has_time else 0.0,
            "ratio_data": s.data.nbytes / data_disk,  # codec ratio of the samples
            "ratio_stream": (s.data.nbytes + s.time_ns.nbytes) / disk,  # the in-memory stream vs its folder
            "files": _tree_files(folder),
        })
    return rows


def _stream_files(n: int, sample_nbytes: int, time_array: bool) -> int:
    """Files of one committed stream folder by the store's encoding rule: the stream group's zarr.json,
    each array's zarr.json and one file per shard (assumes no shard is entirely fill value)."""
    enc = choose_encoding(sample_nbytes, n)
    files = 2 + -(-n // (enc.shard_samples or enc.chunk_samples))
    if time_array:
        tenc = choose_encoding(8, n)
        files += 1 + -(-n // (tenc.shard_samples or tenc.chunk_samples))
    return files


def hour_session(rec: xrdata.Recording, minutes: float) -> xrdata.Recording:
    """A 60-minute session of every stream but depth: the samples of ``rec`` repeated to fill the hour (one
    repeat is far longer than a chunk, so compression does not see it) on a fresh, continuous 60-minute clock
    of the same kind (regular or jittered). Generating an hour from scratch would cost ~1-2 min here."""
    reps = max(1, round(60.0 / minutes))
    rng = np.random.default_rng(11)
    streams = []
    for name, s in rec.streams.items():
        if name == "depth":
            continue
        n = s.n_samples * reps
        rate = float(s.rate_hz or 1.0)
        t0 = int(s.time_ns[0])
        if rate.is_integer() and np.array_equal(s.time_ns[:100], _regular_ns(100, int(rate), t0)):
            t = _regular_ns(n, int(rate), t0)
        else:
            t = _jittered_ns(rng, n, rate, float(np.std(np.diff(s.time_ns[:10_000]))) / 2**0.5, t0)
        streams.append(xrdata.Stream(name, s.modality, t, np.concatenate([s.data] * reps), s.channels, s.units,
                                     rate_hz=s.rate_hz, meta=s.meta))
    return xrdata.Recording(rec.user_id, "hour", streams, events=rec.events, meta=rec.meta)


def files_per_hour(rec: xrdata.Recording, root: Path, work: Path, hour: bool) -> dict[str, Any]:
    sess = root / "users" / rec.user_id / rec.session_id
    minutes = (max(int(s.time_ns[-1]) for s in rec.streams.values()) + 1) / NS / 60
    counted = _tree_files(sess)
    per_stream = {name: _tree_files(sess / "streams" / name) for name in rec.streams}
    fixed = counted - sum(per_stream.values())  # session zarr.json, streams/zarr.json, events arrays
    # The encoding rule must predict the measured 10-minute folder exactly, or the extrapolation is void.
    predicted = {name: _stream_files(s.n_samples, s.data[0].nbytes, (sess / "streams" / name / "time").exists())
                 for name, s in rec.streams.items()}
    hour_rule = fixed + sum(
        _stream_files(round(s.n_samples * 60 / minutes), s.data[0].nbytes, (sess / "streams" / name / "time").exists())
        for name, s in rec.streams.items()
    )
    out: dict[str, Any] = {
        "session_minutes": minutes, "files_session": counted, "files_per_stream": per_stream, "files_fixed": fixed,
        "rule_matches_measured": predicted == per_stream, "naive_x_scale": counted * 60 / minutes,
        "per_hour_rule": hour_rule,
    }
    if hour:  # a real 60-minute session of every stream but depth (10.6 GB of frames), depth by the rule
        t = time.perf_counter()
        big = hour_session(rec, minutes)
        gen_s = time.perf_counter() - t
        hroot = _fresh(work / "hour")
        store = xrdata.open_store(hroot)
        t = time.perf_counter()
        store.write(big)
        write_s = time.perf_counter() - t
        hsess = hroot / "users" / big.user_id / "hour"
        measured = _tree_files(hsess)
        depth = rec.streams.get("depth")
        depth_files = 0 if depth is None else _stream_files(
            round(depth.n_samples * 60 / minutes), depth.data[0].nbytes, (sess / "streams" / "depth" / "time").exists())
        out |= {
            "hour_measured_without_depth": measured, "hour_depth_by_rule": depth_files,
            "per_hour_measured": measured + depth_files, "hour_gen_s": gen_s, "hour_write_s": write_s,
            "hour_write_mb_s": sum(s.data.nbytes for s in big.streams.values()) / 1e6 / write_s,
            "hour_files_per_stream": {n: _tree_files(hsess / "streams" / n) for n in big.streams},
        }
        del big
        shutil.rmtree(hroot)
    return out


# --------------------------------------------------------------------------------------------------------
# 4. encoding sweep (plain zarr, the store's chunk/shard rule, one stream at a time)
# --------------------------------------------------------------------------------------------------------

SWEEP_CHUNKS = (256 << 10, 1 << 20, 4 << 20)
SWEEP_CLEVELS = (1, 3, 5)
SWEEP_SHUFFLES = (BloscShuffle.shuffle, BloscShuffle.bitshuffle)
#: Seconds of each stream used by the sweep (depth is 98 KB a frame: 30 s = 88 MB keeps the sweep short).
SWEEP_SECONDS = {"gaze": 600.0, "hands": 120.0, "audio": 120.0, "depth": 30.0, "imu": 300.0, "eeg": 300.0}
SWEEP_SHARDS = (None, 16 << 20, 64 << 20, 256 << 20)


def _write_plain(root: Path, d: np.ndarray, chunk: int, shard: int | None, codec: BloscCodec) -> tuple[float, float]:
    """(wall, CPU) seconds to create and fill one array with plain zarr."""
    store = LocalStore(_fresh(root))
    settle()
    wall: list[float] = []
    cpu: list[float] = []
    with _timer(wall, cpu):
        a = zarr.create_array(store, name="x", shape=d.shape, dtype=d.dtype, chunks=(chunk, *d.shape[1:]),
                              shards=None if shard is None else (shard, *d.shape[1:]), compressors=[codec],
                              fill_value=np.nan if d.dtype.kind == "f" else 0)
        a[...] = d
    return wall[0], cpu[0]


def _read_windows(root: Path, n: int, rate: float, starts: np.ndarray) -> tuple[float, float]:
    """Median (wall, CPU) ms to open the array and read a 10 s window at each start fraction."""
    store = LocalStore(root, read_only=True)
    w = min(n, int(rate * WINDOW_S))
    wall: list[float] = []
    cpu: list[float] = []
    for s in starts:
        i = int(s * (n - w))
        with _timer(wall, cpu):
            np.asarray(zarr.open_array(store, path="x", mode="r")[i : i + w])
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def sweep(rec: xrdata.Recording, work: Path, n_windows: int = 9) -> dict[str, Any]:
    rows = []
    starts = np.random.default_rng(3).random(n_windows)
    targets: list[tuple[str, np.ndarray, float]] = []
    for name, s in rec.streams.items():
        n = min(s.n_samples, int(SWEEP_SECONDS.get(name, 120.0) * (s.rate_hz or 1.0)))
        targets.append((name, np.ascontiguousarray(s.data[:n]), float(s.rate_hz or 1.0)))
    for name in ("gaze", "hands", "depth"):  # jittered timestamps: the store keeps a time array
        if name in rec.streams:
            s = rec.streams[name]
            targets.append((f"{name}.time", s.time_ns, float(s.rate_hz or 1.0)))
    for name, d, rate in targets:
        sample = int(d[0].nbytes)
        for cb in SWEEP_CHUNKS:
            enc = choose_encoding(sample, d.shape[0], chunk_bytes=cb)
            for clevel in SWEEP_CLEVELS:
                for shuffle in SWEEP_SHUFFLES:
                    codec = BloscCodec(cname="zstd", clevel=clevel, shuffle=shuffle, typesize=d.itemsize)
                    root = work / "sweep"
                    reps = 1 if d.nbytes > 50e6 else 2  # small arrays: best of 2 against scheduler noise
                    w = [_write_plain(root, d, enc.chunk_samples, enc.shard_samples, codec) for _ in range(reps)]
                    read_ms, read_cpu_ms = _read_windows(root, d.shape[0], rate, starts)
                    rows.append({
                        "stream": name, "mb": d.nbytes / 1e6, "chunk_kib": cb >> 10, "clevel": clevel,
                        "shuffle": shuffle.value, "write_mb_s": d.nbytes / 1e6 / min(x[0] for x in w),
                        "write_mb_cpu_s": d.nbytes / 1e6 / min(x[1] for x in w),
                        "read_ms": read_ms, "read_cpu_ms": read_cpu_ms,
                        "ratio": d.nbytes / _tree_bytes(root / "x"),
                    })
    shard_rows = []
    if "depth" in rec.streams:
        d = np.ascontiguousarray(rec.streams["depth"].data[: (120 * 30)])
        codec = compressor(d.dtype)
        enc = choose_encoding(int(d[0].nbytes), d.shape[0])
        per_hour = 108_000
        for shard_bytes in SWEEP_SHARDS:
            shard = None if shard_bytes is None else choose_encoding(
                int(d[0].nbytes), 10**9, shard_bytes=shard_bytes).shard_samples
            root = work / "sweep"
            sec, cpu = _write_plain(root, d, enc.chunk_samples, shard, codec)
            read_ms, read_cpu_ms = _read_windows(root, d.shape[0], 30.0, starts)
            rows_per_file = shard or enc.chunk_samples
            shard_rows.append({
                "shard_mib": None if shard_bytes is None else shard_bytes >> 20, "mb": d.nbytes / 1e6,
                "write_mb_s": d.nbytes / 1e6 / sec, "write_mb_cpu_s": d.nbytes / 1e6 / cpu,
                "read_ms": read_ms, "read_cpu_ms": read_cpu_ms,
                "files_per_hour": -(-per_hour // rows_per_file), "files_measured": _tree_files(root / "x") - 1,
            })
    shutil.rmtree(work / "sweep", ignore_errors=True)
    return {"rows": rows, "shards": shard_rows}


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    import numcodecs

    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
        "zarr": zarr.__version__, "numcodecs": numcodecs.__version__, "xrdata": xrdata.__version__,
        "platform": platform.platform(), "loadavg_start": os.getloadavg(),
        "chunk_bytes": CHUNK_BYTES, "shard_bytes": SHARD_BYTES, "clevel": compressor(np.dtype("f4")).clevel,
    }


def _trio(rows: list[dict[str, Any]], key: str, fmt: str) -> str:
    return " / ".join(format(r[key], fmt) for r in sorted(rows, key=lambda r: r["clevel"]))


def report(res: dict[str, Any]) -> str:
    """The results as Markdown tables (printed, and written into benchmarks/README.md with --update-readme)."""
    m = res["machine"]
    out = [f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}, numpy {m['numpy']}, zarr {m['zarr']}, "
           f"numcodecs {m['numcodecs']}; load average {m['loadavg_start'][0]:.1f} at start, "
           f"{m.get('loadavg_end', [float('nan')])[0]:.1f} at end (the machine is shared). "
           f"Session: {res['minutes']:g} min, {res['session_mb']:.0f} MB of samples; "
           f"CHUNK_BYTES = {m['chunk_bytes'] >> 10} KiB, SHARD_BYTES = {m['shard_bytes'] >> 20} MiB, "
           f"blosc-zstd clevel {m['clevel']}.", ""]
    w = res["write"]
    med = statistics.median
    out += [f"**Write** the session (median of {w['reps']}, alternating order; MB/s = uncompressed bytes through "
            "the codecs / wall s; CPU = process CPU s, all threads)", "",
            md_table(["", "plain zarr (anchor)", "xrdata Store.write", "xrdata / anchor", "target"], [
                ["MB/s (wall)", f"{w['anchor_mb_s']:.1f}", f"{w['xrdata_mb_s']:.1f}", f"{w['ratio']:.2f}", ">= 0.90"],
                ["wall s, each rep", " ".join(f"{x:.1f}" for x in w["anchor_s"]),
                 " ".join(f"{x:.1f}" for x in w["xrdata_s"]), f"best-of {w['ratio_best']:.2f}", ""],
                ["CPU s (median)", f"{med(w['anchor_cpu_s']):.1f}", f"{med(w['xrdata_cpu_s']):.1f}",
                 f"{w['ratio_cpu']:.2f}", ""],
            ]), "",
            f"With `durable=True` (every file fsync'd before the commit): wall s each rep "
            f"{' '.join(f'{x:.2f}' for x in w['durable_s'])}, median {med(w['durable_s']):.2f} against "
            f"{med(w['xrdata_s']):.2f} ({med(w['durable_s']) / med(w['xrdata_s']):.2f}x); CPU s "
            f"{med(w['durable_cpu_s']):.2f} against {med(w['xrdata_cpu_s']):.2f}.", ""]
    small = res["small"]
    out += [f"**Small sessions**: `Store.write` of a 2-second session (every stream, {small[0]['mb']:.1f} MB of "
            f"samples, {small[0]['files']} files) "
            "into a user already holding N sessions, against plain zarr writing the same arrays into a fresh "
            f"folder (median of {small[0]['reps']}, alternating)", "",
            md_table(["sessions of the user", "plain zarr wall ms", "xrdata wall ms", "xrdata / anchor",
                      "plain zarr CPU ms", "xrdata CPU ms"], [
                [x["sessions"], f"{x['anchor_ms']:.1f}", f"{x['xrdata_ms']:.1f}",
                 f"{x['xrdata_ms'] / x['anchor_ms']:.2f}", f"{x['anchor_cpu_ms']:.1f}", f"{x['xrdata_cpu_ms']:.1f}"]
                for x in small]), ""]
    r = res["read"]
    out += [f"**Read** a random {r['window_s']:g} s window of every stream ({r['windows']} windows, "
            f"{r['window_mb']:.1f} MB of samples each, page cache warm; median)", "",
            md_table(["", "wall ms", "xrdata / this", "CPU ms", "xrdata / this (CPU)", "target"], [
                ["xrdata `Store.read(start_ns, stop_ns)` + `.data`/`.time_ns`, events", f"{r['xrdata_ms']:.1f}", "",
                 f"{r['xrdata_cpu_ms']:.1f}", "", ""],
                ["anchor: plain zarr, precomputed indices, arrays opened per window", f"{r['anchor_ms']:.1f}",
                 f"{r['ratio']:.2f}", f"{r['anchor_cpu_ms']:.1f}", f"{r['ratio_cpu']:.2f}", "<= 1.20"],
                ["anchor: plain zarr, precomputed indices, arrays opened once", f"{r['anchor_open_once_ms']:.1f}",
                 f"{r['ratio_open_once']:.2f}", f"{r['anchor_open_once_cpu_ms']:.1f}",
                 f"{r['ratio_open_once_cpu']:.2f}", "(info)"],
            ]), ""]
    out += [f"**Compression** per modality ({res['minutes']:g}-minute session; "
            "ratio = uncompressed / bytes on disk)", "",
            md_table(["stream", "shape", "dtype", "MB", "on disk MB", "ratio (samples)", "ratio (samples + time_ns)",
                       "time on disk", "files"],
                      [[c["stream"], "x".join(map(str, c["shape"])), c["dtype"], f"{c['data_mb']:.1f}",
                        f"{c['disk_mb']:.1f}", f"{c['ratio_data']:.2f}", f"{c['ratio_stream']:.2f}",
                        f"{c['time_disk_mb']:.2f} MB" if c["time_stored"] else "compact (attrs)", c["files"]]
                       for c in res["compression"]]), ""]
    f = res["files"]
    rows = [["measured, this session", f"{f['files_session']} in {f['session_minutes']:.1f} min"],
            ["naive scaling x 60 / minutes (upper bound: metadata files do not grow)", f"{f['naive_x_scale']:.0f}"],
            ["encoding rule (fixed files + shards per stream for 60 min)", str(f["per_hour_rule"])]]
    if "per_hour_measured" in f:
        rows.append(["60-min session written (no depth) + depth by the rule",
                     f"{f['hour_measured_without_depth']} + {f['hour_depth_by_rule']} = {f['per_hour_measured']}"])
    out += ["**Files per session-hour** (target <= 200; the rule reproduces the measured folder: "
            f"{'yes' if f['rule_matches_measured'] else 'NO'})", "", md_table(["", "files"], rows), ""]
    if res.get("sweep"):
        sw = res["sweep"]
        out += ["**Sweep** (plain zarr, one stream at a time, the store's shard rule; each cell is clevel 1 / 3 / 5; "
                "write MB/CPU-s = uncompressed MB per process CPU second; read = median CPU ms to open the array and "
                "read a 10 s window)", ""]
        table = []
        for name in dict.fromkeys(x["stream"] for x in sw["rows"]):
            rows_s = [x for x in sw["rows"] if x["stream"] == name]
            for cb in dict.fromkeys(x["chunk_kib"] for x in rows_s):
                for sh in dict.fromkeys(x["shuffle"] for x in rows_s):
                    g = [x for x in rows_s if x["chunk_kib"] == cb and x["shuffle"] == sh]
                    table.append([f"{name} ({g[0]['mb']:.1f} MB)", f"{cb} KiB", sh, _trio(g, "ratio", ".3f"),
                                  _trio(g, "write_mb_cpu_s", ".0f"), _trio(g, "write_mb_s", ".0f"),
                                  _trio(g, "read_cpu_ms", ".1f")])
        out += [md_table(["stream", "chunk", "shuffle", "ratio", "write MB/CPU-s", "write MB/s (wall)", "read CPU ms"],
                          table), ""]
        if sw["shards"]:
            out += [f"Shard size (depth, {sw['shards'][0]['mb']:.0f} MB, 1 MiB chunks, default codec):", "",
                    md_table(["shard", "write MB/CPU-s", "write MB/s (wall)", "read CPU ms", "read wall ms",
                               "files / hour of depth"],
                              [["none" if x["shard_mib"] is None else f"{x['shard_mib']} MiB",
                                f"{x['write_mb_cpu_s']:.0f}", f"{x['write_mb_s']:.0f}", f"{x['read_cpu_ms']:.1f}",
                                f"{x['read_ms']:.1f}", x["files_per_hour"]] for x in sw["shards"]]), ""]
    return "\n".join(out)


BEGIN, END = "<!-- store_bench:begin -->", "<!-- store_bench:end -->"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1-minute session, no sweep, no hour run (smoke test)")
    ap.add_argument("--minutes", type=float, help="session length (default 10, 1 with --quick)")
    ap.add_argument("--reps", type=int, default=3, help="timed writes of each side (median reported)")
    ap.add_argument("--windows", type=int, help="random 10 s windows read (default 50, 20 with --quick)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the encoding sweep")
    ap.add_argument("--no-hour", action="store_true", help="skip the 60-minute files-per-hour session")
    ap.add_argument("--dir", type=Path, help="work directory on the disk to measure (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="write every result as JSON here")
    ap.add_argument("--update-readme", type=Path, nargs="?", const=Path(__file__).with_name("README.md"),
                    help="replace the generated tables in benchmarks/README.md (this script's block only)")
    args = ap.parse_args(argv)
    minutes = args.minutes or (1.0 if args.quick else 10.0)
    t_all = time.perf_counter()
    res: dict[str, Any] = {"machine": machine(), "minutes": minutes}
    tmp = tempfile.mkdtemp(prefix="xrdata-store-bench-", dir=args.dir)
    work = Path(tmp)
    try:
        t = time.perf_counter()
        rec = make_session(minutes)
        res["session_mb"] = sum(s.data.nbytes for s in rec.streams.values()) / 1e6
        res["generate_s"] = time.perf_counter() - t
        print(f"session: {minutes:g} min, {res['session_mb']:.0f} MB of samples, "
              f"generated in {res['generate_s']:.1f} s", flush=True)
        t = time.perf_counter()
        res["write"] = bench_write(rec, work, args.reps)
        print(f"write done ({time.perf_counter() - t:.0f} s)", flush=True)
        t = time.perf_counter()
        res["small"] = bench_small(work, (0, 100) if args.quick else (0, 500, 2000))
        print(f"small sessions done ({time.perf_counter() - t:.0f} s)", flush=True)
        t = time.perf_counter()
        res["read"] = bench_read(rec, work, args.windows or (20 if args.quick else 50))
        print(f"read done ({time.perf_counter() - t:.0f} s)", flush=True)
        res["compression"] = compression(rec, work / "xrdata")
        shutil.rmtree(work / "anchor")
        t = time.perf_counter()
        res["files"] = files_per_hour(rec, work / "xrdata", work, hour=not (args.quick or args.no_hour))
        print(f"files done ({time.perf_counter() - t:.0f} s)", flush=True)
        shutil.rmtree(work / "xrdata")
        if not (args.quick or args.no_sweep):
            t = time.perf_counter()
            res["sweep"] = sweep(rec, work)
            print(f"sweep done ({time.perf_counter() - t:.0f} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["total_s"] = time.perf_counter() - t_all
    text = report(res)
    print()
    print(text)
    print(f"\ntotal {res['total_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if args.update_readme:
        update_readme(args.update_readme, BEGIN, END, text + f"\n\nWhole run: {res['total_s']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
