"""The statistics of REALISM.md computed on generated data (used by the tests and the realism report).

Each function takes plain arrays (a stream's ``data``, its rate, event intervals) and returns numbers, so it
runs the same on synthetic and on real recordings. Blocks by owner: ``# --- eye, hand, head ---`` and
``# --- eeg, audio, depth ---``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# --- eeg, audio, depth ---


def welch_psd(x: np.ndarray, fs: float, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD along the first axis (Hann, 50 % overlap, ``seconds`` per segment): (freqs, psd)."""
    from scipy.signal import welch

    x = np.asarray(x, dtype=np.float64)
    nper = min(x.shape[0], max(8, round(seconds * fs)))
    f, p = welch(x, fs=fs, nperseg=nper, axis=0)
    return f, p


def aperiodic_fit(freqs: np.ndarray, psd: np.ndarray, fmin: float = 2.0, fmax: float = 40.0) -> tuple[float, float]:
    """Fit log10 P = offset - exponent * log10 f over [fmin, fmax], robust to periodic peaks.

    specparam-style "fixed" aperiodic mode by hand: least squares on the log-log spectrum, then points
    lying more than 2 robust SDs above the fit (oscillatory peaks such as alpha or theta) are dropped and the
    line refitted, three times. Returns (offset, exponent).
    """
    sel = (freqs >= fmin) & (freqs <= fmax) & (psd > 0)
    lf, lp = np.log10(freqs[sel]), np.log10(psd[sel])
    keep = np.ones(lf.size, bool)
    coef = np.polyfit(lf, lp, 1)
    for _ in range(3):
        resid = lp - np.polyval(coef, lf)
        mad = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        keep = resid < 2.0 * max(mad, 1e-3)
        if keep.sum() < 5:
            break
        coef = np.polyfit(lf[keep], lp[keep], 1)
    return float(coef[1]), float(-coef[0])


def aperiodic_exponent(x: np.ndarray, fs: float, fmin: float = 2.0, fmax: float = 40.0) -> np.ndarray:
    """Aperiodic (1/f) exponent per channel of ``x`` (T, C) over [fmin, fmax] Hz (REALISM G1)."""
    f, p = welch_psd(np.atleast_2d(np.asarray(x).T).T, fs)
    return np.array([aperiodic_fit(f, p[:, c], fmin, fmax)[1] for c in range(p.shape[1])])


def peak_frequency(x: np.ndarray, fs: float, lo: float = 7.0, hi: float = 14.0) -> np.ndarray:
    """Individual peak frequency per channel in [lo, hi] Hz (REALISM G2): the centre of gravity of the power
    above the aperiodic fit (Klimesch's alpha centre of gravity), robust to a ragged spectral peak."""
    f, p = welch_psd(np.atleast_2d(np.asarray(x).T).T, fs, seconds=4.0)
    out = []
    band = (f >= lo) & (f <= hi)
    for c in range(p.shape[1]):
        off, exp = aperiodic_fit(f, p[:, c])
        excess = np.clip(p[band, c] - 10 ** (off - exp * np.log10(f[band])), 0, None)
        out.append(float(np.sum(f[band] * excess) / np.sum(excess)) if excess.sum() > 0 else float("nan"))
    return np.array(out)


