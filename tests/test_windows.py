"""Tests of xrdata.windows: hand-computable resampling, masks, labels, window grid, blocks, errors."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import xrdata.windowing as WINDOWS_MODULE
from xrdata import Recording, Store, Stream, Window, XRDataError, open_store, windows
from xrdata.errors import NotFoundError, ValidationError
from xrdata.model import EVENTS_SCHEMA

MS = 1_000_000
S = 1_000_000_000


def regular(n: int, rate_hz: float, start_ns: int = 0) -> np.ndarray:
    return start_ns + np.round(np.arange(n) * (1e9 / rate_hz)).astype(np.int64)


def eeg(t: np.ndarray, values: np.ndarray, rate_hz: float | None, name: str = "eeg") -> Stream:
    """An EEG stream (free channel names, volts): handy for arbitrary hand-written values."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[:, None]
    chans = [f"E{i}" for i in range(values.shape[1])]
    return Stream(name, "eeg", t, values, chans, "V", rate_hz=rate_hz)


def gaze(t: np.ndarray, rate_hz: float | None = 200.0, name: str = "gaze") -> Stream:
    n = t.shape[0]
    d = np.zeros((n, 4), dtype=np.float32)
    d[:, 2] = -1.0
    d[:, 3] = 3.0 + np.arange(n, dtype=np.float32) / max(1, n)
    chans = ["combined_dir_x", "combined_dir_y", "combined_dir_z", "left_pupil_diameter"]
    return Stream(name, "gaze", t, d, chans, ["1", "1", "1", "mm"], rate_hz=rate_hz)


def imu(t: np.ndarray, rate_hz: float | None = 1000.0, name: str = "imu") -> Stream:
    d = np.stack([np.sin(t / 1e8), np.cos(t / 1e8), np.full(t.shape, 9.81)], axis=1).astype(np.float32)
    return Stream(name, "motion", t, d, ["accel_x", "accel_y", "accel_z"], "m/s^2", rate_hz=rate_hz)


def depth(t: np.ndarray, frames: np.ndarray, rate_hz: float | None = 30.0) -> Stream:
    return Stream("depth", "depth", t, frames.astype(np.uint16), ["depth"], ["mm"], rate_hz=rate_hz)


def write(store: Store, user: str, session: str, streams: Sequence[Stream], events: Any = None) -> None:
    store.write(Recording(user, session, streams, events=events))


