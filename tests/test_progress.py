"""Progress output: a bar on a terminal, whole lines in a log file, nothing when disabled."""

from __future__ import annotations

import io

import pytest

from xrdata import progress
from xrdata.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_file_gets_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    bar = progress_bar(total=3, desc="synth", unit="user")
    for name in ("u1", "u2", "u3"):
        bar.set_postfix_str(name)
        bar.update()
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[-1].startswith("synth: 3/3 [") and lines[-1].endswith(", u3]")
    assert all(line.startswith("synth: ") for line in lines)
    assert len(set(lines)) == len(lines)  # closing right after the last timed line does not repeat it


def test_postfix_updates_wait_for_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    bar = progress_bar(total=50, desc="synth", unit="user")
    for i in range(50):
        bar.set_postfix(sessions=i)
        bar.set_postfix_str(f"u{i}")
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2, lines  # the first line and the last, not one per update
    assert lines[-1].startswith("synth: 50/50 [") and lines[-1].endswith(", u49]")


def test_terminal_gets_a_redrawn_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    assert list(progress_bar(range(3), desc="rounds", unit="round")) == [0, 1, 2]
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()


def test_disabled_bar_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    bar = progress_bar(total=2, desc="load", unit="user", enabled=False)
    bar.update(2)
    bar.close()
    assert list(progress_bar(range(2), desc="load", unit="user", enabled=False)) == [0, 1]
    assert log.getvalue() == ""
