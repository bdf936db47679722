"""Readers of real recordings -> :class:`xrdata.Recording`.

One thin ``read_<format>(path, *, user_id=..., session_id=None, ...)`` per format over the format's
reference library (pyxdf, mne, soundfile, opencv ...), and :func:`read` that picks the reader by suffix or
content. Every reader raises only :class:`xrdata.errors.LoaderError` (naming the file) on bad input. The
libraries are imported inside the readers, so importing this package stays light.
"""

from __future__ import annotations

import importlib
import pkgutil

from xrdata.loaders._registry import READERS, ReaderInfo, default_session_id, read, resolve

# Every public module of this package defines readers; importing it registers them for read().
for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["READERS", "ReaderInfo", "default_session_id", "read", "resolve"]
