"""Ingest: several files of one session on one clock, content-hash dedupe, CLI."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xrdata
from xrdata.cli import main
from xrdata.errors import LoaderError, XRDataError
from xrdata.loaders import read
from xrdata.loaders.ingest import file_sha256, ingest
from xrdata.testing import assert_recording_equal, corrupt, corruptions

XDF = "xdf-modules_example-files/minimal.xdf"
WAV = "scipy_io_wav/test-44100Hz-le-1ch-4bytes.wav"


def test_xdf_plus_wav_become_one_session_on_one_clock(fixtures_dir: Path, tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path / "store")
    xdf, wav = fixtures_dir / XDF, fixtures_dir / WAV
    res = ingest([xdf, wav], store, "u1", session="s1", starts_s={wav.name: 5.25})
    assert res.session == "s1" and set(res.streams) == {"SendDataC", "audio"} and res.skipped == {}
    rec = store.read("u1", "s1")
    audio, eeg = rec.streams["audio"], rec.streams["SendDataC"]
    want = read(wav)
    np.testing.assert_array_equal(audio.time_ns, want.streams["audio"].time_ns + 5_250_000_000)
    np.testing.assert_array_equal(audio.data, want.streams["audio"].data)
    np.testing.assert_array_equal(eeg.time_ns, read(xdf).streams["SendDataC"].time_ns)
    assert rec.meta["source_files"] == [xdf.name, wav.name]
    assert rec.meta["source_sha256"] == {xdf.name: file_sha256(xdf), wav.name: file_sha256(wav)}
    assert rec.events.height == 9  # the XDF markers


def test_reingesting_a_file_is_detected(fixtures_dir: Path, tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path / "store")
    wav = fixtures_dir / WAV
    ingest([wav], store, "u1", session="s1")
    copy = tmp_path / "renamed.wav"
    shutil.copy(wav, copy)  # same bytes under another name: still the same recording
    again = ingest([copy], store, "u1", session="s2")
    assert again.session is None and again.skipped == {str(copy): "s1"}
    assert store.sessions("u1") == ["s1"]
    other_user = ingest([copy], store, "u2", session="s1")  # dedupe is per user partition
    assert other_user.session == "s1"


def test_files_with_absolute_times_align_by_utc_anchor(fixtures_dir: Path, tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path / "store")
    bdf, edf = fixtures_dir / "mne-python/test.bdf", fixtures_dir / "mne-python/test.edf"
    ingest([bdf, edf], store, "u1", session="s1")
    rec = store.read("u1", "s1")
    # 2013-08-01T13:21:46Z (bdf, the session clock) -> 2014-04-29T22:19:44Z (edf)
    offset = (np.datetime64("2014-04-29T22:19:44") - np.datetime64("2013-08-01T13:21:46")).astype("timedelta64[ns]")
    assert rec.streams["eeg_test"].time_ns[0] == offset.astype(np.int64)  # name clash: suffixed
    assert rec.streams["eeg"].time_ns[0] == 0


def test_unplaceable_second_file_is_refused_and_nothing_written(fixtures_dir: Path, tmp_path: Path) -> None:
    store = xrdata.open_store(tmp_path / "store")
    wav = fixtures_dir / WAV
    with pytest.raises(LoaderError, match=rf"{wav.name}.*--start {wav.name}=SECONDS"):
        ingest([fixtures_dir / XDF, wav], store, "u1", session="s1")
    assert store.users() == [] or store.sessions("u1", include_incomplete=True) == []


def test_ingest_cli(fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = fixtures_dir / WAV
    argv = ["ingest", str(fixtures_dir / XDF), str(wav), "--store", str(tmp_path / "s"), "--user", "u1",
            "--start", f"{wav.name}=1.5", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["session"] == "minimal" and out["skipped"] == {}
    assert main(argv) == 0  # again: both files are detected as already ingested
    assert set(json.loads(capsys.readouterr().out)["skipped"].values()) == {"minimal"}
    assert main([*argv[:-3], "--start", "nonsense"]) == 1
    assert "expected FILE=SECONDS" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "nope.xdf"), "--store", str(tmp_path / "s"), "--user", "u1"]) == 1
    assert "nope.xdf" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "nope.xdf"), "--store", str(tmp_path / "new"), "--user", "u1"]) == 1
    assert "nope.xdf: no such file" in capsys.readouterr().err and not (tmp_path / "new").exists()  # no store made


def test_reader_options_reach_the_reader(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ingest", str(fixtures_dir / "isl-org_Open3D_RGBD/depth"), "--store", str(tmp_path / "s"),
            "--user", "u1", "--option", "rate_hz=30", "--json"]
    assert main(argv) == 0
    depth = xrdata.open_store(tmp_path / "s").read("u1", "depth").streams["depth"]
    assert depth.rate_hz == 30.0 and depth.n_samples == 5
    assert main([*argv[:-3], "--option", "rate_hz"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err


def test_a_missing_reader_option_is_named_as_its_command_line_flag(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ingest", str(fixtures_dir / "isl-org_Open3D_RGBD/depth"), "--store", str(tmp_path / "s"), "--user", "u1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no time source" in err and "pass rate_hz=" in err
    assert "on the command line: --option rate_hz=VALUE, --option start_ns=VALUE, --option timestamps=VALUE" in err
    assert not (tmp_path / "s" / "users").exists() or xrdata.open_store(tmp_path / "s").users() == []


def test_brainvision_dedupe_hashes_the_data_file(fixtures_dir: Path, tmp_path: Path) -> None:
    src = fixtures_dir / "mne-python"
    for name in ("test.vhdr", "test.vmrk", "test.eeg"):
        shutil.copy(src / name, tmp_path / name)
    before = file_sha256(tmp_path / "test.vhdr")
    data = bytearray((tmp_path / "test.eeg").read_bytes())
    data[100] ^= 0xFF  # same header, different samples: a different recording
    (tmp_path / "test.eeg").write_bytes(bytes(data))
    assert file_sha256(tmp_path / "test.vhdr") != before


def test_dedupe_by_size_then_hash_and_legacy_sessions(fixtures_dir: Path, tmp_path: Path) -> None:
    """A file whose byte count no ingested file has is parsed while it is hashed; one of a known size is hashed
    first (a duplicate is skipped unparsed); sessions without ``source_bytes`` make every file hash first."""
    from xrdata.loaders.ingest import _ingested

    wav = fixtures_dir / WAV
    store = xrdata.open_store(tmp_path / "store")
    ingest([wav], store, "u1", session="s1")
    meta = store.read("u1", "s1", streams=[]).meta
    assert meta["source_bytes"] == {wav.name: wav.stat().st_size}
    same_size = tmp_path / "same_size.wav"  # same length, other bytes: parsed, not skipped
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0x01
    same_size.write_bytes(bytes(data))
    assert ingest([same_size], store, "u1", session="s2").session == "s2"
    seen = _ingested(store, "u1")
    assert seen.may_hold(wav.stat().st_size) and not seen.may_hold(wav.stat().st_size + 1)
    # a session written before source_bytes existed: sizes unknown, every file may be a duplicate
    legacy = read(wav, user_id="u2", session_id="old")
    legacy.meta["source_sha256"] = {wav.name: file_sha256(wav)}
    store.write(legacy)
    assert _ingested(store, "u2").sizes is None and _ingested(store, "u2").may_hold(1)
    again = ingest([wav], store, "u2", session="new")
    assert again.session is None and again.skipped == {str(wav): "old"}


def test_schema_errors_name_the_file_and_nothing_is_written(fixtures_dir: Path, tmp_path: Path) -> None:
    """The readers' own check is deferred during ingest; the one check of the merged session names the file."""
    from xrdata.errors import SchemaError
    from xrdata.loaders.eeg import check_deferred, deferred_check

    assert not check_deferred()
    with deferred_check():
        assert check_deferred()
    assert not check_deferred()
    mne = pytest.importorskip("mne")
    raw = mne.io.read_raw_fif(fixtures_dir / "mne-python/test_bin_raw.fif", preload=True, verbose="error")
    raw.set_annotations(mne.Annotations([1.0], [0.5], ["task/x"], orig_time=raw.annotations.orig_time))
    bad = tmp_path / "bad_raw.fif"
    raw.save(bad, verbose="error")
    with pytest.raises(LoaderError, match=r"bad_raw\.fif"):  # the reader alone still checks what it returns
        read(bad)
    store = xrdata.open_store(tmp_path / "store")
    with pytest.raises(SchemaError, match=r"bad_raw\.fif"):
        ingest([bad], store, "u1", session="s1")
    assert store.users() == [] or store.sessions("u1", include_incomplete=True) == []


