"""The xrdata command line: every verb, --help, --json, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xrdata
from xrdata.cli import _option_hint, build_parser, main
from xrdata.quickstart import COHORT, summary_lines
from xrdata.testing import example_recording


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    store = xrdata.open_store(tmp_path / "store")
    for i, (user, session) in enumerate([("u1", "s1"), ("u1", "s2"), ("007", "s1")]):
        store.write(example_recording(user, session, seconds=2.0, rng=np.random.default_rng(i)))
    return tmp_path / "store"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_every_verb_has_help() -> None:
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"info", "validate", "catalog", "ingest", "record", "export-bids", "synth", "quickstart"} <= set(verbs)
    for verb in verbs:
        out = subprocess.run([sys.executable, "-m", "xrdata.cli", verb, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: xrdata" in out.stdout, verb


def test_info(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = _json(capsys, ["info", str(store_path), "--json"])
    assert isinstance(info, dict)
    assert info["users"] == 2 and info["sessions"] == 3 and info["incomplete_sessions"] == {}
    assert {m["modality"] for m in info["modalities"]} >= {"gaze", "eeg"}
    assert main(["info", str(store_path)]) == 0
    assert "2 user(s), 3 session(s)" in capsys.readouterr().out


def test_info_hours_count_each_session_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Head pose and IMU are both "motion": a session with both counts its length once, not twice."""
    store = xrdata.open_store(tmp_path / "store")
    rec = example_recording("u1", "s1", seconds=2.0, rng=np.random.default_rng(0))
    imu = xrdata.Stream("imu", "motion", np.arange(400, dtype=np.int64) * 5_000_000,
                        np.zeros((400, 6), np.float32), ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"],
                        ["m/s^2"] * 3 + ["rad/s"] * 3, rate_hz=200.0)
    store.write(xrdata.Recording("u1", "s1", [*rec.streams.values(), imu]))
    info = _json(capsys, ["info", str(tmp_path / "store"), "--json"])
    assert isinstance(info, dict)
    motion = next(m for m in info["modalities"] if m["modality"] == "motion")
    assert motion["streams"] == 2
    durations = dict(store.catalog().select("stream", "duration_s").collect().rows())
    assert durations["motion"] > 1.5 and durations["imu"] > 1.5
    assert motion["hours"] * 3600 == pytest.approx(max(durations["motion"], durations["imu"]))
    assert info["hours"] * 3600 == pytest.approx(max(durations.values()))


def test_catalog_where_rebuild_and_json(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["catalog", str(store_path), "--json", "--where", "user=007"])
    assert isinstance(rows, list) and rows and {r["user"] for r in rows} == {"007"}
    (store_path / "catalog/user=u1/part-0.parquet").unlink()
    rebuilt = _json(capsys, ["catalog", str(store_path), "--rebuild", "--json"])
    assert isinstance(rebuilt, list) and {(r["user"], r["session"]) for r in rebuilt} == {
        ("u1", "s1"), ("u1", "s2"), ("007", "s1")
    }
    assert main(["catalog", str(store_path), "--where", "nope=1"]) == 1
    assert "unknown column 'nope'" in capsys.readouterr().err


def test_validate_reports_and_exit_code(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _json(capsys, ["validate", str(store_path), "--json"])
    assert isinstance(report, dict) and report["sessions"] == 3 and report["errors"] == 0
    # corrupt a stored unit behind the store's back: validate must flag it and exit 1
    doc_path = next(store_path.glob("users/u1/s1/streams/*/zarr.json"))
    doc = json.loads(doc_path.read_text())
    doc["attributes"]["xrdata"]["units"] = ["furlong"] * len(doc["attributes"]["xrdata"]["units"])
    doc_path.write_text(json.dumps(doc))
    assert main(["validate", str(store_path), "--user", "u1", "--session", "s1"]) == 1
    out = capsys.readouterr().out
    assert "furlong" in out and "1 session(s) checked" in out


def test_errors_are_one_line_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xrdata: error: no xrdata store at") and "Traceback" not in err
    assert main(["validate", str(tmp_path), "--session", "s1"]) == 2


def test_quickstart_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _json(capsys, ["quickstart", "--out", str(tmp_path / "qs"), "--users", "3", "--weeks", "1.5",
                            "--rounds", "1", "--seed", "1", "--json"])
    assert isinstance(report, dict)
    assert report["users"] == 3 and report["sessions"] >= 3 and report["schema_errors"] == []
    minutes_per_session = report["hours"] * 60 / report["sessions"]  # session time, not summed stream time
    assert 0 < minutes_per_session <= 3 * COHORT["session_minutes"]  # the median length; 5-7 streams each
    assert report["windows"]["train"] > 0
    assert set(report["mean_macro_f1"]) >= {"federated", "centralized", "local"}
    assert json.loads((tmp_path / "qs/report.json").read_text())["windows"] == report["windows"]
    assert (tmp_path / "qs/run/report.html").is_file() and (tmp_path / "qs/run/results.json").is_file()
    lines = summary_lines(report)
    w = report["windows"]
    assert lines[1] == (f"windows: {w['train']} training, {w['future']} of future weeks, {w['unseen']} of unseen "
                        f"users ({w['adapt']} more for their adaptation)")
    scores = [line for line in lines if " mean macro-F1: future weeks " in line]
    assert [line.split()[0] for line in scores] == list(report["mean_macro_f1"])
    assert len({line.index(" mean macro-F1") for line in scores}) == 1  # one column, whatever the names
    assert "small cohort" in lines[-2] and lines[-1].startswith(f"report: {tmp_path / 'qs/run/report.html'}")


def test_synth_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["synth", "--store", str(tmp_path / "s"), "--users", "1", "--weeks", "1", "--seed", "3",
                         "--workers", "1", "--json"])
    assert isinstance(out, dict) and out["users"] == ["u0001"] and out["sessions"] >= 1
    assert out["missing_generators"] == []
    assert main(["synth", "--store", str(tmp_path / "s"), "--users", "1", "--weeks", "1", "--seed", "3"]) == 1
    assert "already" in capsys.readouterr().err  # sessions exist: --if-exists decides


@pytest.mark.parametrize(("message", "hint"), [
    ("a.wav: 12 frames short; pass allow_truncated=True to keep the first 3 frames",
     "on the command line: --option allow_truncated=true"),
    ("r: no subject; pass user_id= / session_id= to name the recording",
     "on the command line: --user USER, --session ID"),
    ("f: no shipped mapping matches this file's columns; pass mapping= (one of a, b)",
     "on the command line: --mapping FILE"),
    ("x: value out of range (max |x| 3.5)", ""),
])
def test_option_hint_names_the_flags_an_error_asks_for(message: str, hint: str) -> None:
    assert _option_hint(message) == hint
