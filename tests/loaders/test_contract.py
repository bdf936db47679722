"""The contract every reader keeps, checked on one real or generated input per registered reader.

A reader returns a Recording that the store accepts (no error-severity schema violation), that round-trips
through a store bit for bit, that names its source file, and that carries the user and session ids it was
given; on a missing or garbage input it raises a LoaderError naming the file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xrdata
from xrdata.errors import LoaderError
from xrdata.loaders import READERS, read, resolve
from xrdata.testing import assert_recording_equal, check_reader_contract, example_recording
from xrdata.validation import validate

# reader -> (fixture path relative to the fixtures folder, reader options)
FIXTURE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "xdf": ("labstreaminglayer_PicoNeo2Eye/test_pico_lsl.xdf", {}),
    "edf": ("mne-python/test.edf", {}),
    "bdf": ("mne-python/test.bdf", {}),
    "brainvision": ("mne-python/test.vhdr", {}),
    "fif": ("mne-python/test_bin_raw.fif", {}),
    "audio": ("openai_whisper/jfk.flac", {}),
    "depth": ("isl-org_Open3D_RGBD/depth", {"rate_hz": 30.0}),
    "pupil_neon": ("pupil-labs_pl-neon-recording/demo_recording", {}),
    "aria_mps": ("projectaria_tools/gen1/mps_sample", {}),
    "aria_eye_gaze": ("projectaria_tools/gen1/mps_sample/eye_gaze_vergence/generalized_gaze.csv", {}),
    "aria_hand_tracking": ("projectaria_tools/gen1/mps_sample/hand_tracking/hand_tracking_results_v2.csv", {}),
    "aria_trajectory": ("projectaria_tools/gen1/mps_sample/trajectory/closed_loop_trajectory_geo_available.csv", {}),
    "aria_online_calibration": ("projectaria_tools/gen1/mps_sample/trajectory/online_calibration.jsonl", {}),
    "aria_speech": ("projectaria_tools/gen1/aria_everyday_activities_test_data/speech.csv", {}),
    "table": ("projectaria_tools/gen1/aria_everyday_activities_test_data/speech.csv", {"mapping": "aria_speech"}),
}


def _pupil_core(tmp: Path, fixtures: Path) -> Path:
    export = tmp / "rec" / "exports" / "000"
    export.mkdir(parents=True)
    (export / "gaze_positions.csv").write_text(
        "gaze_timestamp,world_index,confidence,norm_pos_x,norm_pos_y\n"
        "5000.25,0,0.98,0.25,0.75\n5000.2583,0,0.9,0.5,0.5\n"
    )
    return export / "gaze_positions.csv"


def _pupil_cloud(tmp: Path, fixtures: Path) -> Path:
    folder = tmp / "cloud_export"
    folder.mkdir()
    (folder / "gaze.csv").write_text(
        "section id,recording id,timestamp [ns],gaze x [px],gaze y [px],worn,fixation id,blink id\n"
        "s1,r1,1700000000000000000,800.0,600.0,1,,\ns1,r1,1700000000005000000,1600.0,0.0,1,1,\n"
    )
    (folder / "info.json").write_text(json.dumps({"recording_id": "r1", "start_time": 1699999999990000000}))
    return folder / "gaze.csv"


def _eeglab(tmp: Path, fixtures: Path) -> Path:
    pytest.importorskip("eeglabio")
    import mne

    raw = mne.io.read_raw_brainvision(fixtures / "mne-python/test.vhdr", preload=True, verbose="error")
    path = tmp / "test.set"
    mne.export.export_raw(path, raw.pick("eeg"), fmt="eeglab", verbose="error")
    return path


def _bids(tmp: Path, fixtures: Path) -> Path:
    pytest.importorskip("pybv")
    from xrdata.loaders.bids import export_bids

    store = xrdata.open_store(tmp / "store")
    store.write(example_recording("u1", "s1", seconds=2.0, rng=np.random.default_rng(0)))
    export_bids(store, tmp / "bids")
    return tmp / "bids"


GENERATED_CASES: dict[str, Callable[[Path, Path], Path]] = {
    "pupil_core": _pupil_core,
    "pupil_cloud": _pupil_cloud,
    "eeglab": _eeglab,
    "bids": _bids,
}


def test_every_reader_has_a_contract_case() -> None:
    missing = set(READERS) - set(FIXTURE_CASES) - set(GENERATED_CASES)
    assert not missing, f"add a contract case for reader(s) {sorted(missing)}"


def _check(name: str, path: Path, options: dict[str, Any]) -> None:
    func = READERS[name].func
    rec = func(path, user_id="contract_user", session_id="contract_session", **options)
    assert isinstance(rec, xrdata.Recording)
    assert (rec.user_id, rec.session_id) == ("contract_user", "contract_session")
    assert rec.streams or rec.events.height, f"{name}: {path.name} gave neither streams nor events"
    errors = [v for v in validate(rec) if v.severity == "error"]
    assert errors == [], errors
    sources = [Path(f).name for f in rec.meta.get("source_files", [])]
    assert sources and (path.is_dir() or path.name in sources), f"{name}: source_files {sources}"
    for s in rec.streams.values():
        assert s.time_ns.dtype == np.int64 and s.data.shape[0] == s.n_samples
    with tempfile.TemporaryDirectory() as d:
        store = xrdata.open_store(d)
        store.write(rec)
        assert_recording_equal(rec, store.read(rec.user_id, rec.session_id))
    with pytest.raises(LoaderError, match="no such file"):
        func(path.parent / f"missing-{path.name}")


@pytest.mark.parametrize("name", sorted(FIXTURE_CASES))
def test_reader_contract_on_real_recordings(name: str, fixtures_dir: Path) -> None:
    rel, options = FIXTURE_CASES[name]
    path = fixtures_dir / rel
    if name != "table":  # the generic table reader is the fallback, never the first choice
        assert resolve(path).name == name
    _check(name, path, options)


@pytest.mark.parametrize("name", sorted(GENERATED_CASES))
def test_reader_contract_on_generated_inputs(name: str, fixtures_dir: Path, tmp_path: Path) -> None:
    _check(name, GENERATED_CASES[name](tmp_path, fixtures_dir), {})


@pytest.mark.parametrize("name", sorted(n for n, r in READERS.items() if r.suffixes))
def test_garbage_file_gives_loader_error_naming_it(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"garbage{READERS[name].suffixes[0]}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    # a Recording (text formats may parse noise as rows) or an XRDataError naming the file, nothing else
    check_reader_contract(READERS[name].func, path)


def test_dispatch_names_the_readers_for_unknown_files(tmp_path: Path) -> None:
    path = tmp_path / "notes.unknownext"
    path.write_text("hello")
    with pytest.raises(LoaderError, match="no reader recognises") as err:
        read(path)
    assert "xdf" in str(err.value) and "notes.unknownext" in str(err.value)
