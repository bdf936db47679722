"""Output arrays that a process reuses from one session to the next (the depth frames, the EEG samples).

A 10-minute depth stream at 30 fps is 1.8 GB, the EEG's 38 MB: both above glibc's mmap threshold (32 MB at
most), so each session's array is mapped afresh and the kernel faults in and zeroes every page again. That
costs ~0.1 s per 1.8 GB on a quiet machine and 3-4 s on a virtual machine whose host took back the pages
freed with the previous session: up to twice the depth generator's own work. A synth worker generates one
session after another and frees each once it is written, so :func:`reusable_empty` hands the next session
the same pages. A caller who keeps a result keeps its pages to itself: while any array still refers to a
buffer, the next request gets fresh memory.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

_BUFFERS: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


def reusable_empty(key: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype`` (the caller writes every element), on the pages of
    the last one made for ``key`` when nothing refers to those any more; the buffer grows to the largest
    request and lives until :func:`release`."""
    dt = np.dtype(dtype)
    need = math.prod(shape) * dt.itemsize
    with _LOCK:  # the check and the taking as one step: two threads must not get the same buffer
        # 2 references when free: the dict's and getrefcount's argument (every array made from it adds one)
        if key in _BUFFERS and _BUFFERS[key].size >= need and sys.getrefcount(_BUFFERS[key]) == 2:
            return _BUFFERS[key][:need].view(dt).reshape(shape)
        buf = np.empty(max(need, 1), np.uint8)
        _BUFFERS[key] = buf
        return buf[:need].view(dt).reshape(shape)


def release() -> None:
    """Drop this process's buffers (arrays made from them keep their own memory)."""
    with _LOCK:
        _BUFFERS.clear()
