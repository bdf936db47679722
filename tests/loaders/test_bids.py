"""BIDS import (EEG-BIDS, Motion-BIDS, eye-tracking physio) and export of a store, round trip and layout."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xrdata
from xrdata.errors import LoaderError, XRDataError
from xrdata.loaders import READERS, read
from xrdata.loaders.bids import BIDS_VERSION, export_bids, iter_bids, read_bids
from xrdata.loaders.eeg import read_brainvision, read_edf, read_fif
from xrdata.model import Recording
from xrdata.testing import check_reader_contract, corrupt, corruptions, example_recording
from xrdata.validation import check_writable

ONE_US = 1_000  # ns

# (store user, store session) -> (BIDS subject label, BIDS session label) as export_bids names them
EXPECTED_LABELS = {
    ("lab_01", "bv"): ("lab01", "bv"),
    ("lab_01", "fif"): ("lab01", "fif"),
    ("lab_01", "edf_1"): ("lab01", "edf1"),
    ("xr-user", "s_1"): ("xruser", "s1"),
    ("m_user", "mo"): ("muser", "mo"),
    ("g_user", "g"): ("guser", "g"),
}


def _source_recordings(fixtures_dir: Path) -> list[Recording]:
    mne_dir = fixtures_dir / "mne-python"
    return [
        read_brainvision(mne_dir / "test.vhdr", user_id="lab_01", session_id="bv"),
        read_fif(mne_dir / "test_bin_raw.fif", user_id="lab_01", session_id="fif"),
        read_edf(mne_dir / "test.edf", user_id="lab_01", session_id="edf_1"),
        example_recording("xr-user", "s_1", seconds=3.0, rng=np.random.default_rng(7)),
        # no EEG: the motion file is the main file (events beside it), gaze physio in motion/
        example_recording("m_user", "mo", seconds=2.0, rng=np.random.default_rng(8), modalities=("motion", "gaze")),
        # gaze only: physio files in beh/
        example_recording("g_user", "g", seconds=2.0, rng=np.random.default_rng(9), modalities=("gaze",)),
    ]


@pytest.fixture(scope="module")
def exported(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Recording], Any]:
    """A store of the EEG fixtures + an example XR session, exported to BIDS once for the module."""
    pytest.importorskip("pybv", reason="BIDS export writes EEG with pybv (pip install pybv)")
    base = tmp_path_factory.mktemp("bids")
    store = xrdata.open_store(base / "store")
    for rec in _source_recordings(fixtures_dir):
        store.write(rec)
    report = export_bids(store, base / "ds", authors=["A. Tester"], license="CC0")
    originals = [store.read(u, s) for u in store.users() for s in store.sessions(u)]
    return base / "ds", originals, report


# ------------------------------------------------------------------------------------------ round trip


def _main_start(rec: Recording) -> int:
    """Session-clock time of the first sample of the BIDS main file (EEG, else motion, else gaze)."""
    for name in ("eeg", "motion", "gaze"):
        if name in rec.streams:
            return int(rec.streams[name].time_ns[0])
    raise AssertionError(rec)


def test_export_import_roundtrip(exported: tuple[Path, list[Recording], Any]) -> None:
    root, originals, report = exported
    for (user, session), (sub, ses) in EXPECTED_LABELS.items():
        assert (root / f"sub-{sub}" / f"ses-{ses}").is_dir(), (user, session)
    back = {(r.user_id, r.session_id): r for r in iter_bids(root)}
    assert set(back) == {(r.user_id, r.session_id) for r in originals}  # ids restored from the id columns
    for orig in originals:
        got = back[(orig.user_id, orig.session_id)]
        check_writable(got)
        t0 = _main_start(orig)  # BIDS clock: zero at the first sample of the main (EEG) file
        exported_streams = [s for s in orig.streams.values() if s.modality in ("eeg", "motion", "gaze")
                            or "mne_ch_type" in s.meta]
        assert sorted(got.streams) == sorted(s.name for s in exported_streams)
        for s in exported_streams:
            g = got.streams[s.name]
            assert (g.modality, g.channels, g.units, g.rate_hz) == (s.modality, s.channels, s.units, s.rate_hz)
            assert g.data.shape == s.data.shape and g.data.dtype == s.data.dtype
            # float32 data survive BrainVision (µV at a power-of-two resolution) and TSV text bit for bit
            np.testing.assert_allclose(g.data, s.data, rtol=2.0**-23, atol=0)
            assert np.array_equal(g.data, s.data, equal_nan=True)
            assert np.array_equal(g.time_ns, s.time_ns - t0)
        ev_orig = orig.events.with_columns(pl.col("time_ns") - t0)
        assert got.events.equals(ev_orig)
        # utc_anchor: the original anchor moved to the main file's first sample (acq times are in µs)
        if "utc_anchor" in orig.meta:
            want = datetime.fromisoformat(orig.meta["utc_anchor"]) + timedelta(microseconds=t0 / 1000)
            assert abs(datetime.fromisoformat(got.meta["utc_anchor"]) - want) <= timedelta(microseconds=1)
        assert got.meta["bids"]["task"] == "xr"
    skipped = {(u, s, name) for u, s, name, _ in report.skipped}
    assert skipped == {("xr-user", "s_1", "hand"), ("xr-user", "s_1", "audio"), ("xr-user", "s_1", "depth")}


def test_stim_and_misc_channels_keep_their_types(exported: tuple[Path, list[Recording], Any]) -> None:
    root, _, _ = exported
    fif = read_bids(root, subject="lab01", session="fif")
    assert fif.streams["stim"].channels == ["STI 014"] and fif.streams["stim"].units == ["1"]
    # events come from events.tsv only: the stim channel is not decoded a second time
    assert fif.events.filter(pl.col("label") == "stim/STI 014").height == 10
    bv = read_bids(root, subject="sub-lab01", session="ses-bv")
    assert bv.streams["misc"].units == ["BS", "S", "ARU", "S", "S", "degC"]
    channels = pl.read_csv(root / "sub-lab01/ses-bv/eeg/sub-lab01_ses-bv_task-xr_channels.tsv", separator="\t")
    assert channels["type"].to_list() == ["EEG"] * 26 + ["MISC"] * 6
    assert channels["units"].to_list()[:2] == ["µV", "µV"]


# --------------------------------------------------------------------------------------------- layout


def _tsv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None)


# entity order of the BIDS specification (the entities this export writes)
NAME = re.compile(
    r"sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?(_task-[A-Za-z0-9]+)?(_tracksys-[A-Za-z0-9]+)?(_acq-[A-Za-z0-9]+)?"
    r"(_run-[0-9]+)?(_recording-[A-Za-z0-9]+)?_[a-z]+\.[a-z.]+"
)


def test_layout_is_valid_bids(exported: tuple[Path, list[Recording], Any]) -> None:
    """Required files and fields of BIDS 1.10 (EEG, Motion, physio/eyetrack); bids_validator when installed.

    (bids-validator-deno 3.0.2 reports no error on this dataset; it is not a dependency.)"""
    root, _, report = exported
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["Name"] and desc["BIDSVersion"] == BIDS_VERSION and desc["DatasetType"] == "raw"
    assert (root / "README").is_file()
    participants = _tsv(root / "participants.tsv")
    assert participants.columns[0] == "participant_id"
    assert sorted(participants["participant_id"]) == ["sub-guser", "sub-lab01", "sub-muser", "sub-xruser"]
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == sorted(report.files)
    for rel in written:
        if rel.startswith("sub-"):
            assert NAME.fullmatch(Path(rel).name), rel
    for vhdr in root.rglob("*_eeg.vhdr"):
        stem = vhdr.name[: -len("_eeg.vhdr")]
        sidecar = json.loads((vhdr.parent / f"{stem}_eeg.json").read_text())
        for key in ("TaskName", "SamplingFrequency", "EEGReference", "PowerLineFrequency", "SoftwareFilters"):
            assert key in sidecar, (vhdr, key)
        channels = _tsv(vhdr.parent / f"{stem}_channels.tsv")
        assert channels.columns[:3] == ["name", "type", "units"]
        events = _tsv(vhdr.parent / f"{stem}_events.tsv")
        assert events.columns[:2] == ["onset", "duration"]
        assert {"trial_type", "value"} <= set(json.loads((vhdr.parent / f"{stem}_events.json").read_text()))
        assert (vhdr.with_suffix(".vmrk")).is_file() and (vhdr.with_suffix(".eeg")).is_file()
    for motion in root.rglob("*_motion.tsv"):
        stem = motion.name[: -len("_motion.tsv")]
        sidecar = json.loads((motion.parent / f"{stem}_motion.json").read_text())
        for key in ("TaskName", "SamplingFrequency", "TrackingSystemName"):
            assert key in sidecar
        channels = _tsv(motion.parent / f"{stem}_channels.tsv")
        assert channels.columns[:5] == ["name", "component", "type", "tracked_point", "units"]
        first_row = motion.read_text().splitlines()[0].split("\t")
        assert len(first_row) == channels.height  # headerless, one column per channels.tsv row
        assert set(channels["type"]) <= {"ACCEL", "ANGACCEL", "GYRO", "JNTANG", "LATENCY", "MAGN", "MISC", "ORNT",
                                         "POS", "VEL"}
    physio = sorted(root.rglob("*_physio.tsv.gz"))
    assert sorted(str(p.relative_to(root).parent) for p in physio) == sorted(
        [f"sub-{sub}/ses-{ses}/{dt}" for sub, ses, dt in (("xruser", "s1", "eeg"), ("muser", "mo", "motion"),
                                                          ("guser", "g", "beh")) for _ in range(3)])
    assert {p.name.split("_recording-")[1] for p in physio} == {"eye1_physio.tsv.gz", "eye2_physio.tsv.gz",
                                                                "eye3_physio.tsv.gz"}
    for p in physio:
        sidecar = json.loads(p.with_name(p.name.replace(".tsv.gz", ".json")).read_text())
        for key in ("SamplingFrequency", "StartTime", "Columns", "PhysioType", "RecordedEye",
                    "SampleCoordinateSystem", "SampleCoordinateUnits", "EnvironmentCoordinates"):
            assert key in sidecar
        assert sidecar["PhysioType"] == "eyetrack"
        assert sidecar["Columns"][:3] == ["timestamp", "x_coordinate", "y_coordinate"]
        first = gzip.decompress(p.read_bytes()).decode().splitlines()[0].split("\t")
        assert len(first) == len(sidecar["Columns"])  # headerless
    for scans in root.rglob("*_scans.tsv"):
        table = _tsv(scans)
        assert table.columns == ["filename", "acq_time"]
        for name in table["filename"]:
            assert (scans.parent / name).is_file()
    if importlib.util.find_spec("bids_validator") is not None:
        from bids_validator import BIDSValidator

        validator = BIDSValidator()
        for rel in written:
            if not rel.endswith(".json") or rel.startswith("sub-"):
                assert validator.is_bids("/" + rel), rel


def test_gaze_angles_in_physio(exported: tuple[Path, list[Recording], Any]) -> None:
    """x/y_coordinate of the per-eye files are the eye's yaw/pitch (radians, eye-in-head)."""
    root, originals, _ = exported
    orig = next(r for r in originals if r.user_id == "xr-user").streams["gaze"]
    path = next(root.rglob("sub-xruser/*/eeg/*_recording-eye1_physio.tsv.gz"))
    sidecar = json.loads(path.with_name(path.name.replace(".tsv.gz", ".json")).read_text())
    table = pl.read_csv(gzip.decompress(path.read_bytes()), separator="\t", has_header=False,
                        new_columns=sidecar["Columns"], null_values=["n/a"])
    assert sidecar["RecordedEye"] == "left" and sidecar["SampleCoordinateUnits"] == "rad"
    d = {c: orig.data[:, orig.channels.index(c)].astype(np.float64) for c in ("left_dir_x", "left_dir_y", "left_dir_z")}
    yaw = np.arctan2(d["left_dir_x"], -d["left_dir_z"])
    ok = np.isfinite(yaw)
    np.testing.assert_allclose(table["x_coordinate"].to_numpy()[ok], yaw[ok], rtol=1e-6, atol=1e-6)
    assert table["x_coordinate"].is_null().sum() == int((~ok).sum())  # blinks: n/a
    np.testing.assert_allclose(table["pupil_size"].to_numpy()[ok],
                               orig.data[ok, orig.channels.index("left_pupil_diameter")], rtol=1e-6)


