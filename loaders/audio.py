"""Audio files -> one ``audio`` stream, through soundfile (libsndfile), librosa for resampling.

Formats: everything libsndfile decodes: WAV (PCM 8/16/24/32-bit, float32/64, WAVE_FORMAT_EXTENSIBLE), FLAC,
OGG (Vorbis/Opus), MP3 (libsndfile >= 1.1), AIFF, CAF, W64, RF64 ... Files libsndfile does not know (e.g.
``.m4a``) are handed to ``librosa.load`` (audioread), which needs an ffmpeg/gstreamer backend on the machine.

Sample values (float32 full scale, as libsndfile converts them when asked for float):

* signed integer PCM of ``b`` bits: ``v / 2**(b-1)``, so ``[-1, 1 - 2**-(b-1)]``. 24-bit samples are read
  as ``v * 256 / 2**31`` = ``v / 2**23`` (-8388608 -> -1.0, 8388607 -> 0.99999988); 32-bit PCM keeps only
  float32's 24-bit mantissa.
* unsigned 8-bit PCM (``PCM_U8``, the WAV 8-bit format): ``(u - 128) / 128`` (0 -> -1.0, 128 -> 0.0,
  255 -> 0.9921875).
* float32/float64 files: the stored values (float64 rounded to float32). Values beyond [-1, 1] are an error
  unless ``clip=True``; non-finite values become NaN (missing).
* lossy codecs (Vorbis, Opus, MP3): the decoder's float output; decoder overshoot past full scale is clipped
  and counted in the stream meta (``clipped_samples``), as is resampler overshoot.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xrdata.encoding import expand_time, rate_fraction
from xrdata.errors import LoaderError, require
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.model import Recording, Stream

#: Suffixes libsndfile decodes itself; other suffixes fall back to librosa/audioread.
SNDFILE_SUFFIXES = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".caf", ".w64",
    ".rf64", ".au", ".snd",
)

#: WAVE_FORMAT_EXTENSIBLE speaker positions, in dwChannelMask bit order (bit 0 = SPEAKER_FRONT_LEFT).
SPEAKER_NAMES = (
    "front_left", "front_right", "front_center", "low_frequency", "back_left", "back_right",
    "front_left_of_center", "front_right_of_center", "back_center", "side_left", "side_right", "top_center",
    "top_front_left", "top_front_center", "top_front_right", "top_back_left", "top_back_center",
    "top_back_right",
)

_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_LOSSY_SUBTYPES = ("VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III")


def _sample_conversion(subtype: str) -> str:
    """How the stored samples were mapped to float32 full scale (recorded in the stream meta)."""
    if subtype == "PCM_U8":
        return "unsigned 8-bit: (u - 128) / 128"
    if subtype.startswith("PCM_"):
        bits = subtype[4:]
        return f"signed {bits}-bit integer: v / 2**{int(bits) - 1}" if bits.isdigit() else subtype
    if subtype in _FLOAT_SUBTYPES:
        return "float samples as stored (cast to float32)"
    if subtype in _LOSSY_SUBTYPES:
        return "decoder float output (lossy codec), overshoot clipped to [-1, 1]"
    return f"libsndfile float conversion of {subtype}"


def _wav_channel_mask(path: Path) -> int | None:
    """The dwChannelMask of a WAVE_FORMAT_EXTENSIBLE file, else None.

    Hand-written because neither soundfile nor libsndfile exposes it: libsndfile's SFC_GET_CHANNEL_MAP_INFO
    returns nothing for WAVEX files. Walks the RIFF chunks to ``fmt `` (at most 64 chunks).
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return None
        for _ in range(64):
            hdr = fh.read(8)
            if len(hdr) < 8:
                return None
            size = int.from_bytes(hdr[4:8], "little")
            if hdr[:4] == b"fmt ":
                body = fh.read(min(size, 40))
                # WAVEFORMATEXTENSIBLE: wFormatTag 0xFFFE at 0, dwChannelMask at byte 20 of the fmt body.
                if len(body) >= 24 and int.from_bytes(body[:2], "little") == 0xFFFE:
                    return int.from_bytes(body[20:24], "little")
                return None
            fh.seek(size + (size & 1), 1)
    return None


def channel_names(n_channels: int, mask: int | None) -> list[str]:
    """Channel names: speaker positions from a WAV channel mask when it describes the channels, else
    ``mono`` (1 channel), ``left``/``right`` (2 channels) or ``ch0``..``chN-1``.

    A front-left + front-right mask gives ``left``/``right`` and a front-centre mono mask ``mono`` (the
    audio schema's preferred names); a mask with fewer positions than channels names the rest ``ch<k>``.
    """
    known = (1 << len(SPEAKER_NAMES)) - 1
    if mask and not mask & ~known:
        names = [SPEAKER_NAMES[b] for b in range(len(SPEAKER_NAMES)) if mask >> b & 1][:n_channels]
        if names == ["front_left", "front_right"]:
            return ["left", "right"]
        if names == ["front_center"] and n_channels == 1:
            return ["mono"]
        return names + [f"ch{k}" for k in range(len(names), n_channels)]
    if n_channels == 1:
        return ["mono"]
    if n_channels == 2:
        return ["left", "right"]
    return [f"ch{k}" for k in range(n_channels)]


