"""Client datasets of the federated trainer (xrdata.fed_training.data) on a tiny synthetic store."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xrdata.fed_training.data as data_module
from xrdata import Recording, Store, Stream, open_store
from xrdata._fs import Backend
from xrdata.errors import ValidationError
from xrdata.fed_training.config import MODALITIES, DataConfig, TaskSpec
from xrdata.fed_training.data import (
    EEG_SITES,
    ClientData,
    cache_dir,
    concat,
    discover_tasks,
    load_client,
    load_clients,
    to_tensors,
    user_devices,
)
from xrdata.synth import config_from_preset, generate, read_ground_truth
from xrdata.synth.timeline import LABELS
from xrdata.validation import sample_validity

NO_CACHE = DataConfig(cache=False)
L_NS = 2_000_000_000


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 users, one short session each; every session ends with a self-report, every user has an EEG cap."""
    path = tmp_path_factory.mktemp("fed_data") / "store"
    config = config_from_preset("quickstart", users=3, weeks=1, session_minutes=0.4, likert_prob=1.0,
                                eeg_cap_prob=1.0, test_user_frac=0.34, seed=0)
    generate(config, str(path), workers=1)
    return path


@pytest.fixture(scope="module")
def tasks(store_path: Path) -> list[TaskSpec]:
    return discover_tasks(open_store(store_path, "r"), NO_CACHE)


@pytest.fixture(scope="module")
def clients(store_path: Path, tasks: list[TaskSpec]) -> dict[str, ClientData]:
    st_ = open_store(store_path, "r")
    return load_clients(st_, st_.users(), NO_CACHE, tasks)


