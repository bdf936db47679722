"""Pupil Labs readers: the Neon native fixture against pupil-labs-neon-recording's output (REFERENCE.json key
``pupil_neon_native``), and hand-built Neon Cloud and Pupil Core exports (both header generations) checked
against hand-computed conversions."""

from __future__ import annotations

import itertools
import json
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
from xrdata.loaders.pupil import read_pupil_cloud, read_pupil_core, read_pupil_neon
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable, validate

G = 9.80665


def _neon(fixtures_dir: Path) -> Path:
    folder = fixtures_dir / "pupil-labs_pl-neon-recording" / "demo_recording"
    if not folder.is_dir():
        pytest.skip("Neon fixture absent")
    return folder


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a fixture folder with writable files (the fixtures are read-only)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, dst / f.name)


# ------------------------------------------------------------------------------------------ Neon native


def test_neon_native_matches_reference(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    ref = reference["pupil_neon_native"]
    rec = read_pupil_neon(_neon(fixtures_dir))
    check_writable(rec)
    assert [v for v in validate(rec)] == []
    assert rec.meta["utc_anchor"] == "1970-01-01T00:00:00+00:00"
    assert rec.meta["start_time_ns"] == ref["start_time_ns"] and rec.meta["duration_ns"] == ref["duration_ns"]
    assert rec.meta["device"]["module_serial_number"] == ref["info"]["module_serial_number"]
    streams = ref["streams"]

    gaze = rec.streams["gaze"]
    r = streams["gaze"]
    assert gaze.n_samples == r["n"] and gaze.channels == ["norm_x", "norm_y"]
    assert gaze.time_ns[0] == r["first_ts"] and gaze.time_ns[-1] == r["last_ts"]  # UTC ns, exact
    assert gaze.data[0, 0] * 1600 == pytest.approx(r["first"]["point_x"], abs=1e-9)
    assert gaze.data[0, 1] * 1200 == pytest.approx(r["first"]["point_y"], abs=1e-9)
    assert np.median(np.diff(gaze.time_ns)) == 5_000_000 and gaze.rate_hz == 200.0

    eye = rec.streams["eye_state"]
    e = dict(zip(eye.channels, eye.data[0], strict=True))
    assert eye.n_samples == streams["pupil"]["n"] == streams["eyeball"]["n"]
    assert eye.time_ns[0] == streams["pupil"]["first_ts"]
    assert e["left_pupil_diameter"] == pytest.approx(streams["pupil"]["first"]["diameter_left"], abs=1e-12)
    assert e["right_pupil_diameter"] == pytest.approx(streams["pupil"]["first"]["diameter_right"], abs=1e-12)
    b = streams["eyeball"]["first"]
    for side in ("left", "right"):  # OpenCV scene camera (mm) -> OpenXR axes (m): (x, -y, -z) / 1000
        got = [e[f"{side}_origin_{a}"] for a in "xyz"]
        assert got == pytest.approx([b[f"center_{side}_x"] / 1000, -b[f"center_{side}_y"] / 1000,
                                     -b[f"center_{side}_z"] / 1000], abs=1e-12)
        got = [e[f"{side}_dir_{a}"] for a in "xyz"]
        assert got == pytest.approx([b[f"optical_axis_{side}_x"], -b[f"optical_axis_{side}_y"],
                                     -b[f"optical_axis_{side}_z"]], abs=1e-12)

    lid = dict(zip(rec.streams["eyelid"].channels, rec.streams["eyelid"].data[0], strict=True))
    lr = streams["eyelid"]["first"]
    assert lid["left_eyelid_angle_top"] == pytest.approx(lr["angle_upper_left"])
    assert lid["right_eyelid_aperture"] == pytest.approx(lr["aperture_right"])

    imu = rec.streams["imu"]
    ir = streams["imu"]
    f = ir["first"]
    assert imu.n_samples == ir["n"] and imu.time_ns[0] == ir["first_ts"] and imu.time_ns[-1] == ir["last_ts"]
    assert np.median(np.diff(imu.time_ns)) / 1e6 == pytest.approx(10.63, abs=0.01)
    m = dict(zip(imu.channels, imu.data[0], strict=True))
    d2r = math.pi / 180
    # Neon IMU axes (+X right, +Y forward, +Z up) -> OpenXR (x, z, -y); deg/s -> rad/s; g -> m/s^2.
    assert [m["gyro_x"], m["gyro_y"], m["gyro_z"]] == pytest.approx(
        [f["angular_velocity_x"] * d2r, f["angular_velocity_z"] * d2r, -f["angular_velocity_y"] * d2r], abs=1e-12)
    assert [m["accel_x"], m["accel_y"], m["accel_z"]] == pytest.approx(
        [f["acceleration_x"] * G, f["acceleration_z"] * G, -f["acceleration_y"] * G], abs=1e-12)
    assert [m["head_qx"], m["head_qy"], m["head_qz"], m["head_qw"]] == pytest.approx(
        [f["quaternion_x"], f["quaternion_z"], -f["quaternion_y"], f["quaternion_w"]], abs=1e-12)

    worn = rec.streams["worn"]
    assert worn.n_samples == streams["worn"]["n"] and worn.data.dtype == np.uint8 and (worn.data == 255).all()

    ev = rec.events
    blinks = ev.filter(ev["label"] == "blink")
    fix = ev.filter(ev["label"] == "fixation")
    sac = ev.filter(ev["label"] == "saccade")
    user = ev.filter(ev["label"] == "event")
    assert (blinks.height, fix.height, sac.height, user.height) == (2, 23, 22, 2)
    br = streams["blinks"]["first"]
    assert blinks.row(0)[:2] == (br["start_time"], br["stop_time"] - br["start_time"])
    fr = streams["fixations"]["first"]
    assert fix.row(0)[:2] == (fr["start_time"], fr["stop_time"] - fr["start_time"])
    assert json.loads(fix["value"][0])["mean_gaze_px"] == pytest.approx([fr["mean_gaze_x"], fr["mean_gaze_y"]])
    sr = streams["saccades"]["first"]
    assert sac.row(0)[:2] == (sr["start_time"], sr["stop_time"] - sr["start_time"])
    assert json.loads(sac["value"][0])["amplitude_deg"] == pytest.approx(sr["amplitude_angle"])
    er = streams["events"]
    assert user.row(0) == (er["first"]["time"], 0, "event", "recording.begin")
    assert user.row(1)[0] == er["last_ts"] and user.row(1)[3] == "recording.end"


def test_neon_protobuf_imu_equals_flat_records(fixtures_dir: Path) -> None:
    folder = _neon(fixtures_dir)
    flat = read_pupil_neon(folder, imu_source="raw").streams["imu"]
    proto = read_pupil_neon(folder, imu_source="protobuf").streams["imu"]
    np.testing.assert_array_equal(flat.time_ns, proto.time_ns)
    np.testing.assert_array_equal(flat.data, proto.data)  # the same 969 packets, decoded from extimu ps1.raw
    assert "protobuf" in proto.meta["decoder"]
    with tempfile.TemporaryDirectory() as tmp:  # without imu.proto the built-in copy decodes the same
        copy = Path(tmp) / "rec"
        _copy_tree(folder, copy)
        (copy / "imu.proto").unlink()
        for f in copy.glob("imu ps1.*"):
            f.unlink()
        again = read_pupil_neon(copy).streams["imu"]
        np.testing.assert_array_equal(again.data, flat.data)
        assert "built-in" in again.meta["decoder"]


def test_neon_multipart_and_trimming(fixtures_dir: Path) -> None:
    folder = _neon(fixtures_dir)
    whole = read_pupil_neon(folder)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "rec"
        _copy_tree(folder, copy)
        (copy / "gaze_200hz.raw").unlink()
        (copy / "gaze_200hz.time").unlink()
        raw, time = (copy / "gaze ps1.raw").read_bytes(), (copy / "gaze ps1.time").read_bytes()
        # three parts named ps1, ps2, ps10: numeric, not lexical, part order
        cuts = [0, 500, 1200, 1788]
        for name, (a, b) in zip(("1", "2", "10"), itertools.pairwise(cuts), strict=True):
            (copy / f"gaze ps{name}.raw").write_bytes(raw[a * 8 : b * 8])
            (copy / f"gaze ps{name}.time").write_bytes(time[a * 8 : b * 8])
        parts = read_pupil_neon(copy).streams["gaze"]  # the real-time gaze, now without gaze_200hz
        np.testing.assert_array_equal(parts.time_ns, np.frombuffer(time, "<i8"))
        np.testing.assert_array_equal(parts.data, np.frombuffer(raw, "<f4").reshape(-1, 2) / [1600.0, 1200.0])
        np.testing.assert_array_equal(parts.time_ns, whole.streams["gaze"].time_ns)
        assert parts.meta["source_files"][-2:] == ["gaze ps10.raw", "gaze ps10.time"]
        # a raw part cut short mid-record: the partial record and its timestamp are dropped, and noted
        (copy / "gaze ps10.raw").write_bytes(raw[1200 * 8 : 1787 * 8 + 3])
        cut = read_pupil_neon(copy).streams["gaze"]
        assert cut.n_samples == 1787
        assert cut.meta["trimmed"][0]["file"] == "gaze ps10.raw" and cut.meta["trimmed"][0]["kept"] == 587


def test_neon_dispatch_and_store_round_trip(fixtures_dir: Path) -> None:
    folder = _neon(fixtures_dir)
    rec = read_pupil_neon(folder, user_id="u1", session_id="neon")
    assert_recording_equal(read(folder, user_id="u1", session_id="neon"), rec)
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        store.write(rec)
        assert_recording_equal(store.read("u1", "neon"), rec)


def test_neon_errors_name_the_file(fixtures_dir: Path) -> None:
    folder = _neon(fixtures_dir)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "rec"
        _copy_tree(folder, copy)
        (copy / "gaze.dtype").write_text("[('x', 'object')]")
        with pytest.raises(LoaderError, match=r"gaze.dtype"):
            read_pupil_neon(copy)
        (copy / "gaze.dtype").write_text("[('x', '<f4'), ('y', '<f4')]")
        t = np.frombuffer((copy / "gaze_200hz.time").read_bytes(), "<i8").copy()
        t[10] = 0
        (copy / "gaze_200hz.time").write_bytes(t.tobytes())
        with pytest.raises(LoaderError, match=r"gaze_200hz.time.*back in time"):
            read_pupil_neon(copy)
        with pytest.raises(LoaderError, match=r"imu_source"):
            read_pupil_neon(folder, imu_source="mystery")


NEON_TARGETS = [
    "gaze_200hz.raw", "gaze_200hz.time", "eye_state ps1.raw", "eye_state.dtype", "imu ps1.raw", "info.json",
    "event.txt", "event.time", "blinks ps1.raw", "fixations ps1.raw", "worn_200hz.raw", "extimu ps1.raw", "imu.proto",
]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_neon_corruption_keeps_the_contract(fixtures_dir: Path, data: st.DataObject) -> None:
    folder = _neon(fixtures_dir)
    target = data.draw(st.sampled_from(NEON_TARGETS))
    payload = (folder / target).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "demo_recording"
        _copy_tree(folder, copy)
        (copy / target).write_bytes(corrupt(payload, spec))
        options = {"imu_source": "protobuf"} if target in ("extimu ps1.raw", "imu.proto") else {}
        rec = check_reader_contract(read_pupil_neon, copy, **options)
        if rec is not None:
            check_writable(rec)


# ------------------------------------------------------------------------------------------- Neon Cloud

CLOUD = {
    "gaze.csv": (
        "section id,recording id,timestamp [ns],gaze x [px],gaze y [px],worn,fixation id,blink id,"
        "azimuth [deg],elevation [deg]\n"
        "s1,r1,1700000000000000000,800.0,600.0,1,,,0.0,0.0\n"
        "s1,r1,1700000000005000000,1600.0,0.0,1,1,,90.0,0.0\n"
        "s1,r1,1700000000010000001,,,0,,1,,\n"
        "s1,r1,1700000000015000000,400.0,300.0,1,,,0.0,90.0\n"
    ),
    "3d_eye_states.csv": (
        "section id,recording id,timestamp [ns],pupil diameter left [mm],pupil diameter right [mm],"
        "eyeball center left x [mm],eyeball center left y [mm],eyeball center left z [mm],"
        "eyeball center right x [mm],eyeball center right y [mm],eyeball center right z [mm],"
        "optical axis left x,optical axis left y,optical axis left z,optical axis right x,optical axis right y,"
        "optical axis right z,eyelid angle top left [rad],eyelid angle bottom left [rad],eyelid aperture left [mm],"
        "eyelid angle top right [rad],eyelid angle bottom right [rad],eyelid aperture right [mm]\n"
        "s1,r1,1700000000000000000,3.5,3.25,-30.0,12.0,-34.0,32.0,13.5,-37.5,0.0,0.6,0.8,0.0,0.0,1.0,"
        "-0.1,-0.7,6.5,-0.05,-0.75,8.0\n"
    ),
    "imu.csv": (
        "section id,recording id,timestamp [ns],gyro x [deg/s],gyro y [deg/s],gyro z [deg/s],acceleration x [g],"
        "acceleration y [g],acceleration z [g],roll [deg],pitch [deg],yaw [deg],quaternion w,quaternion x,"
        "quaternion y,quaternion z\n"
        "s1,r1,1700000000000000000,180.0,0.0,-90.0,0.0,0.0,1.0,0.0,0.0,90.0,0.7071067811865476,0.0,0.0,"
        "0.7071067811865476\n"
    ),
    "blinks.csv": (
        "section id,recording id,blink id,start timestamp [ns],end timestamp [ns],duration [ms]\n"
        "s1,r1,1,1700000000010000001,1700000000160000001,150\n"
    ),
    "fixations.csv": (
        "section id,recording id,fixation id,start timestamp [ns],end timestamp [ns],duration [ms],fixation x [px],"
        "fixation y [px],azimuth [deg],elevation [deg]\n"
        "s1,r1,1,1700000000005000000,1700000000305000000,300,1600.0,0.0,30.5,-2.0\n"
    ),
    "saccades.csv": (
        "section id,recording id,saccade id,start timestamp [ns],end timestamp [ns],duration [ms],amplitude [px],"
        "amplitude [deg],mean velocity [px/s],peak velocity [px/s]\n"
        "s1,r1,1,1700000000305000000,1700000000345000000,40,120.5,8.25,3000.0,5200.0\n"
    ),
    "events.csv": (
        "recording id,timestamp [ns],name,type\n"
        "r1,1699999999990000000,recording.begin,recording\nr1,1700000000020000000,stimulus onset,cloud\n"
    ),
}


def _cloud_folder(tmp: Path) -> Path:
    folder = tmp / "2023-11-14_r1"
    folder.mkdir()
    for name, text in CLOUD.items():
        (folder / name).write_text(text)
    (folder / "info.json").write_text(json.dumps({"recording_id": "r1", "start_time": 1699999999990000000,
                                                  "module_serial_number": "123456"}))
    return folder


def test_cloud_export_conversions() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _cloud_folder(Path(tmp))
        rec = read_pupil_cloud(folder)
        check_writable(rec)
        assert [v for v in validate(rec) if v.severity == "error"] == []
        gaze = rec.streams["gaze"]
        assert gaze.time_ns.tolist() == [1700000000000000000, 1700000000005000000, 1700000000010000001,
                                         1700000000015000000]
        g = gaze.data
        ch = {c: i for i, c in enumerate(gaze.channels)}
        assert g[0, ch["norm_x"]] == 0.5 and g[0, ch["norm_y"]] == 0.5  # 800/1600, 600/1200
        assert g[1, ch["norm_x"]] == 1.0 and g[1, ch["norm_y"]] == 0.0
        assert np.isnan(g[2]).all()  # blink: no gaze
        d = [ch[f"combined_dir_{a}"] for a in "xyz"]
        np.testing.assert_allclose(g[0, d], [0, 0, -1], atol=1e-15)  # straight ahead = OpenXR -Z
        np.testing.assert_allclose(g[1, d], [1, 0, 0], atol=1e-15)  # azimuth +90 = right
        np.testing.assert_allclose(g[3, d], [0, 1, 0], atol=1e-15)  # elevation +90 = up
        assert rec.streams["worn"].data[:, 0].tolist() == [1, 1, 0, 1]
        e = dict(zip(rec.streams["eye_state"].channels, rec.streams["eye_state"].data[0], strict=True))
        assert (e["left_pupil_diameter"], e["right_pupil_diameter"]) == (3.5, 3.25)
        assert [e[f"left_origin_{a}"] for a in "xyz"] == pytest.approx([-0.030, -0.012, 0.034])
        assert [e[f"right_dir_{a}"] for a in "xyz"] == [0.0, -0.0, -1.0]
        assert [e[f"left_dir_{a}"] for a in "xyz"] == pytest.approx([0.0, -0.6, -0.8])
        lid = dict(zip(rec.streams["eyelid"].channels, rec.streams["eyelid"].data[0], strict=True))
        assert lid["left_eyelid_aperture"] == 6.5 and lid["right_eyelid_angle_bottom"] == -0.75
        m = dict(zip(rec.streams["imu"].channels, rec.streams["imu"].data[0], strict=True))
        assert [m["gyro_x"], m["gyro_y"], m["gyro_z"]] == pytest.approx([math.pi, -math.pi / 2, 0.0])
        assert [m["accel_x"], m["accel_y"], m["accel_z"]] == pytest.approx([0.0, G, 0.0])  # 1 g up -> +Y
        # 90 degrees about the IMU's up axis (+Z) = 90 degrees about OpenXR +Y
        h = math.sqrt(0.5)
        assert [m["head_qx"], m["head_qy"], m["head_qz"], m["head_qw"]] == pytest.approx([0.0, h, 0.0, h])
        euler = rec.streams["imu_euler"].data[0]
        assert euler.tolist() == pytest.approx([0.0, 0.0, math.pi / 2])
        ev = rec.events
        assert ev["label"].to_list() == ["event", "fixation", "blink", "event", "saccade"]
        assert ev.row(2) == (1700000000010000001, 150_000_000, "blink", '{"id":"1"}')
        fix = json.loads(ev["value"][1])
        assert fix == {"id": "1", "gaze_x_px": 1600.0, "gaze_y_px": 0.0, "azimuth_deg": 30.5, "elevation_deg": -2.0}
        assert ev.row(1)[1] == 300_000_000
        assert ev.row(3)[2:] == ("event", "stimulus onset")
        assert json.loads(ev["value"][4])["amplitude_deg"] == 8.25
        assert rec.meta["utc_anchor"] == "1970-01-01T00:00:00+00:00" and rec.meta["recording_id"] == "r1"
        assert rec.meta["device"]["module_serial_number"] == "123456"
        assert_recording_equal(read(folder), rec)
        single = read_pupil_cloud(folder / "gaze.csv")
        assert set(single.streams) == {"gaze", "worn"}
        assert_recording_equal(read(folder / "gaze.csv"), single)
        with tempfile.TemporaryDirectory() as tmp2:
            store = xrdata.open_store(Path(tmp2) / "store")
            store.write(rec)
            assert_recording_equal(store.read(rec.user_id, rec.session_id), rec)


def test_cloud_invisible_resolution_and_errors() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _cloud_folder(Path(tmp))
        rec = read_pupil_cloud(folder / "gaze.csv", scene_resolution=(1088, 1080))
        assert rec.streams["gaze"].data[0, :2].tolist() == [800 / 1088, 600 / 1080]
        two = CLOUD["gaze.csv"].replace("s1,r1,1700000000015000000", "s1,r2,1700000000015000000")
        (folder / "gaze.csv").write_text(two)
        with pytest.raises(LoaderError, match=r"2 recordings"):
            read_pupil_cloud(folder)
        (folder / "gaze.csv").write_text(CLOUD["gaze.csv"].replace("400.0,300.0", "4OO.0,300.0"))
        with pytest.raises(LoaderError, match=r"gaze.csv.*'gaze x \[px\]' row 4"):
            read_pupil_cloud(folder)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_cloud_corruption_keeps_the_contract(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(CLOUD)))
    payload = CLOUD[name].encode()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = _cloud_folder(Path(tmp))
        (folder / name).write_bytes(corrupt(payload, spec))
        for target in (folder, folder / name):
            rec = check_reader_contract(read_pupil_cloud, target)
            if rec is not None:
                check_writable(rec)