def _decode_sndfile(path: Path, allow_truncated: bool) -> tuple[np.ndarray, int, dict[str, Any]]:
    """(frames, channels) float32 samples, the sample rate, and the file's metadata via soundfile."""
    sf: Any = require("soundfile", "loaders")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise LoaderError(f"{path}: not a readable audio file (libsndfile: {exc})") from exc
    with f:
        declared = int(f.frames)
        info: dict[str, Any] = {
            "format": f.format,
            "subtype": f.subtype,
            "endian": f.endian,
            "declared_frames": declared,
            "decoder": f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__})",
        }
        tags = {k: v for k, v in f.copy_metadata().items() if isinstance(v, str) and v}
        if tags:
            info["tags"] = tags
        rate = int(f.samplerate)
        # Read block by block into one buffer (what soundfile.read does in one call) so that a decoder error
        # part-way (a truncated FLAC "lost sync") still tells how many frames were good. The buffer starts at
        # what the file's bytes can plausibly decode to and doubles when more comes, instead of trusting the
        # header's frame count: a corrupt count would otherwise reserve gigabytes for a small file.
        plausible = max(1 << 16, 64 * path.stat().st_size // (4 * f.channels))
        data = np.empty((min(declared, plausible), f.channels), dtype=np.float32)
        pos = 0
        while pos < declared:
            if pos == data.shape[0]:
                grown = np.empty((min(declared, 2 * pos), f.channels), dtype=np.float32)
                grown[:pos] = data
                data = grown
            try:
                got = f.read(out=data[pos : pos + (1 << 16)])
            except (sf.LibsndfileError, RuntimeError) as exc:
                if not (allow_truncated and pos):
                    raise LoaderError(
                        f"{path}: decoding failed after {pos} of {declared} frames (libsndfile: {exc})"
                        + (f"; pass allow_truncated=True to keep the first {pos} frames" if pos else "")
                    ) from exc
                info["decode_error"] = str(exc)
                break
            if got.shape[0] == 0:
                break
            pos += got.shape[0]
    if pos < declared:
        # Truncated: soundfile/libsndfile stopped early; keep only what was decoded (and free the rest).
        data = data[:pos].copy()
    return data, rate, info


def _decode_librosa(path: Path, reason: BaseException) -> tuple[np.ndarray, int, dict[str, Any]]:
    """Fallback for formats libsndfile does not know: librosa.load (audioread: ffmpeg/gstreamer)."""
    librosa: Any = require("librosa", "loaders")
    try:
        with warnings.catch_warnings():
            # librosa warns that soundfile failed and that its audioread path is deprecated: both expected.
            warnings.simplefilter("ignore")
            y, rate = librosa.load(str(path), sr=None, mono=False, dtype=np.float32)
    except Exception as exc:
        raise LoaderError(
            f"{path}: not readable by libsndfile ({reason}) nor by librosa/audioread ({type(exc).__name__}: "
            f"{exc}); convert it to WAV/FLAC, or install ffmpeg for audioread"
        ) from exc
    data = np.ascontiguousarray(np.atleast_2d(y).T, dtype=np.float32)  # librosa: (channels, frames)
    info = {"format": path.suffix.lstrip(".").upper(), "subtype": "DECODED", "declared_frames": data.shape[0],
            "decoder": f"librosa {librosa.__version__} (audioread)"}
    return data, int(rate), info


@reader(
    "audio",
    SNDFILE_SUFFIXES,
    description="audio files (WAV/WAVEX, FLAC, OGG, MP3, AIFF ...) via soundfile; optional resampling",
)
def read_audio(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    start_ns: int = 0,
    resample_hz: float | None = None,
    channels: Sequence[str] | None = None,
    clip: bool = False,
    allow_truncated: bool = False,
) -> Recording:
    """Read an audio file into a recording with one ``audio`` stream named ``audio``.

    Args:
        path: the audio file.
        user_id, session_id: ids of the recording (session id defaults to the file name stem).
        start_ns: time of the first sample in int64 nanoseconds on the session clock (audio files carry no
            clock; pass the time the recording started, e.g. from an XDF marker).
        resample_hz: resample to this rate with ``librosa.resample`` (soxr_hq); the stream's rate becomes it.
        channels: names for the channels (one per channel), overriding the names derived from the file
            (WAV channel mask, else ``mono`` / ``left``, ``right`` / ``ch0``..).
        clip: for float WAV/AIFF files only: clip samples beyond [-1, 1] (counted in the stream meta)
            instead of refusing the file.
        allow_truncated: when the decoder fails part-way (a truncated or damaged FLAC/OGG/MP3), keep the
            frames decoded before the failure (``meta["truncated"]``, ``meta["decode_error"]``) instead of
            refusing the file. Short WAV data chunks are always read up to the end of the file.

    Returns:
        Recording with stream ``audio``: data ``(frames, channels)`` float32 in [-1, 1] (NaN = missing),
        unit ``"1"``, ``rate_hz`` the (new) sample rate, ``time_ns[i] = start_ns + round(i * 1e9 / rate)``
        (the store's exact compact time base, :func:`xrdata.encoding.expand_time`). The stream meta keeps
        the source format/subtype, source rate, channel mask, sample conversion and any clipping counts.
    """
    path = Path(path)
    if isinstance(start_ns, bool) or not isinstance(start_ns, int | np.integer):
        raise LoaderError(f"{path}: start_ns must be integer nanoseconds, got {start_ns!r}")
    if resample_hz is not None and (
        isinstance(resample_hz, bool) or not isinstance(resample_hz, int | float | np.number)
        or not math.isfinite(resample_hz) or resample_hz <= 0
    ):
        raise LoaderError(f"{path}: resample_hz must be a positive number of Hz, got {resample_hz!r}")
    if path.is_dir():
        raise LoaderError(f"{path}: is a folder; read_audio takes one audio file")

    try:
        data, rate, info = _decode_sndfile(path, allow_truncated)
    except LoaderError as exc:
        if path.suffix.lower() in SNDFILE_SUFFIXES:
            raise
        data, rate, info = _decode_librosa(path, exc.__cause__ or exc)
    if rate <= 0:
        raise LoaderError(f"{path}: the header declares a sample rate of {rate} Hz")
    n_ch = data.shape[1]
    subtype = str(info["subtype"])

    meta: dict[str, Any] = {**info, "source_rate_hz": rate, "sample_conversion": _sample_conversion(subtype)}
    if data.shape[0] < int(info["declared_frames"]):
        meta["truncated"] = True

    bad = ~np.isfinite(data)
    if bad.any():
        data[bad] = np.nan  # an infinite sample is corrupt, not loud: missing
        meta["non_finite_samples"] = int(bad.sum())
    with np.errstate(invalid="ignore"):
        over = np.abs(data) > 1.0
    n_over = int(over.sum())
    if n_over and subtype in _FLOAT_SUBTYPES and not clip:
        raise LoaderError(
            f"{path}: {n_over} float sample(s) exceed full scale [-1, 1] "
            f"(max |x| {float(np.nanmax(np.abs(data))):.4g}); pass clip=True to clip them, or rescale the file"
        )
    if n_over:
        np.clip(data, -1.0, 1.0, out=data)
        meta["clipped_samples"] = n_over

    if resample_hz is not None and float(resample_hz) != rate:
        librosa: Any = require("librosa", "loaders")
        if data.shape[0]:
            data = librosa.resample(data, orig_sr=rate, target_sr=float(resample_hz), res_type="soxr_hq", axis=0)
            data = np.ascontiguousarray(data, dtype=np.float32)
            with np.errstate(invalid="ignore"):
                over = np.abs(data) > 1.0
            if over.any():  # band-limited interpolation rings past full scale near clipped input
                np.clip(data, -1.0, 1.0, out=data)
                meta["resample_clipped_samples"] = int(over.sum())
        meta["resampler"] = f"librosa {librosa.__version__} resample soxr_hq"
        out_rate: float = float(resample_hz)
    else:
        out_rate = float(rate)

    mask = _wav_channel_mask(path) if info["format"] in ("WAV", "WAVEX", "RF64") else None
    if mask is not None:
        meta["channel_mask"] = mask
    names = channel_names(n_ch, mask)
    if channels is not None:
        given = [channels] if isinstance(channels, str) else list(channels)
        if len(given) != n_ch or len(set(given)) != n_ch or not all(isinstance(c, str) and c for c in given):
            raise LoaderError(
                f"{path}: channels= must give {n_ch} distinct non-empty name(s), one per channel; got {given!r}"
            )
        meta["source_channels"] = names
        names = given

    num, den = rate_fraction(out_rate)
    time_ns = expand_time([[0, int(start_ns)]], num, den, data.shape[0])
    stream = Stream("audio", "audio", time_ns, data, names, "1", rate_hz=out_rate, meta=meta)
    return Recording(
        user_id,
        session_id or default_session_id(path),
        [stream],
        meta={"source_files": [path.name]},
    )