def assert_same(a: ClientData, b: ClientData) -> None:
    assert a.user == b.user
    assert list(a.x) == list(b.x) and list(a.y) == list(b.y)
    for m in a.x:
        assert a.x[m].dtype == b.x[m].dtype
        np.testing.assert_array_equal(a.x[m], b.x[m])
        np.testing.assert_array_equal(a.present[m], b.present[m])
    for t in a.y:
        assert a.y[t].dtype == b.y[t].dtype
        np.testing.assert_array_equal(a.y[t], b.y[t])
    for field in ("session", "start_ns", "split"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def fake(n: int) -> ClientData:
    """A ClientData of n windows whose start_ns is the window index."""
    return ClientData(
        "u", {"imu": np.zeros((n, 50, 6), np.float32)}, {"imu": np.ones((n, 50), bool)},
        {"t": np.arange(n, dtype=np.int64) % 3}, np.array(["s"] * n), np.arange(n, dtype=np.int64),
        np.array(["train"] * n),
    )


# --- tasks ----------------------------------------------------------------------------------------------


def test_user_devices_takes_the_most_common_device_with_a_stable_tie_break() -> None:
    cat = pl.DataFrame({"user": ["a", "a", "a", "b", "b", "c", "d"],
                        "device": ["quest_3", "quest_pro", "quest_pro", "vision_pro", "hololens_2", None, "aria"]})
    assert user_devices(cat) == {"a": "quest_pro", "b": "hololens_2", "d": "aria"}
    assert user_devices(cat.reverse()) == user_devices(cat)


def test_discover_tasks_uses_the_known_class_lists_and_finds_qoe(store_path: Path, tasks: list[TaskSpec]) -> None:
    cat = open_store(store_path, "r").catalog().collect()
    found = sorted({t for ts in cat["tasks"].to_list() for t in ts})
    assert [t.name for t in tasks] == [*found, "qoe"]
    for t in tasks[:-1]:
        assert t.classes == LABELS[t.name]
    assert tasks[-1].regression
    chosen = discover_tasks(store_path, DataConfig(tasks=("qoe", "gesture")))
    assert chosen == [TaskSpec("qoe"), TaskSpec("gesture", LABELS["gesture"])]
    with pytest.raises(ValidationError, match="no_such_task"):
        discover_tasks(store_path, DataConfig(tasks=("no_such_task",)))
    with pytest.raises(ValidationError, match="more than once"):
        discover_tasks(store_path, DataConfig(tasks=("rest", "rest")))


# --- shapes, masks, labels, splits ----------------------------------------------------------------------


def test_shapes_and_dtypes_follow_modalities(clients: dict[str, ClientData], tasks: list[TaskSpec]) -> None:
    for data in clients.values():
        n = len(data)
        assert n > 0
        assert list(data.x) == list(MODALITIES) and list(data.y) == [t.name for t in tasks]
        for m, spec in MODALITIES.items():
            x, p = data.x[m], data.present[m]
            assert x.shape == (n, spec.steps, *spec.shape)
            assert x.dtype == (np.float16 if m in ("audio", "eeg", "depth") else np.float32)
            assert p.shape == (n, spec.steps) and p.dtype == bool
            assert np.isfinite(x).all()
            assert not x[~p].any()  # zeros where missing
        for t in tasks:
            assert data.y[t.name].dtype == (np.float32 if t.regression else np.int64)
            if not t.regression:
                assert ((data.y[t.name] >= -1) & (data.y[t.name] < len(t.classes))).all()
        assert data.session.shape == data.start_ns.shape == data.split.shape == (n,)
        assert data.start_ns.dtype == np.int64
        order = np.lexsort((data.start_ns, data.session))
        np.testing.assert_array_equal(order, np.arange(n))


def test_gaze_direction_scaling_is_the_documented_one(clients: dict[str, ClientData]) -> None:
    names = list(data_module.GAZE_CHANNELS)
    x, y, z = (names.index(f"combined_dir_{a}") for a in "xyz")
    for data in clients.values():
        g = data.x["gaze"][data.present["gaze"] & (data.x["gaze"][..., names.index("combined_valid")] == 1)]
        if len(g):
            # x and y are scaled by 10, z is not: undoing the scaling gives (mean-pooled) unit vectors
            norm = np.sqrt((g[:, x] / 10) ** 2 + (g[:, y] / 10) ** 2 + g[:, z] ** 2)
            assert abs(float(np.median(norm)) - 1.0) < 0.01
            assert float(np.abs(g[:, [x, y]]).max()) > 1.0  # targets beyond ~6 deg off-axis


def test_pupil_is_relative_to_the_session_median(tmp_path: Path) -> None:
    """Two people whose resting pupils differ by 2.5 mm and who dilate by 0.4 mm in the same second get the
    same pupil features: each eye's diameter minus its session median, mm / 0.5."""
    from xrdata.synth.eye import GAZE_CHANNELS as CH
    from xrdata.synth.eye import GAZE_UNITS

    n, rate = 600, 60.0  # 10 s
    t = np.round(np.arange(n) * 1e9 / rate).astype(np.int64)
    st_ = open_store(tmp_path / "s", "a")
    for user, rest in (("u0001", 3.5), ("u0002", 6.0)):
        g = np.zeros((n, len(CH)), np.float32)
        g[:, [CH.index(f"{e}_dir_z") for e in ("left", "right", "combined")]] = -1.0
        g[:, [i for i, c in enumerate(CH) if c.endswith(("_valid", "openness", "confidence"))]] = 1.0
        pupil = np.full(n, rest, np.float32)
        pupil[240:300] += 0.4  # seconds 4-5
        g[:, CH.index("left_pupil_diameter")] = pupil
        g[:, CH.index("right_pupil_diameter")] = pupil - 0.2
        g[100:130, CH.index("right_pupil_diameter")] = np.nan  # a lost stretch is not part of the median
        st_.write(Recording(user, "s1", [Stream("gaze", "gaze", t, g, CH, GAZE_UNITS, rate_hz=rate)]))
    a, b = (load_client(st_, u, NO_CACHE, []) for u in ("u0001", "u0002"))
    li, ri = (list(data_module.GAZE_CHANNELS).index(f"{e}_pupil_diameter") for e in ("left", "right"))
    np.testing.assert_allclose(a.x["gaze"][..., [li, ri]], b.x["gaze"][..., [li, ri]], atol=1e-5)
    pup = a.x["gaze"][..., li][a.present["gaze"]]
    assert float(np.abs(pup).min()) < 1e-6 and abs(float(pup.max()) - 0.8) < 1e-5  # 0.4 mm above the median


@given(st.floats(-np.pi, np.pi), st.floats(-0.6, 0.6), st.floats(-0.5, 0.5))
def test_head_and_hand_features_do_not_depend_on_where_the_user_faces(heading: float, turn: float,
                                                                      pitch: float) -> None:
    """The same head motion and hand pose, performed facing ``heading`` (rad about +Y) in the room, give the
    same features: the heading frame removes the room yaw."""
    def rot_y(a: np.ndarray) -> np.ndarray:  # (S,) angles -> (S, 3, 3)
        c, s = np.cos(a), np.sin(a)
        z, o = np.zeros_like(a), np.ones_like(a)
        return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)

    steps = 6
    yaw = np.linspace(0, turn, steps)  # the head turns by ``turn`` over the window, pitched by ``pitch``
    pos = np.column_stack([np.linspace(0, 0.3, steps), np.full(steps, 1.6), np.linspace(0, -0.2, steps)])
    joints = np.random.default_rng(0).normal(0, 0.05, (2, 26, 3)) + np.array([0.2, 1.2, -0.4])  # a hand in front

    def features(room: float) -> tuple[np.ndarray, np.ndarray]:
        r = rot_y(np.full(steps, room))
        q = np.column_stack([np.sin(pitch / 2) * np.cos((room + yaw) / 2), np.sin((room + yaw) / 2) * np.cos(pitch / 2),
                             -np.sin(pitch / 2) * np.sin((room + yaw) / 2),
                             np.cos((room + yaw) / 2) * np.cos(pitch / 2)])  # yaw then pitch (Y-X order)
        head = np.concatenate([np.einsum("sij,sj->si", r, pos), q], axis=1)[None].astype(np.float32)
        hand = np.einsum("ij,hkj->hki", r[0], joints)[None, None].repeat(steps, 1).astype(np.float32)
        ok = np.ones((1, steps), bool)
        heading_ = data_module._window_heading(head)
        h, _ = data_module._features("head", head, ok, data_module._Source("head", (7,), data_module.HEAD_CHANNELS,
                                                                          "float32"), MODALITIES["head"], heading_,
                                       np.full((1, 2), np.nan))
        f, _ = data_module._features("hand", hand, ok, data_module._Source("hand", (2, 26, 3), ("px", "py", "pz"),
                                                                          "float32"), MODALITIES["hand"], heading_,
                                       np.full((1, 2), np.nan))
        return h, f

    (h0, f0), (h1, f1) = features(0.0), features(heading)
    np.testing.assert_allclose(h1, h0, atol=2e-4)
    np.testing.assert_allclose(f1, f0, atol=2e-4)
    np.testing.assert_allclose(h0[..., 1], 1.0, atol=1e-5)  # eyes 1.6 m above the floor: (1.6 - 1.4) x 5


