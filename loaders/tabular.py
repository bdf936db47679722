"""CSV / TSV / JSON-lines logs (Unity, OpenXR, Quest, Pico ...) -> Recording, driven by a declarative mapping.

A *mapping* is a small JSON document that says which columns of a log become which canonical channels.
Shipped mappings live in ``loaders/mappings/`` (list them with :func:`available_mappings`); a mapping may
also be a path to your own JSON file or an already parsed dict. Format (every key but ``name``, ``time``
and ``streams`` is optional)::

    {
      "name": "unity_vr_head_pose",            # [a-z0-9_]+, names the mapping in metadata
      "description": "...",
      "format": "csv",                         # "csv" | "tsv" | "jsonl"; default from the file suffix
      "delimiter": ",",                        # csv/tsv field separator (default "," / tab)
      "decimal": ".",                          # "," for logs written with a decimal comma (Unity under a
                                               #   German or French culture: "0,25;1,5"); needs another
                                               #   delimiter
      "header": true,                          # false: headerless file, columns are 0-based indices
      "match": ["PosX", "RotW"],               # header columns that identify the layout (default: the
                                               #   time column and every mapped column); used by read()
      "frame": "unity",                        # default source frame of the streams: "openxr" | "unity"
      "device": "Pico Neo 2 Eye",              # recording meta["device"]
      "time": {"column": "Timestamp", "unit": "s"},   # unit: "s", "ms", "us", "ns" or "iso" (ISO 8601
                                               #   date-time; naive times are read as "timezone", default
                                               #   UTC); "column" may list alternatives (first present wins)
      "streams": [
        {"name": "head_pose", "modality": "motion", "frame": "unity", "rate_hz": null,
         "reference_space": "local",          # stream meta["reference_space"]
         "where": {"column": "kind", "equals": "head"},   # optional row filter (string comparison)
         "channels": [
           {"column": "PosX", "name": "head_px", "unit": "m", "scale": 1.0,
            "valid_column": "IsValid",          # optional: rows where it is 0/false become NaN
            "frame_axis": "z"}                  # only for 'other' streams: "z", "qx" or "qy" flip under
         ]},                                   #   the unity -> OpenXR conversion
        {"name": "hands", "modality": "hand",  # hand streams: one column template for 2 x 26 joints
         "joint_columns": "{hand}_{joint}_{channel}",
         "channels": ["px", "py", "pz", "qx", "qy", "qz", "qw"],
         "confidence_column": "{hand}_confidence", "scale": {"px": 1.0}}
      ],
      "events": [
        {"label": "marker", "value_column": "Event"},     # a row with a non-blank value -> one event
        {"label": "speech", "value_column": "written", "end_column": "endTime_ns",
         "time_column": "startTime_ns", "time_unit": "ns"},
        {"label_column": "Kind", "duration_column": "Dur", "duration_unit": "s"}
      ]
    }

Conventions applied:

* Times: integer columns are converted exactly (``ms * 10**6`` ...), float seconds with
  ``np.round(t * 1e9)``; ISO date-times give Unix-time nanoseconds and set ``utc_anchor`` to the epoch.
  Samples are kept in time order: a log whose rows go back in time is stably sorted per stream and the
  stream meta says how many backward steps there were (``reordered_backward_steps``).
* Frames: ``"unity"`` (left-handed, +Y up, +Z forward) -> OpenXR (right-handed, -Z forward) negates the
  z of every position/direction and maps a quaternion (x, y, z, w) to (-x, -y, z, w). For canonical
  modalities the vector/quaternion components come from the schema groups; 'other' streams mark them with
  ``frame_axis``.
* Values: ``value * scale`` in ``unit``; blank cells, ``nan``/``null``/``n/a`` are NaN; ``true``/``false``
  are 1/0; non-finite values become NaN (counted in the stream meta); a non-blank cell that is not a number
  is an error naming the column and row. A row in which every column of a stream is blank is not a sample
  of that stream (counted as ``rows_without_values``), so one wide log can hold several streams.
* Robust parsing: UTF-8/UTF-16 byte-order marks, CRLF, quoted fields, blank lines, unnamed (blank)
  columns, headerless files; a last line cut short (no line break and fewer fields than the header, or
  invalid JSON) is dropped and counted in the recording meta (``dropped_truncated_lines``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xrdata.errors import LoaderError, SchemaError, ValidationError
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.model import Recording, Stream
from xrdata.schemas import STREAM_MODALITIES, load
from xrdata.validation import check_writable

__all__ = [
    "TIME_UNITS",
    "TextTable",
    "available_mappings",
    "finite_or_nan",
    "header_columns",
    "load_mapping",
    "numeric_column",
    "read_table",
    "read_text_table",
    "sort_by_time",
    "time_column_ns",
]

#: Nanoseconds per unit of a time column.
TIME_UNITS: dict[str, int] = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_NULL_WORDS = ("", "nan", "null", "none", "na", "n/a")
_SUFFIX_FORMAT = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_HAND_JOINTS: tuple[str, ...] = tuple(load("hand")["axis_labels"]["joint"])
_HANDS: tuple[str, ...] = tuple(load("hand")["axis_labels"]["hand"])


# ------------------------------------------------------------------------------------------ text tables


@dataclass
class TextTable:
    """A parsed text table: every cell a string (None for blank), plus what parsing had to fix.

    Attributes:
        frame: polars DataFrame of String columns, one row per data line.
        meta: parse notes for the recording meta: ``dropped_truncated_lines``, ``blank_lines``,
            ``encoding`` (when a byte-order mark was found).
        path: the file read.
        decimal: the decimal separator of its numbers ("." or ",").
    """

    frame: pl.DataFrame
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    decimal: str = "."

    def stripped(self, column: str) -> pl.Series:
        """The column's cells without surrounding blanks, decimal commas made points."""
        s = self.frame[column].str.strip_chars()
        return s.str.replace(",", ".", literal=True) if self.decimal == "," else s

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def has(self, *names: str) -> bool:
        return all(n in self.frame.columns for n in names)