# ------------------------------------------------------------------------------------------- Pupil Core

CORE_NEW = {
    "gaze_positions.csv": (
        "gaze_timestamp,world_index,confidence,norm_pos_x,norm_pos_y,base_data,gaze_point_3d_x,gaze_point_3d_y,"
        "gaze_point_3d_z,eye_center0_3d_x,eye_center0_3d_y,eye_center0_3d_z,gaze_normal0_x,gaze_normal0_y,"
        "gaze_normal0_z,eye_center1_3d_x,eye_center1_3d_y,eye_center1_3d_z,gaze_normal1_x,gaze_normal1_y,"
        "gaze_normal1_z\n"
        "5000.250000,0,0.98,0.25,0.75,5000.249-0 5000.251-1,0.0,0.0,1000.0,30.0,10.0,-20.0,0.0,0.0,1.0,-30.0,10.0,"
        "-20.0,0.0,0.6,0.8\n"
        "5000.258333,0,0.40,0.5,0.5,5000.258-0,200.0,-100.0,200.0,30.0,10.0,-20.0,0.0,0.0,1.0,,,,,,\n"
    ),
    "pupil_positions.csv": (
        "pupil_timestamp,world_index,eye_id,confidence,norm_pos_x,norm_pos_y,diameter,method,ellipse_center_x,"
        "ellipse_center_y,ellipse_axis_a,ellipse_axis_b,ellipse_angle,diameter_3d,model_confidence\n"
        "5000.249000,0,0,0.99,0.5,0.5,40.1,2d c++,96,96,40.1,38.0,12.0,,\n"
        "5000.249000,0,0,0.99,0.5,0.5,40.1,pye3d 0.3.0 real-time,96,96,40.1,38.0,12.0,3.9,1.0\n"
        "5000.251000,0,1,0.97,0.5,0.5,41.0,pye3d 0.3.0 real-time,96,96,41.0,39.0,10.0,4.1,1.0\n"
    ),
    "fixations.csv": (
        "id,start_timestamp,duration,start_frame_index,end_frame_index,norm_pos_x,norm_pos_y,dispersion,confidence,"
        "method,gaze_point_3d_x,gaze_point_3d_y,gaze_point_3d_z,base_data\n"
        "1,5000.300000,220.5,9,15,0.4,0.25,1.2,0.93,3d gaze,1.0,2.0,500.0,5000.3-0 5000.31-0\n"
    ),
    "blinks.csv": (
        "id,start_timestamp,duration,end_timestamp,start_frame_index,index,end_frame_index,confidence,"
        "filter_response,base_data\n"
        "1,5001.000000,0.15,5001.150000,30,32,35,0.81,0.5 0.6,5001.0 5001.1\n"
    ),
    "annotations.csv": "index,timestamp,label,duration\n12,5000.5,trial_start,\n",
}
CORE_OLD = {
    "gaze_positions.csv": (
        "timestamp,index,confidence,norm_pos_x,norm_pos_y,base_data\n"
        "320.10,0,0.9,0.2,0.1,320.09-0\n320.12,1,0.8,0.3,0.2,320.11-1\n"
    ),
    "pupil_positions.csv": (
        "timestamp,index,id,confidence,norm_pos_x,norm_pos_y,diameter,method,ellipse_center_x,ellipse_center_y,"
        "ellipse_axis_a,ellipse_axis_b,ellipse_angle,diameter_3d,model_confidence,model_id\n"
        "320.09,0,1,0.95,0.5,0.5,35.0,3d c++,80,80,35.0,34.0,5.0,3.2,0.8,1\n"
    ),
    "fixations.csv": (
        "id,start_timestamp,duration,start_frame,end_frame,norm_pos_x,norm_pos_y,dispersion,avg_pupil_size,confidence\n"
        "0,320.50,0.25,15,22,0.5,0.5,0.9,40.0,0.95\n"
    ),
}


