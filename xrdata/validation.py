"""Check streams and recordings against the modality schemas in ``xrdata.schemas``.

:func:`validate` returns every problem it finds as a :class:`Violation` (it never stops at the first);
``strict=True`` turns any violation into a :class:`~xrdata.errors.SchemaError`. :func:`check_writable` is
the gate the store runs before writing: it raises for error-severity violations only.

Severity rules: structural problems (modality, channel names, units, dtype, shape, timestamps, events,
metadata, infinite values) are errors; values outside a channel's valid range are warnings, except where
the schema sets ``range_severity: "error"`` (audio outside [-1, 1]). NaN is never a violation: it is how
float data marks missing samples.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from xrdata.errors import SchemaError, ValidationError
from xrdata.model import EVENTS_SCHEMA, ID_PATTERN, Recording, Stream, _check_known_meta, normalize_meta
from xrdata.schemas import STREAM_MODALITIES, load

Severity = Literal["error", "warning"]

#: Relative slack on range bounds, so float32 rounding of e.g. a unit vector's 1.0 is not flagged.
_RANGE_RTOL = 1e-6
#: Allowed deviation of a unit vector's / quaternion's norm from 1 before a warning.
_NORM_TOL = 1e-3
#: Samples used to estimate the actual rate of a stream (cheap on hour-long audio).
_RATE_PROBE = 100_000


@dataclass(frozen=True)
class Violation:
    """One way a stream or recording does not conform to its schema.

    Attributes:
        stream: the stream name, or None for recording-level problems (events, recording meta).
        field: what is wrong: "modality", "channels", "units", "dtype", "shape", "range", "time_ns",
            "events" or "meta".
        message: what is wrong and what to do about it; it names the stream or recording.
        severity: "error" (the store refuses to write it) or "warning".
    """

    stream: str | None
    field: str
    message: str
    severity: Severity

    def __str__(self) -> str:
        return f"[{self.severity}] {self.field}: {self.message}"


def validate(obj: Stream | Recording, *, strict: bool = False) -> list[Violation]:
    """Return every schema violation of a stream or a recording (an empty list when it conforms).

    Args:
        obj: a :class:`Stream` or a :class:`Recording` (all its streams, its events and its meta).
        strict: raise :class:`SchemaError` listing all violations, warnings included, if there are any.
    """
    if isinstance(obj, Stream):
        violations = _validate_stream(obj)
        what = f"stream {obj.name!r}"
    elif isinstance(obj, Recording):
        violations = _validate_recording(obj)
        what = f"recording {obj.user_id}/{obj.session_id}"
    else:
        raise ValidationError(f"validate() takes a Stream or a Recording, got {type(obj).__name__}")
    if strict and violations:
        raise SchemaError(
            f"{what} violates its schema ({len(violations)} violation(s)):\n" + format_violations(violations),
            violations,
        )
    return violations


def check_writable(recording: Recording) -> None:
    """Raise :class:`SchemaError` listing every error-severity violation of ``recording`` (warnings pass).

    The store calls this before writing anything, so a non-conforming session never reaches disk.
    """
    errors = [v for v in validate(recording) if v.severity == "error"]
    if errors:
        what = (
            f"recording {recording.user_id}/{recording.session_id}"
            if isinstance(recording, Recording)
            else f"stream {getattr(recording, 'name', '?')!r}"
        )
        raise SchemaError(
            f"cannot write {what}: {len(errors)} schema error(s):\n" + format_violations(errors), errors
        )


def format_violations(violations: Sequence[Violation]) -> str:
    """One line per violation: ``[severity] field: message``."""
    return "\n".join(f"  {v}" for v in violations)


def sample_shape_for(modality: str, n_channels: int) -> tuple[int, ...] | None:
    """The expected shape of one sample (``data.shape[1:]``), or None where it is not fixed.

    Rule: the sample axes are ``schema["sample_axes"]``; the "channel" axis (always last when present) has
    ``n_channels`` entries and the other axes the sizes in ``schema["axis_sizes"]``. For example gaze ->
    ``(n_channels,)``, hand -> ``(2, 26, n_channels)``; depth frames are ``(height, width)`` of any size, so
    depth gives None.
    """
    schema = _stream_schema(modality)
    sizes: list[int] = []
    for axis in schema["sample_axes"]:
        if axis == "channel":
            sizes.append(int(n_channels))
        elif axis in schema.get("axis_sizes", {}):
            sizes.append(int(schema["axis_sizes"][axis]))
        else:
            return None
    return tuple(sizes)


def missing_value(modality: str, dtype: Any) -> float | int | None:
    """The value that marks a missing sample of ``modality`` stored as ``dtype``.

    NaN for float dtypes; ``schema["missing"]["invalid_value"]`` (0 for depth) for integer dtypes where the
    schema defines one; None when the dtype cannot mark missing samples (e.g. integer "other" channels).
    """
    schema = _stream_schema(modality)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return math.nan
    invalid = schema.get("missing", {}).get("invalid_value")
    return None if invalid is None else invalid


def sample_validity(modality: str, channels: Sequence[str], data: np.ndarray) -> np.ndarray:
    """(N,) bool: True where a sample of a ``modality`` stream holds data, False where it is missing.

    The one rule for every consumer (catalog ``missing_frac``, window masks): a sample is missing when every
    value of its non-flag channels is NaN or the schema's ``missing.invalid_value`` (0 for depth pixels,
    whatever the dtype). Flag channels (``"flag": true`` in the schema: gaze ``*_valid`` and
    ``confidence``, hand ``confidence``) describe a sample but never make it valid, so an untracked hand
    (NaN everywhere, confidence 0) is missing; a stream of flag channels only has no valid sample. Integer
    data without an invalid value cannot mark missing samples: all True, without reading the data.

    Vectorised and cheap: one pass, no float copy of the data; float data costs a boolean scratch bounded by
    chunking along the samples (flag values are set missing in it), integer data only max/min reductions.

    Args:
        modality: the stream's modality (schemas/<modality>.json).
        channels: the stream's channel names, one per entry of the channel axis (the last sample axis) where
            the modality has one.
        data: the samples, first axis = samples.

    Raises:
        ValidationError: unknown modality, or a channel axis whose length is not ``len(channels)``.
    """
    x = np.asarray(data)
    if x.ndim == 0:
        raise ValidationError(f"sample_validity needs samples along a first axis, got a scalar {x!r}")
    n = x.shape[0]
    has_channel_axis, flag_pos, invalid = _missing_rule(modality, tuple(channels))
    kind = x.dtype.kind
    is_float = kind in "fc"
    if not is_float and invalid is None:
        return np.ones(n, dtype=bool)
    if has_channel_axis and x.ndim >= 2 and x.shape[-1] != len(channels):
        raise ValidationError(
            f"{modality} data has {x.shape[-1]} entries on the channel axis (last) but {len(channels)} "
            "channel names"
        )
    per_sample = math.prod(x.shape[1:])
    flags = flag_pos if x.ndim >= 2 else []
    if n == 0 or per_sample == 0 or (flags and len(flags) == x.shape[-1]):
        return np.zeros(n, dtype=bool)  # no value that could hold data
    out = np.empty(n, dtype=bool)
    scratch = is_float or bool(flags)
    step = max(1, (_VALIDITY_CHUNK if scratch else _VALIDITY_CHUNK_INT) // per_sample)
    for i in range(0, n, step):
        xc = x[i : i + step]
        k = xc.shape[0]
        if scratch:
            bad = np.isnan(xc) if is_float else xc == invalid  # bool scratch, a quarter of float32 data
            if is_float and invalid is not None:
                bad |= xc == invalid
            if flags:
                bad[..., flags] = True  # flag channels count as missing values
            missing = bad.reshape(k, -1).all(axis=1)
        else:  # integers with an invalid value (uint16 depth): no scratch, per-sample max (and min)
            axes = tuple(range(1, xc.ndim))
            missing = np.max(xc, axis=axes) == invalid
            if kind != "u" or invalid != 0:  # max alone decides when invalid is the dtype's minimum
                missing &= np.min(xc, axis=axes) == invalid
        out[i : i + step] = ~missing
    return out


# --------------------------------------------------------------------------------------------- internals


def _stream_schema(modality: str) -> dict[str, Any]:
    if modality not in STREAM_MODALITIES:
        raise ValidationError(
            f"unknown stream modality {modality!r}; use one of {', '.join(STREAM_MODALITIES)}"
        )
    return load(modality)


#: Values per chunk of :func:`sample_validity`: its boolean scratch stays cache-sized (256 KiB) for float data;
#: integer data (no scratch, one max/min reduction per chunk) goes in larger chunks. Measured on 40-400 MB
#: gaze, hand, EEG, audio and depth streams: 1.0-1.5x faster than whole-array passes.
_VALIDITY_CHUNK = 1 << 18
_VALIDITY_CHUNK_INT = 1 << 24


@functools.lru_cache(maxsize=256)
def _missing_rule(modality: str, channels: tuple[str, ...]) -> tuple[bool, list[int], Any]:
    """For :func:`sample_validity`: whether the modality has a channel axis, the positions of the flag
    channels on it and the schema's ``missing.invalid_value`` (None when it has none). Do not mutate."""
    schema = _stream_schema(modality)
    invalid = schema.get("missing", {}).get("invalid_value")
    if isinstance(invalid, bool) or not isinstance(invalid, int | float):
        invalid = None
    flags = {c["name"] for c in schema["channels"].get("canonical", []) if c.get("flag") is True}
    if "channel" not in schema["sample_axes"]:
        return False, [], invalid
    return True, [k for k, name in enumerate(channels) if name in flags], invalid


