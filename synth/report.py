"""The realism report: every statistic of ``REALISM.md`` computed on a store, with plots, as one HTML file.

``write_report(store, out_html)`` reads a store (synthetic or real) and writes a self-contained HTML page
(plots are inline base64 PNG images drawn with matplotlib; no network, no external files) with:

1. **Cohort summary**: users, cohorts, devices, sessions, hours, streams per modality.
2. **Realism statistics**: one row per statistic of ``REALISM.md`` (E1-E12, H1-H8, M4-M7, G1-G8, A2-A6,
   D1-D5, T1-T7, F1-F5) with the measured value, the target range and pass / fail / n/a. Rows are computed
   on the stored streams, events and catalog wherever the store holds what the statistic needs (a sample of
   sessions per stream, ``max_sessions``); rows that need synthesizer ground truth read the tables under
   ``<store>/ground_truth/`` (:func:`xrdata.synth.read_ground_truth`). Four rows need a noise-free reference
   that no recording holds (D1 a static plane, D5 the unmixed depth, H5 the true hand, M5 an IMU at rest):
   on a synthetic store they are computed on a short **calibration capture** simulated with the store's own
   device presets (``captures=True``), and say so. F5 (reproducibility) regenerates one stored session from
   ``ground_truth/config.json`` and compares it byte for byte (``regenerate=True``).
3. **Plots**: modality availability per user/session (heatmap), drift over time (gaze offset, IMU bias,
   concept share per week), label distribution per client (stacked bars), the session schedule, and a few
   example signal traces.

On a store without ground truth (real recordings) the rows that need it are "n/a" with the reason, and the
plots that need it are left out; the catalog- and event-based parts still work.

Everything computed is returned by :func:`compute_statistics` (a list of :class:`StatRow`) so the numbers in
the HTML can be checked against :mod:`xrdata.synth.stats` directly. Text is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xrdata.errors import XRDataError, require

if TYPE_CHECKING:
    from xrdata.model import Recording, Stream
    from xrdata.store import Store

__all__ = ["REPORT_SECTIONS", "StatRow", "compute_statistics", "write_report"]

#: Section ids of the report, in page order.
REPORT_SECTIONS = ("summary", "statistics", "availability", "drift", "labels", "schedule", "traces")
#: Statuses a row can have.
PASS, FAIL, NA, ERROR = "pass", "fail", "n/a", "error"
G = 9.80665
RIGHT = 1
PALM, TIPS = 0, (5, 10, 15, 20, 25)  # OpenXR hand joint indices
POSTERIOR = ("O1", "Oz", "O2", "POz", "PO3", "PO4", "Pz")
FRONTO_TEMPORAL = ("F7", "F8", "T7", "T8", "FT9", "FT10")
CENTRAL = ("Cz", "C3", "C4", "CP1", "CP2", "FCz")


@dataclass
class StatRow:
    """One statistic of REALISM.md computed on a store."""

    id: str  # REALISM row id, e.g. "E1"
    group: str  # Eye, Hand, Head motion and IMU, EEG, Audio, Depth, Dropout and drift, Federated structure
    statistic: str  # what is measured
    target: str  # the pass range, as in REALISM.md
    status: str = NA  # "pass", "fail", "n/a" or "error"
    measured: str = ""  # the measured values, human-readable
    values: dict[str, float] = field(default_factory=dict)  # the measured numbers (NaN-free floats)
    source: str = "store"  # "store", "ground truth", "calibration capture", "regeneration", "catalog"
    note: str = ""  # how it was computed, or why it is n/a

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------------------------
# data access


class _Data:
    """Lazy access to a store's catalog, events, sessions and (if present) ground truth."""

    def __init__(self, store: Store | str | os.PathLike[str], max_sessions: int) -> None:
        from xrdata.store import Store, open_store

        self.store: Store = store if isinstance(store, Store) else open_store(os.fspath(store), "r")
        self.url = str(self.store.url)
        self.max_sessions = max_sessions
        self.catalog = self.store.catalog().collect().filter(pl.col("complete"))
        self.sessions: list[tuple[str, str]] = list(
            self.catalog.select("user", "session").unique().sort("user", "session").iter_rows())
        self._recs: dict[tuple[str, str], Recording] = {}
        self._events: dict[tuple[str, str], pl.DataFrame] = {}
        self._gt: dict[str, pl.DataFrame | None] = {}
        self.config = self._config()

    # --- ground truth
    def _config(self) -> dict[str, Any] | None:
        from xrdata._fs import Backend

        raw = Backend(self.url).read_bytes("ground_truth/config.json")
        return json.loads(raw) if raw else None

    @property
    def synthetic(self) -> bool:
        return self.config is not None

    def gt(self, table: str) -> pl.DataFrame | None:
        if table not in self._gt:
            df = None
            if self.synthetic:
                from xrdata.synth.generate import read_ground_truth

                try:
                    df = read_ground_truth(self.url, table)
                except XRDataError:
                    df = None
                if df is not None and df.height == 0:
                    df = None
            self._gt[table] = df
        return self._gt[table]

    # --- sessions
    def rec(self, user: str, session: str) -> Recording:
        key = (user, session)
        if key not in self._recs:
            self._recs[key] = self.store.read(user, session)
        return self._recs[key]

    def events(self, user: str, session: str) -> pl.DataFrame:
        key = (user, session)
        if key not in self._events:
            self._events[key] = (self._recs[key].events if key in self._recs
                                 else self.store.read(user, session, streams=[]).events)
        return self._events[key]

    def with_streams(self, *names: str, limit: int | None = None) -> list[tuple[str, str]]:
        """Sessions having every stream of ``names``, spread over users (round robin), at most ``limit``."""
        have = (self.catalog.filter(pl.col("stream").is_in(list(names)) & (pl.col("n_samples") > 1))
                .group_by("user", "session").agg(pl.col("stream").n_unique().alias("k"))
                .filter(pl.col("k") == len(names)).sort("user", "session"))
        by_user: dict[str, list[str]] = {}
        for u, s, _ in have.iter_rows():
            by_user.setdefault(u, []).append(s)
        out: list[tuple[str, str]] = []
        k = 0
        limit = self.max_sessions if limit is None else limit
        while len(out) < limit and any(len(v) > k for v in by_user.values()):
            for u in sorted(by_user):
                if len(by_user[u]) > k and len(out) < limit:
                    out.append((u, by_user[u][k]))
            k += 1
        return out

    def labels(self, user: str, session: str) -> list[tuple[int, int, str, str]]:
        """Task label events (start_ns, stop_ns, task, class) of a session."""
        ev = self.events(user, session).filter(pl.col("label").str.starts_with("task/"))
        return [(int(t), int(t + d), lab[5:], str(v)) for t, d, lab, v in
                ev.select("time_ns", "duration_ns", "label", "value").iter_rows()]

    def intervals(self, user: str, session: str, label: str, value: str | None = None) -> np.ndarray:
        ev = self.events(user, session).filter(pl.col("label") == label)
        if value is not None:
            ev = ev.filter(pl.col("value") == value)
        t = ev["time_ns"].to_numpy().astype(np.int64)
        return np.stack([t, t + ev["duration_ns"].to_numpy().astype(np.int64)], axis=1) if len(t) else \
            np.empty((0, 2), dtype=np.int64)

    def segments(self, user: str, session: str) -> pl.DataFrame | None:
        seg = self.gt("segments")
        if seg is None:
            return None
        return seg.filter((pl.col("user") == user) & (pl.col("session") == session)).sort("index")

    def truth(self, user: str, session: str, generator: str) -> dict[str, Any] | None:
        gt = self.gt("generator_truth")
        if gt is None:
            return None
        row = gt.filter((pl.col("user") == user) & (pl.col("session") == session) & (pl.col("generator") == generator))
        return json.loads(row["truth_json"][0]) if row.height else None

    def user_trait(self, user: str, name: str) -> float | None:
        users = self.gt("users")
        if users is None or name not in users.columns:
            return None
        v = users.filter(pl.col("user") == user)[name]
        return float(v[0]) if len(v) and v[0] is not None else None

    def device_of(self, user: str, session: str) -> str | None:
        d = self.catalog.filter((pl.col("user") == user) & (pl.col("session") == session))["device"]
        return str(d[0]) if len(d) and d[0] else None


def _col(stream: Stream, name: str) -> int | None:
    return stream.channels.index(name) if name in stream.channels else None


def _cols(stream: Stream, names: Iterable[str]) -> list[int]:
    return [stream.channels.index(n) for n in names if n in stream.channels]


def _mask_intervals(t_ns: np.ndarray, iv: np.ndarray) -> np.ndarray:
    from xrdata.synth.stats import interval_mask

    return interval_mask(np.asarray(iv, dtype=np.float64), np.asarray(t_ns, dtype=np.float64))


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "nan"
    if x == 0:
        return "0"
    mag = abs(x)
    if mag >= 1000 or mag < 1e-3:
        return f"{x:.{digits}g}"
    return f"{x:.{max(0, digits - 1 - math.floor(math.log10(mag)))}f}"


def _within(x: float, lo: float, hi: float) -> bool:
    return bool(np.isfinite(x) and lo <= x <= hi)


class _Rows:
    """Collects rows; a row's function raising is recorded as an "error" row instead of aborting the report."""

    def __init__(self) -> None:
        self.rows: list[StatRow] = []

    def add(self, row: StatRow, fn: Callable[[StatRow], None]) -> None:
        try:
            fn(row)
        except _NotApplicable as exc:
            row.status, row.note = NA, str(exc)
        except Exception as exc:  # a bug or an unexpected recording: visible in the report, not fatal
            row.status, row.note = ERROR, f"{type(exc).__name__}: {exc}"
        row.values = {k: float(v) for k, v in row.values.items() if v is not None and np.isfinite(v)}
        self.rows.append(row)


class _NotApplicable(Exception):
    """The store lacks what a statistic needs (the message says what)."""


def _need(cond: Any, why: str) -> None:
    if not cond:
        raise _NotApplicable(why)


def _verdict(row: StatRow, checks: dict[str, Any]) -> None:
    row.status = PASS if all(bool(v) for v in checks.values()) else FAIL
    failed = [k for k, ok in checks.items() if not bool(ok)]
    if failed:
        row.note = (row.note + "; " if row.note else "") + "failed: " + ", ".join(failed)


# ------------------------------------------------------------------------------------------------------------
# eye, hand, head


@dataclass
class _Gaze:
    user: str
    session: str
    t: np.ndarray
    dirs: np.ndarray  # view frame
    world: np.ndarray  # world frame (view frame when no head stream)
    valid: np.ndarray
    stream: Stream


def _gaze_sessions(d: _Data) -> list[_Gaze]:
    from xrdata.synth import stats

    out = []
    for u, s in d.with_streams("gaze"):
        rec = d.rec(u, s)
        g = rec.streams["gaze"]
        if not all(f"combined_dir_{a}" in g.channels for a in "xyz"):
            continue
        t = np.asarray(g.time_ns)
        dirs = stats.gaze_directions(np.asarray(g.data), g.channels)
        world = dirs
        if "head" in rec.streams and rec.streams["head"].n_samples > 2:
            h = rec.streams["head"]
            q = np.asarray(h.data[:, 3:7], dtype=np.float64)
            ok = np.isfinite(q).all(axis=1)
            if ok.sum() > 2:
                world = stats.gaze_in_world(t, dirs, np.asarray(h.time_ns)[ok], q[ok])
        vc = _col(g, "combined_valid")
        valid = np.isfinite(dirs).all(axis=1)
        if vc is not None:
            valid &= np.asarray(g.data[:, vc]) > 0.5
        out.append(_Gaze(u, s, t, dirs, world, valid, g))
    return out