def _core_folder(tmp: Path, files: dict[str, str], info: bool = True) -> Path:
    export = tmp / "rec" / "exports" / "000"
    export.mkdir(parents=True)
    for name, text in files.items():
        (export / name).write_text(text)
    if info:
        (tmp / "rec" / "info.player.json").write_text(json.dumps({"start_time_system_s": 1600000100.5,
                                                                  "start_time_synced_s": 100.25}))
    return export


def test_core_new_header_conversions() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export = _core_folder(Path(tmp), CORE_NEW)
        rec = read_pupil_core(export)
        check_writable(rec)
        assert [v for v in validate(rec) if v.severity == "error"] == []
        gaze = rec.streams["gaze"]
        assert gaze.time_ns.tolist() == [5000250000000, 5000258333000]  # pupil time s -> ns
        g = dict(zip(gaze.channels, gaze.data[0], strict=True))
        assert (g["norm_x"], g["norm_y"], g["confidence"]) == (0.25, 0.25, 0.98)  # 1 - 0.75: top-left origin
        assert [g[f"combined_dir_{a}"] for a in "xyz"] == [0.0, -0.0, -1.0]
        assert [g[f"combined_origin_{a}"] for a in "xyz"] == [0.0, 0.0, 0.0]
        assert [g[f"right_origin_{a}"] for a in "xyz"] == pytest.approx([0.030, -0.010, 0.020])  # eye0 = right
        assert [g[f"left_dir_{a}"] for a in "xyz"] == pytest.approx([0.0, -0.6, -0.8])  # eye1 = left
        g2 = dict(zip(gaze.channels, gaze.data[1], strict=True))
        assert [g2[f"combined_dir_{a}"] for a in "xyz"] == pytest.approx([2 / 3, 1 / 3, -2 / 3])
        assert math.isnan(g2["left_origin_x"])  # monocular row: the other eye is NaN
        pupil = rec.streams["pupil"]
        assert pupil.time_ns.tolist() == [5000249000000, 5000251000000]  # 3d rows only
        np.testing.assert_array_equal(pupil.data[0], [np.nan, 3.9, 0.99])
        np.testing.assert_array_equal(pupil.data[1], [4.1, np.nan, 0.97])
        ev = rec.events
        assert ev.row(0) == (5000300000000, 220_500_000, "fixation",
                             '{"confidence":0.93,"dispersion_deg":1.2,"id":"1","norm":[0.4,0.75]}')
        assert ev.row(1) == (5000500000000, 0, "annotation", "trial_start")
        assert ev.row(2)[:3] == (5001000000000, 150_000_000, "blink")
        assert rec.meta["fixation_duration_unit"] == "ms"
        # UTC of pupil-time zero = start_time_system_s - start_time_synced_s = 1600000000.25
        assert rec.meta["utc_anchor"] == "2020-09-13T12:26:40.250000+00:00"
        low = read_pupil_core(export, min_confidence=0.6).streams["gaze"]
        assert np.isnan(low.data[1, 0]) and low.data[1, 2] == 0.40
        assert_recording_equal(read(export), rec)
        single = read_pupil_core(export / "gaze_positions.csv")
        assert_recording_equal(read(export / "gaze_positions.csv"), single)
        with tempfile.TemporaryDirectory() as tmp2:
            store = xrdata.open_store(Path(tmp2) / "store")
            store.write(rec)
            assert_recording_equal(store.read(rec.user_id, rec.session_id), rec)


