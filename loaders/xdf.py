"""XDF (Lab Streaming Layer recordings) through pyxdf, and the LSL stream mapping shared with live capture.

:func:`read_xdf` is a thin layer over ``pyxdf.load_xdf``: pyxdf parses the file, synchronises the clocks and
removes jitter; this module maps every LSL stream onto xrdata streams and events:

==============================  =====================================================================
LSL stream                      xrdata
==============================  =====================================================================
type ``EEG``                    ``eeg``: volts (``microvolts``/``uV``/``mV``/``nV`` in the desc scaled;
                                no unit at all = microvolts, the XDF spec's preferred EEG unit, recorded
                                as ``meta["assumed_unit"]``); labels kept; non-voltage and trigger
                                channels go to a companion ``<name>_other`` stream.
type ``Gaze``/eye tracking      ``gaze``: labels like ``GazeRayOriginX``/``GazeRayDirectionX`` ->
                                ``combined_origin_x``/``combined_dir_x``, ``GazeRayIsValid`` ->
                                ``combined_valid``, ``Left...``/``Right...`` -> ``left_*``/``right_*``,
                                pupil diameter, openness, confidence; origin/direction/pupil/openness of
                                samples whose ``*_valid`` is 0 set to NaN, and a (0, 0, 0) direction (sent
                                while both eyes are closed) makes the ray NaN and ``*_valid`` 0
                                (``meta["zero_direction_set_nan"]``); every unmapped column (Tobii's
                                ``Timestamp``, ``ConvergenceDistance``, ``IsLeftEyeBlinking``...) goes to
                                a companion ``<name>_other`` stream (same timestamps).
type ``MoCap``/pose, head name  ``motion``: ``PosX..PosZ`` -> ``head_px..head_pz``, ``RotW/X/Y/Z`` (or
                                ``Quat*``, ``QX``...) -> ``head_qx..head_qw``; other columns -> companion.
type ``Audio``                  ``audio`` float32 full scale (integer PCM divided by 2**(bits-1)); float
                                samples beyond [-1, 1] mean it is not full-scale audio: kept as ``other``.
string streams, ``Markers``     rows of ``Recording.events``: label = stream name, value = the string
                                (several channels: a JSON list); their LSL metadata goes to
                                ``Recording.meta["event_streams"]``.
anything else                   ``other``: labels, desc units (``"1"`` where none), dtype kept.
==============================  =====================================================================

``mapping`` (dict keyed by stream name, else by stream type) overrides what cannot be inferred; each
entry may hold ``modality`` (``eeg``, ``gaze``, ``motion``, ``audio``, ``other`` or ``events``),
``channels`` (source label -> target channel name; labels left out go to the companion stream),
``units`` (source unit of all channels, or a dict label -> unit: e.g. ``"uV"`` for EEG or ``"mm"`` for
gaze origins), ``frame`` (``"unity"`` or ``"openxr"``) and ``reference_space`` (OpenXR space of poses).

**Frames.** Poses and gaze rays from Unity (stream name starting with ``Unity.``, or ``frame: "unity"``)
are converted from Unity's left-handed frame (+X right, +Y up, +Z forward) to OpenXR's right-handed frame
(+X right, +Y up, -Z forward) by mirroring z: positions and directions ``(x, y, z) -> (x, y, -z)``,
quaternions ``(x, y, z, w) -> (-x, -y, z, w)`` (the rotation axis is a pseudo-vector: mirrored and negated).
``meta["source_frame"]`` and ``meta["frame_conversion"]`` record it. Unity poses are in Unity world space,
stored with ``reference_space = "local"``.

**Clocks.** ``time_ns = round(t_s * 1e9)`` of pyxdf's timestamps: seconds of the recording machine's LSL
clock (``local_clock()``, an arbitrary epoch, usually the boot time), after pyxdf's clock synchronisation
and dejittering when enabled. The XDF header's ``datetime`` (1 s resolution, paired with no LSL time) does
not anchor that clock, so it is kept as ``meta["recording_datetime"]`` and ``utc_anchor`` is not set.
Streams whose timestamps go backwards after pyxdf (clock resets in raw mode, out-of-order samples) are made
non-decreasing: a step back of more than :data:`CLOCK_RESET_S` splits the stream into ``<name>``,
``<name>_part2``... (each part on its own clock epoch, ``meta["part"]``); smaller steps back are sorted
(stable; ``meta["n_reordered"]``). Declared and effective rates are both kept: ``rate_hz`` is the declared
nominal rate (None for irregular streams, declared 0) and ``meta["effective_srate"]`` pyxdf's estimate.
Footer sample counts are kept beside the number of samples loaded (they disagree in real files). Float
infinities become NaN (``meta["inf_set_nan"]``). pyxdf's warnings are kept in ``meta["reader_log"]``.

:class:`XdfWriter` / :func:`write_synthetic_xdf` write XDF files: there is no maintained Python XDF writer
(pyxdf only reads; LabRecorder is a C++ application), and the ingest benchmark needs hour-long files.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import math
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import polars as pl

from xrdata.errors import LoaderError, ValidationError, require
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.model import EVENTS_SCHEMA, Recording, Stream
from xrdata.schemas import load as load_schema

__all__ = [
    "CLOCK_RESET_S",
    "LslHeader",
    "OutputSpec",
    "StreamPlan",
    "XdfWriter",
    "plan_stream",
    "read_xdf",
    "seconds_to_ns",
    "unique_name",
    "write_synthetic_xdf",
]

#: A step back in time larger than this (seconds) is a clock reset: the stream is split there.
CLOCK_RESET_S = 1.0
#: More parts than this means the timestamps are garbage rather than reset: the stream is sorted instead.
_MAX_PARTS = 16

_DTYPES: dict[str, Any] = {
    "float32": np.float32, "double64": np.float64, "int8": np.int8, "int16": np.int16,
    "int32": np.int32, "int64": np.int64,
}
_VOLTS: dict[str, float] = {
    "v": 1.0, "volt": 1.0, "volts": 1.0,
    "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
    "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6,
    "nv": 1e-9, "nanovolt": 1e-9, "nanovolts": 1e-9,
}
_METRES: dict[str, float] = {
    "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
    "cm": 1e-2, "centimeter": 1e-2, "centimeters": 1e-2, "mm": 1e-3, "millimeter": 1e-3, "millimeters": 1e-3,
}
_MILLIMETRES: dict[str, float] = {k: v * 1e3 for k, v in _METRES.items()}
_EEG_NON_DATA_TYPES = {"trigger", "trig", "stim", "status", "marker", "markers", "event", "events", "counter",
                       "timestamp", "timestamps"}
_GAZE_TYPES = {"gaze", "eyetracking", "eyetracker", "eye", "eyegaze", "eyetrack", "pupil", "eyedata"}
_POSE_TYPES = {"mocap", "pose", "headpose", "hmd", "motion", "position", "orientation", "tracking", "vrpose"}
_MARKER_TYPES = {"markers", "marker", "events", "event", "stringmarker", "triggers", "trigger", "annotations"}
_MAPPING_KEYS = {"modality", "channels", "units", "frame", "reference_space"}
_MAPPING_MODALITIES = ("eeg", "gaze", "motion", "audio", "other", "events")
_UNITY_CONVERSION = "Unity (left-handed, +Y up, +Z forward) -> OpenXR: p (x, y, -z), q (-x, -y, z, w)"


# ------------------------------------------------------------------------------------------ helpers


def seconds_to_ns(t_s: Any, where: str) -> np.ndarray:
    """(N,) float seconds -> (N,) int64 nanoseconds (``round(t * 1e9)``); raises on non-finite values."""
    t = np.asarray(t_s, dtype=np.float64).reshape(-1)
    if t.size:
        bad = ~np.isfinite(t) | (np.abs(t) > 9.2e9)
        if bad.any():
            raise ValidationError(
                f"{where}: {int(bad.sum())} timestamp(s) are not finite or beyond the int64 ns range "
                f"(first at sample {int(np.argmax(bad))}); the file is corrupt"
            )
    return np.round(t * 1e9).astype(np.int64)


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _sanitize(name: str, fallback: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    return s or fallback


def unique_name(base: str, taken: set[str], suffix: str = "") -> str:
    """``base + suffix`` (at most 64 characters), made unique against ``taken`` with ``_2``, ``_3``..."""
    k = 1
    while True:
        tail = suffix + ("" if k == 1 else f"_{k}")
        name = base[: 64 - len(tail)] + tail
        if name not in taken:
            taken.add(name)
            return name
        k += 1


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _simplify_pyxdf(node: Any) -> Any:
    """pyxdf's XML dicts (``{tag: [value, ...]}``) -> JSON: one-element lists unwrapped, text kept."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if isinstance(v, list):
                out[str(k)] = _simplify_pyxdf(v[0]) if len(v) == 1 else [_simplify_pyxdf(x) for x in v]
            elif isinstance(v, dict) or v is None or isinstance(v, str):
                out[str(k)] = _simplify_pyxdf(v)
        return out
    return node if node is None or isinstance(node, str) else str(node)


