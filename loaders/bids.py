"""BIDS datasets <-> recordings: import EEG-BIDS, Motion-BIDS (BEP029) and eye-tracking physio, export a store.

**Import** (:func:`read_bids`, :func:`iter_bids`). One recording per ``(sub, ses, task, run)``; its files:

* EEG ``eeg/*_eeg.{vhdr,edf,bdf,set}`` through the EEG readers of :mod:`xrdata.loaders.eeg` (mne), with the
  channel types of ``*_channels.tsv`` applied (``EOG`` -> eog, ``TRIG`` -> stim ...). When an
  ``*_events.tsv`` exists it is the events table (as in mne-bids); the data file's own markers and stim
  channel are then not decoded a second time.
* Motion ``motion/*_tracksys-<L>_motion.tsv`` (headerless, columns in ``*_channels.tsv`` order) with
  ``*_motion.json``: channels named like the canonical motion channels (as this module writes them), or whose
  ``tracked_point`` is the head (``head``/``hmd``/``headset``) or a controller (``LeftController`` ...) with
  ``POS``/``ORNT`` (quaternion)/``ACCEL``/``GYRO``/``MAGN`` types, become a ``motion`` stream in SI units,
  converted to the OpenXR frame when the dataset gives ``SpatialAxes`` (``RSP`` is OpenXR: +X right,
  +Y superior, +Z posterior); all other channels go to an ``other`` stream named after the tracking system.
  A ``LATENCY`` channel gives per-sample times (seconds from the file's first sample).
* Eye tracking ``*_recording-<L>_physio.tsv.gz`` with ``PhysioType: "eyetrack"``: files written by this
  module (canonical gaze channel columns) become one ``gaze`` stream (the per-eye files merged); other
  eye-tracking files become an ``other`` stream per file with every column and its sidecar in the metadata
  (screen-pixel or device-specific coordinates have no exact mapping onto the gaze schema).

**Clock.** The session clock's zero is the first sample of the recording's main file (EEG, else the first
motion file, else the first physio file): BIDS gives every onset relative to it (``events.tsv`` onsets,
``StartTime`` of physio and motion files). Motion files without ``StartTime`` are placed with the
``acq_time`` of ``*_scans.tsv``. ``utc_anchor`` is the EEG file's measurement date, else the main file's
``acq_time`` when it carries a UTC offset. Ids: ``user_id`` = the ``sub`` label, ``session_id`` =
``ses[-task][-run]`` labels, unless ``participants.tsv``/``*_sessions.tsv`` carry the ``xrdata_user_id`` /
``xrdata_session_id`` columns this module writes.

**Export** (:func:`export_bids`): every session of the chosen users becomes ``sub-<user>/ses-<session>/``
(labels are the ids without ``-``/``_``; the ids themselves go to ``participants.tsv`` and the sessions file):

* EEG: the ``eeg`` stream plus the ``other`` streams read from the same EEG file (same timestamps, an mne
  channel type in their metadata) as one BrainVision file written with pybv (the library ``mne.export``
  uses for BrainVision; called directly for the resolution), IEEE float32 in µV at a resolution of
  1e6 / 2**20 µV, a power of two in volts, so float32 volts round-trip bit for bit and every BrainVision
  reader sees microvolts; plus ``*_channels.tsv``, ``*_eeg.json``, ``*_events.tsv``.
* motion: each ``motion`` stream as ``motion/*_tracksys-<stream>_motion.tsv`` + ``_channels.tsv`` (name =
  canonical channel, ``tracked_point`` head/left_controller/right_controller, OpenXR axes ``RSP``) +
  ``_channels.json`` + ``_motion.json`` (``StartTime``; a ``LATENCY`` column when the samples are not exactly
  regular). Values as float32 text (shortest round-trip form), missing samples ``n/a``.
* gaze: each ``gaze`` stream as ``*_recording-eye1|eye2|eye3_physio.tsv.gz`` + ``.json`` (left, right,
  combined/cyclopean), ``PhysioType: "eyetrack"``: ``timestamp`` (seconds from the main file's first sample,
  exact to the nanosecond, so irregular streams keep their times), ``x_coordinate`` /
  ``y_coordinate`` = gaze yaw / pitch in radians in the head frame (eye-in-head; derived from the eye's
  direction, or the normalised scene-camera point for a combined stream without directions), ``pupil_size``
  (mm), then the stream's canonical channels of that eye as extra columns, which the import reads back.
* events of the session in ``*_events.tsv`` beside the main file (onset relative to its first sample).
* ``dataset_description.json``, ``README``, ``participants.tsv`` (+ ``.json``), ``*_sessions.tsv``,
  ``*_scans.tsv`` (``acq_time`` of every EEG, motion and physio file: microseconds, UTC).

The per-eye ``recording-eye1|eye2|eye3`` labels follow BIDS 1.10, which requires one file per eye and
recommends these labels; the import accepts any recording label. bids-validator 3.0.2
reports no error on the datasets written here (only recommendations such as ``Authors``).

Streams of other modalities (hand, audio, depth, unrelated ``other`` streams) have no BIDS home here and are
listed in the returned :class:`BidsExport` as skipped. The dataset is built in a temporary folder beside
``out_root`` and moved into place at the end, so a failed export leaves nothing half written.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xrdata.errors import LoaderError, XRDataError, require
from xrdata.loaders._registry import PathLike, reader
from xrdata.model import EVENTS_SCHEMA, Recording, Stream, check_id
from xrdata.schemas import load as load_schema
from xrdata.validation import check_writable

__all__ = ["BIDS_VERSION", "BidsExport", "BidsRecording", "bids_recordings", "export_bids", "iter_bids", "read_bids"]

#: BIDS version written to dataset_description.json (eye tracking in physio files needs >= 1.10).
BIDS_VERSION = "1.10.0"

_EEG_EXTS = (".vhdr", ".edf", ".bdf", ".set")
_GAZE_EYES = {"left": ("eye1", "left"), "right": ("eye2", "right"), "combined": ("eye3", "cyclopean")}
#: BIDS channels.tsv type -> mne channel type (import) ...
_BIDS_TO_MNE = {
    "EEG": "eeg", "EOG": "eog", "HEOG": "eog", "VEOG": "eog", "ECG": "ecg", "EMG": "emg", "TRIG": "stim",
    "MISC": "misc", "RESP": "resp", "GSR": "gsr", "TEMP": "temperature", "PPG": "bio", "SYSCLOCK": "syst",
    "EYEGAZE": "eyegaze", "PUPIL": "pupil", "REF": "eeg", "AUDIO": "misc",
}
#: ... and back (export).
_MNE_TO_BIDS = {
    "eeg": "EEG", "eog": "EOG", "ecg": "ECG", "emg": "EMG", "stim": "TRIG", "misc": "MISC", "resp": "RESP",
    "gsr": "GSR", "temperature": "TEMP", "bio": "PPG", "syst": "SYSCLOCK", "eyegaze": "EYEGAZE",
    "pupil": "PUPIL",
}
#: OpenXR axes as BIDS SpatialAxes: +X right, +Y superior (up), +Z posterior (-Z forward).
OPENXR_AXES = "RSP"
_AXIS_VECTORS = {
    "R": (1, 0, 0), "L": (-1, 0, 0), "S": (0, 1, 0), "I": (0, -1, 0), "P": (0, 0, 1), "A": (0, 0, -1),
}
#: Motion channel units this import converts to the schema's SI units: (unit found, unit wanted) -> factor.
_UNIT_FACTORS = {
    ("mm", "m"): 1e-3, ("cm", "m"): 1e-2, ("m", "m"): 1.0,
    ("m/s^2", "m/s^2"): 1.0, ("m/s2", "m/s^2"): 1.0, ("g", "m/s^2"): 9.80665,
    ("rad/s", "rad/s"): 1.0, ("deg/s", "rad/s"): math.pi / 180, ("dps", "rad/s"): math.pi / 180,
    ("T", "T"): 1.0, ("mT", "T"): 1e-3, ("uT", "T"): 1e-6, ("\u00b5T", "T"): 1e-6, ("\u03bcT", "T"): 1e-6,
    ("nT", "T"): 1e-9, ("G", "T"): 1e-4, ("gauss", "T"): 1e-4,
    ("n/a", "1"): 1.0, ("1", "1"): 1.0, ("", "1"): 1.0,
}
_TYPE_PREFIX = {"ACCEL": "accel", "GYRO": "gyro", "MAGN": "mag"}
_COMPONENTS = {"x": "x", "y": "y", "z": "z", "quat_x": "qx", "quat_y": "qy", "quat_z": "qz", "quat_w": "qw"}
_QUAT = ("qx", "qy", "qz", "qw")


# ===================================================================================== file naming


@dataclass(frozen=True)
class _BidsFile:
    path: Path
    entities: dict[str, str]  # ordered as in the name
    suffix: str
    ext: str
    datatype: str

    def key(self) -> tuple[str, str, str, str]:
        e = self.entities
        return e.get("sub", ""), e.get("ses", ""), e.get("task", ""), e.get("run", "")


def _parse_name(path: Path) -> _BidsFile | None:
    name = path.name
    base, dot, rest = name.partition(".")
    parts = base.split("_")
    if len(parts) < 2 or "-" in parts[-1]:
        return None
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        key, sep, value = part.partition("-")
        if not sep or not key or not value:
            return None
        entities[key] = value
    if "sub" not in entities:
        return None
    return _BidsFile(path, entities, parts[-1], dot + rest, path.parent.name)


def _scan(root: Path) -> list[_BidsFile]:
    """Every BIDS-named file under ``root/sub-*`` (sorted), derivatives and sourcedata left out."""
    out = []
    for sub in sorted(root.glob("sub-*")):
        if not sub.is_dir():
            continue
        for path in sorted(sub.rglob("*")):
            if path.is_file():
                parsed = _parse_name(path)
                if parsed is not None:
                    out.append(parsed)
    return out


def _is_bids_root(path: Path) -> bool:
    return path.is_dir() and (path / "dataset_description.json").is_file()


def _sidecar(data: _BidsFile, files: Sequence[_BidsFile], suffix: str, ext: str) -> _BidsFile | None:
    """The sidecar of ``data`` by the BIDS inheritance principle: same suffix/extension, entities a subset of
    the data file's, in the data file's folder or an ancestor; the nearest (then most specific) wins."""
    best: tuple[int, int, _BidsFile] | None = None
    for f in files:
        if f.suffix != suffix or f.ext != ext:
            continue
        if any(data.entities.get(k) != v for k, v in f.entities.items()):
            continue
        try:
            depth = len(data.path.parent.relative_to(f.path.parent).parts)
        except ValueError:
            continue
        score = (depth, -len(f.entities))
        if best is None or score < best[:2]:
            best = (score[0], score[1], f)
    return best[2] if best else None


def _sidecar_json(data: _BidsFile, files: Sequence[_BidsFile], suffix: str) -> dict[str, Any]:
    """The inherited ``*_<suffix>.json`` of ``data`` as a dict ({} when there is none)."""
    side = _sidecar(data, files, suffix, ".json")
    return _read_json(side.path if side else None, data.path)


def _read_json(path: Path | None, where: Path) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoaderError(f"{path}: not a readable JSON sidecar ({exc}); fix or remove it") from exc
    if not isinstance(doc, dict):
        raise LoaderError(f"{path}: a JSON sidecar must hold an object, got {type(doc).__name__}")
    return doc


def _read_tsv(path: Path, *, header: bool, names: Sequence[str] | None = None) -> pl.DataFrame:
    """A TSV (``.tsv`` or ``.tsv.gz``) as all-string columns, ``n/a`` as null."""
    try:
        payload = path.read_bytes()
        if path.name.endswith(".gz"):
            payload = gzip.decompress(payload)
        if not payload.strip():
            return pl.DataFrame(schema={n: pl.String for n in names or []})
        df = pl.read_csv(
            io.BytesIO(payload), separator="\t", has_header=header, null_values=["n/a"], infer_schema=False,
            quote_char=None, new_columns=list(names) if names is not None else None,
        )
    except (OSError, EOFError, gzip.BadGzipFile, pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{path}: not a readable tab-separated file ({type(exc).__name__}: {exc})") from exc
    if names is not None and df.width != len(names):
        raise LoaderError(f"{path}: {df.width} columns, but the sidecar describes {len(names)}: {list(names)}")
    return df


def _numeric(df: pl.DataFrame, path: Path) -> np.ndarray:
    """(T, C) float64 of string columns (null -> NaN)."""
    try:
        cols = [df[c].str.strip_chars().cast(pl.Float64, strict=True).to_numpy() for c in df.columns]
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise LoaderError(f"{path}: non-numeric values in a data column ({exc})") from exc
    return np.stack(cols, axis=-1) if cols else np.empty((df.height, 0))


def _seconds_to_ns(values: pl.Series, path: Path) -> np.ndarray:
    """Decimal seconds (strings) to int64 ns, exactly for plain decimals (up to 9 fractional digits)."""
    s = values.str.strip_chars()
    parts = s.str.extract_groups(r"^([+-]?)(\d*)(?:\.(\d*))?$")
    whole, frac = parts.struct.field("2"), parts.struct.field("3")
    if s.null_count() == 0 and whole.null_count() == 0 and not (s == "").any():
        sign = np.where(parts.struct.field("1").to_numpy() == "-", -1, 1)
        w = whole.replace("", "0").cast(pl.Int64).to_numpy()
        f = (frac.fill_null("") + "000000000").str.slice(0, 9).cast(pl.Int64).to_numpy()
        return (sign * (w * 1_000_000_000 + f)).astype(np.int64)
    try:
        x = s.cast(pl.Float64, strict=True).to_numpy()
    except pl.exceptions.PolarsError as exc:
        raise LoaderError(f"{path}: time values are not numbers ({exc})") from exc
    if not np.isfinite(x).all():
        raise LoaderError(f"{path}: time column has missing or non-finite values")
    return np.rint(x * 1e9).astype(np.int64)


def _fmt_seconds(ns: int) -> str:
    """int ns -> decimal seconds string, exact (9 fractional digits, trailing zeros trimmed)."""
    sign = "-" if ns < 0 else ""
    q, r = divmod(abs(int(ns)), 1_000_000_000)
    return f"{sign}{q}.{r:09d}".rstrip("0").rstrip(".") if r else f"{sign}{q}"


def _regular_times(t0: int, n: int, rate: float) -> np.ndarray:
    """Sample times of a strictly regular stream; the import rebuilds times with the same formula."""
    return t0 + np.rint(np.arange(n, dtype=np.float64) * 1e9 / rate).astype(np.int64)


def _parse_acq_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


# ========================================================================================== import


@dataclass
class _Group:
    key: tuple[str, str, str, str]
    eeg: list[_BidsFile] = field(default_factory=list)
    motion: list[_BidsFile] = field(default_factory=list)
    physio: list[_BidsFile] = field(default_factory=list)
    events: list[_BidsFile] = field(default_factory=list)

    def data_files(self) -> list[_BidsFile]:
        return [*self.eeg, *self.motion, *self.physio]


def _groups(files: Sequence[_BidsFile]) -> dict[tuple[str, str, str, str], _Group]:
    groups: dict[tuple[str, str, str, str], _Group] = {}
    for f in files:
        if f.suffix == "eeg" and f.ext in _EEG_EXTS and f.datatype == "eeg":
            kind = "eeg"
        elif f.suffix == "motion" and f.ext == ".tsv":
            kind = "motion"
        elif f.suffix == "physio" and f.ext == ".tsv.gz":
            kind = "physio"
        elif f.suffix == "events" and f.ext == ".tsv":
            kind = "events"
        else:
            continue
        g = groups.setdefault(f.key(), _Group(f.key()))
        getattr(g, kind).append(f)
    return {k: g for k, g in groups.items() if g.data_files()}


def _id_map(path: Path, key_col: str, id_col: str) -> dict[str, str]:
    """``participants.tsv`` / ``*_sessions.tsv``: BIDS label -> xrdata id, where the id column exists."""
    if not path.is_file():
        return {}
    df = _read_tsv(path, header=True)
    if key_col not in df.columns or id_col not in df.columns:
        return {}
    out = {}
    for label, value in zip(df[key_col].to_list(), df[id_col].to_list(), strict=True):
        if label and value:
            out[label.split("-", 1)[-1]] = value
    return out


def _events_from_tsv(path: Path, offset_ns: int) -> list[tuple[int, int, str, str]]:
    df = _read_tsv(path, header=True)
    if "onset" not in df.columns:
        raise LoaderError(f"{path}: events.tsv needs an 'onset' column; it has {df.columns}")
    onset = df["onset"]
    keep = onset.is_not_null()
    df = df.filter(keep)
    t = _seconds_to_ns(df["onset"], path) + offset_ns
    dur = (
        _seconds_to_ns(df["duration"].fill_null("0"), path) if "duration" in df.columns
        else np.zeros(df.height, dtype=np.int64)
    )
    extra = [c for c in df.columns if c not in ("onset", "duration", "trial_type", "value", "sample")]
    rows = []
    for i, row in enumerate(df.iter_rows(named=True)):
        label = row.get("trial_type") or row.get("value") or "event"
        value = row.get("value") or ""
        if extra:
            more = {c: row[c] for c in extra if row[c] is not None}
            if more:
                value = json.dumps({"value": value, **more}) if value else json.dumps(more)
        rows.append((int(t[i]), max(0, int(dur[i])), str(label), str(value)))
    return rows


def _scans(files: Sequence[_BidsFile], data: _BidsFile) -> dict[str, datetime]:
    """acq_time per data file name from the scans.tsv of the data file's session."""
    scans = _sidecar(data, files, "scans", ".tsv")
    if scans is None:
        return {}
    df = _read_tsv(scans.path, header=True)
    if "filename" not in df.columns or "acq_time" not in df.columns:
        return {}
    out = {}
    for fname, acq in zip(df["filename"].to_list(), df["acq_time"].to_list(), strict=True):
        when = _parse_acq_time(acq)
        if fname and when is not None:
            out[Path(fname).name] = when
    return out


