"""Learnability sanity check (issue 4): on a small generated cohort, a simple classifier on hand-crafted window
features beats chance on every task with all modalities, and with any single modality removed.

Pipeline (all in this file, numpy only):

1. A cohort of 16 users x 2 sessions x 4 minutes on an all-sensor headset (Quest Pro + EEG cap), factory and lab
   users so all seven tasks get time, short segments (3-5 s) so each class gets several segments, no concept
   drift (it would flip label mappings) and near-uniform class probabilities.
2. ``xrdata.windows`` cuts 2 s windows (hop 1 s) with the task label; windows straddling two segments are
   dropped. Per stream, simple summaries: means / stds / ranges, band log-powers (IMU, audio, EEG on the
   8 channels every cap has, and the eye position the frontal pair carries: Fp2 - Fp1 and Fp1 + Fp2), gaze
   angles and pupil, palm and fingertip geometry, a coarse depth grid.
3. Features are z-scored per session over all its windows (unsupervised: removes user and session offsets such
   as resting pupil, lighting, heading).
4. Per task, leave-one-segment-out: windows of the held-out segment are predicted by a late fusion of one
   shrinkage-LDA per modality (top-10 ANOVA features on the training folds), each modality's log posterior
   weighted by how discriminative its features are on the training folds (F / (F + 20)). Removing a modality
   drops its vote.
5. Pass: window accuracy >= chance + max(0.05, 2 sqrt(p (1 - p) / segments)), p = the majority-class share,
   counting segments (not windows) as the independent samples.

Known gap (xfail, not strict): one (task, removed modality) pair where, at this data size and window length,
the remaining modalities' imprint is too weak for window features (see ``GAPS``); what of it is learnable
(spoken answers through the head) is tested on its own.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from xrdata import open_store, windows
from xrdata.synth import SynthConfig, generate
from xrdata.synth.timeline import LABELS

STREAMS = ("gaze", "head", "imu", "hand", "audio", "eeg", "depth")
TASKS = tuple(LABELS)
EEG8 = ("Fp1", "Fp2", "Fz", "C3", "C4", "Pz", "O1", "O2")  # in every cap (8 to 64 channels)
LENGTH_S, HOP_S = 2.0, 1.0

CONFIG = SynthConfig(
    users=16, weeks=1.0, seed=3, cohorts={"factory": 0.5, "lab": 0.5}, devices={"quest_pro": 1.0},
    eeg_cap_prob=1.0, tasks=TASKS, all_tasks=True, balanced=True, sessions_per_week=2, session_minutes=4.0,
    segment_seconds=(3.0, 5.0), dirichlet_alpha=1000.0, depth_fps=2.0, depth_max_width=32, audio_rate_hz=16000.0,
    mic_muted_prob=0.0, eeg_off_prob=0.0, test_user_frac=0.0, drift_fraction=0.0, future_week_frac=0.0,
)

#: (task, removed modality) -> why the rest does not carry the label at window level in this cohort.
GAPS = {
    ("speech_command", "audio"): "the head's nod with 'yes' and shake with 'no' tell 2 of the 12 commands; the "
                                 "EEG's EMG bursts at the syllables do not separate the rest with band-power "
                                 "window features",
}


# ------------------------------------------------------------------------------------------------------------
# features


_BANDS: dict[tuple[int, float, tuple[tuple[float, float], ...]], tuple[np.ndarray, np.ndarray]] = {}


def _band_logpow(x: np.ndarray, fs: float, bands: tuple[tuple[float, float], ...]) -> np.ndarray:
    """(len(bands), C) log mean power of (T, C) ``x`` per band (Hann window, NaN -> 0 after centring)."""
    key = (len(x), fs, bands)
    if key not in _BANDS:
        f = np.fft.rfftfreq(len(x), 1 / fs)
        sel = [(f >= lo) & (f < hi) for lo, hi in bands]
        _BANDS[key] = (np.hanning(len(x))[:, None], np.stack([s / max(1, s.sum()) for s in sel]))
    win, band = _BANDS[key]
    spec = np.abs(np.fft.rfft(np.nan_to_num(x - np.nanmean(x, axis=0)) * win, axis=0)) ** 2
    return np.asarray(np.log(band @ spec + 1e-30))


def _first_last(p: np.ndarray) -> np.ndarray:
    ok = np.flatnonzero(np.isfinite(p[:, 0]))
    return p[ok[-1]] - p[ok[0]] if len(ok) >= 2 else np.full(p.shape[1], np.nan)


def _span(p: np.ndarray) -> np.ndarray:
    return np.nanmax(p, axis=0) - np.nanmin(p, axis=0) if np.isfinite(p).any() else np.full(p.shape[1], np.nan)


def features(name: str, x: np.ndarray, fs: float, eeg_idx: list[int]) -> np.ndarray | None:
    """Summaries of one window of one stream (x: (steps, *sample_shape), NaN where missing)."""
    if name == "gaze":  # canonical gaze channels: combined dir 15-17, pupils 18-19, openness 20-21
        d = x[:, 15:18]
        ang = np.column_stack([np.degrees(np.arctan2(-d[:, 0], -d[:, 2])),
                               np.degrees(np.arcsin(np.clip(d[:, 1], -1, 1)))])
        sp = np.hypot(*np.diff(ang, axis=0).T) * fs
        return np.concatenate([np.nanmean(ang, 0), np.nanmedian(ang, 0), np.nanstd(ang, 0), _first_last(ang),
                               _span(ang), np.nanmean(x[:, 18:20], 0), np.nanstd(x[:, 18:20], 0),
                               np.nanmean(x[:, 20:22], 0),
                               [np.mean(np.isfinite(ang[:, 0])), np.nanmean(sp > 30), np.nanmedian(sp)]])
    if name == "head":  # position xyz, quaternion xyzw
        q = x[:, 3:7]
        z = np.column_stack([x[:, :3], np.degrees(2 * np.arctan2(q[:, 1], q[:, 3])),
                             np.degrees(2 * np.arctan2(q[:, 0], q[:, 3]))])
        return np.concatenate([np.nanmean(z, 0), np.nanstd(z, 0), np.nanmean(np.abs(np.diff(z, axis=0)), 0) * fs,
                               _first_last(z[:, 3:5])])
    if name == "imu":  # accel xyz, gyro xyz
        acc = np.linalg.norm(x[:, :3], axis=1)[:, None]
        return np.concatenate([np.nanmean(x, 0), np.nanstd(x, 0),
                               _band_logpow(acc, fs, ((0.5, 1.5), (1.5, 3.0), (3.0, 6.0), (6.0, 15.0))).ravel(),
                               _band_logpow(x[:, 3:6], fs, ((0.5, 3.0), (3.0, 10.0))).ravel()])
    if name == "hand":  # (2 hands, 26 joints, 9): position xyz, orientation xyzw, radius, confidence
        out: list[Any] = []
        for h in (0, 1):
            palm, tips = x[:, h, 0, :3], x[:, h, [5, 10, 15, 20, 25], :3]
            v = np.diff(palm, axis=0) * fs
            sp = np.linalg.norm(v, axis=1)
            pinch = np.linalg.norm(tips[:, 0] - tips[:, 1], axis=1)
            out += [np.nanmean(palm, 0), np.nanstd(palm, 0), _first_last(palm), _span(palm),
                    np.nanmean(np.linalg.norm(tips - palm[:, None], axis=2), 0),
                    [np.nanmin(pinch) if np.isfinite(pinch).any() else np.nan, np.nanmean(sp),
                     np.nanmax(sp) if np.isfinite(sp).any() else np.nan,
                     np.sum(np.abs(np.diff(np.sign(np.nan_to_num(v[:, 0])))) > 0), np.mean(np.isfinite(palm[:, 0]))],
                    np.nanmean(x[:, h, 0, 3:7], 0)]
        dist = np.linalg.norm(x[:, 0, 0, :3] - x[:, 1, 0, :3], axis=1)
        out.append([np.nanmin(dist) if np.isfinite(dist).any() else np.nan])
        return np.concatenate(out)
    if name == "audio":
        a = np.nan_to_num(x[:, 0])
        n = int(fs * 0.02)
        e = np.log(np.mean(a[: len(a) // n * n].reshape(-1, n) ** 2, axis=1) + 1e-12)
        bands = _band_logpow(a[:, None], fs, ((80, 200), (200, 400), (400, 800), (800, 1500), (1500, 2500),
                                             (2500, 4000), (4000, 6000), (6000, 8000))).ravel()
        mod = _band_logpow((e - e.mean())[:, None], 50.0, ((1.0, 3.0), (3.0, 6.0), (6.0, 12.0))).ravel()
        return np.concatenate([[e.mean(), e.std(), *np.percentile(e, [10, 50, 90]),
                                np.mean(np.abs(np.diff(np.sign(a))) > 0)], bands, bands - bands.mean(), mod])
    if name == "eeg":
        xx = x[:, eeg_idx].astype(np.float64)
        bad = ~np.isfinite(xx).all(axis=1)
        if bad.mean() > 0.5:
            return None
        xx[bad] = 0.0
        bp = _band_logpow(xx, fs, ((1, 4), (4, 8), (8, 13), (13, 30), (30, 45), (55, 100)))
        rel = bp - np.log(np.exp(bp[:5]).sum(axis=0))
        heog, veog = xx[:, 1] - xx[:, 0], 0.5 * (xx[:, 0] + xx[:, 1])  # eye position through Fp2 - Fp1, Fp1 + Fp2
        q = len(xx) // 4
        eog = [f(e) for e in (heog, veog) for f in (np.mean, np.median, lambda e: e[-q:].mean() - e[:q].mean())]
        theta_alpha = [bp[1, 2] - bp[2, 5]]  # theta Fz - alpha Pz
        return np.concatenate([bp.ravel(), rel.ravel(), bp[1] - bp[2], theta_alpha, eog])
    if name == "depth":
        dd = np.where(x > 0, x.astype(np.float64), np.nan)
        t, h, w = dd.shape
        grid = np.nanmean(dd[:, : h // 4 * 4, : w // 4 * 4].reshape(t, 4, h // 4, 4, w // 4), axis=(0, 2, 4))
        return np.concatenate([grid.ravel(), [np.mean(np.isnan(x))]])  # windows give holes (0 mm) as NaN
    raise ValueError(name)


def _collect(url: str) -> list[dict[str, Any]]:
    st = open_store(url, "r")
    cat = st.catalog().collect()
    rates = {s: r for s, r in cat.group_by("stream").agg(pl.col("nominal_rate_hz").first()).rows()}
    steps = {k: max(2, round(r * LENGTH_S)) for k, r in rates.items()}
    rows = []
    for u in st.users():
        ch = cat.filter((pl.col("user") == u) & (pl.col("stream") == "eeg"))["channels"]
        eeg_idx = [list(ch[0]).index(c) for c in EEG8] if len(ch) else []
        for w in windows(st, u, LENGTH_S, HOP_S, steps=steps):
            if len(w.labels) != 1:
                continue
            ((task, label),) = w.labels.items()
            ev = w.events.filter(pl.col("label") == f"task/{task}")
            spans = ev.select("time_ns", "duration_ns").rows()
            overlap = [min(t + d, w.stop_ns) - max(t, w.start_ns) for t, d in spans]
            if max(overlap) < 0.75 * (w.stop_ns - w.start_ns):
                continue  # straddles two segments
            feats = {}
            for name in w.data:
                if w.mask[name].any():
                    fs = rates[name] if name != "depth" else steps["depth"] / LENGTH_S
                    v = features(name, w.data[name], fs, eeg_idx)
                    if v is not None:
                        feats[name] = v
            segment = (w.session, int(ev["time_ns"][int(np.argmax(overlap))]))
            rows.append({"user": u, "session": w.session, "segment": segment, "task": task, "label": label,
                         "features": feats})
    return rows


def _session_zscore(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per stream, the (windows, features) matrix z-scored per session (NaN where the stream is missing)."""
    dims = {k: len(v) for r in rows for k, v in r["features"].items()}
    out = {}
    sessions = np.array([f"{r['user']}/{r['session']}" for r in rows])
    for k, d in dims.items():
        m = np.array([r["features"].get(k, np.full(d, np.nan)) for r in rows], dtype=np.float64)
        for s in np.unique(sessions):
            sel = sessions == s
            mu, sd = np.nanmean(m[sel], axis=0), np.nanstd(m[sel], axis=0)
            sd[~np.isfinite(sd) | (sd < 1e-12)] = 1.0
            m[sel] = (m[sel] - mu) / sd
        out[k] = m
    return out