def _simplify_etree(el: ET.Element) -> Any:
    """An XML element -> the same JSON as :func:`_simplify_pyxdf` (leaf: its text, or None)."""
    children = list(el)
    if not children:
        return el.text
    grouped: dict[str, list[Any]] = {}
    for c in children:
        grouped.setdefault(c.tag, []).append(_simplify_etree(c))
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _text(x: Any) -> str | None:
    if isinstance(x, str):
        x = x.strip()
        return x or None
    return None


# ------------------------------------------------------------------------------------ LSL stream header


@dataclass
class LslHeader:
    """What an LSL stream declares (from an XDF StreamHeader or a live ``StreamInfo``).

    ``labels``/``units``/``channel_types`` have one entry per channel (None where the desc gives none).
    """

    name: str
    type: str
    channel_count: int
    channel_format: str
    nominal_srate: float
    source_id: str
    hostname: str
    uid: str
    created_at: float | None
    labels: list[str | None]
    units: list[str | None]
    channel_types: list[str | None]
    desc: Any
    info: dict[str, Any]

    @classmethod
    def from_tree(cls, info: Mapping[str, Any]) -> LslHeader:
        """From the JSON form of an ``<info>`` element (see :func:`_simplify_pyxdf`)."""
        name = _text(info.get("name")) or ""
        try:
            n = int(str(info.get("channel_count")).strip())
        except ValueError:
            n = -1
        fmt = (_text(info.get("channel_format")) or "").lower()
        if n < 1 or n > 1 << 20:
            raise ValidationError(f"LSL stream {name!r}: invalid channel_count {info.get('channel_count')!r}")
        if fmt != "string" and fmt not in _DTYPES:
            raise ValidationError(f"LSL stream {name!r}: unknown channel_format {fmt!r}")
        desc = info.get("desc")
        labels: list[str | None] = [None] * n
        units: list[str | None] = [None] * n
        types: list[str | None] = [None] * n
        if isinstance(desc, dict):
            chans = [c for group in _as_list(desc.get("channels")) if isinstance(group, dict)
                     for c in _as_list(group.get("channel"))]
            for i, ch in enumerate(chans[:n]):
                if isinstance(ch, dict):
                    labels[i] = _text(ch.get("label")) or _text(ch.get("name"))
                    units[i] = _text(ch.get("unit")) or _text(ch.get("units"))
                    types[i] = _text(ch.get("type"))
        scalars = {k: v for k, v in info.items() if k != "desc" and (v is None or isinstance(v, str))}
        return cls(
            name=name, type=_text(info.get("type")) or "", channel_count=n, channel_format=fmt,
            nominal_srate=_finite(info.get("nominal_srate")) or 0.0,
            source_id=_text(info.get("source_id")) or "", hostname=_text(info.get("hostname")) or "",
            uid=_text(info.get("uid")) or "", created_at=_finite(info.get("created_at")),
            labels=labels, units=units, channel_types=types, desc=desc, info=scalars,
        )

    @classmethod
    def from_xml(cls, xml: str) -> LslHeader:
        """From ``StreamInfo.as_xml()``."""
        root = ET.fromstring(xml)
        tree = _simplify_etree(root)
        return cls.from_tree(tree if isinstance(tree, dict) else {})

    @property
    def is_string(self) -> bool:
        return self.channel_format == "string"

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy dtype of the samples (object for string streams)."""
        return np.dtype(object) if self.is_string else np.dtype(_DTYPES[self.channel_format])

    @property
    def rate_hz(self) -> float | None:
        """Declared nominal rate, None for irregular streams (declared 0)."""
        return self.nominal_srate if self.nominal_srate > 0 else None

    def channel_names(self) -> list[str]:
        """One unique, non-empty name per channel: the desc labels, ``ch<i>`` (1-based) where missing."""
        out: list[str] = []
        seen: set[str] = set()
        for i, lab in enumerate(self.labels):
            base = lab or f"ch{i + 1}"
            name, k = base, 2
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            seen.add(name)
            out.append(name)
        return out

    def meta(self) -> dict[str, Any]:
        """The stream's LSL metadata for ``Stream.meta`` (JSON)."""
        return {
            "lsl_name": self.name, "lsl_type": self.type, "source_id": self.source_id, "hostname": self.hostname,
            "uid": self.uid, "created_at": self.created_at, "channel_format": self.channel_format,
            "channel_count": self.channel_count, "nominal_srate": self.nominal_srate,
            "lsl_info": {k: v for k, v in self.info.items() if k not in _HEADER_KEYS},
            "desc": self.desc,
        }


_HEADER_KEYS = {"name", "type", "source_id", "hostname", "uid", "created_at", "channel_format", "channel_count",
                "nominal_srate"}


# ------------------------------------------------------------------------------------- stream mapping


