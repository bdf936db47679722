"""File-level access under a store root: atomic small-object writes, listings and the per-user lock.

zarr handles the arrays; this module handles what zarr does not (catalog files, locks, cleanup), over a
local directory or any fsspec filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import fsspec

from xrdata.errors import LockedError, StoreError

# fcntl exists only on POSIX; Windows falls back to the exclusive-create lock used for remote stores.
try:
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

_MEMORY_LOCKS: set[str] = set()  # locks of in-process (memory://) stores


class Backend:
    """Paths are relative to the store root and use '/' separators."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        self.root = str(Path(root).resolve()) if self.local else root.rstrip("/")
        protocols = (self.fs.protocol,) if isinstance(self.fs.protocol, str) else tuple(self.fs.protocol)
        self.memory = "memory" in protocols

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self.path(rel)))
        except FileNotFoundError:
            return None

    def read_json(self, rel: str) -> Any:
        """Parsed JSON, or None when the file is missing or unreadable (a torn write is treated as absent)."""
        raw = self.read_bytes(rel)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def write_atomic(self, rel: str, payload: bytes) -> None:
        """Replace a file so that readers see the old or the new content, never a mix."""
        full = self.path(rel)
        if self.local:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            tmp = self.path(f".xrdata/tmp/{uuid.uuid4().hex}")
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, full)
        else:
            # A single PUT is atomic on object stores; fsspec memory/remote filesystems write whole objects.
            self.fs.pipe_file(full, payload)

    def listdir(self, rel: str) -> list[str]:
        """Names of the entries directly under ``rel`` ([] when it does not exist)."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def remove_tree(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(rel), recursive=True)

    def remove_file(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(rel))


class UserLock:
    """Exclusive writer lock of one user partition.

    Local stores use ``flock`` on ``.xrdata/locks/<user>.lock``: the kernel releases it when the holder dies,
    so a crashed writer never leaves a stale lock. Other filesystems use an exclusive lock object that a
    crashed writer leaves behind; the error says how to remove it.
    """

    def __init__(self, backend: Backend, user_id: str) -> None:
        self.backend = backend
        self.user_id = user_id
        self.rel = f".xrdata/locks/{user_id}.lock"
        self._fd: int | None = None
        self._held = False

    def _owner(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})

    def acquire(self) -> None:
        b = self.backend
        if b.local and fcntl is not None:
            full = b.path(self.rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            fd = os.open(full, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    holder = b.read_bytes(self.rel) or b"{}"
                    raise LockedError(
                        f"user {self.user_id!r} in store {b.url} is being written by another writer "
                        f"({holder.decode(errors='replace').strip() or 'unknown holder'}); "
                        "one writer per user partition at a time: wait for it to finish"
                    ) from exc
                raise StoreError(f"cannot lock user {self.user_id!r} in {b.url}: {exc}") from exc
            os.ftruncate(fd, 0)
            os.write(fd, self._owner().encode())
            self._fd = fd
        elif b.memory:
            key = f"{b.root}/{self.user_id}"
            if key in _MEMORY_LOCKS:
                raise LockedError(f"user {self.user_id!r} in store {b.url} is being written by another writer")
            _MEMORY_LOCKS.add(key)
        else:
            if b.exists(self.rel):
                raise LockedError(
                    f"user {self.user_id!r} in store {b.url} is locked by "
                    f"{(b.read_bytes(self.rel) or b'?').decode(errors='replace')}; if that writer is gone, "
                    f"delete {b.path(self.rel)}"
                )
            b.write_atomic(self.rel, self._owner().encode())
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        b = self.backend
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        elif b.memory:
            _MEMORY_LOCKS.discard(f"{b.root}/{self.user_id}")
        else:
            b.remove_file(self.rel)
        self._held = False