def _read_eeg_file(
    f: _BidsFile, files: Sequence[_BidsFile], has_events: bool, user: str, session: str, notes: list[str]
) -> Recording:
    from xrdata.loaders import eeg

    types: dict[str, str] = {}
    channels = _sidecar(f, files, "channels", ".tsv")
    if channels is not None:
        df = _read_tsv(channels.path, header=True)
        if "name" in df.columns and "type" in df.columns:
            for name, typ in zip(df["name"].to_list(), df["type"].to_list(), strict=True):
                mne_type = _BIDS_TO_MNE.get((typ or "").upper())
                if name and mne_type:
                    types[name] = mne_type
    readers = {".vhdr": eeg.read_brainvision, ".edf": eeg.read_edf, ".bdf": eeg.read_bdf, ".set": eeg.read_eeglab}
    options: dict[str, Any] = {
        "user_id": user, "session_id": session, "annotations": not has_events, "stim_events": not has_events,
    }
    with eeg.deferred_check():  # _load_group validates the whole recording once
        try:
            return readers[f.ext](f.path, channel_types=types or None, **options)
        except eeg.UnknownChannelsError as exc:  # channels.tsv and the data file disagree: type what matches
            notes.append(f"{channels.path.name if channels else f.path.name} lists channels the data file "
                         f"lacks: {exc.missing}")
            wanted = {k: v for k, v in types.items() if k not in set(exc.missing)}
            return readers[f.ext](f.path, channel_types=wanted or None, **options)