# ------------------------------------------------------------------ EEG files parsed in blocks while written


def _fif(path: Path, *, n: int = 6007, bad: tuple[int, int, float] | None = None) -> Path:
    """A float64 FIF of interleaved channel types (no stim channel: ingest streams it); ``bad = (channel,
    sample, value)`` puts one value in."""
    mne = pytest.importorskip("mne")
    info = mne.create_info(["Fz", "EOG1", "Cz", "M1", "Pz"], 250.0, ["eeg", "eog", "eeg", "misc", "eeg"])
    data = np.random.default_rng(3).standard_normal((5, n)) * 1e-5
    if bad is not None:
        data[bad[0], bad[1]] = bad[2]
    mne.io.RawArray(data, info, first_samp=17, verbose="error").save(path, fmt="double", verbose="error")
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """EEG blocks of 300 samples (many, not aligned with the store's chunks), each parsed a little slowly so
    that the store's writer has to wait for them; returns the block starts parsed."""
    mne = pytest.importorskip("mne")
    from xrdata.loaders import eeg

    monkeypatch.setattr(eeg, "_BLOCK_BYTES", 8 * 5 * 300)
    starts: list[int] = []
    get_data = mne.io.BaseRaw.get_data

    def slow(self: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        if kwargs.get("start") is not None:
            starts.append(int(kwargs["start"]))
            time.sleep(0.002)
        return get_data(self, *args, **kwargs)

    monkeypatch.setattr(mne.io.BaseRaw, "get_data", slow)
    return starts


def test_streamed_ingest_stores_what_the_reader_returns(tmp_path: Path, small_blocks: list[int]) -> None:
    from xrdata.loaders import read_fif

    path = _fif(tmp_path / "x_raw.fif")
    store = xrdata.open_store(tmp_path / "store")
    assert ingest([path], store, "u1", session="s1").streams == ["eeg", "eog", "misc"]
    assert len(small_blocks) == 21  # 6007 samples in blocks of 300: streamed
    got, want = store.read("u1", "s1"), read_fif(path, user_id="u1", session_id="s1")
    for name, s in want.streams.items():
        assert got.streams[name].data.dtype == np.float32
        np.testing.assert_array_equal(got.streams[name].data, s.data)
        np.testing.assert_array_equal(got.streams[name].time_ns, s.time_ns)
    assert not [t for t in threading.enumerate() if t.name == "xrdata-eeg-blocks"]


def _assert_stored_as_read(got: xrdata.Recording, want: xrdata.Recording) -> None:
    assert set(got.streams) == set(want.streams)
    for name, s in want.streams.items():
        assert got.streams[name].data.dtype == s.data.dtype, name
        np.testing.assert_array_equal(got.streams[name].data, s.data)
        np.testing.assert_array_equal(got.streams[name].time_ns, s.time_ns)
    assert got.events.equals(want.events)


@pytest.mark.parametrize("rel", ["mne-python/test.bdf", "mne-python/test_bin_raw.fif"])
def test_stim_channels_are_streamed_and_decoded_as_the_whole_read(
    fixtures_dir: Path, tmp_path: Path, small_blocks: list[int], rel: str
) -> None:
    """BioSemi's Status and Neuromag's STI channels are parsed in blocks like the others; their events,
    decoded once the channel is in, equal the whole read's (also shifted onto a session clock)."""
    path = fixtures_dir / rel
    store = xrdata.open_store(tmp_path / "store")
    ingest([path], store, "u1", session="s1")
    assert len(small_blocks) > 5  # streamed
    want = read(path, user_id="u1", session_id="s1")
    assert want.events.filter(pl.col("label").str.starts_with("stim/")).height > 0
    _assert_stored_as_read(store.read("u1", "s1"), want)
    wav = fixtures_dir / WAV  # the EEG file second on a WAV's clock, 2.5 s after its start
    ingest([wav, path], store, "u2", session="s2", starts_s={path.name: 2.5})
    from xrdata.loaders.ingest import merge

    both = merge([read(wav), want], [None, 2_500_000_000], "u2", "s2")
    assert store.read("u2", "s2").events.equals(both.events)


def test_stim_codes_float32_cannot_hold_send_the_file_to_the_whole_read(
    tmp_path: Path, small_blocks: list[int]
) -> None:
    mne = pytest.importorskip("mne")
    from xrdata.loaders import read_fif

    info = mne.create_info(["Fz", "STI 014", "Cz"], 250.0, ["eeg", "stim", "eeg"])
    data = np.random.default_rng(4).standard_normal((3, 6000)) * 1e-5
    data[1] = 0.0
    data[1, 1000:1010], data[1, 5000:5010] = 3, 2**25 + 1  # the large code in a late block
    path = tmp_path / "trig_raw.fif"
    mne.io.RawArray(data, info, verbose="error").save(path, fmt="double", verbose="error")
    store = xrdata.open_store(tmp_path / "store")
    ingest([path], store, "u1", session="s1")
    got, want = store.read("u1", "s1"), read_fif(path, user_id="u1", session_id="s1")
    assert got.streams["stim"].data.dtype == np.float64
    assert got.events["value"].to_list() == ["3", str(2**25 + 1)]
    _assert_stored_as_read(got, want)


def test_streamed_ingest_falls_back_to_float64_on_overflow(tmp_path: Path, small_blocks: list[int]) -> None:
    """A value beyond float32's range, in a late block, makes its stream float64: read again whole."""
    from xrdata.loaders import read_fif

    path = _fif(tmp_path / "big_raw.fif", bad=(3, 5000, 1e39))
    store = xrdata.open_store(tmp_path / "store")
    ingest([path], store, "u1", session="s1")
    got = store.read("u1", "s1")
    assert got.streams["misc"].data.dtype == np.float64 and got.streams["eeg"].data.dtype == np.float32
    assert got.streams["misc"].data[5000, 0] == 1e39
    np.testing.assert_array_equal(got.streams["misc"].data, read_fif(path).streams["misc"].data)
    assert store.sessions("u1") == ["s1"]


def test_streamed_schema_error_names_the_file_and_nothing_is_written(
    tmp_path: Path, small_blocks: list[int]
) -> None:
    from xrdata.errors import SchemaError

    path = _fif(tmp_path / "inf_raw.fif", bad=(0, 4000, np.inf))
    store = xrdata.open_store(tmp_path / "store")
    with pytest.raises(SchemaError, match=r"(?s)inf_raw\.fif.*infinite value"):
        ingest([path], store, "u1", session="s1")
    assert len(small_blocks) == 21  # found once every block was written
    assert store.users() == []


def test_parse_failure_mid_stream_leaves_no_session(
    tmp_path: Path, small_blocks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file fails after some blocks were written: a LoaderError naming it, no trace of the session (nor of
    a user it would have created), earlier sessions intact."""
    mne = pytest.importorskip("mne")
    from xrdata.loaders import eeg

    monkeypatch.setattr(eeg, "_BLOCK_BYTES", 8 * 5 * 3000)
    good, broken = _fif(tmp_path / "good_raw.fif", n=4000), _fif(tmp_path / "broken_raw.fif", n=120_000)
    store = xrdata.open_store(tmp_path / "store")
    ingest([good], store, "u1", session="s1")
    before = store.read("u1", "s1").streams["eeg"].data
    get_data = mne.io.BaseRaw.get_data
    shards: list[bool] = []

    def failing(self: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        if int(kwargs.get("start") or 0) >= 90_000:
            # the first chunk (52428 samples of 5 float32 channels) is in the store's shard file by now
            shards.append((tmp_path / "store/users" / user / "s2/streams/eeg/data/c/0/0").is_file())
            raise OSError("disk went away")
        return get_data(self, *args, **kwargs)

    monkeypatch.setattr(mne.io.BaseRaw, "get_data", failing)
    for user in ("u1", "u2"):
        with pytest.raises(LoaderError, match=r"broken_raw\.fif: cannot read as fif: OSError: disk went away"):
            ingest([broken], store, user, session="s2")
    assert shards == [True, True]
    assert store.users() == ["u1"] and store.sessions("u1", include_incomplete=True) == ["s1"]
    assert not (tmp_path / "store" / "users" / "u1" / "s2").exists()
    np.testing.assert_array_equal(store.read("u1", "s1").streams["eeg"].data, before)
    assert not [t for t in threading.enumerate() if t.name == "xrdata-eeg-blocks"]


def test_duplicate_found_after_a_streamed_parse_is_skipped(
    tmp_path: Path, small_blocks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file recognised as ingested only once parsed (its byte count was not known): its block thread is
    stopped and the other file of the session is written alone."""
    from xrdata.loaders.ingest import _Ingested

    a, b = _fif(tmp_path / "a_raw.fif"), _fif(tmp_path / "b_raw.fif", n=3001)
    store = xrdata.open_store(tmp_path / "store")
    ingest([a], store, "u1", session="s1")
    monkeypatch.setattr(_Ingested, "may_hold", lambda self, nbytes: False)
    res = ingest([a, b], store, "u1", session="s2")
    assert res.skipped == {str(a): "s1"} and res.session == "s2"
    np.testing.assert_array_equal(
        store.read("u1", "s2").streams["eeg"].data, read(b, user_id="u1", session_id="s2").streams["eeg"].data
    )
    assert not [t for t in threading.enumerate() if t.name == "xrdata-eeg-blocks"]


def _split_fif(path: Path, naming: str) -> list[Path]:
    """A 32-channel FIF saved in 10 MB parts (mne's minimum); the parts in reading order."""
    mne = pytest.importorskip("mne")
    info = mne.create_info([f"EEG{i:02d}" for i in range(32)], 1000.0, "eeg")
    data = np.random.default_rng(5).standard_normal((32, 120_000)) * 1e-5
    mne.io.RawArray(data, info, verbose="error").save(path, split_size="10MB", split_naming=naming,
                                                      verbose="error")
    first = path if naming == "neuromag" else path.with_name(path.name.replace("_eeg", "_split-01_eeg"))
    return [Path(f) for f in mne.io.read_raw_fif(first, verbose="error").filenames]


@pytest.mark.parametrize(("name", "naming"), [("rec_raw.fif", "neuromag"), ("sub-01_task-x_eeg.fif", "bids")])
def test_split_fif_is_identified_by_all_its_parts(tmp_path: Path, name: str, naming: str) -> None:
    """Every part mne reads counts in the recording's hash and byte count: changing a later part makes it
    another recording, re-ingesting the same parts is skipped."""
    parts = _split_fif(tmp_path / name, naming)
    assert len(parts) == 2
    store = xrdata.open_store(tmp_path / "store")
    assert ingest([parts[0]], store, "u1", session="s1").session == "s1"
    meta = store.read("u1", "s1").meta
    assert meta["source_files"] == [p.name for p in parts]
    assert meta["source_bytes"] == {parts[0].name: sum(p.stat().st_size for p in parts)}
    assert meta["source_sha256"] == {parts[0].name: file_sha256(parts[0])}
    assert store.read("u1", "s1").streams["eeg"].n_samples == 120_000
    assert ingest([parts[0]], store, "u1", session="s2").skipped == {str(parts[0]): "s1"}
    before = file_sha256(parts[0])
    raw = bytearray(parts[1].read_bytes())
    raw[-5000] ^= 0xFF  # a sample byte of the last part
    parts[1].write_bytes(bytes(raw))
    assert file_sha256(parts[0]) != before
    assert ingest([parts[0]], store, "u1", session="s3").session == "s3"


def test_parts_the_reader_follows_under_other_names_are_hashed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part whose name does not follow the split naming (found only by mne, from the file's own reference)
    still counts: the hash is completed once the reader says which files it read."""
    parts = _split_fif(tmp_path / "rec_raw.fif", "neuromag")
    module = sys.modules[ingest.__module__]
    assert module._hashed_files(parts[0]) == parts
    store = xrdata.open_store(tmp_path / "store")
    with monkeypatch.context() as m:  # as if the naming were unknown: only the reader finds the second part
        m.setattr(module, "_companions", lambda p: [])
        ingest([parts[0]], store, "u1", session="s1")
    meta = store.read("u1", "s1").meta
    assert meta["source_sha256"] == {parts[0].name: module._sha256(parts, None)}
    assert meta["source_bytes"] == {parts[0].name: sum(p.stat().st_size for p in parts)}
    assert ingest([parts[0]], store, "u1", session="s2").skipped == {str(parts[0]): "s1"}


# ------------------------------------------------------------------------------------------- robustness

CORRUPTED = ["mne-python/test.edf", "mne-python/test.bdf", "mne-python/test_bin_raw.fif", XDF, WAV,
             "openai_whisper/jfk.flac"]


@pytest.mark.parametrize("rel", CORRUPTED)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_file_ingests_whole_or_not_at_all(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                                                    rel: str, data: st.DataObject) -> None:
    """Ingest of a corrupted recording (the EEG formats through the streamed parse) into a store holding a
    session: either the new session is complete and reads back, or an XRDataError names the file and the
    store holds exactly what it held, its catalog included."""
    tmp = tmp_path_factory.mktemp("corrupt")
    store = xrdata.open_store(tmp / "store")
    # a file that is not in CORRUPTED (an unchanged copy of one would be skipped as already ingested)
    ingest([fixtures_dir / "scipy_io_wav/test-8000Hz-le-2ch-1byteu.wav"], store, "u1", session="kept")
    kept = store.read("u1", "kept")
    payload = (fixtures_dir / rel).read_bytes()
    path = tmp / Path(rel).name
    path.write_bytes(corrupt(payload, data.draw(corruptions(len(payload)))))
    try:
        ingest([path], store, "u1", session="new")
    except XRDataError as exc:
        assert path.name in str(exc), exc
        assert store.sessions("u1", include_incomplete=True) == ["kept"]
        assert not (tmp / "store" / "users" / "u1" / "new").exists()
    else:
        assert store.sessions("u1") == ["kept", "new"] and store.is_complete("u1", "new")
        store.read("u1", "new")
    assert not [t for t in threading.enumerate() if t.name == "xrdata-eeg-blocks"]
    assert_recording_equal(store.read("u1", "kept"), kept)
    sessions = store.catalog().select("session").unique().collect()["session"].to_list()
    assert sorted(sessions) == store.sessions("u1")  # (an empty recording is refused: no session without rows)