def _decode(raw: bytes, meta: dict[str, Any]) -> bytes:
    """UTF-8 bytes without byte-order mark (UTF-16 files are transcoded)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        meta["encoding"] = "utf-8-sig"
        return raw[3:]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        meta["encoding"] = "utf-16"
        return raw.decode("utf-16", errors="replace").encode("utf-8")
    return raw


def _fields(line: bytes, delimiter: str) -> list[str] | None:
    """The fields of one CSV line, or None if it does not parse (e.g. an unterminated quote)."""
    try:
        rows = list(csv.reader([line.decode("utf-8", errors="replace")], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if rows else []


def _drop_truncated_last_line(data: bytes, delimiter: str, meta: dict[str, Any]) -> bytes:
    """Drop a last line that was cut short: no line break after it and fewer fields than the first line."""
    data = data.rstrip(b"\r\n") + b"\n" if data.endswith((b"\n", b"\r")) else data
    if data.endswith(b"\n"):
        return data
    cut = data.rfind(b"\n")
    if cut < 0:
        return data + b"\n"  # a single line without line break (e.g. a header only)
    first = _fields(data[: data.find(b"\n")].rstrip(b"\r"), delimiter)
    last = _fields(data[cut + 1 :].rstrip(b"\r"), delimiter)
    if last is None or (first is not None and len(last) < len(first)):
        meta["dropped_truncated_lines"] = meta.get("dropped_truncated_lines", 0) + 1
        return data[: cut + 1]
    return data + b"\n"


def read_text_table(
    path: PathLike, *, delimiter: str | None = None, header: bool = True, fmt: str | None = None,
    decimal: str = ".",
) -> TextTable:
    """Parse a CSV, TSV or JSON-lines file into a table of strings (with polars for CSV/TSV).

    Args:
        path: the file.
        delimiter: field separator; default ``","`` (``"\\t"`` for ``.tsv``).
        header: False for headerless files: columns are then named ``"0"``, ``"1"``, ...
        fmt: ``"csv"``, ``"tsv"`` or ``"jsonl"``; default from the suffix (CSV for unknown suffixes).
        decimal: ``","`` when the numbers are written with a decimal comma (the delimiter must differ).

    Returns a :class:`TextTable`; raises :class:`LoaderError` naming the file when it cannot be parsed.
    """
    p = Path(path)
    fmt = fmt or _SUFFIX_FORMAT.get(p.suffix.lower(), "csv")
    meta: dict[str, Any] = {}
    data = _decode(p.read_bytes(), meta)
    if decimal not in (".", ","):
        raise LoaderError(f"{p}: the decimal separator must be '.' or ',', got {decimal!r}")
    if fmt == "jsonl":
        return TextTable(_jsonl_frame(data, p, meta), p, meta, decimal)
    sep = delimiter or ("\t" if fmt == "tsv" else ",")
    if len(sep) != 1:
        raise LoaderError(f"{p}: the delimiter must be one character, got {sep!r}")
    if sep == decimal:
        raise LoaderError(f"{p}: 'decimal' {decimal!r} needs another 'delimiter' (e.g. ';'): both would be {sep!r}")
    if not data.strip():
        raise LoaderError(f"{p}: the file is empty")
    data = _drop_truncated_last_line(data, sep, meta)
    try:
        frame = pl.read_csv(
            io.BytesIO(data), separator=sep, has_header=header, infer_schema=False, encoding="utf8-lossy",
            quote_char='"',
        )
    except pl.exceptions.NoDataError as exc:
        raise LoaderError(f"{p}: the file is empty") from exc
    except pl.exceptions.ComputeError as exc:
        first = str(exc).splitlines()[0]
        raise LoaderError(
            f"{p}: not a well-formed {'TSV' if sep == chr(9) else 'CSV'} table ({first}); check the "
            "delimiter, the quoting and that every line has as many fields as the header"
        ) from exc
    if not header:
        frame = frame.rename({c: str(i) for i, c in enumerate(frame.columns)})
    else:
        frame = frame.rename({c: c.strip() for c in frame.columns if c != c.strip() and c.strip() not in frame.columns})
    if frame.height and frame.width:
        blank = frame.select(
            pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in frame.columns])
        ).to_series()
        n_blank = int(blank.sum())
        if n_blank:
            meta["blank_lines"] = n_blank
            frame = frame.filter(~blank)
    return TextTable(frame, p, meta, decimal)


def _flatten(value: Any, key: str, out: dict[str, str | None]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{key}.{k}" if key else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(v, f"{key}.{i}" if key else str(i), out)
    elif value is None:
        out[key] = None
    elif isinstance(value, bool):
        out[key] = "1" if value else "0"
    else:
        out[key] = value if isinstance(value, str) else repr(value)


def _jsonl_frame(data: bytes, p: Path, meta: dict[str, Any]) -> pl.DataFrame:
    """One row per JSON object line; nested objects/lists flatten to ``a.b`` / ``a.0`` columns."""
    lines = data.split(b"\n")
    rows: list[dict[str, str | None]] = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if i == len(lines) - 1:  # the last line, without line break after it: cut short
                meta["dropped_truncated_lines"] = meta.get("dropped_truncated_lines", 0) + 1
                continue
            raise LoaderError(
                f"{p}: line {i + 1} is not valid JSON ({exc}); JSON-lines needs one object per line"
            ) from exc
        if not isinstance(obj, dict):
            raise LoaderError(f"{p}: line {i + 1} is a JSON {type(obj).__name__}, not an object")
        flat: dict[str, str | None] = {}
        _flatten(obj, "", flat)
        rows.append(flat)
    if not rows:
        raise LoaderError(f"{p}: no JSON objects in the file")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in columns}, schema={c: pl.String for c in columns})


# ------------------------------------------------------------------------------------ value conversion


def numeric_column(table: TextTable, column: str, *, dtype: Any = np.float64) -> np.ndarray:
    """The column as a float array: blank/``nan``/``null`` -> NaN, ``true``/``false`` -> 1/0.

    Raises :class:`LoaderError` naming the file, column and row for a cell that is not a number.
    """
    s = table.stripped(column)
    low = s.str.to_lowercase()
    s = s.str.replace(r"(?i)^true$", "1").str.replace(r"(?i)^false$", "0")
    values = s.cast(pl.Float64, strict=False)
    bad = values.is_null() & ~low.is_in(list(_NULL_WORDS)) & low.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        comma = table.decimal == "." and re.fullmatch(r"[-+]?\d*,\d+", s[i] or "")
        raise LoaderError(
            f"{table.path}: column {column!r} row {i + 1} holds {s[i]!r}, which is not a number"
            + ("; for numbers written with a decimal comma set \"decimal\": \",\" in the mapping" if comma else "")
        )
    out: np.ndarray = values.fill_null(math.nan).to_numpy().astype(dtype, copy=False)
    return out


def _exact_int64(table: TextTable, column: str) -> np.ndarray | None:
    """The column as exact int64 if every cell is an integer (``"12"`` or ``"12.0"``), else None."""
    s = table.stripped(column)
    if s.null_count() or (s == "").any():
        raise LoaderError(f"{table.path}: time column {column!r} has blank cells; every row needs a time")
    ints = s.cast(pl.Int64, strict=False)
    if ints.null_count() == 0:
        return np.asarray(ints.to_numpy(), dtype=np.int64)
    dotzero = s.str.replace(r"\.0*$", "")
    ints = dotzero.cast(pl.Int64, strict=False)
    if ints.null_count() == 0:
        return np.asarray(ints.to_numpy(), dtype=np.int64)
    return None


def time_column_ns(table: TextTable, column: str, unit: str, *, timezone: str = "UTC") -> np.ndarray:
    """A time column converted to int64 nanoseconds.

    Integer cells are scaled exactly (``us * 1000``); float cells with ``np.round(t * ns_per_unit)``;
    ``unit="iso"`` parses ISO 8601 date-times to Unix-time nanoseconds (naive times in ``timezone``).
    """
    if column not in table.frame.columns:
        raise LoaderError(f"{table.path}: no time column {column!r}; columns: {table.columns[:20]}")
    if unit == "iso":
        s = table.frame[column].str.strip_chars()
        try:
            parsed = s.str.to_datetime(time_unit="ns", strict=True)
        except pl.exceptions.PolarsError as exc:
            raise LoaderError(f"{table.path}: time column {column!r} is not ISO 8601 date-times: {exc}") from exc
        if parsed.null_count():
            raise LoaderError(f"{table.path}: time column {column!r} has blank or unparseable date-times")
        dtype = parsed.dtype
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            parsed = parsed.dt.replace_time_zone(timezone)
        return np.asarray(parsed.dt.epoch("ns").to_numpy(), dtype=np.int64)
    if unit not in TIME_UNITS:
        raise LoaderError(f"{table.path}: unknown time unit {unit!r}; use one of {[*TIME_UNITS, 'iso']}")
    factor = TIME_UNITS[unit]
    ints = _exact_int64(table, column)
    if ints is not None:
        limit = np.iinfo(np.int64).max // factor
        if ints.size and int(np.abs(ints).max()) > limit:
            raise LoaderError(f"{table.path}: time column {column!r} overflows int64 nanoseconds")
        return ints * factor
    values = numeric_column(table, column)
    if not np.isfinite(values).all():
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise LoaderError(f"{table.path}: time column {column!r} row {i + 1} is not a finite number")
    scaled = values * factor
    if scaled.size and float(np.abs(scaled).max()) >= 2.0**63:
        raise LoaderError(f"{table.path}: time column {column!r} overflows int64 nanoseconds")
    return np.round(scaled).astype(np.int64)


def finite_or_nan(data: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Replace infinities by NaN (an infinite measurement is invalid) and count them in ``meta``."""
    bad = np.isinf(data)
    if bad.any():
        data = np.where(bad, np.nan, data)
        meta["nonfinite_to_nan"] = int(bad.sum())
    return data