def events_frame(rows: list[tuple[int, int, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=EVENTS_SCHEMA, orient="row")


def assert_windows_equal(a: list[Window], b: list[Window]) -> None:
    assert [(w.session, w.start_ns, w.stop_ns) for w in a] == [(w.session, w.start_ns, w.stop_ns) for w in b]
    for wa, wb in zip(a, b, strict=True):
        assert wa.data.keys() == wb.data.keys()
        for name in wa.data:
            assert wa.data[name].dtype == wb.data[name].dtype == np.float32
            np.testing.assert_array_equal(wa.data[name], wb.data[name])  # NaN == NaN here, bits otherwise
            assert wa.data[name].tobytes() == wb.data[name].tobytes()
            np.testing.assert_array_equal(wa.mask[name], wb.mask[name])
        assert wa.labels == wb.labels
        assert wa.events.equals(wb.events)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "store")


# --- resampling rules --------------------------------------------------------------------------------


def test_mean_of_a_ramp(store: Store) -> None:
    # 100 Hz ramp 0..99 over 1 s, pooled to 10 steps: step k averages samples 10k..10k+9 -> 10k + 4.5.
    t = regular(100, 100.0)
    values = np.stack([np.arange(100.0), np.arange(100.0)], axis=1)
    values[[11, 12, 13], 1] = np.nan  # NaN values are ignored value by value
    write(store, "u1", "s1", [eeg(t, values, 100.0)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=10)
    assert (w.start_ns, w.stop_ns) == (0, S)
    assert w.data["eeg"].shape == (10, 2) and w.data["eeg"].dtype == np.float32
    np.testing.assert_allclose(w.data["eeg"][:, 0], 10 * np.arange(10) + 4.5)
    expected = 10 * np.arange(10) + 4.5
    expected[1] = np.mean([10, 14, 15, 16, 17, 18, 19])
    np.testing.assert_allclose(w.data["eeg"][:, 1], expected, rtol=1e-6)
    assert w.mask["eeg"].all() and w.present("eeg")


def test_default_steps_and_auto_method_follow_the_nominal_rate(store: Store) -> None:
    t = regular(200, 100.0)
    write(store, "u1", "s1", [eeg(t, np.arange(200.0), 100.0)])
    ws = list(windows(store, "u1", 1.0, 1.0))
    assert [w.data["eeg"].shape for w in ws] == [(100, 1), (100, 1)]  # round(1 s * 100 Hz)
    np.testing.assert_array_equal(ws[1].data["eeg"][:, 0], np.arange(100.0, 200.0))  # one sample per step


def test_nearest_30hz_depth_into_60_steps(store: Store) -> None:
    # Frame k (at k/30 s) holds k + 1 mm everywhere. Step j of 60 has its centre at (2j + 1)/120 s; the
    # nearest frame is k = (j + 1) // 2, at 1/120 s, within max(d/2, period/2) = 1/60 s.
    n = 30
    frames = (np.arange(n) + 1)[:, None, None] * np.ones((1, 3, 4))
    frames[4, 0, 0] = 0  # an invalid pixel becomes NaN, the rest of the frame stays
    frames[10] = 0  # a frame of invalid pixels only is an invalid sample
    write(store, "u1", "s1", [depth(regular(n, 30.0), frames)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=60)  # auto: 30 Hz < 60 steps/s -> nearest
    (w_nearest,) = windows(store, "u1", 1.0, 1.0, steps=60, method="nearest")
    assert_windows_equal([w], [w_nearest])
    j = np.arange(60)
    k = (j + 1) // 2
    valid = (k != 10) & (k < n)  # step 59 would need frame 30, 25 ms after the last frame
    assert w.data["depth"].shape == (60, 3, 4)
    np.testing.assert_array_equal(w.mask["depth"], valid)
    np.testing.assert_array_equal(w.data["depth"][valid, 1, 2], (k + 1)[valid])
    # steps 19 and 20 would take frame 10; the frames around it are 25 ms away, beyond the 16.7 ms tolerance:
    # masked, not filled with a neighbour
    assert np.isnan(w.data["depth"][~valid]).all()
    steps_with_frame_4 = np.flatnonzero(k == 4)
    assert np.isnan(w.data["depth"][steps_with_frame_4, 0, 0]).all()
    assert (w.data["depth"][steps_with_frame_4, 0, 1] == 5).all()


def test_mean_ignores_invalid_depth_pixels(store: Store) -> None:
    frames = np.array([[[0, 10]], [[20, 0]], [[30, 40]], [[0, 0]]], dtype=np.uint16)  # (4, 1, 2)
    write(store, "u1", "s1", [depth(regular(4, 4.0), frames, rate_hz=4.0)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=2)  # 4 Hz >= 2 steps/s -> mean of two frames per step
    np.testing.assert_array_equal(w.data["depth"][0], [[20.0, 10.0]])
    np.testing.assert_array_equal(w.data["depth"][1], [[30.0, 40.0]])
    assert w.mask["depth"].tolist() == [True, True]


def test_masks_are_false_over_gaps_and_all_nan_samples(store: Store) -> None:
    t = regular(100, 100.0)
    values = np.arange(100.0)
    values[70:80] = np.nan  # all-NaN samples: invalid, not zero, not held
    keep = np.r_[0:30, 50:100]  # a gap over [0.30 s, 0.50 s)
    write(store, "u1", "s1", [eeg(t[keep], values[keep], 100.0)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=10)
    assert w.mask["eeg"].tolist() == [True, True, True, False, False, True, True, False, True, True]
    assert np.isnan(w.data["eeg"][[3, 4, 7]]).all()
    np.testing.assert_allclose(w.data["eeg"][[2, 5, 8], 0], [24.5, 54.5, 84.5])
    # upsampling with nearest never bridges the gap either
    (up,) = windows(store, "u1", 1.0, 1.0, steps=200)
    step_t = (np.arange(200) + 0.5) * 5 * MS  # step centres
    near_gap = (step_t > 295 * MS) & (step_t < 495 * MS)  # further than 5 ms from any sample
    assert not up.mask["eeg"][near_gap].any()
    assert np.isnan(up.data["eeg"][near_gap]).all()
    assert not up.mask["eeg"][(step_t > 695 * MS) & (step_t < 795 * MS)].any()


HAND_CHANNELS = ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"]


def test_untracked_hand_gives_a_masked_step(store: Store) -> None:
    # 10 Hz hands into 5 steps of 0.2 s (mean of two samples) and 10 steps (one sample each).
    n = 10
    d = np.zeros((n, 2, 26, 9), dtype=np.float32)
    d[..., 0] = np.arange(n, dtype=np.float32)[:, None, None]  # px = sample index
    d[..., 6] = 1.0
    d[..., 7] = 0.01
    d[..., 8] = 0.9
    for i in (2, 3, 6):  # untracked: NaN everywhere except confidence, which is 0
        d[i] = np.nan
        d[i, ..., 8] = 0.0
    s = Stream("hands", "hand", regular(n, 10.0), d, HAND_CHANNELS, ["m", "m", "m", "1", "1", "1", "1", "m", "1"],
               rate_hz=10.0)
    write(store, "u1", "s1", [s])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=5)
    assert w.data["hands"].shape == (5, 2, 26, 9)
    assert w.mask["hands"].tolist() == [True, False, True, True, True]
    assert np.isnan(w.data["hands"][1]).all(), "a masked step is NaN everywhere, its confidence too"
    # a step with one tracked and one untracked sample: positions from the tracked one, flags averaged
    np.testing.assert_array_equal(w.data["hands"][3, :, :, 0], 7.0)
    np.testing.assert_allclose(w.data["hands"][3, :, :, 8], 0.45)
    (one,) = windows(store, "u1", 1.0, 1.0, steps=10, method="mean")
    assert one.mask["hands"].tolist() == [i not in (2, 3, 6) for i in range(n)]
    assert np.isnan(one.data["hands"][[2, 3, 6]]).all()
    # nearest never picks an untracked sample: step j (centre (j + 0.5) * 50 ms) takes the nearest tracked
    # sample within max(25 ms, 50 ms), else it is masked
    (up,) = windows(store, "u1", 1.0, 1.0, steps=20, method="nearest")
    tracked = np.array([i for i in range(n) if i not in (2, 3, 6)])
    dist = np.abs(tracked[None, :] * 100.0 - (np.arange(20)[:, None] + 0.5) * 50.0)
    pick = tracked[np.argmin(dist, axis=1)]  # argmin: ties go to the earlier sample
    expected = dist.min(axis=1) <= 50.0
    assert np.flatnonzero(~expected).tolist() == [3, 4, 5, 6, 11, 12, 19]  # (19: past the last sample)
    np.testing.assert_array_equal(up.mask["hands"], expected)
    np.testing.assert_array_equal(up.data["hands"][expected, 0, 0, 0], pick[expected])
    assert np.isnan(up.data["hands"][~expected]).all()


def test_gaze_with_valid_flags_but_nan_data_is_masked(store: Store) -> None:
    chans = ["left_pupil_diameter", "left_valid", "confidence"]
    n = 8
    d = np.zeros((n, 3), dtype=np.float32)
    d[:, 0] = 3.0 + np.arange(n)
    d[:, 1] = 1.0
    d[:, 2] = 0.7
    d[[2, 3, 5], 0] = np.nan  # no data, yet the flags still say valid (a buggy source): missing
    write(store, "u1", "s1", [Stream("eye", "gaze", regular(n, 8.0), d, chans, ["mm", "1", "1"], rate_hz=8.0)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=4)  # two samples per step
    assert w.mask["eye"].tolist() == [True, False, True, True]
    assert np.isnan(w.data["eye"][1]).all()
    np.testing.assert_allclose(w.data["eye"][[0, 2, 3], 0], [3.5, 7.0, 9.5])
    # nearest: step k (centre (k + 0.5) * 125 ms) takes sample k, or k + 1 when k is missing (62.5 ms away,
    # within the tolerance); step 2 has neither
    (near,) = windows(store, "u1", 1.0, 1.0, steps=8, method="nearest")
    assert near.mask["eye"].tolist() == [True, True, False, True, True, True, True, True]
    np.testing.assert_array_equal(near.data["eye"][near.mask["eye"], 0], [3, 4, 7, 7, 9, 9, 10])
    assert np.isnan(near.data["eye"][2]).all()
    assert store.catalog().collect()["missing_frac"].to_list() == [3 / 8]


def test_nearest_does_not_hold_values_across_a_gap_when_upsampling(store: Store) -> None:
    t = regular(10, 10.0)  # 10 Hz into 100 steps over 1 s: each sample serves the steps within 50 ms
    keep = np.r_[0:4, 7:10]  # samples at 0.4, 0.5, 0.6 s are missing
    write(store, "u1", "s1", [eeg(t[keep], np.arange(10.0)[keep], 10.0)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=100)
    centres = np.arange(100) * 10 + 5  # ms
    expected_valid = (centres <= 350) | ((centres >= 650) & (centres <= 950))  # last sample at 900 ms
    np.testing.assert_array_equal(w.mask["eeg"], expected_valid)
    nearest = np.clip(np.floor(centres / 100 + 0.5).astype(int), 0, 9)
    np.testing.assert_array_equal(w.data["eeg"][expected_valid, 0], nearest[expected_valid])


def test_method_mapping_overrides_auto(store: Store) -> None:
    t = regular(100, 100.0)
    write(store, "u1", "s1", [eeg(t, np.arange(100.0), 100.0)])
    (w,) = windows(store, "u1", 1.0, 1.0, steps=20, method={"eeg": "nearest"})  # auto would be mean
    # centre of step k is at 50k + 25 ms: equidistant from samples 5k + 2 and 5k + 3 -> the earlier
    np.testing.assert_array_equal(w.data["eeg"][:, 0], 5 * np.arange(20) + 2)


# --- sessions, streams, labels -------------------------------------------------------------------------


def test_stream_absent_from_a_session_is_fully_masked(store: Store) -> None:
    write(store, "u1", "a", [gaze(regular(400, 200.0)), imu(regular(2000, 1000.0))])
    write(store, "u1", "b", [gaze(regular(400, 200.0))])
    ws = list(windows(store, "u1", 1.0, 1.0))
    assert [w.session for w in ws] == ["a", "a", "b", "b"]
    for w in ws:
        assert sorted(w.data) == ["gaze", "imu"]
        assert w.data["imu"].shape == (1000, 3) and w.mask["imu"].shape == (1000,)
        assert w.data["gaze"].shape == (200, 4)
    b = ws[2]
    assert not b.present("imu") and not b.mask["imu"].any() and np.isnan(b.data["imu"]).all()
    assert b.present("gaze") and b.mask["gaze"].all()
    assert ws[0].present("imu")


def test_sample_shape_of_a_stream_the_user_never_has(store: Store) -> None:
    write(store, "u1", "s1", [gaze(regular(200, 200.0))])
    write(store, "u2", "s1", [imu(regular(1000, 1000.0)), gaze(regular(200, 200.0))])
    (w,) = windows(store, "u1", 1.0, 1.0, ["gaze", "imu"])  # imu shape and rate from u2's catalog rows
    assert w.data["imu"].shape == (1000, 3) and not w.present("imu")
    (w,) = windows(store, "u1", 1.0, 1.0, ["gaze", "imu"], steps={"imu": 5}, sample_shapes={"imu": (7,)})
    assert w.data["imu"].shape == (5, 7)


def test_labels_from_the_largest_overlap(store: Store) -> None:
    events = events_frame([
        (0, 300 * MS, "task/gesture", "pinch"),
        (300 * MS, 600 * MS, "task/gesture", "swipe"),  # largest overlap with [0, 1 s)
        (900 * MS, 2 * S, "task/gesture", "grab"),
        (0, 500 * MS, "task/activity", "sitting"),  # a tie with the next one: the earliest wins
        (500 * MS, 500 * MS, "task/activity", "standing"),
        (1 * S, 0, "marker", "at-stop"),  # instantaneous at the window stop: not in [0, 1 s)
        (0, 0, "marker", "at-start"),
    ])
    write(store, "u1", "s1", [eeg(regular(200, 100.0), np.zeros(200), 100.0)], events=events)
    w0, w1 = windows(store, "u1", 1.0, 1.0)
    assert w0.labels == {"gesture": "swipe", "activity": "sitting"}
    assert sorted(w0.events["value"].to_list()) == ["at-start", "grab", "pinch", "sitting", "standing", "swipe"]
    assert w0.events.schema == pl.Schema(EVENTS_SCHEMA)
    assert w1.labels == {"gesture": "grab"}
    assert sorted(w1.events["value"].to_list()) == ["at-stop", "grab"]


def test_window_count_and_starts(store: Store) -> None:
    t0 = 5 * MS
    write(store, "u1", "s1", [eeg(regular(1000, 100.0, t0), np.ones(1000), 100.0)])  # last sample 9.995 s
    ws = list(windows(store, "u1", 2.0, 0.5))
    assert [w.start_ns for w in ws] == [t0 + k * S // 2 for k in range(20)]
    assert all(w.stop_ns - w.start_ns == 2 * S for w in ws)
    # the last windows run past the end of the session: their tail is masked, never padded
    assert ws[-1].mask["eeg"].sum() == 50 and not ws[-1].mask["eeg"][50:].any()
    # windows start at the first sample over the requested streams (the catalog span)
    write(store, "u1", "s2", [eeg(regular(100, 100.0, 3 * S), np.ones(100), 100.0), imu(regular(500, 1000.0, S))])
    ws = list(windows(store, "u1", 1.0, 1.0, sessions=["s2"]))
    assert [w.start_ns for w in ws] == [1 * S, 3 * S]  # the empty window [2 s, 3 s) is skipped
    ws = list(windows(store, "u1", 1.0, 1.0, sessions=["s2"], skip_empty=False))
    assert [w.start_ns for w in ws] == [1 * S, 2 * S, 3 * S]
    assert not any(ws[1].present(n) for n in ws[1].data)
    ws = list(windows(store, "u1", 1.0, 1.0, ["eeg"], sessions=["s2"]))
    assert [w.start_ns for w in ws] == [3 * S]


def test_sessions_walk_in_id_order_and_incomplete_ones_are_opt_in(store: Store) -> None:
    for s in ("s2", "s1", "s3"):
        write(store, "u1", s, [eeg(regular(100, 100.0), np.ones(100), 100.0)])
    assert [w.session for w in windows(store, "u1", 1.0, 1.0)] == ["s1", "s2", "s3"]
    assert [w.session for w in windows(store, "u1", 1.0, 1.0, sessions=["s3", "s1"])] == ["s3", "s1"]
    with store.writer("u1", "live") as live:
        live.add_stream(eeg(regular(100, 100.0), np.ones(100), 100.0))
        live.flush()
        assert [w.session for w in windows(store, "u1", 1.0, 1.0)] == ["s1", "s2", "s3"]
        got = [w.session for w in windows(store, "u1", 1.0, 1.0, include_incomplete=True)]
        assert got == ["live", "s1", "s2", "s3"]
        with pytest.raises(NotFoundError, match="include_incomplete"):
            list(windows(store, "u1", 1.0, 1.0, sessions=["live"]))


def test_never_reads_another_users_data(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    write(store, "u1", "s1", [gaze(regular(400, 200.0))])
    write(store, "u2", "s1", [gaze(regular(400, 200.0)), imu(regular(2000, 1000.0))])
    calls: list[tuple[str, int | None, int | None]] = []
    original = store.read

    def spy(user: str, session: str, *args: Any, **kwargs: Any) -> Recording:
        calls.append((user, kwargs.get("start_ns"), kwargs.get("stop_ns")))
        return original(user, session, *args, **kwargs)

    monkeypatch.setattr(store, "read", spy)
    ws = list(windows(store, "u1", 1.0, 1.0, ["gaze", "imu"]))
    assert len(ws) == 2 and calls and {c[0] for c in calls} == {"u1"}


def test_reads_in_blocks_not_whole_sessions(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    write(store, "u1", "s1", [eeg(regular(6000, 100.0), np.arange(6000.0), 100.0)])  # 60 s
    spans: list[tuple[int, int]] = []
    original = store.read

    def spy(*args: Any, **kwargs: Any) -> Recording:
        spans.append((kwargs["start_ns"], kwargs["stop_ns"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "read", spy)
    ws = list(windows(store, "u1", 2.0, 1.0, block_s=10.0))
    assert len(ws) == 60
    assert len(spans) == 6
    assert all(stop - start <= 12 * S + 20 * MS for start, stop in spans)  # 10 s + one window + tolerance


# --- invariances ---------------------------------------------------------------------------------------


def test_deterministic_and_independent_of_block_size(store: Store) -> None:
    rng = np.random.default_rng(7)
    t = np.sort(rng.integers(0, 20 * S, 3000)).astype(np.int64)
    values = rng.normal(size=(3000, 3))
    values[rng.random(3000) < 0.1] = np.nan
    write(store, "u1", "s1", [eeg(t, values, None, name="irr"), gaze(regular(4000, 200.0))])
    kwargs: dict[str, Any] = {"steps": {"irr": 16}}
    first = list(windows(store, "u1", 1.5, 0.4, **kwargs))
    assert_windows_equal(first, list(windows(store, "u1", 1.5, 0.4, **kwargs)))
    assert_windows_equal(first, list(windows(store, "u1", 1.5, 0.4, block_s=0.1, **kwargs)))
    assert_windows_equal(first, list(windows(store, "u1", 1.5, 0.4, block_s=1e6, **kwargs)))


def test_memory_bounds_do_not_change_results(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    t = np.sort(rng.integers(0, 8 * S, 5000)).astype(np.int64)
    values = rng.normal(size=(5000, 3))
    values[rng.random(5000) < 0.2, 1] = np.nan
    frames = rng.integers(0, 3, size=(240, 2, 3)).astype(np.uint16)  # many invalid (0) pixels
    write(store, "u1", "s1", [eeg(t, values, None, name="irr"), depth(regular(240, 30.0), frames)])
    kwargs: dict[str, Any] = {"steps": {"irr": 9, "depth": 20}}
    reference = list(windows(store, "u1", 2.0, 0.7, **kwargs))
    monkeypatch.setattr(WINDOWS_MODULE, "_POOL_BUDGET", 64)  # pool a few samples per pass
    monkeypatch.setattr(WINDOWS_MODULE, "_BLOCK_OUTPUT_BYTES", 1)  # one window per block
    assert_windows_equal(reference, list(windows(store, "u1", 2.0, 0.7, **kwargs)))


@pytest.mark.parametrize("n_steps", [7, 8])  # step width 1/7 s (not whole ns) and 125 ms
def test_shared_step_grid_matches_per_window_pooling(store: Store, n_steps: int) -> None:
    # Hop 1 s is a whole number of steps (shared-grid path), hop 0.3 s is not (per-window path): the
    # windows both produce (those starting at whole multiples of 3 s) must be identical.
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 10 * S, 2000)).astype(np.int64)
    write(store, "u1", "s1", [eeg(t, rng.normal(size=(2000, 2)), None)])
    t0 = int(t[0])
    grid = list(windows(store, "u1", 1.0, 1.0, steps=n_steps, method="mean"))
    per_window = list(windows(store, "u1", 1.0, 0.3, steps=n_steps, method="mean"))
    common = {w.start_ns for w in grid} & {w.start_ns for w in per_window}
    assert {s - t0 for s in common} == {0, 3 * S, 6 * S, 9 * S}
    assert_windows_equal(
        [w for w in grid if w.start_ns in common], [w for w in per_window if w.start_ns in common]
    )


def test_windows_do_not_share_memory(store: Store) -> None:
    write(store, "u1", "s1", [eeg(regular(300, 100.0), np.arange(300.0), 100.0)])
    w0, w1, w2 = windows(store, "u1", 2.0, 1.0)
    w0.data["eeg"][:] = -1.0  # a consumer normalising in place must not corrupt the next window
    assert w1.data["eeg"][0, 0] == 100.0 and w1.data["eeg"].flags.writeable
    assert not np.shares_memory(w1.data["eeg"], w2.data["eeg"])


def test_empty_stream_in_a_session(store: Store) -> None:
    empty = eeg(np.zeros(0, dtype=np.int64), np.zeros((0, 2)), 100.0, name="empty")
    write(store, "u1", "s1", [empty, gaze(regular(400, 200.0))])
    ws = list(windows(store, "u1", 1.0, 1.0))
    assert len(ws) == 2
    assert all(w.data["empty"].shape == (100, 2) and not w.present("empty") for w in ws)
    ws = list(windows(store, "u1", 1.0, 1.0, ["empty"]))
    assert ws == []  # no sample of a requested stream: no windows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    times=hs.lists(hs.integers(0, 5 * S), min_size=1, max_size=60),
    nan_every=hs.integers(2, 7),
    steps=hs.integers(1, 12),
    length_ms=hs.integers(100, 2000),
    hop_ms=hs.integers(50, 1500),
    block_ms=hs.integers(1, 3000),
    method=hs.sampled_from(["mean", "nearest", "auto"]),
)
def test_block_boundaries_do_not_change_results(
    tmp_path: Path, times: list[int], nan_every: int, steps: int, length_ms: int, hop_ms: int,
    block_ms: int, method: str,
) -> None:
    t = np.sort(np.asarray(times, dtype=np.int64))
    values = np.linspace(-1.0, 1.0, t.shape[0] * 2).reshape(-1, 2)
    values[::nan_every, 0] = np.nan
    values[1::nan_every] = np.nan
    st = open_store(tmp_path / uuid.uuid4().hex)
    write(st, "u", "s", [eeg(t, values, None, name="irr")])
    args: dict[str, Any] = {"steps": steps, "method": method, "skip_empty": False}
    small = list(windows(st, "u", length_ms / 1e3, hop_ms / 1e3, block_s=block_ms / 1e3, **args))
    large = list(windows(st, "u", length_ms / 1e3, hop_ms / 1e3, block_s=1e6, **args))
    assert_windows_equal(small, large)
    assert small[0].start_ns == int(t[0])
    assert len(small) == (int(t[-1]) - int(t[0])) // (hop_ms * MS) + 1


# --- errors --------------------------------------------------------------------------------------------


def test_irregular_stream_needs_explicit_steps(store: Store) -> None:
    t = np.array([0, 7, 30, 31, 90], dtype=np.int64) * MS
    write(store, "u1", "s1", [eeg(t, np.arange(5.0), None, name="irr")])
    with pytest.raises(ValidationError, match=r"irr.*irregular.*steps"):
        list(windows(store, "u1", 0.1, 0.1))
    (w,) = windows(store, "u1", 0.1, 0.1, steps={"irr": 4})
    assert w.mask["irr"].tolist() == [True, True, False, True]
    np.testing.assert_allclose(w.data["irr"][:, 0], [0.5, 2.5, np.nan, 4.0])


def test_unknown_stream_is_an_error_naming_it(store: Store) -> None:
    write(store, "u1", "s1", [gaze(regular(200, 200.0))])
    with pytest.raises(XRDataError, match="nosuch"):
        windows(store, "u1", 1.0, 1.0, ["gaze", "nosuch"])
    with pytest.raises(NotFoundError, match="nobody"):
        windows(store, "nobody", 1.0, 1.0)
    with pytest.raises(NotFoundError, match="s9"):
        windows(store, "u1", 1.0, 1.0, sessions=["s9"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length_s": 0}, "length_s"),
        ({"hop_s": -1.0}, "hop_s"),
        ({"block_s": float("nan")}, "block_s"),
        ({"steps": 0}, "steps"),
        ({"steps": {"other": 3}}, "steps"),
        ({"method": "linear"}, "method"),
        ({"streams": "gaze"}, "streams"),
    ],
)
def test_bad_arguments(store: Store, kwargs: dict[str, Any], match: str) -> None:
    write(store, "u1", "s1", [gaze(regular(200, 200.0))])
    args: dict[str, Any] = {"length_s": 1.0, "hop_s": 1.0, **kwargs}
    with pytest.raises(ValidationError, match=match):
        windows(store, "u1", **args)


def test_rates_that_differ_between_sessions_need_explicit_steps(store: Store) -> None:
    write(store, "u1", "a", [gaze(regular(200, 200.0))])
    write(store, "u1", "b", [gaze(regular(120, 120.0), 120.0)])
    with pytest.raises(ValidationError, match=r"gaze.*120.*200"):
        windows(store, "u1", 1.0, 1.0)
    ws = list(windows(store, "u1", 1.0, 1.0, steps=60))
    assert [w.data["gaze"].shape for w in ws] == [(60, 4), (60, 4)]
    assert all(w.mask["gaze"].all() for w in ws)


def test_store_url_and_repr(tmp_path: Path) -> None:
    st = open_store(tmp_path / "s")
    write(st, "u1", "s1", [gaze(regular(200, 200.0))])
    (w,) = windows(str(tmp_path / "s"), "u1", 1.0, 1.0)
    assert "gaze: (200, 4) 200/200 valid" in repr(w)