# --------------------------------------------------------------------------------- selection, dispatch


def test_read_bids_selection_and_dispatch(exported: tuple[Path, list[Recording], Any], tmp_path: Path) -> None:
    root, _, _ = exported
    with pytest.raises(LoaderError, match="6 recordings match"):
        read_bids(root)
    with pytest.raises(LoaderError, match="no EEG, motion or physio recording matches"):
        read_bids(root, subject="nobody")
    rec = read_bids(root, subject="xruser", user_id="someone", session_id="other")
    assert (rec.user_id, rec.session_id) == ("someone", "other")
    # a single-recording dataset is read by read() itself
    single = tmp_path / "single"
    shutil.copytree(root, single, ignore=shutil.ignore_patterns("sub-lab01", "sub-muser", "sub-guser"))
    assert READERS["bids"].func is read_bids
    assert read(single).user_id == "xr-user"
    assert [r.session_id for r in iter_bids(root, subjects=["sub-lab01"])] == ["bv", "edf_1", "fif"]


# ------------------------------------------------------------------------------------ foreign datasets


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _describe(root: Path) -> None:
    _write(root / "dataset_description.json", json.dumps({"Name": "t", "BIDSVersion": "1.10.0"}))


def test_foreign_motion_dataset(tmp_path: Path) -> None:
    """A Motion-BIDS dataset in another frame and units: head pose in mm, ALS axes, accel in g, a LATENCY
    channel, a foot IMU (no canonical channel) and a lone controller x (an incomplete vector) -> other stream,
    a second tracking system placed by acq_time."""
    root = tmp_path / "ds"
    _describe(root)
    d = root / "sub-01" / "motion"
    theta = 0.3
    lat = [0.0, 0.010, 0.021, 0.029]
    rows = []
    for i, t in enumerate(lat):
        a, left, s = 100.0 + i, 20.0, 1600.0  # mm: anterior, left, superior
        rows.append([a, left, s, 0.0, 0.0, math.sin(theta / 2), math.cos(theta / 2), 0.0, 0.0, 1.0, 0.5, 0.7, t])
    _write(d / "sub-01_task-walk_tracksys-hmd_motion.tsv",
           "\n".join("\t".join(str(v) for v in r) for r in rows) + "\n")
    chans = [("hx", "x", "POS", "Head", "mm"), ("hy", "y", "POS", "Head", "mm"), ("hz", "z", "POS", "Head", "mm"),
             ("qx", "quat_x", "ORNT", "Head", "n/a"), ("qy", "quat_y", "ORNT", "Head", "n/a"),
             ("qz", "quat_z", "ORNT", "Head", "n/a"), ("qw", "quat_w", "ORNT", "Head", "n/a"),
             ("ax", "x", "ACCEL", "Head", "g"), ("ay", "y", "ACCEL", "Head", "g"), ("az", "z", "ACCEL", "Head", "g"),
             ("foot", "x", "ACCEL", "LeftFoot", "m/s^2"), ("lx", "x", "POS", "LeftController", "m"),
             ("t", "n/a", "LATENCY", "n/a", "s")]
    _write(d / "sub-01_task-walk_tracksys-hmd_channels.tsv",
           "name\tcomponent\ttype\ttracked_point\tunits\n" + "\n".join("\t".join(c) for c in chans) + "\n")
    _write(d / "sub-01_task-walk_tracksys-hmd_motion.json", json.dumps(
        {"TaskName": "walk", "SamplingFrequency": 100, "TrackingSystemName": "HMD", "SpatialAxes": "ALS"}))
    # second tracking system, no StartTime: placed 0.5 s later by scans.tsv
    _write(d / "sub-01_task-walk_tracksys-imu_motion.tsv", "1\n2\n3\n")
    _write(d / "sub-01_task-walk_tracksys-imu_channels.tsv",
           "name\tcomponent\ttype\ttracked_point\tunits\nw\tx\tGYRO\tWrist\trad/s\n")
    _write(d / "sub-01_task-walk_tracksys-imu_motion.json",
           json.dumps({"TaskName": "walk", "SamplingFrequency": 10, "TrackingSystemName": "IMU"}))
    _write(root / "sub-01" / "sub-01_scans.tsv",
           "filename\tacq_time\nmotion/sub-01_task-walk_tracksys-hmd_motion.tsv\t2024-05-01T10:00:00.000000Z\n"
           "motion/sub-01_task-walk_tracksys-imu_motion.tsv\t2024-05-01T10:00:00.500000Z\n")
    rec = read_bids(root)
    check_writable(rec)
    assert (rec.user_id, rec.session_id) == ("01", "walk")
    assert rec.meta["utc_anchor"] == "2024-05-01T10:00:00+00:00"
    m = rec.streams["hmd"]
    assert m.modality == "motion"
    assert m.channels == ["head_px", "head_py", "head_pz", "head_qx", "head_qy", "head_qz", "head_qw",
                          "accel_x", "accel_y", "accel_z"]
    assert np.array_equal(m.time_ns, np.array([0, 10_000_000, 21_000_000, 29_000_000]))
    # ALS -> OpenXR: x = right = -left, y = up = superior, z = back = -anterior; mm -> m
    np.testing.assert_allclose(m.data[0, :3], [-0.020, 1.600, -0.100], rtol=1e-6)
    # a yaw about "superior" becomes a rotation about +Y
    np.testing.assert_allclose(m.data[0, 3:7], [0, math.sin(theta / 2), 0, math.cos(theta / 2)], atol=1e-7)
    # 1 g along superior (ALS z) -> OpenXR +Y, in m/s^2
    np.testing.assert_allclose(m.data[0, 7:10], [0.0, 9.80665, 0.0], rtol=1e-6, atol=1e-9)
    assert m.meta["source_spatial_axes"]["head_p"] == "ALS"
    other = rec.streams["hmd_other"]
    assert other.modality == "other" and other.channels == ["foot", "lx"] and other.units == ["m/s^2", "m"]
    np.testing.assert_allclose(other.data[0], [0.5, 0.7])
    imu = rec.streams["imu"]
    assert imu.modality == "other" and np.array_equal(imu.time_ns, [500_000_000, 600_000_000, 700_000_000])


