"""Ingest recordings into a store: several files of one session become one session on one clock.

Each file is read with :func:`xrdata.loaders.read`; files are identified by the SHA-256 of their bytes, so
ingesting the same file again is detected and skipped instead of duplicating data. A BIDS dataset is
ingested with :func:`ingest_bids`: one session per recording.

Speed (``benchmarks/ingest_bench.py``): the hash of a file is computed in a thread while the file is parsed
(hashlib releases the GIL), unless a file of the same byte count was ingested for the user before, in which
case it is hashed first so that a duplicate is skipped without parsing it (``meta["source_bytes"]`` keeps
the byte counts; sessions ingested before it existed make every file hash first). The readers' own schema
check is deferred and the merged recording is checked once before the store writes it. EEG files (EDF, BDF,
BrainVision, FIF, EEGLAB) are parsed in time blocks by a thread (:class:`xrdata.loaders.eeg.BlockFill`) while
the store compresses and writes the chunks already parsed; once parsed, their stim channels' events join the
recording (placed on the session clock as :func:`merge` places them), which is then checked after its arrays
are written and before the session is committed (a failure removes the session); a stream that turns out to
need float64 makes the session be read again whole.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from xrdata.errors import LoaderError, SchemaError, XRDataError
from xrdata.loaders._registry import PathLike, default_session_id, read, resolve
from xrdata.loaders.eeg import BlockFill, WholeReadNeeded
from xrdata.model import EVENTS_SCHEMA, Recording, Stream, check_id
from xrdata.store import Store
from xrdata.validation import check_writable


@dataclass
class IngestResult:
    """What :func:`ingest` did: the session written (None if everything was already there)."""

    user: str
    session: str | None
    streams: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> session that already holds it
    recording: str | None = None  # ingest_bids: the BIDS recording (sub-01/ses-1/task-rest/run-1)


def _companions(p: Path) -> list[Path]:
    """Files a recording's header file reads besides itself (BrainVision data/markers, EEGLAB .fdt, the
    continuation parts of a split FIF)."""
    suffix = p.suffix.lower()
    if suffix in (".vhdr", ".ahdr"):
        from xrdata.loaders.eeg import _brainvision_files

        return [p.with_name(n) for n in _brainvision_files(p)[1:]]
    if suffix == ".set":
        return [p.with_suffix(s) for s in (".fdt", ".FDT")]
    if p.name.lower().endswith((".fif", ".fif.gz")):
        return _fif_parts(p)
    return []


def _fif_parts(p: Path) -> list[Path]:
    """The continuation files of a split FIF recording, in order (mne reads them with the first): named
    ``<name>-1.fif``, ``<name>-2.fif``... after ``<name>.fif`` (mne's and MaxFilter's naming) or
    ``..._split-02_...`` after ``..._split-01_...`` (BIDS); [] for an unsplit file."""
    bids = re.search(r"_split-(\d+)_", p.name)
    if bids:
        first, width = int(bids.group(1)), len(bids.group(1))
        names = (p.name[: bids.start(1)] + f"{k:0{width}d}" + p.name[bids.end(1) :] for k in range(first + 1, 10_000))
    else:
        head, _, tail = p.name.partition(".")
        names = (f"{head}-{k}.{tail}" for k in range(1, 10_000))
    parts = []
    for name in names:
        part = p.with_name(name)
        if not part.is_file():
            break
        parts.append(part)
    return parts


def _hashed_files(path: Path) -> list[Path]:
    """The files whose bytes identify a recording: the file and its companions, or a folder's files."""
    if path.is_dir():
        return sorted(f for f in path.rglob("*") if f.is_file())
    if not path.is_file():
        return []
    return [path, *(c for c in _companions(path) if c.is_file())]


def _sha256(files: Sequence[Path], names_from: Path | None) -> str:
    """SHA-256 of ``files``' bytes in order, each preceded by its path relative to ``names_from`` (if given)."""
    h = hashlib.sha256()
    for f in files:
        if names_from is not None:
            h.update(f.relative_to(names_from).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)  # releases the GIL: the parse goes on in the other thread
    return h.hexdigest()