# ------------------------------------------------------------------------------------------------------------
# classifier


def _lda_log_posteriors(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, classes: np.ndarray,
                        topk: int = 10, shrink: float = 0.5) -> tuple[np.ndarray, float]:
    """Shrinkage LDA on the top-k ANOVA features: (log posteriors (n_te, K), mean F of the best 3 features)."""
    mu, sd = np.nanmean(x_tr, axis=0), np.nanstd(x_tr, axis=0)
    sd[~np.isfinite(sd) | (sd == 0)] = 1.0
    mu[~np.isfinite(mu)] = 0.0
    z_tr = np.clip(np.nan_to_num((x_tr - mu) / sd), -6, 6)
    z_te = np.clip(np.nan_to_num((x_te - mu) / sd), -6, 6)
    present = [c for c in classes if (y_tr == c).any()]
    grand = z_tr.mean(axis=0)
    between = sum((y_tr == c).sum() * (z_tr[y_tr == c].mean(axis=0) - grand) ** 2 for c in present)
    within = sum(((z_tr[y_tr == c] - z_tr[y_tr == c].mean(axis=0)) ** 2).sum(axis=0) for c in present)
    f = (between / max(len(present) - 1, 1)) / np.maximum(within / max(len(y_tr) - len(present), 1), 1e-9)
    keep = np.argsort(-f)[:topk]
    z_tr, z_te = z_tr[:, keep], z_te[:, keep]
    means = np.stack([z_tr[y_tr == c].mean(axis=0) if (y_tr == c).any() else np.full(len(keep), np.nan)
                      for c in classes])
    resid = z_tr - np.nan_to_num(means)[np.searchsorted(classes, y_tr)]
    cov = resid.T @ resid / max(len(resid) - len(present), 1)
    cov = (1 - shrink) * cov + shrink * np.diag(np.diag(cov)) + 1e-3 * np.eye(len(cov))
    w = np.nan_to_num(means) @ np.linalg.inv(cov)
    score = z_te @ w.T - 0.5 * np.sum(w * np.nan_to_num(means), axis=1)
    score[:, ~np.isfinite(means).all(axis=1)] = -np.inf  # classes absent from training
    score -= score.max(axis=1, keepdims=True)
    return score - np.log(np.exp(score).sum(axis=1, keepdims=True)), float(np.mean(np.sort(f)[-3:]))


