"""On-disk encoding choices: chunk and shard sizes, codecs, and the compact time base of regular streams.

The defaults were chosen with ``benchmarks/store_bench.py`` (see ``benchmarks/README.md``); every array
records its codecs in its own zarr metadata, so a store written with other settings stays readable.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from zarr.codecs import BloscCodec, BloscShuffle

#: Target uncompressed bytes of one chunk (the unit of compression and of partial reads). Measured with
#: benchmarks/store_bench.py (sweep in benchmarks/README.md): 256 KiB chunks read a 10 s depth window 2-3x
#: slower (per-chunk overhead) for no ratio gain; 4 MiB chunks read a 10 s window of the low-rate streams
#: (EEG, IMU, gaze) 1.3-2x slower, and far more for short windows; 1 MiB is the balance.
CHUNK_BYTES = 1 << 20
#: Target uncompressed bytes of one shard (the unit of files on disk) for committed sessions. Measured in
#: benchmarks/README.md: depth alone is 10,800 files per session-hour unsharded, 636 with 16 MiB shards, 159
#: with 64 MiB and 40 with 256 MiB, with no consistent change in write or window-read time; with 256 MiB a
#: whole session-hour of the six benchmark streams is 78 files (target <= 200).
SHARD_BYTES = 256 << 20
#: Default blosc-zstd level (was 3). Measured in benchmarks/README.md (sweep, 1 MiB chunks): level 3 shrinks
#: the data only 1.7-3.6 % more than level 1 (16-bit audio 7.7 %) for 1.4-2x the CPU per MB written; level
#: 5 gains another 2-8 % for 3-4x the CPU of level 1. Decompression speed does not depend on the level.
CLEVEL = 1
#: A compact time base is kept only when the stream splits into few regular segments: at most this many,
#: and at most one per 64 samples (otherwise the segment list would not be compact).
MAX_TIME_SEGMENTS = 4096


@dataclass(frozen=True)
class Encoding:
    """Chunk, shard and codec settings for one stream's arrays."""

    chunk_samples: int
    shard_samples: int | None  # None: no sharding (live sessions append chunk by chunk)
    clevel: int = CLEVEL


#: Modalities whose float samples are stored with blosc-lz4 and bit shuffle instead of zstd and byte shuffle.
#: EEG is noise-dominated (amplifier noise fills the low mantissa bits), so no codec shrinks it much; measured
#: on 10-minute 64-channel recordings from FIF (float32), EDF (16-bit codes), BDF (24-bit codes) and XDF
#: (benchmarks/README.md, ingest section), per 1 MiB chunk, one core: zstd 1 + byte shuffle ratio
#: 1.09-1.14 at 250-370 MB/s encode and 470-560 MB/s decode; lz4 5 + bit shuffle ratio 1.12-1.13 at 600-1000
#: MB/s encode and 960-1360 MB/s decode. Smooth signals (gaze, head pose, hands) keep zstd: it stores them
#: 8-25 % smaller than lz4 (XDF gaze 1.29 vs 1.15, head pose 1.88 vs 1.51).
LZ4_MODALITIES = frozenset({"eeg"})
#: blosc-lz4 level for :data:`LZ4_MODALITIES` (blosc's default; level 9 is 0.5 % smaller and 10 % slower).
LZ4_CLEVEL = 5


def compressor(
    dtype: np.dtype[Any], clevel: int = CLEVEL, *, time: bool = False, modality: str | None = None
) -> BloscCodec:
    """Blosc + zstd; bit shuffle for timestamps (slowly varying int64), byte shuffle otherwise; float samples
    of :data:`LZ4_MODALITIES` (EEG): blosc + lz4 with bit shuffle.

    Shuffle by measurement (benchmarks/README.md): bit shuffle compresses int64 timestamps 2.5x vs 2.0x for
    byte shuffle; for float32 samples byte shuffle wins overall (hands 1.40 vs 1.27, EEG 1.12 vs 1.10; only
    16-bit-PCM audio prefers bit shuffle, 2.81 vs 2.49, and it is a small share of a session's bytes); for
    uint16 depth the two are within 2 % and bit shuffle reads a window 5-35 % slower.
    """
    if not time and modality in LZ4_MODALITIES and np.dtype(dtype).kind == "f":
        return BloscCodec(cname="lz4", clevel=LZ4_CLEVEL, shuffle=BloscShuffle.bitshuffle,
                          typesize=int(dtype.itemsize))
    shuffle = BloscShuffle.bitshuffle if time else BloscShuffle.shuffle
    return BloscCodec(cname="zstd", clevel=clevel, shuffle=shuffle, typesize=int(dtype.itemsize))


