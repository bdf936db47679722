"""Store: round trips, time slicing, plain-zarr readability, bad input, locks, catalog."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import xrdata
from xrdata._fs import UserLock
from xrdata.errors import (
    InvalidIdError,
    LockedError,
    NotFoundError,
    SchemaError,
    SessionExistsError,
    StoreError,
    ValidationError,
)
from xrdata.testing import assert_recording_equal, example_recording, recordings


def _rec(user: str = "u1", session: str = "s1", seconds: float = 3.0, seed: int = 0) -> xrdata.Recording:
    return example_recording(user, session, seconds=seconds, rng=np.random.default_rng(seed))


def test_write_read_roundtrip_all_modalities(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path / "store")
    rec = _rec()
    store.write(rec)
    assert store.users() == ["u1"]
    assert store.sessions("u1") == ["s1"]
    back = store.read("u1", "s1")
    assert_recording_equal(rec, back)
    # reopening from disk gives the same
    assert_recording_equal(rec, xrdata.open_store(tmp_path / "store", mode="r").read("u1", "s1"))


@settings(max_examples=25)
@given(rec=recordings())
def test_roundtrip_property(rec: xrdata.Recording) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = xrdata.open_store(d)
        store.write(rec)
        assert_recording_equal(rec, store.read(rec.user_id, rec.session_id))


@settings(max_examples=25)
@given(rec=recordings(), data=st.data())
def test_time_slice_is_exactly_half_open_interval(rec: xrdata.Recording, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = xrdata.open_store(d)
        store.write(rec)
        times = [int(t) for s in rec.streams.values() for t in s.time_ns[:50]] or [0]
        start = data.draw(st.sampled_from([*times, min(times) - 1, None]))
        stop = data.draw(st.sampled_from([*times, max(times) + 1, None]))
        part = store.read(rec.user_id, rec.session_id, start_ns=start, stop_ns=stop)
        for name, s in rec.streams.items():
            t = s.time_ns
            keep = np.ones(t.shape, bool)
            if start is not None:
                keep &= t >= start
            if stop is not None:
                keep &= t < stop
            got = part.streams[name]
            np.testing.assert_array_equal(got.time_ns, t[keep])
            np.testing.assert_array_equal(got.data, s.data[keep])
            assert got.data.dtype == s.data.dtype


def test_read_subset_of_streams_and_unknown_stream(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    rec = _rec()
    store.write(rec)
    name = next(iter(rec.streams))
    assert list(store.read("u1", "s1", streams=[name]).streams) == [name]
    with pytest.raises(NotFoundError, match="no stream"):
        store.read("u1", "s1", streams=["nope"])
    with pytest.raises(NotFoundError, match="no session u1/zz"):
        store.read("u1", "zz")


def test_regular_streams_keep_compact_time_base(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    t = np.arange(1000, dtype=np.int64) * 2_000_000 + 5  # 500 Hz
    t[600:] += 1_000_000_000  # a gap: two regular segments
    eeg = xrdata.Stream("eeg", "eeg", t, np.zeros((1000, 2), np.float32), ["Cz", "Pz"], "V", 500.0)
    jitter = t.copy()
    jitter[::3] += np.random.default_rng(0).integers(1, 50, size=334)  # jittered: per-sample times
    eeg2 = xrdata.Stream("eeg2", "eeg", jitter, np.zeros((1000, 2), np.float32), ["Cz", "Pz"], "V", 500.0)
    store.write(xrdata.Recording("u1", "s1", [eeg, eeg2]))
    base = tmp_path / "users/u1/s1/streams"
    attrs = json.loads((base / "eeg/zarr.json").read_text())["attributes"]["xrdata"]
    assert attrs["time"]["kind"] == "regular_segments" and len(attrs["time"]["segments"]) == 2
    assert not (base / "eeg/time").exists()
    assert (base / "eeg2/time").exists()
    back = store.read("u1", "s1", start_ns=int(t[590]), stop_ns=int(t[610]))
    np.testing.assert_array_equal(back.streams["eeg"].time_ns, t[590:610])
    np.testing.assert_array_equal(back.streams["eeg2"].time_ns, jitter[590:610])


def test_plain_zarr_reads_every_array(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    rec = _rec()
    store.write(rec)
    root = zarr.open_group(str(tmp_path), mode="r")
    assert root.attrs["xrdata"]["format"] == "xrdata.store"
    sess = root["users/u1/s1"]
    assert sess.attrs["xrdata"]["state"] == "complete"
    for name, s in rec.streams.items():
        g = sess[f"streams/{name}"]
        np.testing.assert_array_equal(g["data"][...], s.data)
        tb = g.attrs["xrdata"]["time"]
        if tb["kind"] == "array":
            np.testing.assert_array_equal(g["time"][...], s.time_ns)
        else:  # documented in docs/FORMAT.md: t = start + round(k * 1e9 * den / num)
            seg = tb["segments"][0]
            k = np.arange(s.n_samples - seg[0])
            expect = seg[1] + np.floor(k * 1e9 * tb["rate_den"] / tb["rate_num"] + 0.5).astype(np.int64)
            np.testing.assert_array_equal(expect[: 1000], s.time_ns[seg[0] : seg[0] + 1000])
    ev = sess["events"]
    assert list(ev["label"][...]) == rec.events["label"].to_list()


def test_invalid_input_writes_nothing(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    with pytest.raises(InvalidIdError, match="user id"):
        xrdata.Recording("bad/../id", "s1")
    good = _rec()
    bad_units = xrdata.Stream(
        "imu", "motion", np.arange(3, dtype=np.int64), np.zeros((3, 3), np.float32),
        ["gyro_x", "gyro_y", "gyro_z"], "deg/s", 100.0,
    )
    bad = xrdata.Recording("u1", "s1", [*good.streams.values(), bad_units], events=good.events)
    with pytest.raises(SchemaError, match="imu") as err:
        store.write(bad)
    assert err.value.violations
    assert store.users() == [] or store.sessions("u1", include_incomplete=True) == []
    assert not (tmp_path / "users/u1/s1").exists()
    assert store.catalog().collect().height == 0
    with pytest.raises(ValidationError):
        store.write("not a recording")  # type: ignore[arg-type]


def test_session_exists_and_delete(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    store.write(_rec(session="s1"))
    store.write(_rec(session="s2", seed=1))
    with pytest.raises(SessionExistsError):
        store.write(_rec(session="s1"))
    store.delete("u1", "s1")
    assert store.sessions("u1") == ["s2"]
    assert store.catalog().collect()["session"].unique().to_list() == ["s2"]
    with pytest.raises(NotFoundError):
        store.delete("u1", "s1")
    store.write(_rec(session="s1"))  # the id is free again
    assert store.sessions("u1") == ["s1", "s2"]


def test_modes_and_foreign_directories(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no xrdata store"):
        xrdata.open_store(tmp_path / "missing", mode="r")
    xrdata.open_store(tmp_path / "s").write(_rec())
    ro = xrdata.open_store(tmp_path / "s", mode="r")
    with pytest.raises(StoreError, match="read-only"):
        ro.write(_rec(session="s9"))
    with pytest.raises(StoreError, match="already exists"):
        xrdata.open_store(tmp_path / "s", mode="w-")
    zarr.open_group(str(tmp_path / "plain"), mode="w")
    with pytest.raises(StoreError, match="not an xrdata store"):
        xrdata.open_store(tmp_path / "plain")
    doc = json.loads((tmp_path / "s/zarr.json").read_text())
    doc["attributes"]["xrdata"]["version"] = 99
    (tmp_path / "s/zarr.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="upgrade xrdata"):
        xrdata.open_store(tmp_path / "s")
    with pytest.raises(ValidationError, match="mode"):
        xrdata.open_store(tmp_path / "x", mode="q")  # type: ignore[arg-type]


def test_second_writer_on_a_user_gets_clear_error(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    other = xrdata.open_store(tmp_path)
    rec = _rec()
    with store.writer("u1", "live1") as w:
        w.add_stream(rec.streams[next(iter(rec.streams))])
        with pytest.raises(LockedError, match="one writer per user"):
            other.write(_rec(session="s2"))
        other.write(_rec(user="u2"))  # other users are not blocked
        assert other.sessions("u2") == ["s1"]
    other.write(_rec(session="s2"))


def test_leftovers_of_a_writer_that_did_not_finish_are_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer scans the user's sessions for half-written ones only when the last holder of the lock did not
    release it clean: after a clean write it does not (the scan reads every session document), after a
    failure whose own clean-up failed, a holder that died, or a lock from an older version, it does."""
    store = xrdata.open_store(tmp_path / "store")
    store.write(_rec(seed=1))
    scans: list[str] = []
    cleanup = xrdata.Store._cleanup

    def counted(self: xrdata.Store, user: str) -> None:
        scans.append(user)
        cleanup(self, user)

    monkeypatch.setattr(xrdata.Store, "_cleanup", counted)
    store.write(_rec(session="s2"))
    store.delete("u1", "s2")
    assert scans == []

    # a failed write whose removal of the partial session fails too: the next writer removes it
    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(xrdata.Store, "_write_events", broken)
    monkeypatch.setattr(store._b, "remove_tree", broken)
    with pytest.raises(OSError):
        store.write(_rec(session="s3"))
    monkeypatch.undo()
    monkeypatch.setattr(xrdata.Store, "_cleanup", counted)
    assert (tmp_path / "store/users/u1/s3").exists()
    store.write(_rec(session="s4"))
    assert scans == ["u1"] and not (tmp_path / "store/users/u1/s3").exists()

    # a holder that died (the kernel drops its flock; the file still names it) and an older version's lock
    lock = UserLock(store._b, "u1")
    lock.acquire()
    assert lock.previous_clean
    (tmp_path / "store/users/u1/s5/streams").mkdir(parents=True)  # what a killed writer leaves
    assert lock._fd is not None
    os.close(lock._fd)  # dies holding it
    store.write(_rec(session="s6"))
    assert scans == ["u1", "u1"] and not (tmp_path / "store/users/u1/s5").exists()
    (tmp_path / "store/.xrdata/locks/u1.lock").write_text(json.dumps({"pid": 1, "host": "h", "since": 0.0}))
    store.write(_rec(session="s7"))
    assert scans == ["u1", "u1", "u1"]
    assert store.sessions("u1", include_incomplete=True) == ["s1", "s4", "s6", "s7"]


