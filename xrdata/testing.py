"""Test kit shipped with xrdata: schema-valid example data, hypothesis strategies and equality asserts.

- :func:`example_stream` / :func:`example_recording`: small plausible data for every modality
  (deterministic given the numpy ``rng``), valid against the schemas with no violation at all.
- :func:`streams` / :func:`recordings`: hypothesis strategies for ANY recording the store must accept
  (no error-severity violation; warnings such as out-of-range values are allowed): empty streams,
  irregular and duplicate timestamps, NaNs, several streams of one modality, int and float dtypes,
  multi-dimensional samples, metadata and events. ``hypothesis`` is imported only when they are called.
- :func:`assert_recording_equal` / :func:`assert_stream_equal`: bit-for-bit comparison for round trips.
- :func:`corruptions` / :func:`corrupt` / :func:`check_reader_contract`: the loaders' error contract under
  truncated and corrupted input (a Recording or an XRDataError naming the file; no hang, bounded memory).
"""

from __future__ import annotations

import functools
import itertools
import math
import string
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xrdata.model import EVENTS_SCHEMA, Recording, Stream
from xrdata.schemas import STREAM_MODALITIES, load

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

__all__ = [
    "DEFAULT_RATES_HZ",
    "ID_ALPHABET",
    "assert_recording_equal",
    "assert_stream_equal",
    "check_reader_contract",
    "corrupt",
    "corruptions",
    "example_recording",
    "example_stream",
    "recordings",
    "streams",
]

#: Characters allowed in user, session and stream ids.
ID_ALPHABET = string.ascii_letters + string.digits + "_-"

#: Nominal rates of the example streams, per modality (Hz).
DEFAULT_RATES_HZ: dict[str, float] = {
    "gaze": 120.0,
    "hand": 60.0,
    "audio": 16000.0,
    "depth": 5.0,
    "motion": 90.0,
    "eeg": 250.0,
    "other": 4.0,
}

#: Modalities of :func:`example_recording` by default ("other" is left out: it is never trained on).
DEFAULT_MODALITIES: tuple[str, ...] = ("gaze", "hand", "audio", "depth", "motion", "eeg")

_EEG_EXAMPLE = ["Fz", "Cz", "Pz", "Oz", "C3", "C4", "P3", "P4"]
_DEPTH_SHAPE = (12, 16)  # (height, width) of example depth frames, pixels


# ------------------------------------------------------------------------------------------ examples


def _canonical_names(modality: str) -> list[str]:
    return [c["name"] for c in load(modality)["channels"]["canonical"]]


def _canonical_units(modality: str, names: Sequence[str]) -> list[str]:
    units = {c["name"]: c["unit"] for c in load(modality)["channels"]["canonical"]}
    return [units[n] for n in names]


def _smooth(rng: np.random.Generator, n: int, step: float, limit: float) -> np.ndarray:
    """(n,) bounded random walk: a slowly varying signal in [-limit, limit]."""
    walk = np.cumsum(rng.normal(0.0, step, n))
    return limit * np.tanh(walk / limit) if n else walk