def file_sha256(path: PathLike) -> str:
    """SHA-256 of a recording's bytes: the file and the companion files it points to (BrainVision .eeg and
    .vmrk, EEGLAB .fdt), or a folder's files (names and bytes, in sorted order)."""
    p = Path(path)
    return _sha256(_hashed_files(p), p if p.is_dir() else None)


def _nbytes(files: Sequence[Path]) -> int:
    return sum(f.stat().st_size for f in files)


@dataclass
class _Ingested:
    """What ``user`` already holds: sha256 -> session, and the byte counts of those sources (None when a
    session predates ``source_bytes``: every size is then a possible duplicate)."""

    sessions: dict[str, str]
    sizes: set[int] | None

    def may_hold(self, nbytes: int) -> bool:
        return bool(self.sessions) and (self.sizes is None or nbytes in self.sizes)


def _ingested(store: Store, user: str) -> _Ingested:
    if user not in store.users():
        return _Ingested({}, set())
    out: dict[str, str] = {}
    sizes: set[int] | None = set()
    # The sessions' documents alone (Store.read would also read every session's event arrays)
    for session, attrs in store._visible_docs(user, include_incomplete=True).items():
        meta = attrs.get("meta", {})
        digests = meta.get("source_sha256", {})
        for digest in digests.values():
            out[digest] = session
        counts = meta.get("source_bytes")
        if digests and not isinstance(counts, dict):
            sizes = None
        elif sizes is not None and isinstance(counts, dict):
            sizes.update(int(v) for v in counts.values())
    return _Ingested(out, sizes)