class _Collector:
    """Accumulates the violations of one stream or recording, prefixing messages with its name."""

    def __init__(self, stream: str | None, where: str) -> None:
        self.stream = stream
        self.where = where
        self.items: list[Violation] = []

    def error(self, field: str, message: str) -> None:
        self.items.append(Violation(self.stream, field, f"{self.where}: {message}", "error"))

    def warning(self, field: str, message: str) -> None:
        self.items.append(Violation(self.stream, field, f"{self.where}: {message}", "warning"))

    def add(self, field: str, message: str, severity: Severity) -> None:
        self.items.append(Violation(self.stream, field, f"{self.where}: {message}", severity))


# Conversions a user most likely needs: (unit found, unit required) -> what to do.
_CONVERSIONS: dict[tuple[str, str], str] = {
    ("deg/s", "rad/s"): "multiply by pi/180",
    ("dps", "rad/s"): "multiply by pi/180",
    ("°/s", "rad/s"): "multiply by pi/180",
    ("deg", "rad"): "multiply by pi/180",
    ("°", "rad"): "multiply by pi/180",
    ("mm", "m"): "divide by 1000",
    ("cm", "m"): "divide by 100",
    ("m", "mm"): "multiply by 1000",
    ("cm", "mm"): "multiply by 10",
    ("g", "m/s^2"): "multiply by 9.80665 (standard gravity)",
    ("m/s2", "m/s^2"): "same unit: spell it 'm/s^2'",
    ("m/s/s", "m/s^2"): "same unit: spell it 'm/s^2'",
    ("m/s²", "m/s^2"): "same unit: spell it 'm/s^2'",
    ("ut", "T"): "multiply by 1e-6",
    ("µt", "T"): "multiply by 1e-6",
    ("μt", "T"): "multiply by 1e-6",
    ("nt", "T"): "multiply by 1e-9",
    ("mt", "T"): "multiply by 1e-3",
    ("gauss", "T"): "multiply by 1e-4",
    ("uv", "V"): "multiply by 1e-6",
    ("µv", "V"): "multiply by 1e-6",
    ("μv", "V"): "multiply by 1e-6",
    ("nv", "V"): "multiply by 1e-9",
    ("mv", "V"): "multiply by 1e-3",
    ("v", "V"): "same unit: spell it 'V'",
    ("%", "1"): "divide by 100",
    ("", "1"): "dimensionless values: set the unit to '1'",
    ("unitless", "1"): "dimensionless values: set the unit to '1'",
    ("dimensionless", "1"): "dimensionless values: set the unit to '1'",
    ("none", "1"): "dimensionless values: set the unit to '1'",
    ("n/a", "1"): "dimensionless values: set the unit to '1'",
    ("normalized", "1"): "dimensionless values: set the unit to '1'",
    ("normalised", "1"): "dimensionless values: set the unit to '1'",
    ("fs", "1"): "full scale values: set the unit to '1'",
    ("dbfs", "1"): "convert with 10**(x/20) (sign kept) and set the unit to '1'",
}