def test_memory_fsspec_store() -> None:
    url = f"memory://xr-{uuid.uuid4().hex}"
    store = xrdata.open_store(url)
    rec = _rec()
    store.write(rec)
    assert_recording_equal(rec, xrdata.open_store(url, mode="r").read("u1", "s1"))
    cat = store.catalog().collect()
    assert set(cat["stream"]) == set(rec.streams)


# --- catalog -------------------------------------------------------------------------------------------


def test_catalog_rows_and_string_user_ids(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    t = np.arange(100, dtype=np.int64) * 10_000_000  # 100 Hz for 1 s
    t[50:] += 500_000_000  # a 0.5 s gap: 50 samples missing
    d = np.ones((100, 1), np.float32)
    d[:10] = np.nan  # 10 invalid samples
    s = xrdata.Stream("pupil", "gaze", t, d, ["left_pupil_diameter"], "mm", 100.0)
    store.write(xrdata.Recording("007", "s1", [s], meta={"device": "quest_pro", "tasks": ["reading"]}))
    cat = store.catalog().collect()
    assert cat.schema["user"] == pl.String
    row = cat.row(0, named=True)
    assert row["user"] == "007" and row["session"] == "s1" and row["modality"] == "gaze"
    assert row["n_samples"] == 100 and row["start_ns"] == 0 and row["stop_ns"] == int(t[-1]) + 1
    assert row["nominal_rate_hz"] == 100.0
    assert row["effective_rate_hz"] == pytest.approx(99 / 1.49)
    assert row["missing_frac"] == pytest.approx(1 - 90 / 150)
    assert row["device"] == "quest_pro" and row["tasks"] == ["reading"] and row["complete"] is True
    assert row["sample_shape"] == [1] and row["dtype"] == "float32"
    lazy = store.catalog().filter(pl.col("modality") == "gaze").select("user", "n_samples")
    assert lazy.collect().to_dicts() == [{"user": "007", "n_samples": 100}]


HAND_CHANNELS = ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"]
HAND_UNITS = ["m", "m", "m", "1", "1", "1", "1", "m", "1"]


def _hands_with_untracked_samples() -> xrdata.Stream:
    """10 samples at 10 Hz: 3 and 7 untracked (NaN, confidence 0), 5 with only the right hand tracked."""
    d = np.zeros((10, 2, 26, 9), np.float32)
    d[..., 6] = 1.0  # identity quaternions
    d[..., 7] = 0.01  # radius
    d[..., 8] = 0.9  # confidence
    for i in (3, 7):
        d[i] = np.nan
        d[i, ..., 8] = 0.0
    d[5, 0] = np.nan
    d[5, 0, :, 8] = 0.0
    t = np.arange(10, dtype=np.int64) * 100_000_000
    return xrdata.Stream("hands", "hand", t, d, HAND_CHANNELS, HAND_UNITS, 10.0)


def test_catalog_counts_untracked_hands_as_missing(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    s = _hands_with_untracked_samples()
    store.write(xrdata.Recording("u1", "s1", [s]))
    row = store.catalog().collect().row(0, named=True)
    assert row["n_samples"] == 10 and row["missing_frac"] == pytest.approx(2 / 10)
    # the live writer counts flush by flush with the same rule
    with store.writer("u1", "live", flush_interval_s=1e9) as w:
        w.add_stream(xrdata.Stream(s.name, s.modality, s.time_ns[:0], s.data[:0], s.channels, s.units, s.rate_hz))
        for a, b in ((0, 4), (4, 6), (6, 10)):
            w.append(s.name, s.time_ns[a:b], s.data[a:b])
            w.flush()
    cat = store.catalog().collect().sort("session")
    assert cat["session"].to_list() == ["live", "s1"]
    assert cat["missing_frac"].to_list() == pytest.approx([0.2, 0.2])
    store.rebuild_catalog()
    assert store.catalog().collect().sort("session")["missing_frac"].to_list() == pytest.approx([0.2, 0.2])


def test_catalog_rebuild_matches_incremental_and_repairs_staleness(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    for i in range(3):
        store.write(_rec(user=f"u{i % 2}", session=f"s{i}", seed=i))
    before = store.catalog().collect().sort(["user", "session", "stream"])
    store.rebuild_catalog()
    after = store.catalog().collect().sort(["user", "session", "stream"])
    assert before.equals(after)
    # a crash between the session commit and the catalog update leaves the partition stale
    (tmp_path / "catalog/user=u0/part-0.parquet").unlink()
    assert store.catalog().collect().sort(["user", "session", "stream"]).equals(before)
    assert (tmp_path / "catalog/user=u0/part-0.parquet").exists()  # repaired on disk
    (tmp_path / "catalog/user=u1/part-0.parquet").write_bytes(b"garbage")
    assert store.catalog().collect().sort(["user", "session", "stream"]).equals(before)


# --- live writer ---------------------------------------------------------------------------------------


def test_live_writer_appends_flushes_and_commits(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    rec = _rec()
    with store.writer("u1", "live", meta=rec.meta, flush_interval_s=1e9) as w:
        for s in rec.streams.values():
            empty = xrdata.Stream(s.name, s.modality, s.time_ns[:0], s.data[:0], s.channels, s.units, s.rate_hz, s.meta)
            w.add_stream(empty)
        for s in rec.streams.values():
            for a in range(0, s.n_samples, 97):
                w.append(s.name, s.time_ns[a : a + 97], s.data[a : a + 97])
        w.flush()
        assert store.sessions("u1") == [] and store.sessions("u1", include_incomplete=True) == ["live"]
        assert not store.is_complete("u1", "live")
        w.add_events(rec.events)
    assert store.sessions("u1") == ["live"]
    back = store.read("u1", "live")
    for name, s in rec.streams.items():
        np.testing.assert_array_equal(back.streams[name].time_ns, s.time_ns)
        np.testing.assert_array_equal(back.streams[name].data, s.data)
    assert back.events.equals(rec.events)
    cat = store.catalog().collect()
    assert set(cat["stream"]) == set(rec.streams) and cat["complete"].all()


def test_live_writer_exception_leaves_session_incomplete(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    s = next(iter(_rec().streams.values()))
    with pytest.raises(RuntimeError), store.writer("u1", "x") as w:
        w.add_stream(s)
        raise RuntimeError("boom")
    assert store.sessions("u1", include_incomplete=True) == ["x"] and store.sessions("u1") == []
    np.testing.assert_array_equal(store.read("u1", "x").streams[s.name].data, s.data)
    cat = store.catalog().collect()
    assert not cat["complete"].any() and cat["n_samples"].to_list() == [s.n_samples]


def test_live_writer_rejects_bad_appends(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path)
    t = np.arange(4, dtype=np.int64)
    s = xrdata.Stream("eeg", "eeg", t, np.zeros((4, 2), np.float32), ["Cz", "Pz"], "V", 500.0)
    with store.writer("u1", "x") as w:
        w.add_stream(s)
        with pytest.raises(ValidationError, match="backwards"):
            w.append("eeg", np.array([1], np.int64), np.zeros((1, 2), np.float32))
        with pytest.raises(ValidationError, match="not declared"):
            w.append("gaze", np.array([9], np.int64), np.zeros((1, 2), np.float32))
        with pytest.raises(ValidationError, match="shape"):
            w.append("eeg", np.array([9], np.int64), np.zeros((1, 3), np.float32))
        with pytest.raises(ValidationError, match="NaN"):
            w.append("eeg", np.array([np.nan]), np.zeros((1, 2), np.float32))
    assert store.read("u1", "x").streams["eeg"].n_samples == 4
    with pytest.raises(SessionExistsError):
        store.writer("u1", "x").__enter__()


def test_time_slices_across_many_time_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 400_000  # > 3 time chunks of 131072 samples
    t = np.cumsum(rng.integers(4_000_000, 6_000_000, n)).astype(np.int64)  # jittered ~200 Hz
    t[200_000:200_010] = t[200_000]  # duplicate timestamps straddling nothing in particular
    t = np.maximum.accumulate(t)
    d = rng.standard_normal((n, 1)).astype(np.float32) + 4
    s = xrdata.Stream("pupil", "gaze", t, d, ["left_pupil_diameter"], "mm", 200.0)
    store = xrdata.open_store(tmp_path)
    store.write(xrdata.Recording("u1", "s1", [s]))
    chunk_starts = json.loads((tmp_path / "users/u1/s1/streams/pupil/zarr.json").read_text())
    assert len(chunk_starts["attributes"]["xrdata"]["time"]["chunk_starts"]) == 4
    edges = [int(t[0]) - 1, int(t[131_072]), int(t[131_071]) + 1, int(t[200_000]), int(t[-1]), int(t[-1]) + 1]
    edges += rng.integers(int(t[0]), int(t[-1]), 20).tolist()
    for start in [None, *edges[:8]]:
        for stop in [None, *edges[4:]]:
            got = store.read("u1", "s1", start_ns=start, stop_ns=stop).streams["pupil"]
            keep = np.ones(n, bool)
            if start is not None:
                keep &= t >= start
            if stop is not None:
                keep &= t < stop
            np.testing.assert_array_equal(got.time_ns, t[keep])
            np.testing.assert_array_equal(got.data, d[keep])


class _Fill:
    """A producer filling ``data`` in place (rows ``[0, ready)`` final); ``fail_at``: raise past that row."""

    def __init__(self, data: np.ndarray, final: np.ndarray, fail_at: int | None = None) -> None:
        self.data, self.final, self.fail_at = data, final, fail_at
        self.asked: list[int] = []

    def holds(self, data: np.ndarray) -> bool:
        return data is self.data

    def wait(self, stop: int | None = None) -> None:
        stop = self.data.shape[0] if stop is None else min(stop, self.data.shape[0])
        self.asked.append(stop)
        if self.fail_at is not None and stop > self.fail_at:
            raise StoreError("the producer failed")
        self.data[:stop] = self.final[:stop]  # filled only when asked: a chunk encoded early would be garbage


def test_write_waits_for_a_producer_chunk_by_chunk(tmp_path: Path) -> None:
    """Store._write_checked(fills=...): each chunk is encoded once the producer says its rows are final."""
    rec = _rec(seconds=120.0)
    name = next(n for n, s in rec.streams.items() if s.data.nbytes > 4 << 20)  # several chunks
    final = rec.streams[name].data.copy()
    rec.streams[name]._data = np.full_like(final, np.nan)
    fill = _Fill(rec.streams[name].data, final)
    checked: list[bool] = []
    store = xrdata.open_store(tmp_path / "store")
    store._write_checked(rec, fills=[fill], check=lambda: checked.append(True))
    assert checked == [True] and len(fill.asked) > 2 and fill.asked == sorted(fill.asked)
    np.testing.assert_array_equal(store.read("u1", "s1").streams[name].data, final)


def test_producer_or_check_failure_leaves_no_session_and_no_new_user(tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path / "store")
    store.write(_rec(seed=1))
    for user in ("u1", "u2"):
        rec = _rec(user, "s2", seconds=120.0)
        name = next(n for n, s in rec.streams.items() if s.data.nbytes > 4 << 20)
        fill = _Fill(rec.streams[name].data, rec.streams[name].data.copy(), fail_at=5000)
        with pytest.raises(StoreError, match="the producer failed"):
            store._write_checked(rec, fills=[fill])
        rec2 = _rec(user, "s3")

        def bad_check() -> None:
            raise SchemaError("the samples are bad", [])

        with pytest.raises(SchemaError, match="the samples are bad"):
            store._write_checked(rec2, check=bad_check)
    assert store.users() == ["u1"] and store.sessions("u1", include_incomplete=True) == ["s1"]
    assert_recording_equal(store.read("u1", "s1"), _rec(seed=1))
    assert not (tmp_path / "store" / "users" / "u2").exists()


def test_failed_background_write_leaves_no_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store.write issues its documents and event arrays in the background: a failure among them still
    removes the whole session (after every pending write has finished) and leaves the catalog as it was."""
    store = xrdata.open_store(tmp_path / "store")
    store.write(_rec(seed=1))
    before = store.catalog().collect()

    def broken(self: xrdata.Store, base: str, events: pl.DataFrame) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(xrdata.Store, "_write_events", broken)
    with pytest.raises(OSError, match="disk full"):
        store.write(_rec(session="s2"))
    assert store.sessions("u1", include_incomplete=True) == ["s1"]
    assert not (tmp_path / "store/users/u1/s2").exists()
    assert store.catalog().collect().equals(before)
    assert not list((tmp_path / "store/.xrdata/tmp").iterdir())


def test_write_atomic_in_order_replaces_only_the_items_before_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xrdata._fs import Backend

    b = Backend(str(tmp_path))
    for rel in ("a", "b", "c"):
        b.write_atomic(rel, b"old")
    stage = Backend._stage

    def failing(self: Backend, rel: str, payload: bytes) -> str:
        if rel == "b":
            raise OSError("disk full")
        return stage(self, rel, payload)

    monkeypatch.setattr(Backend, "_stage", failing)
    with pytest.raises(OSError, match="disk full"):
        b.write_atomic_in_order([("a", b"new"), ("b", b"new"), ("c", b"new")])
    assert [b.read_bytes(rel) for rel in ("a", "b", "c")] == [b"new", b"old", b"old"]
    assert not list((tmp_path / ".xrdata/tmp").iterdir())