def _fold_posteriors(rows: list[dict[str, Any]], mats: dict[str, np.ndarray], task: str) -> dict[str, Any]:
    """Leave-one-segment-out weighted log posteriors of every window of ``task``, per modality."""
    idx = np.array([i for i, r in enumerate(rows) if r["task"] == task])
    y = np.array([rows[i]["label"] for i in idx])
    classes = np.unique(y)
    segs = [rows[i]["segment"] for i in idx]
    order = {s: k for k, s in enumerate(sorted(set(segs)))}
    fold = np.array([order[s] for s in segs])
    post = {m: np.zeros((len(idx), len(classes))) for m in mats}
    for k in range(len(order)):
        te = fold == k
        for m, mat in mats.items():
            x = mat[idx]
            lp, f = _lda_log_posteriors(x[~te], y[~te], x[te], classes)
            post[m][te] = lp * (f / (f + 20.0))  # a modality votes in proportion to how discriminative it is
    return {"y": y, "classes": classes, "post": post, "segments": len(order)}


@pytest.fixture(scope="module")
def fits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    url = str(Path(tmp_path_factory.mktemp("learn")) / "store")
    generate(CONFIG, url, workers=2)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # nan-reductions over fully lost stretches of a window
        rows = _collect(url)
        mats = _session_zscore(rows)
        assert set(mats) == set(STREAMS)
        return {task: _fold_posteriors(rows, mats, task) for task in TASKS}


