"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, or "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def settle() -> None:
    """Flush dirty pages before a timed run, so one side does not pay for the other's writeback."""
    os.sync()


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def update_readme(path: Path, begin: str, end: str, text: str) -> None:
    """Replace only the block between ``begin`` and ``end`` in ``path`` (other sections are left alone);
    append the block when the markers are missing."""
    doc = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        print(f"{path}: no {begin} block yet; appending one", file=sys.stderr)
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)