def test_a_missing_modality_is_zeros_and_never_present(store_path: Path, clients: dict[str, ClientData]) -> None:
    cat = open_store(store_path, "r").catalog().collect()
    checked = 0
    for user, data in clients.items():
        has = set(cat.filter(pl.col("user") == user)["stream"].to_list())
        for m in set(MODALITIES) - has:
            assert not data.present[m].any() and not data.x[m].any()
            checked += 1
        for m in has & set(MODALITIES):
            assert data.present[m].any(), (user, m)
    assert checked > 0  # the store has a user without some modality (e.g. camera glasses)


def test_masks_agree_with_a_direct_read(store_path: Path, clients: dict[str, ClientData]) -> None:
    st_ = open_store(store_path, "r")
    # Every step of the mean-pooled IMU and audio: present iff a valid sample lies in the step.
    for user, data in clients.items():
        for stream in ("imu", "audio"):
            spec = MODALITIES[stream]
            for session in sorted(set(data.session.tolist())):
                rows = np.flatnonzero(data.session == session)
                if stream not in st_.read(user, session).streams:
                    assert not data.present[stream][rows].any()
                    continue
                s = st_.read(user, session, [stream]).streams[stream]
                valid_t = s.time_ns[sample_validity(s.modality, s.channels, s.data)]
                edges = data.start_ns[rows, None] + (np.arange(spec.steps + 1) * L_NS) // spec.steps
                lo = np.searchsorted(valid_t, edges[:, :-1])
                hi = np.searchsorted(valid_t, edges[:, 1:])
                np.testing.assert_array_equal(data.present[stream][rows], hi > lo)
    # A ground-truth dropout burst: the steps inside it are masked, and the store has no valid sample there.
    dropout = read_ground_truth(st_, "dropout").filter(pl.col("stream").is_in(["audio", "imu"]))
    masked = 0
    for r in dropout.iter_rows(named=True):
        data = clients[r["user"]]
        spec = MODALITIES[r["stream"]]
        s = st_.read(r["user"], r["session"], [r["stream"]], r["start_ns"], r["stop_ns"]).streams[r["stream"]]
        assert not sample_validity(s.modality, s.channels, s.data).any()
        for i in np.flatnonzero(data.session == r["session"]):
            edges = data.start_ns[i] + (np.arange(spec.steps + 1) * L_NS) // spec.steps
            inside = (edges[:-1] >= r["start_ns"]) & (edges[1:] <= r["stop_ns"])
            assert not data.present[r["stream"]][i, inside].any()
            masked += int(inside.sum())
    assert masked > 0


