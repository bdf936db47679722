"""Shared checks for reader tests: the error contract under truncation and byte corruption."""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import strategies as st

from xrdata.errors import XRDataError
from xrdata.model import Recording

#: A reader that takes longer than this on a corrupted fixture counts as hanging.
HANG_S = 20
#: Peak memory may grow at most this much while reading one corrupted fixture (fixtures are < 3 MB).
MEMORY_BUDGET_BYTES = 1 << 30


@st.composite
def corruptions(draw: st.DrawFn, size: int) -> tuple[str, list[tuple[int, int]], int]:
    """A truncation length or a list of (offset, byte) overwrites for a file of ``size`` bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "both"]))
    cut = draw(st.integers(0, max(0, size - 1))) if kind != "flip" else size
    flips = draw(st.lists(st.tuples(st.integers(0, max(0, size - 1)), st.integers(0, 255)), min_size=1,
                          max_size=8)) if kind != "truncate" else []
    return kind, flips, cut


def corrupt(payload: bytes, spec: tuple[str, list[tuple[int, int]], int]) -> bytes:
    _, flips, cut = spec
    data = bytearray(payload)
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    return bytes(data[:cut])


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("reader hung")


def check_contract(read: Callable[..., Any], path: Path, **options: Any) -> Recording | None:
    """Call ``read(path)``: it must return a Recording or raise XRDataError, within time and memory bounds.

    Returns the recording, or None when the reader refused the file with a proper XRDataError (whose
    message must name the file).
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        rec = read(path, **options)
    except XRDataError as exc:
        assert path.name in str(exc) or str(path) in str(exc), f"error does not name the file: {exc}"
        return None
    except TimeoutError:
        pytest.fail(f"reader hung for > {HANG_S} s on {path}")
    except Exception as exc:
        pytest.fail(f"reader raised {type(exc).__name__} instead of an XRDataError on {path}: {exc}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < MEMORY_BUDGET_BYTES, f"reading {path} grew peak memory by {grown / 2**20:.0f} MiB"
    assert isinstance(rec, Recording)
    return rec