def _frame_matrix(axes: str | None) -> np.ndarray | None:
    """3x3 matrix taking vectors from a BIDS ``SpatialAxes`` frame (e.g. ``ALS``) to OpenXR (``RSP``)."""
    if not axes or len(axes) != 3 or any(a not in _AXIS_VECTORS for a in axes.upper()):
        return None
    cols = [_AXIS_VECTORS[a] for a in axes.upper()]  # where each source axis points, in OpenXR axes
    m = np.array(cols, dtype=np.float64).T
    if abs(abs(np.linalg.det(m)) - 1) > 1e-9:  # two axes along one line ("ARA"): not a frame
        return None
    return m


def _motion_target(name: str, typ: str, component: str, point: str) -> tuple[str, str] | None:
    """(canonical motion channel, schema unit) for one BIDS motion channel, or None."""
    canonical = {c["name"]: c["unit"] for c in load_schema("motion")["channels"]["canonical"]}
    if name in canonical:
        return name, canonical[name]
    comp = _COMPONENTS.get(component.lower())
    key = re.sub(r"[^a-z]", "", point.lower())
    if key in ("head", "hmd", "headset"):
        body = "head"
    elif key in ("leftcontroller", "controllerleft", "leftctrl"):
        body = "left_ctrl"
    elif key in ("rightcontroller", "controllerright", "rightctrl"):
        body = "right_ctrl"
    else:
        return None
    if comp is None:
        return None
    typ = typ.upper()
    if typ == "POS" and comp in "xyz":
        target = f"{body}_p{comp}"
    elif typ == "ORNT" and comp in _QUAT:
        target = f"{body}_{comp}"
    elif typ in _TYPE_PREFIX and comp in "xyz" and body == "head":
        target = f"{_TYPE_PREFIX[typ]}_{comp}"
    else:
        return None
    return (target, canonical[target]) if target in canonical else None


def _motion_streams(f: _BidsFile, files: Sequence[_BidsFile], offset_ns: int, notes: list[str]) -> list[Stream]:
    """The motion (canonical channels, SI, OpenXR) and other streams of one Motion-BIDS file."""
    meta_doc = _sidecar_json(f, files, "motion")
    chan_file = _sidecar(f, files, "channels", ".tsv")
    if chan_file is None:
        raise LoaderError(f"{f.path}: no *_channels.tsv beside it; BEP029 motion files need one to name their columns")
    chans = _read_tsv(chan_file.path, header=True)
    needed = ["name", "component", "type", "tracked_point", "units"]
    missing = [c for c in needed if c not in chans.columns]
    if missing:
        raise LoaderError(f"{chan_file.path}: motion channels.tsv lacks the required column(s) {missing}")
    names = [str(n) for n in chans["name"].to_list()]
    df = _read_tsv(f.path, header=False, names=[f"c{i}" for i in range(len(names))])
    rate = meta_doc.get("SamplingFrequency")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not (rate > 0 and math.isfinite(rate)):
        rate = meta_doc.get("SamplingFrequencyEffective")
    rate_hz = float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0 else None
    types = [str(t or "").upper() for t in chans["type"].to_list()]
    if "LATENCY" in types:
        j = types.index("LATENCY")
        time_ns = offset_ns + _seconds_to_ns(df[f"c{j}"], f.path)
    elif rate_hz is not None:
        time_ns = _regular_times(offset_ns, df.height, rate_hz)
    else:
        raise LoaderError(f"{f.path}: neither a SamplingFrequency in *_motion.json nor a LATENCY channel: "
                          "the samples cannot be placed in time")
    cols = [i for i, t in enumerate(types) if t != "LATENCY"]
    values = _numeric(df.select([f"c{i}" for i in cols]), f.path)
    frame_doc = _sidecar_json(f, files, "channels")
    levels = frame_doc.get("reference_frame", {}).get("Levels", {}) if isinstance(frame_doc, dict) else {}
    frames = chans["reference_frame"].to_list() if "reference_frame" in chans.columns else [None] * len(names)
    mapped: dict[str, tuple[int, float, str | None]] = {}  # target -> (column in values, factor, SpatialAxes)
    rest: list[int] = []
    for k, i in enumerate(cols):
        row = chans.row(i, named=True)
        target = _motion_target(names[i], types[i], str(row["component"] or ""), str(row["tracked_point"] or ""))
        unit = str(row["units"] or "n/a")
        if target is None or (unit, target[1]) not in _UNIT_FACTORS or target[0] in mapped:
            rest.append(k)
            continue
        level = levels.get(frames[i]) if isinstance(levels, dict) and frames[i] else None
        axes = (level or {}).get("SpatialAxes") if isinstance(level, dict) else None
        axes = axes or meta_doc.get("SpatialAxes")
        mapped[target[0]] = (k, _UNIT_FACTORS[(unit, target[1])], axes if isinstance(axes, str) else None)
    for group in load_schema("motion")["channels"]["groups"]:  # the schema takes vectors/quaternions whole
        members = group["channels"]
        if any(m in mapped for m in members) and not all(m in mapped for m in members):
            rest.extend(mapped.pop(m)[0] for m in members if m in mapped)
    rest.sort()
    streams: list[Stream] = []
    label = re.sub(r"[^A-Za-z0-9_-]", "", f.entities.get("tracksys", "motion")) or "motion"
    source = {
        "source_format": "bids-motion", "source_file": f.path.name, "tracking_system": meta_doc.get(
            "TrackingSystemName"), "bids_sidecar": meta_doc,
    }
    if mapped:
        order = [c["name"] for c in load_schema("motion")["channels"]["canonical"] if c["name"] in mapped]
        data = np.stack([values[:, mapped[n][0]] * mapped[n][1] for n in order], axis=-1)
        frame_notes = _to_openxr(data, order, {n: mapped[n][2] for n in order}, notes, f.path)
        units = [
            {c["name"]: c["unit"] for c in load_schema("motion")["channels"]["canonical"]}[n] for n in order
        ]
        space = next((fr for fr in frames if fr), None)
        meta = {**source, "source_channels": [names[cols[mapped[n][0]]] for n in order], **frame_notes}
        if space and space != "device":
            meta["reference_space"] = str(space)
        streams.append(Stream(label, "motion", time_ns, data.astype(np.float32), order, units, rate_hz, meta))
    if rest:
        other_names = [names[cols[k]] for k in rest]
        other_units = [str(chans["units"][cols[k]] or "n/a") for k in rest]
        other_units = ["1" if u == "n/a" else u for u in other_units]
        types_kept = [types[cols[k]] for k in rest]
        streams.append(Stream(
            f"{label}_other" if mapped else label, "other", time_ns, values[:, rest], other_names, other_units,
            rate_hz, {**source, "bids_types": types_kept},
        ))
    return streams