def test_foreign_eyetracking_physio(tmp_path: Path) -> None:
    """An eye tracker's physio file (screen pixels, device timestamps in ms) is kept whole as an other stream,
    its own first sample the clock's zero (it is the recording's only data file)."""
    root = tmp_path / "ds"
    _describe(root)
    eeg_dir = root / "sub-02" / "ses-1" / "eeg"
    rows = "\n".join(f"{1000 + 2 * i}\t{512 + i}\t{384 - i}\t{1200 + i}" for i in range(5)) + "\n"
    eeg_dir.mkdir(parents=True)
    (eeg_dir / "sub-02_ses-1_task-view_recording-eye1_physio.tsv.gz").write_bytes(gzip.compress(rows.encode()))
    _write(eeg_dir / "sub-02_ses-1_task-view_recording-eye1_physio.json", json.dumps({
        "SamplingFrequency": 500, "StartTime": -0.25, "Columns": ["timestamp", "x_coordinate", "y_coordinate",
                                                                  "pupil_size"],
        "PhysioType": "eyetrack", "RecordedEye": "left", "SampleCoordinateSystem": "gaze-on-screen",
        "SampleCoordinateUnits": "pixel", "EnvironmentCoordinates": "top-left",
        "timestamp": {"Units": "ms"}, "x_coordinate": {"Units": "pixel"}, "y_coordinate": {"Units": "pixel"},
        "pupil_size": {"Units": "arbitrary"},
    }))
    _write(eeg_dir / "sub-02_ses-1_task-view_events.tsv", "onset\tduration\ttrial_type\tresponse\n1.5\tn/a\tgo\tleft\n")
    rec = read_bids(root)
    assert rec.session_id == "1-view"
    s = rec.streams["physio_eye1"]
    assert s.modality == "other" and s.channels == ["timestamp", "x_coordinate", "y_coordinate", "pupil_size"]
    assert s.units == ["ms", "pixel", "pixel", "arbitrary"]
    assert np.array_equal(s.time_ns, np.arange(5) * 2_000_000)  # the physio file is the main file here
    assert s.meta["bids_sidecar"]["SampleCoordinateSystem"] == "gaze-on-screen"
    assert rec.events.rows() == [(1_500_000_000, 0, "go", json.dumps({"response": "left"}))]


