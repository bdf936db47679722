"""Ingest recordings into a store: several files of one session become one session on one clock.

Each file is read with :func:`xrdata.loaders.read`; files are identified by the SHA-256 of their bytes, so
ingesting the same file again is detected and skipped instead of duplicating data.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from xrdata.errors import LoaderError
from xrdata.loaders._registry import PathLike, default_session_id, read, resolve
from xrdata.model import Recording, Stream, check_id
from xrdata.store import Store


@dataclass
class IngestResult:
    """What :func:`ingest` did: the session written (None if everything was already there)."""

    user: str
    session: str | None
    streams: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> session that already holds it


def _companions(p: Path) -> list[Path]:
    """Files a recording's header file reads besides itself (BrainVision data/markers, EEGLAB .fdt)."""
    suffix = p.suffix.lower()
    if suffix in (".vhdr", ".ahdr"):
        from xrdata.loaders.eeg import _brainvision_files

        return [p.with_name(n) for n in _brainvision_files(p)[1:]]
    if suffix == ".set":
        return [p.with_suffix(s) for s in (".fdt", ".FDT")]
    return []


def file_sha256(path: PathLike) -> str:
    """SHA-256 of a recording's bytes: the file and the companion files it points to (BrainVision .eeg and
    .vmrk, EEGLAB .fdt), or a folder's files (names and bytes, in sorted order)."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    files += [c for c in _companions(p) if c.is_file()] if p.is_file() else []
    for f in files:
        if p.is_dir():
            h.update(f.relative_to(p).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _ingested_hashes(store: Store, user: str) -> dict[str, str]:
    """sha256 -> session id for every file already ingested into ``user``'s sessions."""
    if user not in store.users():
        return {}
    out = {}
    for session in store.sessions(user, include_incomplete=True):
        for digest in store.read(user, session, streams=[]).meta.get("source_sha256", {}).values():
            out[digest] = session
    return out


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
    source file's stem appended.
    """
    base_anchor = _anchor_ns(recordings[0])
    streams: dict[str, Stream] = {}
    events = []
    meta: dict[str, Any] = {"source_files": [], "source_sha256": {}}
    for i, (rec, offset) in enumerate(zip(recordings, offsets_ns, strict=True)):
        source = (rec.meta.get("source_files") or [f"file{i}"])[0]
        if offset is None:
            anchor = _anchor_ns(rec)
            if i == 0:
                offset = 0
            elif anchor is not None and base_anchor is not None:
                offset = anchor - base_anchor
            else:
                raise LoaderError(
                    f"{source}: cannot place it on the session clock of {recordings[0].meta.get('source_files')}: "
                    "one of them has no absolute (UTC) time; give its start on the session clock "
                    f"(--start {source}=SECONDS)"
                )
        for name, s in rec.streams.items():
            key = name if name not in streams else f"{name}_{default_session_id(source)}"[:64]
            streams[key] = Stream(key, s.modality, s.time_ns + offset, s.data, s.channels, s.units, s.rate_hz, s.meta)
        if rec.events.height:
            events.append(rec.events.with_columns(pl.col("time_ns") + offset))
        for k, v in rec.meta.items():
            if k == "source_files":
                meta["source_files"] += v
            elif k == "source_sha256":
                meta["source_sha256"].update(v)
            elif k == "utc_anchor":
                meta.setdefault(k, recordings[0].meta.get(k))
            else:
                meta.setdefault(k, v)
    if meta.get("utc_anchor") is None:
        meta.pop("utc_anchor", None)
    return Recording(user, session, streams, events=pl.concat(events) if events else None, meta=meta)


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
    """
    check_id(user, "user id")
    if not paths:
        raise LoaderError("ingest needs at least one file")
    files = [Path(p) for p in paths]
    session = session or default_session_id(files[0])
    check_id(session, "session id")
    seen = _ingested_hashes(store, user)
    result = IngestResult(user, None)
    recordings, offsets = [], []
    for f in files:
        digest = file_sha256(f) if f.exists() else ""
        if digest in seen:
            result.skipped[str(f)] = seen[digest]
            continue
        if progress is not None:
            progress(f.name)
        rec = read(f, user_id=user, session_id=session, **_reader_options(f, options))
        rec.meta["source_sha256"] = {f.name: digest}
        recordings.append(rec)
        start = (starts_s or {}).get(f.name, (starts_s or {}).get(str(f)))
        offsets.append(None if start is None else round(start * 1e9))
    if not recordings:
        return result
    merged = merge(recordings, offsets, user, session)
    store.write(merged)
    result.session, result.streams = session, list(merged.streams)
    return result