def test_labels_equal_the_ground_truth_segments(
    store_path: Path, clients: dict[str, ClientData], tasks: list[TaskSpec]
) -> None:
    segments = read_ground_truth(store_path, "segments")
    qoe = read_ground_truth(store_path, "qoe")
    inside_checked = 0
    for user, data in clients.items():
        for i in range(len(data)):
            start, stop = int(data.start_ns[i]), int(data.start_ns[i]) + L_NS
            seg = segments.filter((pl.col("user") == user) & (pl.col("session") == data.session[i]))
            for t in tasks:
                if t.regression:
                    continue
                of_task = seg.filter(pl.col("task") == t.name)
                covering = of_task.filter((pl.col("start_ns") <= start) & (pl.col("stop_ns") >= stop))
                touching = of_task.filter((pl.col("start_ns") < stop) & (pl.col("stop_ns") > start))
                if covering.height:
                    assert data.y[t.name][i] == t.classes.index(covering["label"][0])
                    inside_checked += 1
                elif touching.height == 0:
                    assert data.y[t.name][i] == -1
        likert = qoe.filter(pl.col("user") == user)
        for session, score in zip(likert["session"].to_list(), likert["likert"].to_list(), strict=True):
            np.testing.assert_array_equal(data.y["qoe"][data.session == session], np.float32(score))
    assert inside_checked > 10


def test_splits_follow_the_ground_truth(store_path: Path, clients: dict[str, ClientData]) -> None:
    truth = read_ground_truth(store_path, "sessions")
    split = {(u, s): v for u, s, v in truth.select("user", "session", "split").iter_rows()}
    for user, data in clients.items():
        assert [split[(user, s)] for s in data.session.tolist()] == data.split.tolist()
    assert {"train", "test_users"} <= set(split.values())


def test_without_ground_truth_the_split_rule_applies(store_path: Path, tmp_path: Path, tasks: list[TaskSpec]) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(store_path, bare, ignore=shutil.ignore_patterns("ground_truth", ".xrdata"))
    for user in open_store(bare, "r").users():
        data = load_client(bare, user, NO_CACHE, tasks)
        fraction = int.from_bytes(hashlib.sha256(f"xrdata.fed_training/split/{user}".encode()).digest()) / 2**256
        assert set(data.split.tolist()) == {"test_users" if fraction < 0.15 else "train"}  # one session: no future
    # Ten sessions of a training user: the last two by UTC anchor are "future", whatever their ids.
    sessions = [f"s{i:02d}" for i in range(10)]
    anchors = [f"2025-03-{20 - i:02d}T10:00:00+00:00" for i in range(10)]  # s00 is the latest
    rows = pl.DataFrame({"session": sessions, "utc_anchor": anchors})
    train_user = next(u for u in (f"user{i}" for i in range(100)) if not data_module._is_test_user(u))
    got = data_module._splits(train_user, rows, {})
    assert {s for s, v in got.items() if v == "future"} == {"s00", "s01"}
    share = np.mean([data_module._is_test_user(f"u{i:05d}") for i in range(4000)])
    assert 0.13 < share < 0.17


def test_the_loader_reads_no_other_user(
    store_path: Path, tasks: list[TaskSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, str]] = []
    catalogs: list[Any] = []
    files: list[str] = []
    real_read, real_catalog, real_bytes = Store.read, Store.catalog, Backend.read_bytes

    def read(self: Store, user: str, session: str, *args: Any, **kwargs: Any) -> Recording:
        reads.append((user, session))
        return real_read(self, user, session, *args, **kwargs)

    def catalog(self: Store, users: Any = None) -> Any:
        catalogs.append(None if users is None else list(users))
        return real_catalog(self, users)

    def read_bytes(self: Backend, rel: str) -> bytes | None:
        files.append(rel)
        return real_bytes(self, rel)

    monkeypatch.setattr(Store, "read", read)
    monkeypatch.setattr(Store, "catalog", catalog)
    monkeypatch.setattr(Backend, "read_bytes", read_bytes)
    st_ = open_store(store_path, "r")
    data = load_client(st_, "u0002", NO_CACHE, tasks)
    assert len(data) > 0 and reads
    assert {u for u, _ in reads} == {"u0002"}
    assert catalogs and all(c == ["u0002"] for c in catalogs)
    others = [f for f in files if any(f"/{u}/" in f"/{f}/" or f"user={u}" in f for u in ("u0001", "u0003"))]
    assert others == []


