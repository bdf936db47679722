"""The per-user chunked store: Zarr v3 arrays + a hive-partitioned Parquet catalog.

Layout (documented for other tools in ``docs/FORMAT.md``)::

    <root>/zarr.json                                   attributes.xrdata = {format, version}
    <root>/users/<user>/<session>/zarr.json            attributes.xrdata = session state + metadata
    <root>/users/<user>/<session>/streams/<name>/      attributes.xrdata = stream metadata
        data   (N, ...) array, chunked and sharded along time
        time   (N,) int64 ns (absent when the stream keeps a compact regular time base)
    <root>/users/<user>/<session>/events/{time_ns,duration_ns,label,value}
    <root>/catalog/user=<user>/part-0.parquet
    <root>/.xrdata/locks/<user>.lock

A session is visible once its ``state`` is ``complete`` (batch writes) or ``live`` (live writer, listed as
incomplete). The state is the single atomic commit point: everything else is written before it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import google_crc32c
import numcodecs
import numpy as np
import polars as pl
import zarr
import zarr.api.asynchronous as zarr_async
from zarr.codecs import BloscCodec, BloscShuffle, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.metadata import ArrayV3Metadata
from zarr.core.sync import sync as zarr_sync
from zarr.storage import FsspecStore, LocalStore, MemoryStore, StorePath

from xrdata import catalog as cat
from xrdata._fs import Backend, PendingWrites, UserLock
from xrdata.encoding import (
    CHUNK_BYTES,
    Encoding,
    choose_encoding,
    compact_time,
    compressor,
    expand_time,
    time_index,
)
from xrdata.errors import (
    NotFoundError,
    SessionExistsError,
    StoreError,
    ValidationError,
    XRDataError,
)
from xrdata.model import EVENTS_SCHEMA, Recording, Stream, check_id
from xrdata.schemas import load as load_schema
from xrdata.schemas import version as schema_version
from xrdata.validation import check_writable, sample_validity

if TYPE_CHECKING:
    from xrdata.live import LiveWriter

FORMAT_NAME = "xrdata.store"
FORMAT_VERSION = 1
Mode = Literal["r", "r+", "a", "w-"]
State = Literal["writing", "live", "complete", "deleting"]


class RowFill(Protocol):
    """Sample arrays a producer fills in time order while :meth:`Store._write_checked` writes them (the EEG
    readers parse a file in blocks this way during ``xrdata.loaders.ingest``)."""

    def holds(self, data: np.ndarray) -> bool:
        """Whether ``data`` (a stream's array, the very object) is filled by this producer."""
        ...

    def wait(self, stop: int | None = None) -> None:
        """Return once samples ``[0, stop)`` (None: all) are final; raise the producer's error if it failed."""
        ...


def _group_doc(attrs: Mapping[str, Any]) -> bytes:
    """A Zarr v3 group metadata document (``zarr.json``) holding ``attributes.xrdata``."""
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {"xrdata": attrs}}, indent=1).encode()


def _fill(dtype: np.dtype[Any]) -> Any:
    return np.nan if dtype.kind == "f" else 0


def _dim_names(stream: Stream, ndim: int) -> tuple[str, ...]:
    axes = list(load_schema(stream.modality).get("sample_axes", []))
    if len(axes) != ndim - 1:
        axes = [f"dim_{i}" for i in range(1, ndim)]
    return ("time", *axes)