def _conversion_hint(found: str, required: str) -> str:
    hint = _CONVERSIONS.get((found, required)) or _CONVERSIONS.get((found.strip().lower(), required))
    if hint is None:
        return f"convert the values to {required!r} and set the unit to {required!r}"
    if hint.startswith(("same unit", "dimensionless", "full scale", "convert")):
        return hint
    return f"{hint} and set the unit to {required!r}"


def _suggest(name: str, candidates: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    return close[0] if close else None


def _validate_stream(s: Stream) -> list[Violation]:
    name = getattr(s, "name", None)
    out = _Collector(name if isinstance(name, str) else None, f"stream {name!r}")
    if not isinstance(name, str) or not ID_PATTERN.fullmatch(name):
        out.error("meta", "invalid stream name: names must match [A-Za-z0-9_-]{1,64}; rename the stream")
    modality = s.modality
    if modality not in STREAM_MODALITIES:
        out.error(
            "modality",
            f"unknown modality {modality!r}; use one of {', '.join(STREAM_MODALITIES)} "
            "('other' for data that maps to no modality)",
        )
        return out.items
    schema = load(modality)
    spec = schema["channels"]

    channels_ok = _check_channel_structure(s, out)
    t = _check_time(s, out)
    d = s.data
    data_ok = _check_data_array(s, d, t, out)
    dtype_ok = data_ok and _check_dtype(s, d, schema, out)
    shape_ok = data_ok and channels_ok and _check_shape(s, d, schema, out)

    names_ok = False
    if channels_ok:
        if spec["mode"] == "canonical":
            names_ok = _check_canonical_channels(s, schema, d.dtype.name if data_ok else None, out)
        else:
            names_ok = True
            _check_free_channels(s, schema, out)
    # Values are checked even when some channel names are unknown (those channels only for infinities),
    # but not for depth with a wrong channel list: then the channel is not known at all.
    if data_ok and shape_ok and dtype_ok and (names_ok or "channel" in schema["sample_axes"]) and s.n_samples:
        _check_values(s, d, schema, out)
    _check_stream_meta(s, schema, out)
    return out.items


def _check_channel_structure(s: Stream, out: _Collector) -> bool:
    chans, units = s.channels, s.units
    if not isinstance(chans, list | tuple) or not all(isinstance(c, str) and c for c in chans):
        out.error("channels", f"channels must be a list of non-empty strings, got {chans!r}")
        return False
    ok = True
    if len(set(chans)) != len(chans):
        dup = sorted({c for c in chans if list(chans).count(c) > 1})
        out.error("channels", f"duplicate channel names {dup}; give every channel a unique name")
        ok = False
    if (
        not isinstance(units, list | tuple)
        or len(units) != len(chans)
        or not all(isinstance(u, str) for u in units)
    ):
        out.error(
            "units",
            f"units must be one string per channel ({len(chans)} channels, got {units!r}); "
            "pass one unit per channel",
        )
        ok = False
    if not chans:
        out.error("channels", "the stream has no channels; name its channels or drop the stream")
        ok = False
    return ok


def _check_time(s: Stream, out: _Collector) -> np.ndarray | None:
    t = s.time_ns
    if not isinstance(t, np.ndarray) or t.ndim != 1:
        out.error(
            "time_ns", f"time_ns must be a 1-D int64 array, got {getattr(t, 'shape', type(t).__name__)}"
        )
        return None
    if t.dtype != np.int64:
        out.error(
            "time_ns",
            f"time_ns must be int64 nanoseconds, got {t.dtype}; "
            "convert seconds with np.round(t_s * 1e9).astype('int64')",
        )
        return None
    if t.shape[0] != s.n_samples:
        out.error("time_ns", f"time_ns has {t.shape[0]} samples but the stream declares {s.n_samples}")
    if t.size > 1:
        back = np.flatnonzero(t[1:] < t[:-1])
        if back.size:
            i = int(back[0])
            out.error(
                "time_ns",
                f"time_ns must be non-decreasing; {back.size} backward step(s), first at sample {i + 1} "
                f"({t[i]} -> {t[i + 1]}); sort the samples or split the stream at the clock reset",
            )
    rate = s.rate_hz
    if rate is not None and t.size > 2:
        probe = np.diff(t[: _RATE_PROBE + 1])
        probe = probe[probe > 0]
        if probe.size >= 2:
            measured = 1e9 / float(np.median(probe))
            if abs(measured / rate - 1.0) > 0.1:
                out.warning(
                    "time_ns",
                    f"declared rate_hz {rate:g} but the median sample interval gives {measured:.4g} Hz; "
                    "set rate_hz to the real nominal rate, or None for an irregular stream",
                )
    return t


def _check_data_array(s: Stream, d: Any, t: np.ndarray | None, out: _Collector) -> bool:
    if not isinstance(d, np.ndarray) or d.ndim == 0:
        out.error("shape", "data must be a numpy array with the samples on the first axis")
        return False
    ok = True
    if d.shape[0] != s.n_samples or (t is not None and d.shape[0] != t.shape[0]):
        n_t = "?" if t is None else t.shape[0]
        out.error(
            "shape",
            f"data has {d.shape[0]} samples (first axis) but time_ns has {n_t} and the stream declares "
            f"{s.n_samples}; give every sample exactly one timestamp",
        )
        ok = False
    if d.dtype.kind not in "biuf":
        out.error("dtype", f"data dtype {d.dtype} is not numeric; convert it to a numeric dtype")
        ok = False
    return ok


def _check_dtype(s: Stream, d: np.ndarray, schema: dict[str, Any], out: _Collector) -> bool:
    allowed: list[str] = schema["dtypes"]
    if d.dtype.name in allowed:
        return True
    fix = f"convert with data.astype({allowed[0]!r})"
    if s.modality == "depth" and d.dtype.kind in "iu":
        fix = (
            "store uint16 millimetres (np.clip(d, 0, 65535).astype('uint16'), 0 = invalid) or float32 metres"
        )
    elif s.modality == "audio" and d.dtype.kind in "iu":
        fix = f"convert to float32 full scale: data.astype('float32') / {2 ** (8 * d.dtype.itemsize - 1)}"
    out.error(
        "dtype", f"dtype {d.dtype} is not allowed for {s.modality} (allowed: {', '.join(allowed)}); {fix}"
    )
    return False


def _shape_text(modality: str, schema: dict[str, Any], n_channels: int) -> str:
    names = ["samples", *schema["sample_axes"]]
    sizes = ["N"]
    for axis in schema["sample_axes"]:
        if axis == "channel":
            sizes.append(str(n_channels))
        else:
            sizes.append(str(schema.get("axis_sizes", {}).get(axis, axis[0].upper())))
    return f"({', '.join(sizes)}) = ({', '.join(names)})"


def _check_shape(s: Stream, d: np.ndarray, schema: dict[str, Any], out: _Collector) -> bool:
    axes: list[str] = schema["sample_axes"]
    n_ch = len(s.channels)
    want = _shape_text(s.modality, schema, n_ch)
    if d.ndim != 1 + len(axes):
        fix = ""
        fixed = sample_shape_for(s.modality, n_ch)
        per_sample = int(np.prod(d.shape[1:], dtype=np.int64))
        if fixed is not None and per_sample == int(np.prod(fixed, dtype=np.int64)):
            fix = f"; reshape with data.reshape(N, {', '.join(map(str, fixed))})"
        elif fixed is None and "channel" not in axes and d.ndim == 4 and d.shape[-1] == 1:
            fix = "; drop the trailing channel axis with data[..., 0]"
        out.error("shape", f"{s.modality} data must have shape {want}, got {d.shape}{fix}")
        return False
    ok = True
    for k, axis in enumerate(axes, start=1):
        size = d.shape[k]
        if axis == "channel":
            if size != n_ch:
                out.error(
                    "shape",
                    f"data has {size} entries on the channel axis (last) but {n_ch} channel names; "
                    f"expected shape {want}: pass one name per channel",
                )
                ok = False
        elif axis in schema.get("axis_sizes", {}):
            expected = int(schema["axis_sizes"][axis])
            if size != expected:
                out.error(
                    "shape",
                    f"{s.modality} data must have {expected} entries on the {axis} axis (axis {k}), got "
                    f"{size}; expected shape {want}",
                )
                ok = False
        elif size == 0:
            out.error("shape", f"{s.modality} samples must not be empty on the {axis} axis, got {d.shape}")
            ok = False
    return ok


def _channel_specs(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in schema["channels"].get("canonical", [])}


def _expected_unit_range(
    schema: dict[str, Any], spec: dict[str, Any], dtype_name: str | None
) -> tuple[str, Any, str | None]:
    """(unit, range, range_hint) of a canonical channel, honouring per-dtype units (depth)."""
    by_dtype = schema.get("dtype_units", {})
    if dtype_name is not None and dtype_name in by_dtype:
        alt = by_dtype[dtype_name]
        return alt["unit"], alt.get("range"), alt.get("range_hint")
    return spec["unit"], spec.get("range"), spec.get("range_hint")


def _check_canonical_channels(
    s: Stream, schema: dict[str, Any], dtype_name: str | None, out: _Collector
) -> bool:
    specs = _channel_specs(schema)
    canonical = list(specs)
    ok = True
    if "channel" not in schema["sample_axes"]:
        # No channel axis (depth): the stream has exactly the canonical channel(s).
        if list(s.channels) != canonical:
            out.error(
                "channels",
                f"{s.modality} streams have no channel axis and exactly the channel(s) {canonical}, got "
                f"{list(s.channels)}; pass channels={canonical}",
            )
            return False
    for name in s.channels:
        if name not in specs:
            ok = False
            guess = _suggest(name, canonical)
            hint = (
                f"did you mean {guess!r}? Rename it"
                if guess
                else f"canonical names: {', '.join(canonical[:12])}{', ...' if len(canonical) > 12 else ''}; "
                "rename it"
            )
            out.error(
                "channels",
                f"channel {name!r} is not a canonical {s.modality} channel; {hint} "
                f"(see schemas/{s.modality}.json), or put the data in an 'other' stream",
            )
    for name, unit in zip(s.channels, s.units, strict=False):
        if name not in specs:
            continue
        want, _, _ = _expected_unit_range(schema, specs[name], dtype_name)
        if unit != want:
            hint = _conversion_hint(unit, want)
            if s.modality == "depth":
                hint += " (depth is uint16 'mm' or float32/float64 'm')"
            out.error("units", f"channel {name!r} has unit {unit!r}; the schema requires {want!r}: {hint}")
    present = set(s.channels)
    for group in schema["channels"].get("groups", []):
        members = group["channels"]
        have = [c for c in members if c in present]
        if have and len(have) != len(members):
            lacking = [c for c in members if c not in present]
            out.error(
                "channels",
                f"channels {have} are present but {lacking} are missing: a {group['kind']} comes whole; "
                "add the missing channels (NaN where unknown) or drop the partial group",
            )
    return ok


def _check_free_channels(s: Stream, schema: dict[str, Any], out: _Collector) -> None:
    spec = schema["channels"]
    preferred: list[str] = spec.get("preferred") or []
    lowered = {p.lower(): p for p in preferred}
    for name in s.channels:
        if name not in preferred and name.lower() in lowered:
            out.warning(
                "channels",
                f"channel {name!r} differs only in case from the preferred name {lowered[name.lower()]!r}; "
                "rename it",
            )
    allowed = spec.get("allowed_units")
    if allowed is None:
        return
    want = spec.get("default_unit") or allowed[0]
    for name, unit in zip(s.channels, s.units, strict=False):
        if unit not in allowed:
            out.error(
                "units",
                f"channel {name!r} has unit {unit!r}; the schema requires {want!r}: "
                f"{_conversion_hint(unit, want)}",
            )


def _channel_view(d: np.ndarray, schema: dict[str, Any], k: int) -> np.ndarray:
    return d[..., k] if "channel" in schema["sample_axes"] else d


def _first_sample(mask: np.ndarray) -> int:
    per_sample = mask.reshape(mask.shape[0], -1).any(axis=1)
    return int(np.argmax(per_sample))


def _check_values(s: Stream, d: np.ndarray, schema: dict[str, Any], out: _Collector) -> None:
    spec = schema["channels"]
    has_channel_axis = "channel" in schema["sample_axes"]
    n = d.shape[0]
    is_float = d.dtype.kind == "f"
    specs = _channel_specs(schema)
    # One vectorised pass per bound over the whole array: per-channel min and max ignoring NaN.
    lo_all: np.ndarray | None = None
    hi_all: np.ndarray | None = None
    if is_float:
        axes = tuple(range(d.ndim - 1)) if has_channel_axis else None
        lo_all = np.atleast_1d(np.fmin.reduce(d, axis=axes))
        hi_all = np.atleast_1d(np.fmax.reduce(d, axis=axes))
    with np.errstate(all="ignore"):
        for k, name in enumerate(s.channels):
            col = _channel_view(d, schema, k)
            if is_float and lo_all is not None and hi_all is not None:
                if np.isinf(lo_all[k]) or np.isinf(hi_all[k]):
                    bad = np.isinf(col)
                    out.error(
                        "range",
                        f"channel {name!r} has {int(bad.sum())} infinite value(s), first at sample "
                        f"{_first_sample(bad)}; mark missing or invalid values with NaN",
                    )
            if spec["mode"] == "canonical":
                if name not in specs:
                    continue  # reported as a channel-name error
                unit, rng, hint = _expected_unit_range(schema, specs[name], d.dtype.name)
                severity: Severity = specs[name].get("range_severity", "warning")
                values = specs[name].get("values")
            else:
                unit, rng, hint = spec.get("default_unit") or "", spec.get("range"), spec.get("range_hint")
                severity = spec.get("range_severity", "warning")
                values = None
            if rng is not None:
                lo_k = None if lo_all is None else float(lo_all[k])
                hi_k = None if hi_all is None else float(hi_all[k])
                _check_range(s, name, col, rng, unit, hint, severity, lo_k, hi_k, n, out)
            if values is not None:
                bad = ~np.isin(col, values) & ~np.isnan(col) if is_float else ~np.isin(col, values)
                if bad.any():
                    out.warning(
                        "range",
                        f"channel {name!r} has {int(bad.sum())} value(s) not in {values}, first at sample "
                        f"{_first_sample(bad)}; use only these values (NaN where unknown)",
                    )
        if is_float and spec["mode"] == "canonical":
            _check_norms(s, d, schema, out)


def _check_range(
    s: Stream,
    name: str,
    col: np.ndarray,
    rng: Sequence[float | None],
    unit: str,
    hint: str | None,
    severity: Severity,
    col_min: float | None,
    col_max: float | None,
    n: int,
    out: _Collector,
) -> None:
    lo, hi = rng
    if col.dtype.kind in "iub":
        # Skip the pass entirely when the dtype cannot hold an out-of-range value (uint16 depth mm).
        info = np.iinfo(np.uint8) if col.dtype.kind == "b" else np.iinfo(col.dtype)
        dmin, dmax = (0, 1) if col.dtype.kind == "b" else (info.min, info.max)
        if (lo is None or lo <= dmin) and (hi is None or hi >= dmax):
            return
        col_min = float(col.min())
        col_max = float(col.max())
        tol = 0.0
    else:
        tol = _RANGE_RTOL * max(1.0, abs(lo or 0.0), abs(hi or 0.0))
    if col_min is None or col_max is None or math.isnan(col_min):
        return  # all NaN: nothing to check
    below = lo is not None and col_min < lo - tol
    above = hi is not None and col_max > hi + tol
    if not (below or above):
        return
    bad = np.zeros(col.shape, dtype=bool)
    if lo is not None:
        bad |= col < lo - tol
    if hi is not None:
        bad |= col > hi + tol
    count = int(bad.sum())
    first = _first_sample(bad)
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    total = col.size
    fix = hint or "check the unit and scaling, or set invalid samples to NaN"
    out.add(
        "range",
        f"channel {name!r}: {count} of {total} value(s) outside the valid range [{lo_s}, {hi_s}] "
        f"{unit!r}, first at sample {first} of {n} (min {col_min:g}, max {col_max:g}); {fix}",
        severity,
    )


def _check_norms(s: Stream, d: np.ndarray, schema: dict[str, Any], out: _Collector) -> None:
    index = {c: k for k, c in enumerate(s.channels)}
    for group in schema["channels"].get("groups", []):
        if not group["kind"].startswith("unit_"):
            continue
        members = group["channels"]
        if not all(c in index for c in members):
            continue
        # Squared norm accumulated channel by channel in the data's float precision (no stacked float64 copy):
        # |norm - 1| > tol  <=>  norm^2 outside [(1 - tol)^2, (1 + tol)^2].
        sq: np.ndarray | None = None
        for c in members:
            x = d[..., index[c]]
            x = x if x.dtype.kind == "f" else x.astype(np.float32)
            sq = x * x if sq is None else np.add(sq, x * x, out=sq)
        assert sq is not None
        bad = (sq > (1 + _NORM_TOL) ** 2) | (sq < (1 - _NORM_TOL) ** 2)  # NaN compares False: missing passes
        if bad.any():
            out.warning(
                "range",
                f"{group['kind']} {members} is not unit length in {int(bad.sum())} sample(s), first at "
                f"sample {_first_sample(bad)}; normalise it (x / norm) or set invalid samples to NaN",
            )


def _check_stream_meta(s: Stream, schema: dict[str, Any], out: _Collector) -> None:
    try:
        meta = normalize_meta(s.meta, "meta")
    except ValidationError as exc:
        out.error("meta", f"{exc}; make the metadata JSON-serialisable")
        return
    ref = meta.get("reference_space")
    if ref is not None and not (isinstance(ref, str) and ref):
        out.error("meta", f"meta['reference_space'] must be a non-empty string like 'local', got {ref!r}")
    for key, rule in schema.get("meta", {}).items():
        if key not in meta:
            if rule.get("required"):
                out.error("meta", f"meta[{key!r}] is required: {rule.get('description', '')}")
            continue
        if key == "intrinsics":
            _check_intrinsics(meta[key], rule, out)


def _check_intrinsics(value: Any, rule: dict[str, Any], out: _Collector) -> None:
    keys: list[str] = rule.get("keys", [])

    def number(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    if (
        not isinstance(value, dict)
        or any(not number(value.get(k)) for k in keys)
        or value.get("fx", 1) <= 0
        or value.get("fy", 1) <= 0
    ):
        out.error("meta", f"meta['intrinsics'] must be {rule.get('description', keys)}; got {value!r}")


def _validate_recording(rec: Recording) -> list[Violation]:
    where = f"recording {rec.user_id}/{rec.session_id}"
    out = _Collector(None, where)
    for label, value in (("user id", rec.user_id), ("session id", rec.session_id)):
        if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            out.error("meta", f"invalid {label} {value!r}: ids must match [A-Za-z0-9_-]{{1,64}}")
    try:
        meta = normalize_meta(rec.meta, where)
        _check_known_meta(meta, where)
    except ValidationError as exc:
        out.items.append(Violation(None, "meta", f"{exc}", "error"))
        meta = rec.meta if isinstance(rec.meta, dict) else {}
    items: list[Violation] = []
    for key, s in rec.streams.items():
        if not isinstance(s, Stream):
            out.error("meta", f"streams[{key!r}] is a {type(s).__name__}, not a Stream; store Stream objects")
            continue
        if key != s.name:
            out.error("meta", f"stream stored under key {key!r} is named {s.name!r}; use its name as the key")
        items.extend(_validate_stream(s))
    _check_events(rec.events, meta, out)
    return out.items + items


def _check_events(events: Any, meta: dict[str, Any], out: _Collector) -> None:
    if not isinstance(events, pl.DataFrame):
        out.error("events", f"events must be a polars DataFrame, got {type(events).__name__}")
        return
    if list(events.columns) != list(EVENTS_SCHEMA):
        out.error(
            "events",
            f"events table needs exactly the columns {list(EVENTS_SCHEMA)} in this order, got "
            f"{list(events.columns)}",
        )
        return
    ok = True
    for col, dtype in EVENTS_SCHEMA.items():
        s = events[col]
        if s.dtype != dtype:
            out.error("events", f"events column {col!r} must be {dtype}, got {s.dtype}; cast it")
            ok = False
        elif s.null_count():
            out.error(
                "events", f"events column {col!r} has {s.null_count()} null value(s); use '' or drop them"
            )
            ok = False
    if not ok or events.height == 0:
        return
    neg = events.filter(pl.col("duration_ns") < 0).height
    if neg:
        out.error("events", f"{neg} event(s) have a negative duration_ns; durations must be >= 0")
    empty = events.filter(pl.col("label").str.len_chars() == 0).height
    if empty:
        out.error("events", f"{empty} event(s) have an empty label; give every event a label")
    t = events["time_ns"].to_numpy()
    if t.size > 1 and bool((t[1:] < t[:-1]).any()):
        out.error("events", "events are not sorted by time_ns; sort them with events.sort('time_ns')")
    tasks = events.filter(pl.col("label").str.starts_with("task/"))
    if tasks.height == 0:
        return
    bad_names = (
        tasks.with_columns(pl.col("label").str.slice(5).alias("task"))
        .filter(~pl.col("task").str.contains(f"^{ID_PATTERN.pattern}$"))
        .get_column("label")
        .unique(maintain_order=True)
        .to_list()
    )
    for label in bad_names[:5]:
        stem = "".join(c if (c.isascii() and c.isalnum()) or c in "_-" else "_" for c in label[5:])[:64]
        out.error(
            "events",
            f"task label {label!r}: task names must match [A-Za-z0-9_-]{{1,64}} after 'task/'; "
            f"use e.g. 'task/{stem or 'name'}'",
        )
    no_class = tasks.filter(pl.col("value").str.len_chars() == 0)
    if no_class.height:
        labels = no_class["label"].unique(maintain_order=True).to_list()[:5]
        out.error(
            "events",
            f"{no_class.height} task event(s) have an empty value (labels {labels}); "
            "put the class in 'value'",
        )
    listed = meta.get("tasks")
    if isinstance(listed, list):
        used = tasks["label"].str.slice(5).unique(maintain_order=True).to_list()
        unlisted = [u for u in used if u not in listed]
        if unlisted:
            out.warning(
                "events",
                f"events label tasks {unlisted} that meta['tasks'] does not list; add them to meta['tasks']",
            )
