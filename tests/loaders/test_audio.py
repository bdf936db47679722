"""read_audio against the soundfile reference values (REFERENCE.json key ``audio``), corruption robustness,
store round trips, and generated OGG/MP3/WAVEX/float files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xrdata
import xrdata.loaders
from xrdata.encoding import compact_time, expand_time
from xrdata.errors import LoaderError
from xrdata.loaders.audio import read_audio
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable

sf = pytest.importorskip("soundfile")

FIXTURES = [
    "openai_whisper/jfk.flac",
    "scipy_io_wav/test-44100Hz-le-1ch-4bytes.wav",
    "scipy_io_wav/test-48000Hz-2ch-64bit-float-le-wavex.wav",
    "scipy_io_wav/test-8000Hz-le-2ch-1byteu.wav",
    "scipy_io_wav/test-8000Hz-le-3ch-5S-24bit.wav",
]
# Expected channel names: mono / stereo by count (jfk.flac, the PCM WAVs), the WAVEX masks 0 (mono, no
# positions) and 0x3 (front left + right), and no mask for 3 channels.
CHANNELS = {
    "openai_whisper/jfk.flac": ["left", "right"],
    "scipy_io_wav/test-44100Hz-le-1ch-4bytes.wav": ["mono"],
    "scipy_io_wav/test-48000Hz-2ch-64bit-float-le-wavex.wav": ["left", "right"],
    "scipy_io_wav/test-8000Hz-le-2ch-1byteu.wav": ["left", "right"],
    "scipy_io_wav/test-8000Hz-le-3ch-5S-24bit.wav": ["ch0", "ch1", "ch2"],
}
START_NS = 1_700_000_000_123_456_789  # an epoch-scale start: timestamps must stay exact


def _expected_times(start_ns: int, n: int, rate: int) -> np.ndarray:
    """start + round_half_up(i * 1e9 / rate) in integers, independent of the reader's code path."""
    i = np.arange(n, dtype=np.int64)
    return start_ns + (2 * i * 10**9 + rate) // (2 * rate)


def _check_audio(rec: xrdata.Recording) -> None:
    check_writable(rec)
    (s,) = rec.by_modality("audio")
    assert s.data.dtype == np.float32 and s.data.ndim == 2
    finite = s.data[np.isfinite(s.data)]
    assert finite.size == 0 or float(np.abs(finite).max()) <= 1.0


# ------------------------------------------------------------------------------------- reference values


@pytest.mark.parametrize("rel", FIXTURES)
def test_matches_reference(fixtures_dir: Path, reference: dict[str, Any], rel: str) -> None:
    ref = reference["audio"]["files"][rel]
    rec = read_audio(fixtures_dir / rel, user_id="u1", start_ns=START_NS)
    _check_audio(rec)
    assert rec.meta["source_files"] == [Path(rel).name]
    s = rec.streams["audio"]
    assert s.modality == "audio" and s.units == ["1"] * ref["channels"]
    assert s.data.shape == tuple(ref["read_shape"]) == (ref["frames"], ref["channels"])
    assert s.rate_hz == ref["samplerate"]
    assert s.meta["format"] == ref["format"] and s.meta["subtype"] == ref["subtype"]
    assert s.meta["source_rate_hz"] == ref["samplerate"]
    assert s.channels == CHANNELS[rel]
    # soundfile's float conversion, rounded to float32 (24-bit and smaller PCM are exact in float32).
    np.testing.assert_allclose(s.data[0], ref["first_frame_float64"], rtol=1e-7, atol=1e-9)
    assert float(np.abs(s.data).max()) == pytest.approx(ref["abs_max"], rel=1e-7, abs=1e-9)
    t = s.time_ns
    assert t.dtype == np.int64
    np.testing.assert_array_equal(t, _expected_times(START_NS, ref["frames"], ref["samplerate"]))
    # the last sample ends the file: duration = n / rate, within 1 us
    assert abs(int(t[-1]) - START_NS + round(1e9 / ref["samplerate"]) - ref["duration_s"] * 1e9) < 1_000
    np.testing.assert_array_equal(t, expand_time([[0, START_NS]], ref["samplerate"], 1, ref["frames"]))
    if ref["frames"] >= 64:  # the store keeps a compact time base for it (not for tiny streams)
        base = compact_time(t, s.rate_hz)
        assert base is not None and len(base["segments"]) == 1


def test_sample_conversion_documented(fixtures_dir: Path) -> None:
    u8 = read_audio(fixtures_dir / "scipy_io_wav/test-8000Hz-le-2ch-1byteu.wav").streams["audio"]
    assert u8.meta["sample_conversion"] == "unsigned 8-bit: (u - 128) / 128"
    assert np.all(u8.data * 128 == np.round(u8.data * 128))  # multiples of 1/128
    s24 = read_audio(fixtures_dir / "scipy_io_wav/test-8000Hz-le-3ch-5S-24bit.wav").streams["audio"]
    assert s24.meta["sample_conversion"] == "signed 24-bit integer: v / 2**23"
    assert s24.data[0, 0] == -1.0 and s24.data[0, 1] == np.float32(-(2**23 - 1) / 2**23)


