"""Reader registry and the contract every reader keeps.

A reader is ``read_<format>(path, *, user_id=..., session_id=None, **options) -> Recording``. Registering it
with :func:`reader` wraps it so that any failure of the underlying library becomes a
:class:`~xrdata.errors.LoaderError` naming the file and the format, and adds it to :func:`read`'s dispatch.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from xrdata.errors import LoaderError, MissingDependencyError, XRDataError
from xrdata.model import Recording

P = ParamSpec("P")
R = TypeVar("R", bound=Recording)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ReaderInfo:
    name: str  # format name, e.g. "xdf"
    func: Callable[..., Recording]
    suffixes: tuple[str, ...]  # lower-case file suffixes, e.g. (".xdf", ".xdfz")
    sniff: Callable[[Path], bool] | None  # content check for paths the suffix does not decide (folders...)
    description: str
    fallback: bool = False  # a generic reader (e.g. mapping-driven tables): chosen only if no specific one fits


READERS: dict[str, ReaderInfo] = {}


def default_session_id(path: PathLike) -> str:
    """A valid session id from a file or folder name: invalid characters become '-', at most 64."""
    stem = Path(path).name.split(".")[0] or "session"
    return re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:64]


def reader(
    name: str, suffixes: tuple[str, ...] = (), *, sniff: Callable[[Path], bool] | None = None, description: str = "",
    fallback: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Register a reader and make it keep the error contract (only XRDataError escapes, naming the file)."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            path: Any = args[0] if args else kwargs.get("path")
            if not isinstance(path, str | os.PathLike) or not os.path.exists(path):
                raise LoaderError(f"{path}: no such file or folder")
            try:
                return func(*args, **kwargs)
            except (XRDataError, MissingDependencyError):
                raise
            except (MemoryError, RecursionError) as exc:
                raise LoaderError(f"{path}: not a readable {name} file ({type(exc).__name__})") from exc
            except Exception as exc:  # the libraries raise anything (struct.error, KeyError, ValueError...)
                raise LoaderError(f"{path}: cannot read as {name}: {type(exc).__name__}: {exc}") from exc

        READERS[name] = ReaderInfo(name, checked, tuple(s.lower() for s in suffixes), sniff,
                                   description or (func.__doc__ or "").strip().splitlines()[0], fallback)
        return checked

    return wrap


def resolve(path: PathLike) -> ReaderInfo:
    """The reader :func:`read` would use for ``path`` (by suffix, then content for ties and folders)."""
    p = Path(path)
    if not p.exists():
        raise LoaderError(f"{p}: no such file or folder")
    name = p.name.lower()
    matches = [r for r in READERS.values() if any(name.endswith(s) for s in r.suffixes)]
    if len(matches) > 1:
        sniffed = [r for r in matches if r.sniff is not None and r.sniff(p)]
        matches = sorted(sniffed or matches[:1], key=lambda r: r.fallback)  # specific readers before generic
    if not matches:
        matches = [r for r in READERS.values() if r.sniff is not None and r.sniff(p)][:1]
    if not matches:
        known = ", ".join(f"{r.name} ({' '.join(r.suffixes) or 'folder'})" for r in READERS.values())
        raise LoaderError(f"{p}: no reader recognises this file; readers: {known}")
    return matches[0]


def read(path: PathLike, **options: Any) -> Recording:
    """Read any supported recording, choosing the reader by suffix or, for folders, by content.

    ``options`` are passed to the reader (``user_id``, ``session_id`` and format-specific ones).
    """
    return resolve(path).func(Path(path), **options)