def sort_by_time(time_ns: np.ndarray, data: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Stable sort of samples by time when the source went back in time (counted in ``meta``)."""
    back = int(np.count_nonzero(np.diff(time_ns) < 0)) if time_ns.size > 1 else 0
    if back:
        order = np.argsort(time_ns, kind="stable")
        meta["reordered_backward_steps"] = back
        return time_ns[order], data[order]
    return time_ns, data


# ---------------------------------------------------------------------------------------------- mappings


def _mappings_dir() -> Any:
    return resources.files("xrdata.loaders").joinpath("mappings")


def available_mappings() -> list[str]:
    """Names of the mappings shipped in ``loaders/mappings/`` (pass one as ``read_table(..., mapping=)``)."""
    folder = _mappings_dir()
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".json"))


def load_mapping(mapping: str | PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """Parse and check a mapping: a shipped mapping name, a path to a JSON file, or a dict.

    Raises :class:`LoaderError` saying what is wrong with it.
    """
    where = "mapping"
    if isinstance(mapping, Mapping):
        doc: Any = json.loads(json.dumps(dict(mapping)))
    else:
        text: str | None = None
        name = str(mapping)
        shipped = _mappings_dir().joinpath(f"{name}.json")
        if re.fullmatch(r"[a-z0-9_]+", name) and shipped.is_file():
            text, where = shipped.read_text(encoding="utf-8"), f"mapping {name!r}"
        elif Path(mapping).is_file():
            text, where = Path(mapping).read_text(encoding="utf-8-sig"), f"mapping file {mapping}"
        else:
            raise LoaderError(
                f"mapping {name!r} is neither a shipped mapping ({', '.join(available_mappings())}) nor a file"
            )
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoaderError(f"{where}: not valid JSON: {exc}") from exc
    _check_mapping(doc, where)
    checked: dict[str, Any] = doc
    return checked


def _fail(where: str, message: str) -> LoaderError:
    return LoaderError(f"{where}: {message}")


def _check_mapping(doc: Any, where: str) -> None:
    if not isinstance(doc, dict):
        raise _fail(where, "a mapping is a JSON object")
    if not isinstance(doc.get("name"), str) or not re.fullmatch(r"[a-z0-9_]+", doc["name"]):
        raise _fail(where, "'name' must be a string of [a-z0-9_]")
    if doc.get("format", "csv") not in ("csv", "tsv", "jsonl"):
        raise _fail(where, f"'format' must be csv, tsv or jsonl, got {doc.get('format')!r}")
    time = doc.get("time")
    if not isinstance(time, dict) or "column" not in time:
        raise _fail(where, "'time' must be an object with 'column' and 'unit'")
    if time.get("unit", "s") not in (*TIME_UNITS, "iso"):
        raise _fail(where, f"time unit must be one of {[*TIME_UNITS, 'iso']}, got {time.get('unit')!r}")
    if doc.get("frame", "openxr") not in ("openxr", "unity"):
        raise _fail(where, f"'frame' must be 'openxr' or 'unity', got {doc.get('frame')!r}")
    if doc.get("decimal", ".") not in (".", ","):
        raise _fail(where, f"'decimal' must be '.' or ',', got {doc.get('decimal')!r}")
    streams = doc.get("streams", [])
    if not isinstance(streams, list) or not (streams or doc.get("events")):
        raise _fail(where, "'streams' must be a list (and a mapping needs streams or events)")
    names = set()
    for k, s in enumerate(streams):
        sw = f"{where} stream {k}"
        if not isinstance(s, dict):
            raise _fail(sw, "a stream is an object")
        if not isinstance(s.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s["name"]):
            raise _fail(sw, "'name' must match [A-Za-z0-9_-]{1,64}")
        if s["name"] in names:
            raise _fail(sw, f"two streams named {s['name']!r}")
        names.add(s["name"])
        if s.get("modality") not in STREAM_MODALITIES:
            raise _fail(sw, f"'modality' must be one of {list(STREAM_MODALITIES)}, got {s.get('modality')!r}")
        if s.get("frame", doc.get("frame", "openxr")) not in ("openxr", "unity"):
            raise _fail(sw, "'frame' must be 'openxr' or 'unity'")
        if s["modality"] == "hand":
            _check_hand_stream(s, sw)
            continue
        chans = s.get("channels")
        if not isinstance(chans, list) or not chans:
            raise _fail(sw, "'channels' must be a non-empty list of {column, name, unit, scale}")
        for c in chans:
            if not isinstance(c, dict) or "column" not in c or not isinstance(c.get("name"), str):
                raise _fail(sw, f"channel {c!r} needs 'column' and 'name'")
            if c.get("frame_axis") not in (None, "z", "qx", "qy"):
                raise _fail(sw, f"channel {c['name']!r}: 'frame_axis' must be 'z', 'qx' or 'qy'")
        if s["modality"] != "other":
            spec = {c["name"]: c for c in load(s["modality"])["channels"]["canonical"]}
            for c in chans:
                if c["name"] not in spec:
                    raise _fail(sw, f"channel {c['name']!r} is not a canonical {s['modality']} channel")
                if c.get("unit", spec[c["name"]]["unit"]) != spec[c["name"]]["unit"]:
                    raise _fail(
                        sw, f"channel {c['name']!r} must be in {spec[c['name']]['unit']!r} (use 'scale' to convert)"
                    )
    for k, e in enumerate(doc.get("events", [])):
        if not isinstance(e, dict) or not (e.get("label") or e.get("label_column")):
            raise _fail(f"{where} event {k}", "an event rule needs 'label' or 'label_column'")


def _check_hand_stream(s: dict[str, Any], where: str) -> None:
    template = s.get("joint_columns")
    if not isinstance(template, str) or "{joint}" not in template or "{hand}" not in template:
        raise _fail(where, "hand streams need 'joint_columns', a template with {hand}, {joint} and {channel}")
    chans = s.get("channels", ["px", "py", "pz", "qx", "qy", "qz", "qw"])
    canonical = {c["name"] for c in load("hand")["channels"]["canonical"]} - {"confidence"}
    if not isinstance(chans, list) or not chans or any(c not in canonical for c in chans):
        raise _fail(where, f"hand 'channels' must be a subset of {sorted(canonical)}")


# ------------------------------------------------------------------------------------------ frame roles


def _frame_roles(modality: str, channels: Sequence[str]) -> dict[str, str]:
    """Channel -> 'z' / 'qx' / 'qy' for the components that flip under the Unity -> OpenXR conversion."""
    roles: dict[str, str] = {}
    if modality == "other":
        return roles
    for group in load(modality)["channels"].get("groups", []):
        members = group["channels"]
        if group["kind"] in ("vector3", "unit_vector3"):
            roles[members[2]] = "z"
        elif group["kind"] == "unit_quaternion":
            roles[members[0]], roles[members[1]] = "qx", "qy"
    return {c: roles[c] for c in channels if c in roles}


def _resolve(table: TextTable, column: Any, header: bool, where: str) -> str:
    key = str(column)
    if not header and not key.isdigit():
        raise LoaderError(f"{table.path}: {where}: the mapping is headerless, columns must be 0-based indices")
    if key not in table.frame.columns:
        raise LoaderError(
            f"{table.path}: {where}: no column {key!r} in the file (columns: {table.columns[:24]}); is this the "
            "right mapping?"
        )
    return key


# ---------------------------------------------------------------------------------------------- reading


def _row_filter(table: TextTable, rule: Mapping[str, Any] | None, header: bool, where: str) -> np.ndarray:
    if not rule:
        return np.ones(table.frame.height, dtype=bool)
    col = _resolve(table, rule.get("column"), header, where)
    values = table.frame[col].str.strip_chars().fill_null("")
    return np.asarray((values == str(rule.get("equals", ""))).to_numpy(), dtype=bool)


def _mapped_stream(
    table: TextTable, spec: Mapping[str, Any], doc: Mapping[str, Any], time_ns: np.ndarray, header: bool
) -> Stream:
    where = f"stream {spec['name']!r}"
    frame = spec.get("frame", doc.get("frame", "openxr"))
    rows = _row_filter(table, spec.get("where"), header, where)
    meta: dict[str, Any] = {"mapping": doc["name"], "source_frame": frame}
    modality = spec["modality"]
    if modality == "hand":
        data, names, units, present = _hand_data(table, spec, header, where)
        roles = _frame_roles("hand", names)
    else:
        chans = spec["channels"]
        names = [c["name"] for c in chans]
        schema_units = (
            {c["name"]: c["unit"] for c in load(modality)["channels"]["canonical"]} if modality != "other" else {}
        )
        units = [c.get("unit", schema_units.get(c["name"], "1")) for c in chans]
        cols = []
        present = np.zeros(table.frame.height, dtype=bool)
        for c in chans:
            key = _resolve(table, c["column"], header, f"{where} channel {c['name']!r}")
            values = numeric_column(table, key) * float(c.get("scale", 1.0))
            present |= ~np.isnan(values)
            if c.get("valid_column") is not None:
                valid = numeric_column(table, _resolve(table, c["valid_column"], header, where))
                values = np.where(valid == 0, np.nan, values)
            cols.append(values)
        data = np.stack(cols, axis=-1) if cols else np.zeros((table.frame.height, 0))
        roles = _frame_roles(modality, names)
        roles.update({c["name"]: c["frame_axis"] for c in chans if c.get("frame_axis")})
        meta["source_columns"] = {c["name"]: str(c["column"]) for c in chans}
    if frame == "unity" and roles:
        flip = np.array([-1.0 if roles.get(n) else 1.0 for n in names])
        data = data * flip.reshape((1,) * (data.ndim - 1) + (-1,))
        meta["frame_conversion"] = "Unity (left-handed) -> OpenXR: z -> -z, quaternion (x, y, z, w) -> (-x, -y, z, w)"
    keep = rows & present
    if int((rows & ~present).sum()):
        meta["rows_without_values"] = int((rows & ~present).sum())
    t, d = sort_by_time(time_ns[keep], data[keep], meta)
    d = finite_or_nan(d, meta)
    if spec.get("reference_space"):
        meta["reference_space"] = str(spec["reference_space"])
    rate = spec.get("rate_hz")
    return Stream(spec["name"], modality, t, d, names, units, rate_hz=rate, meta=meta)


def _hand_data(
    table: TextTable, spec: Mapping[str, Any], header: bool, where: str
) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """(N, 2, 26, C) joint data from the column template; joints whose columns are absent are NaN."""
    template: str = spec["joint_columns"]
    chans: list[str] = list(spec.get("channels", ["px", "py", "pz", "qx", "qy", "qz", "qw"]))
    scales: Mapping[str, float] = spec.get("scale", {})
    hand_names: Mapping[str, str] = spec.get("hands", {})
    joint_names: Mapping[str, str] = spec.get("joints", {})
    n = table.frame.height
    data = np.full((n, 2, 26, len(chans) + 1), np.nan)
    present = np.zeros(n, dtype=bool)
    found = 0
    for h, hand in enumerate(_HANDS):
        hname = hand_names.get(hand, hand)
        for j, joint in enumerate(_HAND_JOINTS):
            for c, chan in enumerate(chans):
                col = template.format(hand=hname, joint=joint_names.get(joint, joint), channel=chan)
                if col in table.frame.columns:
                    values = numeric_column(table, col) * float(scales.get(chan, 1.0))
                    data[:, h, j, c] = values
                    present |= ~np.isnan(values)
                    found += 1
        conf_col = spec.get("confidence_column")
        if conf_col:
            col = conf_col.format(hand=hname)
            if col in table.frame.columns:
                conf = numeric_column(table, col)
                data[:, h, :, -1] = conf[:, None]
                present |= ~np.isnan(conf)
                lost = conf == 0  # an untracked hand: NaN pose, confidence 0
                data[lost, h, :, :-1] = np.nan
    if not found:
        raise LoaderError(f"{table.path}: {where}: no column matches the template {template!r}")
    names = [*chans, "confidence"]
    units = [{"px": "m", "py": "m", "pz": "m", "radius": "m"}.get(c, "1") for c in names]
    if not spec.get("confidence_column"):
        data, names, units = data[..., :-1], names[:-1], units[:-1]
    return data, names, units, present


def _events(
    table: TextTable, doc: Mapping[str, Any], time_ns: np.ndarray, header: bool
) -> pl.DataFrame | None:
    frames = []
    for k, rule in enumerate(doc.get("events", [])):
        where = f"event rule {k}"
        rows = _row_filter(table, rule.get("where"), header, where)
        t = time_ns
        if rule.get("time_column") is not None:
            t = time_column_ns(
                table, _resolve(table, rule["time_column"], header, where), rule.get("time_unit", "s")
            )
        value_col = rule.get("value_column")
        values = (
            table.frame[_resolve(table, value_col, header, where)].fill_null("")
            if value_col is not None
            else pl.Series([""] * table.frame.height)
        )
        label_col = rule.get("label_column")
        labels = (
            table.frame[_resolve(table, label_col, header, where)].str.strip_chars().fill_null("")
            if label_col is not None
            else pl.Series([str(rule["label"])] * table.frame.height)
        )
        keep = rows & np.asarray((labels != "").to_numpy(), dtype=bool)
        if value_col is not None and label_col is None:
            keep &= np.asarray((values.str.strip_chars() != "").to_numpy(), dtype=bool)
        duration = np.zeros(table.frame.height, dtype=np.int64)
        if rule.get("end_column") is not None:
            end = time_column_ns(
                table, _resolve(table, rule["end_column"], header, where),
                rule.get("time_unit", doc["time"].get("unit", "s")),
            )
            duration = end - t
        elif rule.get("duration_column") is not None:
            dur = numeric_column(table, _resolve(table, rule["duration_column"], header, where))
            factor = TIME_UNITS.get(rule.get("duration_unit", "s"))
            if factor is None:
                raise LoaderError(f"{table.path}: {where}: unknown duration unit {rule.get('duration_unit')!r}")
            duration = np.where(np.isnan(dur), 0, np.round(np.nan_to_num(dur) * factor)).astype(np.int64)
        if (duration[keep] < 0).any():
            i = int(np.flatnonzero(keep & (duration < 0))[0])
            raise LoaderError(f"{table.path}: {where}: row {i + 1} ends before it starts")
        idx = np.flatnonzero(keep)
        frames.append(
            pl.DataFrame(
                {
                    "time_ns": t[idx],
                    "duration_ns": duration[idx],
                    "label": labels.gather(idx),
                    "value": values.gather(idx),
                },
                schema={"time_ns": pl.Int64, "duration_ns": pl.Int64, "label": pl.String, "value": pl.String},
            )
        )
    return pl.concat(frames) if frames else None


def _match_columns(doc: Mapping[str, Any]) -> list[str]:
    if doc.get("match"):
        return [str(c) for c in doc["match"]]
    time_col = doc["time"]["column"]
    cols = [] if isinstance(time_col, list) else [str(time_col)]
    for s in doc.get("streams", []):
        cols += [str(c["column"]) for c in s.get("channels", []) if isinstance(c, dict) and "column" in c]
    return cols


def header_columns(path: Path) -> list[str] | None:
    """The header fields of a CSV/TSV file or the keys of a JSON-lines file's first object (cheap)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        meta: dict[str, Any] = {}
        head = _decode(head, meta)
        first = head.split(b"\n", 1)[0].rstrip(b"\r")
        fmt = _SUFFIX_FORMAT.get(path.suffix.lower(), "csv")
        if fmt == "jsonl":
            flat: dict[str, str | None] = {}
            _flatten(json.loads(first), "", flat)
            return list(flat)
        fields = _fields(first, "\t" if fmt == "tsv" else ",")
        return [f.strip() for f in fields] if fields else None
    except (OSError, ValueError, TypeError):
        return None


def _detect_mapping(path: Path) -> str | None:
    """The shipped mapping whose identifying columns all appear in the header (the most specific one)."""
    header = header_columns(path)
    if not header:
        return None
    best: tuple[int, str] | None = None
    for name in available_mappings():
        try:
            doc = load_mapping(name)
        except LoaderError:
            continue
        if not doc.get("header", True):
            continue
        cols = _match_columns(doc)
        if cols and set(cols) <= set(header) and (best is None or len(cols) > best[0]):
            best = (len(cols), name)
    return None if best is None else best[1]


def _sniff(path: Path) -> bool:
    return path.is_file() and _detect_mapping(path) is not None


@reader(
    "table", (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".txt"), sniff=_sniff,
    description="CSV/TSV/JSON-lines logs (Unity, OpenXR, Quest...) through a declarative column mapping",
    fallback=True,
)
def read_table(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    mapping: str | PathLike | Mapping[str, Any] | None = None,
) -> Recording:
    """Read a CSV/TSV/JSON-lines log into a Recording as a mapping says (see the module docstring).

    Args:
        path: the log file.
        mapping: a shipped mapping name (see :func:`available_mappings`), a path to a mapping JSON file, or a
            dict; None picks the shipped mapping whose columns the file's header has.

    Returns one stream per mapping stream (time_ns int64 ns on the log's clock; data float64 in the
    schema's units and the OpenXR frame) and the mapped events. Recording meta: ``mapping``,
    ``source_files``, ``device`` (when the mapping names one), ``utc_anchor`` (ISO time columns only) and
    the parse notes (``dropped_truncated_lines``, ``blank_lines``, ``encoding``).
    """
    p = Path(path)
    if mapping is None:
        mapping = _detect_mapping(p)
        if mapping is None:
            raise LoaderError(
                f"{p}: no shipped mapping matches this file's columns; pass mapping= (one of "
                f"{', '.join(available_mappings())}, or your own JSON file: see xrdata.loaders.tabular)"
            )
    doc = load_mapping(mapping)
    header = bool(doc.get("header", True))
    table = read_text_table(p, delimiter=doc.get("delimiter"), header=header, fmt=doc.get("format"),
                            decimal=doc.get("decimal", "."))
    tspec = doc["time"]
    unit = tspec.get("unit", "s")
    candidates = tspec["column"] if isinstance(tspec["column"], list) else [tspec["column"]]
    time_col = next((str(c) for c in candidates if str(c) in table.frame.columns), candidates[0])
    time_ns = time_column_ns(
        table, _resolve(table, time_col, header, "time"), unit, timezone=tspec.get("timezone", "UTC")
    )
    try:
        streams = [_mapped_stream(table, s, doc, time_ns, header) for s in doc.get("streams", [])]
        events = _events(table, doc, time_ns, header)
        meta: dict[str, Any] = {"mapping": doc["name"], "source_files": [p.name], **table.meta}
        if doc.get("device"):
            meta["device"] = doc["device"]
        if unit == "iso":
            meta["utc_anchor"] = "1970-01-01T00:00:00+00:00"
        rec = Recording(user_id, session_id or default_session_id(p), streams, events=events, meta=meta)
        check_writable(rec)
    except (ValidationError, SchemaError) as exc:
        raise LoaderError(f"{p}: mapping {doc['name']!r} gives data the schema rejects: {exc}") from exc
    return rec