def _predict(fit: dict[str, Any], removed: str | None) -> np.ndarray:
    """The class of every window by the fusion without ``removed``."""
    total = sum(p for m, p in fit["post"].items() if m != removed)
    return np.asarray(fit["classes"][np.argmax(total, axis=1)])


def _accuracy(fit: dict[str, Any], removed: str | None) -> tuple[float, float, float]:
    """(accuracy, chance, required accuracy) of the fusion without ``removed``."""
    acc = float(np.mean(_predict(fit, removed) == fit["y"]))
    chance = float(np.max(np.unique(fit["y"], return_counts=True)[1]) / len(fit["y"]))
    need = chance + max(0.05, 2.0 * math.sqrt(chance * (1 - chance) / fit["segments"]))
    return acc, chance, need


def _cases() -> list[Any]:
    out = []
    for task in TASKS:
        for removed in (None, *STREAMS):
            marks = ()
            if (task, removed) in GAPS:
                marks = (pytest.mark.xfail(reason=GAPS[(task, removed)], raises=AssertionError, strict=False),)
            name = "all" if removed is None else f"no_{removed}"
            out.append(pytest.param(task, removed, marks=marks, id=f"{task}-{name}"))
    return out


def test_enough_labelled_segments(fits: dict[str, dict[str, Any]]) -> None:
    for task, fit in fits.items():
        assert fit["segments"] >= 30 and len(fit["classes"]) >= min(3, len(LABELS[task])), (task, fit["segments"])


def test_spoken_answers_are_told_without_audio(fits: dict[str, dict[str, Any]]) -> None:
    """The known speech gap is partial: without audio, the nod with "yes" and the shake with "no" (head pose and
    IMU) still name those two commands in at least 3 x chance of their windows (1 / 12 per class)."""
    fit = fits["speech_command"]
    pred = _predict(fit, "audio")
    for word in ("yes", "no"):
        recall = float(np.mean(pred[fit["y"] == word] == word))
        assert recall >= 3.0 / len(fit["classes"]), (word, recall)


@pytest.mark.parametrize(("task", "removed"), _cases())
def test_beats_chance(fits: dict[str, dict[str, Any]], task: str, removed: str | None) -> None:
    acc, chance, need = _accuracy(fits[task], removed)
    assert acc >= need, (f"{task} without {removed or 'nothing'}: accuracy {acc:.2f}, chance {chance:.2f}, "
                         f"needed {need:.2f} over {fits[task]['segments']} segments")
