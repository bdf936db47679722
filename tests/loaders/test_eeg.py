"""EEG readers (EDF, BDF, BrainVision, FIF, EEGLAB) against REFERENCE.json, raw file bytes and the contract."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xrdata
from xrdata.errors import LoaderError
from xrdata.loaders import READERS, read
from xrdata.loaders.eeg import read_bdf, read_brainvision, read_edf, read_eeglab, read_fif
from xrdata.model import Recording, Stream
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable

FIXTURES = {
    "mne-python/test.edf": (read_edf, "edf"),
    "mne-python/test.bdf": (read_bdf, "bdf"),
    "mne-python/test.vhdr": (read_brainvision, "brainvision"),
    "mne-python/test_bin_raw.fif": (read_fif, "fif"),
}
FLOAT32_RTOL = 1e-6  # float32 keeps 24 bits: relative error <= 2**-24 ~ 6e-8, with margin
ONE_US = 1_000  # ns


def _ordered_channels(rec: Recording) -> tuple[list[str], list[tuple[Stream, int]]]:
    """All channels in the file's order, rebuilt from meta['mne_channel_index'], and where each one lives."""
    slots: dict[int, tuple[str, Stream, int]] = {}
    for s in rec.streams.values():
        for col, idx in enumerate(s.meta["mne_channel_index"]):
            slots[idx] = (s.channels[col], s, col)
    order = sorted(slots)
    assert order == list(range(len(order)))
    return [slots[i][0] for i in order], [(slots[i][1], slots[i][2]) for i in order]


def _non_stim_events(rec: Recording) -> list[tuple[int, str]]:
    ev = rec.events.filter(~rec.events["label"].str.starts_with("stim/"))
    return list(zip(ev["time_ns"].to_list(), ev["label"].to_list(), strict=True))


# ------------------------------------------------------------------------------------ reference values


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_matches_reference(name: str, fixtures_dir: Path, reference: dict[str, Any]) -> None:
    ref = reference["mne"]["files"][name]
    read_x, fmt = FIXTURES[name]
    rec = read_x(fixtures_dir / name)
    check_writable(rec)
    names, where = _ordered_channels(rec)
    assert names == ref["ch_names"]
    assert len(names) == ref["n_channels"]
    # channel types: one stream per mne type; EEG channels (volts) in the eeg stream
    counts: dict[str, int] = {}
    for s in rec.streams.values():
        counts[s.meta["mne_ch_type"]] = counts.get(s.meta["mne_ch_type"], 0) + len(s.channels)
        assert s.n_samples == ref["n_times"]
        assert s.rate_hz == ref["sfreq"]
        assert s.data.dtype == np.float32
        assert s.data.shape == (ref["n_times"], len(s.channels))
    assert counts == ref["ch_type_counts"]
    eeg = rec.streams["eeg"]
    assert eeg.modality == "eeg" and set(eeg.units) == {"V"}
    assert all(s.modality == "other" for k, s in rec.streams.items() if k != "eeg")
    # first samples of channel 0 in volts (float32 of mne's float64) and the channel mean
    stream0, col0 = where[0]
    np.testing.assert_allclose(stream0.data[:5, col0], ref["data_first5_ch0_volts"], rtol=FLOAT32_RTOL, atol=1e-12)
    np.testing.assert_allclose(stream0.data[:, col0].astype(np.float64).mean(), ref["data_mean_ch0"], rtol=1e-5,
                               atol=1e-10)
    # clock: zero = meas_date = sample 0; sample i at i / sfreq
    anchor = datetime.fromisoformat(rec.meta["utc_anchor"])
    assert anchor == datetime.fromisoformat(ref["meas_date"])
    t = eeg.time_ns
    assert t[0] == 0
    assert abs(int(t[-1]) - round(ref["duration_s"] * 1e9)) <= ONE_US
    assert np.array_equal(t, np.rint(np.arange(ref["n_times"]) * 1e9 / ref["sfreq"]).astype(np.int64))
    # annotations -> events (stim-decoded events aside)
    ann = _non_stim_events(rec)
    assert len(ann) == ref["n_annotations"]
    for (t_ns, label), (onset, desc) in zip(ann, ref["annotations_first5"], strict=False):
        assert label == desc
        assert abs(t_ns - onset * 1e9) <= ONE_US
    assert rec.meta["source_format"] == fmt
    assert rec.meta["source_files"][0] == Path(name).name


