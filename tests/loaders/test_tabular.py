"""Mapping-driven CSV/TSV/JSON-lines logs: shipped mappings, Unity -> OpenXR conversion, time units, messy
files (byte-order marks, truncated last lines, blank columns and lines, headerless files, quoting), the
PicoNeo2Eye Unity layouts written as CSV logs, Aria speech.csv, robustness and store round trips."""

from __future__ import annotations

import json
import math
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
from xrdata.loaders.tabular import available_mappings, load_mapping, read_table
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable, validate

HEAD_POSE = (
    "\ufeffTimestamp,PosX,PosY,PosZ,RotW,RotX,RotY,RotZ,\n"  # BOM and a trailing blank column
    "15.5,0.1,1.6,0.25,0.5,0.5,-0.5,0.5,\n"
    "\n"  # a blank line
    '15.6,"0.2",1.6,-0.25,1,0,0,0,\n'  # a quoted field
    "15.7,0.3,1.6,,1,0,0,0,\n"  # a blank cell: NaN
    "15.8,0.4,1."  # cut short while the log was being written
)


def _write(tmp: str | Path, name: str, text: str | bytes) -> Path:
    p = Path(tmp) / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return p


def _round_trip(rec: xrdata.Recording) -> None:
    check_writable(rec)
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        store.write(rec)
        assert_recording_equal(store.read(rec.user_id, rec.session_id), rec)


def test_shipped_mappings_load() -> None:
    names = available_mappings()
    assert {"unity_vr_head_pose", "unity_tobii_gaze", "aria_speech", "openxr_quest_log", "unity_quest_log"} <= set(
        names
    )
    for name in names:
        assert load_mapping(name)["name"] == name


def test_unity_head_pose_messy_csv() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "head.csv", HEAD_POSE)
        rec = read_table(path, mapping="unity_vr_head_pose")
        assert rec.meta["encoding"] == "utf-8-sig"
        assert rec.meta["dropped_truncated_lines"] == 1 and rec.meta["blank_lines"] == 1
        s = rec.streams["head_pose"]
        assert s.time_ns.tolist() == [15_500_000_000, 15_600_000_000, 15_700_000_000]
        assert s.channels == ["head_px", "head_py", "head_pz", "head_qx", "head_qy", "head_qz", "head_qw"]
        # Unity (left-handed) -> OpenXR: z -> -z; (x, y, z, w) -> (-x, -y, z, w)
        np.testing.assert_array_equal(s.data[0], [0.1, 1.6, -0.25, -0.5, 0.5, 0.5, 0.5])
        np.testing.assert_array_equal(s.data[1], [0.2, 1.6, 0.25, -0.0, -0.0, 0.0, 1.0])
        assert math.isnan(s.data[2, 2])
        assert s.meta["reference_space"] == "local" and s.meta["source_frame"] == "unity"
        assert [v for v in validate(rec) if v.severity == "error"] == []
        assert_recording_equal(read(path), rec)  # read() finds the mapping from the header
        _round_trip(rec)


def test_unity_conversion_preserves_rotations() -> None:
    """The converted pose is the mirror image (z -> -z) of the Unity pose: check with rotation matrices."""
    rng = np.random.default_rng(3)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    x, y, z, w = (float(v) for v in q)
    rows = "\n".join([f"1,0,0,0,{w!r},{x!r},{y!r},{z!r}"])
    with tempfile.TemporaryDirectory() as tmp:
        s = read_table(_write(tmp, "h.csv", f"Timestamp,PosX,PosY,PosZ,RotW,RotX,RotY,RotZ\n{rows}\n"),
                       mapping="unity_vr_head_pose").streams["head_pose"]

    def matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
        return np.array([
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ])

    flip = np.diag([1.0, 1.0, -1.0])
    np.testing.assert_allclose(matrix(*s.data[0, 3:]), flip @ matrix(x, y, z, w) @ flip, atol=1e-12)