def _dropout_mask(
    rng: np.random.Generator, n: int, rate_hz: float, every_s: float, length_s: float
) -> np.ndarray:
    """(n,) bool, True inside short dropout bursts (blinks, tracking loss) about every ``every_s`` seconds."""
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    period = max(1, int(every_s * rate_hz))
    length = max(1, int(length_s * rate_hz))
    start = int(rng.integers(0, period))
    while start < n:
        mask[start : start + length] = True
        start += period + int(rng.integers(-period // 4, period // 4 + 1))
    return mask


def _unit_quaternions(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """(n, *shape, 4) slowly rotating unit quaternions (x, y, z, w)."""
    base = rng.normal(size=(*shape, 4))
    drift = np.cumsum(rng.normal(0.0, 0.01, size=(n, *shape, 4)), axis=0)
    q = base[None] + drift
    unit: np.ndarray = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return unit


def _gaze(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    names = _canonical_names("gaze")
    col = {c: np.full(n, np.nan) for c in names}
    yaw = _smooth(rng, n, 0.02, 0.5)  # rad, + = to the right
    pitch = _smooth(rng, n, 0.015, 0.35)  # rad, + = up
    for eye, x0 in (("left", -0.032), ("right", 0.032), ("combined", 0.0)):
        verg = {"left": 0.02, "right": -0.02, "combined": 0.0}[eye]
        d = np.stack(
            [np.sin(yaw + verg) * np.cos(pitch), np.sin(pitch), -np.cos(yaw + verg) * np.cos(pitch)], -1
        )
        for k, ax in enumerate("xyz"):
            col[f"{eye}_origin_{ax}"] = np.full(n, (x0, 0.0, 0.0)[k]) + rng.normal(0, 2e-4, n)
            col[f"{eye}_dir_{ax}"] = d[:, k]
    blink = _dropout_mask(rng, n, rate, every_s=3.5, length_s=0.15)
    pupil = 3.5 + 0.8 * np.tanh(_smooth(rng, n, 0.05, 1.0))  # mm
    for eye in ("left", "right"):
        col[f"{eye}_pupil_diameter"] = pupil + rng.normal(0, 0.05, n)
        col[f"{eye}_openness"] = np.clip(0.9 + rng.normal(0, 0.03, n), 0, 1)
    col["norm_x"] = 0.5 + np.tan(yaw) / 2  # 90 degree scene camera, top-left origin
    col["norm_y"] = 0.5 - np.tan(pitch) / 2
    col["confidence"] = np.clip(0.95 + rng.normal(0, 0.02, n), 0, 1)
    for eye in ("left", "right", "combined"):
        col[f"{eye}_valid"] = (~blink).astype(np.float64)
    for c in names:  # a blink: the eye's geometry is missing (NaN), validity 0, openness near 0
        if c.endswith(("_x", "_y", "_z", "_diameter")) and not c.startswith("norm"):
            col[c][blink] = np.nan
    for eye in ("left", "right"):
        col[f"{eye}_openness"][blink] = 0.05
    col["norm_x"][blink] = np.nan
    col["norm_y"][blink] = np.nan
    col["confidence"][blink] = 0.0
    return np.stack([col[c] for c in names], axis=-1).astype(np.float32), names


def _hand(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    names = _canonical_names("hand")
    data = np.empty((n, 2, 26, len(names)), dtype=np.float64)
    template = rng.normal(0.0, 0.04, size=(26, 3))  # joint offsets from the wrist, m
    t = np.arange(n) / rate
    for h, x0 in enumerate((-0.2, 0.2)):
        wrist = np.stack(
            [x0 + 0.05 * np.sin(0.7 * t + h), -0.3 + 0.03 * np.sin(1.1 * t), -0.4 + 0.05 * np.cos(0.5 * t)],
            -1,
        )
        data[:, h, :, 0:3] = wrist[:, None, :] + template[None] + rng.normal(0, 1e-3, (n, 26, 3))
    data[..., 3:7] = _unit_quaternions(rng, (2, 26), n)
    data[..., 7] = rng.uniform(0.006, 0.012, size=(1, 2, 26))  # radius, m
    data[..., 8] = np.clip(0.9 + rng.normal(0, 0.03, (n, 2, 1)), 0, 1)  # one confidence per hand
    lost = _dropout_mask(rng, n, rate, every_s=4.0, length_s=0.3)
    data[lost, 0, :, :8] = np.nan  # the left hand is lost now and then
    data[lost, 0, :, 8] = 0.0
    return data.astype(np.float32), names


def _motion(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    names = _canonical_names("motion")
    col: dict[str, np.ndarray] = {}
    yaw = _smooth(rng, n, 0.01, 1.0)
    for ax, base in zip("xyz", (0.0, 1.6, 0.0), strict=True):
        col[f"head_p{ax}"] = base + _smooth(rng, n, 0.002, 0.1)
    half = yaw / 2
    zero = np.zeros(n)
    for ax, v in zip("xyzw", (zero, np.sin(half), zero, np.cos(half)), strict=True):
        col[f"head_q{ax}"] = v
    for ax, g in zip("xyz", (0.0, 9.80665, 0.0), strict=True):
        col[f"accel_{ax}"] = g + rng.normal(0, 0.05, n)
    yaw_rate = np.gradient(yaw) * rate if n > 1 else zero
    for ax, w in zip("xyz", (zero, yaw_rate, zero), strict=True):
        col[f"gyro_{ax}"] = w + rng.normal(0, 0.01, n)
    for ax, b in zip("xyz", (2e-5, -4e-5, -1e-5), strict=True):
        col[f"mag_{ax}"] = b + rng.normal(0, 5e-7, n)
    for side, x0 in (("left", -0.2), ("right", 0.2)):
        for ax, base in zip("xyz", (x0, 1.2, -0.3), strict=True):
            col[f"{side}_ctrl_p{ax}"] = base + _smooth(rng, n, 0.003, 0.2)
        q = _unit_quaternions(rng, (), n)
        for k, ax in enumerate("xyzw"):
            col[f"{side}_ctrl_q{ax}"] = q[:, k]
    return np.stack([col[c] for c in names], axis=-1).astype(np.float32), names


def _eeg(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    t = np.arange(n) / rate
    phase = rng.uniform(0, 2 * np.pi, len(_EEG_EXAMPLE))
    alpha = 10e-6 * np.sin(2 * np.pi * 10.0 * t[:, None] + phase)  # 10 Hz alpha, 10 uV
    noise = np.cumsum(rng.normal(0, 1e-6, (n, len(_EEG_EXAMPLE))), axis=0) * 0.2 + rng.normal(0, 3e-6, (n, 8))
    return (alpha + noise).astype(np.float32), list(_EEG_EXAMPLE)


def _audio(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    t = np.arange(n) / rate
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 0.5 * t))
    x = 0.2 * envelope * np.sin(2 * np.pi * 220.0 * t) + rng.normal(0, 0.01, n)
    return np.clip(x, -1, 1).astype(np.float32)[:, None], ["mono"]


def _depth(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    h, w = _DEPTH_SHAPE
    rows = np.linspace(0, 1, h)[:, None]
    cols = np.linspace(0, 1, w)[None, :]
    plane = 800.0 + 2200.0 * rows + 300.0 * cols  # mm: floor farther towards the bottom rows
    frames = plane[None] + rng.normal(0, 5.0, (n, h, w)) + _smooth(rng, n, 10.0, 200.0)[:, None, None]
    frames = np.clip(np.round(frames), 1, 65535).astype(np.uint16)
    frames[rng.random((n, h, w)) < 0.02] = 0  # invalid pixels
    return frames, ["depth"]


def _other(rng: np.random.Generator, n: int, rate: float) -> tuple[np.ndarray, list[str]]:
    temp = 306.0 + _smooth(rng, n, 0.01, 0.5)  # skin temperature, K
    hr = 70.0 + _smooth(rng, n, 0.5, 15.0)  # heart rate, 1/min
    return np.stack([temp, hr], axis=-1), ["skin_temperature", "heart_rate"]


_GENERATORS = {
    "gaze": _gaze,
    "hand": _hand,
    "audio": _audio,
    "depth": _depth,
    "motion": _motion,
    "eeg": _eeg,
    "other": _other,
}


def example_stream(
    modality: str,
    n: int,
    *,
    rng: np.random.Generator,
    name: str | None = None,
    rate_hz: float | None = None,
    start_ns: int = 0,
) -> Stream:
    """A regular stream of ``n`` plausible, schema-valid samples of ``modality``.

    Args:
        modality: one of ``STREAM_MODALITIES``.
        n: number of samples.
        rng: numpy generator; the same seed gives the same bytes.
        name: stream name (default: the modality).
        rate_hz: nominal rate in Hz (default :data:`DEFAULT_RATES_HZ`); sample k is at
            ``start_ns + round(k * 1e9 / rate_hz)`` ns.
        start_ns: time of the first sample, ns on the session clock.

    Shapes: gaze/motion/eeg/audio/other ``(n, C)`` float32 (other float64), hand ``(n, 2, 26, 9)`` float32,
    depth ``(n, 12, 16)`` uint16 millimetres with 0 = invalid and pinhole intrinsics in ``meta``.
    Blinks, hand tracking loss and invalid depth pixels appear as NaN / 0 as the schemas prescribe.
    """
    if modality not in _GENERATORS:
        raise ValueError(f"unknown stream modality {modality!r}; use one of {', '.join(STREAM_MODALITIES)}")
    rate = DEFAULT_RATES_HZ[modality] if rate_hz is None else float(rate_hz)
    time_ns = start_ns + np.round(np.arange(n) * (1e9 / rate)).astype(np.int64)
    data, names = _GENERATORS[modality](rng, n, rate)
    if modality in ("gaze", "hand", "motion", "depth"):
        units = _canonical_units(modality, names)
    elif modality == "eeg":
        units = ["V"] * len(names)
    elif modality == "audio":
        units = ["1"]
    else:
        units = ["K", "1/min"]
    meta: dict[str, Any] = {"source": "xrdata.testing.example_stream"}
    if modality == "depth":
        h, w = _DEPTH_SHAPE
        meta["intrinsics"] = {"fx": w / 2, "fy": w / 2, "cx": (w - 1) / 2, "cy": (h - 1) / 2}
    if modality == "eeg":
        meta["reference"] = "average"
    return Stream(name or modality, modality, time_ns, data, names, units, rate_hz=rate, meta=meta)


_TASK_CLASSES = {
    "gesture": ["pinch", "swipe", "point", "grab"],
    "activity": ["sitting", "standing", "walking"],
}


def example_recording(
    user_id: str,
    session_id: str,
    *,
    seconds: float,
    rng: np.random.Generator,
    modalities: Sequence[str] = DEFAULT_MODALITIES,
) -> Recording:
    """A plausible, schema-valid session: one example stream per modality and a labelled events table.

    Args:
        user_id, session_id: ids (``[A-Za-z0-9_-]{1,64}``).
        seconds: session length in seconds; each stream has ``int(seconds * DEFAULT_RATES_HZ[m])`` samples
            and starts within the first 20 ms.
        rng: numpy generator (same seed, same bytes).
        modalities: stream modalities to include, each as a stream named after it.

    Events: a ``calibration`` marker at 0, ``task/gesture`` segments (value = class, e.g. ``pinch``)
    tiling the session, and ``task/activity`` segments for each half; ``meta['tasks']`` lists both tasks.
    """
    streams = []
    for modality in modalities:
        n = int(seconds * DEFAULT_RATES_HZ[modality])
        start = int(rng.integers(0, 20_000_000))
        streams.append(example_stream(modality, n, rng=rng, start_ns=start))
    total_ns = int(seconds * 1e9)
    rows: list[tuple[int, int, str, str]] = [(0, 0, "calibration", "")]
    n_seg = max(1, int(seconds // 2))
    edges = np.linspace(0, total_ns, n_seg + 1).astype(np.int64)
    for a, b in itertools.pairwise(edges):
        rows.append((int(a), int(b - a), "task/gesture", str(rng.choice(_TASK_CLASSES["gesture"]))))
    half = total_ns // 2
    for a in (0, half):
        rows.append((a, half, "task/activity", str(rng.choice(_TASK_CLASSES["activity"]))))
    events = pl.DataFrame(rows, schema=EVENTS_SCHEMA, orient="row")
    meta = {
        "device": "Meta Quest Pro",
        "utc_anchor": "2026-01-31T09:00:00+00:00",
        "tasks": sorted(_TASK_CLASSES),
        "source_files": [],
    }
    return Recording(user_id, session_id, streams, events=events, meta=meta)


# ------------------------------------------------------------------------------- hypothesis strategies


# Strategies are built once and cached: building hypothesis strategies (recursive ones above all) inside
# every draw dominated the run time.


@functools.cache
def _ids(max_size: int = 64) -> SearchStrategy[str]:
    from hypothesis import strategies as st

    return st.text(alphabet=ID_ALPHABET, min_size=1, max_size=max_size)


@functools.cache
def _json_values() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )


@functools.cache
def _meta(reserved: tuple[str, ...]) -> SearchStrategy[dict[str, Any]]:
    from hypothesis import strategies as st

    keys = st.text(max_size=8).filter(lambda k: k not in reserved)
    return st.dictionaries(keys, _json_values(), max_size=4)


_STREAM_META_KEYS = ("intrinsics", "reference_space")


@functools.cache
def _channel_names(modality: str) -> SearchStrategy[list[str]]:
    """Channel names of one stream: whole groups / single canonical channels, or free names."""
    from hypothesis import strategies as st

    schema = load(modality)
    spec = schema["channels"]
    if spec["mode"] == "canonical":
        canon = [c["name"] for c in spec["canonical"]]
        if "channel" not in schema["sample_axes"]:
            return st.just(canon)
        grouped = {c for g in spec["groups"] for c in g["channels"]}
        blocks = [list(g["channels"]) for g in spec["groups"]] + [[c] for c in canon if c not in grouped]
        picks = st.lists(st.sampled_from(range(len(blocks))), min_size=1, max_size=6, unique=True)
        return picks.map(lambda picked: [c for i in picked for c in blocks[i]])
    preferred: list[str] = spec.get("preferred") or []
    name_st = st.text(min_size=1, max_size=12)
    if preferred:
        name_st = st.sampled_from(preferred) | name_st
    return st.lists(name_st, min_size=1, max_size=5, unique=True)


def _draw_channels(draw: DrawFn, modality: str, dtype_name: str) -> tuple[list[str], list[str]]:
    from hypothesis import strategies as st

    schema = load(modality)
    spec = schema["channels"]
    names = draw(_channel_names(modality))
    if spec["mode"] == "canonical":
        by_dtype = schema.get("dtype_units", {})
        if dtype_name in by_dtype:
            return names, [by_dtype[dtype_name]["unit"]] * len(names)
        return names, _canonical_units(modality, names)
    allowed = spec.get("allowed_units")
    if allowed is None:
        units = draw(st.lists(_unit_text(), min_size=len(names), max_size=len(names)))
    else:
        units = [draw(st.sampled_from(allowed)) for _ in names]
    return names, units


@functools.cache
def _unit_text() -> SearchStrategy[str]:
    from hypothesis import strategies as st

    return st.text(max_size=6)


def _random_data(
    rng: np.random.Generator,
    modality: str,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    nan_frac: float,
    scale: float,
) -> np.ndarray:
    """Random values of ``dtype`` that carry no error-severity violation for ``modality``."""
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        edges = np.array([info.min, info.max, 0], dtype=dtype)
        flat = data.reshape(-1)
        if flat.size:
            flat[rng.integers(0, flat.size, size=min(3, flat.size))] = edges[: min(3, flat.size)]
        return data
    if modality == "audio":  # out of [-1, 1] is an error for audio
        values = rng.uniform(-1.0, 1.0, size=shape)
        specials = np.array([-1.0, 1.0, 0.0, -0.0])
    elif modality == "depth":
        values = rng.uniform(0.0, 10.0, size=shape) * (rng.random(shape) > 0.1)
        specials = np.array([0.0, 65.535, 1e-3])
    else:
        info_f = np.finfo(dtype)
        values = np.clip(rng.standard_normal(size=shape) * scale, -float(info_f.max), float(info_f.max))
        specials = np.array(
            [0.0, -0.0, float(info_f.max), -float(info_f.max), float(info_f.smallest_subnormal)]
        )
    data = values.astype(dtype)
    flat = data.reshape(-1)
    if flat.size:
        k = min(specials.size, flat.size)
        flat[rng.integers(0, flat.size, size=k)] = specials[:k].astype(dtype)
        flat[rng.random(flat.size) < nan_frac] = np.nan
    return data


def streams(modality: str | None = None, *, max_samples: int = 24) -> SearchStrategy[Stream]:
    """Hypothesis strategy for any stream the store must accept (no error-severity violation).

    Covers: every stream modality (or only ``modality``), 0 to ``max_samples`` samples, regular or irregular
    non-decreasing timestamps (duplicates included, starts up to +-2**62 ns), every dtype the schema allows,
    NaN in float data (none to all), extreme finite values (range warnings are allowed), depth frames of
    any small size, hand (N, 2, 26, C), any subset of canonical channels (whole groups), free channel
    names and units, rate_hz None or any positive number, and JSON metadata.
    """
    from hypothesis import strategies as st

    if modality is not None and modality not in STREAM_MODALITIES:
        raise ValueError(f"unknown stream modality {modality!r}; use one of {', '.join(STREAM_MODALITIES)}")
    modalities = STREAM_MODALITIES if modality is None else (modality,)

    @st.composite
    def _stream(draw: DrawFn) -> Stream:
        mod = draw(st.sampled_from(modalities))
        schema = load(mod)
        name = draw(_ids(24))
        dtype = np.dtype(draw(st.sampled_from(schema["dtypes"])))
        channels, units = _draw_channels(draw, mod, dtype.name)
        n = draw(st.integers(0, max_samples))
        start = draw(st.sampled_from([0, -(2**62), 2**62]) | st.integers(-(2**40), 2**40))
        if draw(st.booleans()):
            step = draw(st.integers(1, 10**9))
            steps = [step] * max(n - 1, 0)
        else:
            steps = draw(st.lists(st.integers(0, 2**32), min_size=max(n - 1, 0), max_size=max(n - 1, 0)))
        time_ns = np.array([start, *np.cumsum(steps, dtype=np.int64) + start][:n], dtype=np.int64)
        if mod == "depth":
            sample: tuple[int, ...] = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
        else:
            sizes = schema.get("axis_sizes", {})
            sample = tuple(len(channels) if a == "channel" else int(sizes[a]) for a in schema["sample_axes"])
        nan_frac = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
        scale = draw(st.sampled_from([1.0, 1e-6, 1e3, 1e30]))
        seed = draw(st.integers(0, 2**32 - 1))
        data = _random_data(np.random.default_rng(seed), mod, dtype, (n, *sample), nan_frac, scale)
        rate = draw(st.none() | st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False))
        meta = draw(_meta(_STREAM_META_KEYS))
        if mod == "depth" and draw(st.booleans()):
            h, w = sample
            meta["intrinsics"] = {"fx": float(w), "fy": float(w), "cx": w / 2, "cy": h / 2}
        if draw(st.booleans()):
            meta["reference_space"] = draw(st.sampled_from(["view", "local", "stage"]))
        return Stream(name, mod, time_ns, data, channels, units, rate_hz=rate, meta=meta)

    return _stream()


def _events() -> SearchStrategy[pl.DataFrame | None]:
    from hypothesis import strategies as st

    task_row = st.tuples(
        st.integers(-(2**62), 2**62),
        st.integers(0, 2**40),
        st.builds(lambda s: f"task/{s}", _ids(16)),
        st.text(min_size=1, max_size=8),
    )
    other_row = st.tuples(
        st.integers(-(2**62), 2**62),
        st.integers(0, 2**40),
        st.text(min_size=1, max_size=12).filter(lambda s: not s.startswith("task/")),
        st.text(max_size=8),
    )
    rows = st.lists(task_row | other_row, max_size=6)
    return st.none() | rows.map(lambda r: pl.DataFrame(r, schema=EVENTS_SCHEMA, orient="row"))


def recordings(*, max_streams: int = 4, max_samples: int = 16) -> SearchStrategy[Recording]:
    """Hypothesis strategy for any recording the store must accept (no error-severity violation).

    Ids of 1-64 id characters, 0 to ``max_streams`` streams from :func:`streams` (several of one modality
    possible), events (None, empty or up to 6 rows mixing ``task/<name>`` labels and free labels), and
    recording meta with the well-known keys (device, utc_anchor, source_files, tasks) and arbitrary others.
    """
    from hypothesis import strategies as st

    @st.composite
    def _recording(draw: DrawFn) -> Recording:
        user = draw(_ids())
        session = draw(_ids())
        items = draw(
            st.lists(streams(max_samples=max_samples), max_size=max_streams, unique_by=lambda s: s.name)
        )
        events = draw(_events())
        meta = draw(_meta(("device", "utc_anchor", "source_files", "tasks")))
        if draw(st.booleans()):
            meta["device"] = draw(
                st.text(max_size=12) | st.dictionaries(st.text(max_size=6), st.text(max_size=6))
            )
        if draw(st.booleans()):
            when = draw(st.datetimes(timezones=st.just(UTC)))
            meta["utc_anchor"] = when.isoformat()
        if draw(st.booleans()):
            meta["source_files"] = draw(st.lists(st.text(max_size=10), max_size=3))
        if events is not None and draw(st.booleans()):
            labels = events["label"].to_list()
            meta["tasks"] = sorted({lab[5:] for lab in labels if lab.startswith("task/")})
        return Recording(user, session, items, events=events, meta=meta)

    return _recording()


# ------------------------------------------------------------------------------------------ assertions


def _array_difference(a: np.ndarray, b: np.ndarray) -> str | None:
    """None if ``a`` and ``b`` are bit-for-bit equal, else a description of the first difference."""
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    if a.dtype.kind == "f":
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            idx = tuple(int(i) for i in np.argwhere(nan_a != nan_b)[0])
            count = int((nan_a != nan_b).sum())
            return f"NaN positions differ ({count} element(s)), first at {idx}: {a[idx]!r} vs {b[idx]!r}"
    raw_a = np.ascontiguousarray(a).view(np.uint8).reshape((*a.shape, a.dtype.itemsize)) if a.size else a
    raw_b = np.ascontiguousarray(b).view(np.uint8).reshape((*b.shape, b.dtype.itemsize)) if b.size else b
    if a.size and not np.array_equal(raw_a, raw_b):
        diff = (raw_a != raw_b).any(axis=-1)
        idx = tuple(int(i) for i in np.argwhere(diff)[0])
        return f"{int(diff.sum())} element(s) differ bitwise, first at {idx}: {a[idx]!r} vs {b[idx]!r}"
    return None


def _json_difference(a: Any, b: Any, path: str = "meta") -> str | None:
    """None if two JSON values are equal with the same types (1 != 1.0 != True), else the first difference."""
    if type(a) is not type(b):
        return f"{path}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})"
    if isinstance(a, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            found = _json_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _json_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, float) and math.copysign(1.0, a) != math.copysign(1.0, b):
        return f"{path}: {a!r} != {b!r}"
    return None if a == b else f"{path}: {a!r} != {b!r}"


def assert_stream_equal(a: Stream, b: Stream, *, where: str = "") -> None:
    """Assert two streams are identical, bit for bit.

    Compares name, modality, channels, units, rate_hz, meta (types included) and ``time_ns`` and ``data``
    byte for byte (dtype, shape, NaN positions and payloads). Raises AssertionError listing the differences.
    """
    label = f"{where}stream {a.name!r}"
    problems: list[str] = []
    for attr in ("name", "modality", "n_samples", "rate_hz"):
        va, vb = getattr(a, attr), getattr(b, attr)
        if type(va) is not type(vb) or va != vb:
            problems.append(f"{attr}: {va!r} != {vb!r}")
    for attr in ("channels", "units"):
        va, vb = list(getattr(a, attr)), list(getattr(b, attr))
        if va != vb:
            problems.append(f"{attr}: {va!r} != {vb!r}")
    meta_diff = _json_difference(a.meta, b.meta)
    if meta_diff:
        problems.append(meta_diff)
    for attr in ("time_ns", "data"):
        diff = _array_difference(np.asarray(getattr(a, attr)), np.asarray(getattr(b, attr)))
        if diff:
            problems.append(f"{attr}: {diff}")
    if problems:
        raise AssertionError(f"{label} differs:\n  " + "\n  ".join(problems))


def assert_recording_equal(a: Recording, b: Recording) -> None:
    """Assert two recordings are identical, bit for bit.

    Compares ids, recording meta, the events table (columns, dtypes, rows in order) and every stream with
    :func:`assert_stream_equal` (the order of the streams dict is not compared). Raises AssertionError
    listing every difference found.
    """
    label = f"recording {a.user_id}/{a.session_id}"
    problems: list[str] = []
    if (a.user_id, a.session_id) != (b.user_id, b.session_id):
        problems.append(f"ids: {a.user_id}/{a.session_id} != {b.user_id}/{b.session_id}")
    meta_diff = _json_difference(a.meta, b.meta)
    if meta_diff:
        problems.append(meta_diff)
    if a.events.schema != b.events.schema:
        problems.append(f"events schema: {dict(a.events.schema)} != {dict(b.events.schema)}")
    elif not a.events.equals(b.events):
        if a.events.height != b.events.height:
            problems.append(f"events: {a.events.height} rows != {b.events.height} rows")
        else:
            for i, (ra, rb) in enumerate(zip(a.events.iter_rows(), b.events.iter_rows(), strict=True)):
                if ra != rb:
                    problems.append(f"events row {i}: {ra!r} != {rb!r}")
                    break
    names_a, names_b = set(a.streams), set(b.streams)
    if names_a != names_b:
        problems.append(
            f"streams: only in the first {sorted(names_a - names_b)}, "
            f"only in the second {sorted(names_b - names_a)}"
        )
    for name in sorted(names_a & names_b):
        try:
            assert_stream_equal(a.streams[name], b.streams[name])
        except AssertionError as exc:
            problems.append(str(exc).replace("\n", "\n  "))
    if problems:
        raise AssertionError(f"{label} differs:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- loader error contract

#: A reader that takes longer than this on a corrupted input counts as hanging (seconds).
READER_HANG_S = 20
#: Peak memory may grow at most this much while reading one corrupted input (bytes).
READER_MEMORY_BUDGET = 1 << 30


def corruptions(size: int) -> SearchStrategy[tuple[list[tuple[int, int]], int]]:
    """Hypothesis strategy: ``(overwrites, cut)`` for a file of ``size`` bytes: byte overwrites
    ``(offset, value)`` and a truncation length (``size`` = no truncation)."""
    from hypothesis import strategies as st

    offsets = st.integers(0, max(0, size - 1))
    return st.one_of(
        st.tuples(st.just([]), offsets),
        st.tuples(st.lists(st.tuples(offsets, st.integers(0, 255)), min_size=1, max_size=8), st.just(size)),
        st.tuples(st.lists(st.tuples(offsets, st.integers(0, 255)), min_size=1, max_size=8), offsets),
    )


def corrupt(payload: bytes, spec: tuple[list[tuple[int, int]], int]) -> bytes:
    """Apply a :func:`corruptions` example to ``payload``."""
    flips, cut = spec
    data = bytearray(payload)
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    return bytes(data[:cut])


def check_reader_contract(read: Any, path: Any, **options: Any) -> Recording | None:
    """Call ``read(path, **options)``: it must return a Recording or raise an XRDataError whose message
    names the file, within :data:`READER_HANG_S` and :data:`READER_MEMORY_BUDGET` (POSIX only).

    Returns the recording, or None when the reader refused the input properly.
    """
    import resource
    import signal
    from pathlib import Path

    from xrdata.errors import XRDataError

    path = Path(path)

    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(READER_HANG_S)
    rec: Any = None
    refused = False
    try:
        rec = read(path, **options)
    except XRDataError as exc:
        assert path.name in str(exc), f"the error does not name the file {path.name}: {exc}"
        refused = True
    except TimeoutError:
        raise AssertionError(f"reader hung for > {READER_HANG_S} s on {path}") from None
    except Exception as exc:
        raise AssertionError(f"reader raised {type(exc).__name__} instead of an XRDataError on {path}: {exc}") from exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before  # refusing costs memory too
    assert grown < READER_MEMORY_BUDGET, f"reading {path} grew peak memory by {grown / 2**20:.0f} MiB"
    if refused:
        return None
    assert isinstance(rec, Recording), f"reader returned {type(rec).__name__}, not a Recording"
    return rec