def stream_document(
    s: Stream, *, n: int, dtype: np.dtype[Any], sample_shape: Sequence[int], valid: int, time: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``attributes.xrdata`` document of a stream group (docs/FORMAT.md), shared by both writers."""
    return {
        "kind": "stream", "name": s.name, "modality": s.modality, "channels": s.channels, "units": s.units,
        "rate_hz": s.rate_hz, "meta": s.meta, "schema_version": schema_version(s.modality), "n_samples": n,
        "dtype": str(dtype), "sample_shape": list(sample_shape), "valid_samples": valid, "time": dict(time),
    }


def _stream_array_specs(
    zstore: Any, base: str, s: Stream, shape: tuple[int, ...], dtype: np.dtype[Any], enc: Encoding,
    time_enc: Encoding | None,
) -> list[dict[str, Any]]:
    """``zarr.create_array`` arguments of ``base/data`` and (unless ``time_enc`` is None) ``base/time``."""

    def shards(e: Encoding, rest: tuple[int, ...]) -> tuple[int, ...] | None:
        return None if e.shard_samples is None else (e.shard_samples, *rest)

    specs = [{
        "store": zstore, "name": f"{base}/data", "shape": shape, "dtype": dtype,
        "chunks": (enc.chunk_samples, *shape[1:]), "shards": shards(enc, shape[1:]),
        "compressors": [compressor(dtype, modality=s.modality)], "fill_value": _fill(dtype),
        "dimension_names": _dim_names(s, len(shape)), "overwrite": True,
    }]
    if time_enc is not None:
        specs.append({
            "store": zstore, "name": f"{base}/time", "shape": (shape[0],), "dtype": np.int64,
            "chunks": (time_enc.chunk_samples,), "shards": shards(time_enc, ()),
            "compressors": [compressor(np.dtype(np.int64), time=True)], "fill_value": 0,
            "dimension_names": ("time",), "overwrite": True,
        })
    return specs


def create_arrays(specs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``zarr.create_array(**spec)`` of every spec, all in one round trip to zarr's event loop."""

    async def every() -> list[Any]:
        return list(await asyncio.gather(*(zarr_async.create_array(**spec) for spec in specs)))

    return [zarr.Array(a) for a in zarr_sync(every())]


def _in_memory(
    specs: Sequence[Mapping[str, Any]], values: Sequence[np.ndarray] | None = None
) -> tuple[list[Any], dict[str, bytes]]:
    """The arrays of ``specs`` (each spec's ``store`` and ``name``) made by zarr in a memory store, and filled
    with ``values`` (one per spec) when given, in one round trip to zarr's event loop: (the arrays, bound to their
    spec's store, each holding its metadata; every file zarr made, by path from the store root, the parents'
    group documents included). The caller writes the files it wants.

    A batch session's arrays are new by construction (its directory is fresh and locked): zarr's own create
    on the store spends ~4 ms per array on existence checks, a delete and the parents' group documents (a
    small session has six arrays), against ~1 ms in memory."""
    files: dict[str, Any] = {}
    mem = MemoryStore(store_dict=files)

    async def one(spec: Mapping[str, Any], v: np.ndarray | None) -> Any:
        a = await zarr_async.create_array(**{**spec, "store": mem, "overwrite": False})
        if v is not None and len(v):
            await a.setitem(slice(None), v)
        return a

    async def every() -> list[Any]:
        vs = [None] * len(specs) if values is None else values
        return list(await asyncio.gather(*(one(spec, v) for spec, v in zip(specs, vs, strict=True))))

    made = zarr_sync(every())
    arrays = [
        zarr.Array(zarr.AsyncArray(metadata=a.metadata, store_path=StorePath(spec["store"], spec["name"])))
        for a, spec in zip(made, specs, strict=True)
    ]
    return arrays, {k: v.to_bytes() for k, v in files.items()}


def create_stream_arrays(
    zstore: Any, base: str, s: Stream, shape: tuple[int, ...], dtype: np.dtype[Any], enc: Encoding,
    time_enc: Encoding | None,
) -> tuple[Any, Any]:
    """Create ``base/data`` and (unless ``time_enc`` is None: compact time base) ``base/time``."""
    arrays = create_arrays(_stream_array_specs(zstore, base, s, shape, dtype, enc, time_enc))
    return arrays[0], arrays[1] if time_enc is not None else None


def _event_array_spec(zstore: Any, base: str, col: str, kind: Any, n: int) -> dict[str, Any]:
    string = kind == pl.String
    return {
        "store": zstore, "name": f"{base}/events/{col}", "shape": (n,), "dtype": str if string else np.int64,
        "chunks": (max(1, min(n, 65536)) if n else 4096,), "fill_value": "" if string else 0,
        "dimension_names": ("event",), "overwrite": True,
    }


def create_event_arrays(zstore: Any, base: str, n: int) -> dict[str, Any]:
    """Create the four ``base/events/*`` arrays of length ``n``."""
    return {
        col: zarr.create_array(**_event_array_spec(zstore, base, col, kind, n)) for col, kind in EVENTS_SCHEMA.items()
    }


def event_array_files(zstore: Any, base: str, events: pl.DataFrame) -> dict[str, bytes]:
    """The files of the four ``base/events/*`` arrays holding ``events``, made by zarr in memory (see
    :func:`_in_memory`; a small session's arrays cost more than its samples): path -> bytes, the arrays'
    documents and chunks only."""
    specs = [_event_array_spec(zstore, base, col, kind, events.height) for col, kind in EVENTS_SCHEMA.items()]
    _, files = _in_memory(specs, [events[col].to_numpy() for col in EVENTS_SCHEMA])
    return {k: v for k, v in files.items() if k.startswith(f"{base}/events/") and k != f"{base}/events/zarr.json"}


def _device_name(meta: Mapping[str, Any]) -> str | None:
    device = meta.get("device")
    if isinstance(device, dict):
        return str(device.get("name") or device.get("model") or json.dumps(device, sort_keys=True))
    return device


def _tasks(meta: Mapping[str, Any], events: pl.DataFrame) -> list[str]:
    """``meta["tasks"]`` when given, else the task names of ``task/<name>`` events."""
    if meta.get("tasks") is not None:
        return list(meta["tasks"])
    labels = events.filter(pl.col("label").str.starts_with("task/"))["label"].unique(maintain_order=True)
    return sorted(label.removeprefix("task/") for label in labels)


def open_store(url: str | os.PathLike[str], mode: Mode = "a", *, durable: bool = False) -> Store:
    """Open an xrdata store at a local path or any fsspec URL (``s3://``, ``memory://`` ...).

    Modes: ``"r"`` read only; ``"r+"`` read/write, must exist; ``"a"`` read/write, created if missing
    (default); ``"w-"`` create, fail if anything is there.

    ``durable`` (local stores): every file of a session is fsync'd before its commit, and each replaced
    document's directory after it, so a committed session (or a live session's last flush) survives a power
    loss or an OS crash. Without it, commits are atomic against a crash of the writing process, but the
    samples may still sit in the kernel's page cache when the commit is written.
    """
    return Store(url, mode, durable=durable)


class Store:
    """A per-user chunked store of recordings. Create it with :func:`open_store`."""

    def __init__(self, url: str | os.PathLike[str], mode: Mode = "a", *, durable: bool = False) -> None:
        if mode not in ("r", "r+", "a", "w-"):
            raise ValidationError(f"mode must be one of 'r', 'r+', 'a', 'w-', got {mode!r}")
        self.url = os.fspath(url)
        self.mode = mode
        self._b = Backend(self.url, durable=durable)
        self._zstore: Any = (
            LocalStore(self._b.root, read_only=mode == "r")
            if self._b.local
            else FsspecStore.from_url(self.url, read_only=mode == "r")
        )
        root = self._b.read_json("zarr.json")
        if root is None:
            if mode in ("r", "r+"):
                raise NotFoundError(f"no xrdata store at {self.url} (open with mode='a' to create one)")
            if mode == "w-" and self._b.listdir(""):
                raise StoreError(f"{self.url} is not empty; mode 'w-' creates a new store only")
            self._b.write_atomic(
                "zarr.json", _group_doc({"format": FORMAT_NAME, "version": FORMAT_VERSION})
            )
            self._b.write_atomic("users/zarr.json", _group_doc({"kind": "users"}))
            return
        if mode == "w-":
            raise StoreError(f"a store already exists at {self.url}; mode 'w-' creates a new store only")
        info = root.get("attributes", {}).get("xrdata", {}) if isinstance(root, dict) else {}
        if info.get("format") != FORMAT_NAME:
            raise StoreError(f"{self.url} is a zarr hierarchy but not an xrdata store (no xrdata format tag)")
        if int(info.get("version", 0)) > FORMAT_VERSION:
            raise StoreError(
                f"{self.url} has store format version {info.get('version')}; this xrdata reads up to "
                f"{FORMAT_VERSION}: upgrade xrdata"
            )

    def __repr__(self) -> str:
        return f"Store({self.url!r}, mode={self.mode!r})"

    # --- listing -----------------------------------------------------------------------------------------

    def users(self) -> list[str]:
        """User ids with a partition in the store, sorted."""
        return [u for u in self._b.listdir("users") if u != "zarr.json" and _is_id(u)]

    def _session_attrs(self, user: str, session: str) -> dict[str, Any] | None:
        doc = self._b.read_json(f"users/{user}/{session}/zarr.json")
        if not isinstance(doc, dict):
            return None
        attrs = doc.get("attributes", {}).get("xrdata")
        return attrs if isinstance(attrs, dict) and attrs.get("kind") == "session" else None

    def _session_docs(self, user: str) -> dict[str, dict[str, Any] | None]:
        """Session id -> session document (None when missing or torn) for every session folder of ``user``."""
        return {
            s: self._session_attrs(user, s) for s in self._b.listdir(f"users/{user}") if s != "zarr.json" and _is_id(s)
        }

    def sessions(self, user: str, *, include_incomplete: bool = False) -> list[str]:
        """Committed session ids of ``user``, sorted; with ``include_incomplete`` also live/crashed ones."""
        check_id(user, "user id")
        return list(self._visible_docs(user, include_incomplete=include_incomplete))

    def _visible_docs(self, user: str, *, include_incomplete: bool = False) -> dict[str, dict[str, Any]]:
        """Session id -> session document of the sessions :meth:`sessions` lists (documents only: no arrays)."""
        ok = ("complete", "live") if include_incomplete else ("complete",)
        return {s: a for s, a in self._session_docs(user).items() if a is not None and a.get("state") in ok}

    def is_complete(self, user: str, session: str) -> bool:
        """True for a committed session, False for a live or crashed one (NotFoundError otherwise)."""
        return self._visible(user, session)["state"] == "complete"

    def _visible(self, user: str, session: str) -> dict[str, Any]:
        check_id(user, "user id")
        check_id(session, "session id")
        attrs = self._session_attrs(user, session)
        if attrs is None or attrs.get("state") not in ("complete", "live"):
            raise NotFoundError(f"no session {user}/{session} in store {self.url}")
        return attrs

    # --- writing -----------------------------------------------------------------------------------------

    def _require_writable(self) -> None:
        if self.mode == "r":
            raise StoreError(f"store {self.url} is open read-only (mode='r')")

    def _lock(self, user: str, pending: PendingWrites | None = None) -> UserLock:
        """Take the writer lock of ``user``, write the user's group document (``pending``: in the background)
        unless it is there already, and clean up after crashed writers (unless the last holder released the
        lock clean). Release it with ``clean=True`` only when nothing half-written is left."""
        lock = UserLock(self._b, user)
        lock.acquire()
        try:
            rel, doc = f"users/{user}/zarr.json", _group_doc({"kind": "user", "user_id": user})
            if self._b.read_bytes(rel) != doc:
                (pending or self._b).write_atomic(rel, doc)
            if not lock.previous_clean:
                self._cleanup(user)
        except BaseException:
            lock.release()
            raise
        return lock

    def _cleanup(self, user: str) -> None:
        """Remove sessions left half-written or half-deleted by a crashed writer (caller holds the lock)."""
        for s, a in self._session_docs(user).items():
            if a is None or a.get("state") in ("writing", "deleting"):
                self._b.remove_tree(f"users/{user}/{s}")

    def write(self, recording: Recording) -> None:
        """Commit a whole session atomically: it becomes visible only once everything is written.

        Raises :class:`SchemaError` (nothing written) when a stream violates its schema, and
        :class:`SessionExistsError` if the session id is already used for this user.
        """
        self._require_writable()
        if not isinstance(recording, Recording):
            raise ValidationError(f"Store.write takes a Recording, got {type(recording).__name__}")
        check_writable(recording)
        self._write_checked(recording)

    def _write_checked(
        self, recording: Recording, *, fills: Sequence[RowFill] = (), check: Callable[[], None] | None = None
    ) -> None:
        """:meth:`write` without its :func:`check_writable` pass, for a caller that has just run it on this
        very recording (``xrdata.loaders.ingest``: the samples of a long recording are checked once).

        ``fills``: producers still filling some streams' arrays; each chunk is encoded once its samples are
        final, so the producer and the encoder overlap. ``check`` then runs after every stream is written and
        before the commit (the caller's validation of the finished samples; it may still set
        ``recording.events``, which are written after it); whatever it or a producer raises removes the
        session, as any failure of the write does.

        The documents (user, session, streams) are written in the background while the samples are, the events
        once ``check`` has run, and all of them have been written and fsync'd before the commit; the commit
        document and the catalog partition are then fsync'd together and replaced in that order.
        """
        self._require_writable()
        user, session = recording.user_id, recording.session_id
        pending = PendingWrites(self._b)
        try:
            lock = self._lock(user, pending)
        except BaseException:
            pending.settle()
            raise
        clean = False  # nothing half-written left behind (the session committed, or removed after a failure)
        try:
            if self._session_attrs(user, session) is not None:
                raise SessionExistsError(
                    f"session {user}/{session} already exists in {self.url}; delete it first or pick "
                    "another session id"
                )
            base = f"users/{user}/{session}"
            attrs = {
                "kind": "session", "state": "writing", "user_id": user, "session_id": session,
                "meta": recording.meta, "streams": list(recording.streams), "n_events": recording.events.height,
            }
            try:
                pending.write_atomic(f"{base}/zarr.json", _group_doc(attrs))
                plans = [_StreamPlan.of(f"{base}/streams/{name}", s) for name, s in recording.streams.items()]
                specs = [spec for p in plans for spec in p.array_specs(self._zstore)]
                made, files = _in_memory(specs)
                docs = [f"{spec['name']}/zarr.json" for spec in specs] + [f"{base}/streams/zarr.json"] * bool(plans)
                for rel in docs:  # (the stream groups' documents are written once their stream is)
                    pending.run(self._b.write, rel, files[rel])
                arrays = iter(made)
                written = [
                    self._write_stream(
                        p, next(arrays), None if p.time_enc is None else next(arrays),
                        next((f for f in fills if f.holds(p.stream.data)), None), pending,
                    )
                    for p in plans
                ]
                if check is not None:
                    check()
                pending.run(self._write_events, base, recording.events)
                done = {**attrs, "n_events": recording.events.height, "state": "complete"}
                # The catalog rows from what was just written, still in memory (the same values
                # _session_rows reads back from disk when a partition is rebuilt).
                rows = _catalog_rows(user, session, done, written, recording.events)
                try:
                    catalog: bytes | Exception = self._catalog_payload(user, add=rows, sessions_add=[session])
                except Exception as exc:  # raised once the session is committed
                    catalog = exc
                pending.wait()
                self._b.sync_tree(base)  # (durable stores) everything the commit declares is on the disk first
            except BaseException:
                pending.settle()  # nothing may still be writing into the session removed here
                self._b.remove_tree(base)  # never leave a partial session behind
                if not [s for s in self._b.listdir(f"users/{user}") if s != "zarr.json"]:
                    self._b.remove_tree(f"users/{user}")  # nor a user of no session (it would be listed)
                clean = True
                raise
            commit = (f"{base}/zarr.json", _group_doc(done))
            if isinstance(catalog, Exception):
                self._b.write_atomic(*commit)  # committed all the same: a stale partition is repaired when read
                clean = True
                raise catalog
            self._b.write_atomic_in_order([commit, (self._catalog_path(user), catalog)])
            clean = True
        finally:
            pending.settle()  # (the user document, when the session id is taken)
            lock.release(clean=clean)

    def _write_stream(
        self, p: _StreamPlan, arr: Any, tarr: Any, fill: RowFill | None, pending: PendingWrites
    ) -> _StreamSummary:
        """Fill one stream's new arrays (``tarr``: None for a compact time base) and write its document
        (through ``pending``); returns (document, n, valid, first time, last time).

        ``fill``: the producer still filling the samples (each chunk is written once its samples are final)."""
        s = p.stream
        t = s.time_ns
        d = s.data  # any memory order: the chunk writer makes each chunk contiguous (no whole-array copy)
        n = d.shape[0]
        ready = None if fill is None else fill.wait
        valid = _fill_array(self._zstore, arr, d, validity=(s.modality, s.channels), ready=ready) if n else 0
        if n and tarr is not None:
            _fill_array(self._zstore, tarr, t)
        # The stream document is written last, once its valid-sample count is known; the session's state
        # document, not this one, is the commit point.
        doc = stream_document(s, n=n, dtype=d.dtype, sample_shape=d.shape[1:], valid=valid, time=p.time_doc)
        pending.write_atomic(f"{p.base}/zarr.json", _group_doc(doc))
        return doc, n, valid, (int(t[0]) if n else None), (int(t[-1]) if n else None)

    def _write_events(self, base: str, events: pl.DataFrame) -> None:
        self._b.write_atomic(f"{base}/events/zarr.json", _group_doc({"kind": "events"}))
        for rel, payload in event_array_files(self._zstore, base, events).items():
            self._b.write(rel, payload)

    def delete(self, user: str, session: str) -> None:
        """Remove a session (complete or incomplete) and its catalog rows."""
        self._require_writable()
        attrs = self._visible(user, session)
        lock = self._lock(user)
        clean = False
        try:
            base = f"users/{user}/{session}"
            # Catalog first: a crash after it leaves a visible session missing from the catalog, which the
            # staleness check repairs; the reverse order would leave a catalog row for an invisible session.
            self._update_catalog(user, drop=session)
            self._b.write_atomic(f"{base}/zarr.json", _group_doc({**attrs, "state": "deleting"}))
            self._b.remove_tree(base)
            clean = True
        finally:
            lock.release(clean=clean)

    def writer(
        self, user: str, session: str, *, meta: Mapping[str, Any] | None = None,
        flush_interval_s: float = 2.0,
    ) -> LiveWriter:
        """A context manager for live recording into a new session; see :class:`LiveWriter`."""
        self._require_writable()
        from xrdata.live import LiveWriter

        return LiveWriter(self, user, session, meta=meta, flush_interval_s=flush_interval_s)

    # --- reading -----------------------------------------------------------------------------------------

    def read(
        self, user: str, session: str, streams: Sequence[str] | None = None,
        start_ns: int | None = None, stop_ns: int | None = None,
    ) -> Recording:
        """Read a session lazily: only the requested streams, and only the chunks overlapping
        ``[start_ns, stop_ns)``, are read, when a stream's ``data``/``time_ns`` is first accessed.

        Events are those overlapping the interval (``time_ns < stop`` and ``time_ns + duration_ns > start``,
        or ``time_ns >= start`` for instantaneous events). Incomplete (live or crashed) sessions read back
        everything up to their last flush.
        """
        attrs = self._visible(user, session)
        base = f"users/{user}/{session}"
        names = list(attrs["streams"]) if streams is None else list(streams)
        unknown = [n for n in names if n not in attrs["streams"]]
        if unknown:
            raise NotFoundError(f"session {user}/{session} has no stream(s) {unknown}; it has {attrs['streams']}")
        flushed = attrs.get("flushed", {}) if attrs["state"] == "live" else None
        out = [self._read_stream(f"{base}/streams/{n}", start_ns, stop_ns, flushed) for n in names]
        events = self._read_events(base, attrs, start_ns, stop_ns)
        rec = Recording.__new__(Recording)
        rec.user_id, rec.session_id, rec.meta, rec.events = user, session, attrs.get("meta", {}), events
        rec.streams = {s.name: s for s in out}
        return rec

    def _read_stream(
        self, base: str, start: int | None, stop: int | None, flushed: dict[str, Any] | None
    ) -> Stream:
        a = self._stream_doc(base)
        n = int(a["n_samples"]) if flushed is None else int(flushed.get(a["name"], [0, 0])[0])
        tb = a["time"]
        zs = self._zstore
        if tb["kind"] == "regular_segments":
            seg, num, den = tb["segments"], int(tb["rate_num"]), int(tb["rate_den"])
            i = 0 if start is None else time_index(seg, num, den, n, start)
            j = n if stop is None else time_index(seg, num, den, n, stop)

            def load_time() -> np.ndarray:
                return expand_time(seg, num, den, n, i, max(i, j))
        else:
            tarr = zarr.open_array(zs, path=f"{base}/time", mode="r")
            i, j, block, lo = _time_range(tarr, tb, n, start, stop)

            def load_time() -> np.ndarray:
                if block is not None:
                    return block[i - lo : max(i, j) - lo]
                return np.asarray(tarr[i : max(i, j)], dtype=np.int64)

        j = max(i, j)
        path = f"{base}/data"

        def load_data() -> np.ndarray:
            return np.asarray(zarr.open_array(zs, path=path, mode="r")[i:j])

        return Stream.lazy(
            a["name"], a["modality"], j - i, load_time, load_data, list(a["channels"]), list(a["units"]),
            a["rate_hz"], a["meta"],
        )

    def _read_events(
        self, base: str, attrs: Mapping[str, Any], start: int | None, stop: int | None
    ) -> pl.DataFrame:
        n = int(attrs.get("n_events", 0))
        if n == 0:
            return pl.DataFrame(schema=EVENTS_SCHEMA)
        async def one(col: str) -> Any:
            arr = await zarr_async.open_array(store=self._zstore, path=f"{base}/events/{col}", mode="r")
            return await arr.getitem(slice(0, n))

        async def every() -> list[Any]:  # the four arrays in one round trip to zarr's event loop
            return list(await asyncio.gather(*(one(col) for col in EVENTS_SCHEMA)))

        cols = {}
        for col, values in zip(EVENTS_SCHEMA, zarr_sync(every()), strict=True):
            arr = np.asarray(values)
            cols[col] = pl.Series(col, arr.tolist() if col in ("label", "value") else arr)
        ev = pl.DataFrame(cols, schema=EVENTS_SCHEMA)
        if start is not None:
            end = pl.col("time_ns") + pl.col("duration_ns")
            ev = ev.filter((end > start) | (pl.col("time_ns") >= start))
        if stop is not None:
            ev = ev.filter(pl.col("time_ns") < stop)
        return ev

    # --- catalog -----------------------------------------------------------------------------------------

    def _catalog_path(self, user: str) -> str:
        return f"catalog/user={user}/part-0.parquet"

    def _partition(self, user: str) -> tuple[pl.DataFrame, list[str]] | None:
        raw = self._b.read_bytes(self._catalog_path(user))
        return None if raw is None else cat.decode_partition(raw, user)

    def _update_catalog(
        self, user: str, *, add: list[dict[str, Any]] | None = None, sessions_add: Sequence[str] = (),
        drop: str | None = None,
    ) -> None:
        """Rewrite the user's partition (caller holds the lock); a stale partition is rebuilt first."""
        payload = self._catalog_payload(user, add=add, sessions_add=sessions_add, drop=drop)
        self._b.write_atomic(self._catalog_path(user), payload)

    def _catalog_payload(
        self, user: str, *, add: list[dict[str, Any]] | None = None, sessions_add: Sequence[str] = (),
        drop: str | None = None,
    ) -> bytes:
        """The bytes :meth:`_update_catalog` writes: the partition with the rows of ``sessions_add`` (``add``)
        and without ``drop``. The same whether or not those sessions are committed yet (they are ignored
        when the partition's freshness is checked)."""
        part = self._partition(user)
        if part is None or not self._partition_fresh(user, part[1], ignore=(*sessions_add, drop)):
            df, covered = self._user_rows(user, exclude=(*sessions_add, drop))
        else:
            df, covered = part
        if drop is not None:
            df = df.filter(pl.col("session") != drop)
            covered = [s for s in covered if s != drop]
        if sessions_add:
            df = df.filter(~pl.col("session").is_in(list(sessions_add)))
            df = pl.concat([df, cat.frame(add or [])]).sort(["session", "stream"])
            covered = sorted({*covered, *sessions_add})
        return cat.encode_partition(df, covered)

    def _partition_fresh(self, user: str, covered: Sequence[str], ignore: Sequence[str | None] = ()) -> bool:
        """True when the partition covers exactly the visible sessions of ``user`` (one listing, and a
        document read only for folders the partition does not cover)."""
        names = {s for s in self._b.listdir(f"users/{user}") if s != "zarr.json" and _is_id(s)} - set(ignore)
        cov = set(covered) - set(ignore)
        if not cov <= names:
            return False
        return all((self._session_attrs(user, s) or {}).get("state") not in ("complete", "live") for s in names - cov)

    def _user_rows(self, user: str, exclude: Sequence[str | None] = ()) -> tuple[pl.DataFrame, list[str]]:
        """Catalog rows of every visible session of ``user``, recomputed from the stored metadata."""
        rows: list[dict[str, Any]] = []
        covered = []
        for s, attrs in self._session_docs(user).items():
            if s in exclude or attrs is None or attrs.get("state") not in ("complete", "live"):
                continue
            rows.extend(self._session_rows(user, s, attrs))
            covered.append(s)
        return cat.frame(rows), covered

    def _session_rows(self, user: str, session: str, attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Catalog rows of one session from its documents; reads at most two time chunks per stream."""
        base = f"users/{user}/{session}"
        complete = attrs["state"] == "complete"
        streams: list[_StreamSummary] = []
        for name in attrs["streams"]:
            a = self._stream_doc(f"{base}/streams/{name}")
            n, valid = (a["n_samples"], a["valid_samples"]) if complete else attrs["flushed"].get(name, [0, 0])
            first, last = self._time_bounds(f"{base}/streams/{name}", a, int(n))
            streams.append((a, int(n), int(valid), first, last))
        return _catalog_rows(user, session, attrs, streams, self._read_events(base, attrs, None, None))

    def _stream_doc(self, base: str) -> dict[str, Any]:
        doc = self._b.read_json(f"{base}/zarr.json")
        if not isinstance(doc, dict) or "xrdata" not in doc.get("attributes", {}):
            raise StoreError(f"stream metadata {self._b.path(base)}/zarr.json is missing or corrupt")
        attrs: dict[str, Any] = doc["attributes"]["xrdata"]
        return attrs

    def _time_bounds(self, base: str, a: Mapping[str, Any], n: int) -> tuple[int | None, int | None]:
        if n == 0:
            return None, None
        tb = a["time"]
        if tb["kind"] == "regular_segments":
            seg, num, den = tb["segments"], int(tb["rate_num"]), int(tb["rate_den"])
            return int(expand_time(seg, num, den, n, 0, 1)[0]), int(expand_time(seg, num, den, n, n - 1)[0])
        ends = np.asarray(zarr.open_array(self._zstore, path=f"{base}/time", mode="r")[[0, n - 1]])
        return int(ends[0]), int(ends[1])

    def catalog(self, users: Sequence[str] | None = None) -> pl.LazyFrame:
        """A lazy polars frame with one row per (user, session, stream) of ``users`` (default: all);
        see ``xrdata.catalog.CATALOG_SCHEMA``. Only the partitions of ``users`` are opened.

        Partitions left stale by a crash (a session committed but its row not yet written) are detected
        and recomputed; in a writable store they are also repaired on disk when no writer holds the user.
        """
        present = self.users()
        users = present if users is None else [u for u in users if u in present]
        stale: dict[str, pl.DataFrame] = {}
        for user in users:
            raw = self._b.read_bytes(self._catalog_path(user))
            covered = None if raw is None else cat.partition_sessions(raw)
            if covered is None or not self._partition_fresh(user, covered):
                stale[user] = self._repair(user)
        if self._b.local and len(stale) < len(users):
            fresh = pl.scan_parquet(
                [self._b.path(self._catalog_path(u)) for u in users if u not in stale], hive_partitioning=True,
                hive_schema={"user": pl.String()},
                schema={k: v for k, v in cat.CATALOG_SCHEMA.items() if k != "user"},
            ).select(list(cat.CATALOG_SCHEMA))
            return pl.concat([fresh, *(df.lazy() for df in stale.values())])
        frames = []
        for u in users:
            part = None if u in stale else self._partition(u)
            frames.append(stale[u] if u in stale else part[0] if part is not None else self._user_rows(u)[0])
        return (pl.concat(frames) if frames else cat.empty_catalog()).lazy()

    def _repair(self, user: str) -> pl.DataFrame:
        """Recompute a stale partition; persist it when the store is writable and no writer holds the user
        (an active writer rewrites the partition itself when it commits)."""
        if self.mode == "r":
            return self._user_rows(user)[0]
        lock = UserLock(self._b, user)
        try:
            lock.acquire()
        except XRDataError:
            return self._user_rows(user)[0]
        try:
            df, covered = self._user_rows(user)
            self._b.write_atomic(self._catalog_path(user), cat.encode_partition(df, covered))
            return df
        finally:
            lock.release(clean=lock.previous_clean)  # (no cleanup ran here)

    def rebuild_catalog(self, users: Sequence[str] | None = None, *, progress: bool = False) -> None:
        """Recompute the catalog partitions of ``users`` (default: all) from the stored metadata."""
        from xrdata.progress import progress_bar

        self._require_writable()
        todo = self.users() if users is None else list(users)
        for user in progress_bar(todo, desc="catalog", unit="user", enabled=progress):
            lock = self._lock(user)
            try:
                df, covered = self._user_rows(user)
                self._b.write_atomic(self._catalog_path(user), cat.encode_partition(df, covered))
            finally:
                lock.release(clean=True)  # cleaned up when taken; writes no session
        present = set(self.users())
        for part in self._b.listdir("catalog"):
            if part.startswith("user=") and part[5:] not in present:
                self._b.remove_tree(f"catalog/{part}")


@dataclass(frozen=True)
class _StreamPlan:
    """How one stream of a batch session is stored: its encodings and time base, decided before any array
    is created (so that every array of the session is created at once)."""

    base: str
    stream: Stream
    enc: Encoding
    time_enc: Encoding | None  # the time array's encoding; None for a compact regular time base
    time_doc: dict[str, Any]

    @classmethod
    def of(cls, base: str, s: Stream) -> _StreamPlan:
        t, d = s.time_ns, s.data
        sample_nbytes = int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize
        enc = choose_encoding(sample_nbytes, d.shape[0])
        time_base = compact_time(t, s.rate_hz)
        if time_base is not None:
            return cls(base, s, enc, None, time_base)
        tenc = choose_encoding(8, d.shape[0], chunk_bytes=CHUNK_BYTES)
        time_doc = {
            "kind": "array", "chunk_samples": tenc.chunk_samples, "chunk_starts": t[:: tenc.chunk_samples].tolist(),
        }
        return cls(base, s, enc, tenc, time_doc)

    def array_specs(self, zstore: Any) -> list[dict[str, Any]]:
        """The ``create_array`` arguments of the stream's data array and, without a compact time base, its
        time array."""
        d = self.stream.data
        return _stream_array_specs(zstore, self.base, self.stream, d.shape, d.dtype, self.enc, self.time_enc)


#: What the catalog needs of one stream: (stream document, samples, valid samples, first and last time ns).
_StreamSummary = tuple[dict[str, Any], int, int, "int | None", "int | None"]


def _catalog_rows(
    user: str, session: str, attrs: Mapping[str, Any], streams: Sequence[_StreamSummary], events: pl.DataFrame
) -> list[dict[str, Any]]:
    """Catalog rows of one session (``attrs``: its document) from its streams' summaries and its events."""
    complete = attrs["state"] == "complete"
    meta = attrs.get("meta", {})
    device, tasks = _device_name(meta), _tasks(meta, events)
    return [
        cat.stream_row(
            user=user, session=session, attrs=a, n=n, valid=valid, first=first, last=last, device=device,
            tasks=tasks, utc_anchor=meta.get("utc_anchor"), complete=complete,
        )
        for a, n, valid, first, last in streams
    ]


def _is_id(name: str) -> bool:
    try:
        check_id(name, "id")
    except XRDataError:
        return False
    return True


def _time_range(
    tarr: Any, time_attrs: Mapping[str, Any], n: int, start: int | None, stop: int | None
) -> tuple[int, int, np.ndarray | None, int]:
    """``(i, j, block, lo)``: samples ``[i, j)`` have ``start <= time < stop``; ``block`` holds
    ``time[lo:lo + len(block)]`` covering them (read once, reused for ``time_ns``), or None when no time had to be
    read. Only the time chunks holding ``start`` and ``stop`` are decoded."""
    if start is None and stop is None:
        return 0, n, None, 0
    chunk_starts = time_attrs.get("chunk_starts")
    if not chunk_starts or n == 0:  # live sessions keep no chunk index until they are committed
        lo, hi = 0, n
    else:
        size = int(time_attrs["chunk_samples"])
        cs = np.asarray(chunk_starts)
        c0 = 0 if start is None else max(0, int(np.searchsorted(cs, start, side="left")) - 1)
        c1 = len(cs) - 1 if stop is None else max(0, int(np.searchsorted(cs, stop, side="left")) - 1)
        lo, hi = c0 * size, min(n, (max(c0, c1) + 1) * size)
    block = np.asarray(tarr[lo:hi], dtype=np.int64)
    i = 0 if start is None else lo + int(np.searchsorted(block, start, side="left"))
    j = n if stop is None else lo + int(np.searchsorted(block, stop, side="left"))
    return i, j, block, lo


# --- the chunk writer -------------------------------------------------------------------------------------
# Store.write hands whole arrays to zarr's ``arr[...] = values`` only where it has to (remote stores, layouts
# this writer does not produce). On a local store it encodes the chunks itself and writes each shard file
# in one pass: zarr's write path copies every chunk into its own buffer, then joins the encoded chunks into
# one shard buffer before writing it, which for a 154 MB EEG array cost 0.25-0.35 s on top of the
# compression (as much as mne's whole parse of the file). The files are byte-for-byte what the sharding
# codec specifies (docs/FORMAT.md): the chunks' blosc frames one after the other, then the index (offset,
# length) as little-endian uint64 per chunk, then the index's CRC-32C; chunks past the end of the array are
# absent (index entries 2**64 - 1) and a last partial chunk is padded with the fill value, as zarr does.
# Chunks are encoded in a thread pool (blosc releases the GIL) while the caller's thread writes them in order.

_MAX_U64 = 2**64 - 1
_ENCODE_WORKERS = min(8, os.cpu_count() or 1)
_ENCODE_POOL: ThreadPoolExecutor | None = None
_ENCODE_POOL_PID = 0
_ENCODE_POOL_LOCK = threading.Lock()
_SHUFFLE_IDS = {BloscShuffle.noshuffle: 0, BloscShuffle.shuffle: 1, BloscShuffle.bitshuffle: 2}


def _encode_pool() -> ThreadPoolExecutor | None:
    """The shared encoder threads (None on a one-core machine: encode in the caller's thread). A forked child
    gets its own pool: the parent's threads do not exist in it."""
    global _ENCODE_POOL, _ENCODE_POOL_PID
    if _ENCODE_WORKERS < 2:
        return None
    with _ENCODE_POOL_LOCK:
        if _ENCODE_POOL is None or _ENCODE_POOL_PID != os.getpid():
            _ENCODE_POOL = ThreadPoolExecutor(_ENCODE_WORKERS, thread_name_prefix="xrdata-encode")
            _ENCODE_POOL_PID = os.getpid()
        return _ENCODE_POOL


def _chunk_layout(zstore: Any, arr: Any, values: np.ndarray) -> tuple[Any, int, int] | None:
    """``(blosc codec, chunk_samples, shard_samples)`` when ``arr`` is a local, sharded-along-time, blosc array
    this module's writer can fill directly; None otherwise (zarr writes it)."""
    if not isinstance(zstore, LocalStore) or sys.byteorder != "little":
        return None
    meta = arr.metadata
    if not isinstance(meta, ArrayV3Metadata) or len(meta.codecs) != 1 or not isinstance(meta.codecs[0], ShardingCodec):
        return None
    sc = meta.codecs[0]
    little = BytesCodec(endian="little")
    if sc.index_location != ShardingCodecIndexLocation.end or tuple(sc.index_codecs) != (little, Crc32cCodec()):
        return None
    inner = tuple(sc.codecs)
    if len(inner) != 2 or inner[0] != little or not isinstance(inner[1], BloscCodec):
        return None
    shard_shape = tuple(meta.chunk_grid.chunk_shape)  # type: ignore[attr-defined]
    chunk_shape = tuple(sc.chunk_shape)
    rest = tuple(values.shape[1:])
    if chunk_shape[1:] != rest or shard_shape[1:] != rest or shard_shape[0] % chunk_shape[0]:
        return None
    if values.dtype != np.dtype(arr.dtype) or not values.dtype.isnative or tuple(arr.shape) != values.shape:
        return None
    b = inner[1]
    codec = numcodecs.Blosc(cname=b.cname.value, clevel=b.clevel, shuffle=_SHUFFLE_IDS[b.shuffle],
                            blocksize=b.blocksize, typesize=b.typesize)
    return codec, int(chunk_shape[0]), int(shard_shape[0])


def _fill_array(
    zstore: Any, arr: Any, values: np.ndarray, *, validity: tuple[str, Sequence[str]] | None = None,
    ready: Callable[[int], None] | None = None,
) -> int:
    """Write ``values`` into the new, empty array ``arr`` (same shape and dtype); return the number of valid
    samples (:func:`sample_validity`) when ``validity = (modality, channels)`` is given, else 0.

    ``ready(stop)``, when given, returns once ``values[:stop]`` is final (a producer still fills the rest):
    called before the chunks up to ``stop`` are encoded."""
    layout = _chunk_layout(zstore, arr, values)
    if layout is None:
        if ready is not None:
            ready(values.shape[0])
        whole = np.ascontiguousarray(values)
        arr[...] = whole
        return int(sample_validity(validity[0], validity[1], whole).sum()) if validity is not None else 0
    codec, chunk, shard = layout
    n = values.shape[0]
    rest = values.shape[1:]
    fill = arr.metadata.fill_value

    def encode(a: int) -> tuple[bytes, int]:
        block = np.ascontiguousarray(values[a : a + chunk])  # the transpose of an F-ordered array happens here
        k = block.shape[0]
        valid = int(sample_validity(validity[0], validity[1], block).sum()) if validity is not None else 0
        if k < chunk:  # the last chunk: padded with the fill value, as zarr encodes it
            full = np.full((chunk, *rest), fill, dtype=values.dtype)
            full[:k] = block
            block = full
        return codec.encode(block), valid

    pool = _encode_pool()
    window = 2 * _ENCODE_WORKERS + 2  # chunks encoded ahead of the writer (bounded memory)
    root = Path(zstore.root) / arr.path
    valid = 0
    per_shard = shard // chunk
    for s0 in range(0, n, shard):
        starts = range(s0, min(n, s0 + shard), chunk)
        index = np.full((per_shard, 2), _MAX_U64, dtype="<u8")
        path = root / arr.metadata.encode_chunk_key((s0 // shard,) + (0,) * len(rest))
        path.parent.mkdir(parents=True, exist_ok=True)
        offset = 0
        pending: deque[Future[tuple[bytes, int]]] = deque()
        it = iter(starts)
        with open(path, "wb") as fh:
            for i in range(len(starts)):
                if pool is None:
                    a = next(it)
                    if ready is not None:
                        ready(a + chunk)
                    blob, v = encode(a)
                else:
                    while len(pending) < window:
                        ahead = next(it, None)
                        if ahead is None:
                            break
                        if ready is not None:
                            ready(ahead + chunk)
                        pending.append(pool.submit(encode, ahead))
                    blob, v = pending.popleft().result()
                fh.write(blob)
                index[i] = (offset, len(blob))
                offset += len(blob)
                valid += v
            raw = index.tobytes()
            fh.write(raw + google_crc32c.value(raw).to_bytes(4, "little"))
    return valid