def _to_openxr(
    data: np.ndarray, order: list[str], axes: Mapping[str, str | None], notes: list[str], path: Path
) -> dict[str, Any]:
    """Rotate vector and quaternion groups from their SpatialAxes frame to OpenXR, in place."""
    groups: dict[str, list[str]] = {}
    for n in order:
        base = n[:-1] if n[-1] in "xyzw" else n
        groups.setdefault(base, []).append(n)
    converted: dict[str, str] = {}
    unknown = []
    for base, members in groups.items():
        frame = axes[members[0]]
        m = _frame_matrix(frame)
        if m is None:
            unknown.append(base)
            continue
        if frame and frame.upper() == OPENXR_AXES:
            converted[base] = OPENXR_AXES
            continue
        if base.endswith("_q") and len(members) == 4:
            q = {n[-1]: order.index(n) for n in members}
            proper = m * np.sign(np.linalg.det(m))  # a reflection's conjugation equals the rotation's
            v = data[:, [q["x"], q["y"], q["z"]]] @ proper.T
            data[:, q["x"]], data[:, q["y"]], data[:, q["z"]] = v[:, 0], v[:, 1], v[:, 2]
        elif len(members) == 3:
            xyz = {n[-1]: order.index(n) for n in members}
            v = data[:, [xyz["x"], xyz["y"], xyz["z"]]] @ m.T
            data[:, xyz["x"]], data[:, xyz["y"]], data[:, xyz["z"]] = v[:, 0], v[:, 1], v[:, 2]
        else:
            unknown.append(base)
            continue
        converted[base] = str(frame)
    out: dict[str, Any] = {}
    if converted:
        out["source_spatial_axes"] = converted
        out["frame_conversion"] = "BIDS SpatialAxes -> OpenXR (RSP: +X right, +Y up, +Z back)"
    if unknown:
        out["frame_unknown"] = unknown
        notes.append(f"{path.name}: no usable SpatialAxes for {unknown}; values kept in the source axes")
    return out


def _canonical_gaze() -> dict[str, str]:
    return {c["name"]: c["unit"] for c in load_schema("gaze")["channels"]["canonical"]}


def _physio_streams(
    files_: Sequence[_BidsFile], files: Sequence[_BidsFile], main_offset: dict[str, int], notes: list[str]
) -> list[Stream]:
    """Eye-tracking physio files -> a gaze stream per recording-label prefix (files of this module), or an
    ``other`` stream per foreign file."""
    canonical = _canonical_gaze()
    merged: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray], float, _BidsFile]]] = {}
    streams: list[Stream] = []
    for f in files_:
        side = _sidecar(f, files, "physio", ".json")
        doc = _read_json(side.path if side else None, f.path)
        if not doc:
            raise LoaderError(f"{f.path}: no *_physio.json beside it; physio files need one (Columns, "
                              "SamplingFrequency, StartTime)")
        cols = doc.get("Columns")
        rate = doc.get("SamplingFrequency")
        start = doc.get("StartTime", 0.0)
        if not (isinstance(cols, list) and cols and all(isinstance(c, str) for c in cols)):
            raise LoaderError(f"{side.path if side else f.path}: 'Columns' must list the column names")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not (rate > 0 and math.isfinite(rate)):
            raise LoaderError(f"{side.path if side else f.path}: SamplingFrequency must be a positive number")
        if isinstance(start, bool) or not isinstance(start, int | float) or not math.isfinite(start):
            raise LoaderError(f"{side.path if side else f.path}: StartTime must be a number (seconds)")
        df = _read_tsv(f.path, header=False, names=cols)
        eyetrack = str(doc.get("PhysioType", "")).lower() == "eyetrack"
        t = None
        if "timestamp" in cols and str((doc.get("timestamp") or {}).get("Units", "")).lower() == "s" and df.height:
            cand = _seconds_to_ns(df["timestamp"], f.path) if df["timestamp"].null_count() == 0 else None
            if cand is not None and abs(int(cand[0]) - round(start * 1e9)) <= 1e9 / rate:
                t = cand  # session-clock seconds per sample (as this module writes)
        if t is None:
            t = _regular_times(round(start * 1e9), df.height, float(rate))
        t = t + main_offset.get("physio", 0)
        ours = eyetrack and any(c in canonical for c in cols)
        if ours:
            eye = str(doc.get("RecordedEye", "")).lower()
            values: dict[str, np.ndarray] = {}
            for c in cols:
                if c in canonical:
                    values[c] = _numeric(df.select(c), f.path)[:, 0]
            prefix = {"left": "left", "right": "right"}.get(eye)
            if prefix and "pupil_size" in cols and f"{prefix}_pupil_diameter" not in values:
                if str((doc.get("pupil_size") or {}).get("Units", "")).lower() == "mm":
                    values[f"{prefix}_pupil_diameter"] = _numeric(df.select("pupil_size"), f.path)[:, 0]
            label = re.sub(r"eye\d*$", "", f.entities.get("recording", ""))
            merged.setdefault(label, []).append((t, values, float(rate), f))
            continue
        data = _numeric(df, f.path)
        units = [str((doc.get(c) or {}).get("Units", "1")) if isinstance(doc.get(c), dict) else "1" for c in cols]
        name = re.sub(r"[^A-Za-z0-9_-]", "", "physio_" + f.entities.get("recording", "")) or "physio"
        streams.append(Stream(name[:64], "other", t, data, cols, ["1" if u in ("n/a", "") else u for u in units],
                              float(rate), {"source_format": "bids-physio", "source_file": f.path.name,
                                            "bids_sidecar": doc}))
    for label, parts in merged.items():
        t0 = parts[0][0]
        if any(not np.array_equal(p[0], t0) for p in parts[1:]):
            notes.append(f"eye-tracking files {[p[3].path.name for p in parts]} differ in timing: kept apart")
            groups = [[p] for p in parts]
        else:
            groups = [parts]
        for gi, group in enumerate(groups):
            values = {}
            for p in group:
                values.update(p[1])
            order = [c for c in canonical if c in values]
            name = (re.sub(r"[^A-Za-z0-9_-]", "", label) or "gaze") + (f"_{gi}" if len(groups) > 1 else "")
            streams.append(Stream(
                name, "gaze", group[0][0], np.stack([values[c] for c in order], -1).astype(np.float32), order,
                [canonical[c] for c in order], group[0][2],
                {"source_format": "bids-eyetrack", "source_files": [p[3].path.name for p in group]},
            ))
    return streams


def _session_id(key: tuple[str, str, str, str]) -> str:
    _, ses, task, run = key
    sid = "-".join(p for p in (ses, task, run) if p)
    return sid or "session"