# --- cache, workers -------------------------------------------------------------------------------------


def _add_session(path: Path, user: str) -> None:
    """An 8 s session: IMU, and an EEG cap of other channels (another sample shape than the user's cap)."""
    t_imu = np.arange(800, dtype=np.int64) * 10_000_000  # 100 Hz
    accel = np.tile(np.array([[0.0, 9.81, 0.0, 0.1, 0.0, 0.0]], np.float32), (800, 1))
    t_eeg = np.arange(2000, dtype=np.int64) * 4_000_000  # 250 Hz
    volts = np.tile(np.array([[20e-6, 1e-3, -40e-6]], np.float32), (2000, 1))
    events = pl.DataFrame(
        {"time_ns": [0, 5_000_000_000, 6_500_000_000, 8_000_000_000],
         "duration_ns": [5_000_000_000, 1_500_000_000, 1_500_000_000, 0],
         "label": ["task/cognitive_load", "task/custom", "task/custom", "qoe/likert"],
         "value": ["high", "b", "a", "5"]},
        schema={"time_ns": pl.Int64, "duration_ns": pl.Int64, "label": pl.String, "value": pl.String},
    )
    streams = [
        Stream("imu", "motion", t_imu, accel, list(data_module.IMU_CHANNELS), ["m/s^2"] * 3 + ["rad/s"] * 3,
               rate_hz=100.0),
        Stream("eeg", "eeg", t_eeg, volts, ["fp1", "Cz", "O2"], "V", rate_hz=250.0),
    ]
    open_store(path, "r+").write(Recording(user, "s900", streams, events=events))