def test_edf_stim_channel_decoded(fixtures_dir: Path) -> None:
    rec = read_edf(fixtures_dir / "mne-python/test.edf")
    stim = rec.streams["stim"]
    assert stim.channels == ["Status"] and stim.units == ["1"]
    ev = rec.events.filter(rec.events["label"] == "stim/Status")
    codes = ev["value"].to_list()
    assert codes[:3] == ["4352", "4096", "4100"]  # initial code, then each change to a new non-zero code
    # every decoded event sits where the stim channel changes to that code
    for t_ns, code in zip(ev["time_ns"].to_list(), codes, strict=True):
        i = int(np.searchsorted(stim.time_ns, t_ns))
        assert stim.data[i, 0] == float(code)
        assert i == 0 or stim.data[i - 1, 0] != float(code)
    assert not read_edf(fixtures_dir / "mne-python/test.edf", stim_events=False).events["label"].str.starts_with(
        "stim/").any()


def _bdf_physical(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a single-rate BDF independently of mne: (T, C) digital levels, per-channel gain (V per level)
    and (T, C) float64 physical volts (physical = (d - dmin) * gain + pmin, header units uV)."""
    raw = path.read_bytes()
    ns = int(raw[252:256])
    n_rec = int(raw[236:244])
    hdr = raw[256 : 256 * (ns + 1)]

    def col(offset: int, width: int) -> np.ndarray:
        return np.array([float(hdr[offset * ns + width * i : offset * ns + width * (i + 1)]) for i in range(ns)])

    pmin, pmax, dmin, dmax, spr = col(104, 8), col(112, 8), col(120, 8), col(128, 8), col(216, 8).astype(int)
    assert (spr == spr[0]).all()
    b = np.frombuffer(raw[256 * (ns + 1) :], dtype=np.uint8)[: n_rec * ns * spr[0] * 3].reshape(-1, 3).astype(np.int32)
    d = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)).astype(np.int32)
    d = np.where(d >= 1 << 23, d - (1 << 24), d).reshape(n_rec, ns, spr[0]).transpose(0, 2, 1).reshape(-1, ns)
    gain = (pmax - pmin) / (dmax - dmin)
    return d, gain * 1e-6, ((d - dmin) * gain + pmin) * 1e-6


def test_bdf_float32_keeps_every_24bit_level(fixtures_dir: Path) -> None:
    """float32 is enough for BDF: each 24-bit level maps to its own float32, within half a level."""
    rec = read_bdf(fixtures_dir / "mne-python/test.bdf")
    x = rec.streams["eeg"].data
    digital, gain, phys = _bdf_physical(fixtures_dir / "mne-python/test.bdf")
    n = x.shape[1]  # the EEG channels come first; Status is last
    err = np.abs(x.astype(np.float64) - phys[:, :n])
    # float32 rounding stays below half a level (0.48 at the saturated EXG8 near -0.26 V, tiny elsewhere)
    assert (err < 0.5 * gain[:n]).all()
    assert np.median(err / gain[:n]) < 0.01
    for j in range(n):
        assert np.unique(x[:, j]).size == np.unique(digital[:, j]).size


def _brainvision_ints(fixtures_dir: Path) -> np.ndarray:
    """(T, 32) int16 samples of test.eeg read straight from the bytes (INT_16, multiplexed)."""
    raw = np.fromfile(fixtures_dir / "mne-python/test.eeg", dtype="<i2")
    return raw.reshape(-1, 32)


def test_brainvision_units_from_header(fixtures_dir: Path) -> None:
    rec = read_brainvision(fixtures_dir / "mne-python/test.vhdr")
    ints = _brainvision_ints(fixtures_dir).astype(np.float64)
    eeg = rec.streams["eeg"]
    # Ch2=FP2,,0.5, (empty unit) and Ch3=F3,,0.5 (no unit field): microvolts, so EEG in volts
    for ch, col in (("FP1", 0), ("FP2", 1), ("F3", 2)):
        j = eeg.channels.index(ch)
        assert eeg.meta["orig_units"][j] == "µV"
        np.testing.assert_allclose(eeg.data[:, j], ints[:, col] * 0.5e-6, rtol=FLOAT32_RTOL, atol=0)
    misc = rec.streams["misc"]
    assert misc.channels == ["CP5", "CP6", "HL", "HR", "Vb", "ReRef"]
    assert misc.meta["orig_units"] == ["BS", "µS", "ARU", "uS", "S", "C"]
    assert misc.units == ["BS", "S", "ARU", "S", "S", "degC"]
    scale = [0.5, 0.5e-6, 0.5, 0.5e-6, 0.5, 0.5]  # resolution x (1e-6 where mne scales µS/uS to S)
    np.testing.assert_allclose(misc.data, ints[:, 26:32] * np.array(scale), rtol=FLOAT32_RTOL, atol=0)
    assert rec.meta["source_files"] == ["test.vhdr", "test.eeg", "test.vmrk"]


def test_brainvision_dat_data_file(fixtures_dir: Path, tmp_path: Path) -> None:
    """A header whose DataFile is a .dat is read the same."""
    src = fixtures_dir / "mne-python"
    shutil.copy(src / "test.eeg", tmp_path / "rec.dat")
    shutil.copy(src / "test.vmrk", tmp_path / "rec.vmrk")
    text = (src / "test.vhdr").read_text(encoding="utf-8")
    text = text.replace("DataFile=test.eeg", "DataFile=rec.dat").replace("MarkerFile=test.vmrk", "MarkerFile=rec.vmrk")
    (tmp_path / "rec.vhdr").write_text(text, encoding="utf-8")
    a = read_brainvision(src / "test.vhdr")
    b = read_brainvision(tmp_path / "rec.vhdr")
    assert b.meta["source_files"] == ["rec.vhdr", "rec.dat", "rec.vmrk"]
    for k in a.streams:
        assert np.array_equal(a.streams[k].data, b.streams[k].data)
    assert a.events.equals(b.events)


def test_brainvision_missing_companion_is_named(fixtures_dir: Path, tmp_path: Path) -> None:
    shutil.copy(fixtures_dir / "mne-python/test.vhdr", tmp_path / "test.vhdr")
    shutil.copy(fixtures_dir / "mne-python/test.vmrk", tmp_path / "test.vmrk")
    with pytest.raises(LoaderError, match=r"test\.vhdr.*DataFile=test\.eeg"):
        read_brainvision(tmp_path / "test.vhdr")


def test_channel_types_option(fixtures_dir: Path) -> None:
    rec = read_fif(fixtures_dir / "mne-python/test_bin_raw.fif", channel_types={"EEG 031": "eog", "EEG 032": "eog"})
    assert rec.streams["eog"].channels == ["EEG 031", "EEG 032"]
    assert rec.streams["eog"].modality == "other" and rec.streams["eog"].units == ["V", "V"]
    assert len(rec.streams["eeg"].channels) == 30
    with pytest.raises(LoaderError, match="NOPE"):
        read_fif(fixtures_dir / "mne-python/test_bin_raw.fif", channel_types={"NOPE": "eog"})


def test_large_stim_codes_stay_exact(tmp_path: Path) -> None:
    """Stim codes above 2**24 are not all exact in float32: that stream falls back to float64."""
    import mne

    info = mne.create_info(["Cz", "STI"], 100.0, ["eeg", "stim"])
    data = np.zeros((2, 200))
    data[0] = 1e-5
    data[1, 50:60] = 2**25 + 4  # stored exactly (float32 spacing is 4 there), but 2**25 + 1 would not be
    mne.io.RawArray(data, info, verbose="error").save(tmp_path / "big_raw.fif", verbose="error")
    rec = read_fif(tmp_path / "big_raw.fif")
    assert rec.streams["eeg"].data.dtype == np.float32
    assert rec.streams["stim"].data.dtype == np.float64
    assert rec.streams["stim"].data[55, 0] == 2**25 + 4
    assert rec.events.rows() == [(500_000_000, 0, "stim/STI", str(2**25 + 4))]


# ------------------------------------------------------------------------------- mixed-rate EDF (hand-made)


def _edf_bytes(signals: list[np.ndarray], rates: list[int], labels: list[str], units: list[str],
               n_records: int, annotations: list[tuple[float, float, str]]) -> bytes:
    """A minimal EDF+C file with 1 s records, one signal per rate, physical = 0.1 x digital (units as given).

    Written by hand in the test because no installed library writes EDF with per-signal rates (mne's
    exporter needs edfio, which is not a dependency, and writes one rate only)."""
    labs = [*labels, "EDF Annotations"]
    spr = [*rates, 30]
    ns = len(labs)

    def f(value: object, n: int) -> bytes:
        b = str(value).encode("latin-1")[:n]
        return b + b" " * (n - len(b))

    hdr = f("0", 8) + f("X X X X", 80) + f("Startdate 01-JAN-2020 X X X", 80) + f("01.01.20", 8) + f("12.30.00", 8)
    hdr += f(256 * (ns + 1), 8) + f("EDF+C", 44) + f(n_records, 8) + f(1, 8) + f(ns, 4)
    hdr += b"".join(f(x, 16) for x in labs) + b"".join(f("", 80) for _ in labs)
    hdr += b"".join(f(u, 8) for u in [*units, ""])
    hdr += b"".join(f(-3276.8, 8) for _ in labs) + b"".join(f(3276.7, 8) for _ in labs)
    hdr += b"".join(f(-32768, 8) for _ in labs) + b"".join(f(32767, 8) for _ in labs)
    hdr += b"".join(f("", 80) for _ in labs) + b"".join(f(n, 8) for n in spr) + b"".join(f("", 32) for _ in labs)
    body = b""
    for k in range(n_records):
        for sig, n in zip(signals, rates, strict=True):
            body += np.asarray(sig[k * n : (k + 1) * n], "<i2").tobytes()
        tal = f"+{k}\x14\x14\x00".encode()
        if k == 0:
            for onset, dur, text in annotations:
                tal += f"+{onset}\x15{dur}\x14{text}\x14\x00".encode()
        body += tal + b"\x00" * (60 - len(tal))
    return hdr + body


def test_mixed_rate_edf_read_at_native_rates(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    fast = rng.integers(-2000, 2000, (2, 768))
    slow = rng.integers(-2000, 2000, 192)
    temp = rng.integers(300, 400, 48)
    path = tmp_path / "mixed.edf"
    path.write_bytes(_edf_bytes([fast[0], fast[1], slow, temp], [256, 256, 64, 16], ["Fz", "Cz", "Resp", "Temp"],
                                ["uV", "uV", "uV", "degC"], 3, [(0.5, 0.25, "hello")]))
    rec = read_edf(path)
    check_writable(rec)
    assert sorted(rec.streams) == ["eeg_256hz", "eeg_64hz", "eeg_nonvolt_16hz"]
    assert rec.meta["rate_groups_hz"] == [256.0, 64.0, 16.0]
    s256, s64, s16 = rec.streams["eeg_256hz"], rec.streams["eeg_64hz"], rec.streams["eeg_nonvolt_16hz"]
    assert (s256.rate_hz, s64.rate_hz, s16.rate_hz) == (256.0, 64.0, 16.0)
    assert s256.channels == ["Fz", "Cz"] and s64.channels == ["Resp"] and s16.channels == ["Temp"]
    # native samples, no resampling: physical = 0.1 x digital in the file's unit (uV -> V; degC unscaled)
    np.testing.assert_allclose(s256.data, fast.T * 1e-7, rtol=FLOAT32_RTOL, atol=1e-15)
    np.testing.assert_allclose(s64.data[:, 0], slow * 1e-7, rtol=FLOAT32_RTOL, atol=1e-15)
    np.testing.assert_allclose(s16.data[:, 0], temp * 0.1, rtol=FLOAT32_RTOL)
    assert s16.units == ["degC"] and s16.modality == "other"
    assert np.array_equal(s64.time_ns, np.arange(192) * 15_625_000)
    assert s64.time_ns[-1] == s256.time_ns[-4]  # same clock: last slow sample at 2.984375 s
    assert rec.events.rows() == [(500_000_000, 250_000_000, "hello", "")]


def test_mixed_rate_edf_with_clashing_labels_is_refused(tmp_path: Path) -> None:
    sig = np.zeros(512, dtype=np.int64)
    path = tmp_path / "clash.edf"
    path.write_bytes(_edf_bytes([sig, sig[:128]], [256, 64], ["A", "A"], ["uV", "uV"], 2, []))
    with pytest.raises(LoaderError, match=r"clash\.edf.*share the labels \['A'\]"):
        read_edf(path)


# ---------------------------------------------------------------------------------------- EEGLAB, .fif.gz


def test_eeglab_set_written_by_mne(fixtures_dir: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    if importlib.util.find_spec("eeglabio") is None:
        pytest.skip("eeglabio is not installed, so mne.export cannot write a .set file to test with "
                    "(pip install eeglabio)")
    import mne

    ref = reference["mne"]["files"]["mne-python/test_bin_raw.fif"]
    raw = mne.io.read_raw_fif(fixtures_dir / "mne-python/test_bin_raw.fif", preload=True, verbose="error")
    raw.set_annotations(mne.Annotations([0.5, 1.25], [0.1, 0.0], ["go", "stop"], orig_time=raw.info["meas_date"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eeglabio/scipy chatter while writing
        mne.export.export_raw(tmp_path / "rec.set", raw, verbose="error")
    rec = read_eeglab(tmp_path / "rec.set")
    check_writable(rec)
    names, where = _ordered_channels(rec)
    assert names == ref["ch_names"]  # EEGLAB keeps no channel types: the stim channel reads as EEG
    stream0, col0 = where[0]
    np.testing.assert_allclose(stream0.data[:5, col0], ref["data_first5_ch0_volts"], rtol=FLOAT32_RTOL)
    assert stream0.rate_hz == ref["sfreq"] and stream0.n_samples == ref["n_times"]
    assert [(r[0], r[1], r[2]) for r in rec.events.rows()] == [(500_000_000, 100_000_000, "go"),
                                                               (1_250_000_000, 0, "stop")]
    assert read(tmp_path / "rec.set").meta["source_format"] == "eeglab"


def test_fif_gz(fixtures_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "test_raw.fif.gz"
    path.write_bytes(gzip.compress((fixtures_dir / "mne-python/test_bin_raw.fif").read_bytes()))
    a = read_fif(fixtures_dir / "mne-python/test_bin_raw.fif")
    b = read(path)
    assert b.meta["source_format"] == "fif" and b.session_id == "test_raw"
    for k in a.streams:
        assert np.array_equal(a.streams[k].data, b.streams[k].data)


# ------------------------------------------------------------------------------ dispatch, store round trip


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_dispatch_and_store_roundtrip(name: str, fixtures_dir: Path, tmp_path: Path) -> None:
    read_x, fmt = FIXTURES[name]
    rec = read(fixtures_dir / name, user_id="u1", session_id="s1")
    assert rec.meta["source_format"] == fmt
    assert READERS[fmt].func is read_x
    store = xrdata.open_store(tmp_path / "store")
    store.write(rec)
    assert_recording_equal(rec, store.read("u1", "s1"))


# ------------------------------------------------------------------------------------------- robustness


def _contract(read_x: Any, folder: Path, path: Path) -> None:
    rec = check_reader_contract(read_x, path)
    if rec is not None:
        check_writable(rec)


@pytest.mark.parametrize("name", ["mne-python/test.edf", "mne-python/test.bdf", "mne-python/test_bin_raw.fif"])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_single_file(name: str, fixtures_dir: Path, data: st.DataObject) -> None:
    read_x, _ = FIXTURES[name]
    payload = (fixtures_dir / name).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(corrupt(payload, spec))
        _contract(read_x, Path(tmp), path)


@pytest.mark.parametrize("target", ["test.vhdr", "test.vmrk", "test.eeg"])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_brainvision(target: str, fixtures_dir: Path, data: st.DataObject) -> None:
    src = fixtures_dir / "mne-python"
    payload = (src / target).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for f in ("test.vhdr", "test.vmrk", "test.eeg"):
            shutil.copy(src / f, folder / f)
        (folder / target).write_bytes(corrupt(payload, spec))
        _contract(read_brainvision, folder, folder / "test.vhdr")