def band_power(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Mean PSD x bandwidth in [lo, hi] Hz per channel (units^2)."""
    f, p = welch_psd(np.atleast_2d(np.asarray(x).T).T, fs)
    sel = (f >= lo) & (f <= hi)
    return np.asarray(np.trapezoid(p[sel], f[sel], axis=0))


def band_power_ratio(a: np.ndarray, b: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Band power of ``a`` over band power of ``b`` per channel (e.g. eyes closed / eyes open alpha, G3/G4)."""
    return band_power(a, fs, lo, hi) / band_power(b, fs, lo, hi)


def rms(x: np.ndarray) -> np.ndarray:
    """Root mean square per channel (first axis = time), NaN-aware (REALISM G5)."""
    return np.sqrt(np.nanmean(np.asarray(x, dtype=np.float64) ** 2, axis=0))


def emg_power_change_db(
    active: np.ndarray, rest: np.ndarray, fs: float, lo: float = 20.0, hi: float = 100.0
) -> np.ndarray:
    """Change of the 20-100 Hz (EMG) band power, active vs rest, in dB per channel (REALISM G7)."""
    return np.asarray(10 * np.log10(band_power_ratio(active, rest, fs, lo, min(hi, 0.45 * fs))))


def line_noise_snr_db(x: np.ndarray, fs: float, line_hz: float) -> np.ndarray:
    """Height of the spectral peak at ``line_hz`` over the median of 2-5 Hz neighbours, dB per channel (G8)."""
    f, p = welch_psd(np.atleast_2d(np.asarray(x).T).T, fs, seconds=4.0)
    peak = p[np.abs(f - line_hz) <= 0.5].max(axis=0)
    nb = (np.abs(f - line_hz) >= 2.0) & (np.abs(f - line_hz) <= 5.0)
    return np.asarray(10 * np.log10(peak / np.median(p[nb], axis=0)))


def interval_mask(intervals_s: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """True where ``times_s`` fall inside any [start, stop) interval of ``intervals_s`` (K, 2), seconds."""
    iv = np.asarray(intervals_s, dtype=np.float64).reshape(-1, 2)
    if iv.size == 0:
        return np.zeros(np.shape(times_s), bool)
    iv = iv[np.argsort(iv[:, 0])]
    stop_max = np.maximum.accumulate(iv[:, 1])
    i = np.searchsorted(iv[:, 0], times_s, side="right") - 1
    return (i >= 0) & (times_s < stop_max[np.clip(i, 0, None)])


def _frames(x: np.ndarray, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    k = x.size // n
    return x[: k * n].reshape(k, n)


def spectral_centroids(x: np.ndarray, fs: float, frame_s: float = 0.032) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame spectral centroid (Hz) and frame energy (mean square), non-overlapping Hann frames.

    The centroid weights frequencies by the magnitude spectrum, as librosa and Essentia do.
    """
    n = round(frame_s * fs)
    fr = _frames(x, n)
    spec = np.abs(np.fft.rfft(fr * np.hanning(n), axis=1))
    f = np.fft.rfftfreq(n, 1 / fs)
    cent = (spec @ f) / np.maximum(spec.sum(axis=1), 1e-30)
    return cent, np.mean(fr * fr, axis=1)


def speech_centroid_hz(
    x: np.ndarray, fs: float, speech_s: np.ndarray, silence_s: np.ndarray | None = None, frame_s: float = 0.032
) -> np.ndarray:
    """Spectral centroids of speech frames (REALISM A2): frames inside ``speech_s`` intervals whose energy is
    at least 10 dB above the median energy of frames outside all ``silence_s`` (default: outside speech).

    The row is defined at 16 kHz: audio at other rates is resampled to 16 kHz first.
    """
    if round(fs) != 16000:
        from scipy.signal import resample_poly

        g = np.gcd(round(fs), 16000)
        x = resample_poly(np.asarray(x, dtype=np.float64).reshape(-1), 16000 // g, round(fs) // g)
        fs = 16000.0
    cent, energy = spectral_centroids(x, fs, frame_s)
    t = (np.arange(cent.size) + 0.5) * frame_s
    inside = interval_mask(speech_s, t)
    quiet = ~interval_mask(speech_s if silence_s is None else silence_s, t)
    floor = np.median(energy[quiet]) if quiet.any() else np.min(energy)
    return np.asarray(cent[inside & (energy > 10 * floor)])


def envelope_modulation_peak_hz(x: np.ndarray, fs: float, lo: float = 1.0, hi: float = 16.0) -> float:
    """Peak of the envelope modulation spectrum in [lo, hi] Hz (REALISM A4).

    Envelope: RMS in 10 ms frames; spectrum: Welch over 8 s, shown as power per log-frequency (f x PSD), the
    usual way a modulation spectrum is plotted (Ding et al. 2017).
    """
    from scipy.signal import welch

    env = np.sqrt(np.mean(_frames(x, round(0.01 * fs)) ** 2, axis=1))
    f, p = welch(env - env.mean(), fs=100.0, nperseg=min(env.size, 800))
    sel = (f >= lo) & (f <= hi)
    return float(f[sel][np.argmax(f[sel] * p[sel])])


def voice_activity_stats(spurts: np.ndarray, duration_s: float) -> dict[str, Any]:
    """Dyad voice-activity statistics (REALISM A5) from talk spurts (K, 3): start_s, stop_s, speaker.

    Returns per-speaker activity (share of time talking), spurt duration median/mean/skewness (all
    speakers), and turn changes per minute (speaker changes between consecutive spurts in start order).
    """
    from scipy.stats import skew

    sp = np.asarray(spurts, dtype=np.float64).reshape(-1, 3)
    sp = sp[np.argsort(sp[:, 0], kind="stable")]
    activity = {}
    for spk in np.unique(sp[:, 2]):
        iv = sp[sp[:, 2] == spk, :2]
        t = np.arange(0.0, duration_s, 0.01) + 0.005
        activity[int(spk)] = float(interval_mask(iv, t).mean())
    d = sp[:, 1] - sp[:, 0]
    changes = int(np.sum(sp[1:, 2] != sp[:-1, 2]))
    return {
        "activity": activity,
        "spurt_median_s": float(np.median(d)) if d.size else float("nan"),
        "spurt_mean_s": float(np.mean(d)) if d.size else float("nan"),
        "spurt_skewness": float(skew(d)) if d.size > 2 else float("nan"),
        "turn_changes_per_min": changes / (duration_s / 60.0),
    }


def energy_vad(x: np.ndarray, fs: float, frame_s: float = 0.02, margin_db: float = 9.0) -> np.ndarray:
    """Frames (``frame_s``) whose 100-4000 Hz energy exceeds the noise floor (10th percentile) by ``margin_db``."""
    xf = _bandlimit(np.asarray(x, dtype=np.float64).reshape(-1), fs, 100.0, 4000.0)
    e = np.mean(_frames(xf, round(frame_s * fs)) ** 2, axis=1)
    return np.asarray(e > np.percentile(e, 10) * 10 ** (margin_db / 10))


def _bandlimit(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / fs)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, n=x.size)


def snr_db(
    x: np.ndarray, fs: float, speech_s: np.ndarray, silence_s: np.ndarray, band: tuple[float, float] = (100.0, 7000.0)
) -> float:
    """Speech-to-noise ratio in dB (REALISM A6) in ``band``.

    Speech: the active speech level of the 20 ms frames inside ``speech_s`` (ITU-T P.56 style: frames within
    15.9 dB of the mean, noise power subtracted); noise: the mean power of the frames outside every interval
    of ``silence_s``.
    """
    xf = _bandlimit(np.asarray(x, dtype=np.float64).reshape(-1), fs, band[0], min(band[1], 0.49 * fs))
    n = round(0.02 * fs)
    e = np.mean(_frames(xf, n) ** 2, axis=1)
    t = (np.arange(e.size) + 0.5) * n / fs
    pn = e[~interval_mask(silence_s, t)].mean()
    es = e[interval_mask(speech_s, t)]
    ps = es[es >= es.mean() * 10 ** (-15.9 / 10)].mean()
    return float(10 * np.log10(max(ps - pn, 1e-30) / pn))


def a_weighted_level_db(x: np.ndarray, fs: float, full_scale_db: float = 110.0) -> float:
    """A-weighted level in dB SPL of a float signal whose full-scale sine is ``full_scale_db`` (A6)."""
    from xrdata.synth.audio import a_weighting_power

    x = np.asarray(x, dtype=np.float64).reshape(-1)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / fs)
    ms = 2 * np.sum(spec * a_weighting_power(f)) / x.size**2
    return float(full_scale_db + 10 * np.log10(ms * 2))


def depth_temporal_noise(frames_mm: np.ndarray, min_valid: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel temporal noise of a static depth sequence (REALISM D1).

    ``frames_mm`` (N, H, W) uint16 (0 = invalid). Returns (mean depth m, std mm) of the pixels valid in at
    least ``min_valid`` of the frames (1-D arrays).
    """
    f = np.asarray(frames_mm, dtype=np.float64)
    valid = f > 0
    ok = valid.mean(axis=0) >= min_valid
    fv = np.where(valid, f, np.nan)[:, ok]
    return np.nanmean(fv, axis=0) / 1000.0, np.nanstd(fv, axis=0, ddof=1)


def structured_light_sigma_mm(z_m: np.ndarray) -> np.ndarray:
    """The structured-light axial noise law of Nguyen et al. 2012: 1.2 + 1.9 (z - 0.4)^2 mm."""
    return 1.2 + 1.9 * (np.asarray(z_m) - 0.4) ** 2


def invalid_fraction(frames: np.ndarray) -> float:
    """Share of invalid (0 or NaN) depth pixels (REALISM D4)."""
    f = np.asarray(frames)
    bad = (f == 0) | (np.isnan(f) if f.dtype.kind == "f" else False)
    return float(np.mean(bad))


def depth_jumps(reference_mm: np.ndarray, jump_mm: float = 100.0, radius: int = 3) -> np.ndarray:
    """Pixels within ``radius`` px of a depth discontinuity larger than ``jump_mm`` in a (H, W) frame."""
    from scipy.ndimage import binary_dilation

    r = np.asarray(reference_mm, dtype=np.float64)
    r = np.where(r > 0, r, np.nan)
    j = np.zeros(r.shape, bool)
    dh = np.abs(np.diff(r, axis=1)) > jump_mm
    dv = np.abs(np.diff(r, axis=0)) > jump_mm
    j[:, 1:] |= dh
    j[:, :-1] |= dh
    j[1:, :] |= dv
    j[:-1, :] |= dv
    return np.asarray(binary_dilation(j, iterations=radius))


def flying_pixels(frame_mm: np.ndarray, reference_mm: np.ndarray, tol_mm: float = 40.0) -> np.ndarray:
    """Flying (mixed) pixels of a frame (REALISM D5): valid pixels whose depth lies strictly between the
    depths of two valid reference pixels within 3 px along a row or a column, more than ``tol_mm`` from the
    reference depth at that pixel (``reference_mm``: the noise-free or temporally-median frame)."""
    f = np.asarray(frame_mm, dtype=np.float64)
    r = np.asarray(reference_mm, dtype=np.float64)
    out = (f > 0) & (r > 0) & (np.abs(f - r) > tol_mm)
    lo = np.full(r.shape, np.inf)
    hi = np.full(r.shape, -np.inf)
    rv = np.where(r > 0, r, np.nan)
    for axis in (0, 1):
        for k in (1, 2, 3):
            for s in (k, -k):
                sh = np.roll(rv, s, axis=axis)
                lo = np.fmin(lo, sh)
                hi = np.fmax(hi, sh)
    return np.asarray(out & (f > lo + tol_mm / 2) & (f < hi - tol_mm / 2))


def run_lengths(mask: np.ndarray, axis: int = 1) -> np.ndarray:
    """Lengths of the runs of True along ``axis`` of a 2-D mask (1-D array of run lengths)."""
    m = np.moveaxis(np.asarray(mask, bool), axis, -1)
    m = m.reshape(-1, m.shape[-1])
    padded = np.pad(m.astype(np.int8), ((0, 0), (1, 1)))
    d = np.diff(padded, axis=1)
    starts = np.argwhere(d == 1)
    stops = np.argwhere(d == -1)
    return np.asarray(stops[:, 1] - starts[:, 1])


# --- eye, hand, head ---
# REALISM rows E1-E12, H1-H8, M4-M7. Every function takes a stream's arrays (time_ns, data) and returns numbers
# or arrays; nothing reads the generators' parameters, so the same code runs on real recordings.


def gaze_directions(data: np.ndarray, channels: list[str], ray: str = "combined") -> np.ndarray:
    """(N, 3) unit gaze directions of ``ray`` ("combined", "left", "right") from a gaze stream (NaN = invalid)."""
    idx = [channels.index(f"{ray}_dir_{a}") for a in "xyz"]
    return np.asarray(data[:, idx], dtype=np.float64)


def _angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (deg) between direction vectors (..., 3); NaN where either is NaN."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(a * b, axis=-1)))


def gaze_velocity(time_ns: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """(N-1,) angular speed (deg/s) between consecutive samples (NaN across invalid samples)."""
    dt = np.diff(np.asarray(time_ns, dtype=np.int64)) * 1e-9
    return _angle_between(dirs[:-1], dirs[1:]) / np.where(dt > 0, dt, np.nan)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) indices of the True runs of a 1-D mask."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def detect_saccades(time_ns: np.ndarray, dirs: np.ndarray, threshold: float = 30.0,
                    min_amplitude: float = 0.0) -> dict[str, np.ndarray]:
    """Velocity-threshold (I-VT) saccade detection on a gaze stream.

    Sample-to-sample speeds above ``threshold`` deg/s mark saccade cores; each core is extended backward and
    forward while the speed keeps falling and stays above a noise floor (1.5 x the median fixation speed, at
    least 0.2 x threshold): the usual onset/offset refinement. Cores touching invalid samples are dropped.
    For head-free recordings run it on gaze-in-world directions (:func:`gaze_in_world`), where the
    vestibulo-ocular counter-rotation during head turns is not mistaken for saccades. Returns arrays
    ``start_ns``, ``stop_ns``, ``amplitude`` (deg, angle between the directions at onset and offset),
    ``peak_velocity`` (deg/s) and ``duration_ms``, for saccades with amplitude >= ``min_amplitude``.
    """
    t = np.asarray(time_ns, dtype=np.int64)
    v = gaze_velocity(t, dirs)
    vv = np.nan_to_num(v, nan=np.inf)
    fast = vv > threshold
    slow = vv[vv <= threshold]
    floor = max(1.5 * float(np.median(slow)) if slow.size else 0.0, 0.2 * threshold)
    starts, stops = _runs(fast)
    n = len(v)
    keep_s: list[int] = []
    keep_e: list[int] = []
    for s, e in zip(starts.tolist(), stops.tolist(), strict=True):
        if not np.isfinite(vv[s:e]).all():
            continue
        while s > 0 and floor < vv[s - 1] < vv[s]:
            s -= 1
        while e < n and floor < vv[e] < vv[e - 1]:
            e += 1
        if keep_e and s < keep_e[-1]:  # overlapping extensions: merge
            keep_e[-1] = max(keep_e[-1], e)
            continue
        keep_s.append(s)
        keep_e.append(e)
    s_arr = np.asarray(keep_s, dtype=np.int64)
    e_arr = np.asarray(keep_e, dtype=np.int64)  # velocity index e-1 is the last moving interval -> sample e
    if s_arr.size == 0:
        empty = np.empty(0)
        return {"start_ns": empty.astype(np.int64), "stop_ns": empty.astype(np.int64), "amplitude": empty,
                "peak_velocity": empty, "duration_ms": empty}
    amp = _angle_between(dirs[s_arr], dirs[e_arr])
    peak = np.array([np.max(v[a:b]) for a, b in zip(s_arr.tolist(), e_arr.tolist(), strict=True)])
    ok = np.isfinite(amp) & (amp >= min_amplitude)
    return {"start_ns": t[s_arr][ok], "stop_ns": t[e_arr][ok], "amplitude": amp[ok], "peak_velocity": peak[ok],
            "duration_ms": (t[e_arr][ok] - t[s_arr][ok]) * 1e-6}


def gaze_in_world(time_ns: np.ndarray, dirs: np.ndarray, head_time_ns: np.ndarray, head_quat: np.ndarray) -> np.ndarray:
    """Gaze directions (N, 3) rotated from the head (view) frame into the head pose's reference space."""
    from xrdata.synth.head import quat_rotate

    q = orientation_at(time_ns, head_time_ns, head_quat)
    return np.asarray(quat_rotate(q, np.asarray(dirs, dtype=np.float64)))


def main_sequence_fit(amplitude: np.ndarray, peak_velocity: np.ndarray, amin: float = 1.0,
                      amax: float = 30.0) -> tuple[float, float]:
    """Least-squares fit of Vp = eta (1 - exp(-A / c)) over saccades with amin <= A <= amax: (eta, c) (E1)."""
    from scipy.optimize import curve_fit

    sel = (amplitude >= amin) & (amplitude <= amax) & np.isfinite(peak_velocity)
    popt, _ = curve_fit(lambda a, eta, c: eta * (1.0 - np.exp(-a / c)), amplitude[sel], peak_velocity[sel],
                        p0=(500.0, 6.0), bounds=([10.0, 0.1], [5000.0, 100.0]))
    return float(popt[0]), float(popt[1])


def duration_fit(amplitude: np.ndarray, duration_ms: np.ndarray, amin: float = 1.0,
                 amax: float = 30.0) -> tuple[float, float, float]:
    """Linear fit D = d A + D0 over saccades with amin <= A <= amax: (d ms/deg, D0 ms, R^2) (E2)."""
    sel = (amplitude >= amin) & (amplitude <= amax)
    a, d = amplitude[sel], duration_ms[sel]
    slope, intercept = np.polyfit(a, d, 1)
    resid = d - (slope * a + intercept)
    r2 = 1.0 - float(np.sum(resid**2)) / float(np.sum((d - d.mean()) ** 2))
    return float(slope), float(intercept), r2


def fixations(time_ns: np.ndarray, dirs: np.ndarray, threshold: float = 30.0,
              min_saccade: float = 1.0) -> dict[str, np.ndarray]:
    """Fixations between saccades (I-VT; saccades smaller than ``min_saccade`` deg, i.e. microsaccades and
    noise, do not split a fixation). Fixations touching invalid samples (blinks, loss) or the stream ends are
    dropped. Returns ``start_ns``, ``stop_ns``, ``duration_ms``."""
    t = np.asarray(time_ns, dtype=np.int64)
    sac = detect_saccades(t, dirs, threshold, min_saccade)
    bounds_s = np.concatenate([[t[0]], sac["stop_ns"]])
    bounds_e = np.concatenate([sac["start_ns"], [t[-1]]])
    invalid = ~np.isfinite(dirs).all(axis=1)
    cum = np.concatenate([[0], np.cumsum(invalid)])
    i0 = np.searchsorted(t, bounds_s)
    i1 = np.searchsorted(t, bounds_e, side="right")
    clean = (cum[i1] - cum[i0] == 0) & (bounds_e > bounds_s)
    clean[0] = clean[-1] = False
    return {"start_ns": bounds_s[clean], "stop_ns": bounds_e[clean],
            "duration_ms": (bounds_e[clean] - bounds_s[clean]) * 1e-6}


def fixation_stats(duration_ms: np.ndarray) -> dict[str, float]:
    """Mean, median, 5th percentile (ms) and the share within 80-1000 ms of fixation durations (E3)."""
    d = np.asarray(duration_ms, dtype=np.float64)
    return {"mean": float(d.mean()), "median": float(np.median(d)), "p5": float(np.percentile(d, 5)),
            "frac_80_1000": float(np.mean((d >= 80) & (d <= 1000))), "count": float(d.size)}


def saccade_rate(time_ns: np.ndarray, dirs: np.ndarray, threshold: float = 30.0,
                 min_amplitude: float = 1.0) -> tuple[float, float]:
    """(saccades per second of valid gaze, share of valid time in fixation) by I-VT (E4). Saccades below
    ``min_amplitude`` deg are microsaccades and count as fixation time."""
    t = np.asarray(time_ns, dtype=np.int64)
    valid = np.isfinite(dirs).all(axis=1)
    v = gaze_velocity(t, dirs)
    dt = np.diff(t) * 1e-9
    ok = valid[:-1] & valid[1:]
    sac = detect_saccades(t, dirs, threshold, min_amplitude)
    in_sac = np.zeros(len(t), dtype=bool)
    i0 = np.searchsorted(t, sac["start_ns"])
    i1 = np.searchsorted(t, sac["stop_ns"])
    for a, b in zip(i0.tolist(), i1.tolist(), strict=True):
        in_sac[a:b] = True
    valid_time = float(dt[ok].sum())
    fix_time = float(dt[ok & ~in_sac[:-1]].sum())
    del v
    return len(sac["amplitude"]) / valid_time, fix_time / valid_time


def invalid_episodes(time_ns: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(K, 2) int64 [start_ns, stop_ns) of the runs of invalid samples (stop = the next valid sample's time)."""
    t = np.asarray(time_ns, dtype=np.int64)
    s, e = _runs(~np.asarray(valid, dtype=bool))
    keep = (s > 0) & (e < len(t))  # drop runs cut by the stream ends
    s, e = s[keep], e[keep]
    return np.stack([t[s], t[e]], axis=1) if s.size else np.empty((0, 2), dtype=np.int64)


def blink_stats(time_ns: np.ndarray, valid: np.ndarray, max_ms: float = 500.0, min_ms: float = 30.0) -> dict[
        str, Any]:
    """Blinks as invalid episodes of ``min_ms``-``max_ms`` (E6, E7): rate per minute of the stream, the
    durations (ms), their median and the share within 50-500 ms."""
    ep = invalid_episodes(time_ns, valid)
    dur = (ep[:, 1] - ep[:, 0]) * 1e-6
    blink = (dur >= min_ms) & (dur <= max_ms)
    t = np.asarray(time_ns, dtype=np.int64)
    minutes = (t[-1] - t[0]) * 1e-9 / 60.0
    d = dur[blink]
    return {"rate_per_min": float(blink.sum() / minutes), "durations_ms": d,
            "median_ms": float(np.median(d)) if d.size else float("nan"),
            "frac_50_500": float(np.mean((d >= 50) & (d <= 500))) if d.size else float("nan")}


def pupil_stats(diameter_mm: np.ndarray) -> dict[str, float]:
    """Min, max, mean and median of valid pupil diameters (mm) (E8)."""
    d = np.asarray(diameter_mm, dtype=np.float64)
    d = d[np.isfinite(d)]
    return {"min": float(d.min()), "max": float(d.max()), "mean": float(d.mean()), "median": float(np.median(d))}


def precision_rms_s2s(time_ns: np.ndarray, dirs: np.ndarray, threshold: float = 30.0) -> float:
    """RMS of the angular distances (deg) between consecutive valid samples during fixations (E10): both
    samples below the I-VT threshold and at least 2 samples away from any saccade or invalid sample."""
    t = np.asarray(time_ns, dtype=np.int64)
    v = gaze_velocity(t, dirs)
    step = _angle_between(dirs[:-1], dirs[1:])
    bad = ~(np.nan_to_num(v, nan=np.inf) <= threshold)
    kernel = np.ones(5, dtype=bool)
    near = np.convolve(bad.astype(np.int8), kernel.astype(np.int8), mode="same") > 0
    sel = ~near & np.isfinite(step)
    return float(np.sqrt(np.mean(step[sel] ** 2)))


def sampling_interval(time_ns: np.ndarray, rate_hz: float) -> tuple[float, float]:
    """(mean sample interval in s, its relative deviation from 1 / rate_hz) (E12)."""
    t = np.asarray(time_ns, dtype=np.int64)
    mean = float((t[-1] - t[0]) * 1e-9 / (len(t) - 1))
    return mean, mean * rate_hz - 1.0


def hand_positions(data: np.ndarray, hand: int, joints: list[int] | int) -> np.ndarray:
    """Positions (N, [J,] 3) of joints of one hand (0 left, 1 right) from a hand stream (N, 2, 26, C)."""
    return np.asarray(data[:, hand, joints, :3], dtype=np.float64)


def speed(time_ns: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(N,) speed (m/s) by central differences (NaN at the ends and next to invalid samples)."""
    t = np.asarray(time_ns, dtype=np.int64) * 1e-9
    out = np.full(len(t), np.nan)
    out[1:-1] = np.linalg.norm(pos[2:] - pos[:-2], axis=-1) / (t[2:] - t[:-2])
    return out


def movement_profiles(time_ns: np.ndarray, pos: np.ndarray, on: float = 0.15, min_peak: float = 0.3,
                      edge: float = 0.05) -> dict[str, np.ndarray]:
    """Point-to-point movement speed profiles (H1).

    Movements are runs of speed above ``on`` m/s with a peak >= ``min_peak``, extended to where the speed
    falls below ``edge`` x peak (5 %, a common onset criterion; an ideal minimum-jerk profile then gives
    peak/mean 1.66, 1.875 over its full support); only runs of valid samples count. Returns per movement
    ``peak_to_mean``, ``peak_fraction`` (time of the peak within the movement, 0-1), ``n_peaks`` (local maxima
    above half the peak), ``duration_s``.
    """
    t = np.asarray(time_ns, dtype=np.int64) * 1e-9
    v = speed(time_ns, pos)
    vv = np.nan_to_num(v, nan=0.0)
    s_idx, e_idx = _runs(vv > on)
    out: dict[str, list[float]] = {"peak_to_mean": [], "peak_fraction": [], "n_peaks": [], "duration_s": []}
    for s, e in zip(s_idx.tolist(), e_idx.tolist(), strict=True):
        pk = s + int(np.argmax(vv[s:e]))
        peak = vv[pk]
        if peak < min_peak:
            continue
        a, b = pk, pk
        while a > 0 and vv[a - 1] > edge * peak and np.isfinite(v[a - 1]):
            a -= 1
        while b < len(v) - 1 and vv[b + 1] > edge * peak and np.isfinite(v[b + 1]):
            b += 1
        if a == 0 or b >= len(v) - 1 or not (np.isfinite(v[a - 1]) and np.isfinite(v[b + 1])):
            continue
        seg = vv[a:b + 1]
        dur = t[b] - t[a]
        mean = float(np.trapezoid(seg, t[a:b + 1]) / dur) if dur > 0 else np.nan
        inner = seg[1:-1]
        maxima = (inner > seg[:-2]) & (inner >= seg[2:]) & (inner > 0.5 * peak)
        out["peak_to_mean"].append(peak / mean)
        out["peak_fraction"].append((t[pk] - t[a]) / dur)
        out["n_peaks"].append(float(maxima.sum()))
        out["duration_s"].append(dur)
    return {k: np.asarray(v_) for k, v_ in out.items()}


def tremor_spectrum(time_ns: np.ndarray, pos: np.ndarray, still_speed: float = 0.05, min_s: float = 1.1,
                    band: tuple[float, float] = (4.0, 15.0)) -> dict[str, float]:
    """Holding tremor of a joint (H3): acceleration (second differences of position, m/s^2) over still
    stretches (speed < ``still_speed`` m/s for >= ``min_s``), its Welch spectrum on the axis of largest
    band power, the peak frequency in 3-20 Hz (above voluntary movement) and the band RMS in ``band`` (in g)."""
    from scipy.signal import detrend, welch

    t = np.asarray(time_ns, dtype=np.int64) * 1e-9
    fs = 1.0 / float(np.median(np.diff(t)))
    v = speed(time_ns, pos)
    s_idx, e_idx = _runs(np.nan_to_num(v, nan=np.inf) < still_speed)
    nper = round(fs)
    psds = []
    weights = []
    for s, e in zip(s_idx.tolist(), e_idx.tolist(), strict=True):
        if e - s < max(min_s * fs, nper + 2):
            continue
        acc = (pos[s + 2:e] - 2 * pos[s + 1:e - 1] + pos[s:e - 2]) * fs * fs
        f, p = welch(detrend(acc, axis=0), fs=fs, nperseg=nper, axis=0)
        psds.append(p)
        weights.append(len(acc))
    if not psds:
        return {"peak_hz": float("nan"), "amp_g": float("nan"), "seconds": 0.0}
    psd = np.average(np.stack(psds), axis=0, weights=weights)  # (F, 3)
    inband = (f >= band[0]) & (f <= band[1])
    df = f[1] - f[0]
    axis_power = psd[inband].sum(axis=0) * df
    k = int(np.argmax(axis_power))
    rng_sel = (f >= 3.0) & (f <= 20.0)  # above voluntary movement
    fsel, psel = f[rng_sel], psd[rng_sel, k]
    i = int(np.argmax(psel))
    peak = float(fsel[i])
    if 0 < i < len(psel) - 1:  # parabolic interpolation of the log spectrum around the maximum bin
        a, b, c = np.log(psel[i - 1:i + 2] + 1e-300)
        den = a - 2 * b + c
        if den < 0:
            peak += float(0.5 * (a - c) / den) * float(fsel[1] - fsel[0])
    return {"peak_hz": peak, "amp_g": float(np.sqrt(axis_power[k]) / 9.80665), "seconds": float(sum(weights) / fs)}


def _rel_flexion(q_parent: np.ndarray, q_child: np.ndarray) -> np.ndarray:
    """Flexion angle (deg) of a child joint frame relative to its parent: the child's bone direction (-Z)
    in the parent frame, angle in the parent's Y-Z plane, positive toward -Y (the palm)."""
    from xrdata.synth.head import quat_conj, quat_mul, quat_rotate

    rel = quat_mul(quat_conj(q_parent), q_child)
    d = quat_rotate(rel, np.array([0.0, 0.0, -1.0]))
    return np.degrees(np.arctan2(-d[..., 1], -d[..., 2]))


def joint_angles(quat: np.ndarray) -> dict[str, np.ndarray]:
    """Flexion angles (deg) from the joint orientations (N, 26, 4) of one hand (OpenXR joint order) (H4):
    ``mcp``, ``pip``, ``dip`` of the four fingers (N, 4) and ``wrist`` flexion/extension (wrist -> palm, N)."""
    q = np.asarray(quat, dtype=np.float64)
    fingers = [6, 11, 16, 21]
    mcp = np.stack([_rel_flexion(q[:, j], q[:, j + 1]) for j in fingers], axis=1)
    pip = np.stack([_rel_flexion(q[:, j + 1], q[:, j + 2]) for j in fingers], axis=1)
    dip = np.stack([_rel_flexion(q[:, j + 2], q[:, j + 3]) for j in fingers], axis=1)
    return {"mcp": mcp, "pip": pip, "dip": dip, "wrist": _rel_flexion(q[:, 1], q[:, 0])}


def estimate_latency(time_ns: np.ndarray, reported: np.ndarray, true: np.ndarray, max_ms: float = 120.0) -> float:
    """The delay (s) that best aligns a reported track (N, 3) with the true one (N, 3): the lag L minimising
    the mean squared distance between reported(t) and true(t - L) (linear interpolation, 1 ms steps)."""
    t = np.asarray(time_ns, dtype=np.int64) * 1e-9
    ok = np.isfinite(reported).all(axis=1)
    best, best_err = 0.0, np.inf
    for lag in np.arange(0.0, max_ms + 0.5, 1.0) * 1e-3:
        shifted = np.stack([np.interp(t[ok] - lag, t, true[:, k]) for k in range(3)], axis=1)
        err = float(np.mean(np.sum((reported[ok] - shifted) ** 2, axis=1)))
        if err < best_err:
            best, best_err = lag, err
    return best


def position_error(time_ns: np.ndarray, reported: np.ndarray, true: np.ndarray, latency_s: float = 0.0) -> np.ndarray:
    """Distances (m) between reported joints (N, J, 3) and the true ones (N, J, 3) shifted by the latency,
    over valid samples (H5)."""
    t = np.asarray(time_ns, dtype=np.int64) * 1e-9
    ok = np.isfinite(reported).all(axis=(1, 2))
    shifted = np.empty_like(true[ok])
    for j in range(true.shape[1]):
        for k in range(3):
            shifted[:, j, k] = np.interp(t[ok] - latency_s, t, true[:, j, k])
    return np.asarray(np.linalg.norm(reported[ok] - shifted, axis=-1))


def loss_runs(lost: np.ndarray) -> np.ndarray:
    """Lengths (samples) of the runs of lost samples of one track (H7)."""
    s, e = _runs(np.asarray(lost, dtype=bool))
    return np.asarray(e - s)


def conditional_rate(event: np.ndarray, condition: np.ndarray) -> tuple[float, float]:
    """(P(event | condition), P(event | not condition)) over samples (H7: loss given overlap)."""
    ev = np.asarray(event, dtype=bool)
    c = np.asarray(condition, dtype=bool)
    p1 = float(ev[c].mean()) if c.any() else float("nan")
    p0 = float(ev[~c].mean()) if (~c).any() else float("nan")
    return p1, p0


def times_in_intervals(time_ns: np.ndarray, intervals_ns: np.ndarray) -> np.ndarray:
    """(N,) bool: which times fall inside any [start, stop) interval (K, 2) (intervals sorted, disjoint)."""
    t = np.asarray(time_ns, dtype=np.int64)
    iv = np.asarray(intervals_ns, dtype=np.int64).reshape(-1, 2)
    if iv.size == 0:
        return np.zeros(len(t), dtype=bool)
    i = np.searchsorted(iv[:, 0], t, side="right") - 1
    return (i >= 0) & (t < iv[np.maximum(i, 0), 1])


def motion_episodes(time_ns: np.ndarray, joints: np.ndarray, on: float = 0.12, off: float = 0.06,
                    merge_s: float = 0.2, min_s: float = 0.25) -> np.ndarray:
    """(K, 2) start/stop (s) of movement episodes of a hand (H8): the mean joint speed (joints (N, J, 3))
    crosses ``on`` m/s, episodes extend while it stays above ``off`` and merge across gaps < ``merge_s``."""
    t = np.asarray(time_ns, dtype=np.int64) * 1e-9
    with np.errstate(invalid="ignore"):
        sp = np.stack([speed(time_ns, joints[:, j]) for j in range(joints.shape[1])], axis=1).mean(axis=1)
    sp = np.nan_to_num(sp, nan=0.0)
    s_idx, e_idx = _runs(sp > off)
    ep = [(a, b) for a, b in zip(s_idx.tolist(), e_idx.tolist(), strict=True) if sp[a:b].max() > on]
    merged: list[list[float]] = []
    for a, b in ep:
        if merged and t[a] - merged[-1][1] < merge_s:
            merged[-1][1] = t[b - 1]
        else:
            merged.append([t[a], t[b - 1]])
    out = np.asarray(merged, dtype=np.float64).reshape(-1, 2)
    return out[(out[:, 1] - out[:, 0]) >= min_s]


def gesture_extents(time_ns: np.ndarray, joints: np.ndarray, windows_ns: np.ndarray, off: float = 0.06,
                    pad_s: float = 0.25) -> np.ndarray:
    """Durations (s) of hand motion inside annotated gesture windows (K, 2) ns (H8): from the first to the
    last sample whose mean joint speed (joints (N, J, 3)) exceeds ``off`` m/s within the window widened by
    ``pad_s``; static holds inside a gesture (thumbs-up, pinch) do not split it. NaN where the hand was not
    tracked or did not move."""
    t = np.asarray(time_ns, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        sp = np.stack([speed(t, joints[:, j]) for j in range(joints.shape[1])], axis=1).mean(axis=1)
    moving = np.nan_to_num(sp, nan=0.0) > off
    out = np.full(len(windows_ns), np.nan)
    pad = int(pad_s * 1e9)
    for k, (a, b) in enumerate(np.asarray(windows_ns, dtype=np.int64).tolist()):
        i0, i1 = np.searchsorted(t, a - pad), np.searchsorted(t, b + pad)
        idx = np.flatnonzero(moving[i0:i1])
        if idx.size and np.isfinite(sp[i0 + 1:i1 - 1]).all():
            out[k] = (t[i0 + idx[-1]] - t[i0 + idx[0]]) * 1e-9
    return out


def head_angular_speed(time_ns: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """(N-1,) angular speed (deg/s) of a pose stream's orientation (quaternions x, y, z, w) (M4)."""
    from xrdata.synth.head import quat_conj, quat_mul

    q = np.asarray(quat, dtype=np.float64)
    rel = quat_mul(quat_conj(q[:-1]), q[1:])
    ang = 2.0 * np.arctan2(np.linalg.norm(rel[:, :3], axis=1), np.abs(rel[:, 3]))
    dt = np.diff(np.asarray(time_ns, dtype=np.int64)) * 1e-9
    return np.degrees(ang) / dt


def allan_deviation(x: np.ndarray, fs: float, taus: np.ndarray) -> np.ndarray:
    """Overlapping Allan deviation (IEEE Std 952) of a rate signal ``x`` (N,) or (N, C) at averaging times
    ``taus`` (s) -> (len(taus),) or (len(taus), C) (M5)."""
    x = np.asarray(x, dtype=np.float64)
    squeeze = x.ndim == 1
    x = x.reshape(len(x), -1)
    theta = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)]) / fs
    out = np.empty((len(taus), x.shape[1]))
    for i, tau in enumerate(np.asarray(taus, dtype=np.float64)):
        m = max(1, round(tau * fs))
        d = theta[2 * m:] - 2.0 * theta[m:-m] + theta[:-2 * m]
        out[i] = np.sqrt(np.mean(d * d, axis=0) / (2.0 * (m / fs) ** 2))
    return out[:, 0] if squeeze else out


def allan_slope(taus: np.ndarray, adev: np.ndarray) -> float:
    """Log-log slope of an Allan deviation curve (-0.5 for white noise)."""
    return float(np.polyfit(np.log10(taus), np.log10(adev), 1)[0])


def orientation_at(time_ns: np.ndarray, pose_time_ns: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Quaternions of a pose stream interpolated (normalised linear) at ``time_ns``."""
    t = np.asarray(time_ns, dtype=np.int64)
    pt = np.asarray(pose_time_ns, dtype=np.int64)
    q = np.asarray(quat, dtype=np.float64)
    i = np.clip(np.searchsorted(pt, t, side="right") - 1, 0, len(pt) - 2)
    f = ((t - pt[i]) / (pt[i + 1] - pt[i]))[:, None]
    q1 = q[i + 1] * np.sign(np.sum(q[i] * q[i + 1], axis=1))[:, None]
    out = q[i] * (1 - f) + q1 * f
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def accel_gravity_check(imu_time_ns: np.ndarray, accel: np.ndarray, pose_time_ns: np.ndarray, quat: np.ndarray,
                        window_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Accelerometer at rest (M6): per window of ``window_s``, the magnitude (m/s^2) of the mean specific
    force and its angle (deg) to the gravity direction the pose predicts (R^T (0, 1, 0) in the device frame)."""
    from xrdata.synth.head import quat_conj, quat_rotate

    t = np.asarray(imu_time_ns, dtype=np.int64)
    fs = 1e9 / float(np.median(np.diff(t)))
    w = max(1, round(window_s * fs))
    k = len(t) // w
    a = np.asarray(accel[: k * w], dtype=np.float64).reshape(k, w, 3).mean(axis=1)
    q = orientation_at(t[: k * w].reshape(k, w)[:, w // 2], pose_time_ns, quat)
    up = quat_rotate(quat_conj(q), np.array([0.0, 1.0, 0.0]))
    mag = np.linalg.norm(a, axis=1)
    tilt = np.degrees(np.arccos(np.clip(np.sum(a * up, axis=1) / mag, -1.0, 1.0)))
    return mag, tilt


def gyro_pose_increments(imu_time_ns: np.ndarray, gyro: np.ndarray, pose_time_ns: np.ndarray, quat: np.ndarray,
                         window_s: float = 1.0, bias: np.ndarray | None = None) -> np.ndarray:
    """M7: for windows of ``window_s`` between pose samples, integrate the gyro (trapezoidal body-rate
    quaternion integration, partial first/last steps) and compare with the pose's rotation increment
    q(t0)^-1 q(t1). Returns the residual rotation vectors (K, 3) in rad (body frame)."""
    from xrdata.synth.head import quat_conj, quat_from_rotvec, quat_mul, quat_to_rotvec

    ti = np.asarray(imu_time_ns, dtype=np.int64) * 1e-9
    g = np.asarray(gyro, dtype=np.float64) - (0.0 if bias is None else np.asarray(bias, dtype=np.float64))
    pt = np.asarray(pose_time_ns, dtype=np.int64) * 1e-9
    q = np.asarray(quat, dtype=np.float64)
    step = max(1, round(window_s / float(np.median(np.diff(pt)))))
    a_idx = np.arange(0, len(pt) - step, step)
    ta, tb = pt[a_idx], pt[a_idx + step]
    ok = (ta >= ti[0]) & (tb <= ti[-1])
    a_idx, ta, tb = a_idx[ok], ta[ok], tb[ok]
    k0 = np.searchsorted(ti, ta, side="left")  # first IMU sample >= ta
    k1 = np.searchsorted(ti, tb, side="right") - 1  # last IMU sample <= tb
    nsteps = int((k1 - k0).max()) + 2 if len(k0) else 0

    def rate_at(tq: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(tq, ti, g[:, c]) for c in range(3)], axis=1)

    acc = np.zeros((len(a_idx), 4))
    acc[:, 3] = 1.0
    for s in range(nsteps):
        # step s spans [T(s), T(s+1)] with T(0) = ta, T(s) = ti[k0 + s - 1] for s >= 1, capped at tb
        t0 = np.where(s == 0, ta, ti[np.minimum(k0 + s - 1, len(ti) - 1)])
        t1 = ti[np.minimum(k0 + s, len(ti) - 1)]
        t0 = np.minimum(t0, tb)
        t1 = np.minimum(t1, tb)
        dt = np.maximum(t1 - t0, 0.0)
        w = 0.5 * (rate_at(t0) + rate_at(t1))
        acc = quat_mul(acc, quat_from_rotvec(w * dt[:, None]))
    rel = quat_mul(quat_conj(q[a_idx]), q[a_idx + step])
    return np.asarray(quat_to_rotvec(quat_mul(quat_conj(acc), rel)))


# --- dropout, drift, federated ---
# REALISM rows T1-T7 and F1-F5: loss masks, drift schedules and per-user label / sample tables.


def loss_statistics(mask: np.ndarray, window: int | None = None) -> dict[str, float]:
    """Bursty-loss statistics of a (N,) loss mask (T1): loss rate, number and mean length (samples) of the
    loss bursts, the Gilbert-Elliott transition estimates p (good -> bad) and r (bad -> good), and the Fano
    factor (variance / mean) of loss counts in windows of ``window`` samples (default 20 x the mean burst).
    Independent (Bernoulli) loss has Fano factor 1 - rate < 1; bursty loss > 1."""
    m = np.asarray(mask, dtype=bool).reshape(-1)
    s, e = _true_runs(m)
    lengths = e - s
    n_bad = int(m.sum())
    good_to_bad = int(np.sum(~m[:-1] & m[1:]))
    bad_to_good = int(np.sum(m[:-1] & ~m[1:]))
    p = good_to_bad / max(int(np.sum(~m[:-1])), 1)
    r = bad_to_good / max(int(np.sum(m[:-1])), 1)
    mean_burst = float(lengths.mean()) if lengths.size else 0.0
    w = int(window or max(10, round(20 * max(mean_burst, 1.0))))
    k = m.size // w
    counts = m[: k * w].reshape(k, w).sum(axis=1) if k else np.zeros(0)
    fano = float(counts.var() / counts.mean()) if k > 1 and counts.mean() > 0 else float("nan")
    return {"loss_rate": n_bad / max(m.size, 1), "n_bursts": float(lengths.size), "mean_burst": mean_burst,
            "p": float(p), "r": float(r), "fano": fano, "window": float(w)}


def _true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def coefficient_of_variation(x: np.ndarray) -> float:
    """std / mean (population std), NaN-aware (T2, F1)."""
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.std() / v.mean()) if v.size and v.mean() != 0 else float("nan")


def dropout_variation(user: np.ndarray, rate: np.ndarray) -> dict[str, float]:
    """How missing rates vary (T2) given one rate per (user, session): the coefficient of variation across
    users of the per-user mean rate, and the median over users (with >= 3 sessions) of the within-user CV
    across sessions."""
    u = np.asarray(user)
    r = np.asarray(rate, dtype=np.float64)
    users = np.unique(u)
    means = np.array([np.nanmean(r[u == x]) for x in users])
    within = [coefficient_of_variation(r[u == x]) for x in users if int(np.sum(u == x)) >= 3]
    return {"cv_between_users": coefficient_of_variation(means),
            "median_cv_within_user": float(np.nanmedian(within)) if within else float("nan")}


def sigmoid_share(t: np.ndarray, p: float, w: float) -> np.ndarray:
    """The concept-drift schedule 1 / (1 + exp(-4 (t - p) / w)) (T4; river ConceptDriftStream)."""
    x = -4.0 * (np.asarray(t, dtype=np.float64) - p) / w
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(x, -50, 50))))


def concept_schedule_fit(x: np.ndarray, new: np.ndarray, bins: np.ndarray) -> dict[str, np.ndarray]:
    """Empirical share of new-concept samples against the sigmoid schedule (T4).

    ``x`` = (t - p) / w per sample (the standardised time), ``new`` = 0/1 flags. Per bin of ``x``: the count,
    the observed share, the expected share (mean of the sigmoid over the bin's samples) and the deviation in
    binomial standard errors."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(new, dtype=np.float64)
    idx = np.digitize(x, bins) - 1
    out: dict[str, list[float]] = {"center": [], "n": [], "observed": [], "expected": [], "z": []}
    for b in range(len(bins) - 1):
        sel = idx == b
        n = int(sel.sum())
        if n == 0:
            continue
        exp = float(np.mean(1.0 / (1.0 + np.exp(-4.0 * x[sel]))))
        obs = float(y[sel].mean())
        se = max(np.sqrt(exp * (1 - exp) / n), 1e-9)
        out["center"].append(0.5 * (bins[b] + bins[b + 1]))
        out["n"].append(n)
        out["observed"].append(obs)
        out["expected"].append(exp)
        out["z"].append((obs - exp) / se)
    return {k: np.asarray(v) for k, v in out.items()}


def page_hinkley(x: np.ndarray, delta: float = 0.5, threshold: float = 5.0, min_n: int = 4) -> int:
    """Two-sided Page-Hinkley test (as in river.drift.PageHinkley, written out; T5).

    Feeds ``x`` in order (NaN skipped), keeping the running mean; the cumulative deviations
    m_up += x - mean - delta and m_down += mean - x - delta; an alarm when either rises ``threshold`` above its
    running minimum after ``min_n`` values. Returns the index of the first alarm in ``x`` or -1. Scale ``x``
    (e.g. by a noise estimate) so that ``delta`` and ``threshold`` are in noise units."""
    mean = 0.0
    n = 0
    up = down = 0.0
    up_min = down_min = 0.0
    for i, v in enumerate(np.asarray(x, dtype=np.float64)):
        if not np.isfinite(v):
            continue
        n += 1
        mean += (v - mean) / n
        up += v - mean - delta
        down += mean - v - delta
        up_min, down_min = min(up_min, up), min(down_min, down)
        if n >= min_n and (up - up_min > threshold or down - down_min > threshold):
            return i
    return -1


def sqrt_time_slope(dt: np.ndarray, increments: np.ndarray, n_bins: int = 6) -> float:
    """Slope of log(std of increments) against log(dt) (T7: a random walk gives 0.5). ``dt`` (K,) elapsed
    times, ``increments`` (K,) changes over them; dt is binned in log-spaced bins (>= 10 values each)."""
    dt = np.asarray(dt, dtype=np.float64)
    inc = np.asarray(increments, dtype=np.float64)
    ok = (dt > 0) & np.isfinite(inc)
    dt, inc = dt[ok], inc[ok]
    edges = np.quantile(np.log(dt), np.linspace(0, 1, n_bins + 1))
    xs, ys = [], []
    for k in range(n_bins):
        sel = (np.log(dt) >= edges[k]) & (np.log(dt) <= edges[k + 1])
        if sel.sum() >= 10:
            xs.append(np.log(np.mean(dt[sel])))  # E[inc^2] = w^2 E[dt] for a walk: the slope is exactly 1/2
            ys.append(np.log(np.sqrt(np.mean(inc[sel] ** 2))))
    return float(np.polyfit(xs, ys, 1)[0]) if len(xs) >= 2 else float("nan")


def skewness(x: np.ndarray) -> float:
    """Sample skewness (Fisher-Pearson, biased) (F1)."""
    v = np.asarray(x, dtype=np.float64)
    d = v - v.mean()
    s2 = np.mean(d**2)
    return float(np.mean(d**3) / s2**1.5) if s2 > 0 else 0.0


def samples_per_user_stats(samples: np.ndarray) -> dict[str, float]:
    """F1: skewness and std/mean of the number of samples per user."""
    v = np.asarray(samples, dtype=np.float64)
    return {"skewness": skewness(v), "cv": coefficient_of_variation(v), "min": float(v.min()),
            "max": float(v.max())}


def label_entropy(counts: np.ndarray) -> float:
    """Shannon entropy (nats) of a client's label counts (F2)."""
    c = np.asarray(counts, dtype=np.float64)
    p = c[c > 0] / c.sum() if c.sum() > 0 else np.zeros(0)
    return float(-np.sum(p * np.log(p)))


def label_skew_stats(counts: np.ndarray) -> dict[str, float]:
    """F2 on a (clients, classes) count matrix: mean label entropy and the median over clients of the share of
    samples in the client's two most frequent classes."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c.sum(axis=1) > 0]
    top2 = np.sort(c, axis=1)[:, -2:].sum(axis=1) / c.sum(axis=1)
    return {"mean_entropy": float(np.mean([label_entropy(r) for r in c])), "median_top2_share": float(np.median(top2)),
            "clients": float(c.shape[0])}


def task_cooccurrence(user_tasks: list[list[str]], tasks: list[str]) -> np.ndarray:
    """F4: (T, T) matrix, entry (i, j) = number of users doing both task i and task j (diagonal: users per task)."""
    m = np.zeros((len(tasks), len(tasks)), dtype=np.int64)
    pos = {t: k for k, t in enumerate(tasks)}
    for ts in user_tasks:
        idx = [pos[t] for t in set(ts) if t in pos]
        for a in idx:
            for b in idx:
                m[a, b] += 1
    return m


def episode_overlap_share(episodes_ns: np.ndarray, events_ns: np.ndarray, max_ns: int | None = None) -> float:
    """T3: share of the episodes (K, 2) [start, stop) (only those shorter than ``max_ns`` when given) that
    overlap at least one event interval (M, 2)."""
    ep = np.asarray(episodes_ns, dtype=np.int64).reshape(-1, 2)
    if max_ns is not None:
        ep = ep[(ep[:, 1] - ep[:, 0]) < max_ns]
    ev = np.asarray(events_ns, dtype=np.int64).reshape(-1, 2)
    if ep.size == 0:
        return float("nan")
    if ev.size == 0:
        return 0.0
    ev = ev[np.argsort(ev[:, 0])]
    stop_max = np.maximum.accumulate(ev[:, 1])
    i = np.searchsorted(ev[:, 0], ep[:, 1], side="left") - 1  # last event starting before the episode ends
    hit = (i >= 0) & (stop_max[np.clip(i, 0, None)] > ep[:, 0])
    return float(hit.mean())
