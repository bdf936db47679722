"""Ingest of a multi-recording BIDS dataset: one session per recording, subjects -> users, dedupe, CLI."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

import xrdata
from xrdata.cli import main
from xrdata.errors import LoaderError
from xrdata.loaders.bids import bids_recordings, export_bids, read_bids
from xrdata.loaders.eeg import read_brainvision
from xrdata.loaders.ingest import ingest, ingest_bids
from xrdata.testing import example_recording

# (user, session) of the exported store: two users, one with two sessions, and one EEG session
SESSIONS = [("u_a", "s1"), ("u_a", "s2"), ("u_b", "s1")]


@pytest.fixture(scope="module")
def dataset(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BIDS dataset of four recordings (three XR sessions, one BrainVision EEG), written by export_bids."""
    pytest.importorskip("pybv", reason="BIDS export writes EEG with pybv (pip install pybv)")
    base = tmp_path_factory.mktemp("bids-ingest")
    store = xrdata.open_store(base / "source")
    for k, (user, session) in enumerate(SESSIONS):
        store.write(example_recording(user, session, seconds=2.0, rng=np.random.default_rng(k),
                                      modalities=("motion", "gaze")))
    store.write(read_brainvision(fixtures_dir / "mne-python/test.vhdr", user_id="u_b", session_id="eeg"))
    export_bids(store, base / "ds")
    return base / "ds"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["ingest", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_recording_becomes_a_session_of_its_subject(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = {(*s,) for s in SESSIONS} | {("u_b", "eeg")}
    assert len(bids_recordings(dataset)) == 4
    code, out, _ = _cli(capsys, str(dataset), "--store", str(tmp_path / "st"), "--json")
    assert code == 0
    results = json.loads(out)
    assert {(r["user"], r["session"]) for r in results} == wanted  # ids restored from the dataset's id columns
    assert all(r["skipped"] == {} and r["recording"].startswith("sub-") for r in results)
    store = xrdata.open_store(tmp_path / "st", mode="r")
    assert {(u, s) for u in store.users() for s in store.sessions(u)} == wanted
    for r in bids_recordings(dataset):
        got, want = store.read(r.user_id, r.session_id), read_bids(dataset, subject=r.subject, session=r.session)
        assert sorted(got.streams) == sorted(want.streams)
        for name, s in want.streams.items():
            np.testing.assert_array_equal(got.streams[name].time_ns, s.time_ns)
            np.testing.assert_array_equal(got.streams[name].data, s.data)
        assert got.events.height == want.events.height
        assert list(got.meta["source_sha256"]) == [r.label]
    eeg = store.read("u_b", "eeg")
    assert eeg.streams["eeg"].data.dtype == np.float32

    # Again: every recording is found by its hash and skipped, nothing is written twice.
    code, out, _ = _cli(capsys, str(dataset), "--store", str(tmp_path / "st"), "--json")
    again = json.loads(out)
    assert code == 0 and all(r["session"] is None and list(r["skipped"]) == [r["recording"]] for r in again)
    assert {(r["user"], r["skipped"][r["recording"]]) for r in again} == wanted
    store = xrdata.open_store(tmp_path / "st", mode="r")
    assert sum(len(store.sessions(u)) for u in store.users()) == 4


def test_one_user_for_the_whole_dataset(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, str(dataset), "--store", str(tmp_path / "st"), "--user", "pooled")
    assert code == 0 and out.count("wrote pooled/") == 4
    store = xrdata.open_store(tmp_path / "st", mode="r")
    labels = {r.subject for r in bids_recordings(dataset)}
    sessions = store.sessions("pooled")
    assert store.users() == ["pooled"] and len(sessions) == 4
    # several subjects under one user: the subject label leads the session id, so s1 of u_a and u_b both fit
    assert all(any(s.startswith(f"{label}-") for label in labels) for s in sessions)


def test_what_a_user_holds_is_read_once_per_dataset(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate check lists every session document of the user: once per user and dataset, not once per
    recording (pooling thousands of runs into one user would be quadratic), and it still knows what the
    recordings before in the same dataset wrote."""
    mod = importlib.import_module("xrdata.loaders.ingest")  # (xrdata.loaders.ingest is also the function)
    calls: list[str] = []
    real = mod._ingested
    monkeypatch.setattr(mod, "_ingested", lambda store, user: calls.append(user) or real(store, user))
    store = xrdata.open_store(tmp_path / "st")
    first = ingest_bids(dataset, store, user="pooled")
    assert calls == ["pooled"] and all(r.session for r in first)
    again = ingest_bids(dataset, store, user="pooled")
    assert calls == ["pooled", "pooled"]
    assert [r.skipped for r in again] == [{r.recording: r.session} for r in first]
    seen = real(store, "pooled")
    assert sorted(seen.sessions.values()) == sorted(r.session for r in first)


def test_selection_and_refusals(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = bids_recordings(dataset)[0]
    st = str(tmp_path / "st")
    code, out, _ = _cli(capsys, str(dataset), "--store", st, "--option", f"subject={one.subject}", "--json")
    assert code == 0 and {r["user"] for r in json.loads(out)} == {one.user_id}
    # --session names a single recording only
    code, _, err = _cli(capsys, str(dataset), "--store", st, "--user", "p", "--session", "x")
    assert code == 1 and "one session id cannot name" in err
    code, _, err = _cli(capsys, str(dataset), "--store", st, "--option", "rate_hz=3")
    assert code == 1 and "does not apply to a BIDS dataset" in err
    code, _, err = _cli(capsys, str(dataset), str(dataset), "--store", st)
    assert code == 1 and "on its own" in err
    code, _, err = _cli(capsys, str(tmp_path), "--store", st)  # not a dataset: --user is needed
    assert code == 1 and "--user is required" in err
    # the Python API: ingest() of a several-recording dataset points to ingest_bids
    with pytest.raises(LoaderError, match="ingest_bids"):
        ingest([dataset], xrdata.open_store(tmp_path / "api"), "u")
    res = ingest_bids(dataset, xrdata.open_store(tmp_path / "api"), session="named", subject=one.subject,
                      bids_session=one.session, task=one.task, run=one.run)
    assert [(r.user, r.session, r.recording) for r in res] == [(one.user_id, "named", one.label)]