def test_headerless_tsv_with_custom_mapping_and_time_units() -> None:
    mapping = {
        "name": "lab_gaze", "format": "tsv", "header": False, "time": {"column": 0, "unit": "ms"},
        "streams": [
            {"name": "gaze", "modality": "gaze", "channels": [
                {"column": 1, "name": "norm_x"}, {"column": 2, "name": "norm_y"},
                {"column": 3, "name": "left_pupil_diameter", "scale": 1000.0}]},
            {"name": "extra", "modality": "other", "channels": [{"column": 4, "name": "temp", "unit": "degC"}]},
        ],
        "events": [{"label": "marker", "value_column": 5}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "log.txt", "1000\t0.5\t0.25\t0.0031\t36.5\t\n1005\t0.5\t0.25\t0.0032\t\tstart\n")
        rec = read_table(path, mapping=mapping)
        g = rec.streams["gaze"]
        assert g.time_ns.tolist() == [1_000_000_000, 1_005_000_000]  # integer ms, exact
        assert g.data[:, 2] == pytest.approx([3.1, 3.2])  # m -> mm by scale
        assert rec.streams["extra"].n_samples == 1  # the row without a value is not a sample of 'extra'
        assert rec.streams["extra"].meta["rows_without_values"] == 1
        assert rec.events.row(0) == (1_005_000_000, 0, "marker", "start")
        (Path(tmp) / "m.json").write_text(json.dumps(mapping))
        assert_recording_equal(read_table(path, mapping=Path(tmp) / "m.json"), rec)
        _round_trip(rec)


def test_decimal_comma_log() -> None:
    """A Unity log written under a German culture: ';' between fields, ',' before decimals."""
    mapping = {
        "name": "unity_de", "delimiter": ";", "decimal": ",", "frame": "unity", "time": {"column": "Zeit", "unit": "s"},
        "streams": [{"name": "head", "modality": "motion", "channels": [
            {"column": f"Pos{a}", "name": f"head_p{a.lower()}", "unit": "m"} for a in "XYZ"]}],
    }
    text = "Zeit;PosX;PosY;PosZ\n12,5;0,25;1,6;-1,5\n12,511;-0,125;1,6;2\n13;;1,6;1,0E-3\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "kopf.csv", text)
        rec = read_table(path, mapping=mapping)
        head = rec.streams["head"]
        assert head.time_ns.tolist() == [12_500_000_000, 12_511_000_000, 13_000_000_000]
        expected = np.array([[0.25, 1.6, 1.5], [-0.125, 1.6, -2.0], [np.nan, 1.6, -1e-3]])  # z negated (Unity)
        np.testing.assert_array_equal(head.data, expected)
        _round_trip(rec)
        with pytest.raises(LoaderError, match=r"kopf.csv: column 'Zeit' row 1 holds '12,5', which is not a "
                                              r"number; for numbers written with a decimal comma set \"decimal\""):
            read_table(path, mapping={**mapping, "decimal": "."})
        with pytest.raises(LoaderError, match=r"'decimal' ',' needs another 'delimiter'"):
            read_table(path, mapping={**mapping, "delimiter": ","})
        with pytest.raises(LoaderError, match=r"'decimal' must be '.' or ','"):
            read_table(path, mapping={**mapping, "decimal": "'"})


@pytest.mark.parametrize(
    ("cell", "unit", "expected"),
    [
        ("1700000000123456789", "ns", 1700000000123456789),
        ("1700000000123456", "us", 1700000000123456000),
        ("1700000000123.0", "ms", 1700000000123000000),
        ("12.3456789", "s", 12345678900),
        ("2024-03-01T12:00:00.5+01:00", "iso", 1709290800500000000),
        ("2024-03-01 11:00:00.5", "iso", 1709290800500000000),
    ],
)
def test_time_units(cell: str, unit: str, expected: int) -> None:
    mapping = {"name": "t", "time": {"column": "t", "unit": unit},
               "streams": [{"name": "v", "modality": "other", "channels": [{"column": "v", "name": "v"}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        rec = read_table(_write(tmp, "t.csv", f"t,v\n{cell},1\n"), mapping=mapping)
        assert rec.streams["v"].time_ns.tolist() == [expected]
        assert ("utc_anchor" in rec.meta) == (unit == "iso")


def test_jsonl_with_truncated_last_line_and_sorting() -> None:
    mapping = {"name": "events_log", "format": "jsonl", "time": {"column": "t_us", "unit": "us"},
               "streams": [{"name": "head", "modality": "motion", "channels": [
                   {"column": f"pose.p.{i}", "name": f"head_p{a}"} for i, a in enumerate("xyz")]}],
               "events": [{"label_column": "kind", "value_column": "text", "duration_column": "dur",
                           "duration_unit": "ms"}]}
    lines = [
        {"t_us": 20, "pose": {"p": [1.0, 2.0, 3.0]}},
        {"t_us": 10, "pose": {"p": [4.0, 5.0, 6.0]}, "kind": "note", "text": "hi", "dur": 1.5},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"t_us": 30, "pose": {"p": [7'
    with tempfile.TemporaryDirectory() as tmp:
        rec = read_table(_write(tmp, "log.jsonl", text), mapping=mapping)
        s = rec.streams["head"]
        assert s.time_ns.tolist() == [10_000, 20_000] and s.meta["reordered_backward_steps"] == 1
        np.testing.assert_array_equal(s.data, [[4, 5, 6], [1, 2, 3]])
        assert rec.meta["dropped_truncated_lines"] == 1
        assert rec.events.row(0) == (10_000, 1_500_000, "note", "hi")
        _round_trip(rec)


def test_tobii_gaze_layout_invalid_rays() -> None:
    header = ("Timestamp,ConvergenceDistance,ConvergenceDistanceIsValid,GazeRayOriginX,GazeRayOriginY,GazeRayOriginZ,"
              "GazeRayDirectionX,GazeRayDirectionY,GazeRayDirectionZ,GazeRayIsValid,IsLeftEyeBlinking,"
              "IsRightEyeBlinking")
    rows = "15.5,0.8,1,0.01,1.6,0.05,0.6,0,0.8,1,0,0\n15.51,0,0,0,0,0,0,0,0,0,1,1\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "gaze.csv", f"{header}\n{rows}")
        rec = read(path)
        assert rec.meta["mapping"] == "unity_tobii_gaze"
        g = rec.streams["gaze"]
        np.testing.assert_array_equal(g.data[0], [0.01, 1.6, -0.05, 0.6, 0.0, -0.8, 1.0])
        assert np.isnan(g.data[1, :6]).all() and g.data[1, 6] == 0.0  # invalid ray: NaN, valid 0
        extra = rec.streams["gaze_state"]
        assert extra.data[0].tolist() == [0.8, 1.0, 0.0, 0.0] and math.isnan(extra.data[1, 0])
        _round_trip(rec)


def _pico_csv_logs(fixtures_dir: Path, tmp: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The Unity.VRHeadPose and Unity.TobiiGaze streams of the PicoNeo2Eye XDF written as CSV logs."""
    pyxdf = pytest.importorskip("pyxdf")
    xdf = fixtures_dir / "labstreaminglayer_PicoNeo2Eye" / "test_pico_lsl.xdf"
    if not xdf.is_file():
        pytest.skip("PicoNeo2Eye fixture absent")
    streams, _ = pyxdf.load_xdf(str(xdf), synchronize_clocks=False, dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    pose, gaze = by_name["Unity.VRHeadPose"], by_name["Unity.TobiiGaze"]
    head_lines = ["Timestamp,PosX,PosY,PosZ,RotW,RotX,RotY,RotZ"]
    for t, row in zip(pose["time_stamps"], pose["time_series"], strict=True):
        head_lines.append(",".join([repr(float(t)), *(repr(float(v)) for v in row)]))
    labels = [c["label"][0] for c in gaze["info"]["desc"][0]["channels"][0]["channel"]]
    gaze_lines = [",".join(labels)]
    gaze_lines += [",".join(repr(float(v)) for v in row) for row in gaze["time_series"]]
    head = _write(tmp, "VRHeadPose.csv", "\r\n".join(head_lines) + "\r\n")
    gaze_path = _write(tmp, "TobiiGaze.csv", "\n".join(gaze_lines) + "\n")
    return head, gaze_path, {"pose_t0": float(pose["time_stamps"][0]), "n": len(pose["time_stamps"])}


def test_pico_unity_layouts_as_csv_logs(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    ref = reference["xdf"]["files"]["labstreaminglayer_PicoNeo2Eye/test_pico_lsl.xdf"]["raw"]["streams"]
    ref_pose = next(s for s in ref if s["name"] == "Unity.VRHeadPose")
    ref_gaze = next(s for s in ref if s["name"] == "Unity.TobiiGaze")
    with tempfile.TemporaryDirectory() as tmp:
        head, gaze, info = _pico_csv_logs(fixtures_dir, Path(tmp))
        rec = read(head)
        s = rec.streams["head_pose"]
        assert s.n_samples == ref_pose["shape"][0] == info["n"]
        assert abs(int(s.time_ns[0]) - round(ref_pose["first_time_stamp"] * 1e9)) <= 1000
        px, py, pz, qw, qx, qy, qz = ref_pose["first_sample"]
        np.testing.assert_array_equal(s.data[0], [px, py, -pz, -qx, -qy, qz, qw])
        assert [v for v in validate(rec) if v.severity == "error"] == []
        grec = read(gaze)
        g = grec.streams["gaze"]
        first = ref_gaze["first_sample"]
        assert g.n_samples == ref_gaze["shape"][0]
        assert g.time_ns[0] == round(first[0] * 1e9)  # the layout's own Timestamp column (Unity time, s)
        np.testing.assert_array_equal(g.data[0], [*first[3:5], -first[5], *first[6:8], -first[8], first[9]])
        _round_trip(rec)
        _round_trip(grec)


def test_aria_speech_mapping(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    path = fixtures_dir / "projectaria_tools/gen1/aria_everyday_activities_test_data/speech.csv"
    if not path.is_file():
        pytest.skip("Aria fixture absent")
    ref = reference["csv"]["files"]["projectaria_tools/gen1/aria_everyday_activities_test_data/speech.csv"]
    rec = read_table(path, mapping="aria_speech")
    start, end, word, conf = ref["first_row"]
    assert rec.events.height == ref["shape"][0]
    assert rec.events.row(0) == (start, end - start, "speech", word)
    assert rec.streams["speech_confidence"].data[0, 0] == conf
    _round_trip(rec)


def test_quest_logs_with_hands_controllers_and_events() -> None:
    cols = ["time_ns", *[f"head_{c}" for c in ("px", "py", "pz", "qx", "qy", "qz", "qw")],
            *[f"{s}_ctrl_{c}" for s in ("left", "right") for c in ("px", "py", "pz", "qx", "qy", "qz", "qw")],
            "left_confidence", "right_confidence", "left_wrist_px", "left_wrist_py", "left_wrist_pz",
            "left_index_tip_px", "left_index_tip_py", "left_index_tip_pz", "right_wrist_px", "right_wrist_py",
            "right_wrist_pz", "event"]
    head = "0,1.6,0,0,0,0,1"
    ctrl = "0.2,1.0,-0.3,0,0,0,1," * 2
    rows = [
        f"1000,{head},{ctrl}1,0,0.1,1.2,-0.4,0.12,1.25,-0.5,0.3,1.1,-0.4,",
        f"2000,{head},{','.join([''] * 14)},1,1,0.1,1.2,-0.4,,,,0.3,1.1,-0.4,grab",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "quest.csv", ",".join(cols) + "\n" + "\n".join(rows) + "\n")
        rec = read(path)
        assert rec.meta["mapping"] == "openxr_quest_log"
        assert rec.streams["head_pose"].n_samples == 2
        assert rec.streams["controllers"].n_samples == 1  # the second row logged no controller
        hands = rec.streams["hands"]
        assert hands.data.shape == (2, 2, 26, 9)
        ch = {c: i for i, c in enumerate(hands.channels)}
        wrist, index_tip = 1, 10
        np.testing.assert_array_equal(hands.data[0, 0, wrist, [ch["px"], ch["py"], ch["pz"]]], [0.1, 1.2, -0.4])
        assert hands.data[0, 0, index_tip, ch["pz"]] == -0.5
        assert np.isnan(hands.data[0, 1, :, :8]).all() and (hands.data[0, 1, :, ch["confidence"]] == 0).all()
        assert np.isnan(hands.data[1, 0, index_tip, ch["px"]])  # blank cells: NaN
        assert np.isnan(hands.data[0, 0, 0]).sum() == 8  # palm not logged: NaN (confidence kept)
        assert rec.events.row(0) == (2000, 0, "marker", "grab")
        _round_trip(rec)
        # The same log written from Unity: time in seconds in 'time', left-handed coordinates.
        text = path.read_text().replace("time_ns,", "time,", 1)
        text = text.replace("\n1000,", "\n1.0,").replace("\n2000,", "\n2.0,")
        urec = read(_write(tmp, "unity.csv", text))
        assert urec.meta["mapping"] == "unity_quest_log"
        np.testing.assert_array_equal(urec.streams["head_pose"].data[0], [0, 1.6, -0.0, -0.0, -0.0, 0, 1])
        assert urec.streams["hands"].data[0, 0, 1, 2] == 0.4


def test_errors_name_the_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "bad.csv", "Timestamp,PosX,PosY,PosZ,RotW,RotX,RotY,RotZ\n1,0,0,x,1,0,0,0\n")
        with pytest.raises(LoaderError, match=r"bad.csv.*'PosZ' row 1.*not a number"):
            read_table(path, mapping="unity_vr_head_pose")
        other = _write(tmp, "other.csv", "a,b\n1,2\n")
        with pytest.raises(LoaderError, match=r"other.csv.*no shipped mapping"):
            read_table(other)
        with pytest.raises(LoaderError, match=r"other.csv.*no column 'PosX'"):
            read_table(other, mapping={**load_mapping("unity_vr_head_pose"), "time": {"column": "a", "unit": "s"}})
        with pytest.raises(LoaderError, match=r"not a canonical motion channel"):
            load_mapping({"name": "x", "time": {"column": "a"}, "streams": [
                {"name": "s", "modality": "motion", "channels": [{"column": "b", "name": "head_x"}]}]})
        with pytest.raises(LoaderError, match=r"must be in 'm'"):
            load_mapping({"name": "x", "time": {"column": "a"}, "streams": [
                {"name": "s", "modality": "motion", "channels": [{"column": "b", "name": "head_px", "unit": "mm"}]}]})
        with pytest.raises(LoaderError, match=r"neither a shipped mapping"):
            load_mapping("no_such_mapping")
        ragged = _write(tmp, "ragged.csv", "Timestamp,PosX,PosY,PosZ,RotW,RotX,RotY,RotZ\n1,0,0,0,1,0,0,0,9,9\n")
        with pytest.raises(LoaderError, match=r"ragged.csv.*well-formed"):
            read_table(ragged, mapping="unity_vr_head_pose")
        with pytest.raises(LoaderError, match=r"empty.csv.*empty"):
            read_table(_write(tmp, "empty.csv", ""), mapping="unity_vr_head_pose")


SAMPLES = {
    "head.csv": (HEAD_POSE, "unity_vr_head_pose"),
    "gaze.csv": ("Timestamp,ConvergenceDistance,ConvergenceDistanceIsValid,GazeRayOriginX,GazeRayOriginY,"
                 "GazeRayOriginZ,GazeRayDirectionX,GazeRayDirectionY,GazeRayDirectionZ,GazeRayIsValid,"
                 "IsLeftEyeBlinking,IsRightEyeBlinking\n15.5,0.8,1,0.01,1.6,0.05,0.6,0,0.8,1,0,0\n"
                 "15.51,0,0,0,0,0,0,0,0,0,1,1\n", "unity_tobii_gaze"),
    "speech.csv": ("startTime_ns,endTime_ns,written,confidence\n101217000000,102217000000,and,0.02\n"
                   "128657000000,129657000000,\"what, now\",0.9\n", "aria_speech"),
}


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_corrupted_logs_keep_the_contract(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SAMPLES)))
    text, mapping = SAMPLES[name]
    payload = text.encode("utf-8")
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, name, corrupt(payload, spec))
        rec = check_reader_contract(read_table, path, mapping=mapping)
        if rec is not None:
            check_writable(rec)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_speech_fixture_keeps_the_contract(fixtures_dir: Path, data: st.DataObject) -> None:
    src = fixtures_dir / "projectaria_tools/gen1/aria_everyday_activities_test_data/speech.csv"
    if not src.is_file():
        pytest.skip("Aria fixture absent")
    payload = src.read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "speech.csv", corrupt(payload, spec))
        rec = check_reader_contract(read_table, path, mapping="aria_speech")
        if rec is not None:
            check_writable(rec)