@pytest.mark.parametrize("rel", FIXTURES)
def test_store_round_trip(fixtures_dir: Path, rel: str) -> None:
    rec = read_audio(fixtures_dir / rel, user_id="u1", start_ns=START_NS)
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        store.write(rec)
        back = store.read("u1", rec.session_id)
        assert_recording_equal(rec, back)


@pytest.mark.parametrize("rel", FIXTURES)
def test_dispatch(fixtures_dir: Path, rel: str) -> None:
    rec = xrdata.loaders.read(fixtures_dir / rel, user_id="u1")
    assert_recording_equal(rec, read_audio(fixtures_dir / rel, user_id="u1"))
    assert xrdata.loaders.READERS["audio"].func is read_audio


# ---------------------------------------------------------------------------------------- robustness


def _robust(name: str, payload: bytes, spec: tuple[list[tuple[int, int]], int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(read_audio, p)
        if rec is not None:
            _check_audio(rec)


@pytest.mark.parametrize("rel", FIXTURES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_fixture(fixtures_dir: Path, rel: str, data: st.DataObject) -> None:
    payload = (fixtures_dir / rel).read_bytes()
    _robust(Path(rel).name, payload, data.draw(corruptions(len(payload))))


def test_corrupt_frame_count_does_not_reserve_memory(fixtures_dir: Path, tmp_path: Path) -> None:
    """Byte 22 of jfk.flac is in STREAMINFO's channel count / total-samples field: 74 makes the header claim
    1.24e9 frames of 2 channels. The reader sizes its buffer by what the bytes can decode to, not by that."""
    import tracemalloc

    b = bytearray((fixtures_dir / "openai_whisper" / "jfk.flac").read_bytes())
    b[22] = 74
    p = tmp_path / "jfk.flac"
    p.write_bytes(bytes(b))
    tracemalloc.start()
    try:
        rec = check_reader_contract(read_audio, p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20, f"{peak / 2**20:.0f} MiB reserved"  # numpy reports its buffers to tracemalloc
    if rec is not None:
        _check_audio(rec)


def _sine(rate: int, seconds: float, freq: float, channels: int = 2, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (1 - 0.5 * k) for k in range(channels)], axis=1).astype(np.float32)


def _dominant_hz(x: np.ndarray, rate: float) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(x.shape[0], 1 / rate)[int(np.argmax(spec))])


@pytest.mark.parametrize(("fmt", "subtype", "suffix"), [("OGG", "VORBIS", ".ogg"), ("MP3", "MPEG_LAYER_III", ".mp3")])
def test_generated_lossy(fmt: str, subtype: str, suffix: str) -> None:
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}/{subtype}")
    x = _sine(16000, 1.0, 440.0)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"tone{suffix}"
        try:
            sf.write(p, x, 16000, format=fmt, subtype=subtype)
        except sf.LibsndfileError as exc:
            pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}: {exc}")
        rec = read_audio(p, start_ns=5)
        _check_audio(rec)
        s = rec.streams["audio"]
        assert s.meta["format"] == fmt and s.meta["subtype"] == subtype
        assert s.rate_hz == 16000 and s.channels == ["left", "right"]
        assert abs(s.data.shape[0] - x.shape[0]) <= 2 * 1152  # MP3 frames pad the start/end
        assert s.time_ns[0] == 5
        assert _dominant_hz(s.data[:, 0], 16000) == pytest.approx(440, abs=2)
        assert float(np.abs(s.data[:, 0]).max()) == pytest.approx(0.5, abs=0.1)
        assert float(np.abs(s.data[:, 1]).max()) == pytest.approx(0.25, abs=0.1)
        assert xrdata.loaders.read(p).streams["audio"].data.shape == s.data.shape
        payload = p.read_bytes()

    @settings(max_examples=10, deadline=None)
    @given(spec=corruptions(len(payload)))
    def robust(spec: tuple[list[tuple[int, int]], int]) -> None:
        _robust(f"tone{suffix}", payload, spec)

    robust()


# ------------------------------------------------------------------------------------------- options


def test_resample_to_new_rate() -> None:
    pytest.importorskip("librosa")
    x = _sine(48000, 0.5, 1000.0)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "tone.wav"
        sf.write(p, x, 48000, subtype="PCM_16")
        rec = read_audio(p, start_ns=START_NS, resample_hz=16000)
    _check_audio(rec)
    s = rec.streams["audio"]
    assert s.rate_hz == 16000.0 and s.data.shape == (8000, 2)
    assert s.meta["source_rate_hz"] == 48000 and "soxr_hq" in s.meta["resampler"]
    np.testing.assert_array_equal(s.time_ns, _expected_times(START_NS, 8000, 16000))
    np.testing.assert_array_equal(s.time_ns, expand_time([[0, START_NS]], 16000, 1, 8000))
    assert _dominant_hz(s.data[:, 0], 16000) == pytest.approx(1000, abs=2)
    mid = s.data[1000:7000]  # away from the filter's edge transients
    assert float(np.abs(mid[:, 0]).max()) == pytest.approx(0.5, abs=0.01)
    assert float(np.abs(mid[:, 1]).max()) == pytest.approx(0.25, abs=0.01)


