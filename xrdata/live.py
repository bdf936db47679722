"""Live recording into a store: append samples as they arrive, flush periodically, commit on exit."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xrdata.encoding import choose_encoding
from xrdata.errors import SessionExistsError, StoreError, ValidationError
from xrdata.model import Recording, Stream, check_id, normalize_meta
from xrdata.validation import check_writable, sample_validity

if TYPE_CHECKING:
    from xrdata._fs import UserLock
    from xrdata.store import Store


class _Buffer:
    def __init__(self, stream: Stream) -> None:
        self.spec = stream
        self.dtype = stream.data.dtype
        self.sample_shape = stream.data.shape[1:]
        self.times: list[np.ndarray] = []
        self.blocks: list[np.ndarray] = []
        self.n_flushed = 0
        self.valid = 0
        self.last_t: int | None = None
        self.chunk_samples = 0
        self.time_arr: Any = None
        self.data_arr: Any = None


class LiveWriter:
    """Writes one session while it is being recorded. Use it as a context manager::

        with store.writer("u01", "s001", meta={"device": "quest_pro"}) as w:
            w.add_stream(Stream("gaze", "gaze", [], np.empty((0, 4), "float32"), channels, units, 200.0))
            w.append("gaze", t_ns, samples)        # (k,) int64 and (k, 4)
            w.add_events({"time_ns": [...], "duration_ns": [...], "label": [...], "value": [...]})

    Buffered samples are flushed every ``flush_interval_s`` seconds (checked on each append) and on
    :meth:`flush`; each flush ends with one atomic metadata write, so after a crash the session is listed
    as incomplete and reads back everything up to its last flush. Leaving the block normally commits the
    session; leaving it with an exception flushes and leaves the session incomplete. The writer holds the
    user's lock from ``__enter__`` to exit: a second writer for the same user gets :class:`LockedError`.
    """

    def __init__(
        self, store: Store, user: str, session: str, *, meta: Mapping[str, Any] | None,
        flush_interval_s: float,
    ) -> None:
        self.store = store
        self.user = check_id(user, "user id")
        self.session = check_id(session, "session id")
        self.meta = normalize_meta(meta, f"session {user}/{session}")
        Recording(user, session, meta=self.meta)  # validates the well-known metadata keys
        if flush_interval_s <= 0:
            raise ValidationError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.flush_interval_s = flush_interval_s
        self.base = f"users/{user}/{session}"
        self._buffers: dict[str, _Buffer] = {}
        self._events: list[pl.DataFrame] = []
        self._n_events = 0
        self._event_arrays: dict[str, Any] = {}
        self._lock: UserLock | None = None
        self._last_flush = time.monotonic()
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> LiveWriter:
        self._lock = self.store._lock(self.user)
        try:
            if self.store._session_attrs(self.user, self.session) is not None:
                raise SessionExistsError(f"session {self.user}/{self.session} already exists in {self.store.url}")
            from xrdata.store import create_event_arrays

            self._event_arrays = create_event_arrays(self.store._zstore, self.base, 0)
            self._write_session_attrs("live")  # visible only once every array it points to exists
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.commit()
            return
        try:
            self.flush()
        finally:
            self._release()

    def _release(self) -> None:
        self._closed = True
        if self._lock is not None:
            self._lock.release(clean=True)  # a live session is never half-written: it stays readable as it is

    def _require_open(self) -> None:
        if self._lock is None:
            raise StoreError("use the live writer as a context manager: with store.writer(...) as w:")
        if self._closed:
            raise StoreError(f"the live writer of {self.user}/{self.session} is closed")

    def _write_session_attrs(self, state: str) -> dict[str, Any]:
        from xrdata.store import _group_doc

        attrs = {
            "kind": "session", "state": state, "user_id": self.user, "session_id": self.session,
            "meta": self.meta, "streams": list(self._buffers), "n_events": self._n_events,
            "flushed": {name: [b.n_flushed, b.valid] for name, b in self._buffers.items()},
        }
        self.store._b.write_atomic(f"{self.base}/zarr.json", _group_doc(attrs))
        return attrs

    # --- input -------------------------------------------------------------------------------------------

    def add_stream(self, stream: Stream) -> None:
        """Declare a stream (its name, modality, channels, units, rate, dtype and sample shape);
        samples it already holds are appended."""
        self._require_open()
        if stream.name in self._buffers:
            raise ValidationError(f"stream {stream.name!r} is already declared in {self.user}/{self.session}")
        check_writable(Recording(self.user, self.session, [stream]))
        from xrdata.store import _group_doc, create_stream_arrays

        buf = _Buffer(stream)
        sample_nbytes = int(np.prod(buf.sample_shape, dtype=np.int64)) * buf.dtype.itemsize
        enc = choose_encoding(sample_nbytes, 0, sharded=False)
        buf.chunk_samples = enc.chunk_samples
        tenc = choose_encoding(8, 0, sharded=False)
        sbase = f"{self.base}/streams/{stream.name}"
        doc = self._stream_attrs(buf, tenc.chunk_samples, None)
        self.store._b.write_atomic(f"{sbase}/zarr.json", _group_doc(doc))
        buf.data_arr, buf.time_arr = create_stream_arrays(
            self.store._zstore, sbase, stream, (0, *buf.sample_shape), buf.dtype, enc, tenc
        )
        self._buffers[stream.name] = buf
        self._write_session_attrs("live")
        if stream.n_samples:
            self.append(stream.name, stream.time_ns, stream.data)

    def _stream_attrs(self, buf: _Buffer, tchunk: int, starts: list[int] | None) -> dict[str, Any]:
        from xrdata.store import stream_document

        time_attrs: dict[str, Any] = {"kind": "array", "chunk_samples": tchunk}
        if starts is not None:
            time_attrs["chunk_starts"] = starts
        return stream_document(buf.spec, n=buf.n_flushed, dtype=buf.dtype, sample_shape=buf.sample_shape,
                               valid=buf.valid, time=time_attrs)

    def append(self, name: str, time_ns: Any, data: Any) -> None:
        """Append ``k`` samples: ``time_ns`` (k,) int64 ns, ``data`` (k, *sample_shape) of the stream's dtype."""
        self._require_open()
        buf = self._buffers.get(name)
        if buf is None:
            raise ValidationError(
                f"stream {name!r} is not declared; call add_stream first (declared: {list(self._buffers)})"
            )
        t = np.atleast_1d(np.asarray(time_ns))
        d = np.asarray(data)
        # Stream's constructor checks dtype, NaN and monotonic time with the usual messages.
        Stream(name, buf.spec.modality, t, d, buf.spec.channels, buf.spec.units)
        if d.shape[1:] != buf.sample_shape:
            raise ValidationError(f"stream {name!r}: samples have shape {d.shape[1:]}, declared {buf.sample_shape}")
        if not np.can_cast(d.dtype, buf.dtype, "same_kind"):
            raise ValidationError(f"stream {name!r}: data dtype {d.dtype} cannot be stored as {buf.dtype}")
        t = t.astype(np.int64)
        if t.size and buf.last_t is not None and int(t[0]) < buf.last_t:
            raise ValidationError(
                f"stream {name!r}: time went backwards ({buf.last_t} -> {int(t[0])}); timestamps must be "
                "non-decreasing across appends"
            )
        if t.size:
            buf.last_t = int(t[-1])
            buf.times.append(t)
            buf.blocks.append(d.astype(buf.dtype, copy=False))
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def add_events(self, events: Any) -> None:
        """Append rows to the events table (same columns as ``Recording.events``)."""
        self._require_open()
        self._events.append(Recording(self.user, self.session, events=events).events)

    # --- output ------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered samples and events, then record the new counts in one atomic metadata write."""
        self._require_open()
        for buf in self._buffers.values():
            if not buf.times:
                continue
            t = np.concatenate(buf.times)
            d = np.concatenate(buf.blocks)
            n0, k = buf.n_flushed, t.shape[0]
            buf.time_arr.resize((n0 + k,))
            buf.time_arr[n0:] = t
            buf.data_arr.resize((n0 + k, *buf.sample_shape))
            buf.data_arr[n0:] = d
            buf.times.clear()
            buf.blocks.clear()
            buf.n_flushed += k
            buf.valid += int(sample_validity(buf.spec.modality, buf.spec.channels, d).sum())
        if self._events:
            ev = pl.concat(self._events)
            n0, k = self._n_events, ev.height
            for col, arr in self._event_arrays.items():
                arr.resize((n0 + k,))
                arr[n0:] = ev[col].to_numpy()
            self._events.clear()
            self._n_events += k
        self.store._b.sync_tree(self.base)  # (durable stores) the samples before the counts that declare them
        self._write_session_attrs("live")
        self._last_flush = time.monotonic()

    def commit(self) -> None:
        """Flush, then mark the session complete and add it to the catalog."""
        self._require_open()
        try:
            from xrdata.store import _group_doc

            self.flush()
            for name, buf in self._buffers.items():
                tchunk = int(buf.time_arr.chunks[0])
                starts = np.asarray(buf.time_arr[:: tchunk] if buf.n_flushed else []).tolist()
                attrs = self._stream_attrs(buf, tchunk, starts)
                self.store._b.write_atomic(f"{self.base}/streams/{name}/zarr.json", _group_doc(attrs))
            done = self._write_session_attrs("complete")
            rows = self.store._session_rows(self.user, self.session, done)
            self.store._update_catalog(self.user, add=rows, sessions_add=[self.session])
        finally:
            self._release()
