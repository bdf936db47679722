"""The compact time base of regular streams: exact expansion, round trips and the analytic time_index."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from xrdata.encoding import compact_time, expand_time, rate_fraction, time_index

#: Rates the devices use (NTSC-style 59.94 / 29.97, the 71.82 Hz of some headsets) and round ones.
SPECIAL_RATES = [1.0, 29.97, 30.0, 59.94, 60.0, 71.82, 72.0, 90.0, 120.0, 250.0, 500.0, 1000.0, 44100.0,
                 48000.0, 50000.0]  # fmt: skip
rates = hs.one_of(
    hs.sampled_from(SPECIAL_RATES),
    hs.floats(1.0, 50_000.0, allow_nan=False, allow_infinity=False),
)


@hs.composite
def time_bases(draw: hs.DrawFn) -> tuple[float, list[list[int]], int]:
    """(rate_hz, segments, n): a few segments separated by gaps that always break the regular step.

    A gap is added to the time the next sample would have had: either a jump forward (> 1 ns, so the step is
    longer than q + 1) or a step shorter than q (down to a repeated timestamp).
    """
    rate = draw(rates)
    num, den = rate_fraction(rate)
    q = 10**9 * den // num
    lengths = draw(hs.lists(hs.integers(1, 300), min_size=1, max_size=6))
    start = draw(hs.integers(-(10**12), 10**15))
    segments: list[list[int]] = []
    first = 0
    for i, size in enumerate(lengths):
        if i:
            last = int(expand_time(segments, num, den, first, first - 1, first)[0])
            natural = last + q + 1
            if draw(hs.booleans()):
                start = natural + draw(hs.integers(1, 10**12))  # a gap (dropout, pause)
            else:
                start = last + draw(hs.integers(0, q - 1))  # a short step (clock reset forward by less)
        segments.append([first, start])
        first += size
    return rate, segments, first


@given(base=time_bases(), data=hs.data())
def test_time_index_matches_searchsorted(base: tuple[float, list[list[int]], int], data: hs.DataObject) -> None:
    rate, segments, n = base
    num, den = rate_fraction(rate)
    t = expand_time(segments, num, den, n)
    assert np.all(np.diff(t) >= 0)
    lo, hi = int(t[0]), int(t[-1])
    queries = [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, lo - 10**9, hi + 10**9]
    for _ in range(20):
        queries.append(data.draw(hs.integers(lo - 10**6, hi + 10**6)))  # anywhere, gaps included
        i = data.draw(hs.integers(0, n - 1))
        queries += [int(t[i]) - 1, int(t[i]), int(t[i]) + 1]  # on and next to samples
    for first, _ in segments[1:]:  # inside every gap, and at both of its ends
        prev, nxt = int(t[first - 1]), int(t[first])
        queries += [prev + 1, (prev + nxt) // 2, nxt - 1, nxt]
    for q in queries:
        want = int(np.searchsorted(t, q, side="left"))
        assert time_index(segments, num, den, n, q) == want, (rate, segments, n, q)
        assert time_index(segments, num, den, n, np.int64(q)) == want


@given(base=time_bases(), extra=hs.integers(0, 400))
def test_compact_time_round_trip(base: tuple[float, list[list[int]], int], extra: int) -> None:
    rate, segments, n = base
    num, den = rate_fraction(rate)
    # Lengthen the last segment so that the segment list is compact (at most one per 64 samples).
    n_total = max(n + extra, 64 * (len(segments) + 1))
    t = expand_time(segments, num, den, n_total)
    ct = compact_time(t, rate)
    assert ct is not None
    assert ct["kind"] == "regular_segments" and (ct["rate_num"], ct["rate_den"]) == (num, den)
    assert ct["segments"] == segments
    again = expand_time(ct["segments"], ct["rate_num"], ct["rate_den"], n_total)
    assert again.dtype == np.int64 and np.array_equal(again, t)
    # A window read expands only its slice, identically.
    i, j = n_total // 3, 2 * n_total // 3
    assert np.array_equal(expand_time(segments, num, den, n_total, i, j), t[i:j])


@given(rate=rates, n=hs.integers(130, 2000), jitter=hs.integers(1, 1000), seed=hs.integers(0, 2**32 - 1))
def test_jittered_and_irregular_times_have_no_compact_base(rate: float, n: int, jitter: int, seed: int) -> None:
    num, den = rate_fraction(rate)
    q = 10**9 * den // num
    regular = expand_time([[0, 10**9]], num, den, n)
    assert compact_time(regular, rate) is not None
    # Every other sample early and late by `jitter` ns: every step is off the regular q or q + 1.
    jitter = min(jitter, max(1, q // 4))
    wobble = np.where(np.arange(n) % 2 == 0, jitter, -jitter).astype(np.int64)
    assert compact_time(regular + wobble, rate) is None
    # Irregular: steps drawn between q / 2 and 2 q.
    rng = np.random.default_rng(seed)
    irregular = 10**9 + np.concatenate([[0], np.cumsum(rng.integers(q // 2, 2 * q, n - 1))]).astype(np.int64)
    steps = np.diff(irregular)
    if int(np.count_nonzero((steps < q) | (steps > q + 1))) >= n // 64:  # (all but freak draws)
        assert compact_time(irregular, rate) is None


def test_compact_time_edge_cases() -> None:
    assert compact_time(np.arange(1000, dtype=np.int64) * 10**6, None) is None  # irregular by declaration
    assert compact_time(np.array([5], dtype=np.int64), 100.0) is None
    assert time_index([[0, 0]], 100, 1, 0, 5) == 0  # empty stream


@pytest.mark.parametrize("rate", [59.94, 29.97, 71.82, 48000.0])
def test_time_index_on_an_hour_long_stream(rate: float) -> None:
    num, den = rate_fraction(rate)
    n = round(3600 * rate)
    segments = [[0, 123], [n // 2, 123 + 2000 * 10**9]]
    t = expand_time(segments, num, den, n)
    probe = np.linspace(0, int(t[-1]) + 10, 997).astype(np.int64)
    got = [time_index(segments, num, den, n, int(x)) for x in probe]
    assert got == np.searchsorted(t, probe, side="left").tolist()
    assert [time_index(segments, num, den, n, int(x)) for x in t[:: n // 50]] == list(range(0, n, n // 50))
