"""The README's Python examples run as written (in a fresh folder), so a newcomer who copies them gets what the
comments say; the two that need a recording or a long run are run on a fixture and a small cohort instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xrdata

BLOCKS = re.findall(r"```python\n(.*?)```", (Path(__file__).resolve().parents[1] / "README.md").read_text(), re.S)


def _run(code: str, ns: dict[str, Any], name: str) -> None:
    exec(compile(code, name, "exec"), ns)


def test_readme_has_the_examples_this_test_runs() -> None:
    assert len(BLOCKS) == 4
    assert 'read("session.xdf"' in BLOCKS[2] and 'config_from_preset("benchmark", users=20' in BLOCKS[3]


def test_store_writer_and_windows_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {}
    _run(BLOCKS[0], ns, "README block 1")
    assert ns["store"].sessions("u01") == ["s001"]
    assert ns["part"].streams["gaze"].data.shape == (200, 2)  # 1 s of 200 Hz
    assert ns["w"].data["gaze"].shape == (20, 2) and ns["w"].labels == {}  # the last window (9-11 s)
    first = next(iter(xrdata.windows(ns["store"], "u01", length_s=2.0, hop_s=1.0, steps=20)))
    assert first.labels == {"cognitive_load": "high"} and first.mask["gaze"].all()
    _run(BLOCKS[1], ns, "README block 2")  # the live writer, after the first block
    s002 = xrdata.open_store(tmp_path / "my-store").read("u01", "s002")
    np.testing.assert_array_equal(s002.streams["gaze"].data, np.full((100, 2), 3.5, "float32"))


def test_reader_example_on_a_real_recording(fixtures_dir: Path, tmp_path: Path) -> None:
    xdf = fixtures_dir / "xdf-modules_example-files" / "minimal.xdf"
    ns: dict[str, Any] = {}
    _run(BLOCKS[2].replace('"session.xdf"', repr(str(xdf))), ns, "README block 3")
    assert ns["rec"].user_id == "u01" and ns["rec"].streams


def test_synth_example_on_a_small_cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[3].replace('"benchmark", users=20, seed=1', '"quickstart", users=1, weeks=0.5, seed=1')
    _run(code.replace("workers=2", "workers=1"), {}, "README block 4")
    assert xrdata.open_store(tmp_path / "bench-store").users() == ["u0001"]