def choose_encoding(
    sample_nbytes: int, n_samples: int, *, sharded: bool = True, chunk_bytes: int = CHUNK_BYTES,
    shard_bytes: int = SHARD_BYTES,
) -> Encoding:
    """Chunk length (samples) near ``chunk_bytes``; shard length a multiple of it near ``shard_bytes``.

    A stream shorter than one shard gets a single shard no longer than itself (rounded up to whole chunks),
    so short sessions do not allocate 256 MiB shards.
    """
    sample_nbytes = max(1, sample_nbytes)
    chunk = max(1, chunk_bytes // sample_nbytes)
    if not sharded:
        return Encoding(chunk, None)
    per_shard = max(1, shard_bytes // (chunk * sample_nbytes))
    chunks_needed = max(1, -(-n_samples // chunk))
    return Encoding(chunk, chunk * min(per_shard, chunks_needed))


# --- compact time base ----------------------------------------------------------------------------------
# A strictly regular stream stores segments [first_index, start_ns] and a rational rate num/den instead of
# one int64 per sample. Sample k of a segment is at start_ns + round_half_up(k * 1e9 * den / num), computed
# in integers so that expansion is exact; the base is kept only if it reproduces every timestamp exactly.


def rate_fraction(rate_hz: float) -> tuple[int, int]:
    """``rate_hz`` as a fraction num/den with a small denominator (e.g. 59.94 -> 2997/50)."""
    f = Fraction(rate_hz).limit_denominator(1000)
    return f.numerator, f.denominator


def _offsets(k: np.ndarray, num: int, den: int) -> np.ndarray:
    q, r = divmod(10**9 * den, num)  # split so k * 1e9 * den never overflows int64
    return k * q + (k * r * 2 + num) // (2 * num)


def expand_time(segments: list[list[int]], num: int, den: int, n: int, i: int = 0, j: int | None = None) -> np.ndarray:
    """Timestamps (int64 ns) of samples ``i:j`` of a stream of ``n`` samples with a compact time base."""
    j = n if j is None else j
    idx = np.arange(i, j, dtype=np.int64)
    firsts = np.array([s[0] for s in segments], dtype=np.int64)
    starts = np.array([s[1] for s in segments], dtype=np.int64)
    seg = np.searchsorted(firsts, idx, side="right") - 1
    return starts[seg] + _offsets(idx - firsts[seg], num, den)


def compact_time(time_ns: np.ndarray, rate_hz: float | None) -> dict[str, Any] | None:
    """The compact time base of ``time_ns`` if it is exactly regular at ``rate_hz`` (piecewise), else None."""
    n = time_ns.shape[0]
    if rate_hz is None or n < 2:
        return None
    num, den = rate_fraction(rate_hz)
    q = 10**9 * den // num
    d = np.diff(time_ns)
    # Inside a segment consecutive steps are q or q + 1 ns; anything else starts a new segment.
    breaks = np.flatnonzero((d < q) | (d > q + 1)) + 1
    if breaks.size >= min(MAX_TIME_SEGMENTS, n // 64):
        return None
    firsts = [0, *breaks.tolist()]
    # Verify block by block: expanding an hour of 48 kHz audio at once would allocate GBs of temporaries.
    block = 1 << 16
    for f, g in zip(firsts, [*firsts[1:], n], strict=True):
        for b0 in range(0, g - f, block):
            k = np.arange(b0, min(g - f, b0 + block), dtype=np.int64)
            if not np.array_equal(time_ns[f] + _offsets(k, num, den), time_ns[f + b0 : f + b0 + k.size]):
                return None
    segments = [[int(f), int(time_ns[f])] for f in firsts]
    return {"kind": "regular_segments", "rate_num": num, "rate_den": den, "segments": segments}


def time_index(segments: list[list[int]], num: int, den: int, n: int, t: int) -> int:
    """First sample index whose time is >= ``t`` (like ``searchsorted(time, t, 'left')``).

    Analytic, O(log segments) in Python ints (stored times never decrease, so segment starts are sorted):
    ``bisect`` finds the last segment starting before ``t`` (a time before a segment's start but after the
    previous segment's last sample maps to that segment's first index); inside it, the first k with
    ``round_half_up(k * 1e9 * den / num) >= t - start_ns`` is ``ceil((2 * (t - start_ns) - 1) * num / (2e9 *
    den))``. That k is checked (and corrected by one step if ever needed) with the exact integer formula of
    :func:`_offsets`, then capped at the next segment's first index (or ``n``).
    """
    if n <= 0 or not segments:
        return 0
    t = int(t)
    s = bisect_left(segments, t, key=_segment_start) - 1
    if s < 0:
        return 0  # at or before the first sample
    first, start = int(segments[s][0]), int(segments[s][1])
    size = (int(segments[s + 1][0]) if s + 1 < len(segments) else n) - first
    d = t - start  # > 0: sample 0 of the segment lies before t
    period = 10**9 * den
    k = -((1 - 2 * d) * num // (2 * period))  # ceil((2d - 1) * num / (2 * period))
    q, r = divmod(period, num)
    # Same integer expression as _offsets: offset(k) = k * q + (2 * k * r + num) // (2 * num).
    while k > 1 and (k - 1) * q + (2 * (k - 1) * r + num) // (2 * num) >= d:
        k -= 1
    while k < size and k * q + (2 * k * r + num) // (2 * num) < d:
        k += 1
    return first + min(k, size)


def _segment_start(segment: list[int]) -> int:
    return int(segment[1])