def _load_group(
    root: Path, files: Sequence[_BidsFile], group: _Group, user_id: str, session_id: str
) -> Recording:
    notes: list[str] = []
    streams: list[Stream] = []
    events: list[tuple[int, int, str, str]] = []
    meta: dict[str, Any] = {
        "source_format": "bids",
        "bids": {"subject": group.key[0], "session": group.key[1], "task": group.key[2], "run": group.key[3]},
    }
    main = group.eeg[0] if group.eeg else (group.motion[0] if group.motion else group.physio[0])
    scans = _scans(files, main)
    anchor: datetime | None = None
    offsets: dict[Path, int] = {main.path: 0}
    eeg_events = bool(group.events)
    for k, f in enumerate(group.eeg):
        rec = _read_eeg_file(f, files, eeg_events, user_id, session_id, notes)
        tag = "" if k == 0 else "_" + re.sub(r"[^A-Za-z0-9]", "", f.entities.get("acq", str(k)))
        for s in rec.streams.values():
            name = (s.name + tag)[:64]
            streams.append(Stream(name, s.modality, s.time_ns, s.data, s.channels, s.units, s.rate_hz,
                                  {**s.meta, "source_file": f.path.name}))
        events.extend(rec.events.iter_rows())
        if k == 0:
            if rec.meta.get("utc_anchor"):
                anchor = datetime.fromisoformat(rec.meta["utc_anchor"])
            for key in ("device", "line_freq_hz"):
                if key in rec.meta:
                    meta[key] = rec.meta[key]
            notes.extend(rec.meta.get("reader_warnings", []))
    main_acq = scans.get(main.path.name)
    if anchor is None and main_acq is not None and main_acq.tzinfo is not None:
        anchor = main_acq
    for f in group.motion:
        side = _sidecar(f, files, "motion", ".json")
        doc = _read_json(side.path if side else None, f.path)
        start = doc.get("StartTime")
        if f.path == main.path:
            offset = 0  # the main file's first sample is the clock's zero
        elif isinstance(start, int | float) and not isinstance(start, bool) and math.isfinite(start):
            offset = round(start * 1e9)
        elif main_acq is not None and f.path.name in scans:
            offset = round((scans[f.path.name] - main_acq) / timedelta(microseconds=1)) * 1000
        else:
            offset = 0
            notes.append(f"{f.path.name}: no StartTime and no acq_time: assumed to start with {main.path.name}")
        offsets[f.path] = offset
        got = _motion_streams(f, files, offset, notes)
        for s in got:
            if s.name in {x.name for x in streams}:
                s = Stream(f"{s.name}_{len(streams)}"[:64], s.modality, s.time_ns, s.data, s.channels, s.units,
                           s.rate_hz, s.meta)
            streams.append(s)
    physio_offset = 0
    if main in group.physio:
        side = _sidecar(main, files, "physio", ".json")
        start = _read_json(side.path if side else None, main.path).get("StartTime", 0.0)
        if isinstance(start, int | float) and not isinstance(start, bool) and math.isfinite(start):
            physio_offset = -round(start * 1e9)  # the main physio file's first sample is zero
    streams.extend(_physio_streams(group.physio, files, {"physio": physio_offset}, notes))
    for ev in group.events:
        data_file = next(
            (d for d in group.data_files() if d.path.parent == ev.path.parent
             and all(d.entities.get(k) == v for k, v in ev.entities.items())),
            main,
        )
        events.extend(_events_from_tsv(ev.path, offsets.get(data_file.path, 0)))
    if anchor is not None:
        meta["utc_anchor"] = anchor.astimezone(UTC).isoformat()
    meta["source_files"] = [str(f.path.relative_to(root)) for f in group.data_files()]
    if notes:
        meta["reader_warnings"] = notes
    frame = pl.DataFrame(events, schema=EVENTS_SCHEMA, orient="row") if events else None
    rec = Recording(user_id, session_id, streams, events=frame, meta=meta)
    from xrdata.loaders.eeg import check_deferred

    if not check_deferred():  # (ingest validates what it writes itself)
        check_writable(rec)  # raises SchemaError, which read_bids names the dataset in
    return rec


def _resolve(
    root: Path, subject: str | None, session: str | None, task: str | None, run: str | None
) -> tuple[list[_BidsFile], list[_Group]]:
    files = _scan(root)
    groups = list(_groups(files).values())
    for value, pos, what in ((subject, 0, "sub"), (session, 1, "ses"), (task, 2, "task"), (run, 3, "run")):
        if value is not None:
            label = value.split("-", 1)[1] if value.startswith(f"{what}-") else value
            groups = [g for g in groups if g.key[pos] == label]
    return files, groups


@reader("bids", (), sniff=_is_bids_root, description="BIDS dataset folder (EEG, motion, eye-tracking physio)")
def read_bids(
    path: PathLike,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    subject: str | None = None,
    session: str | None = None,
    task: str | None = None,
    run: str | None = None,
) -> Recording:
    """Read one recording (one ``sub``/``ses``/``task``/``run``) of a BIDS dataset.

    Args:
        path: the dataset root (the folder with ``dataset_description.json``).
        user_id, session_id: ids to give the recording (default: from the dataset, see the module docstring).
        subject, session, task, run: BIDS labels selecting the recording (``"01"`` or ``"sub-01"``); those
            left out must be unambiguous, otherwise the error lists the recordings there are.

    Streams: ``eeg`` (+ ``stim``/``misc``... other streams) from the EEG file, ``motion`` per tracking system,
    ``gaze`` from eye-tracking physio, ``other`` streams for what maps to no modality; all on a clock whose
    zero is the main file's first sample.
    """
    root = Path(path)
    if not _is_bids_root(root):
        raise LoaderError(f"{root}: not a BIDS dataset root (no dataset_description.json in it)")
    files, groups = _resolve(root, subject, session, task, run)
    if not groups:
        raise LoaderError(
            f"{root}: no EEG, motion or physio recording matches subject={subject!r} session={session!r} "
            f"task={task!r} run={run!r}"
        )
    if len(groups) > 1:
        listed = ", ".join("/".join(f"{k}-{v}" for k, v in zip(("sub", "ses", "task", "run"), g.key, strict=True)
                                    if v) for g in groups[:20])
        raise LoaderError(
            f"{root}: {len(groups)} recordings match; pass subject=, session=, task=, run= to pick one "
            f"(or use iter_bids): {listed}"
        )
    group = groups[0]
    default_user, default_session = _default_ids(root, files, group)
    uid = user_id or default_user
    session_id = session_id or default_session
    try:
        check_id(uid, "user id")
        check_id(session_id, "session id")
    except XRDataError as exc:
        raise LoaderError(f"{root}: {exc}; pass user_id= / session_id= to name the recording") from exc
    try:
        return _load_group(root, files, group, uid, session_id)
    except XRDataError as exc:  # name the dataset and the recording (a file's own reader names only the file)
        if isinstance(exc, LoaderError) and str(root) in str(exc):
            raise
        raise LoaderError(f"{root}: {'/'.join(v for v in group.key if v)}: {exc}") from exc


def _default_ids(root: Path, files: Sequence[_BidsFile], group: _Group) -> tuple[str, str]:
    """(user id, session id) of a recording when none are given (module docstring, "Ids")."""
    sub, ses = group.key[0], group.key[1]
    users = _id_map(root / "participants.tsv", "participant_id", "xrdata_user_id")
    sessions = _id_map(root / f"sub-{sub}" / f"sub-{sub}_sessions.tsv", "session_id", "xrdata_session_id")
    same_ses = [g for g in _groups(files).values() if g.key[:2] == (sub, ses)]
    mapped = sessions.get(ses) if len(same_ses) == 1 else None
    return users.get(sub, sub), mapped or _session_id(group.key)


@dataclass(frozen=True)
class BidsRecording:
    """One recording (``sub``/``ses``/``task``/``run``) of a BIDS dataset, before it is read.

    Attributes:
        root: the dataset root.
        subject, session, task, run: its BIDS labels ("" where the dataset has no such entity).
        user_id, session_id: the ids :func:`read_bids` gives it by default (module docstring, "Ids").
        files: its data files (EEG, motion, physio) and ``*_events.tsv`` files: what identifies its content
            (``xrdata.loaders.ingest`` hashes them, with the companions of BrainVision/EEGLAB files, to
            detect a recording ingested before).
    """

    root: Path
    subject: str
    session: str
    task: str
    run: str
    user_id: str
    session_id: str
    files: tuple[Path, ...]

    @property
    def label(self) -> str:
        """``sub-01/ses-1/task-rest/run-1`` (the entities it has)."""
        keys = ("sub", "ses", "task", "run")
        return "/".join(f"{k}-{v}" for k, v in zip(keys, (self.subject, self.session, self.task, self.run),
                                                   strict=True) if v)

    def read(self, *, user_id: str | None = None, session_id: str | None = None) -> Recording:
        """:func:`read_bids` of this recording."""
        return read_bids(self.root, user_id=user_id, session_id=session_id, subject=self.subject,
                         session=self.session, task=self.task, run=self.run)