@dataclass
class OutputSpec:
    """One xrdata stream made from some columns of an LSL stream.

    ``convert`` maps an ``(N, channel_count)`` block of source samples to ``(N, len(channels))`` samples of
    ``dtype``: columns picked, multiplied by ``factor`` (unit scale and frame sign), invalid samples
    (``validity``: output column of a ``*_valid`` channel -> output columns set NaN where it is not > 0)
    and infinities set to NaN.
    """

    name: str
    modality: str
    columns: list[int]
    channels: list[str]
    units: list[str]
    dtype: np.dtype[Any]
    factor: np.ndarray | None = None
    validity: list[tuple[int, list[int]]] = field(default_factory=list)
    zero_rays: list[tuple[list[int], list[int], int | None]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def convert(self, data: np.ndarray, *, overwrite: bool = False) -> tuple[np.ndarray, dict[str, int]]:
        """``(N, C_src)`` -> ``(N, C_out)`` and counts of the samples changed (``invalid_set_nan``,
        ``zero_direction_set_nan``, ``inf_set_nan``, ``out_of_range_set_nan``).

        ``overwrite``: ``data`` is the caller's to discard, so the result may be ``data`` itself, scaled in
        place (an hour of 64-channel EEG is 0.9 GB: no second copy of it is made).
        """
        # Corrupt bytes can hold signalling NaNs, and casts or scaling can overflow to inf (set NaN below):
        # numpy's floating-point warnings say nothing more here.
        with np.errstate(all="ignore"):
            return self._convert(data, overwrite)

    def _convert(self, data: np.ndarray, overwrite: bool) -> tuple[np.ndarray, dict[str, int]]:
        out = data if self.columns == list(range(data.shape[1])) else data[:, self.columns]
        out = out.astype(self.dtype, copy=False)
        stats = {"invalid_set_nan": 0, "zero_direction_set_nan": 0, "inf_set_nan": 0}
        owned = out is not data or (overwrite and out.flags.writeable)
        if self.factor is not None:
            if owned:
                np.multiply(out, self.factor.astype(self.dtype), out=out)
            else:
                out = out * self.factor.astype(self.dtype)
                owned = True
        if self.dtype.kind != "f" or not out.size:
            return out, stats
        if (self.validity or self.zero_rays) and not owned:
            out, owned = out.copy(), True
        for dir_cols, ray_cols, vcol in self.zero_rays:
            zero = ~np.any(out[:, dir_cols] != 0, axis=1)  # (0, 0, 0): no gaze (e.g. both eyes closed)
            if zero.any():
                out[np.ix_(np.flatnonzero(zero), np.asarray(ray_cols, np.intp))] = np.nan
                if vcol is not None:
                    out[zero, vcol] = 0
                stats["zero_direction_set_nan"] += int(zero.sum())
        for vcol, targets in self.validity:
            bad = ~(out[:, vcol] > 0)
            if bad.any():
                out[np.ix_(np.flatnonzero(bad), np.asarray(targets, np.intp))] = np.nan
                stats["invalid_set_nan"] += int(bad.sum())
        step = max(1, (1 << 20) // max(1, out.shape[1]))  # look for inf block-wise: no whole-array mask
        if any(np.isinf(out[i : i + step]).any() for i in range(0, out.shape[0], step)):
            inf = np.isinf(out)
            out = out if owned else out.copy()
            out[inf] = np.nan
            stats["inf_set_nan"] += int(inf.sum())
        if self.modality == "audio":  # the audio schema refuses values beyond full scale
            over = np.abs(out) > 1.0
            if over.any():
                out = out if owned else out.copy()
                out[over] = np.nan
                stats["out_of_range_set_nan"] = int(over.sum())
        return out, stats

    def template(self, rate_hz: float | None, meta: Mapping[str, Any]) -> Stream:
        """An empty :class:`Stream` with this output's name, modality, channels, units and dtype."""
        return Stream(self.name, self.modality, np.empty(0, np.int64), np.empty((0, len(self.channels)),
                      self.dtype), self.channels, self.units, rate_hz, {**meta, **self.meta})


@dataclass
class StreamPlan:
    """How one LSL stream becomes xrdata data: ``outputs`` (streams) or, when ``is_events``, event rows."""

    header: LslHeader
    outputs: list[OutputSpec]
    is_events: bool
    event_label: str
    meta: dict[str, Any]

    def events(self, time_ns: np.ndarray, values: Sequence[Sequence[Any]]) -> pl.DataFrame:
        """Event rows (time_ns, duration_ns=0, label=stream name, value) of ``values`` (one per sample)."""
        n = len(values)
        if self.header.channel_count == 1:
            vals = [_event_value(v[0]) if len(v) else "" for v in values]
        else:
            vals = [json.dumps([_event_value(x) for x in v]) for v in values]
        return pl.DataFrame(
            {"time_ns": np.asarray(time_ns, np.int64), "duration_ns": np.zeros(n, np.int64),
             "label": [self.event_label] * n, "value": vals},
            schema=EVENTS_SCHEMA,
        )


def _event_value(x: Any) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, np.generic):
        return str(x.item())
    return "" if x is None else str(x)


_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_GAZE_NOISE = {"gaze", "ray", "eye", "eyes", "combined", "cyclopean", "is", "the", "world", "local", "unity"}


def _tokens(label: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(label)]


def _gaze_channel(label: str) -> str | None:
    """Canonical gaze channel of an LSL channel label, or None (e.g. ``GazeRayOriginX`` -> combined_origin_x)."""
    toks = [t for t in _tokens(label) if t not in _GAZE_NOISE]
    side = next((s for s, names in (("left", {"left", "l"}), ("right", {"right", "r"}))
                 if any(t in names for t in toks)), None)
    toks = [t for t in toks if t not in {"left", "right", "l", "r"}]
    if len(toks) == 2 and toks[1] in ("x", "y", "z"):
        kind = {"origin": "origin", "orig": "origin", "position": "origin", "pos": "origin",
                "direction": "dir", "dir": "dir", "vector": "dir"}.get(toks[0])
        if kind:
            return f"{side or 'combined'}_{kind}_{toks[1]}"
        return None
    key = "".join(toks)
    if key in ("valid", "validity"):
        return f"{side or 'combined'}_valid"
    if side and key in ("pupildiameter", "pupil", "pupilsize", "diameter"):
        return f"{side}_pupil_diameter"
    if side and key in ("openness", "open"):
        return f"{side}_openness"
    if side is None and key == "confidence":
        return "confidence"
    return None


def _head_channel(label: str) -> str | None:
    """Canonical head-pose channel of an LSL label, or None (``PosX`` -> head_px, ``RotW`` -> head_qw)."""
    toks = [t for t in _tokens(label) if t not in {"head", "hmd", "pose", "vr", "camera", "cam", "center"}]
    if len(toks) == 1 and len(toks[0]) == 2 and toks[0][0] in "pq" and toks[0][1] in "xyzw":
        toks = [toks[0][0], toks[0][1]]
    if len(toks) != 2:
        return None
    kind, axis = toks
    if kind in ("pos", "position", "p", "loc", "location", "translation") and axis in ("x", "y", "z"):
        return f"head_p{axis}"
    if kind in ("rot", "rotation", "quat", "quaternion", "q", "orientation", "ori") and axis in ("x", "y", "z", "w"):
        return f"head_q{axis}"
    return None


def _unit_key(u: str | None) -> str:
    return (u or "").strip().lower().replace(" ", "")


def _unit_factor(canonical_unit: str, source_unit: str | None) -> float | None:
    """Multiplier from ``source_unit`` (None: unknown, taken as the canonical unit) to ``canonical_unit``, or
    None when it cannot be converted."""
    if source_unit is None:
        return 1.0
    key = _unit_key(source_unit)
    if canonical_unit == "m":
        return _METRES.get(key)
    if canonical_unit == "mm":
        return _MILLIMETRES.get(key)
    return 1.0 if key in ("", "1", "none", "unitless", "normalized", "normalised") else None


def _canonical(modality: str) -> tuple[list[str], dict[str, str], list[list[str]]]:
    schema = load_schema(modality)
    chans = schema["channels"]["canonical"]
    return ([c["name"] for c in chans], {c["name"]: c["unit"] for c in chans},
            [g["channels"] for g in schema["channels"].get("groups", [])])


def _source_units(header: LslHeader, names: list[str], override: Any) -> list[str | None]:
    """Per-channel source unit: the mapping's ``units`` (str for all, or dict label -> unit), else the desc."""
    if override is None:
        return list(header.units)
    if isinstance(override, str):
        return [override] * header.channel_count
    if isinstance(override, Mapping):
        return [override.get(n, override.get(lab, u) if lab else u)
                for n, lab, u in zip(names, header.labels, header.units, strict=True)]
    raise ValidationError(f"mapping 'units' must be a string or a dict label -> unit, got {override!r}")


def _infer_modality(h: LslHeader) -> str:
    typ = re.sub(r"[^a-z]", "", h.type.lower())
    name = h.name.lower()
    if h.is_string or typ in _MARKER_TYPES:
        return "events"
    if typ == "eeg":
        return "eeg"
    if typ == "audio":
        return "audio"
    if typ in _GAZE_TYPES or "gaze" in name or "eyetrack" in name.replace("_", "").replace(" ", ""):
        return "gaze"
    if typ in _POSE_TYPES and ("head" in name or "hmd" in name or typ in ("headpose", "hmd")):
        return "motion"
    return "other"


def plan_stream(
    header: LslHeader, entry: Mapping[str, Any] | None, taken: set[str], *, fallback_name: str,
    source: str,
) -> StreamPlan:
    """Decide how one LSL stream maps to xrdata streams (see the module docstring for the rules).

    Args:
        header: the stream's declaration.
        entry: the ``mapping`` entry for this stream (by name or type), or None.
        taken: stream names already used in the recording; the new names are added to it.
        fallback_name: stream name when the LSL name sanitises to nothing.
        source: ``"xdf"`` or ``"lsl"`` (recorded in meta).
    """
    entry = dict(entry or {})
    unknown = set(entry) - _MAPPING_KEYS
    if unknown:
        raise ValidationError(
            f"mapping for stream {header.name!r}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_MAPPING_KEYS)}"
        )
    modality = entry.get("modality") or _infer_modality(header)
    if modality not in _MAPPING_MODALITIES:
        raise ValidationError(
            f"mapping for stream {header.name!r}: modality {modality!r} cannot come from a flat LSL stream; "
            f"use one of {', '.join(_MAPPING_MODALITIES)}"
        )
    frame = entry.get("frame") or ("unity" if header.name.lower().startswith("unity.") else "openxr")
    if frame not in ("unity", "openxr"):
        raise ValidationError(f"mapping for stream {header.name!r}: frame must be 'unity' or 'openxr', got {frame!r}")
    base_meta: dict[str, Any] = {"source": source, **header.meta()}
    label = header.name or fallback_name
    if modality == "events" or header.is_string:
        return StreamPlan(header, [], True, label, base_meta)
    base = _sanitize(header.name, fallback_name)
    names = header.channel_names()
    src_units = _source_units(header, names, entry.get("units"))
    channel_map = entry.get("channels")
    if channel_map is not None and not isinstance(channel_map, Mapping):
        raise ValidationError(f"mapping for stream {header.name!r}: 'channels' must be a dict label -> channel")
    outputs: list[OutputSpec] = []
    rest: list[int] = list(range(header.channel_count))
    if modality == "eeg":
        out, rest = _plan_eeg(header, names, src_units, channel_map, base, taken)
        outputs += out
    elif modality in ("gaze", "motion"):
        out, rest = _plan_canonical(header, modality, names, src_units, channel_map, frame, entry, base, taken)
        outputs += out
    elif modality == "audio":
        outputs.append(_plan_audio(header, names, channel_map, base, taken))
        rest = []
    if rest:
        main = not outputs
        chans = [str(channel_map.get(names[i], names[i])) if channel_map and main else names[i] for i in rest]
        meta: dict[str, Any] = {
            "source_labels": [names[i] for i in rest], "source_units": [src_units[i] for i in rest],
            "source_channel_types": [header.channel_types[i] for i in rest],
        }
        if not main:
            meta["companion_of"] = outputs[0].name
        outputs.append(OutputSpec(
            unique_name(base, taken, "" if main else "_other"), "other", rest, chans,
            [src_units[i] or "1" for i in rest], header.dtype, meta=meta,
        ))
    return StreamPlan(header, outputs, False, label, base_meta)


def _plan_eeg(
    h: LslHeader, names: list[str], units: list[str | None], channel_map: Mapping[str, Any] | None, base: str,
    taken: set[str],
) -> tuple[list[OutputSpec], list[int]]:
    cols: list[int] = []
    scale: list[float] = []
    rest: list[int] = []
    assumed = False
    for i in range(h.channel_count):
        typ = (h.channel_types[i] or "").strip().lower()
        if channel_map is not None and names[i] not in channel_map:
            rest.append(i)
            continue
        if typ in _EEG_NON_DATA_TYPES:
            rest.append(i)
            continue
        if units[i] is None:
            assumed = True
            factor: float | None = 1e-6
        else:
            factor = _VOLTS.get(_unit_key(units[i]))
        if factor is None:
            rest.append(i)
            continue
        cols.append(i)
        scale.append(factor)
    if not cols:
        return [], rest
    dtype = np.result_type(h.dtype, np.float32)
    chans = [str(channel_map[names[i]]) if channel_map else names[i] for i in cols]
    meta: dict[str, Any] = {
        "source_labels": [names[i] for i in cols], "source_units": [units[i] for i in cols],
        "channel_types": [h.channel_types[i] for i in cols], "unit_scale_to_V": scale,
    }
    if assumed:
        meta["assumed_unit"] = "microvolts"
        meta["assumed_unit_reason"] = "the desc gives no unit; microvolts is the XDF spec's preferred EEG unit"
    factor_arr = None if all(s == 1.0 for s in scale) else np.asarray(scale, np.float64)
    out = OutputSpec(unique_name(base, taken), "eeg", cols, chans, ["V"] * len(cols), dtype, factor_arr, meta=meta)
    return [out], rest


def _plan_audio(
    h: LslHeader, names: list[str], channel_map: Mapping[str, Any] | None, base: str, taken: set[str]
) -> OutputSpec:
    n = h.channel_count
    if any(h.labels):
        chans = [str(channel_map.get(x, x)) if channel_map else x for x in names]
    else:
        chans = ["mono"] if n == 1 else ["left", "right"] if n == 2 else names
    dt = h.dtype
    scale = 1.0 / 2 ** (8 * dt.itemsize - 1) if dt.kind == "i" else 1.0
    factor = None if scale == 1.0 else np.full(n, scale)
    meta = {"source_labels": names, "source_dtype": dt.name, "full_scale_divisor": 1.0 / scale}
    return OutputSpec(unique_name(base, taken), "audio", list(range(n)), chans, ["1"] * n, np.dtype(np.float32),
                      factor, meta=meta)


def _plan_canonical(
    h: LslHeader, modality: str, names: list[str], units: list[str | None],
    channel_map: Mapping[str, Any] | None, frame: str, entry: Mapping[str, Any], base: str, taken: set[str],
) -> tuple[list[OutputSpec], list[int]]:
    canonical, canon_units, groups = _canonical(modality)
    infer = _gaze_channel if modality == "gaze" else _head_channel
    target: dict[int, str] = {}
    for i, n in enumerate(names):
        t = channel_map.get(n) if channel_map is not None else infer(n)
        if t is None:
            continue
        t = str(t)
        if t not in canon_units:
            if channel_map is not None:
                raise ValidationError(
                    f"mapping for stream {h.name!r}: {t!r} is not a canonical {modality} channel "
                    f"(see schemas/{modality}.json)"
                )
            continue
        if _unit_factor(canon_units[t], units[i]) is None:
            if channel_map is not None:
                raise ValidationError(
                    f"stream {h.name!r}: channel {n!r} ({t}) has unit {units[i]!r}, which cannot be converted "
                    f"to {canon_units[t]!r}; give its unit with mapping={{{h.name!r}: {{'units': {{{n!r}: ...}}}}}}"
                )
            continue  # e.g. a gaze point in pixels: kept unchanged in the companion stream
        if t not in target.values():
            target[i] = t
    present = set(target.values())
    for g in groups:  # a vector or quaternion comes whole, else its columns stay in the companion stream
        have = [c for c in g if c in present]
        if have and len(have) != len(g):
            if channel_map is not None:
                raise ValidationError(
                    f"mapping for stream {h.name!r}: channels {have} need {sorted(set(g) - set(have))} too"
                )
            target = {i: t for i, t in target.items() if t not in g}
    if not target:
        return [], list(range(h.channel_count))
    order = sorted(target, key=lambda i: canonical.index(target[i]))
    chans = [target[i] for i in order]
    factor = np.ones(len(order))
    for k, (i, c) in enumerate(zip(order, chans, strict=True)):
        factor[k] = _unit_factor(canon_units[c], units[i]) or 1.0
        if frame == "unity" and (c.endswith(("_origin_z", "_dir_z", "_pz", "_qx", "_qy"))):
            factor[k] = -factor[k]
    idx = {c: k for k, c in enumerate(chans)}
    validity: list[tuple[int, list[int]]] = []
    for side in ("left", "right", "combined"):
        v = idx.get(f"{side}_valid")
        if v is not None:
            targets = [k for c, k in idx.items() if c.startswith(side + "_") and not c.endswith("_valid")]
            if targets:
                validity.append((v, targets))
    zero_rays: list[tuple[list[int], list[int], int | None]] = []
    for side in ("left", "right", "combined"):
        dirs = [idx[f"{side}_dir_{a}"] for a in "xyz" if f"{side}_dir_{a}" in idx]
        if len(dirs) == 3:
            ray = dirs + [idx[f"{side}_origin_{a}"] for a in "xyz" if f"{side}_origin_{a}" in idx]
            zero_rays.append((dirs, ray, idx.get(f"{side}_valid")))
    meta: dict[str, Any] = {
        "source_labels": [names[i] for i in order], "source_units": [units[i] for i in order],
        "source_frame": "unity" if frame == "unity" else "openxr",
    }
    if zero_rays:
        meta["zero_direction"] = "a (0, 0, 0) direction (no gaze) is missing: ray set to NaN, *_valid to 0"
    if frame == "unity":
        meta["frame_conversion"] = _UNITY_CONVERSION
    ref = entry.get("reference_space") or ("local" if frame == "unity" or modality == "motion" else None)
    if ref is not None:
        meta["reference_space"] = str(ref)
    if validity:
        meta["invalid_samples"] = "origin, direction, pupil and openness set to NaN where *_valid is 0"
    dtype = np.result_type(h.dtype, np.float32)
    out = OutputSpec(unique_name(base, taken), modality, order, chans, [canon_units[c] for c in chans], dtype,
                     None if np.all(factor == 1.0) else factor, validity, zero_rays, meta)
    rest = [i for i in range(h.channel_count) if i not in target]
    return [out], rest


def _mapping_entry(mapping: Mapping[str, Any] | None, header: LslHeader) -> Mapping[str, Any] | None:
    if not mapping:
        return None
    entry = mapping.get(header.name)
    if entry is None:
        entry = mapping.get(header.type)
    if entry is not None and not isinstance(entry, Mapping):
        raise ValidationError(f"mapping[{header.name!r}] must be a dict, got {type(entry).__name__}")
    return entry


def _monotonic_parts(t: np.ndarray) -> tuple[list[Any], int]:
    """Index selectors of the non-decreasing parts of ``t``: split at steps back > CLOCK_RESET_S, sort
    (stable) inside a part. Returns (selectors, number of samples moved by sorting)."""
    if t.size < 2:
        return [slice(None)], 0
    d = np.diff(t)
    if not (d < 0).any():
        return [slice(None)], 0
    resets = np.flatnonzero(d < -int(CLOCK_RESET_S * 1e9)) + 1
    if resets.size + 1 > _MAX_PARTS:
        resets = resets[:0]
    bounds = [0, *resets.tolist(), t.size]
    parts: list[Any] = []
    moved = 0
    for a, b in itertools.pairwise(bounds):
        seg = t[a:b]
        if (np.diff(seg) < 0).any():
            order = np.argsort(seg, kind="stable")
            moved += int((order != np.arange(b - a)).sum())
            parts.append(order + a)
        else:
            parts.append(slice(a, b))
    return parts, moved


# ------------------------------------------------------------------------------------------- reader


#: Keys pyxdf adds to a stream's info dict (not LSL metadata).
_PYXDF_KEYS = {"stream_id", "effective_srate", "segments", "clock_segments"}
_BOUNDARY = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")


def _open(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".xdfz" or path.name.lower().endswith(".xdf.gz"):
        f: IO[bytes] = gzip.open(path, "rb")  # type: ignore[assignment]
        return f
    return open(path, "rb")


def _sniff(path: Path) -> bool:
    try:
        with _open(path) as f:
            return f.read(4) == b"XDF:"
    except (OSError, EOFError):
        return False


def _check_sample_counts(path: Path) -> None:
    """Reject Samples chunks whose sample count cannot fit in the chunk (a corrupt count).

    pyxdf allocates a Python list of ``count`` samples for string streams before reading them, so one
    corrupt count byte would cost gigabytes and minutes; this walk over the chunk headers (cheap: it seeks
    past the sample data) bounds that by the file size. Anything else is left to pyxdf.
    """
    size = path.stat().st_size if path.suffix.lower() == ".xdf" else None
    min_bytes: dict[int, int] = {}
    with _open(path) as f:
        if f.read(4) != b"XDF:":  # (also spares pyxdf's open_xdf, which leaks the file handle on this error)
            raise LoaderError(f"{path}: not an XDF file (it does not start with 'XDF:')")
        while True:
            nb = f.read(1)
            if not nb:
                return
            if nb[0] not in (1, 4, 8):  # pyxdf scans forward to the next boundary chunk; so does this walk
                if not _scan_boundary(f):
                    return
                continue
            raw = f.read(nb[0])
            if len(raw) < nb[0]:
                return
            length = int.from_bytes(raw, "little")
            start = f.tell()
            head = f.read(min(length, 15))
            tag = int.from_bytes(head[:2], "little") if len(head) >= 2 else 0
            if tag == 2 and len(head) >= 6:
                sid = int.from_bytes(head[2:6], "little")
                xml = head[6:] + f.read(max(0, min(length, 1 << 24) - len(head)))
                try:
                    info = ET.fromstring(xml.decode("utf-8", "replace"))
                    n = int((info.findtext("channel_count") or "1").strip())
                    fmt = (info.findtext("channel_format") or "").strip()
                    item = 2 if fmt == "string" else np.dtype(_DTYPES.get(fmt, np.int8)).itemsize
                    min_bytes[sid] = 1 + max(n, 0) * item
                except (ET.ParseError, ValueError):
                    pass
            elif tag == 3 and len(head) >= 7 and head[6] in (1, 4, 8) and len(head) >= 7 + head[6]:
                sid = int.from_bytes(head[2:6], "little")
                count = int.from_bytes(head[7 : 7 + head[6]], "little")
                room = length - 7 - head[6]
                if size is not None:
                    room = min(room, size - start - 7 - head[6])
                if count * min_bytes.get(sid, 1) > max(room, 0):
                    raise LoaderError(
                        f"{path}: corrupt XDF Samples chunk at byte {start}: {count} samples cannot fit in "
                        f"{max(room, 0)} bytes; the file is damaged"
                    )
            f.seek(start + length)


def _scan_boundary(f: IO[bytes]) -> bool:
    while True:
        pos = f.tell()
        block = f.read(1 << 20)
        k = block.find(_BOUNDARY)
        if k >= 0:
            f.seek(pos + k + len(_BOUNDARY))
            return True
        if len(block) < 1 << 20:
            return False
        f.seek(pos + len(block) - len(_BOUNDARY) + 1)


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 100:
            self.messages.append(record.getMessage()[:500])


def _header_datetime(fileheader: Any) -> str | None:
    info = _simplify_pyxdf(fileheader).get("info") if isinstance(fileheader, dict) else None
    raw = _text(info.get("datetime")) if isinstance(info, dict) else None
    if raw is None:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(raw, fmt).isoformat()
        except ValueError:
            pass
    return raw


def _footer_meta(stream: Mapping[str, Any], n_loaded: int) -> dict[str, Any]:
    footer = _simplify_pyxdf(stream.get("footer") or {}).get("info")
    out: dict[str, Any] = {"n_samples_loaded": n_loaded, "n_clock_offsets": len(stream.get("clock_times") or [])}
    if isinstance(footer, dict):
        count = _text(footer.get("sample_count"))
        try:
            out["footer_sample_count"] = int(count) if count is not None else None
        except ValueError:
            out["footer_sample_count"] = count
        out["footer_first_timestamp"] = _finite(footer.get("first_timestamp"))
        out["footer_last_timestamp"] = _finite(footer.get("last_timestamp"))
        if isinstance(out["footer_sample_count"], int) and out["footer_sample_count"] != n_loaded:
            out["footer_mismatch"] = (
                f"footer says {out['footer_sample_count']} samples, {n_loaded} were loaded; all are kept"
            )
    else:
        out["footer_sample_count"] = None
    return out


@reader("xdf", (".xdf", ".xdfz", ".xdf.gz"), sniff=_sniff,
        description="XDF (Lab Streaming Layer) recordings through pyxdf")
def read_xdf(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    synchronize_clocks: bool = True,
    dejitter: bool = True,
    mapping: Mapping[str, Mapping[str, Any]] | None = None,
) -> Recording:
    """Read an XDF (or gzip-compressed ``.xdfz``) recording: every stream, mapped to xrdata modalities.

    Args:
        path: the ``.xdf``/``.xdfz`` file.
        user_id, session_id: ids of the recording (session default: the file name stem).
        synchronize_clocks: apply pyxdf's clock synchronisation (the streams' ClockOffset chunks) so all
            streams are on the recording machine's LSL clock.
        dejitter: apply pyxdf's jitter removal (regular streams get a linear time base per segment).
        mapping: per stream name or type, ``{"modality", "channels", "units", "frame",
            "reference_space"}`` overrides (see the module docstring).

    Returns:
        A :class:`Recording`; ``time_ns`` int64 ns of the LSL clock (see the module docstring), gaze/motion in
        the OpenXR frame, EEG in volts, string/marker streams as events. ``meta``: ``source_files``,
        ``recording_datetime`` (the XDF header's, when present), ``xdf_streams`` (every stream in file order
        with what it became), ``event_streams`` (LSL metadata of the event streams, by events label),
        ``time_processing``
        and ``reader_log`` (pyxdf's warnings).
    """
    pyxdf: Any = require("pyxdf", "loaders")
    p = Path(path)
    if mapping is not None and not isinstance(mapping, Mapping):
        raise LoaderError(f"{p}: mapping must be a dict keyed by stream name or type")
    _check_sample_counts(p)
    log = logging.getLogger("pyxdf.pyxdf")
    collector = _LogCollector()
    log.addHandler(collector)
    try:
        with np.errstate(all="ignore"):  # pyxdf's numerical warnings on degenerate timestamps are not actionable
            streams, fileheader = pyxdf.load_xdf(
                str(p), synchronize_clocks=synchronize_clocks, dejitter_timestamps=dejitter,
            )
    finally:
        log.removeHandler(collector)
    try:
        return _to_recording(p, streams, fileheader, user_id, session_id, synchronize_clocks, dejitter, mapping,
                             collector.messages)
    except ValidationError as exc:
        raise LoaderError(f"{p}: {exc}") from exc


def _to_recording(
    p: Path, streams: list[dict[str, Any]], fileheader: Any, user_id: str, session_id: str | None,
    synchronize_clocks: bool, dejitter: bool, mapping: Mapping[str, Any] | None, log: list[str],
) -> Recording:
    taken: set[str] = set()
    out_streams: list[Stream] = []
    events: list[pl.DataFrame] = []
    listing: list[dict[str, Any]] = []
    event_meta: dict[str, Any] = {}
    timing = {"synchronize_clocks": synchronize_clocks, "dejitter": dejitter}
    for s in streams:
        info = s["info"]
        sid = int(info.get("stream_id", len(listing)))
        header = LslHeader.from_tree(_simplify_pyxdf({k: v for k, v in info.items() if k not in _PYXDF_KEYS}))
        where = f"stream {header.name!r} (XDF stream id {sid})"
        plan = plan_stream(header, _mapping_entry(mapping, header), taken, fallback_name=f"stream{sid}",
                           source="xdf")
        ts = s.get("time_stamps")
        t_ns = seconds_to_ns(ts if ts is not None else [], where)
        series = s.get("time_series")
        n = int(t_ns.shape[0])
        meta = {
            **plan.meta, "xdf_stream_id": sid, "effective_srate": _finite(info.get("effective_srate")),
            "segments": [[int(a), int(b)] for a, b in info.get("segments") or []],
            "clock_segments": [[int(a), int(b)] for a, b in info.get("clock_segments") or []],
            "time_processing": timing, **_footer_meta(s, n),
        }
        if plan.is_events:
            values = series if isinstance(series, list) else [list(r) for r in np.asarray(series)]
            if len(values) != n:
                raise ValidationError(f"{where}: {len(values)} samples but {n} timestamps")
            events.append(plan.events(t_ns, values))
            key, k = plan.event_label, 2
            while key in event_meta:  # two string streams of one name share the events label
                key, k = f"{plan.event_label} ({k})", k + 1
            event_meta[key] = {**meta, "label": plan.event_label, "n_events": n}
            listing.append({"stream_id": sid, "name": header.name, "type": header.type, "stored_as": "events",
                            "label": plan.event_label})
            continue
        data = np.asarray(series)
        if data.ndim != 2 or data.shape[0] != n:
            data = data.reshape(n, header.channel_count)
        data = data.astype(header.dtype, copy=False)  # pyxdf returns float64 for empty streams
        parts, moved = _monotonic_parts(t_ns)
        stored: list[str] = []
        for k, sel in enumerate(parts, start=1):
            t_part = t_ns[sel]
            d_part = data[sel]
            for spec in plan.outputs:
                if k == 1:
                    name = spec.name
                else:
                    name = unique_name(spec.name, taken, f"_part{k}")
                # pyxdf's array is ours: the only output of a stream in one part may reuse it (not audio,
                # whose fallback below needs the source values)
                sole = len(plan.outputs) == 1 and len(parts) == 1 and spec.modality != "audio"
                converted, stats = spec.convert(d_part, overwrite=sole)
                smeta = {**meta, **spec.meta, **{key: v for key, v in stats.items() if v}}
                modality, channels, units = spec.modality, spec.channels, spec.units
                if stats.get("out_of_range_set_nan"):  # not full-scale audio: keep the values, as "other"
                    modality, units = "other", ["1"] * len(channels)
                    converted = d_part[:, spec.columns]
                    smeta.pop("out_of_range_set_nan")
                    smeta["not_audio"] = "float samples beyond full scale [-1, 1]: kept unchanged as 'other'"
                if moved:
                    smeta["n_reordered"] = moved
                if len(parts) > 1:
                    smeta["part"] = k
                    smeta["n_parts"] = len(parts)
                    smeta["split_reason"] = f"clock reset: timestamps step back by more than {CLOCK_RESET_S} s"
                out_streams.append(Stream(name, modality, t_part, converted, channels, units, header.rate_hz, smeta))
                stored.append(name)
        listing.append({"stream_id": sid, "name": header.name, "type": header.type, "stored_as": stored})
    rec_meta: dict[str, Any] = {
        "source_files": [p.name], "source_format": "xdf", "xdf_streams": listing, "event_streams": event_meta,
        "time_processing": timing,
        "clock": "LSL local_clock seconds of the recording machine (arbitrary epoch, usually boot); "
                 "no UTC anchor in the file",
        "reader": f"pyxdf {_pyxdf_version()}",
    }
    when = _header_datetime(fileheader)
    if when is not None:
        rec_meta["recording_datetime"] = when
    version = _text((_simplify_pyxdf(fileheader or {}).get("info") or {}).get("version")) if isinstance(
        fileheader, dict) else None
    if version:
        rec_meta["xdf_version"] = version
    if log:
        rec_meta["reader_log"] = log
    hosts = sorted({str(st.meta["hostname"]) for st in out_streams if st.meta.get("hostname")})
    if hosts:
        rec_meta["lsl_hosts"] = hosts
    ev = pl.concat(events) if events else None
    return Recording(user_id, session_id or default_session_id(p), out_streams, events=ev, meta=rec_meta)


def _pyxdf_version() -> str:
    try:
        from importlib.metadata import version

        return version("pyxdf")
    except Exception:  # metadata missing in odd installs: not worth failing a read for
        return "unknown"


# ------------------------------------------------------------------------------------------- writer


def _varlen(n: int) -> bytes:
    if n < 256:
        return b"\x01" + n.to_bytes(1, "little")
    if n < 1 << 32:
        return b"\x04" + n.to_bytes(4, "little")
    return b"\x08" + n.to_bytes(8, "little")


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class _WriterStream:
    fmt: str
    n_channels: int
    n_samples: int = 0
    first: float | None = None
    last: float | None = None
    offsets: list[tuple[float, float]] = field(default_factory=list)


class XdfWriter:
    """Minimal streaming XDF 1.0 writer (FileHeader, StreamHeader, Samples, ClockOffset, Boundary,
    StreamFooter chunks). Hand-written because no maintained Python XDF writer exists (pyxdf only reads).

    Use as a context manager; footers are written on close::

        with XdfWriter(path) as w:
            w.add_stream(1, "EEG", "EEG", "float32", 1000.0, labels=[...], units="microvolts")
            w.write_samples(1, t_s, values)          # (k,) float seconds, (k, C) values
            w.write_clock_offset(1, 1005.0, -0.001)
    """

    def __init__(self, path: PathLike, *, datetime_str: str = "2026-01-01T00:00:00+0000") -> None:
        self.path = Path(path)
        self._f: IO[bytes] = open(self.path, "wb")
        self._streams: dict[int, _WriterStream] = {}
        self._f.write(b"XDF:")
        self._chunk(1, f'<?xml version="1.0"?><info><version>1.0</version><datetime>{datetime_str}</datetime>'
                       "</info>".encode())

    def __enter__(self) -> XdfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _chunk(self, tag: int, content: bytes) -> None:
        self._f.write(_varlen(len(content) + 2) + struct.pack("<H", tag) + content)

    def add_stream(
        self, stream_id: int, name: str, type: str, channel_format: str, nominal_srate: float, *,
        labels: Sequence[str] | None = None, units: Sequence[str] | str | None = None,
        channel_types: Sequence[str] | None = None, n_channels: int | None = None, source_id: str = "",
        hostname: str = "xrdata-synthetic", created_at: float = 0.0,
    ) -> None:
        """Write a StreamHeader. ``channel_format``: float32, double64, int8/16/32/64 or string; ``labels``,
        ``units`` (one for all or one per channel) and ``channel_types`` go to ``desc/channels``."""
        n = len(labels) if labels is not None else int(n_channels or 1)
        unit_list = [units] * n if isinstance(units, str) else list(units) if units is not None else [None] * n
        label_list = list(labels) if labels is not None else [None] * n
        type_list = list(channel_types) if channel_types is not None else [None] * n
        chans = "".join(
            "<channel>" + (f"<label>{_xml_escape(lab)}</label>" if lab is not None else "")
            + (f"<unit>{_xml_escape(u)}</unit>" if u else "")
            + (f"<type>{_xml_escape(t)}</type>" if t else "") + "</channel>"
            for lab, u, t in zip(label_list, unit_list, type_list, strict=True)
        )
        xml = (
            f'<?xml version="1.0"?><info><name>{_xml_escape(name)}</name><type>{_xml_escape(type)}</type>'
            f"<channel_count>{n}</channel_count><nominal_srate>{nominal_srate!r}</nominal_srate>"
            f"<channel_format>{channel_format}</channel_format><source_id>{_xml_escape(source_id)}</source_id>"
            f"<version>1.1</version><created_at>{created_at!r}</created_at><uid>xrdata-{stream_id}</uid>"
            f"<session_id>default</session_id><hostname>{_xml_escape(hostname)}</hostname>"
            f"<desc><channels>{chans}</channels></desc></info>"
        )
        self._streams[stream_id] = _WriterStream(channel_format, n)
        self._chunk(2, struct.pack("<I", stream_id) + xml.encode())

    def write_samples(self, stream_id: int, t_s: Any, values: Any) -> None:
        """Write one Samples chunk: ``t_s`` (k,) float seconds, ``values`` (k, C) numbers or strings."""
        s = self._streams[stream_id]
        t = np.asarray(t_s, dtype="<f8").reshape(-1)
        k = t.shape[0]
        if k == 0:
            return
        head = struct.pack("<I", stream_id) + _varlen(k)
        if s.fmt == "string":
            parts = [head]
            for ts, row in zip(t.tolist(), values, strict=True):
                parts.append(b"\x08" + struct.pack("<d", ts))
                for v in row:
                    b = str(v).encode()
                    parts.append(_varlen(len(b)) + b)
            body = b"".join(parts)
        else:
            dt = np.dtype(_DTYPES[s.fmt]).newbyteorder("<")
            rec = np.empty(k, np.dtype([("n", "u1"), ("t", "<f8"), ("v", dt, (s.n_channels,))]))
            rec["n"] = 8
            rec["t"] = t
            rec["v"] = np.asarray(values).reshape(k, s.n_channels)
            body = head + rec.tobytes()
        self._chunk(3, body)
        s.n_samples += k
        s.first = float(t[0]) if s.first is None else s.first
        s.last = float(t[-1])

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Write a ClockOffset chunk (collection time and offset in seconds of the recording machine's clock)."""
        self._streams[stream_id].offsets.append((collection_time, offset))
        self._chunk(4, struct.pack("<Idd", stream_id, collection_time, offset))

    def write_boundary(self) -> None:
        """Write a Boundary chunk (lets readers resynchronise after corruption)."""
        self._chunk(5, _BOUNDARY)

    def close(self) -> None:
        """Write every stream's footer and close the file."""
        if self._f.closed:
            return
        for sid, s in self._streams.items():
            offs = "".join(f"<offset><time>{a!r}</time><value>{b!r}</value></offset>" for a, b in s.offsets)
            xml = (
                f'<?xml version="1.0"?><info><first_timestamp>{s.first or 0.0!r}</first_timestamp>'
                f"<last_timestamp>{s.last or 0.0!r}</last_timestamp><sample_count>{s.n_samples}</sample_count>"
                f"<clock_offsets>{offs}</clock_offsets></info>"
            )
            self._chunk(6, struct.pack("<I", sid) + xml.encode())
        self._f.close()


#: Channel labels of the synthetic gaze stream (TobiiXR-like names the reader maps to canonical gaze).
SYNTH_GAZE_LABELS = (
    "GazeRayOriginX", "GazeRayOriginY", "GazeRayOriginZ", "GazeRayDirectionX", "GazeRayDirectionY",
    "GazeRayDirectionZ", "GazeRayIsValid", "LeftPupilDiameter", "RightPupilDiameter", "LeftEyeOpenness",
    "RightEyeOpenness",
)
#: Channel labels of the synthetic head pose stream (the PicoNeo2Eye Unity outlet's layout).
SYNTH_POSE_LABELS = ("PosX", "PosY", "PosZ", "RotW", "RotX", "RotY", "RotZ")


def _synthetic_blocks(
    duration_s: float, eeg_channels: int, eeg_rate: float, seed: int, block_s: float = 1.0,
) -> Iterator[tuple[float, dict[int, tuple[np.ndarray, Any]]]]:
    """Yield ``(block start s, {stream_id: (t_s, values)})`` one block at a time (bounded memory)."""
    rng = np.random.default_rng(seed)
    t0 = 1000.0  # LSL clock of the synthetic recording machine, seconds
    rates = {1: eeg_rate, 2: 120.0, 3: 90.0}
    n_total = {sid: round(duration_s * r) for sid, r in rates.items()}
    done = dict.fromkeys(rates, 0)
    freqs = rng.uniform(8.0, 12.0, eeg_channels)
    yaw = pitch = 0.0
    head_yaw = 0.0
    b = 0.0
    while b < duration_s:
        out: dict[int, tuple[np.ndarray, Any]] = {}
        end = min(b + block_s, duration_s)
        for sid, rate in rates.items():
            stop = min(n_total[sid], round(end * rate)) if end < duration_s else n_total[sid]
            idx = np.arange(done[sid], stop)
            done[sid] = stop
            t = t0 + idx / rate
            k = idx.size
            if sid == 1:
                alpha = 20.0 * np.sin(2 * np.pi * freqs[None, :] * (idx[:, None] / rate))
                vals: Any = (alpha + rng.standard_normal((k, eeg_channels)) * 10.0).astype(np.float32)
            elif sid == 2:
                t = t + rng.normal(0.0, 2e-4, k)
                yaw_s = yaw + np.cumsum(rng.normal(0.0, 0.01, k))
                pitch_s = pitch + np.cumsum(rng.normal(0.0, 0.008, k))
                yaw_s, pitch_s = 0.5 * np.tanh(yaw_s / 0.5), 0.35 * np.tanh(pitch_s / 0.35)
                if k:
                    yaw, pitch = float(yaw_s[-1]), float(pitch_s[-1])
                d = np.stack([np.sin(yaw_s) * np.cos(pitch_s), np.sin(pitch_s), np.cos(yaw_s) * np.cos(pitch_s)], 1)
                origin = np.tile([0.0, 0.0, 0.04], (k, 1)) + rng.normal(0.0, 1e-4, (k, 3))
                valid = (rng.random(k) > 0.02).astype(np.float64)
                pupils = 3.5 + rng.normal(0.0, 0.05, (k, 2))
                openness = np.clip(0.9 + rng.normal(0.0, 0.05, (k, 2)), 0.0, 1.0)
                vals = np.concatenate([origin, d, valid[:, None], pupils, openness], 1).astype(np.float32)
            else:
                t = t + rng.normal(0.0, 2e-4, k)
                head_s = head_yaw + np.cumsum(rng.normal(0.0, 0.005, k))
                if k:
                    head_yaw = float(head_s[-1])
                pos = np.stack([0.01 * np.sin(head_s), 1.6 + 0.005 * np.cos(head_s), 0.01 * np.cos(head_s)], 1)
                quat_wxyz = np.stack([np.cos(head_s / 2), np.zeros(k), np.sin(head_s / 2), np.zeros(k)], 1)
                vals = np.concatenate([pos, quat_wxyz], 1).astype(np.float32)
            out[sid] = (np.maximum.accumulate(t) if t.size else t, vals)
        yield b, out
        b = end


def write_synthetic_xdf(
    path: PathLike, duration_s: float, *, eeg_channels: int = 64, eeg_rate: float = 1000.0, seed: int = 0,
) -> dict[str, int]:
    """Write a synthetic XR + EEG XDF recording (for benchmarks), streaming it to disk one second at a time.

    Streams (ids 1-4): ``EEG`` (``eeg_channels`` float32 channels in microvolts at ``eeg_rate`` Hz, 10-10
    labels), ``Unity.Gaze`` (type Gaze, 120 Hz, 11 float32 TobiiXR-style channels: combined ray, validity,
    pupils, openness), ``Unity.HeadPose`` (type MoCap, 90 Hz, ``PosX..RotZ``), ``Unity.Events`` (string
    markers every 2 s). Timestamps start at 1000 s of the LSL clock; gaze and pose carry 0.2 ms jitter.
    ClockOffset chunks every 5 s (offset -0.1 ms, 2 us noise), Boundary chunks every 10 s, footers at the end.

    Returns ``{"bytes": file size, "<stream name>": samples written, ...}``.
    """
    if duration_s <= 0:
        raise ValidationError(f"duration_s must be > 0, got {duration_s}")
    preferred = load_schema("eeg")["channels"]["preferred"]
    labels = [preferred[i] if i < len(preferred) else f"E{i + 1}" for i in range(eeg_channels)]
    counts = {"EEG": 0, "Unity.Gaze": 0, "Unity.HeadPose": 0, "Unity.Events": 0}
    with XdfWriter(path) as w:
        w.add_stream(1, "EEG", "EEG", "float32", eeg_rate, labels=labels, units="microvolts", source_id="synth-eeg")
        w.add_stream(2, "Unity.Gaze", "Gaze", "float32", 120.0, labels=SYNTH_GAZE_LABELS, source_id="synth-gaze")
        w.add_stream(3, "Unity.HeadPose", "MoCap", "float32", 90.0, labels=SYNTH_POSE_LABELS,
                     source_id="synth-pose")
        w.add_stream(4, "Unity.Events", "Markers", "string", 0.0, n_channels=1, source_id="synth-events")
        names = {1: "EEG", 2: "Unity.Gaze", 3: "Unity.HeadPose"}
        offset_rng = np.random.default_rng([seed, 1])
        next_marker = 0.0
        for b, blocks in _synthetic_blocks(duration_s, eeg_channels, eeg_rate, seed):
            for sid, (t, vals) in blocks.items():
                w.write_samples(sid, t, vals)
                counts[names[sid]] += len(t)
            marks = []
            while next_marker < min(b + 1.0, duration_s):
                marks.append(next_marker)
                next_marker += 2.0
            if marks:
                w.write_samples(4, 1000.0 + np.asarray(marks), [[f"trial {int(m // 2)}"] for m in marks])
                counts["Unity.Events"] += len(marks)
            if int(b) % 5 == 0:
                for sid in (1, 2, 3, 4):
                    w.write_clock_offset(sid, 1000.0 + b, -1e-4 + float(offset_rng.normal(0.0, 2e-6)))
            if int(b) % 10 == 0:
                w.write_boundary()
    return {"bytes": Path(path).stat().st_size, **counts}
