"""Time-aligned multi-modal windows over a user's sessions, for training.

:func:`windows` walks every session of one user and yields :class:`Window` objects: for each requested
stream a fixed number of *steps* per window, resampled onto a common time grid, with an explicit mask.

Time grid (all in integer nanoseconds, so the result is exact and deterministic)::

    L = round(length_s * 1e9), H = round(hop_s * 1e9), S = steps of the stream
    window w starts at  s_w = t0 + w * H      (t0 = first sample time of the session's requested streams)
    step k covers       [s_w + floor(k * L / S), s_w + floor((k + 1) * L / S))     (d = L / S)

Windows are produced while ``s_w`` is at or before the session's last sample, so every sample lies in a
window; the last windows may run past the end of the session, where their steps are masked.

A sample is valid or missing by the schema's rule, :func:`xrdata.validation.sample_validity`: missing when
every value of its non-flag channels is NaN or the schema's ``missing.invalid_value`` (0 for depth pixels,
whatever the dtype). Flag channels (gaze ``*_valid`` and ``confidence``, hand ``confidence``) never make a
sample valid: an untracked hand (NaN, confidence 0) is missing.

Resampling of one stream into one step (``method``):

``"mean"``
    The step is valid iff at least one valid sample falls in it. Its values are the averages of the samples
    whose time falls in the step, per value: NaN values are ignored value by value, values equal to the
    invalid value become NaN first, and flag channels are averaged like the others (a step's mean
    ``left_valid`` is the fraction of its samples with a valid left eye).
``"nearest"``
    The valid sample nearest to the step centre ``s_w + (floor(kL/S) + floor((k+1)L/S)) / 2``, if it lies
    within ``max(d / 2, nominal period / 2)`` of the centre (``d / 2`` for irregular streams; ties: the
    earlier sample), else the step is masked. Missing samples are never picked. The nearest sample
    may lie just outside the window when the stream is slower than the grid.
``"auto"`` (default)
    ``"mean"`` when the stream's rate in that session (nominal, else the catalog's effective rate) is at
    least ``steps / length_s`` (downsampling or equal rate), ``"nearest"`` otherwise (upsampling).

Missing data is never filled nor held: a masked step is NaN everywhere and its mask is False.

Sessions are read lazily, ``block_s`` seconds of windows at a time (plus one window length and the nearest
tolerance of overlap) with ``Store.read(..., start_ns, stop_ns)``, so memory stays bounded on long sessions;
the block size never changes the result. Pooling is vectorised (``np.add.reduceat`` over contiguous runs of
samples, float64 accumulation in time order), and when the hop is a whole number of steps (and at most
the length) each sample is pooled once per block and the windows are sliced from the shared step grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
import polars as pl

from xrdata.errors import NotFoundError, ValidationError
from xrdata.model import check_id
from xrdata.store import Store, open_store
from xrdata.validation import sample_validity

__all__ = ["Method", "Window", "windows"]

Method = Literal["auto", "mean", "nearest"]
_METHODS = ("auto", "mean", "nearest")
#: Upper bound of the float64 scratch memory one pooling pass uses (bytes); larger blocks are split.
_POOL_BUDGET = 32 << 20
#: Upper bound of the float32 window data one block produces (bytes); blocks hold fewer windows beyond it.
_BLOCK_OUTPUT_BYTES = 256 << 20
_TASK_PREFIX = "task/"


@dataclass(frozen=True, eq=False, repr=False)
class Window:
    """One time window of one session, every requested stream resampled onto ``steps`` steps.

    Attributes:
        user, session: where the window comes from.
        start_ns, stop_ns: the window covers ``[start_ns, stop_ns)`` on the session clock.
        data: stream name -> ``(steps, *sample_shape)`` float32; NaN where the step has no valid sample.
        mask: stream name -> ``(steps,)`` bool, True where the step holds real samples.
        events: the session events overlapping the window (instantaneous events: ``start <= t < stop``).
        labels: task name -> class, from ``task/<name>`` events overlapping the window (the event with the
            largest overlap wins; ties go to the earliest).
    """

    user: str
    session: str
    start_ns: int
    stop_ns: int
    data: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    events: pl.DataFrame
    labels: dict[str, str]

    def present(self, stream: str) -> bool:
        """True if at least one step of ``stream`` holds real samples."""
        return bool(self.mask[stream].any())

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{name}: {tuple(arr.shape)} {int(self.mask[name].sum())}/{self.mask[name].shape[0]} valid"
            for name, arr in self.data.items()
        )
        return (
            f"Window(user={self.user!r}, session={self.session!r}, start_ns={self.start_ns}, "
            f"stop_ns={self.stop_ns}, {{{shapes}}}, events={self.events.height}, labels={self.labels})"
        )


@dataclass(frozen=True)
class _StreamSpec:
    """Per-stream settings shared by every session (fixed output shape)."""

    name: str
    steps: int
    sample_shape: tuple[int, ...]
    method: str  # "auto", "mean" or "nearest"
    rel_edges: np.ndarray  # (steps + 1,) int64: floor(k * L / steps)


@dataclass(frozen=True)
class _SessionStream:
    """What the catalog says about one stream of one session."""

    modality: str
    rate_hz: float | None  # nominal rate, None for irregular streams
    effective_rate_hz: float | None
    sample_shape: tuple[int, ...]


def windows(
    store: Store | str | os.PathLike[str],
    user: str,
    length_s: float,
    hop_s: float,
    streams: Sequence[str] | None = None,
    *,
    steps: int | Mapping[str, int] | None = None,
    method: Method | Mapping[str, Method] = "auto",
    sessions: Sequence[str] | None = None,
    include_incomplete: bool = False,
    skip_empty: bool = True,
    block_s: float = 60.0,
    sample_shapes: Mapping[str, Sequence[int]] | None = None,
) -> Iterator[Window]:
    """Yield time-aligned multi-modal windows over the sessions of ``user`` (see the module docstring).

    Args:
        store: an open :class:`~xrdata.store.Store`, or a store URL (opened read-only).
        user: the user whose partition is read; no other user's data is ever read (only the catalog rows
            of other users are consulted, for the sample shape or rate of a stream this user never has).
        length_s, hop_s: window length and hop in seconds (> 0).
        streams: stream names; default every stream name present in any of the user's (complete, unless
            ``include_incomplete``) sessions, sorted. A stream absent from a session gives an all-False
            mask and all-NaN data.
        steps: steps per window, one int for every stream or a mapping name -> int; default per stream
            ``round(length_s * nominal_rate_hz)`` (at least 1). Irregular streams need explicit steps, as do
            streams whose nominal rate differs between sessions.
        method: ``"auto"``, ``"mean"`` or ``"nearest"``, or a mapping name -> method (default ``"auto"``).
        sessions: session ids to walk, in this order (default: every session of the user, sorted).
        include_incomplete: also walk live or crashed sessions (up to their last flush).
        skip_empty: skip windows in which no stream has a single valid step.
        block_s: seconds of windows read from the store at once (fewer when one block's output would pass
            256 MiB); a memory bound that never changes the results.
        sample_shapes: sample shape per stream name, used for streams absent from a session (default:
            from the catalog, any user's session holding a stream of that name).

    Raises:
        NotFoundError: unknown user or session, or a stream no session of any user has (and not in
            ``sample_shapes``).
        ValidationError: bad arguments, an irregular stream without explicit ``steps``, inconsistent sample
            shapes of a stream across sessions.
    """
    st = open_store(store, "r") if isinstance(store, str | os.PathLike) else store
    if not isinstance(st, Store):
        raise ValidationError(f"windows() takes a Store or a store URL, got {type(store).__name__}")
    check_id(user, "user id")
    length_ns = _positive_ns(length_s, "length_s")
    hop_ns = _positive_ns(hop_s, "hop_s")
    block_ns = _positive_ns(block_s, "block_s")
    if user not in st.users():
        raise NotFoundError(f"no user {user!r} in store {st.url}")

    visible = st.sessions(user, include_incomplete=include_incomplete)
    if sessions is None:
        walk = list(visible)
    else:
        if isinstance(sessions, str):
            raise ValidationError("sessions must be a list of session ids, not a string")
        walk = [check_id(s, "session id") for s in sessions]
        missing = [s for s in walk if s not in visible]
        if missing:
            hint = "" if include_incomplete else " (include_incomplete=True adds live or crashed sessions)"
            raise NotFoundError(f"user {user!r} has no session(s) {missing} in store {st.url}{hint}")

    own = (
        st.catalog([user])
        .filter(pl.col("session").is_in(visible))
        .select("session", "stream", "modality", "n_samples", "start_ns", "stop_ns", "nominal_rate_hz",
                "effective_rate_hz", "sample_shape")
        .collect()
        .sort("session", "stream")
    )
    if streams is None:
        names = sorted(set(own["stream"].to_list()))
    else:
        if isinstance(streams, str):
            raise ValidationError(f"streams must be a list of stream names, not a string ({streams!r})")
        names = [check_id(n, "stream name") for n in streams]
        if len(set(names)) != len(names):
            raise ValidationError(f"streams lists a name twice: {names}")
    specs = _stream_specs(st, user, own, names, length_ns, steps, method, sample_shapes)

    by_session: dict[str, dict[str, _SessionStream]] = {}
    spans: dict[str, tuple[int, int]] = {}
    for row in own.filter(pl.col("stream").is_in(names)).iter_rows(named=True):
        info = _SessionStream(
            row["modality"], row["nominal_rate_hz"], row["effective_rate_hz"], tuple(row["sample_shape"])
        )
        spec = specs[row["stream"]]
        if info.sample_shape != spec.sample_shape:
            raise ValidationError(
                f"stream {row['stream']!r} has sample shape {info.sample_shape} in session "
                f"{user}/{row['session']} but {spec.sample_shape} elsewhere; windows need one shape per "
                "stream: pass streams= to leave it out"
            )
        by_session.setdefault(row["session"], {})[row["stream"]] = info
        if row["n_samples"] and row["start_ns"] is not None:
            lo, hi = spans.get(row["session"], (row["start_ns"], row["stop_ns"]))
            spans[row["session"]] = (min(lo, row["start_ns"]), max(hi, row["stop_ns"]))

    return _iter_windows(
        st, user, walk, specs, by_session, spans, length_ns, hop_ns, block_ns, skip_empty
    )


def _iter_windows(
    st: Store, user: str, walk: list[str], specs: dict[str, _StreamSpec],
    by_session: dict[str, dict[str, _SessionStream]], spans: dict[str, tuple[int, int]],
    length_ns: int, hop_ns: int, block_ns: int, skip_empty: bool,
) -> Iterator[Window]:
    # Windows per store read: block_s worth, fewer when their float32 output would pass _BLOCK_OUTPUT_BYTES
    # (large depth frames); the block size never changes the result.
    window_bytes = sum(4 * spec.steps * math.prod(spec.sample_shape) for spec in specs.values())
    per_block = max(1, min(block_ns // hop_ns, _BLOCK_OUTPUT_BYTES // max(1, window_bytes)))
    for session in walk:
        if session not in spans:
            continue  # no requested stream has a sample in this session
        t0, stop = spans[session]
        n_windows = (stop - 1 - t0) // hop_ns + 1
        present = by_session.get(session, {})
        plan = {
            name: _resolve_method(spec, present.get(name), length_ns) for name, spec in specs.items()
        }
        margin = max([_margin(specs[n], present[n]) for n in present] + [0])
        for wa in range(0, n_windows, per_block):
            wb = min(n_windows, wa + per_block)
            yield from _block(
                st, user, session, specs, present, plan, t0, wa, wb, length_ns, hop_ns, margin, skip_empty
            )


def _block(
    st: Store, user: str, session: str, specs: dict[str, _StreamSpec], present: dict[str, _SessionStream],
    plan: dict[str, str], t0: int, wa: int, wb: int, length_ns: int, hop_ns: int, margin: int,
    skip_empty: bool,
) -> Iterator[Window]:
    """The windows ``wa..wb-1`` of one session, from one store read."""
    starts = t0 + np.arange(wa, wb, dtype=np.int64) * hop_ns  # (W,)
    read_lo = int(starts[0]) - margin
    read_hi = int(starts[-1]) + length_ns + margin
    rec = st.read(user, session, streams=sorted(present), start_ns=read_lo, stop_ns=read_hi)
    n_win = starts.shape[0]
    data: dict[str, np.ndarray] = {}
    mask: dict[str, np.ndarray] = {}
    for name, spec in specs.items():
        if name not in present:
            data[name] = np.full((n_win, spec.steps, *spec.sample_shape), np.nan, dtype=np.float32)
            mask[name] = np.zeros((n_win, spec.steps), dtype=bool)
            continue
        s = rec.streams[name]
        t = s.time_ns
        x = s.data.reshape(t.shape[0], math.prod(spec.sample_shape))  # (N, V)
        invalid = _invalid_value(present[name].modality)
        valid = sample_validity(s.modality, s.channels, s.data)  # (N,): the schema's rule, flags excluded
        if plan[name] == "mean":
            vals, ok = _mean_windows(t, x, valid, invalid, starts, spec, t0, hop_ns, length_ns)
        else:
            vals, ok = _nearest_windows(t, x, valid, invalid, starts, spec, _period_ns(present[name]))
        data[name] = vals.reshape(n_win, spec.steps, *spec.sample_shape)
        mask[name] = ok.reshape(n_win, spec.steps)

    events = rec.events
    et = events["time_ns"].to_numpy()
    end = et + events["duration_ns"].to_numpy()
    stops = starts + length_ns
    # (W, E): the event overlaps the window; an instantaneous event needs start <= t < stop
    overlaps = (et[None, :] < stops[:, None]) & (
        (end[None, :] > starts[:, None]) | (et[None, :] >= starts[:, None])
    )
    labels_col = events["label"].to_list()
    values_col = events["value"].to_list()
    task_rows = [i for i, lab in enumerate(labels_col) if lab.startswith(_TASK_PREFIX)]
    for i in range(n_win):
        if skip_empty and not any(m[i].any() for m in mask.values()):
            continue
        start, stop = int(starts[i]), int(stops[i])
        rows = np.flatnonzero(overlaps[i])
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # usual case: a contiguous run of events
            win_events = events.slice(int(rows[0]), rows.size)
        else:
            win_events = events[rows] if rows.size else events.clear()
        labels: dict[str, str] = {}
        best: dict[str, int] = {}
        for r in task_rows:
            if not overlaps[i, r]:
                continue
            task = labels_col[r][len(_TASK_PREFIX):]
            amount = max(0, min(int(end[r]), stop) - max(int(et[r]), start))
            if task not in best or amount > best[task]:  # events are sorted by time: ties keep the earliest
                best[task] = amount
                labels[task] = values_col[r]
        yield Window(
            user=user, session=session, start_ns=start, stop_ns=stop,
            data={n: a[i] for n, a in data.items()}, mask={n: m[i] for n, m in mask.items()},
            events=win_events, labels=labels,
        )


# --- resampling ----------------------------------------------------------------------------------------


def _mean_windows(
    t: np.ndarray, x: np.ndarray, valid: np.ndarray, invalid: float | None, starts: np.ndarray,
    spec: _StreamSpec, t0: int, hop_ns: int, length_ns: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean pooling of the windows at ``starts``: ((W * S, V) float32, (W * S,) bool)."""
    n_win, n_steps = starts.shape[0], spec.steps
    if hop_ns <= length_ns and (hop_ns * n_steps) % length_ns == 0:
        # The hop is a whole number g <= S of steps: windows share one step grid anchored at t0. Pool every
        # grid cell of the block once, then gather each window's S consecutive cells.
        g = hop_ns * n_steps // length_ns
        first = int((starts[0] - t0) // hop_ns) * g
        n_cells = (n_win - 1) * g + n_steps
        width, rest = divmod(length_ns, n_steps)
        if rest == 0:  # integer step width: cell of a sample by division, bounds by counting (O(N))
            e0 = t0 + first * width
            i0, i1 = np.searchsorted(t, [e0, e0 + n_cells * width], side="left")
            per_cell = np.bincount((t[i0:i1] - e0) // width, minlength=n_cells)
            bounds = np.concatenate([[i0], i0 + np.cumsum(per_cell)])
        else:
            cells = np.arange(first, first + n_cells + 1, dtype=np.int64)
            edges = t0 + _floor_div_edges(cells, length_ns, n_steps)  # (C + 1,)
            bounds = np.searchsorted(t, edges, side="left")
        vals, ok = _pool_mean(x, valid, bounds[:-1], bounds[1:], invalid)
        if g == n_steps:  # hop == length: the cells are the windows' steps, in order
            return vals, ok
        take = (np.arange(n_win, dtype=np.int64) * g)[:, None] + np.arange(n_steps, dtype=np.int64)[None, :]
        return vals[take.ravel()], ok[take.ravel()]
    edges = starts[:, None] + spec.rel_edges[None, :]  # (W, S + 1)
    bounds = np.searchsorted(t, edges.ravel(), side="left").reshape(edges.shape)
    return _pool_mean(x, valid, bounds[:, :-1].ravel(), bounds[:, 1:].ravel(), invalid)


def _pool_mean(
    x: np.ndarray, valid: np.ndarray, lo: np.ndarray, hi: np.ndarray, invalid: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per segment ``x[lo[i]:hi[i]]`` (segments in time order, possibly overlapping): the NaN-ignoring mean
    of each value, and whether the segment holds a valid sample (``valid``: (N,) bool, from
    :func:`~xrdata.validation.sample_validity`). Returns ((n_seg, V) float32, (n_seg,) bool); a segment
    without a valid sample is NaN everywhere (its flag channels too).

    A one-sample segment is its sample; longer segments are summed in float64 with ``np.add.reduceat``,
    sample by sample in time order, so every result depends only on the samples of its own segment (never on
    the block, the batch or the memory layout around it).
    """
    n_seg, n_val = lo.shape[0], x.shape[1]
    out = np.full((n_seg, n_val), np.nan, dtype=np.float32)
    # A segment is valid iff it holds a valid sample: a difference of the running count of valid samples.
    n_valid = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])
    ok = n_valid[hi] > n_valid[lo]
    counts = hi - lo
    single = np.flatnonzero(counts == 1)
    if single.size:
        out[single] = _as_float(x[lo[single]], invalid, np.float32, fresh=True)
    multi = np.flatnonzero(counts > 1)
    if multi.size:
        _pool_multi(x, lo[multi], hi[multi], counts[multi], multi, invalid, out)
    out[~ok] = np.nan  # no valid sample: NaN everywhere, flag channels included
    return out, ok


def _pool_multi(
    x: np.ndarray, m_lo: np.ndarray, m_hi: np.ndarray, m_n: np.ndarray, multi: np.ndarray,
    invalid: float | None, out: np.ndarray,
) -> None:
    """Means of the segments of two samples or more into rows ``multi`` of ``out``, a bounded pass at a time."""
    n_val = x.shape[1]
    cum = np.concatenate([[0], np.cumsum(m_n)])
    per_pass = max(1, _POOL_BUDGET // (8 * max(1, n_val)))  # rows of float64 scratch per pass
    a = 0
    while a < multi.size:
        b = int(np.searchsorted(cum, cum[a] + per_pass, side="right")) - 1
        b = min(multi.size, max(b, a + 1))
        if np.array_equal(m_lo[a + 1 : b], m_hi[a : b - 1]):  # a contiguous run of samples: one slice
            xc = _as_float(x[m_lo[a] : m_hi[b - 1]], invalid, np.float64)
        else:
            xc = _as_float(x[_ranges(m_lo[a:b], m_hi[a:b])], invalid, np.float64, fresh=True)
        valid = ~np.isnan(xc)
        xc[~valid] = 0.0
        offsets = cum[a:b] - cum[a]
        sums = np.add.reduceat(xc, offsets, axis=0)
        nvalid = np.add.reduceat(valid, offsets, axis=0, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[multi[a:b]] = sums / nvalid  # 0 / 0 -> NaN where a value has no valid sample
        a = b


def _as_float(
    x: np.ndarray, invalid: float | None, dtype: type[np.floating[Any]], *, fresh: bool = False
) -> np.ndarray:
    """``x`` as float with the invalid value (depth 0) replaced by NaN: a new array unless ``fresh`` says
    that ``x`` is already a private copy (a fancy-indexing result) that may be reused."""
    bad = None if invalid is None else x == invalid
    out = x.astype(dtype, copy=not fresh)
    if bad is not None:
        out[bad] = np.nan
    return out


def _nearest_windows(
    t: np.ndarray, x: np.ndarray, valid: np.ndarray, invalid: float | None, starts: np.ndarray,
    spec: _StreamSpec, period_ns: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-sample resampling: ((W * S, V) float32, (W * S,) bool).

    Distances and tolerances are doubled (|2t - 2c| <= max(d, period)) so that step centres stay integers.
    """
    e = spec.rel_edges
    centre2 = (2 * starts[:, None] + (e[:-1] + e[1:])[None, :]).ravel()  # (W * S,)
    width = np.broadcast_to((e[1:] - e[:-1])[None, :], (starts.shape[0], spec.steps)).ravel()
    good = np.flatnonzero(valid)
    t2 = 2 * t[good]
    out = np.full((centre2.shape[0], x.shape[1]), np.nan, dtype=np.float32)
    ok = np.zeros(centre2.shape[0], dtype=bool)
    if good.size == 0:
        return out, ok
    j = np.searchsorted(t2, centre2, side="left")
    left = np.clip(j - 1, 0, good.size - 1)
    right = np.clip(j, 0, good.size - 1)
    d_left = np.abs(centre2 - t2[left])
    d_right = np.abs(t2[right] - centre2)
    pick = np.where(d_right < d_left, right, left)  # ties -> the earlier sample
    dist = np.minimum(d_left, d_right)
    ok = dist <= np.maximum(width, period_ns)
    out[ok] = _as_float(x[good[pick[ok]]], invalid, np.float32, fresh=True)
    return out, ok


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], hi[i])`` for every i, vectorised."""
    counts = hi - lo
    total = int(counts.sum())
    keep = counts > 0
    lo, counts = lo[keep], counts[keep]
    steps = np.ones(total, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    steps[0] = lo[0]
    steps[starts[1:]] = lo[1:] - (lo[:-1] + counts[:-1] - 1)
    return np.cumsum(steps)


def _floor_div_edges(k: np.ndarray, length_ns: int, n_steps: int) -> np.ndarray:
    """``floor(k * length_ns / n_steps)`` exactly, without overflowing int64 for long sessions."""
    whole, rest = divmod(length_ns, n_steps)
    if rest == 0:
        return k * whole
    q, r = np.divmod(k, n_steps)
    return q * length_ns + r * whole + (r * rest) // n_steps


# --- planning ------------------------------------------------------------------------------------------


def _positive_ns(seconds: float, what: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | np.number):
        raise ValidationError(f"{what} must be a number of seconds, got {seconds!r}")
    value = float(seconds)
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(f"{what} must be positive and finite, got {seconds!r}")
    ns = round(value * 1e9)
    if ns < 1:
        raise ValidationError(f"{what} must be at least 1 ns, got {seconds!r}")
    return ns


def _stream_specs(
    st: Store, user: str, own: pl.DataFrame, names: list[str], length_ns: int,
    steps: int | Mapping[str, int] | None, method: str | Mapping[str, str],
    sample_shapes: Mapping[str, Sequence[int]] | None,
) -> dict[str, _StreamSpec]:
    """Steps, sample shape and method of every requested stream, fixed for the whole iteration."""
    for what, arg in (("steps", steps), ("method", method), ("sample_shapes", sample_shapes)):
        if isinstance(arg, Mapping):
            extra = sorted(set(arg) - set(names))
            if extra:
                raise ValidationError(f"{what} names stream(s) {extra} that are not requested ({names})")
    unknown_here = [n for n in names if n not in set(own["stream"].to_list())]
    others = pl.DataFrame()
    if unknown_here:  # streams this user never has: their shape/rate from other users' catalog rows
        others = (
            st.catalog()
            .filter(pl.col("stream").is_in(unknown_here) & (pl.col("user") != user))
            .select("user", "session", "stream", "nominal_rate_hz", "sample_shape")
            .collect()
            .sort("user", "session")
        )
    specs: dict[str, _StreamSpec] = {}
    for name in names:
        rows = own.filter(pl.col("stream") == name)
        if rows.height == 0 and others.height:
            rows = others.filter(pl.col("stream") == name)
        given_shape = None if sample_shapes is None else sample_shapes.get(name)
        if rows.height == 0 and given_shape is None:
            raise NotFoundError(
                f"stream {name!r} is in no session of user {user!r} nor of any other user in the catalog; "
                "check the name, or pass sample_shapes={name: shape} (and steps) to get an all-masked stream"
            )
        shapes = sorted({tuple(s) for s in rows["sample_shape"].to_list()})
        if given_shape is not None:
            shape = tuple(int(v) for v in given_shape)
            if any(v < 0 for v in shape):
                raise ValidationError(
                    f"sample_shapes[{name!r}] must hold non-negative ints, got {given_shape!r}"
                )
        elif len(shapes) == 1:
            shape = shapes[0]
        else:
            raise ValidationError(
                f"stream {name!r} has several sample shapes {shapes} in the catalog; pass "
                f"sample_shapes={{{name!r}: shape}} or leave the stream out"
            )
        n_steps = _steps_for(name, steps, rows["nominal_rate_hz"].to_list(), length_ns)
        m = method.get(name, "auto") if isinstance(method, Mapping) else method
        if m not in _METHODS:
            raise ValidationError(f"method for stream {name!r} must be one of {_METHODS}, got {m!r}")
        rel = _floor_div_edges(np.arange(n_steps + 1, dtype=np.int64), length_ns, n_steps)
        specs[name] = _StreamSpec(name, n_steps, shape, m, rel)
    return specs


def _steps_for(
    name: str, steps: int | Mapping[str, int] | None, rates: list[float | None], length_ns: int
) -> int:
    given = steps.get(name) if isinstance(steps, Mapping) else steps
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int | np.integer) or given < 1:
            raise ValidationError(f"steps for stream {name!r} must be a positive int, got {given!r}")
        if given > length_ns:
            raise ValidationError(f"steps for stream {name!r} ({given}) exceed the window length in ns")
        return int(given)
    distinct = sorted({r for r in rates if r is not None})
    if None in rates or not distinct:
        raise ValidationError(
            f"stream {name!r} is irregular (no nominal rate) in the catalog, so the number of steps per "
            f"window cannot be derived: pass steps={{{name!r}: n}}"
        )
    if len(distinct) > 1:
        raise ValidationError(
            f"stream {name!r} has different nominal rates {distinct} Hz across sessions; pass "
            f"steps={{{name!r}: n}} to fix the number of steps per window"
        )
    return max(1, round(length_ns * distinct[0] / 1e9))


def _resolve_method(spec: _StreamSpec, info: _SessionStream | None, length_ns: int) -> str:
    if spec.method != "auto" or info is None:
        return spec.method
    rate = info.rate_hz if info.rate_hz is not None else info.effective_rate_hz
    if rate is None:
        return "mean"
    return "mean" if rate * length_ns >= spec.steps * 1e9 else "nearest"


def _period_ns(info: _SessionStream) -> float:
    """The nominal sample period in ns (0 for irregular streams): twice the nearest tolerance floor."""
    return 0.0 if info.rate_hz is None else 1e9 / info.rate_hz


def _margin(spec: _StreamSpec, info: _SessionStream) -> int:
    """How far outside its window a sample can still be picked by nearest resampling, in ns."""
    width = int(np.max(np.diff(spec.rel_edges)))
    return math.ceil(max(width, _period_ns(info)) / 2) + 1


@cache
def _invalid_value(modality: str) -> float | None:
    """The value that marks an invalid value of ``modality`` besides NaN (0 for depth, any dtype), or None.

    Read from the schema (``missing.invalid_value``); depth falls back to the documented 0 when its schema
    cannot be read.
    """
    try:
        from xrdata.schemas import load

        missing = load(modality).get("missing", {})
        value = missing.get("invalid_value") if isinstance(missing, dict) else None
    except (KeyError, OSError, ValueError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0 if modality == "depth" else None
    return value
