"""Project Aria MPS readers against the projectaria-tools reference output (REFERENCE.json keys ``aria``
and ``csv``), the documented frame conversions, robustness and store round trips."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xrdata
from xrdata.errors import LoaderError
from xrdata.loaders import read
from xrdata.loaders.aria import (
    ARIA_TO_OPENXR_JOINTS,
    read_aria_eye_gaze,
    read_aria_hand_tracking,
    read_aria_mps,
    read_aria_online_calibration,
    read_aria_speech,
    read_aria_trajectory,
)
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable

# Frame changes the reader documents, written out here independently of the module.
CPF = np.diag([-1.0, 1.0, -1.0])  # CPF (+X left, +Y up, +Z forward) -> OpenXR
DEV = np.array([[0, -1, 0], [-1, 0, 0], [0, 0, -1]], dtype=float)  # device (+X down, +Y left, +Z fwd) -> OpenXR
WORLD = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float)  # world (+Z up) -> OpenXR (+Y up)

READERS = {
    "mps.read_eyegaze": read_aria_eye_gaze,
    "hand_tracking.read_wrist_and_palm_poses": read_aria_hand_tracking,
    "hand_tracking.read_hand_tracking_results": read_aria_hand_tracking,
    "mps.read_closed_loop_trajectory": read_aria_trajectory,
    "mps.read_online_calibration": read_aria_online_calibration,
}
FILES = [
    "gen1/aria_everyday_activities_test_data/mps/eye_gaze/general_eye_gaze.csv",
    "gen1/mps_sample/eye_gaze/eyegaze.csv",
    "gen1/mps_sample/eye_gaze/generalized_eye_gaze.csv",
    "gen1/mps_sample/eye_gaze_vergence/generalized_gaze.csv",
    "gen1/mps_sample/hand_tracking/wrist_and_palm_poses.csv",
    "gen1/mps_sample/hand_tracking/wrist_and_palm_poses_v2.csv",
    "gen1/mps_sample/hand_tracking/hand_tracking_results_v1.csv",
    "gen1/mps_sample/hand_tracking/hand_tracking_results_v2.csv",
    "gen1/mps_sample/trajectory/closed_loop_trajectory_geo_available.csv",
    "gen1/mps_sample/trajectory/closed_loop_trajectory_geo_missing.csv",
    "gen1/mps_sample/trajectory/online_calibration.jsonl",
    "gen1/aria_everyday_activities_test_data/speech.csv",
]


def _reader_for(rel: str) -> Any:
    if rel.endswith("speech.csv"):
        return read_aria_speech
    if "eye_gaze" in rel:
        return read_aria_eye_gaze
    if "hand_tracking" in rel:
        return read_aria_hand_tracking
    if rel.endswith(".jsonl"):
        return read_aria_online_calibration
    return read_aria_trajectory


def _root(fixtures_dir: Path) -> Path:
    root = fixtures_dir / "projectaria_tools"
    if not root.is_dir():
        pytest.skip("projectaria_tools fixtures absent")
    return root


def _quat_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    x, y, z, w = q_xyzw
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def test_frame_changes_are_rotations() -> None:
    for m in (CPF, DEV, WORLD):
        assert np.allclose(m @ m.T, np.eye(3)) and np.isclose(np.linalg.det(m), 1.0)


def test_every_file_is_in_the_reference(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    root = _root(fixtures_dir)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".csv", ".jsonl")}
    assert on_disk == set(FILES)
    assert set(reference["aria"]["files"]) | {"gen1/aria_everyday_activities_test_data/speech.csv"} == set(FILES)


@pytest.mark.parametrize("rel", [f for f in FILES if "eye_gaze" in f])
def test_eye_gaze_matches_reference(fixtures_dir: Path, reference: dict[str, Any], rel: str) -> None:
    ref = reference["aria"]["files"][rel]
    rec = read_aria_eye_gaze(_root(fixtures_dir) / rel)
    check_writable(rec)
    gaze, angles = rec.streams["eye_gaze"], rec.streams["eye_gaze_angles"]
    assert gaze.n_samples == angles.n_samples == ref["n"]
    assert gaze.time_ns[0] == ref["first_tracking_timestamp_us"] * 1000  # exact, device clock
    a = dict(zip(angles.channels, angles.data[0], strict=True))
    # The reference reader returns float32: agree to float32 precision.
    assert a["yaw_rads_cpf"] == pytest.approx(ref["first_yaw"], abs=1e-6)
    pitch = a["pitch_rads_cpf"]
    assert pitch == pytest.approx(ref["first_pitch"], abs=1e-6)
    if ref["first_depth"] == 0.0:
        assert math.isnan(a["depth_m"])  # blank depth: projectaria-tools gives 0.0 (= not available), we NaN
    else:
        assert a["depth_m"] == pytest.approx(ref["first_depth"], abs=1e-6)
    assert gaze.meta["session_uids"] == ([ref["session_uid"]] if ref["session_uid"] else [])
    g = dict(zip(gaze.channels, gaze.data[0], strict=True))
    v = np.array([math.tan(ref["first_yaw"]), math.tan(ref["first_pitch"]), 1.0])
    expected = CPF @ (v / np.linalg.norm(v))
    got = np.array([g["combined_dir_x"], g["combined_dir_y"], g["combined_dir_z"]])
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert [g[f"combined_origin_{c}"] for c in "xyz"] == [0.0, 0.0, 0.0]
    assert gaze.meta["reference_space"] == "view"
    # The CSV reference (pandas) row agrees on every raw angle column the file has.
    csv_ref = reference["csv"]["files"][f"projectaria_tools/{rel}"]
    row = dict(zip(csv_ref["columns"], csv_ref["first_row"], strict=True))
    for name, value in a.items():
        if name in row and name != "depth_m" and (name != "yaw_rads_cpf" or "left_yaw_rads_cpf" not in row):
            assert value == pytest.approx(float(row[name]), abs=1e-12), name


def test_vergence_eyes(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    rel = "gen1/mps_sample/eye_gaze_vergence/generalized_gaze.csv"
    ref = reference["aria"]["files"][rel]
    gaze = read_aria_eye_gaze(_root(fixtures_dir) / rel).streams["eye_gaze"]
    g = dict(zip(gaze.channels, gaze.data[0], strict=True))
    # Left eye at +IPD/2 in CPF (+X = wearer's left) -> OpenXR x = -0.0315.
    assert [g[f"left_origin_{c}"] for c in "xyz"] == pytest.approx([-0.0315, 0.0, 0.0])
    assert [g[f"right_origin_{c}"] for c in "xyz"] == pytest.approx([0.0315, 0.0, 0.0])
    for side, yaw in (("left", ref["first_vergence_left_yaw"]), ("right", 0.7736955881118774)):
        v = np.array([math.tan(yaw), math.tan(ref["first_pitch"]), 1.0])
        np.testing.assert_allclose([g[f"{side}_dir_{c}"] for c in "xyz"], CPF @ (v / np.linalg.norm(v)), atol=2e-6)
    # The intersection of the two eye lines lies on the combined ray's line (projectaria-tools
    # getGazeIntersectionPoint; in this sample the rays diverge, so the lines meet behind the eyes).
    lo, ld = np.array([g[f"left_origin_{c}"] for c in "xyz"]), np.array([g[f"left_dir_{c}"] for c in "xyz"])
    ro, rd = np.array([g[f"right_origin_{c}"] for c in "xyz"]), np.array([g[f"right_dir_{c}"] for c in "xyz"])
    s = np.linalg.lstsq(np.stack([ld, -rd], axis=1), ro - lo, rcond=None)[0]
    point = lo + s[0] * ld
    cd = np.array([g[f"combined_dir_{c}"] for c in "xyz"])
    assert abs(float(point @ cd) / np.linalg.norm(point)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("rel", [f for f in FILES if "hand_tracking_results" in f])
def test_hand_results_match_reference(fixtures_dir: Path, reference: dict[str, Any], rel: str) -> None:
    ref = reference["aria"]["files"][rel]
    rec = read_aria_hand_tracking(_root(fixtures_dir) / rel)
    check_writable(rec)
    hands = rec.streams["hands"]
    assert hands.n_samples == ref["n"] and hands.data.shape == (ref["n"], 2, 26, 4)
    assert hands.channels == ["px", "py", "pz", "confidence"]
    assert hands.time_ns[0] == ref["first_ts_us"] * 1000
    first = hands.data[0]
    assert ref["left"] and not ref["right"]
    assert np.all(first[0, :, 3] == pytest.approx(ref["conf"]))
    assert np.isnan(first[1, :, :3]).all() and (first[1, :, 3] == 0).all()  # right hand missing: NaN, conf 0
    thumb_tip = 5
    np.testing.assert_allclose(first[0, thumb_tip, :3], DEV @ np.array(ref["landmark0_device_m"]), atol=1e-12)
    metacarpals = [2, 6, 11, 16, 21]
    assert np.isnan(first[0, metacarpals, :3]).all()
    assert (~np.isnan(first[0, :, :3])).all(axis=-1).sum() == ref["n_landmarks"]
    # Every landmark lands on its joint: compare with the pandas row of the CSV reference.
    csv_ref = reference["csv"]["files"][f"projectaria_tools/{rel}"]
    row = dict(zip(csv_ref["columns"], (float(x) for x in csv_ref["first_row"]), strict=True))
    for joint, lm in enumerate(ARIA_TO_OPENXR_JOINTS):
        if lm is not None:
            src = np.array([row[f"t{a}_left_landmark_{lm}_device"] for a in "xyz"])
            np.testing.assert_allclose(first[0, joint, :3], DEV @ src, atol=1e-12)
    wrist = dict(zip(rec.streams["hand_wrist"].channels, rec.streams["hand_wrist"].data[0], strict=True))
    np.testing.assert_allclose([wrist[f"left_wrist_p{a}"] for a in "xyz"], DEV @ np.array(ref["T_device_wrist_t"]),
                               atol=1e-12)
    # The wrist orientation keeps Aria's wrist axes, re-expressed in the OpenXR-axis device frame.
    q_src = np.array([row[f"q{a}_left_device_wrist"] for a in "xyzw"])
    q = np.array([wrist[f"left_wrist_q{a}"] for a in "xyzw"])
    np.testing.assert_allclose(_quat_matrix(q), DEV @ _quat_matrix(q_src), atol=1e-5)
    np.testing.assert_allclose(first[0, 1, :3], DEV @ np.array(ref["T_device_wrist_t"]), atol=1e-12)  # wrist joint
    if rel.endswith("v2.csv"):
        assert "left_palm_normal_x" in rec.streams["hand_wrist"].channels


@pytest.mark.parametrize("rel", [f for f in FILES if "wrist_and_palm" in f])
def test_wrist_and_palm_match_reference(fixtures_dir: Path, reference: dict[str, Any], rel: str) -> None:
    ref = reference["aria"]["files"][rel]
    rec = read_aria_hand_tracking(_root(fixtures_dir) / rel)
    check_writable(rec)
    hands = rec.streams["hands"]
    assert hands.n_samples == ref["n"]
    assert hands.time_ns[0] == ref["first_ts_us"] * 1000
    tracked = (hands.data[:, :, 0, 3] > 0).any(axis=1)
    assert int(tracked.sum()) == ref["n_with_hand"]
    i = int(np.argmax(tracked))
    assert hands.time_ns[i] == ref["first_hand_ts_us"] * 1000
    side = int(np.argmax(hands.data[i, :, 0, 3] > 0))
    assert hands.data[i, side, 0, 3] == pytest.approx(ref["first_hand_conf"])
    np.testing.assert_allclose(hands.data[i, side, 1, :3], DEV @ np.array(ref["first_wrist_device_m"]), atol=1e-12)
    assert np.isnan(hands.data[i, side, 2:, :3]).all()  # only wrist and palm exist in the legacy file
    assert np.isnan(hands.data[0, :, :, :3]).all() and (hands.data[0, :, :, 3] == 0).all()


@pytest.mark.parametrize("rel", [f for f in FILES if "closed_loop" in f])
def test_trajectory_matches_reference(fixtures_dir: Path, reference: dict[str, Any], rel: str) -> None:
    ref = reference["aria"]["files"][rel]
    rec = read_aria_trajectory(_root(fixtures_dir) / rel)
    check_writable(rec)
    pose, state, utc = rec.streams["head_pose"], rec.streams["trajectory_state"], rec.streams["trajectory_utc"]
    assert pose.n_samples == state.n_samples == utc.n_samples == ref["n"]
    assert pose.time_ns[0] == ref["first_tracking_timestamp_us"] * 1000
    # utc_timestamp_ns is kept exactly (1686767222002923694); the reference went through float64.
    assert utc.data.dtype == np.int64 and int(utc.data[0, 0]) == 1686767222002923694
    assert abs(int(utc.data[0, 0]) - ref["first_utc_ns"]) <= 1000
    p = dict(zip(pose.channels, pose.data[0], strict=True))
    np.testing.assert_allclose([p["head_px"], p["head_py"], p["head_pz"]], WORLD @ np.array(ref["t_world_device"]),
                               atol=1e-12)
    w, x, y, z = ref["q_world_device_wxyz"]
    q = np.array([p["head_qx"], p["head_qy"], p["head_qz"], p["head_qw"]])
    np.testing.assert_allclose(_quat_matrix(q), WORLD @ _quat_matrix(np.array([x, y, z, w])) @ DEV.T, atol=1e-7)
    s = dict(zip(state.channels, state.data[0], strict=True))
    np.testing.assert_allclose([s["gravity_x"], s["gravity_y"], s["gravity_z"]], WORLD @ np.array(ref["gravity_world"]))
    assert s["quality_score"] == ref["quality_score"]
    assert pose.meta["graph_uids"] == [ref["graph_uid"]]
    assert rec.meta["utc_anchor"].startswith("2023-06-14T18:24:")
    # Gravity along device +X (down when worn) -> the device's OpenXR -Y points down in the world.
    assert ("geo_available" in state.channels) == rel.endswith("available.csv")


def test_online_calibration_matches_reference(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    rel = "gen1/mps_sample/trajectory/online_calibration.jsonl"
    ref = reference["aria"]["files"][rel]
    rec = read_aria_online_calibration(_root(fixtures_dir) / rel)
    check_writable(rec)
    cal = rec.streams["online_calibration"]
    assert cal.n_samples == ref["n"]  # the last line has no line break and is complete
    assert cal.time_ns[0] == ref["first_tracking_timestamp_us"] * 1000
    assert cal.meta["cameras"] == ref["cameras"] and cal.meta["imus"] == ref["imus"]
    assert "dropped_truncated_lines" not in rec.meta
    ch = dict(zip(cal.channels, cal.data[0], strict=True))
    assert ch["camera-rgb.Projection.Params.0"] == 1220.01943882295
    assert rec.streams["online_calibration_utc"].data[0, 0] == 1686767221302923694


def test_speech(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    rel = "gen1/aria_everyday_activities_test_data/speech.csv"
    ref = reference["csv"]["files"][f"projectaria_tools/{rel}"]
    rec = read_aria_speech(_root(fixtures_dir) / rel)
    check_writable(rec)
    assert rec.events.height == ref["shape"][0]
    start, end, word, conf = ref["first_row"]
    assert rec.events.row(0) == (start, end - start, "speech", word)
    assert rec.streams["speech_confidence"].data[0, 0] == conf


def test_mps_folders(fixtures_dir: Path) -> None:
    root = _root(fixtures_dir)
    sample = read_aria_mps(root / "gen1/mps_sample")
    check_writable(sample)
    assert {"eye_gaze", "eye_gaze_angles", "hands", "hand_wrist", "head_pose", "online_calibration"} <= set(
        sample.streams
    )
    # The preferred file of each kind keeps the plain names: vergence gaze, v2 results, the first trajectory.
    assert sample.streams["eye_gaze"].meta["source_file"] == "eye_gaze_vergence/generalized_gaze.csv"
    assert sample.streams["hands"].meta["source_file"] == "hand_tracking/hand_tracking_results_v2.csv"
    assert "eyegaze_eye_gaze" in sample.streams and "wrist_and_palm_poses_hands" in sample.streams
    assert len(sample.meta["source_files"]) == 10  # every CSV/JSONL of mps_sample
    aea = read_aria_mps(root / "gen1/aria_everyday_activities_test_data")
    assert set(aea.streams) == {"eye_gaze", "eye_gaze_angles", "speech_confidence"} and aea.events.height == 13
    assert read(root / "gen1/mps_sample").streams.keys() == sample.streams.keys()


@pytest.mark.parametrize("rel", FILES)
def test_dispatch_and_store_round_trip(fixtures_dir: Path, rel: str) -> None:
    path = _root(fixtures_dir) / rel
    direct = _reader_for(rel)(path)
    assert_recording_equal(read(path), direct)
    check_writable(direct)
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        store.write(direct)
        assert_recording_equal(store.read(direct.user_id, direct.session_id), direct)


def test_mps_folder_round_trip(fixtures_dir: Path) -> None:
    rec = read_aria_mps(_root(fixtures_dir) / "gen1/mps_sample", user_id="u1", session_id="s1")
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        store.write(rec)
        assert_recording_equal(store.read("u1", "s1"), rec)


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_open_loop_and_depth_zero() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        header = ("tracking_timestamp_us,utc_timestamp_ns,session_uid,tx_odometry_device,ty_odometry_device,"
                  "tz_odometry_device,qx_odometry_device,qy_odometry_device,qz_odometry_device,qw_odometry_device,"
                  "device_linear_velocity_x_odometry,device_linear_velocity_y_odometry,"
                  "device_linear_velocity_z_odometry,angular_velocity_x_device,angular_velocity_y_device,"
                  "angular_velocity_z_device,gravity_x_odometry,gravity_y_odometry,gravity_z_odometry,quality_score")
        p = _write(Path(tmp), "open_loop_trajectory.csv",
                   f"{header}\n10,1000010000,abc,1,2,3,0,0,0,1,0.5,0,0,0,0,0.25,0,0,-9.81,1\n"
                   "20,1000020000,abc,1,2,3,0,0,0,1,0,0,0,0,0,0,0,0,-9.81,1\n")
        rec = read_aria_trajectory(p)
        pose = rec.streams["head_pose"]
        assert pose.meta["reference_space"] == "aria_odometry"
        np.testing.assert_allclose(pose.data[0, :3], [1, 3, -2])
        # identity T_odometry_device -> W D^T in OpenXR axes
        np.testing.assert_allclose(_quat_matrix(pose.data[0, 3:]), WORLD @ DEV.T, atol=1e-12)
        s = dict(zip(rec.streams["trajectory_state"].channels, rec.streams["trajectory_state"].data[0], strict=True))
        assert [s["linear_velocity_x"], s["linear_velocity_y"], s["linear_velocity_z"]] == [0.5, 0.0, 0.0]
        assert [s["angular_velocity_x"], s["angular_velocity_y"], s["angular_velocity_z"]] == [-0.0, -0.0, -0.25]
        assert rec.meta["utc_anchor"] == "1970-01-01T00:00:01+00:00"
        g = _write(Path(tmp), "personalized_eye_gaze.csv",
                   "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf,yaw_low_rads_cpf,pitch_low_rads_cpf,"
                   "yaw_high_rads_cpf,pitch_high_rads_cpf,depth_m,session_uid\n5,0,0,0,0,0,0,0,a\n6,0,0,0,0,0,0,1.5,a\n")
        gaze = read_aria_eye_gaze(g)
        np.testing.assert_allclose(gaze.streams["eye_gaze"].data[0, 3:], [0.0, 0.0, -1.0])  # straight ahead
        depth = gaze.streams["eye_gaze_angles"].data[:, -1]
        assert math.isnan(depth[0]) and depth[1] == 1.5  # 0 = not available


def test_bad_inputs_name_the_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = _write(Path(tmp), "eyegaze.csv", "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf\n2,0,0\n1,0,0\n")
        with pytest.raises(LoaderError, match=r"eyegaze.csv.*back in time"):
            read_aria_eye_gaze(p)
        q = _write(Path(tmp), "x.csv", "tracking_timestamp_us,foo\n1,2\n")
        with pytest.raises(LoaderError, match=r"x.csv"):
            read_aria_eye_gaze(q)
        (Path(tmp) / "empty").mkdir()
        with pytest.raises(LoaderError, match=r"no Aria MPS"):
            read_aria_mps(Path(tmp) / "empty")


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a fixture folder with writable files and folders (the fixtures are read-only)."""
    for f in src.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)


@pytest.mark.parametrize("rel", FILES)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_corrupted_files_keep_the_contract(fixtures_dir: Path, rel: str, data: st.DataObject) -> None:
    src = _root(fixtures_dir) / rel
    payload = src.read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / src.name
        path.write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(_reader_for(rel), path)
        if rec is not None:
            check_writable(rec)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_corrupted_mps_folder_keeps_the_contract(fixtures_dir: Path, data: st.DataObject) -> None:
    src = _root(fixtures_dir) / "gen1/mps_sample"
    rel = data.draw(st.sampled_from([f[len("gen1/mps_sample/"):] for f in FILES if "mps_sample" in f]))
    payload = (src / rel).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mps_sample"
        _copy_tree(src, folder)
        (folder / rel).write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(read_aria_mps, folder)
        if rec is not None:
            check_writable(rec)
