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
3. compression ratio per modality (uncompressed bytes / bytes of the stream's folder on disk), files per
   session-hour (60-minute session of the non-depth streams written for real; depth from the encoding rule,
   checked against the 10-minute run).
4. a sweep over chunk target bytes x blosc-zstd clevel x shuffle per modality (plain zarr, same sharding
   rule as the store), from which the defaults in ``xrdata/encoding.py`` are picked.

Usage::

    python benchmarks/store_bench.py                 # full run (10-min session, sweep), < 10 min on 2 cores
    python benchmarks/store_bench.py --quick         # 1-min session, no sweep, no hour run: smoke test
    python benchmarks/store_bench.py --json out.json # also write every number as JSON
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
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr
from zarr.codecs import BloscCodec, BloscShuffle
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
    """Speech-like: a glottal source (f0 90-220 Hz, 12 harmonics shaped by two alternating vowel formant
    sets) under a syllable envelope (~4 Hz) with pauses, fricative noise bursts, room noise, 16-bit PCM."""
    fs = 48_000
    n = int(seconds * fs)
    blk = 480  # 10 ms control rate
    nb = -(-n // blk)
    f0 = 150.0 * np.exp(0.25 * _lowpass(rng, nb, 1, 100.0, 0.5)[:, 0])
    phase = np.cumsum(np.repeat(f0, blk)[:n] / fs)  # cycles
    phase = (2 * np.pi * (phase % 1.0)).astype(np.float32)
    vowel = 0.5 + 0.5 * np.tanh(2 * _lowpass(rng, nb, 1, 100.0, 3.0)[:, 0])  # mix of two formant sets
    form_a = np.array([1.0, 0.9, 0.8, 0.9, 0.5, 0.3, 0.2, 0.25, 0.2, 0.1, 0.08, 0.05])
    form_i = np.array([1.0, 0.4, 0.15, 0.1, 0.1, 0.15, 0.3, 0.35, 0.25, 0.15, 0.1, 0.05])
    voiced = np.zeros(n, dtype=np.float32)
    mix = np.repeat(vowel, blk)[:n].astype(np.float32)
    for h in range(12):
        amp = (form_a[h] * mix + form_i[h] * (1 - mix)) / (h + 1) ** 0.5
        voiced += amp * np.sin(np.float32(h + 1) * phase)
    # Syllables: 4 Hz envelope; speech in stretches of a few seconds separated by pauses.
    syl = np.maximum(0.0, np.sin(2 * np.pi * np.cumsum(4.0 + 1.5 * _lowpass(rng, nb, 1, 100.0, 0.5)[:, 0]) / 100.0))
    talking = _lowpass(rng, nb, 1, 100.0, 0.15)[:, 0] > -0.2
    env = np.repeat(syl**0.7 * talking * (0.25 + 0.1 * _lowpass(rng, nb, 1, 100.0, 0.2)[:, 0].clip(-2, 2)), blk)[:n]
    fric = np.repeat((syl < 0.2) * talking * (rng.random(nb) < 0.3) * 0.03, blk)[:n]
    noise = rng.standard_normal(n, dtype=np.float32)
    hiss = np.diff(noise, prepend=np.float32(0.0))  # high-passed noise for fricatives
    x = env.astype(np.float32) * voiced + fric.astype(np.float32) * hiss + np.float32(0.002) * noise
    x = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.float32) / np.float32(32768.0)  # 16-bit PCM
    return xrdata.Stream("audio", "audio", _regular_ns(n, fs), x[:, None], ["mono"], ["1"], rate_hz=fs,
                         meta={"source_dtype": "int16"})


# Depth scene (world, OpenXR: +Y up, -Z forward, metres): a room and three boxes, seen from a head-mounted
# camera that looks around slowly. Faces are axis-aligned rectangles: (axis, value, {other axis: (lo, hi)}).
_ROOM = [(0, -2.6, {}), (0, 2.4, {}), (1, 0.0, {}), (1, 2.7, {}), (2, -4.8, {}), (2, 1.6, {})]
_BOXES = [
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
    gyro += rng.normal(0, 0.004, (n, 3)) + [0.002, -0.001, 0.0015]  # noise density + bias
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
