"""Live capture of Lab Streaming Layer streams into a store session (what ``xrdata record`` runs).

:func:`record` resolves LSL streams with pylsl, opens one recovering inlet per stream and writes the samples
through the store's live writer (``store.writer``): periodic flushes, a clean commit when the recording
ends (duration reached, ``stop_event`` set, Ctrl-C / SIGTERM), and, if the process is killed hard, an
incomplete session that reads back everything up to the last flush.

Streams are mapped exactly like XDF streams (:func:`xrdata.loaders.xdf.plan_stream`: EEG in volts, gaze and
head pose in the OpenXR frame, string/marker streams as events, anything else as "other"). Timestamps: the
inlets use ``proc_clocksync``, so liblsl adds the continuously re-estimated ``time_correction()`` to each
sample's LSL timestamp: ``time_ns`` is the recording machine's LSL clock (``local_clock()``) in ns, and the
session's ``utc_anchor`` (UTC of that clock's zero) is measured at the start by pairing ``local_clock()``
with the system clock. A step back in time of a stream (a new clock-offset estimate) is clamped to the
previous timestamp (counted in ``meta["n_time_clamped"]``); a step back of more than
:data:`~xrdata.loaders.xdf.CLOCK_RESET_S` continues the stream in a new ``<name>_part2`` stream.

A stream that disappears and comes back is reconnected by its ``source_id`` (or name, type and host when
it has none): liblsl's recovering inlet handles short drops, and a new outlet instance (new uid) seen by
the background resolver replaces the old inlet at once; the samples go on into the same store stream
(``meta["reconnects"]``). Streams that appear during the recording and match a selector are added.
"""

from __future__ import annotations

import inspect
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xrdata.errors import ValidationError, XRDataError, require
from xrdata.loaders.xdf import CLOCK_RESET_S, LslHeader, StreamPlan, plan_stream, seconds_to_ns, unique_name
from xrdata.model import Stream, check_id

if TYPE_CHECKING:
    import os

    from xrdata.store import Store

__all__ = ["RecordResult", "parse_selector", "record"]

_SELECTOR_KEYS = ("name", "type", "source_id", "hostname", "channel_format", "channel_count", "nominal_srate",
                  "uid", "session_id")
_RESCAN_S = 0.25  # how often the background resolvers' results are checked for new / returning streams
_MAX_CHUNK = 4096
_IDLE_S = 1.0  # a source silent this long is replaced by another live instance with its source id


@dataclass
class RecordResult:
    """What :func:`record` wrote.

    Attributes:
        user, session: where it went.
        stopped_by: "duration", "stop_event" or "interrupt" (Ctrl-C / SIGTERM).
        samples: samples written per store stream.
        n_events: event rows written (from string / marker streams).
        reconnects: stream reconnections (a source that came back).
        duration_s: wall-clock seconds of capture.
    """

    user: str
    session: str
    stopped_by: str
    samples: dict[str, int] = field(default_factory=dict)
    n_events: int = 0
    reconnects: int = 0
    duration_s: float = 0.0


def parse_selector(selector: str) -> str:
    """An LSL XPath predicate from a selector: ``"type=EEG"`` -> ``"type='EEG'"``; several conditions are
    joined with ``&`` (``"type=EEG&hostname=lab1"``); text containing ``(`` or a quote is taken as a raw
    XPath 1.0 predicate (``"starts-with(name,'Unity.')"``); ``"*"`` matches every stream."""
    sel = selector.strip()
    if not sel:
        raise ValidationError("empty LSL stream selector; use e.g. 'type=EEG' or 'name=MyStream'")
    if sel == "*":
        return ""
    if "(" in sel or "'" in sel or '"' in sel:
        return sel
    terms = []
    for part in sel.split("&"):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in _SELECTOR_KEYS or not value:
            raise ValidationError(
                f"LSL stream selector {selector!r}: use key=value with key one of {', '.join(_SELECTOR_KEYS)} "
                "(e.g. type=EEG), several joined with '&', or a raw XPath predicate"
            )
        terms.append(f"{key}='{value}'")
    return " and ".join(terms)


