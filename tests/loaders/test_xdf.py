"""read_xdf against the pyxdf reference values (REFERENCE.json key ``xdf``, both "default" and "raw" clock
handling), corruption robustness, store round trips, the stream mapping rules, and the XDF writer."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xrdata
import xrdata.loaders
from xrdata.errors import LoaderError
from xrdata.loaders.xdf import XdfWriter, read_xdf, write_synthetic_xdf
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable

pyxdf = pytest.importorskip("pyxdf")

FIXTURES = [
    "xdf-modules_example-files/minimal.xdf",
    "xdf-modules_example-files/empty_streams.xdf",
    "labstreaminglayer_PicoNeo2Eye/test_pico_lsl.xdf",
]
MODES = {"default": {}, "raw": {"synchronize_clocks": False, "dejitter": False}}
US = 1_000  # 1 us in ns: the timestamp tolerance against the reference reader


def _unity_pose(ref: list[float]) -> list[float]:
    """PicoNeo2Eye head pose [PosX, PosY, PosZ, RotW, RotX, RotY, RotZ] (Unity) -> OpenXR head_px..head_qw:
    mirror z: p (x, y, -z), q (-x, -y, z, w)."""
    px, py, pz, qw, qx, qy, qz = ref
    return [px, py, -pz, -qx, -qy, qz, qw]


def _unity_gaze(ref: list[float]) -> list[float]:
    """TobiiXR gaze row -> combined_origin (x, y, -z), combined_dir (x, y, -z), combined_valid."""
    return [ref[3], ref[4], -ref[5], ref[6], ref[7], -ref[8], ref[9]]


# What each numeric fixture stream must become: (stream names, modality per stream, channels, first sample
# computed from the reference first sample with the documented conversion).
EXPECTED: dict[tuple[str, str], list[tuple[str, str, list[str], Any]]] = {
    # EEG without units in the desc: microvolts assumed (XDF spec), scaled to volts; no labels -> ch1..
    (FIXTURES[0], "SendDataC"): [("SendDataC", "eeg", ["ch1", "ch2", "ch3"], lambda r: [x * 1e-6 for x in r])],
    (FIXTURES[1], "Empty data stream: test stream 0 counter"): [
        ("Empty_data_stream_test_stream_0_counter", "other", ["ch:00"], None)],
    (FIXTURES[1], "Data stream: test stream 0 counter"): [
        ("Data_stream_test_stream_0_counter", "other", ["ch:00"], lambda r: r)],
    (FIXTURES[2], "Unity.VRHeadPose"): [
        ("Unity_VRHeadPose", "motion", ["head_px", "head_py", "head_pz", "head_qx", "head_qy", "head_qz", "head_qw"],
         _unity_pose)],
    (FIXTURES[2], "Unity.TobiiGaze"): [
        ("Unity_TobiiGaze", "gaze", ["combined_origin_x", "combined_origin_y", "combined_origin_z", "combined_dir_x",
                                     "combined_dir_y", "combined_dir_z", "combined_valid"], _unity_gaze),
        ("Unity_TobiiGaze_other", "other", ["Timestamp", "ConvergenceDistance", "ConvergenceDistanceIsValid",
                                            "IsLeftEyeBlinking", "IsRightEyeBlinking"],
         lambda r: [r[0], r[1], r[2], r[10], r[11]])],
}


# ------------------------------------------------------------------------------------- reference values


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rel", FIXTURES)
def test_matches_reference(fixtures_dir: Path, reference: dict[str, Any], rel: str, mode: str) -> None:
    ref = reference["xdf"]["files"][rel][mode]
    rec = read_xdf(fixtures_dir / rel, user_id="u1", **MODES[mode])
    check_writable(rec)
    assert rec.user_id == "u1" and rec.session_id == Path(rel).stem
    assert rec.meta["source_files"] == [Path(rel).name]
    assert rec.meta["time_processing"] == {"synchronize_clocks": mode == "default", "dejitter": mode == "default"}
    # the header datetime does not anchor the LSL clock: kept, utc_anchor unset
    assert "utc_anchor" not in rec.meta
    if "datetime" in ref["header_info"]:
        assert rec.meta["recording_datetime"][:19] == ref["header_info"]["datetime"][:19]
    # every stream kept, in file (StreamHeader) order
    listing = rec.meta["xdf_streams"]
    assert [s["stream_id"] for s in listing] == ref["stream_order"]
    assert [s["name"] for s in listing] == [s["name"] for s in ref["streams"]]
    names_in_order = [n for entry in listing if entry["stored_as"] != "events" for n in entry["stored_as"]]
    assert list(rec.streams) == names_in_order
    for rs, entry in zip(ref["streams"], listing, strict=True):
        if rs["dtype"] == "list[str]":
            _check_events(rec, rs, entry)
        else:
            _check_numeric(rec, rs, entry, rel)


def _check_events(rec: xrdata.Recording, rs: dict[str, Any], entry: dict[str, Any]) -> None:
    assert entry["stored_as"] == "events" and entry["label"] == rs["name"]
    ev = rec.events.filter(rec.events["label"] == rs["name"])
    assert ev.height == rs["n_time_stamps"] == rs["shape"][0]
    meta = next(m for m in rec.meta["event_streams"].values() if m["label"] == rs["name"])
    assert meta["n_events"] == rs["n_time_stamps"] and meta["source_id"] == (rs["source_id"] or "")
    assert meta["footer_sample_count"] == int(rs["footer_sample_count"])
    assert meta["n_clock_offsets"] == rs["n_clock_offsets"]
    if rs["n_time_stamps"]:
        assert abs(ev["time_ns"][0] - rs["first_time_stamp"] * 1e9) <= US
        assert abs(ev["time_ns"][-1] - rs["last_time_stamp"] * 1e9) <= US
        assert ev["value"][0] == rs["first_sample"][0]
        assert (ev["duration_ns"] == 0).all()


def _check_numeric(rec: xrdata.Recording, rs: dict[str, Any], entry: dict[str, Any], rel: str) -> None:
    expected = EXPECTED[(rel, rs["name"])]
    assert entry["stored_as"] == [e[0] for e in expected]
    n_channels = 0
    for name, modality, channels, first in expected:
        s = rec.streams[name]
        n_channels += len(s.channels)
        assert s.modality == modality and s.channels == channels
        assert s.data.shape == (rs["shape"][0], len(channels))
        assert s.rate_hz == (rs["nominal_srate"] or None)
        assert s.meta["nominal_srate"] == rs["nominal_srate"]
        assert s.meta["effective_srate"] == pytest.approx(rs["effective_srate"], rel=1e-9)
        assert s.meta["lsl_name"] == rs["name"] and s.meta["lsl_type"] == rs["type"]
        assert s.meta["source_id"] == (rs["source_id"] or "") and s.meta["xdf_stream_id"] == rs["stream_id"]
        assert s.meta["channel_format"] == rs["channel_format"] and s.meta["channel_count"] == rs["channel_count"]
        assert s.meta["n_clock_offsets"] == rs["n_clock_offsets"]
        assert s.meta["footer_sample_count"] == int(rs["footer_sample_count"])
        assert s.meta["n_samples_loaded"] == rs["shape"][0]
        assert s.meta["segments"] == rs["segments"]
        if rs["channel_labels"]:
            assert set(s.meta["source_labels"]) <= set(rs["channel_labels"])
        want_dtype = np.int32 if rs["channel_format"] == "int32" else np.float32
        assert s.data.dtype == want_dtype
        t = s.time_ns
        assert t.dtype == np.int64 and (np.diff(t) >= 0).all()
        if rs["shape"][0]:
            assert abs(int(t[0]) - rs["first_time_stamp"] * 1e9) <= US
            assert abs(int(t[-1]) - rs["last_time_stamp"] * 1e9) <= US
            np.testing.assert_allclose(s.data[0].astype(np.float64), first(rs["first_sample"]), rtol=1e-6, atol=0)
    assert n_channels == rs["channel_count"]


def test_pico_real_headset_details(fixtures_dir: Path) -> None:
    rec = read_xdf(fixtures_dir / FIXTURES[2])
    head, gaze = rec.streams["Unity_VRHeadPose"], rec.streams["Unity_TobiiGaze"]
    for s in (head, gaze):
        assert s.meta["source_frame"] == "unity" and "-z" in s.meta["frame_conversion"]
        assert s.meta["reference_space"] == "local"
        # footer says 2191 samples, the file holds 2192: all kept, both recorded
        assert s.meta["footer_sample_count"] == 2191 and s.n_samples == 2192 and "footer_mismatch" in s.meta
        assert s.rate_hz == 20.0 and s.meta["effective_srate"] == pytest.approx(71.82, abs=0.01)
    assert rec.streams["Unity_TobiiGaze_other"].meta["companion_of"] == "Unity_TobiiGaze"
    # while both eyes blink the source sends a (0, 0, 0) direction with GazeRayIsValid = 1: that is no gaze
    other = rec.streams["Unity_TobiiGaze_other"].data
    lost = np.isnan(gaze.data[:, 3])
    assert lost.sum() == gaze.meta["zero_direction_set_nan"] == 62
    assert (gaze.data[lost, 6] == 0).all() and np.isnan(gaze.data[lost, :6]).all()
    assert (other[lost, 3] + other[lost, 4] >= 1).all()  # a blink flag is set for each of them
    norms = np.linalg.norm(gaze.data[~lost, 3:6], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    q = head.data[:, 3:7]
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    # marker JSON strings kept verbatim as event values
    ev = rec.events
    assert ev.height == 46 and ev["label"].unique().to_list() == ["Unity.GameEvents"]
    assert ev["value"][0].startswith('{"ObjectInfo": {"_hasFocus":true,"_identity":"Cube0"')
    assert rec.meta["recording_datetime"] == "2020-09-21T16:27:55-04:00"


def test_empty_streams_kept(fixtures_dir: Path) -> None:
    rec = read_xdf(fixtures_dir / FIXTURES[1])
    empty = rec.streams["Empty_data_stream_test_stream_0_counter"]
    assert empty.data.shape == (0, 1) and empty.data.dtype == np.float32 and empty.time_ns.shape == (0,)
    assert empty.meta["footer_sample_count"] == 0
    counter = rec.streams["Data_stream_test_stream_0_counter"]
    np.testing.assert_array_equal(counter.data[:, 0], np.arange(10, dtype=np.int32))
    ev = rec.meta["event_streams"]
    assert ev["Empty marker stream: test stream 0 counter"]["n_events"] == 0
    assert ev["ctrl"]["n_events"] == 1 and rec.events["value"].to_list() == ['{"state": 2}']


@pytest.mark.parametrize("rel", FIXTURES)
def test_store_round_trip_and_dispatch(fixtures_dir: Path, rel: str) -> None:
    rec = read_xdf(fixtures_dir / rel, user_id="u1")
    assert_recording_equal(xrdata.loaders.read(fixtures_dir / rel, user_id="u1"), rec)
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        store.write(rec)
        assert_recording_equal(store.read("u1", rec.session_id), rec)


def test_xdfz_reads_like_xdf(fixtures_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        z = Path(tmp) / "test_pico_lsl.xdfz"
        z.write_bytes(gzip.compress((fixtures_dir / FIXTURES[2]).read_bytes()))
        a = read_xdf(z)
        b = read_xdf(fixtures_dir / FIXTURES[2])
        b.meta["source_files"] = ["test_pico_lsl.xdfz"]
        assert_recording_equal(a, b)
        assert xrdata.loaders.read(z).streams.keys() == b.streams.keys()


# ------------------------------------------------------------------------------------- robustness


def _robustness(fixtures_dir: Path, rel: str, spec: tuple[list[tuple[int, int]], int]) -> None:
    payload = (fixtures_dir / rel).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(rel).name
        path.write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(read_xdf, path)
        if rec is not None:
            check_writable(rec)


@pytest.mark.parametrize("rel", FIXTURES)
def test_corruption_contract(fixtures_dir: Path, rel: str) -> None:
    size = (fixtures_dir / rel).stat().st_size

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(spec=corruptions(size))
    def run(spec: tuple[list[tuple[int, int]], int]) -> None:
        _robustness(fixtures_dir, rel, spec)

    run()


def test_corrupt_sample_count_is_refused_quickly(fixtures_dir: Path) -> None:
    """A corrupt count in a string Samples chunk would make pyxdf allocate billions of list entries."""
    b = bytearray((fixtures_dir / FIXTURES[2]).read_bytes())
    pos = 4
    while True:  # find the first Samples chunk of the marker stream (id 3)
        nb = b[pos]
        length = int.from_bytes(b[pos + 1 : pos + 1 + nb], "little")
        start = pos + 1 + nb
        if b[start] == 3 and int.from_bytes(b[start + 2 : start + 6], "little") == 3:
            break
        pos = start + length
    assert b[start + 6] == 4  # LabRecorder writes 4-byte sample counts
    b[start + 10] = 0x7F
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bad count.xdf"
        path.write_bytes(bytes(b))
        with pytest.raises(LoaderError, match=r"bad count\.xdf.*cannot fit"):
            read_xdf(path)


def test_not_xdf_and_missing_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.xdf"
        p.write_bytes(b"NOPE" * 10)
        with pytest.raises(LoaderError, match=r"x\.xdf"):
            read_xdf(p)
        with pytest.raises(LoaderError, match=r"missing\.xdf"):
            read_xdf(Path(tmp) / "missing.xdf")


# ------------------------------------------------------------------------------ mapping, clocks, writer


def _write(path: Path, streams: list[dict[str, Any]]) -> None:
    """Write an XDF file with XdfWriter: each dict has header kwargs plus ``t`` and ``values``."""
    with XdfWriter(path) as w:
        for sid, s in enumerate(streams, start=1):
            s = dict(s)
            t, values = s.pop("t"), s.pop("values")
            w.add_stream(sid, **s)
            w.write_samples(sid, t, values)


def test_writer_round_trips_through_pyxdf() -> None:
    rng = np.random.default_rng(3)
    t = 500.0 + np.cumsum(rng.uniform(0.001, 0.01, 300))
    f64 = rng.normal(size=(300, 5))
    i16 = rng.integers(-32768, 32767, size=(300, 2), dtype=np.int16)
    strings = [[f"m{i} ü <&>", ""] for i in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "w.xdf"
        with XdfWriter(p) as w:
            w.add_stream(7, "A", "data", "double64", 0.0, labels=list("abcde"), units="m")
            w.add_stream(9, "B", "data", "int16", 100.0, n_channels=2)
            w.add_stream(11, "C", "Markers", "string", 0.0, n_channels=2)
            w.write_samples(7, t[:100], f64[:100])
            w.write_samples(9, t, i16)
            w.write_samples(7, t[100:], f64[100:])
            w.write_samples(11, t[:4], strings)
            w.write_clock_offset(7, 501.0, 0.25)
        streams, _ = pyxdf.load_xdf(str(p), synchronize_clocks=False, dejitter_timestamps=False)
    a, b, c = streams
    np.testing.assert_array_equal(a["time_stamps"], t)
    np.testing.assert_array_equal(a["time_series"], f64)
    np.testing.assert_array_equal(b["time_series"], i16)
    assert b["time_series"].dtype == np.int16
    assert c["time_series"] == strings
    assert [ch["label"][0] for ch in a["info"]["desc"][0]["channels"][0]["channel"]] == list("abcde")
    assert a["footer"]["info"]["sample_count"] == ["300"]
    assert a["clock_times"] == [501.0] and a["clock_values"] == [0.25]


def test_synthetic_xdf() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "synthetic.xdf"
        info = write_synthetic_xdf(p, 2.5, eeg_channels=8, eeg_rate=250.0, seed=1)
        assert info == {"bytes": p.stat().st_size, "EEG": 625, "Unity.Gaze": 300, "Unity.HeadPose": 225,
                        "Unity.Events": 2}
        streams, _ = pyxdf.load_xdf(str(p), synchronize_clocks=False, dejitter_timestamps=False)
        raw = {s["info"]["name"][0]: s for s in streams}
        rec = read_xdf(p, synchronize_clocks=False, dejitter=False)
    check_writable(rec)
    eeg = rec.streams["EEG"]
    assert eeg.channels == ["Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8"] and eeg.units == ["V"] * 8
    np.testing.assert_allclose(eeg.data, raw["EEG"]["time_series"] * np.float32(1e-6), rtol=1e-6)
    np.testing.assert_array_equal(eeg.time_ns, np.round(1000.0e9 + np.arange(625) * 4e6).astype(np.int64))
    gaze = rec.streams["Unity_Gaze"]
    assert gaze.modality == "gaze" and "combined_dir_z" in gaze.channels and "left_pupil_diameter" in gaze.channels
    src = raw["Unity.Gaze"]["time_series"]
    ok = src[:, 6] > 0
    np.testing.assert_array_equal(gaze.data[ok, gaze.channels.index("combined_dir_z")], -src[ok, 5])
    assert np.isnan(gaze.data[~ok, gaze.channels.index("combined_dir_z")]).all()
    head = rec.streams["Unity_HeadPose"]
    np.testing.assert_array_equal(head.data[:, 6], raw["Unity.HeadPose"]["time_series"][:, 3])  # qw kept
    assert rec.events["value"].to_list() == ["trial 0", "trial 1"]


def test_eeg_units_and_companion() -> None:
    vals = np.array([[10.0, 2.0, 1e-5, 5.0], [20.0, 4.0, 2e-5, 6.0]], np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "eeg units.xdf"
        _write(p, [dict(name="amp", type="EEG", channel_format="float32", nominal_srate=500.0,
                        labels=["Cz", "Pz", "Oz", "TRIG"], units=["uV", "millivolts", "V", ""],
                        channel_types=["EEG", "EEG", "EEG", "TRIGGER"], t=[1.0, 1.002], values=vals)])
        rec = read_xdf(p)
    eeg, other = rec.streams["amp"], rec.streams["amp_other"]
    assert eeg.channels == ["Cz", "Pz", "Oz"] and eeg.units == ["V"] * 3 and "assumed_unit" not in eeg.meta
    np.testing.assert_allclose(eeg.data, vals[:, :3] * np.array([1e-6, 1e-3, 1.0], np.float32), rtol=1e-6)
    assert other.channels == ["TRIG"] and other.modality == "other" and other.meta["companion_of"] == "amp"
    np.testing.assert_array_equal(other.data[:, 0], vals[:, 3])


def test_mapping_overrides_and_audio() -> None:
    pose = np.array([[0.1, 1.6, 0.5, 0.0, 0.0, 0.0, 1.0, 42.0]], np.float32)
    pcm = np.array([[-32768, 16384], [0, 32767]], np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "mapping.xdf"
        _write(p, [
            dict(name="Rigid Body", type="MoCap", channel_format="float32", nominal_srate=90.0,
                 labels=["X", "Y", "Z", "QX", "QY", "QZ", "QW", "Err"], t=[2.0], values=pose),
            dict(name="mic", type="Audio", channel_format="int16", nominal_srate=16000.0, n_channels=2,
                 t=[2.0, 2.0000625], values=pcm),
        ])
        plain = read_xdf(p)
        assert plain.streams["Rigid_Body"].modality == "other"  # a rigid body is not the head
        mapping = {"Rigid Body": {"modality": "motion", "frame": "unity", "channels": {
            "X": "head_px", "Y": "head_py", "Z": "head_pz", "QX": "head_qx", "QY": "head_qy", "QZ": "head_qz",
            "QW": "head_qw"}}}
        rec = read_xdf(p, mapping=mapping)
        with pytest.raises(LoaderError, match=r"mapping\.xdf.*not a canonical motion channel"):
            read_xdf(p, mapping={"MoCap": {"modality": "motion", "channels": {"X": "head_x"}}})
        with pytest.raises(LoaderError, match=r"mapping\.xdf.*head_py"):
            read_xdf(p, mapping={"MoCap": {"modality": "motion", "channels": {"X": "head_px"}}})
        with pytest.raises(LoaderError, match=r"mapping\.xdf.*unknown key"):
            read_xdf(p, mapping={"mic": {"modalty": "audio"}})
    check_writable(rec)
    head = rec.streams["Rigid_Body"]
    assert head.modality == "motion" and head.meta["source_frame"] == "unity"
    np.testing.assert_allclose(head.data[0], [0.1, 1.6, -0.5, -0.0, -0.0, 0.0, 1.0])
    assert rec.streams["Rigid_Body_other"].channels == ["Err"]
    audio = rec.streams["mic"]
    assert audio.channels == ["left", "right"] and audio.data.dtype == np.float32
    np.testing.assert_array_equal(audio.data, pcm / np.float32(32768))


def test_gaze_units_and_unconvertible_columns() -> None:
    labels = ["LeftGazeOriginX", "LeftGazeOriginY", "LeftGazeOriginZ", "RightGazeOriginX", "RightGazeOriginY",
              "RightGazeOriginZ", "LeftPupilDiameter", "Confidence"]
    units = ["mm", "mm", "mm", "px", "px", "px", "mm", ""]
    vals = np.array([[30.0, 1.0, -20.0, 400.0, 300.0, 0.0, 3.5, 0.9]], np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "gaze.xdf"
        _write(p, [dict(name="Eyes", type="Gaze", channel_format="double64", nominal_srate=0.0, labels=labels,
                        units=units, t=[3.0], values=vals)])
        rec = read_xdf(p)
    check_writable(rec)
    gaze, other = rec.streams["Eyes"], rec.streams["Eyes_other"]
    assert gaze.channels == ["left_origin_x", "left_origin_y", "left_origin_z", "left_pupil_diameter", "confidence"]
    np.testing.assert_allclose(gaze.data[0], [0.03, 0.001, -0.02, 3.5, 0.9])  # mm -> m; not from Unity
    assert gaze.meta["source_frame"] == "openxr" and gaze.rate_hz is None and gaze.data.dtype == np.float64
    assert other.channels == ["RightGazeOriginX", "RightGazeOriginY", "RightGazeOriginZ"]
    assert other.units == ["px"] * 3


def test_clock_reset_splits_and_jitter_sorts() -> None:
    t_reset = np.r_[np.arange(10) * 0.01 + 100.0, np.arange(10) * 0.01 + 3.0]  # the clock restarts at 3 s
    t_jitter = np.array([1.0, 1.01, 1.005, 1.02, 1.03])
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "resets.xdf"
        _write(p, [
            dict(name="box", type="data", channel_format="int32", nominal_srate=100.0, n_channels=1,
                 t=t_reset, values=np.arange(20, dtype=np.int32)[:, None]),
            dict(name="jit", type="data", channel_format="int32", nominal_srate=0.0, n_channels=1,
                 t=t_jitter, values=np.arange(5, dtype=np.int32)[:, None]),
        ])
        rec = read_xdf(p, synchronize_clocks=False, dejitter=False)
    check_writable(rec)
    a, b = rec.streams["box"], rec.streams["box_part2"]
    np.testing.assert_array_equal(a.data[:, 0], np.arange(10))
    np.testing.assert_array_equal(b.data[:, 0], np.arange(10, 20))
    assert a.meta["part"] == 1 and b.meta["part"] == 2 and b.meta["n_parts"] == 2
    assert rec.meta["xdf_streams"][0]["stored_as"] == ["box", "box_part2"]
    j = rec.streams["jit"]
    np.testing.assert_array_equal(j.data[:, 0], [0, 2, 1, 3, 4])
    assert j.meta["n_reordered"] == 2 and j.rate_hz is None


@settings(max_examples=15, deadline=None)
@given(
    fmt=st.sampled_from(["float32", "double64", "int8", "int16", "int32", "int64"]),
    typ=st.sampled_from(["EEG", "Gaze", "MoCap", "Audio", "data", "Markers"]),
    n=st.integers(0, 20),
    ch=st.integers(1, 4),
)
def test_any_numeric_stream_is_writable(fmt: str, typ: str, n: int, ch: int) -> None:
    rng = np.random.default_rng(n)
    dt = np.float64 if fmt == "double64" else np.dtype(fmt)
    values = (rng.normal(size=(n, ch)) * 50).astype(dt)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "any.xdf"
        _write(p, [dict(name="Head pose", type=typ, channel_format=fmt, nominal_srate=50.0, n_channels=ch,
                        t=10.0 + np.arange(n) / 50.0, values=values)])
        rec = read_xdf(p)
    check_writable(rec)
    if typ == "Markers":
        assert rec.events.height == n and not rec.streams
    else:
        assert sum(len(s.channels) for s in rec.streams.values()) == ch
        assert all(s.n_samples == n for s in rec.streams.values())


def test_fixture_copies_with_spaces(fixtures_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "my recording (1).xdf"
        shutil.copy(fixtures_dir / FIXTURES[0], p)
        rec = xrdata.loaders.read(p)
    assert rec.session_id == "my-recording--1-" and rec.meta["source_files"] == ["my recording (1).xdf"]