def bids_recordings(
    root: PathLike, *, subject: str | None = None, session: str | None = None, task: str | None = None,
    run: str | None = None,
) -> list[BidsRecording]:
    """The recordings of a BIDS dataset (sorted by sub, ses, task, run), optionally only those matching the
    given labels (``"01"`` or ``"sub-01"``), without reading them."""
    root = Path(root)
    if not _is_bids_root(root):
        raise LoaderError(f"{root}: not a BIDS dataset root (no dataset_description.json in it)")
    files, groups = _resolve(root, subject, session, task, run)
    out = []
    for g in sorted(groups, key=lambda g: g.key):
        user, sess = _default_ids(root, files, g)
        members = sorted({f.path for f in (*g.data_files(), *g.events)})
        out.append(BidsRecording(root, *g.key, user, sess, tuple(members)))
    return out


def iter_bids(root: PathLike, *, subjects: Sequence[str] | None = None) -> Iterator[Recording]:
    """Every recording of a BIDS dataset, one per ``sub``/``ses``/``task``/``run`` (see :func:`read_bids`),
    optionally only for some subjects (labels with or without ``sub-``)."""
    root = Path(root)
    if not _is_bids_root(root):
        raise LoaderError(f"{root}: not a BIDS dataset root (no dataset_description.json in it)")
    wanted = None if subjects is None else {s.split("-", 1)[1] if s.startswith("sub-") else s for s in subjects}
    for key in sorted(_groups(_scan(root))):
        if wanted is not None and key[0] not in wanted:
            continue
        yield read_bids(root, subject=key[0], session=key[1], task=key[2], run=key[3])


# ========================================================================================== export


@dataclass
class BidsExport:
    """What :func:`export_bids` wrote.

    Attributes:
        root: the dataset folder.
        files: paths written, relative to ``root``.
        skipped: ``(user, session, stream, reason)`` for each stream with no BIDS equivalent here.
        warnings: messages from the writers (e.g. pybv on non-µV units).
    """

    root: Path
    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _labels(ids: Sequence[str]) -> dict[str, str]:
    """A BIDS label (alphanumeric) for each id, unique: ``user_01`` -> ``user01``, clashes get a number."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for i in ids:
        base = re.sub(r"[^A-Za-z0-9]", "", i) or "x"
        label, k = base, 1
        while label.lower() in used:
            k += 1
            label = f"{base}{k}"
        used.add(label.lower())
        out[i] = label
    return out


def _write_tsv(path: Path, df: pl.DataFrame, *, header: bool = True, gz: bool = False) -> None:
    buf = io.BytesIO()
    df.write_csv(buf, separator="\t", include_header=header, null_value="n/a", quote_style="never")
    payload = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def _text(value: str) -> str:
    """TSV cells cannot hold tabs or newlines (BIDS TSV has no quoting)."""
    return re.sub(r"[\t\r\n]+", " ", value)


def _value_columns(s: Stream) -> pl.DataFrame:
    """Stream data as float text columns: float32 written in its shortest round-trip form, NaN as n/a."""
    data = np.asarray(s.data)
    cols = {f"c{i}": data[:, i] for i in range(data.shape[1])}
    return pl.DataFrame(cols).fill_nan(None)


def _is_regular(s: Stream) -> bool:
    t = np.asarray(s.time_ns)
    return s.rate_hz is not None and t.size > 0 and np.array_equal(t, _regular_times(int(t[0]), t.size, s.rate_hz))


def _rate_for_sidecar(s: Stream) -> float:
    if s.rate_hz is not None:
        return float(s.rate_hz)
    d = np.diff(np.asarray(s.time_ns))
    d = d[d > 0]
    return float(1e9 / np.median(d)) if d.size else 1.0


@dataclass
class _SessionOut:
    folder: Path  # sub-X/ses-Y
    prefix: str  # sub-X_ses-Y_task-T
    t0_ns: int = 0  # session-clock time of the main file's first sample
    main_datatype: str = ""
    main_name: str = ""
    scans: list[tuple[str, int]] = field(default_factory=list)  # (relative file name, start ns)


def _eeg_members(rec: Recording) -> list[list[Stream]]:
    """EEG files to write: each eeg stream with the mne-typed other streams on the very same timestamps."""
    groups: list[list[Stream]] = []
    others = [s for s in rec.streams.values() if s.modality == "other" and "mne_ch_type" in s.meta]
    for s in rec.by_modality("eeg"):
        t = np.asarray(s.time_ns)
        members = [s] + [o for o in others if o.n_samples == s.n_samples and np.array_equal(np.asarray(o.time_ns), t)]
        for o in members[1:]:
            others.remove(o)
        groups.append(members)
    return groups


def _write_eeg(out: _SessionOut, members: list[Stream], acq: str | None, rec: Recording, report: BidsExport,
               task: str, root: Path) -> str:
    pybv: Any = require("pybv", "loaders")
    names: list[str] = []
    units: list[str] = []
    types: list[str] = []
    columns = []
    for s in members:
        mne_type = "eeg" if s.modality == "eeg" else str(s.meta.get("mne_ch_type", "misc"))
        for j, (c, u) in enumerate(zip(s.channels, s.units, strict=True)):
            if c in names:
                raise XRDataError(f"{rec.user_id}/{rec.session_id}: channel {c!r} in two EEG streams")
            names.append(c)
            units.append(u)
            types.append(_MNE_TO_BIDS.get(mne_type, "MISC"))
            columns.append(np.asarray(s.data)[:, j])
    data = np.stack(columns, axis=0).astype(np.float64)  # (C, T) as pybv wants
    main = members[0]
    t = np.asarray(main.time_ns)
    rate = _rate_for_sidecar(main)
    if not _is_regular(main):
        report.warnings.append(
            f"{rec.user_id}/{rec.session_id}/{main.name}: timestamps are not exactly regular; BrainVision stores "
            f"a rate only ({rate:g} Hz from the first sample)"
        )
    bv_units = ["µV" if u == "V" else ("n/a" if u == "1" else ("°C" if u == "degC" else u)) for u in units]
    # 1e6 / 2**20 µV: the stored float32 is volts x 2**20, exact, and the reader's scale undoes it exactly
    resolution = np.array([1e6 / 2**20 if u == "V" else 1.0 for u in units])
    acq_part = f"_acq-{acq}" if acq else ""
    base = f"{out.prefix}{acq_part}_eeg"
    folder = out.folder / "eeg"
    anchor = _anchor(rec)
    meas_date = anchor + timedelta(microseconds=round(int(t[0]) / 1000)) if anchor is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pybv.write_brainvision(
            data=data, sfreq=rate, ch_names=names, fname_base=base, folder_out=root / folder, overwrite=False,
            resolution=resolution, unit=bv_units, fmt="binary_float32", meas_date=meas_date,
        )
    report.warnings.extend(f"{base}: {w.message}" for w in caught)
    for ext in (".vhdr", ".vmrk", ".eeg"):
        report.files.append(str(folder / (base + ext)))
    chan_units = [u if u != "V" else "µV" for u in bv_units]
    high = [main.meta.get("lowpass_hz")] * len(names)
    low = [main.meta.get("highpass_hz")] * len(names)
    chans = pl.DataFrame({
        "name": names, "type": types, "units": chan_units,
        "low_cutoff": [None if v is None else str(v) for v in low],
        "high_cutoff": [None if v is None else str(v) for v in high],
    }, schema={"name": pl.String, "type": pl.String, "units": pl.String, "low_cutoff": pl.String,
               "high_cutoff": pl.String})
    _write_tsv(root / folder / f"{out.prefix}{acq_part}_channels.tsv", chans)
    report.files.append(str(folder / f"{out.prefix}{acq_part}_channels.tsv"))
    counts = {t_: types.count(t_) for t_ in set(types)}
    sidecar: dict[str, Any] = {
        "TaskName": task,
        "SamplingFrequency": rate,
        "EEGReference": str(main.meta.get("reference", "n/a")),
        "PowerLineFrequency": rec.meta.get("line_freq_hz", "n/a"),
        "SoftwareFilters": "n/a",
        "EEGChannelCount": counts.get("EEG", 0),
        "EOGChannelCount": counts.get("EOG", 0),
        "ECGChannelCount": counts.get("ECG", 0),
        "EMGChannelCount": counts.get("EMG", 0),
        "MiscChannelCount": counts.get("MISC", 0),
        "TriggerChannelCount": counts.get("TRIG", 0),
        "RecordingDuration": (int(t[-1]) - int(t[0])) / 1e9 + 1 / rate if t.size else 0.0,
        "RecordingType": "continuous",
    }
    device = rec.meta.get("device")
    if isinstance(device, str) and device:
        sidecar["ManufacturersModelName"] = device
    _write_json(root / folder / f"{base}.json", sidecar)
    report.files.append(str(folder / f"{base}.json"))
    out.scans.append((f"eeg/{base}.vhdr", int(t[0])))
    return f"eeg/{base}.vhdr"


def _anchor(rec: Recording) -> datetime | None:
    value = rec.meta.get("utc_anchor")
    return datetime.fromisoformat(value).astimezone(UTC) if isinstance(value, str) else None


def _motion_channel_rows(s: Stream) -> list[dict[str, str]]:
    canonical = {c["name"]: c["unit"] for c in load_schema("motion")["channels"]["canonical"]}
    space = str(s.meta.get("reference_space", "local"))
    rows = []
    for c, u in zip(s.channels, s.units, strict=True):
        if c.startswith("head_p"):
            typ, comp, point, frame = "POS", c[-1], "head", space
        elif c.startswith("head_q"):
            typ, comp, point, frame = "ORNT", f"quat_{c[-1]}", "head", space
        elif c.split("_")[0] in ("accel", "gyro", "mag"):
            typ = {"accel": "ACCEL", "gyro": "GYRO", "mag": "MAGN"}[c.split("_")[0]]
            comp, point, frame = c[-1], "head", "device"
        elif c.startswith(("left_ctrl_", "right_ctrl_")):
            side = c.split("_")[0]
            typ = "POS" if c[-2] == "p" else "ORNT"
            comp = c[-1] if typ == "POS" else f"quat_{c[-1]}"
            point, frame = f"{side}_controller", space
        else:
            typ, comp, point, frame = "MISC", "n/a", "n/a", "n/a"
        unit = canonical.get(c, u)
        rows.append({"name": c, "component": comp, "type": typ, "tracked_point": point,
                     "units": "n/a" if unit == "1" else unit, "reference_frame": frame})
    return rows


def _write_motion(out: _SessionOut, s: Stream, label: str, rec: Recording, report: BidsExport, task: str,
                  root: Path) -> str:
    base = f"{out.prefix}_tracksys-{label}"
    folder = out.folder / "motion"
    t = np.asarray(s.time_ns)
    rows = _motion_channel_rows(s)
    values = _value_columns(s)
    regular = _is_regular(s)
    if not regular:
        rows.append({"name": "latency", "component": "n/a", "type": "LATENCY", "tracked_point": "n/a",
                     "units": "s", "reference_frame": "n/a"})
        values = values.with_columns(pl.Series("latency", [_fmt_seconds(int(x) - int(t[0])) for x in t]))
    _write_tsv(root / folder / f"{base}_motion.tsv", values, header=False)
    _write_tsv(root / folder / f"{base}_channels.tsv", pl.DataFrame(rows))
    levels = {}
    for r in rows:
        frame = r["reference_frame"]
        if frame != "n/a" and frame not in levels:
            what = "device (IMU) frame" if frame == "device" else f"OpenXR '{frame}' reference space"
            levels[frame] = {"SpatialAxes": OPENXR_AXES, "RotationRule": "right-hand",
                             "Description": f"{what}: right-handed, +X right, +Y up, -Z forward, metres"}
    _write_json(root / folder / f"{base}_channels.json", {"reference_frame": {
        "Description": "Frame the channel's values are expressed in", "Levels": levels}})
    count = {typ: sum(r["type"] == typ for r in rows) for typ in ("POS", "ORNT", "ACCEL", "GYRO", "MAGN", "MISC")}
    rate = _rate_for_sidecar(s)
    sidecar: dict[str, Any] = {
        "TaskName": task,
        "TrackingSystemName": s.name,
        "SamplingFrequency": rate,
        "StartTime": (int(t[0]) - out.t0_ns) / 1e9 if t.size else 0.0,
        "MotionChannelCount": len(rows),
        **{f"{k}ChannelCount": v for k, v in count.items() if v},
        "TrackedPointsCount": len({r["tracked_point"] for r in rows if r["tracked_point"] != "n/a"}),
        "SpatialAxes": OPENXR_AXES,
        "RotationRule": "right-hand",
        "MissingValues": "n/a",
    }
    if not regular:
        sidecar["SamplingFrequencyEffective"] = rate
        sidecar["LATENCYChannelCount"] = 1
    device = rec.meta.get("device")
    if isinstance(device, str) and device:
        sidecar["ManufacturersModelName"] = device
    _write_json(root / folder / f"{base}_motion.json", sidecar)
    for name in (f"{base}_motion.tsv", f"{base}_channels.tsv", f"{base}_channels.json", f"{base}_motion.json"):
        report.files.append(str(folder / name))
    out.scans.append((f"motion/{base}_motion.tsv", int(t[0]) if t.size else 0))
    return f"motion/{base}_motion.tsv"


def _gaze_angles(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw (positive right) and pitch (positive up), radians, of OpenXR directions (-Z forward)."""
    with np.errstate(invalid="ignore"):
        return np.arctan2(x, -z), np.arctan2(y, np.hypot(x, z))