def test_cache_hit_is_identical_and_a_new_session_invalidates_it(
    store_path: Path, tmp_path: Path, tasks: list[TaskSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store"
    shutil.copytree(store_path, path, ignore=shutil.ignore_patterns(".xrdata"))
    user = "u0001"
    cfg = DataConfig(cache=True)
    fresh = load_client(path, user, NO_CACHE, tasks)
    first = load_client(path, user, cfg, tasks)
    root = cache_dir(path, cfg, tasks)
    assert root is not None and (root / f"{user}.npz").is_file()
    assert root.parent == path / ".xrdata" / "cache" / "fed"
    assert_same(first, fresh)

    def no_windows(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the cache was not used")

    with monkeypatch.context() as m:
        m.setattr(data_module, "windows", no_windows)
        assert_same(load_client(path, user, cfg, tasks), fresh)
    assert cache_dir(path, cfg, tasks[:1]) != root  # another task list (or window, modality...): another key

    _add_session(path, user)
    after = load_client(path, user, cfg, tasks)
    assert_same(after, load_client(path, user, NO_CACHE, tasks))
    new = after.session == "s900"
    assert int(new.sum()) == 4 and len(after) == len(fresh) + 4
    assert set(after.split[new].tolist()) == {"test_users"}  # u0001 is held out in the ground truth
    # EEG: Fp1 (named "fp1") and O2 in uV / 20, the sites the cap lacks are 0; the other cap still loads.
    eeg = after.x["eeg"][new].astype(np.float32)
    assert after.present["eeg"][new].all()
    np.testing.assert_allclose(eeg[:, :, EEG_SITES.index("Fp1")], 1.0, rtol=1e-3)
    np.testing.assert_allclose(eeg[:, :, EEG_SITES.index("O2")], -2.0, rtol=1e-3)
    assert not eeg[:, :, [1, 2, 3, 4, 5, 6]].any()
    assert after.present["eeg"][~new].any()
    np.testing.assert_allclose(after.x["imu"][new][:, :, 1], 1.0, rtol=1e-6)  # 9.81 m/s^2 = 1 g
    assert not after.present["audio"][new].any()
    # cognitive_load "high" covers [0, 5 s): windows 0-2 s, 2-4 s and 4-6 s (half covered) are labelled.
    load = after.y["cognitive_load"][new]
    np.testing.assert_array_equal(load, [2, 2, 2, -1])
    strict = load_client(path, user, DataConfig(cache=False, min_label_overlap=0.6), tasks)
    np.testing.assert_array_equal(strict.y["cognitive_load"][strict.session == "s900"], [2, 2, -1, -1])
    np.testing.assert_array_equal(after.y["qoe"][new], 5.0)
    # A task unknown to the synthesizer: its classes are the sorted values found in the store.
    custom = discover_tasks(path, DataConfig(tasks=("custom", "cognitive_load")))
    assert custom[0] == TaskSpec("custom", ("a", "b"))
    labelled = load_client(path, user, NO_CACHE, custom)
    np.testing.assert_array_equal(labelled.y["custom"][labelled.session == "s900"], [-1, -1, 1, 0])


def test_workers_give_the_same_result(store_path: Path, tasks: list[TaskSpec], clients: dict[str, ClientData]) -> None:
    st_ = open_store(store_path, "r")
    parallel = load_clients(st_, list(reversed(st_.users())), NO_CACHE, tasks, workers=2)
    assert list(parallel) == list(reversed(st_.users()))
    for user, data in clients.items():
        assert_same(parallel[user], data)


# --- ClientData -----------------------------------------------------------------------------------------


@given(n=st.integers(0, 150), batch=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), shuffle=st.booleans(),
       drop_last=st.booleans())
def test_batches_cover_every_window_once_per_epoch(n: int, batch: int, seed: int, shuffle: bool,
                                                   drop_last: bool) -> None:
    data = fake(n)
    parts = list(data.batches(batch, np.random.default_rng(seed), shuffle=shuffle, drop_last=drop_last))
    seen = np.concatenate([p.start_ns for p in parts]) if parts else np.array([], np.int64)
    assert all(len(p) == batch for p in parts[:-1]) and all(0 < len(p) <= batch for p in parts)
    if drop_last:
        assert len(seen) == n - n % batch and len(set(seen.tolist())) == len(seen)
    else:
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    for p in parts:  # every array of a batch follows the same windows
        np.testing.assert_array_equal(p.y["t"], p.start_ns % 3)
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_subset_and_concat_round_trip(clients: dict[str, ClientData]) -> None:
    data = clients["u0002"]
    n = len(data)
    a, b = data.subset(np.arange(0, n, 2)), data.subset(np.arange(1, n, 2))
    joined = concat([a, b])
    order = np.argsort(np.concatenate([np.arange(0, n, 2), np.arange(1, n, 2)]), kind="stable")
    assert_same(joined.subset(order), data)
    assert_same(data.subset(np.ones(n, bool)), data)
    pooled = ClientData.concat(list(clients.values()))
    assert pooled.user == "pooled" and len(pooled) == sum(len(c) for c in clients.values())
    with pytest.raises(ValidationError):
        data.subset(np.ones(n + 1, bool))
    with pytest.raises(ValidationError):
        concat([])


def test_to_tensors(clients: dict[str, ClientData], tasks: list[TaskSpec]) -> None:
    import torch

    batch = clients["u0002"].subset(np.arange(3))
    x, present, y = to_tensors(batch)
    for m, spec in MODALITIES.items():
        assert x[m].dtype == torch.float32 and x[m].shape == (3, spec.steps, *spec.shape)
        assert present[m].dtype == torch.bool and present[m].shape == (3, spec.steps)
        np.testing.assert_array_equal(x[m].numpy(), batch.x[m].astype(np.float32))
    for t in tasks:
        assert y[t.name].dtype == (torch.float32 if t.regression else torch.int64) and y[t.name].shape == (3,)


def test_depth_area_downsampling_ignores_invalid_pixels() -> None:
    rng = np.random.default_rng(0)
    frames = rng.uniform(0.5, 4.0, size=(5, 2, 120, 160)).astype(np.float32)
    frames[rng.uniform(size=frames.shape) < 0.3] = np.nan
    frames[0, 0, :5, :5] = np.nan  # one output pixel without any valid source pixel
    out = data_module._area_resize(frames, (24, 32))
    blocks = frames.reshape(5, 2, 24, 5, 32, 5)  # a whole factor of 5: block means of the valid pixels
    valid = np.isfinite(blocks)
    with np.errstate(invalid="ignore"):
        expected = np.where(valid, blocks, 0).sum(axis=(3, 5)) / valid.sum(axis=(3, 5))
    assert np.isnan(out[0, 0, 0, 0])
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("shape", [(120, 160), (115, 128), (113, 128), (96, 128), (61, 45)])
def test_depth_area_weights_match_opencv_inter_area(shape: tuple[int, int]) -> None:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    frame = rng.uniform(0.5, 4.0, size=shape).astype(np.float32)
    got = data_module._area_resize(frame[None, None], (24, 32))[0, 0]
    np.testing.assert_allclose(got, cv2.resize(frame, (32, 24), interpolation=cv2.INTER_AREA), rtol=2e-5)