def test_core_old_header_conversions() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export = _core_folder(Path(tmp), CORE_OLD, info=False)
        rec = read_pupil_core(export)
        check_writable(rec)
        gaze = rec.streams["gaze"]
        assert gaze.meta["header_generation"] == "old" and gaze.channels == ["norm_x", "norm_y", "confidence"]
        assert gaze.time_ns.tolist() == [320100000000, 320120000000]
        np.testing.assert_allclose(gaze.data[:, 1], [0.9, 0.8])
        pupil = rec.streams["pupil"]
        np.testing.assert_array_equal(pupil.data, [[3.2, np.nan, 0.95]])  # id 1 = left eye
        assert rec.meta["fixation_duration_unit"] == "s"  # old detector: 0.25 s
        assert rec.events.row(0)[:3] == (320500000000, 250_000_000, "fixation")
        assert "utc_anchor" not in rec.meta
        (export.parent.parent / "info.csv").write_text(
            "key,value\nStart Time (System),1500000000.0\nStart Time (Synced),300.0\n")
        assert read_pupil_core(export).meta["utc_anchor"] == "2017-07-14T02:35:00+00:00"


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_core_corruption_keeps_the_contract(data: st.DataObject) -> None:
    files = data.draw(st.sampled_from([CORE_NEW, CORE_OLD]))
    name = data.draw(st.sampled_from(sorted(files)))
    payload = files[name].encode()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        export = _core_folder(Path(tmp), files)
        (export / name).write_bytes(corrupt(payload, spec))
        for target in (export, export / name):
            rec = check_reader_contract(read_pupil_core, target)
            if rec is not None:
                check_writable(rec)