def test_eeg_bids_with_sidecars(fixtures_dir: Path, tmp_path: Path, reference: dict[str, Any]) -> None:
    """EEG-BIDS written by others: channels.tsv types are applied and events.tsv replaces the file's markers."""
    root = tmp_path / "ds"
    _describe(root)
    eeg_dir = root / "sub-07" / "eeg"
    eeg_dir.mkdir(parents=True)
    shutil.copy(fixtures_dir / "mne-python/test.edf", eeg_dir / "sub-07_task-rest_run-2_eeg.edf")
    names = reference["mne"]["files"]["mne-python/test.edf"]["ch_names"]
    types = ["EEG"] * 136 + ["EMG", "EMG", "TRIG"]
    _write(eeg_dir / "sub-07_task-rest_run-2_channels.tsv",
           "name\ttype\tunits\n" + "".join(f"{n}\t{t}\tµV\n" for n, t in zip(names, types, strict=True)))
    _write(root / "task-rest_eeg.json", json.dumps({"TaskName": "rest", "SamplingFrequency": 512,
                                                     "EEGReference": "CMS", "PowerLineFrequency": 50,
                                                     "SoftwareFilters": "n/a"}))
    _write(eeg_dir / "sub-07_task-rest_run-2_events.tsv", "onset\tduration\ttrial_type\tvalue\n0.5\t0.25\topen\t1\n"
           "2\tn/a\tclose\tn/a\n")
    rec = read_bids(root)
    check_writable(rec)
    assert (rec.user_id, rec.session_id) == ("07", "rest-2")
    assert len(rec.streams["eeg"].channels) == 136
    assert rec.streams["emg"].channels == ["Ergo-Left", "Ergo-Right"]
    assert rec.streams["stim"].channels == ["Status"]
    assert rec.events.rows() == [(500_000_000, 250_000_000, "open", "1"), (2_000_000_000, 0, "close", "")]
    assert rec.meta["utc_anchor"] == "2014-04-29T22:19:44+00:00"