def _eye_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    gz = _gaze_sessions(d) if d.with_streams("gaze") else []
    sacc: dict[str, list[np.ndarray]] = {"amplitude": [], "peak_velocity": [], "duration_ms": []}
    # saccade kinematics need >= 200 Hz (a 90 Hz sample is 11 ms of a 30-60 ms saccade): use those streams
    # for E1/E2 when the store has any
    fast = [g for g in gz if (g.stream.rate_hz or 0) >= 199.0]
    kin = fast or gz
    for g in kin:
        sac = stats.detect_saccades(g.t, g.world, 30.0)
        for k in sacc:
            sacc[k].append(sac[k])
    amp = np.concatenate(sacc["amplitude"]) if gz else np.zeros(0)
    pv = np.concatenate(sacc["peak_velocity"]) if gz else np.zeros(0)
    dur = np.concatenate(sacc["duration_ms"]) if gz else np.zeros(0)
    def where_of(gs: list[_Gaze]) -> str:
        rates = sorted({float(g.stream.rate_hz or 0) for g in gs})
        return (f"I-VT 30 deg/s on gaze-in-world (head pose applied) of {len(gs)} session(s), "
                f"{', '.join(f'{r:g}' for r in rates)} Hz")

    where = where_of(gz)
    where_kin = where_of(kin) + ("" if fast else " (no >= 200 Hz stream: peak velocities and durations are "
                                              "coarse at this rate)")

    def e1(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        sel = (amp >= 1) & (amp <= 30)
        _need(sel.sum() >= 20, f"only {int(sel.sum())} saccades of 1-30 deg")
        eta, c = stats.main_sequence_fit(amp, pv)
        vp10 = eta * (1 - math.exp(-10 / c))
        mid, big = pv[(amp >= 10) & (amp < 15)], pv[(amp >= 20) & (amp <= 30)]
        sat = float(np.median(big) / np.median(mid)) if len(mid) >= 5 and len(big) >= 3 else float("nan")
        row.values = {"eta": eta, "c": c, "vp10": vp10, "saturation": sat, "n": float(sel.sum())}
        row.measured = (f"eta {eta:.0f} deg/s, c {c:.1f} deg, Vp(10) {vp10:.0f} deg/s, Vp(20-30)/Vp(10-15) "
                        f"{_fmt(sat)} ({int(sel.sum())} saccades)")
        row.note = where_kin
        checks = {"eta 400-750": _within(eta, 400, 750), "c 4-15": _within(c, 4, 15),
                  "Vp(10) 290-550": _within(vp10, 290, 550)}
        if np.isfinite(sat):
            checks["saturating (ratio < 1.35)"] = sat < 1.35
        _verdict(row, checks)

    rows.add(StatRow("E1", "Eye", "main sequence: Vp = eta (1 - exp(-A/c)) over saccades of 1-30 deg",
                     "eta 400-750 deg/s, c 4-15 deg; Vp at 10 deg 290-550 deg/s; saturating above 20 deg"), e1)

    def e2(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        sel = (amp >= 1) & (amp <= 30)
        _need(sel.sum() >= 20, f"only {int(sel.sum())} saccades of 1-30 deg")
        slope, d0, r2 = stats.duration_fit(amp, dur)
        row.values = {"slope": slope, "intercept": d0, "r2": r2, "n": float(sel.sum())}
        row.measured = f"D = {slope:.2f} A + {d0:.1f} ms, R^2 {r2:.2f} ({int(sel.sum())} saccades)"
        row.note = where_kin
        _verdict(row, {"d 1.8-3.0": _within(slope, 1.8, 3.0), "D0 15-35": _within(d0, 15, 35), "R^2 > 0.8": r2 > 0.8})

    rows.add(StatRow("E2", "Eye", "saccade duration vs amplitude, linear fit D = d A + D0",
                     "d 1.8-3.0 ms/deg, D0 15-35 ms, R^2 > 0.8"), e2)

    def e3(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        fx = np.concatenate([stats.fixations(g.t, g.world, 30.0)["duration_ms"] for g in gz])
        _need(len(fx) >= 20, f"only {len(fx)} fixations")
        s = stats.fixation_stats(fx)
        row.values = dict(s)
        row.measured = (f"mean {s['mean']:.0f} ms, median {s['median']:.0f} ms, p5 {s['p5']:.0f} ms, "
                        f"{100 * s['frac_80_1000']:.1f} % in 80-1000 ms ({int(s['count'])} fixations)")
        row.note = where
        _verdict(row, {"mean 180-350": _within(s["mean"], 180, 350), "right-skewed": s["median"] < s["mean"],
                       "p5 >= 80": s["p5"] >= 80, ">= 95 % in 80-1000": s["frac_80_1000"] >= 0.95})

    rows.add(StatRow("E3", "Eye", "fixation durations",
                     "mean 180-350 ms; right-skewed (median < mean); 5th percentile >= 80 ms; >= 95 % in 80-1000 ms"),
             e3)

    def e4(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        r, f, w = [], [], []
        for g in gz:
            rate, fix = stats.saccade_rate(g.t, g.world, 30.0)
            r.append(rate)
            f.append(fix)
            w.append(float(g.valid.mean()) * (g.t[-1] - g.t[0]) * 1e-9)
        rate, fix = float(np.average(r, weights=w)), float(np.average(f, weights=w))
        row.values = {"saccades_per_s": rate, "fixation_share": fix, "sessions": float(len(gz))}
        row.measured = f"{rate:.2f} saccades/s, {100 * fix:.1f} % of valid time in fixation"
        row.note = where + "; all tasks pooled (visual search raises the rate)"
        _verdict(row, {"2-4 saccades/s": _within(rate, 2, 4), ">= 80 % fixation": fix >= 0.8})

    rows.add(StatRow("E4", "Eye", "saccade rate / time in fixation", "2-4 saccades/s; >= 80 % of time in fixation"),
             e4)

    def e6(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        ranges = {"reading": (1.4, 14.4), "neutral": (8.0, 21.0), "conversation": (10.5, 32.5)}
        counts = {k: 0 for k in ranges}
        minutes = {k: 0.0 for k in ranges}
        for g in gz:
            ep = stats.invalid_episodes(g.t, g.valid)
            dms = (ep[:, 1] - ep[:, 0]) * 1e-6
            blinks = ep[(dms >= 30) & (dms <= 500), 0]
            for a, b, kind in _blink_conditions(d, g.user, g.session):
                counts[kind] += int(np.sum((blinks >= a) & (blinks < b)))
                # minutes of this condition the tracker saw (the eyes were not closed for minutes on end)
                inside = (g.t >= a) & (g.t < b)
                vis = float(np.mean(g.valid[inside])) if inside.any() else 0.0
                minutes[kind] += (b - a) * 1e-9 / 60.0 * (1.0 if vis > 0.5 else 0.0)
        checks: dict[str, bool] = {}
        parts = []
        for k, (lo, hi) in ranges.items():
            if minutes[k] >= 0.5:
                rate = counts[k] / minutes[k]
                row.values[k] = rate
                row.values[k + "_minutes"] = minutes[k]
                checks[f"{k} {lo}-{hi}/min"] = _within(rate, lo, hi)
                parts.append(f"{k} {rate:.1f}/min ({minutes[k]:.1f} min)")
            else:
                parts.append(f"{k}: < 0.5 min")
        _need(checks, "no labelled reading, neutral or conversation time with gaze (needs task labels)")
        row.measured = "; ".join(parts)
        row.note = ("blinks = invalid episodes of 30-500 ms; conditions from the ground-truth segments (reading, "
                    "talking, rest eyes open)" if d.gt("segments") is not None else
                    "blinks = invalid episodes of 30-500 ms; conditions from task labels (cognitive_load = "
                    "reading, speech_command/affect = conversation, rest eyes_open = neutral)")
        _verdict(row, checks)

    rows.add(StatRow("E6", "Eye", "blink rate by task",
                     "reading 1.4-14.4/min; neutral 8-21/min; conversation 10.5-32.5/min"), e6)

    def e7(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        durs, nan_ok, n_inv = [], True, 0
        for g in gz:
            b = stats.blink_stats(g.t, g.valid)
            durs.append(b["durations_ms"])
            inv = ~g.valid
            n_inv += int(inv.sum())
            rays = _cols(g.stream, [f"combined_dir_{a}" for a in "xyz"] + ["left_pupil_diameter",
                                                                         "right_pupil_diameter"])
            if inv.any() and rays:
                block = np.asarray(g.stream.data[inv][:, rays])
                nan_ok &= bool(np.isnan(block).all())
        dd = np.concatenate(durs)
        _need(len(dd) >= 5, f"only {len(dd)} blinks")
        med, frac = float(np.median(dd)), float(np.mean((dd >= 50) & (dd <= 500)))
        row.values = {"median_ms": med, "frac_50_500": frac, "n": float(len(dd)), "invalid_nan": float(nan_ok)}
        row.measured = (f"median {med:.0f} ms, {100 * frac:.1f} % in 50-500 ms ({len(dd)} blinks); invalid samples "
                        f"{'NaN' if nan_ok else 'NOT all NaN'} ({n_inv} samples)")
        _verdict(row, {"median 100-300": _within(med, 100, 300), ">= 98 % in 50-500": frac >= 0.98,
                       "invalid samples NaN": nan_ok})

    rows.add(StatRow("E7", "Eye", "blink duration",
                     "median 100-300 ms; >= 98 % in 50-500 ms; blink samples invalid (NaN), never zero-filled"), e7)

    def e8(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        lo, hi = np.inf, -np.inf
        rest: dict[str, list[float]] = {}
        load: dict[str, dict[str, list[float]]] = {}
        for g in gz:
            cols = _cols(g.stream, ["left_pupil_diameter", "right_pupil_diameter"])
            _need(cols, "no pupil channels")
            p = np.asarray(g.stream.data[:, cols], dtype=np.float64)
            if np.isfinite(p).any():
                lo, hi = min(lo, float(np.nanmin(p))), max(hi, float(np.nanmax(p)))
            pm = np.nanmean(p, axis=1)
            labs = d.labels(g.user, g.session)
            for a, b, task, lab in labs:
                m = (g.t >= a) & (g.t < b)
                if not m.any() or not np.isfinite(pm[m]).any():
                    continue
                if task == "rest" and lab == "eyes_open":
                    rest.setdefault(g.user, []).append(float(np.nanmean(pm[m])))
                if task == "cognitive_load" and lab in ("low", "high"):
                    load.setdefault(g.user, {}).setdefault(lab, []).append(float(np.nanmean(pm[m])))
            if g.user not in rest and not any(t == "rest" for _, _, t, _ in labs):
                rest.setdefault("__all__" + g.user, []).append(float(np.nanmean(pm)))
        rest_mean = {u.removeprefix("__all__"): float(np.mean(v)) for u, v in rest.items()}
        dil = [float(np.mean(v["high"]) - np.mean(v["low"])) for v in load.values() if "high" in v and "low" in v]
        row.values = {"min_mm": lo, "max_mm": hi, "resting_min": min(rest_mean.values(), default=float("nan")),
                      "resting_max": max(rest_mean.values(), default=float("nan")),
                      "dilation_mm": float(np.mean(dil)) if dil else float("nan"), "load_users": float(len(dil))}
        row.measured = (f"range {lo:.2f}-{hi:.2f} mm; per-user resting mean {row.values['resting_min']:.2f}-"
                        f"{row.values['resting_max']:.2f} mm; high - low load "
                        + (f"{np.mean(dil):+.2f} mm ({len(dil)} users)" if dil else "n/a (no user with both)"))
        checks = {"always 1.5-8.0": lo >= 1.5 and hi <= 8.0,
                  "resting mean 2.5-7": all(_within(v, 2.5, 7.0) for v in rest_mean.values())}
        if dil:
            checks["dilates under load"] = all(x > 0 for x in dil)
        row.note = "resting = rest eyes_open segments (whole session when a user has none)"
        _verdict(row, checks)

    rows.add(StatRow("E8", "Eye", "pupil diameter",
                     "always 1.5-8.0 mm; resting mean per user 2.5-7 mm; dilates under cognitive load"), e8)

    def e10(row: StatRow) -> None:
        _need(gz, "no gaze stream in the store")
        ratios, parts = [], []
        for g in gz:
            conf = _f((g.stream.meta or {}).get("precision_deg"))
            if not np.isfinite(conf):
                tr = d.truth(g.user, g.session, "eye")
                conf = _f(tr.get("precision_deg")) if tr else float("nan")
            if not np.isfinite(conf):
                conf = _preset_param(d.device_of(g.user, g.session), "gaze", "precision_deg")
            rms = stats.precision_rms_s2s(g.t, g.dirs, 30.0)
            if np.isfinite(conf) and conf > 0:
                ratios.append(rms / conf)
                parts.append(f"{d.device_of(g.user, g.session)}: {rms:.3f} / {conf:.3f} deg")
        _need(ratios, "no configured tracker precision (stream meta precision_deg, ground truth or device preset)")
        row.values = {"ratio_min": min(ratios), "ratio_max": max(ratios), "ratio_median": float(np.median(ratios))}
        row.measured = (f"measured / preset {min(ratios):.2f}-{max(ratios):.2f} (median {np.median(ratios):.2f}); "
                        + "; ".join(sorted(set(parts))[:4]))
        row.note = "RMS sample-to-sample during fixations of the combined ray as the tracker reports it (view frame)"
        _verdict(row, {"within +-30 %": all(0.7 <= r <= 1.3 for r in ratios)})

    rows.add(StatRow("E10", "Eye", "tracker precision per device preset",
                     "RMS sample-to-sample within +-30 % of the preset"), e10)

    def e12(row: StatRow) -> None:
        cat = d.catalog.filter((pl.col("modality") == "gaze") & pl.col("nominal_rate_hz").is_not_null()
                               & pl.col("effective_rate_hz").is_not_null())
        _need(cat.height, "no gaze stream with a declared rate in the catalog")
        rel = (cat["nominal_rate_hz"] / cat["effective_rate_hz"] - 1.0).to_numpy()
        worst = float(np.max(np.abs(rel)))
        row.values = {"max_abs_rel": worst, "streams": float(cat.height)}
        row.measured = f"mean interval within {100 * worst:.3f} % of 1/rate (worst of {cat.height} gaze streams)"
        row.source = "catalog"
        _verdict(row, {"within 1 %": worst < 0.01})

    rows.add(StatRow("E12", "Eye", "sampling", "mean interval within 1 % of the declared rate"), e12)


def _blink_conditions(d: _Data, user: str, session: str) -> list[tuple[int, int, str]]:
    """(start, stop, kind) of reading / neutral / conversation stretches of a session."""
    out = []
    seg = d.segments(user, session)
    if seg is not None:
        for r in seg.iter_rows(named=True):
            if r["eyes_closed"]:
                continue
            kind = ("reading" if r["reading"] else "conversation" if r["talking"]
                    else "neutral" if r["task"] == "rest" else None)
            if kind:
                out.append((r["start_ns"], r["stop_ns"], kind))
        return out
    for a, b, task, lab in d.labels(user, session):
        kind = ("reading" if task == "cognitive_load" else "conversation" if task in ("speech_command", "affect")
                else "neutral" if (task, lab) == ("rest", "eyes_open") else None)
        if kind:
            out.append((a, b, kind))
    return out


def _preset_param(device: str | None, sensor: str, name: str) -> float:
    if not device:
        return float("nan")
    try:
        from xrdata.synth.devices import get_device

        spec = get_device(device).sensors.get(sensor)
    except XRDataError:
        return float("nan")
    return _f(spec.params.get(name)) if spec is not None else float("nan")


def _hand_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    sess = d.with_streams("hand")

    def hand(u: str, s: str) -> Stream:
        return d.rec(u, s).streams["hand"]

    def h1(row: StatRow) -> None:
        _need(sess, "no hand stream in the store")
        prof: dict[str, list[np.ndarray]] = {"peak_to_mean": [], "peak_fraction": [], "n_peaks": []}
        for u, s in sess:
            h = hand(u, s)
            mp = stats.movement_profiles(h.time_ns, stats.hand_positions(np.asarray(h.data), RIGHT, PALM))
            for k in prof:
                prof[k].append(mp[k])
        ptm, frac, peaks = (np.concatenate(prof[k]) for k in ("peak_to_mean", "peak_fraction", "n_peaks"))
        _need(len(ptm) >= 10, f"only {len(ptm)} point-to-point movements of the right palm")
        row.values = {"peak_to_mean": float(np.median(ptm)), "peak_fraction": float(np.median(frac)),
                      "single_peak": float(np.mean(peaks == 1)), "n": float(len(ptm))}
        row.measured = (f"peak/mean {np.median(ptm):.2f} (median), peak at {100 * np.median(frac):.0f} % of the "
                        f"movement, {100 * np.mean(peaks == 1):.0f} % single-peaked ({len(ptm)} movements)")
        row.note = f"right palm, {len(sess)} session(s); onset/offset at 5 % of the peak speed"
        _verdict(row, {"peak/mean 1.6-2.0": _within(row.values["peak_to_mean"], 1.6, 2.0),
                       "peak at 40-60 %": _within(row.values["peak_fraction"], 0.4, 0.6),
                       "single peak (>= 90 %)": row.values["single_peak"] >= 0.9})

    rows.add(StatRow("H1", "Hand", "point-to-point reach speed profile",
                     "peak/mean speed 1.6-2.0 (minimum jerk 1.875); single peak at 40-60 % of the movement"), h1)

    def h3(row: StatRow) -> None:
        _need(sess, "no hand stream in the store")
        res = []
        for u, s in sess:
            h = hand(u, s)
            tr = stats.tremor_spectrum(h.time_ns, stats.hand_positions(np.asarray(h.data), RIGHT, PALM))
            if tr["seconds"] >= 5:
                res.append(tr)
        _need(res, "no still stretch >= 1.1 s of the right hand lasting 5 s in total in any session")
        pk = np.array([r["peak_hz"] for r in res])
        amp = np.array([r["amp_g"] for r in res])
        row.values = {"peak_hz_min": float(pk.min()), "peak_hz_max": float(pk.max()), "amp_g_min": float(amp.min()),
                      "amp_g_max": float(amp.max()), "sessions": float(len(res))}
        row.measured = (f"peak {pk.min():.1f}-{pk.max():.1f} Hz, amplitude {amp.min():.4f}-{amp.max():.4f} g "
                        f"({len(res)} sessions)")
        row.note = "palm acceleration over still stretches (speed < 5 cm/s for >= 1.1 s)"
        _verdict(row, {"peak 6-12 Hz": bool(np.all((pk >= 6) & (pk <= 12))),
                       "amplitude 0.0015-0.035 g": bool(np.all((amp >= 0.0015) & (amp <= 0.035)))})

    rows.add(StatRow("H3", "Hand", "resting/holding tremor of hand acceleration",
                     "spectral peak in 6-12 Hz; amplitude 0.0015-0.035 g"), h3)

    def h4(row: StatRow) -> None:
        _need(sess, "no hand stream in the store")
        ext: dict[str, list[float]] = {k: [np.inf, -np.inf] for k in ("mcp", "pip", "dip", "wrist")}
        n = 0
        for u, s in sess:
            data = np.asarray(hand(u, s).data)
            for hnd in (0, 1):
                q = data[:, hnd, :, 3:7]
                q = q[np.isfinite(q).all(axis=(1, 2))][::2]
                if not len(q):
                    continue
                n += len(q)
                ang = stats.joint_angles(q)
                for k, v in ang.items():
                    ext[k][0], ext[k][1] = min(ext[k][0], float(np.min(v))), max(ext[k][1], float(np.max(v)))
        _need(n, "no tracked hand frame")
        limits = {"mcp": (-45, 90), "pip": (0, 100), "dip": (0, 90), "wrist": (-70, 80)}
        for k, (lo, hi) in ext.items():
            row.values[f"{k}_min"], row.values[f"{k}_max"] = lo, hi
        row.measured = "; ".join(f"{k.upper()} {lo:.0f}..{hi:.0f} deg" for k, (lo, hi) in ext.items())
        row.note = f"{n} tracked hand frames (every 2nd)"
        _verdict(row, {f"{k.upper()} {lo}..{hi}": ext[k][0] >= lo - 0.5 and ext[k][1] <= hi + 0.5
                       for k, (lo, hi) in limits.items()})

    rows.add(StatRow("H4", "Hand", "joint angles",
                     "MCP -45..90 deg, PIP 0..100 deg, DIP 0..90 deg, wrist flex/ext -70..80 deg"), h4)

    rows.add(StatRow("H5", "Hand", "tracking error, consumer-headset preset",
                     "fingertip error 0.7-1.5 cm mean; latency 30-50 ms", source="calibration capture"),
             lambda row: _capture_h5(d, row))

    def h7(row: StatRow) -> None:
        _need(sess, "no hand stream in the store")
        runs, nan_ok, held = [], True, 0
        for u, s in sess:
            h = hand(u, s)
            data = np.asarray(h.data)
            lost = ~np.isfinite(data[:, :, 0, 0])
            for hnd in (0, 1):
                runs.append(stats.loss_runs(lost[:, hnd]))
                if lost[:, hnd].any():
                    blk = data[lost[:, hnd], hnd]
                    nan_ok &= bool(np.isnan(blk[..., :3]).all())
                    if data.shape[-1] > 8:
                        nan_ok &= bool((np.nan_to_num(blk[..., 8], nan=0.0) == 0).all())
                tracked = ~lost[1:, hnd] & ~lost[:-1, hnd]
                same = (data[1:, hnd, :, :3] == data[:-1, hnd, :, :3]).all(axis=(1, 2))
                held += int(same[tracked].sum())
        r = np.concatenate(runs)
        _need(len(r), "no tracking loss in the sampled sessions")
        mean_run = float(r.mean())
        row.values = {"mean_run_frames": mean_run, "runs": float(len(r)), "held_frames": float(held),
                      "lost_nan": float(nan_ok)}
        checks = {"bursty (mean run >= 3)": mean_run >= 3.0, "lost = NaN, confidence 0": nan_ok,
                  "never held": held == 0}
        extra = ""
        cap = _capture_hand(d)
        if cap is not None and "p_overlap" in cap:
            row.values.update({k: cap[k] for k in ("p_overlap", "p_clear", "p_out_of_view")})
            checks["more loss in overlap / out of view (capture)"] = (cap["p_overlap"] > cap["p_clear"]
                                                                      and cap["p_out_of_view"] > cap["p_clear"])
            extra += (f"; capture: P(loss | overlap) {cap['p_overlap']:.2f}, out of view {cap['p_out_of_view']:.2f}, "
                      f"clear {cap['p_clear']:.3f}")
        row.measured = f"mean loss run {mean_run:.1f} frames ({len(r)} runs), {held} held frames{extra}"
        row.note = ("loss runs per hand on the stored streams; the coupling to overlap / field of view needs the "
                    "true hand positions: from the H5 calibration capture" if cap is not None else
                    "loss runs per hand on the stored streams; coupling to overlap not checked (no capture)")
        _verdict(row, checks)

    rows.add(StatRow("H7", "Hand", "tracking loss",
                     "bursty (mean run >= 3 frames); more likely when hands overlap or leave the field of view; "
                     "lost samples flagged NaN, not held"), h7)

    def h8(row: StatRow) -> None:
        _need(sess, "no hand stream in the store")
        ds = []
        for u, s in sess:
            win = d.intervals(u, s, "gesture")
            if not len(win):
                continue
            h = hand(u, s)
            ds.append(stats.gesture_extents(h.time_ns, stats.hand_positions(np.asarray(h.data), RIGHT,
                                                                            [PALM, *TIPS]), win))
        _need(ds, "no gesture events in the sampled hand sessions")
        dd = np.concatenate(ds)
        m = dd[np.isfinite(dd)]
        _need(len(m) >= 5, f"only {len(m)} measurable gestures")
        frac = float(np.mean((m >= 0.6) & (m <= 2.0)))
        row.values = {"frac_0p6_2": frac, "median_s": float(np.median(m)), "n": float(len(m))}
        row.measured = f"{100 * frac:.0f} % in 0.6-2.0 s, median {np.median(m):.2f} s ({len(m)} gestures)"
        row.note = "motion extent of the right hand inside each gesture event"
        _verdict(row, {">= 95 % in 0.6-2.0 s": frac >= 0.95})

    rows.add(StatRow("H8", "Hand", "gesture durations", "0.6-2.0 s"), h8)


def _head_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    sess = d.with_streams("head")

    def m4(row: StatRow) -> None:
        _need(sess, "no head pose stream in the store")
        ws, amps, peaks = [], [], []
        for u, s in sess:
            rec = d.rec(u, s)
            h = rec.streams["head"]
            q = np.asarray(h.data[:, 3:7], dtype=np.float64)
            ok = np.isfinite(q).all(axis=1)
            th, q = np.asarray(h.time_ns)[ok], q[ok]
            w = stats.head_angular_speed(th, q)
            ws.append(w)
            if "gaze" in rec.streams:
                g = rec.streams["gaze"]
                dirs = stats.gaze_directions(np.asarray(g.data), g.channels)
                world = stats.gaze_in_world(g.time_ns, dirs, th, q)
                sac = stats.detect_saccades(g.time_ns, world, 30.0, 1.0)
                t1 = th[1:]
                for a, st in zip(sac["amplitude"], sac["start_ns"], strict=True):
                    sel = (t1 >= st) & (t1 < st + 800_000_000)
                    if sel.any():
                        amps.append(a)
                        peaks.append(float(w[sel].max()))
        w = np.concatenate(ws)
        med, p99 = float(np.median(w)), float(np.percentile(w, 99))
        row.values = {"median_deg_s": med, "p99_deg_s": p99}
        checks = {"median 3-25": _within(med, 3, 25), "p99 < 400": p99 < 400}
        extra = ""
        if len(amps) >= 20:
            r = float(np.corrcoef(amps, peaks)[0, 1])
            row.values["corr_gaze_shift"] = r
            checks["larger with larger gaze shifts"] = r > 0.2
            extra = f"; corr(saccade amplitude, head peak speed) {r:.2f} over {len(amps)} saccades"
        row.measured = f"median {med:.1f} deg/s, p99 {p99:.0f} deg/s{extra}"
        _verdict(row, checks)

    rows.add(StatRow("M4", "Head motion and IMU", "head angular speed",
                     "median 3-25 deg/s; 99th percentile < 400 deg/s; larger with larger gaze shifts"), m4)
    rows.add(StatRow("M5", "Head motion and IMU", "gyro Allan deviation at rest",
                     "log-log slope -0.5 +- 0.1 for tau 0.01-1 s; ADEV(1 s) = configured noise density +- 10 %",
                     source="calibration capture"), lambda row: _capture_m5(d, row))

    both = d.with_streams("head", "imu")

    def m6(row: StatRow) -> None:
        _need(both, "no session with both a head pose and an IMU stream")
        mags, tilts = [], []
        for u, s in both:
            rec = d.rec(u, s)
            imu, h = rec.streams["imu"], rec.streams["head"]
            acc = np.asarray(imu.data[:, :3], dtype=np.float64)
            q = np.asarray(h.data[:, 3:7], dtype=np.float64)
            ok = np.isfinite(q).all(axis=1)
            if ok.sum() < 10:
                continue
            th, qq = np.asarray(h.time_ns)[ok], q[ok]
            # at rest: the head turns slower than 30 deg/s and moves slower than 20 cm/s (no turn, no walking)
            w = stats.head_angular_speed(th, qq)
            p = np.asarray(h.data[ok, :3], dtype=np.float64)
            v = np.linalg.norm(np.diff(p, axis=0), axis=1) / (np.diff(th) * 1e-9)
            t_mid = (th[1:] + th[:-1]) // 2
            still = (np.interp(imu.time_ns, t_mid, w) < 30.0) & (np.interp(imu.time_ns, t_mid, v) < 0.2)
            fin = np.isfinite(acc).all(axis=1) & still
            mag, tilt = _gravity_windows(imu.time_ns, acc, fin, th, qq)
            mags.append(mag)
            tilts.append(tilt)
        mag, tilt = np.concatenate(mags) if mags else np.zeros(0), np.concatenate(tilts) if tilts else np.zeros(0)
        _need(len(mag) >= 5, "fewer than 5 one-second IMU windows at rest (head < 30 deg/s and < 20 cm/s)")
        row.values = {"median_mag": float(np.median(mag)), "tilt_p95_deg": float(np.percentile(tilt, 95)),
                      "windows": float(len(mag))}
        row.measured = (f"median |a| {np.median(mag):.3f} m/s^2 ({len(mag)} windows of 1 s), tilt p95 "
                        f"{np.percentile(tilt, 95):.2f} deg")
        row.note = ("1 s mean specific force against R^T (0, 1, 0) from the head pose, over windows at rest "
                    "(head < 30 deg/s and < 20 cm/s throughout: no head turn, no walking)")
        _verdict(row, {"|a| = g within 0.1": abs(np.median(mag) - G) < 0.1,
                       "tilt < 2 deg (p95)": np.percentile(tilt, 95) < 2.0})

    rows.add(StatRow("M6", "Head motion and IMU", "accelerometer at rest",
                     "mean magnitude 9.80665 m/s^2 within noise + bias; direction consistent with orientation "
                     "(tilt error < 2 deg)"), m6)

    def m7(row: StatRow) -> None:
        _need(both, "no session with both a head pose and an IMU stream")
        shares, worst = [], 0.0
        for u, s in both[:3]:  # the 1 s integration costs ~1 s per session: three are plenty for the 3-sigma share
            rec = d.rec(u, s)
            imu, h = rec.streams["imu"], rec.streams["head"]
            g = np.asarray(imu.data[:, 3:6], dtype=np.float64)
            q = np.asarray(h.data[:, 3:7], dtype=np.float64)
            if not (np.isfinite(g).all() and np.isfinite(q).all()):
                gi = np.isfinite(g).all(axis=1)
                qi = np.isfinite(q).all(axis=1)
                if gi.mean() < 0.9 or qi.mean() < 0.9:
                    continue
                g = np.stack([np.interp(imu.time_ns, imu.time_ns[gi], g[gi, k]) for k in range(3)], axis=1)
                q = q[qi]
                th = np.asarray(h.time_ns)[qi]
            else:
                th = np.asarray(h.time_ns)
            nd = _f((imu.meta or {}).get("gyro_noise_density"))
            tr = d.truth(u, s, "head") or {}
            if not np.isfinite(nd):
                nd = _f(tr.get("gyro_noise_density", _preset_param(d.device_of(u, s), "imu", "gyro_noise_density")))
            if not np.isfinite(nd):
                continue
            rot = np.radians(_f(tr.get("head_rotation_noise_deg",
                                       _preset_param(d.device_of(u, s), "head", "rotation_noise_deg"))))
            walk = _f(tr.get("gyro_bias_walk", _preset_param(d.device_of(u, s), "imu", "gyro_bias_walk")))
            bias = _gyro_bias(np.asarray(imu.time_ns), g, th, q)
            err = stats.gyro_pose_increments(imu.time_ns, g, th, q, 1.0, bias)
            dur = (imu.time_ns[-1] - imu.time_ns[0]) * 1e-9
            sigma = math.sqrt(nd**2 + 2 * (rot if np.isfinite(rot) else 0) ** 2
                              + (walk if np.isfinite(walk) else 0) ** 2 * dur)
            shares.append(float(np.mean(np.abs(err) < 3 * sigma)))
            worst = max(worst, float(np.max(np.abs(err)) / sigma))
        _need(shares, "no session with a known gyro noise density (IMU meta, ground truth or device preset)")
        row.values = {"share_within_3sigma": float(np.mean(shares)), "worst_sigma": worst,
                      "sessions": float(len(shares))}
        row.measured = (f"{100 * np.mean(shares):.2f} % of 1 s increments within 3 sigma ({len(shares)} sessions; "
                        f"worst {worst:.1f} sigma)")
        row.note = ("gyro integrated over 1 s between pose samples vs the pose's rotation increment; the constant "
                    "gyro bias is estimated per session (integrated gyro minus the pose's summed body-frame "
                    "rotation, over the session); sigma from the configured noise density, pose rotation noise and "
                    "bias walk; up to 3 sessions")
        _verdict(row, {">= 99 % within 3 sigma": np.mean(shares) >= 0.99})

    rows.add(StatRow("M7", "Head motion and IMU", "gyro vs head pose",
                     "integrated gyro over 1 s matches the pose's rotation increment within the configured noise "
                     "(3 sigma)"), m7)


def _gyro_bias(ti: np.ndarray, g: np.ndarray, th: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Constant gyro bias of a session (rad/s): the integral of the gyro minus the sum of the pose's body-frame
    rotation increments over the time both cover, divided by that time."""
    from xrdata.synth.head import quat_conj, quat_mul, quat_to_rotvec

    a, b = max(int(ti[0]), int(th[0])), min(int(ti[-1]), int(th[-1]))
    sel = (th >= a) & (th <= b)
    th, q = th[sel], q[sel]
    rot = quat_to_rotvec(quat_mul(quat_conj(q[:-1]), q[1:])).sum(axis=0)
    t = ti * 1e-9
    grid = np.concatenate([[th[0] * 1e-9], t[(ti > th[0]) & (ti < th[-1])], [th[-1] * 1e-9]])
    gg = np.stack([np.interp(grid, t, g[:, k]) for k in range(3)], axis=1)
    integral = np.trapezoid(gg, grid, axis=0)
    return np.asarray((integral - rot) / ((th[-1] - th[0]) * 1e-9))


def _gravity_windows(t: np.ndarray, acc: np.ndarray, ok: np.ndarray, th: np.ndarray,
                     q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """accel_gravity_check over 1 s windows that are fully inside ``ok``."""
    from xrdata.synth import stats

    fs = 1e9 / float(np.median(np.diff(t)))
    w = max(1, round(fs))
    k = len(t) // w
    good = ok[: k * w].reshape(k, w).all(axis=1)
    idx = np.flatnonzero(good)
    if not len(idx):
        return np.zeros(0), np.zeros(0)
    sel = (idx[:, None] * w + np.arange(w)[None, :]).reshape(-1)
    return stats.accel_gravity_check(t[sel], acc[sel], th, q, window_s=w / fs)


def _activity_mask(d: _Data, user: str, session: str, t: np.ndarray, activity: str) -> np.ndarray:
    seg = d.segments(user, session)
    if seg is not None:
        iv = seg.filter(pl.col("activity") == activity).select("start_ns", "stop_ns").to_numpy()
    else:
        iv = np.array([(a, b) for a, b, task, lab in d.labels(user, session) if task == "activity"
                       and lab == activity], dtype=np.int64).reshape(-1, 2)
    return _mask_intervals(t, iv)


# ------------------------------------------------------------------------------------------------------------
# eeg, audio, depth


def _eeg_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    sess = d.with_streams("eeg")

    def eeg(u: str, s: str) -> tuple[Stream, np.ndarray, float]:
        e = d.rec(u, s).streams["eeg"]
        x = np.asarray(e.data, dtype=np.float64)
        if not np.isfinite(x).all():  # bursty loss: interpolate the few lost samples for the spectra
            ok = np.isfinite(x).all(axis=1)
            idx = np.arange(len(x))
            x = np.stack([np.interp(idx, idx[ok], x[ok, c]) for c in range(x.shape[1])], axis=1)
        return e, x, float(e.rate_hz or 0.0)

    def clean_mask(u: str, s: str, e: Stream) -> np.ndarray:
        """Samples away from blinks, talking and walking (artifact-free stretches)."""
        t = np.asarray(e.time_ns)
        bad = _mask_intervals(t, _widen(d.intervals(u, s, "blink"), 0.3))
        bad |= _mask_intervals(t, _widen(d.intervals(u, s, "talk_spurt", "user"), 0.3))
        bad |= _activity_mask(d, u, s, t, "walking")
        seg = d.segments(u, s)
        if seg is not None:
            bad |= _mask_intervals(t, seg.filter(pl.col("talking") | pl.col("eyes_closed"))
                                   .select("start_ns", "stop_ns").to_numpy())
        return ~bad

    def g1(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        fits, errs = [], []
        for u, s in sess:
            e, x, fs = eeg(u, s)
            m = clean_mask(u, s, e)
            if m.sum() < 10 * fs:
                m = np.ones(len(x), bool)
            cols = _cols(e, CENTRAL + POSTERIOR) or list(range(x.shape[1]))
            fit = float(np.median(stats.aperiodic_exponent(x[m][:, cols], fs)))
            fits.append(fit)
            tr = d.truth(u, s, "eeg")
            conf = _f(tr.get("aperiodic_exponent")) if tr else _f(d.user_trait(u, "aperiodic_exponent"))
            if np.isfinite(conf):
                errs.append(fit - conf)
        row.values = {"exponent_min": min(fits), "exponent_max": max(fits), "sessions": float(len(fits))}
        checks = {"0.8-2.2": all(_within(f, 0.8, 2.2) for f in fits)}
        extra = ""
        if errs:
            row.values["max_abs_error"] = float(np.max(np.abs(errs)))
            checks["recovers the configured value +- 0.15"] = float(np.max(np.abs(errs))) <= 0.15
            extra = f"; fit - configured {min(errs):+.2f}..{max(errs):+.2f}"
        row.measured = f"exponent {min(fits):.2f}-{max(fits):.2f} ({len(fits)} sessions){extra}"
        row.note = ("median over central/posterior channels, 2-40 Hz, robust 1/f fit, artifact-free stretches "
                    "(away from blinks, talking, walking)")
        _verdict(row, checks)

    rows.add(StatRow("G1", "EEG", "aperiodic exponent (2-40 Hz)", "0.8-2.2; recovers the configured value within "
                     "+-0.15"), g1)

    def g2(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        per_user: dict[str, list[float]] = {}
        diffs = []
        for u, s in sess:
            e, x, fs = eeg(u, s)
            cols = _cols(e, POSTERIOR)
            if not cols:
                continue
            m = clean_mask(u, s, e)
            seg = d.segments(u, s)
            closed = np.zeros(len(x), bool)
            if seg is not None:
                closed = _mask_intervals(e.time_ns, seg.filter(pl.col("eyes_closed")).select("start_ns", "stop_ns")
                                         .to_numpy())
            use = m | closed
            if use.sum() < 8 * fs:
                use = np.ones(len(x), bool)
            pk = float(np.nanmedian(stats.peak_frequency(x[use][:, cols], fs)))
            per_user.setdefault(u, []).append(pk)
            conf = _f(d.user_trait(u, "alpha_peak_hz"))
            if np.isfinite(conf):
                diffs.append(pk - conf)
        _need(per_user, "no posterior EEG channel (O1/Oz/O2/POz/Pz)")
        allp = [p for v in per_user.values() for p in v]
        spread = [float(np.ptp(v)) for v in per_user.values() if len(v) >= 2]
        row.values = {"peak_min": min(allp), "peak_max": max(allp),
                      "within_user_range_max": max(spread) if spread else float("nan")}
        checks = {"8-13 Hz": all(_within(p, 8, 13) for p in allp)}
        extra = ""
        if spread:
            checks["stable per user (range < 1 Hz)"] = max(spread) < 1.0
            extra = f"; within-user range up to {max(spread):.2f} Hz ({len(spread)} users with >= 2 sessions)"
        if diffs:
            row.values["max_abs_vs_trait"] = float(np.max(np.abs(diffs)))
            extra += f"; peak - user trait {min(diffs):+.2f}..{max(diffs):+.2f} Hz"
        row.measured = f"posterior peak {min(allp):.2f}-{max(allp):.2f} Hz{extra}"
        row.note = "alpha centre of gravity above the aperiodic fit, 7-14 Hz"
        _verdict(row, checks)

    rows.add(StatRow("G2", "EEG", "alpha peak", "8-13 Hz at posterior channels; stable per user across sessions"), g2)

    def g3(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        ratios = []
        by_user: dict[str, dict[str, list[np.ndarray]]] = {}
        fs_of: dict[str, float] = {}
        for u, s in sess:
            e, x, fs = eeg(u, s)
            cols = _cols(e, ("O1", "Oz", "O2")) or _cols(e, POSTERIOR)
            if not cols:
                continue
            for a, b, task, lab in d.labels(u, s):
                if task == "rest":
                    m = (e.time_ns >= a + 1e9) & (e.time_ns < b)
                    if m.sum() > 4 * fs:
                        by_user.setdefault(u, {}).setdefault(lab, []).append(x[m][:, cols])
                        fs_of[u] = fs
        for u, v in by_user.items():
            if "eyes_closed" in v and "eyes_open" in v:
                ratios.append(float(np.mean(stats.band_power_ratio(np.concatenate(v["eyes_closed"]),
                                                                   np.concatenate(v["eyes_open"]), fs_of[u], 8, 13))))
        _need(ratios, "no user with both rest eyes_closed and eyes_open segments on EEG")
        row.values = {"ratio_min": min(ratios), "ratio_max": max(ratios), "users": float(len(ratios))}
        row.measured = f"posterior 8-13 Hz power closed/open {min(ratios):.2f}-{max(ratios):.2f} ({len(ratios)} users)"
        _verdict(row, {"1.5-6": all(_within(r, 1.5, 6) for r in ratios)})

    rows.add(StatRow("G3", "EEG", "eyes closed vs open", "posterior 8-13 Hz power ratio 1.5-6"), g3)

    def g4(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        by_user: dict[str, dict[str, list[np.ndarray]]] = {}
        fs_of: dict[str, float] = {}
        chans: dict[str, tuple[list[int], list[int]]] = {}
        for u, s in sess:
            e, x, fs = eeg(u, s)
            fz, pz = _cols(e, ("Fz", "FCz"))[:1], _cols(e, ("Pz", "P3", "P4"))[:1]
            if not fz or not pz:
                continue
            for a, b, task, lab in d.labels(u, s):
                if task == "cognitive_load" and lab in ("low", "high"):
                    m = (e.time_ns >= a + 2e9) & (e.time_ns < b)
                    if m.sum() > 4 * fs:
                        by_user.setdefault(u, {}).setdefault(lab, []).append(x[m])
                        fs_of[u], chans[u] = fs, (fz, pz)
        ok, parts = [], []
        for u, v in by_user.items():
            if "low" in v and "high" in v:
                lo, hi = np.concatenate(v["low"]), np.concatenate(v["high"])
                fz, pz = chans[u]
                th = float(stats.band_power_ratio(hi[:, fz], lo[:, fz], fs_of[u], 4, 8)[0])
                al = float(stats.band_power_ratio(hi[:, pz], lo[:, pz], fs_of[u], 8, 13)[0])
                ok.append(1.10 <= th <= 1.60 and 0.50 <= al <= 0.90)
                parts.append(f"{u}: theta x{th:.2f}, alpha x{al:.2f}")
        _need(ok, "no user with both high and low cognitive_load segments on EEG (with Fz and Pz)")
        row.values = {"share_users": float(np.mean(ok)), "users": float(len(ok))}
        row.measured = f"{100 * np.mean(ok):.0f} % of {len(ok)} users in range; " + "; ".join(parts[:4])
        _verdict(row, {">= 80 % of users": np.mean(ok) >= 0.8})

    rows.add(StatRow("G4", "EEG", "cognitive load high vs low",
                     "frontal-midline theta (4-8 Hz) up 10-60 %, parietal alpha down 10-50 %, in >= 80 % of users"), g4)

    def g5(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        meds = []
        for u, s in sess:
            e, x, fs = eeg(u, s)
            m = clean_mask(u, s, e)
            if m.sum() < 2 * fs:
                continue
            xx = x[m] - np.mean(x[m], axis=0)
            meds.append(float(np.median(stats.rms(xx) * 1e6)))
        _need(meds, "no EEG session with >= 2 s away from blinks, talking and walking")
        row.values = {"rms_uv_min": min(meds), "rms_uv_max": max(meds), "sessions": float(len(meds))}
        row.measured = f"median channel RMS {min(meds):.1f}-{max(meds):.1f} uV ({len(meds)} sessions)"
        row.note = "samples away from blinks, talking and walking"
        _verdict(row, {"5-50 uV": all(_within(v, 5, 50) for v in meds)})

    rows.add(StatRow("G5", "EEG", "amplitude", "broadband RMS 5-50 uV when artifact-free"), g5)

    def g7(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        gains_ft, gains_c = [], []
        for u, s in sess:
            e, x, fs = eeg(u, s)
            ft, c = _cols(e, FRONTO_TEMPORAL), _cols(e, CENTRAL)
            if not ft or fs < 150:
                continue
            t = np.asarray(e.time_ns)
            active = _mask_intervals(t, d.intervals(u, s, "talk_spurt", "user"))
            rest = clean_mask(u, s, e)
            if active.sum() < 2 * fs or rest.sum() < 4 * fs:
                continue
            gain = stats.emg_power_change_db(x[active], x[rest], fs)
            gains_ft.append(float(np.mean(gain[ft])))
            if c:
                gains_c.append(float(np.mean(gain[c])))
        _need(gains_ft, "no EEG session (>= 150 Hz, fronto-temporal channels) with >= 2 s of the user talking")
        row.values = {"ft_gain_db_min": min(gains_ft), "central_gain_db_max": max(gains_c) if gains_c else float("nan")}
        checks = {"fronto-temporal >= 3 dB": min(gains_ft) >= 3.0}
        if gains_c:
            checks["fronto-temporal > central"] = float(np.mean(gains_ft)) > float(np.mean(gains_c))
        row.measured = (f"20-100 Hz power talking vs rest: fronto-temporal +{min(gains_ft):.1f}.."
                        f"+{max(gains_ft):.1f} dB"
                        + (f", central {np.mean(gains_c):+.1f} dB (mean)" if gains_c else ""))
        row.note = "EMG from speech (the user's talk spurts); rest = artifact-free stretches"
        _verdict(row, checks)

    rows.add(StatRow("G7", "EEG", "EMG artifact when enabled",
                     "20-100 Hz power up >= 3 dB, fronto-temporal > central"), g7)

    def g8(row: StatRow) -> None:
        _need(sess, "no EEG stream in the store")
        snrs = []
        for u, s in sess:
            e, x, fs = eeg(u, s)
            if not (e.meta or {}).get("line_noise"):
                continue
            tr = d.truth(u, s, "eeg") or {}
            line = _f(tr.get("line_hz") or d.user_trait(u, "line_hz"))
            if not np.isfinite(line) or fs < 2.2 * line:
                continue
            snrs.append(float(np.median(stats.line_noise_snr_db(x, fs, line))))
        _need(snrs, "no EEG stream with line noise enabled (stream meta line_noise) and a known mains frequency")
        row.values = {"snr_db_min": min(snrs), "sessions": float(len(snrs))}
        row.measured = f"peak at the mains frequency {min(snrs):.1f}-{max(snrs):.1f} dB over 2-5 Hz neighbours"
        _verdict(row, {">= 10 dB": min(snrs) >= 10.0})

    rows.add(StatRow("G8", "EEG", "line noise when enabled",
                     "narrow peak at exactly 50 or 60 Hz (per locale) >= 10 dB over neighbours"), g8)


def _widen(iv: np.ndarray, seconds: float) -> np.ndarray:
    pad = round(seconds * 1e9)
    out = np.asarray(iv, dtype=np.int64).reshape(-1, 2).copy()
    out[:, 0] -= pad
    out[:, 1] += pad
    return out


def _audio_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    sess = [(u, s) for u, s in d.with_streams("audio") if len(d.intervals(u, s, "talk_spurt"))]

    def audio(u: str, s: str) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, Stream]:
        a = d.rec(u, s).streams["audio"]
        x = np.nan_to_num(np.asarray(a.data[:, 0], dtype=np.float64))
        user = d.intervals(u, s, "talk_spurt", "user") / 1e9
        both = d.intervals(u, s, "talk_spurt") / 1e9
        return x, float(a.rate_hz or 16000.0), user, both, a

    def a2(row: StatRow) -> None:
        _need(sess, "no audio stream with talk_spurt events in the store")
        meds, f0s, low_rate = [], [], 0
        for u, s in sess:
            x, fs, user, both, _ = audio(u, s)
            if fs < 15999.0:  # below 16 kHz the 4-8 kHz band is missing and the centroid is biased low
                low_rate += 1
                continue
            if not len(user):
                continue
            c = stats.speech_centroid_hz(x, fs, user, both)
            if len(c) >= 20:
                meds.append(float(np.median(c)))
                f0s.append(_f(d.user_trait(u, "voice_f0_hz")))
        _need(meds, "no session with >= 20 speech frames of the user in audio sampled at >= 16 kHz"
                    + (f" ({low_rate} session(s) below 16 kHz)" if low_rate else ""))
        row.values = {"median_hz_min": min(meds), "median_hz_max": max(meds), "sessions": float(len(meds))}
        f0 = np.array(f0s)
        extra = ""
        if np.isfinite(f0).sum() >= 4 and np.ptp(f0[np.isfinite(f0)]) > 0:
            ok = np.isfinite(f0)
            r = float(np.corrcoef(f0[ok], np.array(meds)[ok])[0, 1])
            row.values["corr_f0"] = r
            extra = f"; corr(voice f0, centroid) {r:+.2f}"
        row.measured = f"per-session median centroid {min(meds):.0f}-{max(meds):.0f} Hz ({len(meds)} sessions){extra}"
        row.note = ("frames of the user's talk spurts >= 10 dB above the non-speech floor, resampled to 16 kHz"
                    + (f"; {low_rate} session(s) recorded below 16 kHz left out" if low_rate else ""))
        _verdict(row, {"median 900-2500 Hz": all(_within(m, 900, 2500) for m in meds)})

    rows.add(StatRow("A2", "Audio", "spectral centroid of speech frames at 16 kHz",
                     "median 900-2500 Hz; lower for low-pitch voices"), a2)

    def talk_spans(u: str, s: str, conversation_only: bool) -> np.ndarray:
        seg = d.segments(u, s)
        if seg is not None:
            f = pl.col("talking")
            if conversation_only:
                f = f & (pl.col("task") != "speech_command")
            return seg.filter(f).select("start_ns", "stop_ns").to_numpy().reshape(-1, 2)
        tasks = ("affect",) if conversation_only else ("affect", "speech_command")
        return np.array([(a, b) for a, b, t, _ in d.labels(u, s) if t in tasks], dtype=np.int64).reshape(-1, 2)

    def a4(row: StatRow) -> None:
        _need(sess, "no audio stream with talk_spurt events in the store")
        peaks = []
        for u, s in sess:
            x, fs, *_ = audio(u, s)
            spans = talk_spans(u, s, False)
            parts = [x[round(a * 1e-9 * fs): round(b * 1e-9 * fs)] for a, b in spans]
            y = np.concatenate(parts) if parts else np.zeros(0)
            if len(y) >= 8 * fs:
                peaks.append(stats.envelope_modulation_peak_hz(y, fs))
        _need(peaks, "no session with >= 8 s of talking segments")
        row.values = {"peak_hz_min": min(peaks), "peak_hz_max": max(peaks), "sessions": float(len(peaks))}
        row.measured = f"envelope modulation peak {min(peaks):.1f}-{max(peaks):.1f} Hz ({len(peaks)} sessions)"
        row.note = "talking segments concatenated; f x PSD of the 10 ms RMS envelope"
        _verdict(row, {"2.5-8 Hz": all(_within(p, 2.5, 8.0) for p in peaks)})

    rows.add(StatRow("A4", "Audio", "envelope modulation spectrum 1-16 Hz", "peak in 2.5-8 Hz"), a4)

    def a5(row: StatRow) -> None:
        durs, act, turns, total = [], {0: 0.0, 1: 0.0}, 0.0, 0.0
        for u, s in d.sessions:
            spans = talk_spans(u, s, True)
            if not len(spans):
                continue
            ev = d.events(u, s).filter(pl.col("label") == "talk_spurt")
            if not ev.height:
                continue
            st = ev["time_ns"].to_numpy().astype(np.float64)
            sp = np.stack([st, st + ev["duration_ns"].to_numpy(), (ev["value"] != "user").to_numpy()], axis=1)
            for a, b in spans:
                inside = sp[(sp[:, 0] >= a) & (sp[:, 0] < b)].copy()
                seconds = (b - a) * 1e-9
                total += seconds
                if not len(inside):
                    continue
                inside[:, 1] = np.minimum(inside[:, 1], b)
                inside[:, :2] = (inside[:, :2] - a) * 1e-9
                v = stats.voice_activity_stats(inside, seconds)
                for k, x in v["activity"].items():
                    act[int(k)] = act.get(int(k), 0.0) + x * seconds
                turns += v["turn_changes_per_min"] * seconds / 60.0
                durs.append(inside[:, 1] - inside[:, 0])
        _need(durs and total >= 30, "less than 30 s of conversation (talking, non-command) segments with spurts")
        dd = np.concatenate(durs)
        share = {k: x / total for k, x in act.items()}
        rate = turns / (total / 60.0)
        med, mean = float(np.median(dd)), float(np.mean(dd))
        row.values = {"activity_user": share[0], "activity_partner": share[1], "spurt_median_s": med,
                      "spurt_mean_s": mean, "turns_per_min": rate, "minutes": total / 60}
        row.measured = (f"activity user {share[0]:.2f}, partner {share[1]:.2f}; spurts median {med:.2f} s, mean "
                        f"{mean:.2f} s; {rate:.1f} turn changes/min ({total / 60:.1f} min)")
        row.note = "talk_spurt events inside conversation segments (talking, not a spoken command), per segment"
        _verdict(row, {"activity 0.25-0.6 per speaker": all(_within(a, 0.25, 0.6) for a in share.values()),
                       "spurts right-skewed, median 0.2-1.5 s": _within(med, 0.2, 1.5) and mean > med,
                       "8-25 turn changes/min": _within(rate, 8, 25)})

    rows.add(StatRow("A5", "Audio", "voice activity in a dyad",
                     "per speaker 0.25-0.6; talk spurts right-skewed, median 0.2-1.5 s; 8-25 turn changes/min"), a5)

    def a6(row: StatRow) -> None:
        _need(sess, "no audio stream with talk_spurt events in the store")
        snrs, levels = [], []
        for u, s in sess:
            x, fs, user, both, a = audio(u, s)
            if len(user):
                snrs.append(stats.snr_db(x, fs, user, both))
            n = round(0.02 * fs)
            t = (np.arange(x.size // n) + 0.5) * 0.02
            quiet = ~stats.interval_mask(_widen(both * 1e9, 0.1) / 1e9, t)
            fsdb = _f((a.meta or {}).get("dbspl_full_scale"))
            if quiet.sum() > 50 and np.isfinite(fsdb):
                noise = x[: t.size * n].reshape(-1, n)[quiet].ravel()
                levels.append(stats.a_weighted_level_db(noise, fs, fsdb))
        _need(snrs, "no session with the user's speech")
        row.values = {"snr_db_min": min(snrs), "snr_db_max": max(snrs)}
        checks = {"SNR 5-35 dB": all(_within(v, 5, 35) for v in snrs)}
        extra = ""
        if levels:
            row.values["noise_dba_min"], row.values["noise_dba_max"] = min(levels), max(levels)
            checks["room noise 30-65 dBA (+-1)"] = all(_within(v, 29, 66) for v in levels)
            extra = f"; non-speech level {min(levels):.1f}-{max(levels):.1f} dBA"
        row.measured = f"SNR {min(snrs):.1f}-{max(snrs):.1f} dB ({len(snrs)} sessions){extra}"
        row.note = "P.56-style active speech level vs frames outside every talk spurt; dBA from the stream's full scale"
        _verdict(row, checks)

    rows.add(StatRow("A6", "Audio", "levels", "per-session SNR 5-35 dB; room noise presets 30-65 dBA"), a6)


def _depth_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats
    from xrdata.synth.depth import DEPTH_KINDS

    sess = d.with_streams("depth")

    def frames(u: str, s: str) -> tuple[np.ndarray, dict[str, Any]]:
        st = d.rec(u, s).streams["depth"]
        f = np.asarray(st.data)
        keep = (f > 0).any(axis=(1, 2))  # whole frames lost to dropout are stream loss, not pixel invalidity
        return f[keep], dict(st.meta or {})

    rows.add(StatRow("D1", "Depth", "temporal noise on a static plane, structured-light preset",
                     "sigma_z within +-20 % of 1.2 + 1.9 (z - 0.4)^2 mm (z in m)", source="calibration capture"),
             lambda row: _capture_d1(d, row))

    def d3(row: StatRow) -> None:
        _need(sess, "no depth stream in the store")
        worst, parts = 0.0, set()
        for u, s in sess:
            f, meta = frames(u, s)
            kind = str(meta.get("kind", "structured_light"))
            lo = _f(meta.get("z_min_m", DEPTH_KINDS.get(kind, {}).get("z_min_m", 0.5)))
            hi = _f(meta.get("z_max_m", DEPTH_KINDS.get(kind, {}).get("z_max_m", 3.5)))
            v = f[f > 0].astype(np.float64)
            if not len(v):
                continue
            out = float(np.mean((v < lo * 1000 - 1) | (v > hi * 1000 + 1)))
            worst = max(worst, out)
            parts.add(f"{kind} {lo:g}-{hi:g} m: valid {v.min() / 1000:.2f}-{v.max() / 1000:.2f} m")
        row.values = {"share_valid_outside": worst}
        row.measured = "; ".join(sorted(parts)) + f"; valid pixels outside the range: {100 * worst:.3f} %"
        row.note = "range from the stream metadata (z_min_m/z_max_m) or the sensor kind's default"
        _verdict(row, {"outside the range invalid (0)": worst == 0.0})

    rows.add(StatRow("D3", "Depth", "valid range",
                     "pixels outside the preset's range invalid (0): structured light 0.5-3.5 m; ToF 0.5-3.86 m"), d3)

    def d4(row: StatRow) -> None:
        _need(sess, "no depth stream in the store")
        fracs, near, far = [], [], []
        for u, s in sess:
            f, _ = frames(u, s)
            if not len(f):
                continue
            fracs.append(stats.invalid_fraction(f))
            for fr in f[:: max(1, len(f) // 8)]:
                ref = fr.astype(np.float64)
                zone = stats.depth_jumps(np.where(ref > 0, ref, 0), 300.0, 3)
                inv = fr == 0
                if zone.any() and (~zone).any():
                    near.append(float(inv[zone].mean()))
                    far.append(float(inv[~zone].mean()))
        _need(fracs, "no depth frame")
        row.values = {"invalid_min": min(fracs), "invalid_max": max(fracs), "sessions": float(len(fracs))}
        checks = {"indoor invalid 2-15 %": all(_within(v, 0.02, 0.15) for v in fracs)}
        extra = ""
        if near:
            row.values["invalid_near_edges"] = float(np.mean(near))
            row.values["invalid_elsewhere"] = float(np.mean(far))
            checks["holes concentrate beside depth edges"] = np.mean(near) > 2 * np.mean(far)
            extra = f"; invalid within 3 px of > 30 cm edges {100 * np.mean(near):.1f} % vs {100 * np.mean(far):.1f} %"
        row.measured = (f"invalid fraction {100 * min(fracs):.1f}-{100 * max(fracs):.1f} % ({len(fracs)} sessions)"
                        f"{extra}")
        row.note = "frames lost entirely to dropout are excluded"
        _verdict(row, checks)

    rows.add(StatRow("D4", "Depth", "holes and shadows",
                     "invalid bands beside foreground edges; indoor invalid fraction 2-15 %"), d4)
    rows.add(StatRow("D5", "Depth", "flying pixels, ToF preset",
                     "only at depth jumps > 10 cm, 1-3 px wide; none on smooth surfaces", source="calibration capture"),
             lambda row: _capture_d5(d, row))


# ------------------------------------------------------------------------------------------------------------
# dropout, drift, federated


def _dropout_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    def t1(row: StatRow) -> None:
        av = d.gt("availability")
        _need(av is not None, "needs the ground-truth availability table (Gilbert-Elliott parameters)")
        assert av is not None
        av = av.filter((pl.col("status") == "present") & pl.col("ge_p").is_not_null() & (pl.col("ge_p") > 0)
                       & (pl.col("n_samples") > 0))
        runs = d.gt("dropout")
        _need(av.height and runs is not None, "no injected bursty loss in the store")
        assert runs is not None
        parts, checks = [], {}
        best = None
        for stream in sorted(set(av["stream"])):
            a = av.filter(pl.col("stream") == stream)
            steps = a["n_samples"].to_numpy() / a["ge_step_samples"].to_numpy()
            p, r = a["ge_p"].to_numpy(), a["ge_r"].to_numpy()
            expected = float(np.sum(steps * p / (p + r)) / np.sum(steps))
            bursts = runs.filter((pl.col("stream") == stream) & (pl.col("cause") == "burst"))
            bursts = bursts.join(a.select("user", "session", "ge_step_samples"), on=["user", "session"])
            if not bursts.height:
                continue
            observed = float(np.sum(a["injected_frac"].to_numpy() * a["n_samples"].to_numpy())
                             / np.sum(a["n_samples"].to_numpy()))
            burst_steps = (bursts["n_samples"] / bursts["ge_step_samples"]).to_numpy()
            exp_burst = float(np.sum(steps * p / (p + r)) / np.sum(steps * p / (p + r) * r)) if np.any(r) else np.nan
            k = bursts.height
            if best is None or k > best[0]:
                best = (k, stream, observed, expected, float(burst_steps.mean()), exp_burst)
            parts.append(f"{stream}: loss {100 * observed:.2f} % vs {100 * expected:.2f} %, burst "
                         f"{burst_steps.mean():.1f} vs {exp_burst:.1f} steps ({k} bursts)")
        _need(best is not None, "no burst in the dropout table")
        assert best is not None
        k, stream, obs, exp, mb, eb = best
        # Fano factor on the stored loss mask of the stream with the most bursts (one session at a time)
        fanos = []
        for u, s in d.with_streams(stream, limit=6):
            data = np.asarray(d.rec(u, s).streams[stream].data)
            lost = ~np.isfinite(data.reshape(len(data), -1)).any(axis=1) if data.dtype.kind == "f" else \
                (data.reshape(len(data), -1) == 0).all(axis=1)
            if lost.sum() and len(stats._true_runs(lost)[0]) >= 5:
                fanos.append(stats.loss_statistics(lost)["fano"])
        row.values = {"loss_rate": obs, "loss_rate_expected": exp, "mean_burst_steps": mb,
                      "mean_burst_expected": eb, "bursts": float(k)}
        if fanos:
            row.values["fano_median"] = float(np.nanmedian(fanos))
            checks["Fano factor > 1"] = float(np.nanmedian(fanos)) > 1.0
        rel_tol = max(0.10, 3.0 * math.sqrt(2.0 / k))  # burst count and geometric lengths: CV ~ sqrt(2 / k)
        checks[f"loss rate within +-{100 * rel_tol:.0f} % of p/(p+r)"] = abs(obs / exp - 1) <= rel_tol
        checks[f"mean burst within +-{100 * rel_tol:.0f} % of 1/r"] = abs(mb / eb - 1) <= rel_tol
        row.measured = "; ".join(parts) + (f"; Fano {np.nanmedian(fanos):.1f} ({stream})" if fanos else "")
        row.note = (f"pooled over sessions per stream (chain steps); the check uses the stream with the most bursts "
                    f"({stream}, {k}); tolerance max(10 %, 3 sqrt(2/bursts)) because a small store holds few bursts")
        row.source = "ground truth + store"
        _verdict(row, checks)

    rows.add(StatRow("T1", "Dropout and drift", "bursty dropout (Gilbert-Elliott with p, r)",
                     "loss rate within +-10 % of p/(p+r); mean burst within +-10 % of 1/r; Fano factor of windowed "
                     "loss counts > 1"), t1)

    def t2(row: StatRow) -> None:
        cat = d.catalog.filter(pl.col("missing_frac").is_not_null())
        parts, checks = [], {}
        for stream in sorted(set(cat["stream"])):
            c = cat.filter(pl.col("stream") == stream)
            if c["user"].n_unique() < 3 or float(np.nanmax(c["missing_frac"].to_numpy())) == 0.0:
                continue
            v = stats.dropout_variation(c["user"].to_numpy(), c["missing_frac"].to_numpy())
            row.values[f"{stream}_cv_users"] = v["cv_between_users"]
            row.values[f"{stream}_cv_within"] = v["median_cv_within_user"]
            parts.append(f"{stream}: CV across users {v['cv_between_users']:.2f}, within user "
                         f"{_fmt(v['median_cv_within_user'], 2)}")
            checks[f"{stream} CV across users > 0.2"] = v["cv_between_users"] > 0.2
            if np.isfinite(v["median_cv_within_user"]):
                checks[f"{stream} changes across sessions"] = v["median_cv_within_user"] > 0.05
        _need(checks, "no stream recorded by >= 3 users with some missing data in the catalog")
        row.measured = "; ".join(parts)
        row.source = "catalog"
        row.note = "missing fraction per (user, session) from the catalog"
        _verdict(row, checks)

    rows.add(StatRow("T2", "Dropout and drift", "dropout differs by user and changes over time",
                     "coefficient of variation of missing rate across users > 0.2; a user's rate changes across "
                     "sessions"), t2)

    def t3(row: StatRow) -> None:
        shares, n = [], 0
        for u, s in d.with_streams("gaze"):
            blinks = d.intervals(u, s, "blink")
            if not len(blinks):
                continue
            g = d.rec(u, s).streams["gaze"]
            dirs = stats.gaze_directions(np.asarray(g.data), g.channels)
            valid = np.isfinite(dirs).all(axis=1)
            vc = _col(g, "combined_valid")
            if vc is not None:
                valid &= np.asarray(g.data[:, vc]) > 0.5
            ep = stats.invalid_episodes(g.time_ns, valid)
            short = ep[(ep[:, 1] - ep[:, 0]) < 500_000_000]
            if len(short):
                shares.append(stats.episode_overlap_share(short, blinks) * len(short))
                n += len(short)
        _need(n, "no blink events and short eye-invalid episodes (blink events come from the synthesizer or a "
                 "blink detector)")
        share = float(np.sum(shares) / n)
        row.values = {"share_blinks": share, "episodes": float(n)}
        checks = {">= 95 % of short eye-invalid episodes are blinks": share >= 0.95}
        row.measured = f"{100 * share:.1f} % of {n} eye-invalid episodes < 500 ms coincide with blink events"
        h7 = next((r for r in rows.rows if r.id == "H7"), None)
        if h7 is not None and "p_overlap" in h7.values:
            checks["hand loss more likely during overlap"] = h7.values["p_overlap"] > h7.values["p_clear"]
            row.measured += (f"; hand loss P(overlap) {h7.values['p_overlap']:.2f} vs clear "
                             f"{h7.values['p_clear']:.3f} (H7 capture)")
        _verdict(row, checks)

    rows.add(StatRow("T3", "Dropout and drift", "coupled to events",
                     ">= 95 % of eye-invalid episodes < 500 ms coincide with blinks; hand loss more likely during "
                     "hand overlap"), t3)

    def t4(row: StatRow) -> None:
        from xrdata.synth.drift import CONCEPT_KINDS

        users, seg, sessions = d.gt("users"), d.gt("segments"), d.gt("sessions")
        _need(users is not None and seg is not None and sessions is not None, "needs the ground-truth tables")
        assert users is not None and seg is not None and sessions is not None
        drifting = users.filter(pl.col("concept_kind").is_not_null() & (pl.col("concept_kind") != ""))
        _need(drifting.height, "no user with concept drift in this cohort")
        xs, ys = [], []
        for r in drifting.iter_rows(named=True):
            task = CONCEPT_KINDS.get(r["concept_kind"])
            sg = seg.filter((pl.col("user") == r["user"]) & (pl.col("task") == task)).join(
                sessions.select("user", "session", "study_week"), on=["user", "session"])
            xs += ((sg["study_week"].to_numpy() - r["concept_p_week"]) / r["concept_w_weeks"]).tolist()
            ys += sg["concept"].to_list()
        _need(len(xs) >= 10, f"only {len(xs)} segments of drifting tasks")
        fit = stats.concept_schedule_fit(np.array(xs), np.array(ys), np.array([-50, -2, -1, -0.5, 0, 0.5, 1, 2, 50.0]))
        keep = fit["n"] >= 5
        _need(keep.any(), "no schedule bin with >= 5 segments")
        zmax = float(np.max(np.abs(fit["z"][keep])))
        row.values = {"max_abs_z": zmax, "segments": float(len(xs)), "users": float(drifting.height)}
        row.measured = (f"{len(xs)} segments of {drifting.height} drifting users; observed vs sigmoid share per bin: "
                        + ", ".join(f"{o:.2f}/{e:.2f}" for o, e in zip(fit["observed"][keep], fit["expected"][keep],
                                                                        strict=True))
                        + f"; max |z| {zmax:.1f}")
        row.source = "ground truth"
        row.note = "bins of (t - p) / w; z = binomial standard errors (bins with >= 5 segments)"
        _verdict(row, {"follows the sigmoid (|z| < 3.5 in every bin)": zmax < 3.5})

    rows.add(StatRow("T4", "Dropout and drift", "concept-drift schedule",
                     "share of new-concept samples follows 1/(1+exp(-4(t-p)/w))"), t4)
    rows.add(StatRow("T5", "Dropout and drift", "drift detectability",
                     "a standard detector (ADWIN, Page-Hinkley) on a per-user feature fires within a few sessions of "
                     "an injected shift; < 5 % false alarms on stationary users"), lambda row: _t5(d, row))

    def t7(row: StatRow) -> None:
        drift = d.gt("drift")
        _need(drift is not None, "needs the ground-truth drift table")
        assert drift is not None
        grew, before, after, dts, incs = [], [], [], [], []
        for _, g in drift.sort("user", "study_week").group_by("user", maintain_order=True):
            off = g["gaze_offset_deg"].to_numpy()
            rec = g["recalibrated"].to_numpy()
            for k in range(1, len(g)):
                if rec[k]:
                    before.append(off[k - 1])
                    after.append(off[k])
                else:
                    grew.append(off[k] >= off[k - 1])
            hw = g["hours_worn"].to_numpy() * 3600.0
            b = g["gyro_bias_x"].to_numpy()
            for i in range(len(g)):
                for j in range(i + 1, len(g)):
                    dts.append(hw[j] - hw[i])
                    incs.append(b[j] - b[i])
        checks: dict[str, bool] = {}
        parts = []
        if grew:
            row.values["share_growing"] = float(np.mean(grew))
            checks["gaze offset grows between recalibrations"] = float(np.mean(grew)) >= 0.99
            parts.append(f"offset grew in {100 * np.mean(grew):.0f} % of {len(grew)} session pairs without "
                         "recalibration")
        if len(after) >= 5:  # a recalibration draws a fresh residual offset: judge the mean over several
            row.values["offset_before"], row.values["offset_after"] = float(np.mean(before)), float(np.mean(after))
            checks["resets at recalibration"] = float(np.mean(after)) < float(np.mean(before))
            parts.append(f"recalibration: {np.mean(before):.2f} -> {np.mean(after):.2f} deg ({len(after)})")
        if len(dts) >= 60:
            slope = stats.sqrt_time_slope(np.array(dts), np.array(incs))
            row.values["bias_walk_slope"] = slope
            checks["IMU bias walks with sqrt(dt) (slope 0.5 +- 0.15)"] = abs(slope - 0.5) <= 0.15
            parts.append(f"gyro bias increment ~ dt^{slope:.2f} over {len(dts)} session pairs")
        _need(checks, "too few sessions per user for the calibration-drift checks")
        row.measured = "; ".join(parts)
        row.source = "ground truth"
        _verdict(row, checks)

    rows.add(StatRow("T7", "Dropout and drift", "calibration drift",
                     "gaze offset grows between recalibrations and resets at recalibration; IMU bias walks with "
                     "sqrt(dt)"), t7)


def _t5(d: _Data, row: StatRow) -> None:
    """Page-Hinkley on a per-user gaze feature (signed yaw during gaze selection), drifting vs stationary users."""
    from xrdata.synth import stats
    from xrdata.synth.timeline import SELECTION_DIRECTIONS

    users, sessions = d.gt("users"), d.gt("sessions")
    _need(users is not None and sessions is not None, "needs the ground-truth users and sessions tables")
    assert users is not None and sessions is not None
    gaze_sessions = set(d.with_streams("gaze", limit=10**9))
    delays, false = [], []
    for r in users.iter_rows(named=True):
        if "gaze_selection" not in (r["tasks"] or []):
            continue
        ss = sessions.filter(pl.col("user") == r["user"]).sort("study_week")
        feats, weeks = [], []
        for s, w in ss.select("session", "study_week").iter_rows():
            if (r["user"], s) not in gaze_sessions:
                continue
            g = d.store.read(r["user"], s, streams=["gaze"]).streams["gaze"]
            dirs = stats.gaze_directions(np.asarray(g.data), g.channels)
            yaw = np.degrees(np.arctan2(-dirs[:, 0], -dirs[:, 2]))
            vals = []
            for a, b, task, lab in d.labels(r["user"], s):
                side = np.sign(SELECTION_DIRECTIONS.get(lab, (0.0, 0.0))[0])
                if task == "gaze_selection" and side != 0:
                    m = (g.time_ns >= a) & (g.time_ns < b)
                    if np.isfinite(yaw[m]).any():
                        vals.append(float(np.nanmean(yaw[m])) * side)
            if vals:
                feats.append(float(np.mean(vals)))
                weeks.append(w)
        if len(feats) < 5:
            continue
        x = np.array(feats)
        z = (x - x[:3].mean()) / max(float(np.std(x[:3], ddof=1)), 1.0)
        alarm = stats.page_hinkley(z, delta=0.5, threshold=6.0, min_n=3)
        if r["concept_kind"] == "selection_layout":
            first_new = int(np.searchsorted(np.array(weeks), r["concept_p_week"]))
            if first_new >= len(feats):
                continue
            delays.append(alarm - first_new if alarm >= 0 else 10**6)
        elif not r["concept_kind"]:
            false.append(alarm >= 0)
    _need(delays or false, "no user with >= 5 gaze-selection sessions on a gaze stream")
    checks = {}
    parts = []
    if delays:
        found = [x for x in delays if x < 10**6]
        row.values["detected_share"] = len(found) / len(delays)
        if found:
            row.values["max_delay_sessions"] = float(max(found))
        checks["fires within 3 sessions of the shift"] = all(-1 <= x <= 3 for x in delays)
        parts.append(f"{len(found)}/{len(delays)} drifting users detected, delays {sorted(found)} sessions")
    if false:
        row.values["false_alarm_rate"] = float(np.mean(false))
        checks["< 5 % false alarms"] = float(np.mean(false)) < 0.05
        parts.append(f"false alarms {sum(false)}/{len(false)} stationary users")
    row.measured = "; ".join(parts)
    row.source = "ground truth + store"
    row.note = ("Page-Hinkley (delta 0.5, threshold 6, standardised by the first 3 sessions) on the per-session mean "
                "gaze yaw during gaze_selection, signed by the label's side (selection-layout drift mirrors it)")
    if not delays:
        row.note += "; no selection-layout drifting user with >= 5 sessions: only false alarms checked"
    _verdict(row, checks)


def _fed_rows(d: _Data, rows: _Rows) -> None:
    from xrdata.synth import stats

    cfg = (d.config or {}).get("config", {})

    def f1(row: StatRow) -> None:
        per_session = d.catalog.group_by("user", "session").agg(pl.col("duration_s").max())
        per_user = per_session.group_by("user").agg(pl.col("duration_s").sum()).sort("user")
        _need(per_user.height >= 6, f"{per_user.height} users: too few to judge the skew of samples per user")
        v = stats.samples_per_user_stats(per_user["duration_s"].to_numpy())
        row.values = {"skewness": v["skewness"], "cv": v["cv"], "users": float(per_user.height)}
        row.measured = f"seconds recorded per user: skewness {v['skewness']:.2f}, std/mean {v['cv']:.2f} " \
                       f"({per_user.height} users)"
        row.source = "catalog"
        if cfg.get("balanced"):
            row.note = "balanced preset: equal schedules, skew not expected"
            _verdict(row, {"balanced (std/mean < 0.5)": v["cv"] < 0.5})
            return
        row.note = "the skewness of a handful of users is itself noisy" if per_user.height < 20 else ""
        _verdict(row, {"skewness > 1": v["skewness"] > 1.0, "std/mean 0.5-2.5": _within(v["cv"], 0.5, 2.5)})

    rows.add(StatRow("F1", "Federated structure", "samples per user",
                     "right-skewed (skewness > 1; std/mean 0.5-2.5) unless a balanced preset is chosen"), f1)

    counts_by_task = _label_counts(d)

    def f2(row: StatRow) -> None:
        _need(counts_by_task, "no task labels in the store")
        alpha = _f(cfg.get("dirichlet_alpha"))
        ent, top2, parts = [], [], []
        sims: dict[str, list[float]] = {"low": [], "mid": [], "high": []}
        rng = np.random.default_rng(0)
        for task, (_, _, m) in sorted(counts_by_task.items()):
            m = m[m.sum(axis=1) >= 2]  # a client with one labelled segment has entropy 0 whatever alpha
            if m.shape[0] < 2:
                continue
            s = stats.label_skew_stats(m)
            ent.append(s["mean_entropy"])
            top2.append(s["median_top2_share"])
            parts.append(f"{task} H {s['mean_entropy']:.2f}, top-2 {s['median_top2_share']:.2f}")
            if np.isfinite(alpha):
                for k, a in (("low", alpha / 4), ("mid", alpha), ("high", alpha * 4)):
                    sims[k].append(_dirichlet_entropy(rng, m, a))
        _need(ent, "no task with >= 2 users having >= 2 labelled segments each")
        row.values = {"mean_entropy": float(np.mean(ent)), "median_top2_share": float(np.median(top2))}
        checks: dict[str, bool] = {}
        if np.isfinite(alpha):
            lo, mid, hi = (float(np.mean(sims[k])) for k in ("low", "mid", "high"))
            row.values.update(alpha=alpha, entropy_alpha_div4=lo, entropy_alpha=mid, entropy_alpha_x4=hi)
            checks["entropy increases with alpha (simulated, same counts)"] = lo < mid < hi
            checks["observed entropy between alpha/4 and 4 alpha"] = lo <= float(np.mean(ent)) <= hi
            if alpha <= 0.1:
                checks["alpha <= 0.1: median top-2 share >= 0.8"] = float(np.median(top2)) >= 0.8
            parts.append(f"alpha {alpha:g}: Dirichlet entropy with the same counts {lo:.2f} (alpha/4) / {mid:.2f} / "
                         f"{hi:.2f} (4 alpha)")
            row.source = "store + config"
        row.measured = "; ".join(parts)
        row.note = "clients = users; one count matrix per task"
        _need(checks, "the Dirichlet alpha is unknown (no ground_truth/config.json)")
        _verdict(row, checks)

    rows.add(StatRow("F2", "Federated structure", "label skew vs Dirichlet alpha",
                     "mean client label entropy increases with alpha; at alpha 0.1 the median client has >= 80 % of "
                     "its samples in <= 2 classes"), f2)

    def f4(row: StatRow) -> None:
        user_tasks: dict[str, set[str]] = {}
        for u, s in d.sessions:
            user_tasks.setdefault(u, set()).update(t for _, _, t, _ in d.labels(u, s))
        tasks = sorted({t for v in user_tasks.values() for t in v})
        _need(tasks, "no task labels in the store")
        m = stats.task_cooccurrence([sorted(v) for v in user_tasks.values()], tasks)
        lacking = sum(1 for v in user_tasks.values() if set(tasks) - v)
        row.values = {"users": float(len(user_tasks)), "tasks": float(len(tasks)),
                      "users_lacking_a_task": float(lacking)}
        row.measured = (f"{lacking}/{len(user_tasks)} users lack some task; users per task: "
                        + ", ".join(f"{t} {m[i, i]}" for i, t in enumerate(tasks)))
        row.note = "co-occurrence matrix in the labels section"
        if cfg.get("all_tasks"):
            _verdict(row, {"all_tasks preset: every user does every task": lacking == 0})
        else:
            _verdict(row, {"users may lack some tasks": lacking > 0 or len(user_tasks) < 2})

    rows.add(StatRow("F4", "Federated structure", "multi-task labels",
                     "users may lack some tasks; the task co-occurrence is reported"), f4)
    rows.add(StatRow("F5", "Federated structure", "reproducibility",
                     "same seed -> identical bytes; each (user, session, modality) seeded independently",
                     source="regeneration"), lambda row: _regenerate(d, row))


def _label_counts(d: _Data) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
    """Per task: (users, classes, counts (users, classes)) of labelled segments."""
    rows = []
    for u, s in d.sessions:
        rows += [(u, t, c) for _, _, t, c in d.labels(u, s)]
    out = {}
    for task in sorted({t for _, t, _ in rows}):
        sel = [(u, c) for u, t, c in rows if t == task]
        users = sorted({u for u, _ in sel})
        classes = sorted({c for _, c in sel})
        m = np.zeros((len(users), len(classes)), dtype=np.int64)
        for u, c in sel:
            m[users.index(u), classes.index(c)] += 1
        out[task] = (users, classes, m)
    return out


def _dirichlet_entropy(rng: np.random.Generator, counts: np.ndarray, alpha: float, reps: int = 200) -> float:
    """Mean client label entropy expected when each client's class probabilities ~ Dirichlet(alpha) and it
    draws as many samples as in ``counts`` (the same number of classes)."""
    from xrdata.synth.stats import label_entropy

    k = counts.shape[1]
    n = counts.sum(axis=1)
    out = []
    for _ in range(reps):
        p = rng.dirichlet(np.full(k, alpha), size=len(n))
        out.append(np.mean([label_entropy(rng.multinomial(ni, pi)) for ni, pi in zip(n, p, strict=True)]))
    return float(np.mean(out))


# ------------------------------------------------------------------------------------------------------------
# calibration captures (synthetic stores only) and regeneration


def _synth_config(d: _Data) -> Any:
    """The SynthConfig recorded in ground_truth/config.json (mappings such as ``cohorts`` in their order: the
    planner draws from them in order). Fields equal (as values) to those of the named preset keep the preset's
    objects, which also makes stores whose file has sorted keys exact when they used a preset."""
    from xrdata.synth.presets import PRESETS, SynthConfig

    raw = dict((d.config or {}).get("config", {}))
    base = PRESETS.get(str(raw.get("preset")), SynthConfig())
    ref = base.to_dict()
    kw = {}
    for f in dataclasses.fields(SynthConfig):
        if f.name not in raw:
            continue
        v = raw[f.name]
        if v == ref.get(f.name):
            kw[f.name] = getattr(base, f.name)
        else:
            kw[f.name] = tuple(v) if isinstance(v, list) else v
    return SynthConfig(**kw)


def _device_with(d: _Data, sensor: str, where: Callable[[Any], bool] | None = None) -> Any:
    """The most common device of the store that has ``sensor`` (scaled like the store's config)."""
    from xrdata.synth.devices import get_device, scaled_sensors

    _need(d.synthetic, "needs a synthetic store (calibration capture with its device presets)")
    names = d.catalog.group_by("device").len().sort("len", descending=True)["device"].to_list()
    cfg = _synth_config(d)
    for name in names:
        try:
            dev = get_device(str(name))
        except XRDataError:
            continue
        dev = scaled_sensors(dev, audio_rate_hz=cfg.audio_rate_hz, depth_fps=cfg.depth_fps,
                             depth_max_width=cfg.depth_max_width)
        spec = dev.sensors.get(sensor)
        if spec is not None and (where is None or where(spec)):
            return dev
    raise _NotApplicable(f"no device of the store has a suitable {sensor} sensor")


_CAPTURES: dict[tuple[str, str], dict[str, Any]] = {}


def _capture_hand(d: _Data) -> dict[str, Any] | None:
    """A 90 s hand capture on the store's most common hand-tracking device: latency, fingertip error against
    the ideal tracker output, and loss given overlap / out of view (REALISM H5, H7)."""
    key = (d.url, "hand")
    if key in _CAPTURES:
        return _CAPTURES[key] or None
    try:
        dev = _device_with(d, "hand")
    except _NotApplicable:
        _CAPTURES[key] = {}
        return None
    from xrdata.synth import stats
    from xrdata.synth.eye import generate_gaze
    from xrdata.synth.hand import generate_hand
    from xrdata.synth.head import generate_head
    from xrdata.synth.types import Context, SensorSpec, example_plan

    plan = example_plan(90.0, (("gaze_selection", "up"), ("gesture", "grab"), ("gesture", "clap")), device=dev)
    ctx = Context()
    generate_gaze(plan, dev.sensors.get("gaze", SensorSpec("gaze", 60.0, {"precision_deg": 0.1})),
                  np.random.default_rng(1), ctx)
    generate_head(plan, dev.sensors.get("head", SensorSpec("motion", 60.0)), np.random.default_rng(2), ctx)
    out = generate_hand(plan, dev.sensors["hand"], np.random.default_rng(3), ctx)
    s, truth = out.streams[0], out.truth
    t = s.time_ns
    palm = stats.hand_positions(np.asarray(s.data), RIGHT, PALM)
    lat = stats.estimate_latency(t, palm, np.asarray(truth["true_palm"][:, RIGHT], dtype=np.float64))
    frames = truth["truth_frames"]
    ideal = np.asarray(truth["ideal_positions"][:, RIGHT, 1:], dtype=np.float64)
    err = stats.position_error(t[frames], stats.hand_positions(np.asarray(s.data)[frames], RIGHT, list(TIPS)), ideal)
    lost = ~np.isfinite(np.asarray(s.data)[:, :, 0, 0]).all(axis=1)
    overlap = stats.times_in_intervals(t, ctx.hand_overlap)
    oov = stats.times_in_intervals(t, ctx.hands_out_of_view)
    clear = ~overlap & ~oov
    res = {"latency_ms": lat * 1e3, "error_cm": float(err.mean()) * 100, "configured_error_cm":
           _f(dev.sensors["hand"].params.get("fingertip_error_m")) * 100,
           "configured_latency_ms": _f(dev.sensors["hand"].params.get("latency_ms")), "device": 0.0}
    if overlap[~oov].sum() > 10 and oov.sum() > 10:
        res.update(p_overlap=float(lost[overlap & ~oov].mean()), p_out_of_view=float(lost[oov].mean()),
                   p_clear=float(lost[clear].mean()))
    res["_device"] = dev.name
    _CAPTURES[key] = res
    return res


def _capture_h5(d: _Data, row: StatRow) -> None:
    cap = _capture_hand(d)
    _need(cap, "needs a synthetic store with a hand-tracking device (the true hand is not in the recordings)")
    assert cap is not None
    row.values = {"latency_ms": cap["latency_ms"], "error_cm": cap["error_cm"]}
    row.measured = (f"latency {cap['latency_ms']:.0f} ms, fingertip error {cap['error_cm']:.2f} cm mean "
                    f"(configured {cap['configured_latency_ms']:.0f} ms, {cap['configured_error_cm']:.2f} cm)")
    row.note = (f"90 s capture on {cap['_device']} (selection + gestures) against the ideal tracker output; "
                "the recordings hold no true hand")
    _verdict(row, {"error 0.7-1.5 cm": _within(cap["error_cm"], 0.7, 1.5),
                   "latency 30-50 ms": _within(cap["latency_ms"], 30, 50)})


def _capture_m5(d: _Data, row: StatRow) -> None:
    from xrdata.synth import stats
    from xrdata.synth.eye import generate_gaze
    from xrdata.synth.head import generate_head
    from xrdata.synth.types import Context, SensorSpec, example_plan

    dev = _device_with(d, "imu")
    plan = example_plan(200.0, (("rest", "eyes_open"),), device=dev)
    plan = dataclasses.replace(plan, segments=tuple(dataclasses.replace(s, activity="still") for s in plan.segments))
    ctx = Context()
    generate_gaze(plan, dev.sensors.get("gaze", SensorSpec("gaze", 60.0, {"precision_deg": 0.1})),
                  np.random.default_rng(4), ctx)
    out = generate_head(plan, dev.sensors.get("head", SensorSpec("motion", 60.0)), np.random.default_rng(5), ctx)
    imu = next(s for s in out.streams if s.name == "imu")
    taus = np.logspace(-2, 0, 9)
    adev = stats.allan_deviation(np.asarray(imu.data[:, 3:6], dtype=np.float64), float(imu.rate_hz or 0), taus)
    slopes = [stats.allan_slope(taus, adev[:, k]) for k in range(3)]
    density = _f(dev.sensors["imu"].params.get("gyro_noise_density"))
    ratio = float(adev[-1].mean() / density)
    row.values = {"slope_min": min(slopes), "slope_max": max(slopes), "adev1_over_density": ratio}
    row.measured = (f"slopes {min(slopes):.2f}..{max(slopes):.2f}; ADEV(1 s) / noise density {ratio:.3f} "
                    f"({density:g} rad/s/sqrt(Hz))")
    row.note = f"200 s still capture on {dev.name}'s IMU ({imu.rate_hz:g} Hz); the recordings hold no rest stretch"
    _verdict(row, {"slope -0.5 +- 0.1": all(abs(s + 0.5) <= 0.1 for s in slopes),
                   "ADEV(1 s) = density +- 10 %": abs(ratio - 1) <= 0.1})


def _capture_d1(d: _Data, row: StatRow) -> None:
    from xrdata.synth import stats
    from xrdata.synth.depth import generate_depth
    from xrdata.synth.types import Context, SensorSpec, example_plan

    dev = _device_with(d, "depth", lambda s: s.params.get("kind", "structured_light") == "structured_light")
    spec = dev.sensors["depth"]
    fps = float(spec.rate_hz)
    seconds = max(2.0, 30.0 / fps)
    errs = []
    for i, z in enumerate((0.6, 1.0, 1.8, 2.6, 3.2)):
        sensor = SensorSpec("depth", fps, {**spec.params, "scene": "plane", "plane_m": z, "tilt_deg": 0.0})
        f = generate_depth(example_plan(seconds), sensor, np.random.default_rng(10 + i), Context()).streams[0].data
        h, w = f.shape[1:]
        zm, sd = stats.depth_temporal_noise(f[:, h // 3: 2 * h // 3, w // 3: 2 * w // 3])
        law = stats.structured_light_sigma_mm(np.median(zm))
        errs.append(float(np.median(sd) / law - 1))
    row.values = {"max_rel_error": float(np.max(np.abs(errs)))}
    row.measured = ("sigma_z / law - 1 at 0.6, 1.0, 1.8, 2.6, 3.2 m: " + ", ".join(f"{e:+.2f}" for e in errs))
    row.note = f"static-plane capture with {dev.name}'s depth sensor ({fps:g} fps, {seconds:g} s per distance)"
    _verdict(row, {"within +-20 %": float(np.max(np.abs(errs))) <= 0.2})


def _capture_d5(d: _Data, row: StatRow) -> None:
    from xrdata.synth import stats
    from xrdata.synth.depth import generate_depth
    from xrdata.synth.types import Context, SensorSpec, example_plan

    dev = _device_with(d, "depth", lambda s: s.params.get("kind") == "tof")
    spec = dev.sensors["depth"]
    fps = float(spec.rate_hz)
    seconds = max(0.4, 4.0 / fps)
    plan = example_plan(seconds)
    frames = generate_depth(plan, SensorSpec("depth", fps, dict(spec.params)), np.random.default_rng(3),
                            Context()).streams[0].data
    ref = generate_depth(plan, SensorSpec("depth", fps, {**spec.params, "clean": 1}), np.random.default_rng(3),
                         Context()).streams[0].data[0]
    zone = stats.depth_jumps(ref, jump_mm=100.0, radius=2)
    fly = np.array([stats.flying_pixels(f, ref, tol_mm=50.0) for f in frames])
    off = int(fly[:, ~zone].sum())
    widths = stats.run_lengths(fly.reshape(-1, fly.shape[-1]) if fly.size else np.zeros((1, 1), bool))
    row.values = {"flying_per_frame": float(fly.sum() / max(len(frames), 1)), "off_edges": float(off),
                  "width_p95": float(np.percentile(widths, 95)) if len(widths) else 0.0}
    row.measured = (f"{fly.sum() / max(len(frames), 1):.0f} flying pixels per frame, {off} on smooth surfaces, "
                    f"run width p95 {row.values['width_p95']:.0f} px")
    row.note = f"room capture with {dev.name}'s ToF sensor against its noise-free rendering"
    _verdict(row, {"present at jumps": fly.sum() > 0, "none on smooth surfaces": off == 0,
                   "1-3 px wide": row.values["width_p95"] <= 3})


def _regenerate(d: _Data, row: StatRow) -> None:
    """Regenerate the shortest stored session from ground_truth/config.json and compare arrays and events."""
    _need(d.synthetic, "needs ground_truth/config.json (a synthetic store)")
    from xrdata.synth.generate import generate_session
    from xrdata.synth.timeline import plan_user

    cfg = _synth_config(d)
    seed = int((d.config or {}).get("seed", cfg.seed))
    dur = d.catalog.group_by("user", "session").agg(pl.col("duration_s").max(), pl.col("stream").n_unique())
    u, s, _, _ = dur.sort(["stream", "duration_s"], descending=[True, False]).row(0)
    plan = next((p for p in plan_user(cfg, seed, u).sessions if p.session_id == s), None)
    _need(plan is not None, f"the config does not plan {u}/{s}")
    res = generate_session(plan, seed, likert_prob=cfg.likert_prob)
    stored = d.store.read(u, s)
    same, diffs = True, []
    if sorted(stored.streams) != sorted(res.recording.streams):
        same = False
        diffs.append(f"streams {sorted(stored.streams)} vs {sorted(res.recording.streams)}")
    for name, st in stored.streams.items():
        new = res.recording.streams.get(name)
        if new is None:
            continue
        a, b = np.asarray(st.data), np.asarray(new.data)
        eq = a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        eq &= np.array_equal(np.asarray(st.time_ns), np.asarray(new.time_ns))
        if not eq:
            same = False
            diffs.append(name)
    ev_same = stored.events.sort(["time_ns", "label", "value"]).equals(
        res.recording.events.sort(["time_ns", "label", "value"]))
    row.values = {"identical": float(same and ev_same), "streams": float(len(stored.streams))}
    row.measured = (f"{u}/{s} regenerated: {len(stored.streams)} streams "
                    + ("and events identical" if same and ev_same else
                       f"DIFFER ({', '.join(diffs) or 'events'})"))
    row.note = "generate_session(plan_user(config, seed, user)) vs the stored arrays (bit-exact, NaN = NaN)"
    _verdict(row, {"identical bytes": same and ev_same})


# ------------------------------------------------------------------------------------------------------------
# public: statistics


def compute_statistics(store: Store | str | os.PathLike[str], *, max_sessions: int = 12, captures: bool = True,
                       regenerate: bool = True) -> list[StatRow]:
    """Every REALISM.md statistic computed on ``store`` (see the module docstring); one :class:`StatRow` each.

    Args:
        max_sessions: sessions sampled per stream for the signal statistics (spread over users).
        captures: compute D1, D5, H5, M5 on calibration captures with the store's device presets (synthetic
            stores only; otherwise those rows are n/a).
        regenerate: regenerate one session for F5 (synthetic stores only).
    """
    return _compute(_Data(store, max_sessions), captures, regenerate)


def _compute(d: _Data, captures: bool, regenerate: bool) -> list[StatRow]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # empty slices of short or fully lost stretches
        return _compute_rows(d, captures, regenerate)


def _compute_rows(d: _Data, captures: bool, regenerate: bool) -> list[StatRow]:
    rows = _Rows()
    if not captures:
        _CAPTURES[(d.url, "hand")] = {}
    for part in (_eye_rows, _hand_rows, _head_rows, _eeg_rows, _audio_rows, _depth_rows, _dropout_rows, _fed_rows):
        part(d, rows)
    if not captures:
        for r in rows.rows:
            if r.source == "calibration capture":
                r.status, r.values, r.measured = NA, {}, ""
                r.note = "calibration captures disabled (captures=False)"
    if not regenerate:
        for r in rows.rows:
            if r.id == "F5":
                r.status, r.values, r.measured, r.note = NA, {}, "", "regeneration disabled (regenerate=False)"
    _CAPTURES.pop((d.url, "hand"), None)
    return rows.rows


# ------------------------------------------------------------------------------------------------------------
# plots


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    mpl = require("matplotlib", "synth")
    mpl.use("Agg", force=True)  # type: ignore[attr-defined]
    import matplotlib.pyplot as plt

    return plt


def _plot_availability(d: _Data) -> str | None:
    plt = _plt()
    cat = d.catalog
    streams = sorted(set(cat["stream"]))
    keys = d.sessions[:400]
    if not keys or not streams:
        return None
    m = np.full((len(keys), len(streams)), np.nan)
    pos = {k: i for i, k in enumerate(keys)}
    for u, s, st, miss in cat.select("user", "session", "stream", "missing_frac").iter_rows():
        if (u, s) in pos:
            m[pos[(u, s)], streams.index(st)] = 1.0 - (miss or 0.0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(streams), 1.5 + 0.16 * len(keys)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(m), aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(streams)), streams, rotation=30, ha="right")
    step = max(1, len(keys) // 40)
    ax.set_yticks(range(0, len(keys), step), [f"{u}/{s}" for u, s in keys[::step]], fontsize=7)
    ax.set_title("available share of each stream per session (grey = stream absent)")
    fig.colorbar(im, ax=ax, label="1 - missing fraction")
    return _png(fig)


def _plot_drift(d: _Data) -> str | None:
    drift = d.gt("drift")
    if drift is None:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for (u,), g in drift.sort("user", "study_week").group_by("user", maintain_order=True):
        w = g["study_week"].to_numpy()
        axes[0].plot(w, g["gaze_offset_deg"].to_numpy(), marker=".", lw=1, label=str(u))
        gb = np.linalg.norm(g.select("gyro_bias_x", "gyro_bias_y", "gyro_bias_z").to_numpy(), axis=1)
        axes[1].plot(w, np.degrees(gb), marker=".", lw=1)
        if g["concept_kind"][0]:
            axes[2].plot(w, g["concept_share"].to_numpy(), marker=".", lw=1, label=f"{u} {g['concept_kind'][0]}")
    axes[0].set(title="gaze calibration offset", xlabel="study week", ylabel="deg")
    axes[1].set(title="gyro bias |b|", xlabel="study week", ylabel="deg/s")
    axes[2].set(title="concept share (drifting users)", xlabel="study week", ylabel="share of new concept",
                ylim=(-0.05, 1.05))
    seg, sessions, users = d.gt("segments"), d.gt("sessions"), d.gt("users")
    if seg is not None and sessions is not None and users is not None:
        from xrdata.synth.drift import CONCEPT_KINDS

        task_of = pl.DataFrame({"concept_kind": list(CONCEPT_KINDS), "task": list(CONCEPT_KINDS.values())})
        affected = users.select("user", "concept_kind").join(task_of, on="concept_kind")
        wk = (seg.join(affected, on=["user", "task"])
              .join(sessions.select("user", "session", "study_week"), on=["user", "session"])
              .with_columns(pl.col("study_week").floor().alias("week"))
              .group_by("week").agg(pl.col("concept").mean()).sort("week"))
        if wk.height:
            axes[2].step(wk["week"].to_numpy() + 0.5, wk["concept"].to_numpy(), where="mid", color="k", lw=2,
                         label="drifting tasks of drifting users, per week")
    if len(axes[2].get_lines()):
        axes[2].legend(fontsize=7)
    if drift["user"].n_unique() <= 12:
        axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _png(fig)


def _plot_labels(counts: dict[str, tuple[list[str], list[str], np.ndarray]]) -> str | None:
    if not counts:
        return None
    plt = _plt()
    n = len(counts)
    cols = min(3, n)
    rows_ = -(-n // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(5.2 * cols, 3.2 * rows_), squeeze=False)
    for ax, (task, (users, classes, m)) in zip(axes.ravel(), sorted(counts.items()), strict=False):
        bottom = np.zeros(len(users))
        cmap = plt.get_cmap("tab20")
        for j, c in enumerate(classes):
            ax.bar(range(len(users)), m[:, j], bottom=bottom, color=cmap(j % 20), label=c, width=0.8)
            bottom += m[:, j]
        ax.set_title(task)
        ax.set_xticks(range(len(users)), users, rotation=90, fontsize=6)
        ax.set_ylabel("segments")
        ax.legend(fontsize=6, ncol=2)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _plot_schedule(d: _Data) -> str | None:
    plt = _plt()
    sessions = d.gt("sessions")
    per = d.catalog.group_by("user", "session").agg(pl.col("duration_s").max(), pl.col("utc_anchor").first())
    if sessions is not None:
        per = per.join(sessions.select("user", "session", "study_week", "split"), on=["user", "session"], how="left")
        x = per["study_week"].to_numpy()
        xlabel = "study week"
    else:
        anchors = per["utc_anchor"].to_list()
        try:
            import datetime as _dt

            ts = [(_dt.datetime.fromisoformat(a).timestamp() if a else np.nan) for a in anchors]
        except ValueError:
            ts = [np.nan] * len(anchors)
        x = (np.array(ts) - np.nanmin(ts)) / (7 * 86400) if np.isfinite(ts).any() else np.zeros(len(ts))
        xlabel = "weeks since the first session"
        per = per.with_columns(pl.lit("").alias("split"))
    users = sorted(set(per["user"]))
    if not users:
        return None
    y = np.array([users.index(u) for u in per["user"]])
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.22 * len(users)))
    colors = {"train": "tab:blue", "future": "tab:orange", "test_users": "tab:green", "": "tab:blue"}
    for split in sorted(set(per["split"].fill_null(""))):
        sel = (per["split"].fill_null("") == split).to_numpy()
        ax.scatter(x[sel], y[sel], s=8 + per["duration_s"].to_numpy()[sel] / 10, alpha=0.7,
                   color=colors.get(split, "tab:gray"), label=split or "sessions")
    step = max(1, len(users) // 40)
    ax.set_yticks(range(0, len(users), step), users[::step], fontsize=7)
    ax.set(xlabel=xlabel, title="session schedule (marker area ~ duration)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def _plot_traces(d: _Data) -> tuple[str | None, str]:
    plt = _plt()
    from xrdata.synth import stats

    cat = d.catalog.group_by("user", "session").agg(pl.col("stream").n_unique().alias("k"),
                                                    pl.col("duration_s").max())
    if not cat.height:
        return None, ""
    u, s, _, dur = cat.sort(["k", "duration_s"], descending=True).row(0)
    rec = d.rec(u, s)
    span = min(20.0, float(dur))
    labs = d.labels(u, s)
    t0 = 0
    if labs:  # start the excerpt 5 s before the second label change, so two labels show
        t0 = int(max(0, (labs[min(1, len(labs) - 1)][0]) - 5e9))
    t1 = t0 + int(span * 1e9)
    panels = [k for k in ("gaze", "head", "imu", "hand", "audio", "eeg") if k in rec.streams]
    n = len(panels) + (1 if "depth" in rec.streams else 0)
    if not n:
        return None, ""
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.7 * n), squeeze=False)
    axes = axes[:, 0]
    for ax, name in zip(axes, panels, strict=False):
        st = rec.streams[name]
        t = np.asarray(st.time_ns)
        m = (t >= t0) & (t < t1)
        tt = t[m] * 1e-9
        x = np.asarray(st.data)[m]
        if name == "gaze":
            dirs = stats.gaze_directions(x, st.channels)
            ax.plot(tt, np.degrees(np.arctan2(-dirs[:, 0], -dirs[:, 2])), lw=0.8, label="yaw (deg)")
            ax.plot(tt, np.degrees(np.arcsin(np.clip(dirs[:, 1], -1, 1))), lw=0.8, label="pitch (deg)")
            pc = _col(st, "left_pupil_diameter")
            if pc is not None:
                ax2 = ax.twinx()
                ax2.plot(tt, x[:, pc], color="k", lw=0.6, alpha=0.6)
                ax2.set_ylabel("pupil mm", fontsize=7)
        elif name == "head":
            ax.plot(tt, x[:, 1], lw=0.8, label="height (m)")
            q = x[:, 3:7].astype(np.float64)
            ax.plot(tt, np.degrees(np.unwrap(2 * np.arctan2(q[:, 1], q[:, 3]))) / 100, lw=0.8, label="yaw / 100 deg")
        elif name == "imu":
            ax.plot(tt, np.linalg.norm(x[:, :3], axis=1), lw=0.5, label="|accel| m/s^2")
            ax.plot(tt, np.degrees(np.linalg.norm(x[:, 3:6], axis=1)) / 10, lw=0.5, label="|gyro| / 10 deg/s")
        elif name == "hand":
            for hnd, lab in ((0, "left"), (1, "right")):
                p = x[:, hnd, PALM, :3].astype(np.float64)
                sp = np.full(len(p), np.nan)
                if len(p) > 2:
                    sp[1:-1] = np.linalg.norm(p[2:] - p[:-2], axis=1) / np.maximum(tt[2:] - tt[:-2], 1e-9)
                ax.plot(tt, sp, lw=0.8, label=f"{lab} palm speed m/s")
        elif name == "audio":
            ax.plot(tt[::4], x[::4, 0], lw=0.3, label="audio")
        elif name == "eeg":
            cols = (_cols(st, ("Fz", "Cz", "Pz", "Oz")) or list(range(min(4, x.shape[1]))))
            for k, c in enumerate(cols):
                ax.plot(tt, x[:, c] * 1e6 + 60 * k, lw=0.4, label=st.channels[c])
            ax.set_ylabel("uV (offset)", fontsize=7)
        for a, b, task, lab in labs:
            if b > t0 and a < t1:
                ax.axvspan(max(a, t0) * 1e-9, min(b, t1) * 1e-9, alpha=0.08, color="tab:purple")
                if ax is axes[0]:
                    ax.text(max(a, t0) * 1e-9, 1.02, f"{task}: {lab}", transform=ax.get_xaxis_transform(), fontsize=7)
        ax.set_xlim(t0 * 1e-9, t1 * 1e-9)
        ax.legend(fontsize=6, loc="upper right")
        ax.set_title(name, fontsize=8, loc="left")
    if "depth" in rec.streams:
        st = rec.streams["depth"]
        t = np.asarray(st.time_ns)
        i = int(np.clip(np.searchsorted(t, (t0 + t1) // 2), 0, len(t) - 1))
        ax = axes[-1]
        ax.imshow(np.where(st.data[i] > 0, st.data[i] / 1000.0, np.nan), cmap="magma_r", aspect="equal")
        ax.set_title(f"depth frame at {t[i] * 1e-9:.1f} s (m; white = invalid)", fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    return _png(fig), f"{u}/{s}, {t0 * 1e-9:.1f}-{t1 * 1e-9:.1f} s"


# ------------------------------------------------------------------------------------------------------------
# html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1280px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#f3f3f3}td.num{text-align:right}
tr.pass td.status{background:#d8f3dc;font-weight:600}tr.fail td.status{background:#ffd6d6;font-weight:600}
tr.na td.status{background:#eee;color:#666}tr.error td.status{background:#ffb347;font-weight:600}
td.note{color:#555;font-size:12px}.small{color:#666;font-size:12px}img{max-width:100%;border:1px solid #eee}
.counts span{display:inline-block;margin-right:16px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'); var ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) ok += 1; });
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-decoded', String(ok));
});
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _table(header: Sequence[str], body: Iterable[Sequence[Any]], attrs: str = "") -> str:
    out = [f"<table {attrs}><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for r in body:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _img(b64: str | None, alt: str) -> str:
    if not b64:
        return f'<p class="small">{_e(alt)}: not available for this store.</p>'
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _summary(d: _Data) -> tuple[dict[str, Any], str]:
    cat = d.catalog
    per = cat.group_by("user", "session").agg(pl.col("duration_s").max())
    users = d.gt("users")
    cohorts = (users.group_by("cohort").len().sort("cohort").rows() if users is not None and "cohort" in users.columns
               else [])
    devices = cat.group_by("device").agg(pl.col("user").n_unique()).sort("device").rows()
    info = {"users": int(cat["user"].n_unique()), "sessions": int(per.height),
            "hours": float(per["duration_s"].sum() / 3600) if per.height else 0.0, "streams": int(cat.height),
            "cohorts": {str(k): int(v) for k, v in cohorts}, "devices": {str(k): int(v) for k, v in devices},
            "synthetic": d.synthetic}
    mod = (cat.group_by("modality").agg(pl.len().alias("streams"), (pl.col("duration_s").sum() / 3600).alias("hours"),
                                        pl.col("missing_frac").mean().alias("missing"))
           .sort("modality"))
    parts = [
        '<div class="counts">'
        + "".join(f'<span><b data-key="{k}">{_e(v if k != "hours" else f"{v:.2f}")}</b> {k}</span>'
                  for k, v in info.items() if k in ("users", "sessions", "hours", "streams"))
        + "</div>",
        "<h3>Cohorts</h3>" + (_table(["cohort", "users"], cohorts) if cohorts else
                              '<p class="small">no cohort information (no ground truth)</p>'),
        "<h3>Devices</h3>" + _table(["device", "users"], devices),
        "<h3>Modalities</h3>" + _table(["modality", "streams", "hours", "mean missing fraction"],
                                       [(m, n, f"{h:.2f}", _fmt(x if x is not None else float("nan")))
                                        for m, n, h, x in mod.rows()]),
    ]
    if d.synthetic:
        cfg = (d.config or {}).get("config", {})
        parts.append(f'<p class="small">synthetic store: preset {_e(cfg.get("preset", "?"))}, seed '
                     f'{_e((d.config or {}).get("seed"))}, {_e(cfg.get("users"))} users, {_e(cfg.get("weeks"))} weeks, '
                     f'Dirichlet alpha {_e(cfg.get("dirichlet_alpha"))}</p>')
    return info, "".join(parts)


def _stats_html(rows: list[StatRow]) -> str:
    out = ['<table id="stats"><thead><tr><th>id</th><th>group</th><th>statistic</th><th>target</th>'
           "<th>measured</th><th>status</th><th>source</th><th>note</th></tr></thead><tbody>"]
    for r in rows:
        cls = {"n/a": "na"}.get(r.status, r.status)
        out.append(
            f'<tr class="{_e(cls)}" data-stat="{_e(r.id)}" data-status="{_e(r.status)}" '
            f'data-values="{_e(json.dumps(r.values, sort_keys=True))}">'
            f"<td>{_e(r.id)}</td><td>{_e(r.group)}</td><td>{_e(r.statistic)}</td><td>{_e(r.target)}</td>"
            f'<td class="measured">{_e(r.measured)}</td><td class="status">{_e(r.status)}</td>'
            f"<td>{_e(r.source)}</td><td class=\"note\">{_e(r.note)}</td></tr>")
    out.append("</tbody></table>")
    n = {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, NA, ERROR)}
    head = (f'<p id="stats-counts" data-pass="{n[PASS]}" data-fail="{n[FAIL]}" data-na="{n[NA]}" '
            f'data-error="{n[ERROR]}">{n[PASS]} pass, {n[FAIL]} fail, {n[NA]} n/a, {n[ERROR]} error '
            f"of {len(rows)} statistics.</p>")
    return head + "".join(out)


def write_report(store: Store | str | os.PathLike[str], out_html: str | os.PathLike[str] | None = None, *,
                 max_sessions: int = 12, captures: bool = True, regenerate: bool = True, title: str | None = None,
                 progress: bool = False, statistics: list[StatRow] | None = None, plots: bool = True) -> Path:
    """Write the realism report of ``store`` to ``out_html`` (default ``<store>/report.html`` for a local
    store) and return its path. See the module docstring for what it holds; ``max_sessions``, ``captures``
    and ``regenerate`` as in :func:`compute_statistics`; ``statistics``: rows already computed by
    :func:`compute_statistics` on this store (not recomputed); ``plots=False`` leaves the figures out (a quick
    tables-only report). Needs matplotlib for the plots (``pip install 'xrdata[synth]'``)."""
    if plots:
        _plt()  # fail early, before minutes of statistics, when matplotlib is missing
    t_start = time.perf_counter()
    d = _Data(store, max_sessions)
    if out_html is None:
        if "://" in d.url and not d.url.startswith("file://"):
            raise XRDataError(f"store {d.url} is not local: pass out_html (a local file path)")
        out_html = Path(d.url.removeprefix("file://")) / "report.html"
    out = Path(out_html)

    def say(msg: str) -> None:
        if progress:
            import sys

            print(f"report: {msg} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)

    say("statistics")
    rows = statistics if statistics is not None else _compute(d, captures, regenerate)
    say("plots")
    info, summary_html = _summary(d)
    counts = _label_counts(d)
    cooc_html = ""
    if counts:
        from xrdata.synth.stats import task_cooccurrence

        user_tasks: dict[str, set[str]] = {}
        for task, (users, _, _) in counts.items():
            for u in users:
                user_tasks.setdefault(u, set()).add(task)
        tasks = sorted(counts)
        m = task_cooccurrence([sorted(v) for v in user_tasks.values()], tasks)
        cooc_html = "<h3>Task co-occurrence (users doing both)</h3>" + _table(
            ["task", *tasks], [[t, *m[i].tolist()] for i, t in enumerate(tasks)], 'id="cooccurrence"')
    figs: dict[str, str | None] = dict.fromkeys(("availability", "drift", "labels", "schedule", "traces"))
    where = ""
    if plots:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            figs["traces"], where = _plot_traces(d)
            figs["availability"] = _plot_availability(d)
            figs["drift"] = _plot_drift(d)
            figs["labels"] = _plot_labels(counts)
            figs["schedule"] = _plot_schedule(d)
    off = "" if plots else " (plots=False)"
    sections = {
        "summary": ("Cohort summary", summary_html),
        "statistics": ("Realism statistics (REALISM.md)", _stats_html(rows)),
        "availability": ("Modality availability per user and session",
                         _img(figs["availability"], "availability" + off)),
        "drift": ("Drift over time", _img(figs["drift"], "drift (needs the ground-truth drift table)" + off)),
        "labels": ("Label distribution per client", _img(figs["labels"], "labels" + off) + cooc_html),
        "schedule": ("Session schedule", _img(figs["schedule"], "schedule" + off)),
        "traces": ("Example signal traces",
                   (f'<p class="small">{_e(where)}; shaded: task segments</p>' if where else "")
                   + _img(figs["traces"], "traces" + off)),
    }
    title = title or f"xrdata realism report: {d.url}"
    doc = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style><script>{_SCRIPT}</script></head>",
        f'<body data-synthetic="{str(d.synthetic).lower()}"><h1>{_e(title)}</h1>',
        f'<p class="small">generated {_e(time.strftime("%Y-%m-%d %H:%M:%S"))} in '
        f"{time.perf_counter() - t_start:.1f} s; signal statistics on up to {max_sessions} sessions per stream. "
        "Status: pass / fail against REALISM.md, n/a when the store lacks what the statistic needs (the note "
        "says what).</p>",
        "<nav>" + " | ".join(f'<a href="#{k}">{_e(v[0])}</a>' for k, v in sections.items()) + "</nav>",
    ]
    for key, (head, body) in sections.items():
        doc.append(f'<section id="{key}"><h2>{_e(head)}</h2>{body}</section>')
    doc.append(f'<div id="summary-json" hidden data-json="{_e(json.dumps(info, sort_keys=True))}"></div>')
    doc.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(doc), encoding="utf-8")
    say(f"wrote {out}")
    return out
