"""The generators' reusable output buffers (``xrdata.synth.buffers``) and the generators that write into them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xrdata.synth.buffers import release, reusable_empty
from xrdata.synth.depth import generate_depth
from xrdata.synth.eeg import generate_eeg
from xrdata.synth.types import EXAMPLE_DEVICE, Context, example_plan


def test_a_free_buffer_is_reused_and_a_held_one_is_not() -> None:
    release()
    a = reusable_empty("t", (4, 5), np.uint16)
    where = a.ctypes.data
    del a
    b = reusable_empty("t", (2, 5), np.uint16)  # smaller: the same pages
    assert b.ctypes.data == where and b.shape == (2, 5) and b.dtype == np.uint16
    c = reusable_empty("t", (4, 5), np.uint16)  # b is still held: fresh memory
    assert not np.shares_memory(b, c)
    view = c[::2]
    del c
    d = reusable_empty("t", (4, 5), np.uint16)  # a view still refers to c's buffer
    assert not np.shares_memory(view, d)
    del view, d
    e = reusable_empty("t", (3, 10), np.float64)  # larger than the buffer: a new one, then reused
    where = e.ctypes.data
    del e
    assert reusable_empty("t", (30,), np.float64).ctypes.data == where
    assert reusable_empty("other", (0, 3), np.float32).shape == (0, 3)
    release()


def _writes_every_element(key: str, make: Callable[[], np.ndarray], garbage: float) -> None:
    """``make()`` on its free buffer filled with ``garbage`` returns what it returns on fresh memory."""
    release()
    fresh = make().copy()
    buf = reusable_empty(key, fresh.shape, fresh.dtype)  # the generator's buffer, free again
    buf[:] = garbage
    where = buf.ctypes.data
    del buf
    again = make()
    assert again.ctypes.data == where
    np.testing.assert_array_equal(again, fresh)
    release()


@pytest.mark.parametrize("kind", ["structured_light", "tof"])
def test_depth_writes_every_pixel_of_a_reused_buffer(kind: str) -> None:
    plan = example_plan(0.5, (("gaze_selection", "target_1"),))
    sensor = replace(EXAMPLE_DEVICE.sensors["depth"], params={**EXAMPLE_DEVICE.sensors["depth"].params, "kind": kind})
    _writes_every_element(
        "depth", lambda: generate_depth(plan, sensor, np.random.default_rng(3), Context()).streams[0].data, 0xFFFF)


def test_eeg_writes_every_sample_of_a_reused_buffer() -> None:
    plan = example_plan(20.0)
    _writes_every_element(
        "eeg", lambda: generate_eeg(plan, EXAMPLE_DEVICE.sensors["eeg"], np.random.default_rng(1),
                                    Context()).streams[0].data, np.nan)


def test_in_process_generate_gives_its_buffers_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xrdata.synth import buffers, config_from_preset, generate

    module = importlib.import_module("xrdata.synth.generate")  # xrdata.synth.generate is the function
    held: list[list[str]] = []

    def spy() -> None:
        held.append(sorted(buffers._BUFFERS))
        release()

    monkeypatch.setattr(module, "release", spy)
    cfg = config_from_preset("quickstart", users=1, weeks=0.5, seed=1, devices={"quest_pro": 1.0}, eeg_cap_prob=1.0)
    generate(cfg, tmp_path / "store", workers=1, progress=False)
    assert held == [["depth", "eeg"]] and buffers._BUFFERS == {}