def _write_gaze(out: _SessionOut, s: Stream, label: str, datatype: str, report: BidsExport,
                root: Path) -> None:
    data = np.asarray(s.data)
    col = {c: data[:, i] for i, c in enumerate(s.channels)}
    t = np.asarray(s.time_ns)
    shared = [c for c in s.channels if not c.startswith(("left_", "right_", "combined_"))]
    eyes = [e for e in _GAZE_EYES if any(c.startswith(f"{e}_") for c in s.channels)] or ["combined"]
    if shared and "combined" not in eyes:
        eyes.append("combined")
    canonical = _canonical_gaze()
    for eye in eyes:
        rec_label, recorded = _GAZE_EYES[eye]
        mine = [c for c in s.channels if c.startswith(f"{eye}_")] + (shared if eye == "combined" else [])
        n = t.size
        if all(f"{eye}_dir_{a}" in col for a in "xyz"):
            xc, yc = _gaze_angles(col[f"{eye}_dir_x"], col[f"{eye}_dir_y"], col[f"{eye}_dir_z"])
            system, unit, desc = "eye-in-head", "rad", "gaze yaw (+ right) / pitch (+ up) from the eye direction"
        elif eye == "combined" and "norm_x" in col and "norm_y" in col:
            xc, yc = col["norm_x"], col["norm_y"]
            system, unit, desc = "gaze-on-screen", "a.u.", "normalised scene-camera image point, top-left origin"
        else:
            xc = yc = np.full(n, np.nan)
            system, unit, desc = "eye-in-head", "rad", "not recorded"
        cols: dict[str, Any] = {
            "timestamp": [_fmt_seconds(int(v) - out.t0_ns) for v in t],
            "x_coordinate": np.asarray(xc, dtype=np.float32),
            "y_coordinate": np.asarray(yc, dtype=np.float32),
        }
        doc_cols: dict[str, Any] = {
            "timestamp": {"Description": "sample time on the session clock, seconds since the first sample of "
                          "the recording's main data file", "Units": "s"},
            "x_coordinate": {"Description": f"x: {desc}", "Units": unit},
            "y_coordinate": {"Description": f"y: {desc}", "Units": unit},
        }
        pupil = f"{eye}_pupil_diameter"
        if pupil in col:
            cols["pupil_size"] = np.asarray(col[pupil], dtype=np.float32)
            doc_cols["pupil_size"] = {"Description": "pupil diameter", "Units": "mm"}
        for c in mine:
            if c != pupil:
                cols[c] = np.asarray(col[c], dtype=np.float32)
                doc_cols[c] = {"Description": f"xrdata gaze channel {c} (OpenXR view space)", "Units": canonical[c]}
        frame = pl.DataFrame(cols).fill_nan(None)
        base = f"{out.prefix}_recording-{label}{rec_label}_physio"
        folder = out.folder / datatype
        _write_tsv(root / folder / f"{base}.tsv.gz", frame, header=False, gz=True)
        sidecar = {
            "SamplingFrequency": _rate_for_sidecar(s),
            "StartTime": (int(t[0]) - out.t0_ns) / 1e9 if t.size else 0.0,
            "Columns": list(cols),
            "PhysioType": "eyetrack",
            "RecordedEye": recorded,
            "SampleCoordinateSystem": system,
            "SampleCoordinateUnits": unit,
            "EnvironmentCoordinates": "top-left" if system == "gaze-on-screen" else "center",
            **doc_cols,
        }
        _write_json(root / folder / f"{base}.json", sidecar)
        report.files += [str(folder / f"{base}.tsv.gz"), str(folder / f"{base}.json")]
        out.scans.append((f"{datatype}/{base}.tsv.gz", int(t[0]) if t.size else 0))


