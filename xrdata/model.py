"""The data model: :class:`Stream` (one modality of one session) and :class:`Recording` (one session).

Both validate their structure when built; conformance to the modality schema (channel names, units,
dtypes, value ranges) is checked by :func:`xrdata.validate` and, for errors, by ``Store.write``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from xrdata.errors import InvalidIdError, ValidationError
from xrdata.schemas import STREAM_MODALITIES

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: Column names and dtypes of a recording's events table.
EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "time_ns": pl.Int64(),
    "duration_ns": pl.Int64(),
    "label": pl.String(),
    "value": pl.String(),
}


def check_id(value: object, what: str) -> str:
    """Return ``value`` if it is a valid id (``[A-Za-z0-9_-]{1,64}``), else raise :class:`InvalidIdError`."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidIdError(
            f"invalid {what} {value!r}: ids must match [A-Za-z0-9_-]{{1,64}} because they become paths"
        )
    return value


def normalize_meta(meta: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """Return a JSON-normalised copy of ``meta`` (tuples become lists), or raise naming ``where``."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise ValidationError(f"{where}: meta must be a mapping, got {type(meta).__name__}")
    try:
        normalized: dict[str, Any] = json.loads(json.dumps(dict(meta), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{where}: meta must hold only JSON values (str, int, finite float, bool, None, lists, "
            f"dicts with str keys): {exc}"
        ) from exc
    return normalized


def _any_backward(t: np.ndarray) -> bool:
    """Whether the 1-D int64 array ``t`` steps backward anywhere (some ``t[i + 1] < t[i]``).

    Compares neighbours in cache-sized pieces: no int64 difference array (which could also overflow) and no
    full-length boolean temporary for the long streams (16 kHz audio: ~10 M samples per 10 minutes).
    """
    step = 1 << 16
    n = t.size - 1
    for i in range(0, n, step):
        j = min(n, i + step)
        if (t[i + 1 : j + 1] < t[i:j]).any():
            return True
    return False


def _as_time_ns(time_ns: Any, where: str) -> np.ndarray:
    try:
        t = np.asarray(time_ns)
    except (TypeError, ValueError) as exc:  # ragged input
        raise ValidationError(f"{where}: time_ns is not a 1-D array of int64 nanoseconds: {exc}") from exc
    if t.ndim != 1:
        raise ValidationError(f"{where}: time_ns must be 1-D, got shape {t.shape}")
    if t.dtype.kind == "f":
        if np.isnan(t).any():
            raise ValidationError(f"{where}: time_ns has {int(np.isnan(t).sum())} NaN timestamps")
        raise ValidationError(
            f"{where}: time_ns must be int64 nanoseconds, got {t.dtype}; "
            "convert seconds with np.round(t_s * 1e9).astype('int64')"
        )
    if t.dtype.kind not in "iu":
        raise ValidationError(f"{where}: time_ns must be int64 nanoseconds, got {t.dtype}")
    if t.dtype.kind == "u" and t.size and int(t.max()) > np.iinfo(np.int64).max:
        raise ValidationError(f"{where}: time_ns overflows int64")
    t = t.astype(np.int64, copy=False)
    if t.size > 1 and _any_backward(t):
        back = np.flatnonzero(t[1:] < t[:-1])
        i = int(back[0])
        raise ValidationError(
            f"{where}: time_ns must be non-decreasing; {back.size} backward step(s), first at sample "
            f"{i + 1} ({t[i]} -> {t[i + 1]}). Sort the samples or split the stream at the clock reset"
        )
    return t


class Stream:
    """One modality of one session.

    Attributes:
        name: stream id, unique within its recording (``[A-Za-z0-9_-]{1,64}``).
        modality: one of ``xrdata.schemas.STREAM_MODALITIES``.
        time_ns: (N,) int64 sample times in nanoseconds on the session clock, non-decreasing.
        data: (N, ...) numpy array, first axis = samples; the sample shape is set by the modality schema.
        channels: names of the channel axis (the last axis, or the single channel of depth frames).
        units: one unit string per channel (SI, see the schema).
        rate_hz: nominal sampling rate in Hz, or None for irregular streams.
        meta: JSON-serialisable source metadata.

    ``data`` and ``time_ns`` may be loaded lazily by the store: they are read on first access.
    """

    __slots__ = ("_data", "_time_ns", "channels", "meta", "modality", "n_samples", "name", "rate_hz", "units")

    def __init__(
        self,
        name: str,
        modality: str,
        time_ns: Any,
        data: Any,
        channels: Sequence[str],
        units: Sequence[str] | str,
        rate_hz: float | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = check_id(name, "stream name")
        where = f"stream {name!r}"
        if modality not in STREAM_MODALITIES:
            raise ValidationError(
                f"{where}: unknown modality {modality!r}; use one of {', '.join(STREAM_MODALITIES)}"
            )
        self.modality = modality
        t = _as_time_ns(time_ns, where)
        try:
            d = np.asarray(data)
        except (TypeError, ValueError) as exc:  # ragged input
            raise ValidationError(f"{where}: data is not a rectangular numeric array: {exc}") from exc
        if d.ndim == 0:
            raise ValidationError(f"{where}: data must have a sample axis first, got a scalar")
        if d.shape[0] != t.shape[0]:
            raise ValidationError(
                f"{where}: data has {d.shape[0]} samples (first axis) but time_ns has {t.shape[0]}"
            )
        if d.dtype.kind not in "biuf":
            raise ValidationError(f"{where}: data dtype {d.dtype} is not numeric or bool")
        self._time_ns: np.ndarray | Callable[[], np.ndarray] = t
        self._data: np.ndarray | Callable[[], np.ndarray] = d
        self.n_samples = int(t.shape[0])
        self.channels, self.units = _check_channels(channels, units, where)
        if rate_hz is not None:
            if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float | np.number):
                raise ValidationError(f"{where}: rate_hz must be a number or None, got {rate_hz!r}")
            rate_hz = float(rate_hz)
            if not math.isfinite(rate_hz) or rate_hz <= 0:
                raise ValidationError(f"{where}: rate_hz must be positive and finite, got {rate_hz}")
        self.rate_hz: float | None = rate_hz
        self.meta = normalize_meta(meta, where)

    @classmethod
    def lazy(
        cls,
        name: str,
        modality: str,
        n_samples: int,
        time_ns: Callable[[], np.ndarray],
        data: Callable[[], np.ndarray],
        channels: list[str],
        units: list[str],
        rate_hz: float | None,
        meta: dict[str, Any],
    ) -> Stream:
        """Build a stream whose arrays are produced by loaders on first access (used by the store)."""
        self = cls.__new__(cls)
        self.name, self.modality, self.n_samples = name, modality, n_samples
        self._time_ns, self._data = time_ns, data
        self.channels, self.units, self.rate_hz, self.meta = channels, units, rate_hz, meta
        return self

    @property
    def time_ns(self) -> np.ndarray:
        if callable(self._time_ns):
            self._time_ns = self._time_ns()
        return self._time_ns

    @property
    def data(self) -> np.ndarray:
        if callable(self._data):
            self._data = self._data()
        return self._data

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        rate = "irregular" if self.rate_hz is None else f"{self.rate_hz:g} Hz"
        return (
            f"Stream({self.name!r}, modality={self.modality!r}, samples={self.n_samples}, "
            f"channels={len(self.channels)}, {rate})"
        )

    def slice_time(self, start_ns: int | None = None, stop_ns: int | None = None) -> Stream:
        """The samples with ``start_ns <= time_ns < stop_ns`` as a new stream (None = unbounded)."""
        t = self.time_ns
        i = 0 if start_ns is None else int(np.searchsorted(t, start_ns, side="left"))
        j = t.shape[0] if stop_ns is None else int(np.searchsorted(t, stop_ns, side="left"))
        j = max(i, j)
        return Stream.lazy(
            self.name, self.modality, j - i, lambda: t[i:j], lambda: self.data[i:j],
            self.channels, self.units, self.rate_hz, self.meta,
        )


def _check_channels(
    channels: Sequence[str], units: Sequence[str] | str, where: str
) -> tuple[list[str], list[str]]:
    if isinstance(channels, str) or not isinstance(channels, Iterable):
        raise ValidationError(f"{where}: channels must be a list of non-empty strings, got {channels!r}")
    chans = list(channels)
    if not all(isinstance(c, str) and c for c in chans):
        raise ValidationError(f"{where}: channels must be a list of non-empty strings, got {channels!r}")
    if len(set(chans)) != len(chans):
        dup = sorted({c for c in chans if chans.count(c) > 1})
        raise ValidationError(f"{where}: duplicate channel names {dup}")
    if isinstance(units, str):
        unit_list = [units] * len(chans)
    else:
        unit_list = list(units) if isinstance(units, Iterable) else [units]  # a non-list is rejected below
    if len(unit_list) != len(chans) or not all(isinstance(u, str) for u in unit_list):
        raise ValidationError(
            f"{where}: units must be one string or one string per channel "
            f"({len(chans)} channels, got {units!r})"
        )
    return chans, unit_list


def _events_frame(events: Any, where: str) -> pl.DataFrame:
    if events is None:
        return pl.DataFrame(schema=EVENTS_SCHEMA)
    try:
        df = events if isinstance(events, pl.DataFrame) else pl.DataFrame(events)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise ValidationError(f"{where}: events must be a table with {list(EVENTS_SCHEMA)}: {exc}") from exc
    if df.width == 0 and df.height == 0:
        return pl.DataFrame(schema=EVENTS_SCHEMA)
    missing = [c for c in EVENTS_SCHEMA if c not in df.columns]
    extra = [c for c in df.columns if c not in EVENTS_SCHEMA]
    if missing or extra:
        raise ValidationError(
            f"{where}: events table needs exactly the columns {list(EVENTS_SCHEMA)}; "
            f"missing {missing}, unexpected {extra}"
        )
    out = {}
    for col, dtype in EVENTS_SCHEMA.items():
        s = df[col]
        if s.null_count():
            raise ValidationError(f"{where}: events column {col!r} has {s.null_count()} null value(s)")
        if s.dtype == pl.Null:  # no rows, so no type was inferred
            pass
        elif dtype == pl.Int64 and not s.dtype.is_integer():
            raise ValidationError(
                f"{where}: events column {col!r} must be integer nanoseconds, got {s.dtype}"
            )
        elif dtype == pl.String and s.dtype != pl.String:
            raise ValidationError(f"{where}: events column {col!r} must be strings, got {s.dtype}")
        try:  # an empty column of unknown dtype (Null) casts fine; an out-of-range integer does not
            out[col] = s.cast(dtype)
        except pl.exceptions.PolarsError as exc:
            raise ValidationError(f"{where}: events column {col!r} does not fit {dtype}: {exc}") from exc
    frame = pl.DataFrame(out)
    if frame.height and int(frame["duration_ns"].min()) < 0:  # type: ignore[arg-type]
        raise ValidationError(f"{where}: events duration_ns must be >= 0")
    if frame.height and (frame["label"].str.len_chars() == 0).any():
        raise ValidationError(f"{where}: events label must be non-empty")
    return frame.sort("time_ns", maintain_order=True)


class Recording:
    """One session of one user: streams on a common session clock, an events table and metadata.

    Attributes:
        user_id, session_id: ids matching ``[A-Za-z0-9_-]{1,64}``.
        streams: dict stream name -> :class:`Stream` (several streams of one modality are allowed).
        events: polars DataFrame (time_ns Int64, duration_ns Int64, label String, value String), sorted by
            time; task labels are events whose label names the task and whose value is the class.
        meta: JSON metadata; well-known keys: ``device`` (str or dict), ``utc_anchor`` (ISO 8601 time of
            session-clock zero), ``source_files`` (list of str), ``tasks`` (list of str).
    """

    __slots__ = ("events", "meta", "session_id", "streams", "user_id")

    def __init__(
        self,
        user_id: str,
        session_id: str,
        streams: Mapping[str, Stream] | Iterable[Stream] = (),
        events: Any = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.user_id = check_id(user_id, "user id")
        self.session_id = check_id(session_id, "session id")
        where = f"recording {user_id}/{session_id}"
        items = (
            list(streams.items())
            if isinstance(streams, Mapping)
            else [(getattr(s, "name", None), s) for s in streams]
        )
        self.streams: dict[str, Stream] = {}
        for key, s in items:
            if not isinstance(s, Stream):
                raise ValidationError(f"{where}: streams must be Stream objects, got {type(s).__name__}")
            if key != s.name:
                raise ValidationError(f"{where}: stream stored under key {key!r} is named {s.name!r}")
            if key in self.streams:
                raise ValidationError(f"{where}: two streams named {key!r}")
            self.streams[key] = s
        self.events = _events_frame(events, where)
        self.meta = normalize_meta(meta, where)
        _check_known_meta(self.meta, where)

    def __repr__(self) -> str:
        return (
            f"Recording(user={self.user_id!r}, session={self.session_id!r}, "
            f"streams={list(self.streams)}, events={self.events.height})"
        )

    def by_modality(self, modality: str) -> list[Stream]:
        """The streams of one modality, in insertion order."""
        return [s for s in self.streams.values() if s.modality == modality]


def _check_known_meta(meta: dict[str, Any], where: str) -> None:
    device = meta.get("device")
    if device is not None and not isinstance(device, str | dict):
        raise ValidationError(f"{where}: meta['device'] must be a string or a dict, got {device!r}")
    anchor = meta.get("utc_anchor")
    if anchor is not None:
        try:
            parsed = datetime.fromisoformat(anchor) if isinstance(anchor, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise ValidationError(
                f"{where}: meta['utc_anchor'] must be an ISO 8601 time with a UTC offset, "
                f"e.g. '2026-01-31T09:00:00+00:00', got {anchor!r}"
            )
    for key in ("source_files", "tasks"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValidationError(f"{where}: meta[{key!r}] must be a list of strings, got {value!r}")