def test_missing_motion_channels_tsv_is_named(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _describe(root)
    _write(root / "sub-01/motion/sub-01_task-a_tracksys-x_motion.tsv", "1\t2\n")
    with pytest.raises(LoaderError, match=r"sub-01_task-a_tracksys-x_motion\.tsv: no \*_channels\.tsv"):
        read_bids(root)
    with pytest.raises(LoaderError, match="not a BIDS dataset root"):
        read_bids(root / "sub-01")


def test_irregular_streams_keep_their_times(tmp_path: Path) -> None:
    """Jittered motion (LATENCY column) and gaze (timestamp column) come back at their exact nanoseconds."""
    pytest.importorskip("pybv", reason="BIDS export writes EEG with pybv (pip install pybv)")
    rec = example_recording("u", "s", seconds=2.0, rng=np.random.default_rng(3), modalities=("motion", "gaze"))
    rng = np.random.default_rng(4)
    streams = []
    for s in rec.streams.values():
        jitter = np.cumsum(rng.integers(1, 4_000_000, s.n_samples)) + 123_456_789  # irregular, ns
        streams.append(xrdata.Stream(s.name, s.modality, jitter, s.data, s.channels, s.units, s.rate_hz, s.meta))
    store = xrdata.open_store(tmp_path / "store")
    store.write(Recording("u", "s", streams, events=rec.events, meta=rec.meta))
    export_bids(store, tmp_path / "ds")
    channels = _tsv(tmp_path / "ds/sub-u/ses-s/motion/sub-u_ses-s_task-xr_tracksys-motion_channels.tsv")
    assert channels["type"].to_list()[-1] == "LATENCY"
    back = read_bids(tmp_path / "ds")
    t0 = int(streams[[s.name for s in streams].index("motion")].time_ns[0])
    for s in streams:
        assert np.array_equal(back.streams[s.name].time_ns, s.time_ns - t0), s.name
        assert np.array_equal(back.streams[s.name].data, s.data, equal_nan=True)


# ------------------------------------------------------------------------------------- export failures


def test_export_refuses_and_leaves_nothing(exported: tuple[Path, list[Recording], Any], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, originals, _ = exported
    store = xrdata.open_store(tmp_path / "store")
    store.write(next(r for r in originals if r.user_id == "xr-user"))
    with pytest.raises(XRDataError, match="alphanumeric"):
        export_bids(store, tmp_path / "bad", task="x_y")
    assert not (tmp_path / "bad").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(XRDataError, match="not empty"):
        export_bids(store, tmp_path / "full")

    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr("xrdata.loaders.bids._write_motion", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_bids(store, tmp_path / "full", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "store"]  # no partial folder left
    assert (tmp_path / "full" / "keep.txt").is_file()  # the old content untouched
    monkeypatch.undo()
    report = export_bids(str(tmp_path / "store"), tmp_path / "full", overwrite=True)
    assert not (tmp_path / "full" / "keep.txt").exists()
    assert "dataset_description.json" in report.files


# ------------------------------------------------------------------------------------------ robustness

TARGETS = [
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_eeg.vhdr",
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_eeg.vmrk",
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_eeg.eeg",
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_channels.tsv",
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_events.tsv",
    "sub-xruser/ses-s1/motion/sub-xruser_ses-s1_task-xr_tracksys-motion_motion.tsv",
    "sub-xruser/ses-s1/motion/sub-xruser_ses-s1_task-xr_tracksys-motion_motion.json",
    "sub-xruser/ses-s1/motion/sub-xruser_ses-s1_task-xr_tracksys-motion_channels.tsv",
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_recording-eye1_physio.tsv.gz",
    "sub-xruser/ses-s1/eeg/sub-xruser_ses-s1_task-xr_recording-eye3_physio.json",
    "sub-xruser/ses-s1/sub-xruser_ses-s1_scans.tsv",
    "participants.tsv",
]


@pytest.mark.parametrize("target", TARGETS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_corrupted_dataset(target: str, exported: tuple[Path, list[Recording], Any], data: st.DataObject) -> None:
    root, _, _ = exported
    payload = (root / target).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        shutil.copytree(root, ds, ignore=shutil.ignore_patterns("sub-lab01", "sub-muser", "sub-guser"))
        (ds / target).write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(read_bids, ds, subject="xruser")
        if rec is not None:
            check_writable(rec)


def test_export_bids_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pybv")
    from xrdata.cli import main
    from xrdata.testing import example_recording

    store = xrdata.open_store(tmp_path / "store")
    store.write(example_recording("u1", "s1", seconds=2.0, rng=np.random.default_rng(0)))
    assert main(["export-bids", str(tmp_path / "store"), str(tmp_path / "bids"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "dataset_description.json" in out["files"]
    assert (tmp_path / "bids" / "dataset_description.json").is_file()
    assert {s[2] for s in out["skipped"]} >= {"audio", "depth"}