def test_resample_full_scale_clips(fixtures_dir: Path) -> None:
    pytest.importorskip("librosa")
    rec = read_audio(fixtures_dir / "scipy_io_wav/test-8000Hz-le-3ch-5S-24bit.wav", resample_hz=16000)
    _check_audio(rec)
    assert rec.streams["audio"].data.shape == (10, 3)
    assert rec.streams["audio"].rate_hz == 16000


def test_channel_mask_names() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "surround.wav"
        sf.write(p, np.zeros((10, 6), np.float32), 8000, format="WAVEX", subtype="PCM_16")
        s = read_audio(p).streams["audio"]
    assert s.meta["channel_mask"] == 0x3F
    assert s.channels == ["front_left", "front_right", "front_center", "low_frequency", "back_left", "back_right"]


def test_channel_names_override(fixtures_dir: Path) -> None:
    p = fixtures_dir / "scipy_io_wav/test-8000Hz-le-3ch-5S-24bit.wav"
    s = read_audio(p, channels=["mic_a", "mic_b", "mic_c"]).streams["audio"]
    assert s.channels == ["mic_a", "mic_b", "mic_c"] and s.meta["source_channels"] == ["ch0", "ch1", "ch2"]
    for bad in (["a", "b"], ["a", "a", "b"]):
        with pytest.raises(LoaderError, match=p.name):
            read_audio(p, channels=bad)


def test_float_out_of_range_and_non_finite() -> None:
    x = np.array([[0.5], [1.5], [-2.0], [np.inf], [np.nan], [0.25]], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "loud.wav"
        sf.write(p, x, 8000, subtype="FLOAT")
        with pytest.raises(LoaderError, match=r"loud\.wav.*clip=True"):
            read_audio(p)
        rec = read_audio(p, clip=True)
    _check_audio(rec)
    s = rec.streams["audio"]
    np.testing.assert_array_equal(s.data[:, 0], [0.5, 1.0, -1.0, np.nan, np.nan, 0.25])
    assert s.meta["clipped_samples"] == 2 and s.meta["non_finite_samples"] == 2


def test_empty_and_truncated_wav() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "empty.wav"
        sf.write(p, np.zeros((0, 2), np.float32), 8000, subtype="PCM_16")
        rec = read_audio(p)
        _check_audio(rec)
        assert rec.streams["audio"].data.shape == (0, 2)
        q = Path(tmp) / "cut.wav"
        sf.write(q, _sine(8000, 0.1, 100), 8000, subtype="PCM_16")
        q.write_bytes(q.read_bytes()[:-101])  # half a frame short of 25 frames less
        rec = read_audio(q)
        _check_audio(rec)
        assert rec.streams["audio"].data.shape == (774, 2)


def test_truncated_flac(fixtures_dir: Path) -> None:
    payload = (fixtures_dir / "openai_whisper/jfk.flac").read_bytes()
    full = read_audio(fixtures_dir / "openai_whisper/jfk.flac").streams["audio"]
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "jfk.flac"
        p.write_bytes(payload[: len(payload) // 2])
        with pytest.raises(LoaderError, match=r"jfk\.flac.*allow_truncated=True"):
            read_audio(p)
        rec = read_audio(p, allow_truncated=True)
    _check_audio(rec)
    s = rec.streams["audio"]
    assert s.meta["truncated"] and "decode_error" in s.meta and s.meta["declared_frames"] == 485100
    assert 0 < s.data.shape[0] < 485100
    np.testing.assert_array_equal(s.data, full.data[: s.data.shape[0]])  # the kept prefix is exact


def test_bad_arguments_and_inputs(fixtures_dir: Path) -> None:
    p = fixtures_dir / "scipy_io_wav/test-8000Hz-le-2ch-1byteu.wav"
    with pytest.raises(LoaderError, match=p.name):
        read_audio(p, start_ns=1.5)  # type: ignore[arg-type]
    with pytest.raises(LoaderError, match=p.name):
        read_audio(p, resample_hz=-1)
    with pytest.raises(LoaderError, match="no such file"):
        read_audio(fixtures_dir / "missing.wav")
    with pytest.raises(LoaderError, match="folder"):
        read_audio(fixtures_dir / "scipy_io_wav")
    with tempfile.TemporaryDirectory() as tmp:
        junk = Path(tmp) / "junk.wav"
        junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
        with pytest.raises(LoaderError, match=r"junk\.wav"):
            read_audio(junk)
        m4a = Path(tmp) / "notes.m4a"  # not libsndfile's: goes to librosa/audioread, which fails cleanly
        m4a.write_bytes(b"\x00\x00\x00\x18ftypM4A garbage")
        with pytest.raises(LoaderError, match=r"notes\.m4a"):
            read_audio(m4a)