def _reader_options(path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` the reader of ``path`` accepts (e.g. ``mapping`` only for tabular/XDF)."""
    params = inspect.signature(resolve(path).func).parameters
    return {k: v for k, v in options.items() if k in params}


def _anchor_ns(rec: Recording) -> int | None:
    anchor = rec.meta.get("utc_anchor")
    if anchor is None:
        return None
    dt = datetime.fromisoformat(anchor)
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def merge(recordings: Sequence[Recording], offsets_ns: Sequence[int | None], user: str, session: str) -> Recording:
    """Merge recordings of one session onto the first one's clock.

    A later recording is shifted by ``offsets_ns[i]`` when given, else by the difference of UTC anchors;
    one with neither raises (its start on the session clock cannot be known). Stream name clashes get the
    source file's stem appended. Streams that keep their name and clock are passed through, not copied.
    """
    offsets = _placed(recordings, offsets_ns)
    streams: dict[str, Stream] = {}
    meta: dict[str, Any] = {"source_files": [], "source_sha256": {}, "source_bytes": {}}
    for i, (rec, offset) in enumerate(zip(recordings, offsets, strict=True)):
        source = (rec.meta.get("source_files") or [f"file{i}"])[0]
        for name, s in rec.streams.items():
            key = name if name not in streams else f"{name}_{default_session_id(source)}"[:64]
            if key == name and offset == 0:
                streams[key] = s
            else:
                streams[key] = Stream(key, s.modality, s.time_ns + offset, s.data, s.channels, s.units, s.rate_hz,
                                      s.meta)
        for k, v in rec.meta.items():
            if k == "source_files":
                meta["source_files"] += v
            elif k in ("source_sha256", "source_bytes"):
                meta[k].update(v)
            elif k == "utc_anchor":
                meta.setdefault(k, recordings[0].meta.get(k))
            else:
                meta.setdefault(k, v)
    if meta.get("utc_anchor") is None:
        meta.pop("utc_anchor", None)
    if not meta["source_bytes"]:
        meta.pop("source_bytes")
    return Recording(user, session, streams, events=_merged_events(recordings, offsets), meta=meta)


def _placed(recordings: Sequence[Recording], offsets_ns: Sequence[int | None]) -> list[int]:
    """Each recording's shift onto the first one's clock (ns): the given offset, else the difference of UTC
    anchors (see :func:`merge`)."""
    base_anchor = _anchor_ns(recordings[0])
    out = []
    for i, (rec, offset) in enumerate(zip(recordings, offsets_ns, strict=True)):
        if offset is None:
            anchor = _anchor_ns(rec)
            if i == 0:
                offset = 0
            elif anchor is not None and base_anchor is not None:
                offset = anchor - base_anchor
            else:
                source = (rec.meta.get("source_files") or [f"file{i}"])[0]
                raise LoaderError(
                    f"{source}: cannot place it on the session clock of {recordings[0].meta.get('source_files')}: "
                    "one of them has no absolute (UTC) time; give its start on the session clock "
                    f"(--start {source}=SECONDS)"
                )
        out.append(offset)
    return out


def _merged_events(recordings: Sequence[Recording], offsets: Sequence[int]) -> pl.DataFrame | None:
    events = [rec.events.with_columns(pl.col("time_ns") + offset) if offset else rec.events
              for rec, offset in zip(recordings, offsets, strict=True) if rec.events.height]
    return pl.concat(events) if events else None


@dataclass
class _Source:
    """One thing to read into a session: a file or folder (``read``) or a BIDS recording."""

    name: str  # key in meta["source_sha256"] and what progress reports
    shown: str  # key in IngestResult.skipped
    files: list[Path]  # hashed, in this order
    names_from: Path | None  # hash file names relative to this folder too (folders, BIDS)
    # load(fills): the recording; with a list (not None) a reader may leave its samples to a BlockFill thread
    # it appends there (EEG files, see xrdata.loaders.eeg.streamed_reads)
    load: Callable[[list[BlockFill] | None], Recording]
    start_s: float | None = None


def _commit(
    store: Store, user: str, session: str, sources: Sequence[_Source], progress: Callable[[str], None] | None,
    seen: _Ingested | None = None,
) -> IngestResult:
    """Hash, read, merge, check and write ``sources`` as one session (module docstring). ``seen``: what
    ``user`` already holds, when the caller keeps it across sessions (updated here with what is written)."""
    seen = _ingested(store, user) if seen is None else seen
    try:
        return _commit_once(store, user, session, sources, progress, seen, stream=True)
    except WholeReadNeeded:  # a stream's dtype needs all of its samples (float64 fallback): no overlap
        return _commit_once(store, user, session, sources, progress, seen, stream=False)


def _commit_once(
    store: Store, user: str, session: str, sources: Sequence[_Source], progress: Callable[[str], None] | None,
    seen: _Ingested, *, stream: bool,
) -> IngestResult:
    result = IngestResult(user, None)
    recordings, offsets = [], []
    fills: list[BlockFill] = []  # EEG files still being parsed in blocks while the store writes them
    fills_of: list[list[BlockFill]] = []  # those of each recording
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="xrdata-sha256") as hasher:
            for src in sources:
                nbytes = _nbytes(src.files)
                digest: Future[str] = hasher.submit(_sha256, src.files, src.names_from)
                if seen.may_hold(nbytes) and digest.result() in seen.sessions:  # a duplicate: found before parsing
                    result.skipped[src.shown] = seen.sessions[digest.result()]
                    continue
                if progress is not None:
                    progress(src.name)
                started = len(fills)
                rec = src.load(fills if stream else None)
                if src.names_from is None and src.files:
                    read_too = [src.files[0].parent / n for n in rec.meta.get("source_files", [])]
                    extra = [f for f in read_too if f not in src.files and f.is_file()]
                    if extra:  # the reader followed files named otherwise than _companions expects
                        nbytes = _nbytes([*src.files, *extra])
                        digest = hasher.submit(_sha256, [*src.files, *extra], None)
                if digest.result() in seen.sessions:  # (a byte count in the store was wrong, or files were added)
                    result.skipped[src.shown] = seen.sessions[digest.result()]
                    for fill in fills[started:]:
                        fill.close()
                    del fills[started:]
                    continue
                rec.meta["source_sha256"] = {src.name: digest.result()}
                rec.meta["source_bytes"] = {src.name: nbytes}
                recordings.append(rec)
                fills_of.append(fills[started:])
                offsets.append(None if src.start_s is None else round(src.start_s * 1e9))
        if not recordings:
            return result
        placed = _placed(recordings, offsets)  # (the late stim events below are placed the same way)
        merged = merge(recordings, placed, user, session)
        if not merged.streams and not merged.events.height:
            names = ", ".join(s.name for s in sources if s.shown not in result.skipped)
            raise LoaderError(f"{names}: no streams and no events: nothing to ingest (an empty or truncated "
                              "recording)")

        def check() -> None:
            for fill in fills:
                fill.wait()
            late = [(rec, rows) for rec, own in zip(recordings, fills_of, strict=True)
                    if (rows := [row for fill in own for row in fill.stim_events()])]
            for rec, rows in late:  # stim events decoded once their channels were parsed, placed as merge places them
                rec.events = Recording(user, session, events=pl.concat(
                    [rec.events, pl.DataFrame(rows, schema=EVENTS_SCHEMA, orient="row")])).events
            if late:
                merged.events = Recording(user, session, events=_merged_events(recordings, placed)).events
            try:
                check_writable(merged)  # the readers deferred theirs: one pass over the samples
            except SchemaError as exc:
                names = ", ".join(s.name for s in sources if s.shown not in result.skipped)
                raise SchemaError(f"{names}: {exc}", exc.violations) from exc

        if fills and store._session_attrs(user, session) is None:
            # the samples are checked once written, before the commit (a failure removes the session)
            store._write_checked(merged, fills=fills, check=check)
        else:  # (a taken session id: the schema errors are reported first, as always)
            check()
            store._write_checked(merged)
    finally:
        for fill in fills:
            fill.close()
    for rec in recordings:
        seen.sessions.update(dict.fromkeys(rec.meta["source_sha256"].values(), session))
        if seen.sizes is not None:
            seen.sizes.update(rec.meta["source_bytes"].values())
    result.session, result.streams = session, list(merged.streams)
    return result


def is_bids_dataset(path: PathLike) -> bool:
    """Whether ``path`` is a BIDS dataset root (a folder with ``dataset_description.json``)."""
    from xrdata.loaders.bids import _is_bids_root

    return _is_bids_root(Path(path))


def ingest(
    paths: Sequence[PathLike], store: Store, user: str, *, session: str | None = None,
    starts_s: Mapping[str, float] | None = None, progress: Callable[[str], None] | None = None,
    **options: Any,
) -> IngestResult:
    """Read ``paths`` (one session's files) and commit them to ``store`` as one session of ``user``.

    Args:
        paths: recording files or folders, the first one defines the session clock.
        session: session id (default: derived from the first file's name).
        starts_s: file name -> start of that file on the session clock, in seconds, for files with no
            absolute time (e.g. a WAV recorded beside an XDF).
        progress: called with each file name before it is read.
        options: reader options (e.g. ``mapping=``), passed to the readers that accept them.

    Files already ingested for ``user`` (same SHA-256) are skipped; if every file was, nothing is written.
    A BIDS dataset root is accepted here when it holds one recording; use :func:`ingest_bids` for a
    dataset of several (one session each).
    """
    from xrdata.loaders.eeg import STREAMED_FORMATS, deferred_check, streamed_reads

    check_id(user, "user id")
    if not paths:
        raise LoaderError("ingest needs at least one file")
    files = [Path(p) for p in paths]
    session = session or default_session_id(files[0])
    check_id(session, "session id")
    for f in files:
        if is_bids_dataset(f):
            from xrdata.loaders.bids import bids_recordings

            found = bids_recordings(f)
            if len(found) > 1:
                raise LoaderError(
                    f"{f}: a BIDS dataset of {len(found)} recordings; ingest it with ingest_bids() "
                    "(`xrdata ingest DATASET`), which writes one session per recording"
                )

    def loader(f: Path) -> Callable[[list[BlockFill] | None], Recording]:
        def load(fills: list[BlockFill] | None) -> Recording:
            fmt = resolve(f).name
            streamed: AbstractContextManager[None] = (
                streamed_reads(f, fmt, fills) if fills is not None and fmt in STREAMED_FORMATS else nullcontext()
            )
            with deferred_check(), streamed:
                return read(f, user_id=user, session_id=session, **_reader_options(f, options))

        return load

    sources = []
    for f in files:
        start = (starts_s or {}).get(f.name, (starts_s or {}).get(str(f)))
        sources.append(_Source(f.name, str(f), _hashed_files(f), f if f.is_dir() else None, loader(f), start))
    return _commit(store, user, session, sources, progress)


def ingest_bids(
    root: PathLike, store: Store, user: str | None = None, *, session: str | None = None,
    subject: str | None = None, bids_session: str | None = None, task: str | None = None,
    run: str | None = None, progress: Callable[[str], None] | None = None,
) -> list[IngestResult]:
    """Ingest every recording (``sub``/``ses``/``task``/``run``) of a BIDS dataset, one session each.

    Args:
        root: the dataset root (the folder with ``dataset_description.json``).
        user: put every recording under this user. Default: each subject's own user id (the
            ``xrdata_user_id`` column of ``participants.tsv`` when there is one, else the ``sub`` label).
            With ``user`` given and several subjects selected, session ids get the subject label in front
            (``01-ses1-rest``) so that recordings of different subjects do not collide.
        session: session id; only when a single recording is selected.
        subject, bids_session, task, run: only the recordings with these BIDS labels (``"01"`` or
            ``"sub-01"``...).
        progress: called with each recording's label (``sub-01/ses-1/task-rest``) before it is read.

    A recording already ingested for its user (same SHA-256 of its data and ``*_events.tsv`` files and the
    companions of BrainVision/EEGLAB files, with their paths in the dataset) is skipped. Each recording is
    committed on its own: one whose session id is already taken by other content raises
    :class:`~xrdata.errors.SessionExistsError`, and the recordings before it stay ingested. Returns one
    :class:`IngestResult` per recording, in the dataset's order; ``skipped`` is keyed by the label.
    """
    from xrdata.loaders.bids import bids_recordings
    from xrdata.loaders.eeg import deferred_check

    root_path = Path(root)
    found = bids_recordings(root_path, subject=subject, session=bids_session, task=task, run=run)
    if not found:
        raise LoaderError(
            f"{root_path}: no EEG, motion or physio recording matches subject={subject!r} "
            f"session={bids_session!r} task={task!r} run={run!r}"
        )
    if session is not None and len(found) > 1:
        raise LoaderError(
            f"{root_path}: one session id cannot name {len(found)} recordings (each gets its own session); "
            "leave the session id out or select one recording (subject, session, task, run)"
        )
    if user is not None:
        check_id(user, "user id")
    prefix = user is not None and len({r.subject for r in found}) > 1
    results = []
    seen: dict[str, _Ingested] = {}  # per user, read once (each read lists every session document of the user)
    for r in found:
        uid = user or r.user_id
        sid = session or (f"{r.subject}-{r.session_id}"[:64] if prefix else r.session_id)
        try:
            check_id(uid, "user id")
            check_id(sid, "session id")
        except XRDataError as exc:
            raise LoaderError(f"{root_path}: {r.label}: {exc}; give the user / session id explicitly") from exc

        def load(_fills: list[BlockFill] | None, r: Any = r, uid: str = uid, sid: str = sid) -> Recording:
            with deferred_check():  # (not streamed: the BIDS reader reworks what the EEG readers return)
                return r.read(user_id=uid, session_id=sid)

        files = [f for p in r.files for f in _hashed_files(p)]
        source = _Source(r.label, r.label, files, root_path, load)
        if uid not in seen:
            seen[uid] = _ingested(store, uid)
        result = _commit(store, uid, sid, [source], progress, seen[uid])
        result.recording = r.label
        results.append(result)
    return results