def _write_session(rec: Recording, folder: Path, prefix: str, task: str, report: BidsExport, root: Path) -> bool:
    out = _SessionOut(folder, prefix)
    eeg_groups = _eeg_members(rec)
    motion = rec.by_modality("motion")
    gaze = rec.by_modality("gaze")
    used = {s.name for g in eeg_groups for s in g} | {s.name for s in motion} | {s.name for s in gaze}
    for s in rec.streams.values():
        if s.name not in used:
            report.skipped.append((rec.user_id, rec.session_id, s.name, f"no BIDS mapping for {s.modality} streams"))
    if not (eeg_groups or motion or gaze):
        return False
    first = eeg_groups[0][0] if eeg_groups else (motion[0] if motion else gaze[0])
    out.t0_ns = int(np.asarray(first.time_ns)[0]) if first.n_samples else 0
    main = ""
    acq_labels = _labels([g[0].name for g in eeg_groups])
    for k, group in enumerate(eeg_groups):
        written = _write_eeg(out, group, None if k == 0 else acq_labels[group[0].name], rec, report, task, root)
        main = main or written
    motion_labels = _labels([s.name for s in motion])
    for s in motion:
        written = _write_motion(out, s, motion_labels[s.name], rec, report, task, root)
        main = main or written
    datatype = "eeg" if eeg_groups else ("motion" if motion else "beh")
    gaze_labels = _labels([s.name for s in gaze])
    for k, s in enumerate(gaze):
        _write_gaze(out, s, "" if k == 0 else gaze_labels[s.name], datatype, report, root)
    # events beside the main file, onsets relative to its first sample
    ev = rec.events
    if ev.height:
        main_base = Path(main).name.rsplit("_", 1)[0] if main else f"{prefix}"
        ev_dir = folder / (Path(main).parent.name if main else datatype)
        table = pl.DataFrame({
            "onset": [_fmt_seconds(int(x) - out.t0_ns) for x in ev["time_ns"]],
            "duration": [_fmt_seconds(int(x)) for x in ev["duration_ns"]],
            "trial_type": [_text(x) for x in ev["label"]],
            "value": [_text(x) if x else None for x in ev["value"]],
        }, schema={"onset": pl.String, "duration": pl.String, "trial_type": pl.String, "value": pl.String})
        _write_tsv(root / ev_dir / f"{main_base}_events.tsv", table)
        _write_json(root / ev_dir / f"{main_base}_events.json", {
            "trial_type": {"Description": "event label (xrdata events 'label'; task labels are 'task/<name>')"},
            "value": {"Description": "event payload (xrdata events 'value'; the class of a task label)"},
        })
        report.files += [str(ev_dir / f"{main_base}_events.tsv"), str(ev_dir / f"{main_base}_events.json")]
    anchor = _anchor(rec)
    if out.scans:
        rows = []
        for name, start in out.scans:
            when = anchor + timedelta(microseconds=round(start / 1000)) if anchor is not None else None
            rows.append((name, when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z" if when else None))
        scans = pl.DataFrame(rows, schema={"filename": pl.String, "acq_time": pl.String}, orient="row")
        scans_name = f"{folder.parent.name}_{folder.name}_scans.tsv"
        _write_tsv(root / folder / scans_name, scans)
        report.files.append(str(folder / scans_name))
    return True


def export_bids(
    store: Any,
    out_root: PathLike,
    *,
    users: Sequence[str] | None = None,
    task: str = "xr",
    name: str = "xrdata export",
    authors: Sequence[str] = (),
    license: str | None = None,
    overwrite: bool = False,
) -> BidsExport:
    """Write users' sessions of a store as a BIDS dataset (layout in the module docstring).

    Args:
        store: a :class:`xrdata.Store` or the URL/path of one (opened read-only).
        out_root: the dataset folder to create.
        users: user ids to export (default: all).
        task: BIDS task label for sessions that were not imported from BIDS (those keep their own).
        name, authors, license: ``Name``, ``Authors``, ``License`` of ``dataset_description.json``.
        overwrite: replace an existing ``out_root``; otherwise an existing non-empty folder is an error.

    Returns a :class:`BidsExport` listing the files written and the streams skipped. Needs pybv for EEG
    (``pip install 'xrdata[loaders]'``).
    """
    import xrdata

    st = store if isinstance(store, xrdata.Store) else xrdata.open_store(store, "r")
    out_root = Path(out_root)
    if out_root.exists() and any(out_root.iterdir()) and not overwrite:
        raise XRDataError(f"{out_root} exists and is not empty; pass overwrite=True to replace it")
    if not re.fullmatch(r"[A-Za-z0-9]+", task):
        raise XRDataError(f"task label {task!r} must be alphanumeric (BIDS labels are [A-Za-z0-9]+)")
    chosen = list(st.users()) if users is None else list(users)
    for u in chosen:
        check_id(u, "user id")
    tmp = out_root.parent / f".{out_root.name}.partial-{uuid.uuid4().hex[:8]}"
    report = BidsExport(out_root)
    try:
        tmp.mkdir(parents=True)
        description: dict[str, Any] = {
            "Name": name, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
            "GeneratedBy": [{"Name": "xrdata", "Version": xrdata.__version__}],
        }
        if authors:
            description["Authors"] = list(authors)
        if license:
            description["License"] = license
        _write_json(tmp / "dataset_description.json", description)
        (tmp / "README").write_text(
            f"{name}\n\nExported by xrdata {xrdata.__version__} from an xrdata store. EEG as BrainVision (float32, "
            "microvolts), motion as Motion-BIDS (OpenXR axes: SpatialAxes RSP), eye tracking as physio files with "
            "PhysioType eyetrack (one file per eye). participants.tsv and sub-*_sessions.tsv map the BIDS labels "
            "to the store's user and session ids.\n", encoding="utf-8")
        sub_labels = _labels(chosen)
        participants = []
        for user in chosen:
            sessions = st.sessions(user)
            ses_labels = _labels(sessions)
            sub = sub_labels[user]
            ses_rows = []
            for session in sessions:
                rec = st.read(user, session)
                bids = rec.meta.get("bids")
                t_label = str((bids if isinstance(bids, dict) else {}).get("task") or task)
                t_label = t_label if re.fullmatch(r"[A-Za-z0-9]+", t_label) else task
                ses = ses_labels[session]
                folder = Path(f"sub-{sub}") / f"ses-{ses}"
                if _write_session(rec, folder, f"sub-{sub}_ses-{ses}_task-{t_label}", t_label, report, tmp):
                    ses_rows.append((f"ses-{ses}", session))
            if ses_rows:
                participants.append((f"sub-{sub}", user))
                path = Path(f"sub-{sub}") / f"sub-{sub}_sessions.tsv"
                _write_tsv(tmp / path, pl.DataFrame(ses_rows, schema={"session_id": pl.String,
                                                                      "xrdata_session_id": pl.String}, orient="row"))
                report.files.append(str(path))
        _write_tsv(tmp / "participants.tsv", pl.DataFrame(
            participants, schema={"participant_id": pl.String, "xrdata_user_id": pl.String}, orient="row"))
        _write_json(tmp / "participants.json", {
            "participant_id": {"Description": "BIDS subject label"},
            "xrdata_user_id": {"Description": "user id in the xrdata store the dataset was exported from"},
        })
        _write_json(tmp / "sessions.json", {
            "session_id": {"Description": "BIDS session label"},
            "xrdata_session_id": {"Description": "session id in the xrdata store the dataset was exported from"},
        })
        report.files = ["dataset_description.json", "README", "participants.tsv", "participants.json",
                        "sessions.json", *report.files]
        if out_root.exists():
            trash = out_root.parent / f".{out_root.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_root, trash)
            os.replace(tmp, out_root)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out_root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return report
