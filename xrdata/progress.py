"""Progress bars that also read well in log files.

On a terminal: an ordinary tqdm bar on stderr. Elsewhere (``nohup``, a batch scheduler's log, CI), tqdm's
default is no bar at all, so a 20-minute training run writes nothing until it ends; here it writes a plain
line every ``LOG_INTERVAL_S`` seconds and one at the end instead of carriage-return redraws.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from typing import Any, TextIO

__all__ = ["LOG_INTERVAL_S", "progress_bar"]

#: Seconds between two progress lines when stderr is not a terminal.
LOG_INTERVAL_S = 30.0


class _Lines:
    """A text stream for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last = ""

    def write(self, text: str) -> None:
        for line in text.replace("\r", "\n").split("\n"):
            line = line.rstrip()
            if line and line != self.last:  # closing right after a timed line would repeat it
                self.out.write(line + "\n")
                self.last = line

    def flush(self) -> None:
        self.out.flush()


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str, unit: str,
                 enabled: bool = True, initial: int = 0) -> Any:
    """A tqdm bar on stderr (``enabled=False``: a silent one); see the module docstring for log files."""
    from tqdm import tqdm

    err = sys.stderr
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if err.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=err)
    bar = tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=_Lines(err),
               mininterval=LOG_INTERVAL_S, maxinterval=LOG_INTERVAL_S,
               bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed} elapsed, {remaining} left{postfix}]")
    # tqdm redraws at once on a new postfix, which would write a line per update; the next timed line shows it
    bar.set_postfix = functools.partial(bar.set_postfix, refresh=False)
    bar.set_postfix_str = functools.partial(bar.set_postfix_str, refresh=False)
    return bar