@dataclass
class _Source:
    """One LSL source (stable across reconnections) and the store streams it feeds."""

    key: str
    header: LslHeader
    plan: StreamPlan
    inlet: Any
    uid: str
    created_at: float
    templates: dict[str, Stream]
    last_t: int | None = None
    last_data: float = field(default_factory=time.monotonic)
    dead: set[str] = field(default_factory=set)
    lost: bool = False
    part: int = 1
    reconnects: int = 0
    stats: dict[str, int] = field(default_factory=dict)


def _key(info: Any) -> str:
    sid = info.source_id()
    return f"source_id:{sid}" if sid else f"name:{info.name()}|{info.type()}|{info.hostname()}"


def _utc_anchor(pylsl: Any) -> str:
    """UTC time of the LSL clock's zero: pair ``local_clock()`` with the system clock (best of 5 readings)."""
    best: tuple[int, int] | None = None
    for _ in range(5):
        a = time.time_ns()
        lsl = pylsl.local_clock()
        b = time.time_ns()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) // 2 - round(lsl * 1e9))
    assert best is not None
    sec, ns = divmod(best[1], 10**9)
    return datetime.fromtimestamp(sec, UTC).replace(microsecond=ns // 1000).isoformat()


def record(
    store: Store | str | os.PathLike[str],
    user: str,
    *,
    session: str | None = None,
    streams: Sequence[str] | None = None,
    duration_s: float | None = None,
    flush_interval_s: float = 2.0,
    resolve_timeout_s: float = 5.0,
    stop_event: threading.Event | None = None,
    progress: Callable[[float, dict[str, int]], None] | None = None,
    mapping: Mapping[str, Mapping[str, Any]] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> RecordResult:
    """Record live LSL streams into a new session of ``user`` until ``duration_s``, ``stop_event`` or Ctrl-C.

    Args:
        store: a :class:`xrdata.Store` or a store path/URL (opened with mode "a").
        user: user id.
        session: session id; default ``lsl-<UTC start, YYYYmmddTHHMMSS>``.
        streams: selectors (see :func:`parse_selector`), e.g. ``("type=EEG", "type=Gaze")``; None records every
            stream visible. Every selector must match a stream within ``resolve_timeout_s``.
        duration_s: seconds to record (None: until ``stop_event`` or Ctrl-C/SIGTERM).
        flush_interval_s: seconds between flushes to disk (at most this much is lost if killed hard).
        resolve_timeout_s: seconds to wait for the selected streams (and for each inlet to open).
        stop_event: set it (from another thread) to end the recording cleanly.
        progress: called about 4 times a second with (elapsed seconds, samples written per store stream).
        mapping: per stream name or type overrides, as for :func:`xrdata.loaders.xdf.read_xdf`.
        meta: extra session metadata (e.g. ``{"device": "quest_pro"}``).

    Returns:
        A :class:`RecordResult`. Raises :class:`XRDataError` if a selector matches no stream (nothing is
        written then).
    """
    pylsl: Any = require("pylsl", "loaders")
    from xrdata.store import Store, open_store

    check_id(user, "user id")
    st = store if isinstance(store, Store) else open_store(store if isinstance(store, str) else Path(store))
    started = datetime.now(UTC)
    session = session or f"lsl-{started:%Y%m%dT%H%M%S}"
    check_id(session, "session id")
    if duration_s is not None and duration_s <= 0:
        raise ValidationError(f"duration_s must be > 0 or None, got {duration_s}")
    preds = [""] if not streams else [parse_selector(s) for s in streams]
    labels = ["*"] if not streams else list(streams)
    resolvers = [pylsl.ContinuousResolver(pred=p) if p else pylsl.ContinuousResolver() for p in preds]
    found = _wait_for_streams(resolvers, labels, resolve_timeout_s)
    return _capture(pylsl, st, user, session, found, resolvers, labels, duration_s, flush_interval_s,
                    resolve_timeout_s, stop_event, progress, mapping, meta, started)


def _wait_for_streams(resolvers: list[Any], labels: list[str], timeout_s: float) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        results = [r.results() for r in resolvers]
        if all(results) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    missing = [lab for lab, res in zip(labels, results, strict=True) if not res]
    if missing:
        seen = sorted({f"{i.name()} (type {i.type()})" for res in results for i in res})
        raise XRDataError(
            f"no LSL stream matches {', '.join(map(repr, missing))} within {timeout_s:g} s; "
            f"streams matched so far: {', '.join(seen) or 'none'}. Check that the outlets run and are "
            "reachable (lsl_api.cfg, firewall), or raise --resolve-timeout"
        )
    out: dict[str, Any] = {}
    for res in results:
        for info in res:
            out.setdefault(info.uid(), info)
    return list(out.values())


def _capture(
    pylsl: Any, store: Any, user: str, session: str, found: list[Any], resolvers: list[Any], labels: list[str],
    duration_s: float | None, flush_interval_s: float, resolve_timeout_s: float, stop_event: threading.Event | None,
    progress: Callable[[float, dict[str, int]], None] | None, mapping: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None, started: datetime,
) -> RecordResult:
    session_meta: dict[str, Any] = {
        "source_format": "lsl", "selectors": labels, "recorded_utc_start": started.isoformat(),
        "utc_anchor": _utc_anchor(pylsl), "lsl_library_version": int(pylsl.library_version()),
        "clock": "LSL local_clock of the recording machine (remote clocks corrected by liblsl proc_clocksync)",
        "lsl_streams": [], "event_streams": {}, **dict(meta or {}),
    }
    as_numpy = "as_numpy" in inspect.signature(pylsl.StreamInlet.pull_chunk).parameters
    result = RecordResult(user, session, stopped_by="duration")
    sources: dict[str, _Source] = {}
    taken: set[str] = set()
    skipped: set[str] = set()  # uids of streams that cannot be recorded (see _attach)
    # Inlets and stream plans first: a bad mapping or a stream that cannot be opened fails before anything
    # is written to the store.
    initial: list[_Source] = []
    try:
        for info in found:
            opened = _open_inlet(pylsl, info, resolve_timeout_s)
            if opened is None:
                raise XRDataError(f"LSL stream {info.name()!r} (type {info.type()}) disappeared before it opened")
            initial.append(_plan_source(_key(info), info, *opened, taken, mapping, len(initial)))
    except BaseException:
        for src in initial:
            _close(src.inlet)
        raise
    interrupted = threading.Event()
    restore = _install_signal_handlers(interrupted)
    try:
        with store.writer(user, session, meta=session_meta, flush_interval_s=flush_interval_s) as w:
            for src in initial:
                _register(w, src, sources, result)
            t0 = time.monotonic()
            last_scan = last_flush = last_progress = t0
            try:
                while True:
                    if interrupted.is_set():
                        result.stopped_by = "interrupt"
                        break
                    if stop_event is not None and stop_event.is_set():
                        result.stopped_by = "stop_event"
                        break
                    now = time.monotonic()
                    if duration_s is not None and now - t0 >= duration_s:
                        result.stopped_by = "duration"
                        break
                    got = sum(_pull(w, src, as_numpy, taken, result) for src in list(sources.values()))
                    if now - last_scan >= _RESCAN_S:
                        last_scan = now
                        for r in resolvers:
                            for info in r.results():
                                _attach(pylsl, w, info, sources, taken, skipped, mapping, resolve_timeout_s,
                                        result)
                    if progress is not None and now - last_progress >= 0.25:
                        last_progress = now
                        progress(now - t0, dict(result.samples))
                    if now - last_flush >= flush_interval_s:
                        last_flush = now
                        w.flush()
                    if not got:
                        time.sleep(0.005)
            except KeyboardInterrupt:  # no handler could be installed (not the main thread)
                result.stopped_by = "interrupt"
            for src in sources.values():  # what already arrived belongs to the recording
                while _pull(w, src, as_numpy, taken, result):
                    pass
            result.duration_s = time.monotonic() - t0
            if progress is not None:
                progress(result.duration_s, dict(result.samples))
            for src in sources.values():
                # the writer stores each stream's template meta at commit: add what the capture counted
                for tpl in src.templates.values():
                    tpl.meta.update({"reconnects": src.reconnects, **{k: v for k, v in src.stats.items() if v}})
    finally:
        restore()
        for src in {id(s): s for s in [*initial, *sources.values()]}.values():
            _close(src.inlet)
    return result


def _install_signal_handlers(flag: threading.Event) -> Callable[[], None]:
    """Make Ctrl-C and SIGTERM end the recording cleanly (main thread only); returns the restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        flag.set()

    for sig in old:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore


def _close(inlet: Any) -> None:
    try:
        inlet.close_stream()
    except Exception:  # an inlet whose source is gone may refuse; it is dropped anyway
        pass


def _open_inlet(pylsl: Any, info: Any, timeout_s: float) -> tuple[Any, LslHeader] | None:
    """A recovering, clock-synchronised inlet on ``info`` and the stream's full header, or None if it is gone."""
    inlet = pylsl.StreamInlet(info, max_buflen=360, recover=True, processing_flags=pylsl.proc_clocksync)
    try:
        full = inlet.info(timeout=timeout_s)
        inlet.open_stream(timeout=timeout_s)
        return inlet, LslHeader.from_xml(full.as_xml())
    except Exception:  # gone again before it could be opened (pylsl TimeoutError / LostError)
        _close(inlet)
        return None


def _plan_source(
    key: str, info: Any, inlet: Any, header: LslHeader, taken: set[str], mapping: Mapping[str, Any] | None,
    index: int,
) -> _Source:
    entry = (mapping.get(header.name) or mapping.get(header.type)) if mapping else None
    plan = plan_stream(header, entry, taken, fallback_name=f"lsl{index + 1}", source="lsl")
    templates = {spec.name: spec.template(header.rate_hz, plan.meta) for spec in plan.outputs}
    return _Source(key, header, plan, inlet, info.uid(), info.created_at(), templates)


def _register(w: Any, src: _Source, sources: dict[str, _Source], result: RecordResult) -> None:
    for tpl in src.templates.values():
        w.add_stream(tpl)
        result.samples[tpl.name] = 0
    sources[src.key] = src
    h = src.header
    listing = {"name": h.name, "type": h.type, "source_id": h.source_id, "uid": src.uid,
               "stored_as": "events" if src.plan.is_events else list(src.templates)}
    w.meta["lsl_streams"] = [*w.meta["lsl_streams"], listing]  # written with the next flush
    if src.plan.is_events:
        key, k = src.plan.event_label, 2
        while key in w.meta["event_streams"]:  # two string streams of one name share the events label
            key, k = f"{src.plan.event_label} ({k})", k + 1
        w.meta["event_streams"] = {**w.meta["event_streams"], key: src.plan.meta}


def _attach(
    pylsl: Any, w: Any, info: Any, sources: dict[str, _Source], taken: set[str], skipped: set[str],
    mapping: Mapping[str, Any] | None, timeout_s: float, result: RecordResult,
) -> None:
    """Record a stream seen by the resolver: a new source, or a new instance (uid) of a known source."""
    if info.uid() in skipped:
        return
    key = _key(info)
    src = sources.get(key)
    if src is not None:
        uid = info.uid()
        if uid == src.uid or uid in src.dead:
            return
        idle = time.monotonic() - src.last_data > _IDLE_S
        if info.created_at() <= src.created_at and not idle:
            return  # an older instance the resolver has not forgotten yet, while the current one delivers
    opened = _open_inlet(pylsl, info, timeout_s)
    if opened is None:
        return  # the resolver offers it again if it comes back
    inlet, header = opened
    if src is not None:
        _close(src.inlet)
        if src.uid:
            src.dead.add(src.uid)
        if (header.channel_count, header.channel_format) == (src.header.channel_count, src.header.channel_format):
            src.inlet, src.uid, src.created_at = inlet, info.uid(), info.created_at()
            src.last_data, src.lost = time.monotonic(), False
            src.reconnects += 1
            result.reconnects += 1
            return
        # same source, new channel layout: it continues in new store streams
    try:
        new = _plan_source(key, info, inlet, header, taken, mapping, len(sources))
    except ValidationError as exc:  # e.g. a mapping that does not fit a stream that appeared later
        _close(inlet)
        skipped.add(info.uid())
        w.meta["skipped_streams"] = [*w.meta.get("skipped_streams", []), f"{header.name}: {exc}"]
        if src is not None:
            src.lost = True
        return
    _register(w, new, sources, result)


def _pull(w: Any, src: _Source, as_numpy: bool, taken: set[str], result: RecordResult) -> int:
    """Move what the inlet holds into the writer; returns the number of samples pulled."""
    if src.lost:
        return 0
    try:
        if as_numpy:
            samples, ts = src.inlet.pull_chunk(timeout=0.0, max_samples=_MAX_CHUNK, as_numpy=True)
        else:
            samples, ts = src.inlet.pull_chunk(timeout=0.0, max_samples=_MAX_CHUNK)
    except Exception:  # LostError (a source without source_id went away): the resolver brings it back
        src.dead.add(src.uid)
        src.created_at, src.uid, src.lost = -1.0, "", True  # any new instance of the source replaces it
        return 0
    n = len(ts)
    if not n:
        return 0
    src.last_data = time.monotonic()
    t = seconds_to_ns(ts, f"LSL stream {src.header.name!r}")
    h = src.header
    if src.plan.is_events:
        w.add_events(src.plan.events(t, [list(row) for row in samples]))
        result.n_events += n
        return n
    data = np.asarray(samples, dtype=h.dtype).reshape(n, h.channel_count)
    start = 0
    while True:
        i = _first_reset(src.last_t, t[start:])
        if i is None:
            _write(w, src, t[start:], data[start:], result)
            return n
        _write(w, src, t[start : start + i], data[start : start + i], result)
        _new_part(w, src, taken, result)  # a clock reset: the rest goes into new "_partN" streams
        start += i


def _first_reset(last: int | None, t: np.ndarray) -> int | None:
    """Index of the first sample more than CLOCK_RESET_S before its predecessors (or ``last``), else None."""
    if not t.size:
        return None
    prev = np.concatenate([[t[0] if last is None else last], np.maximum.accumulate(t)[:-1]])
    back = np.flatnonzero(t < prev - int(CLOCK_RESET_S * 1e9))
    return int(back[0]) if back.size else None


def _write(w: Any, src: _Source, t: np.ndarray, data: np.ndarray, result: RecordResult) -> None:
    if not t.size:
        return
    floor = src.last_t if src.last_t is not None else int(t[0])
    mono = np.maximum.accumulate(np.maximum(t, floor))
    clamped = int((mono != t).sum())
    if clamped:
        src.stats["n_time_clamped"] = src.stats.get("n_time_clamped", 0) + clamped
    src.last_t = int(mono[-1])
    for spec in src.plan.outputs:
        out, stats = spec.convert(data)
        for k, v in stats.items():
            if v:
                src.stats[k] = src.stats.get(k, 0) + v
        w.append(spec.name, mono, out)
        result.samples[spec.name] = result.samples.get(spec.name, 0) + int(t.size)


def _new_part(w: Any, src: _Source, taken: set[str], result: RecordResult) -> None:
    src.part += 1
    for spec in src.plan.outputs:
        base = spec.name.rsplit("_part", 1)[0] if src.part > 2 else spec.name
        spec.name = unique_name(base, taken, f"_part{src.part}")
        tpl = spec.template(src.header.rate_hz, {**src.plan.meta, "part": src.part,
                                                 "split_reason": "clock reset: time stepped back"})
        w.add_stream(tpl)
        src.templates[spec.name] = tpl
        result.samples[spec.name] = 0
    src.last_t = None
