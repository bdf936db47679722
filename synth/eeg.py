"""Scalp EEG: 1/f background, alpha/theta/mu rhythms driven by the latent state, and coupled artifacts.

Mechanism (volts, ``sensor.rate_hz``, channels with 10-20/10-10 names):

* **Sources -> scalp.** Every channel has its own aperiodic source, Gaussian noise with a 1/f^chi power
  spectrum (chi = ``traits.aperiodic_exponent``; flat below 0.5 Hz like an amplifier high-pass, rolling off
  above 80 Hz) whose RMS follows ``traits.eeg_amplitude_uv``. Rhythms are a few narrow-band sources with
  fixed cortical positions: occipital/parietal alpha at ``traits.alpha_peak_hz``, frontal-midline theta
  (5.5-7 Hz), and left/right central mu rhythms. A volume-conduction mixing matrix (Gaussian in the distance
  between electrodes on the head sphere, rows of unit norm) spreads the aperiodic sources to neighbours, and
  broad topographies spread the rhythms, so neighbouring channels correlate. Everything is one matrix
  product (channels x sources) applied to FFT-shaped noise, block by block (einsum, so the bytes do not
  depend on BLAS threading).
* **State -> rhythms** (per segment, 0.5 s transitions): eyes closed multiplies posterior alpha power by a
  per-user reactivity of 3-6 (alpha blocking when the eyes open); cognitive load raises frontal-midline theta
  power (0.4 + 1.25 load; the theta peak 0.6-0.9 x the aperiodic PSD at load 0.3) and lowers alpha power
  (1.15 - k load, k 0.75-0.95 per user): at Fz / Pz, high vs low load gives theta x1.1-1.7 and alpha
  x0.6-0.8 (REALISM G4 asks +10-60 % / -10-50 %; toward the strong end so 2 s windows carry it); arousal
  lowers alpha a little; hand gestures desynchronise the mu rhythm (contralateral to the dominant hand more).
* **Artifacts from the other streams** (``Context``): blinks (``ctx.blinks``) add 90-160 uV positive
  deflections at Fp1/Fp2 decaying back over the scalp; gaze shifts (``ctx.gaze_shifts``) add horizontal /
  vertical EOG steps at F7/F8 and Fp1/Fp2 that relax with the amplifier's high-pass time constant (10 s by
  default, as the hardware high-pass of AC-coupled research amplifiers; DC-coupled ones keep the eye's position
  as long as it holds, consumer boards filtering at 0.1 Hz relax in 1.6 s), so while the eye dwells off
  centre the frontal channels carry its direction; jaw and face muscle activity
  (``ctx.muscle``, and ``ctx.speech`` talk spurts) adds 20-150 Hz EMG from temporalis/frontalis sources,
  strongest fronto-temporally; arousal adds tonic EMG; walking adds a gait-locked cable artifact; mains
  interference at ``traits.line_hz`` (and harmonics) when ``sensor.params["line_noise"]`` is on. If talking
  segments exist but no generator filled ``ctx.speech``, the talk spurts are planned here with the audio
  model (:func:`xrdata.synth.audio.plan_speech`).

Label imprints: cognitive_load (theta up at Fz/FCz, alpha down at Pz), rest eyes_closed/eyes_open (posterior
alpha), affect/arousal (tonic fronto-temporal EMG, less alpha), speech_command (EMG bursts at the command's
syllables), gesture (mu suppression over the motor cortex), gaze_selection (EOG steps toward the target, held
while the eye dwells there), activity walking (gait artifact). ``plan.eeg_worn`` False -> no stream.

Sensor params read: ``channels`` (count 8/16/32/64 or a comma-separated list of names; default 32),
``line_noise`` (on when 1/"on"/"true"; default off), ``line_noise_uv`` (RMS of the mains pickup, default 4 uV),
``highpass_tau_s`` (time constant of the amplifier high-pass the eye-position steps relax with, s; default 10),
``artifacts`` (0 turns blink/EOG/EMG/gait artifacts off; default on), ``reference`` (meta only, default
"linked_mastoids").
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from xrdata.model import Stream
from xrdata.synth.audio import ColoredNoise, plan_speech, sample_times_ns
from xrdata.synth.buffers import reusable_empty
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan

__all__ = ["MONTAGES", "channel_names", "electrode_positions", "generate_eeg"]

_log = logging.getLogger("xrdata.synth")

#: Default montages by channel count (32: the actiCAP/easycap standard layout).
MONTAGES: dict[int, tuple[str, ...]] = {
    8: ("Fp1", "Fp2", "Fz", "C3", "C4", "Pz", "O1", "O2"),
    16: ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "C4", "T8", "P3", "Pz", "P4", "O1", "O2"),
    32: (
        "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
        "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9", "O1", "Oz", "O2", "PO10",
    ),
    64: (
        "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6",
        "F8", "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "Cz", "C2",
        "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1",
        "Pz", "P2", "P4", "P6", "P8", "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz", "TP9", "TP10",
    ),
}

# Anterior-posterior angle (deg from the vertex along the midline, + = front) of each 10-10 row.
_ROWS = {"Fp": 72, "AF": 54, "F": 36, "FT": 18, "FC": 18, "T": 0, "C": 0, "TP": -18, "CP": -18, "P": -36,
         "PO": -54, "O": -72, "I": -90}
_NAME = re.compile(r"^(Fp|AF|FT|FC|TP|CP|PO|F|T|C|P|O|I)(z|\d+)$", re.IGNORECASE)


def channel_names(spec: float | str | int) -> list[str]:
    """Channel names from the ``channels`` sensor param: a count (8/16/32/64, others taken evenly from the
    64-channel montage) or a comma-separated list of 10-20/10-10 names."""
    if isinstance(spec, str) and not spec.strip().isdigit():
        names = [c.strip() for c in spec.split(",") if c.strip()]
        electrode_positions(names)  # raises on unknown names
        return names
    n = int(float(spec))
    if n in MONTAGES:
        return list(MONTAGES[n])
    full = MONTAGES[64]
    if not 1 <= n <= len(full):
        raise ValueError(f"EEG channel count must be 1-{len(full)} (or a list of names), got {n}")
    return [full[i] for i in np.linspace(0, len(full) - 1, n).round().astype(int)]


def electrode_positions(names: list[str]) -> np.ndarray:
    """Unit vectors (C, 3) of electrodes on a spherical head: x right, y anterior (nose), z up (vertex).

    Derived from the 10-10 name: the row gives the anterior-posterior angle, the number the lateral angle
    (18 deg per step, odd = left, even = right, z = midline). Mastoids/ears (M1/M2/A1/A2) sit below T7/T8.
    """
    pos = []
    for name in names:
        key = name.upper()
        if key in ("M1", "M2", "A1", "A2"):
            ap, lat = -15.0, (-100.0 if key in ("M1", "A1") else 100.0)
        else:
            m = _NAME.match(name)
            if m is None:
                raise ValueError(f"unknown EEG electrode name {name!r}: use 10-20/10-10 names such as 'Fz', 'O1'")
            row = next(r for r in _ROWS if r.upper() == m.group(1).upper())
            ap = float(_ROWS[row])
            num = m.group(2)
            lat = 0.0 if num.lower() == "z" else float(-(-int(num) // 2) * 18 * (-1 if int(num) % 2 else 1))
        polar = np.radians(np.hypot(ap, lat))
        azim = np.arctan2(ap, lat)
        pos.append([np.sin(polar) * np.cos(azim), np.sin(polar) * np.sin(azim), np.cos(polar)])
    return np.array(pos)


@cache
def _pos(name: str) -> np.ndarray:
    return electrode_positions([name])[0]


def _topo(pos: np.ndarray, centre: np.ndarray, width: float) -> np.ndarray:
    d2 = np.sum((pos - centre) ** 2, axis=1)
    return np.exp(-d2 / (2 * width * width))


def _user_eeg(key: str) -> dict[str, float]:
    """Stable per-user EEG latents (seeded by the user's key, ``UserTraits.key``, so they hold across sessions)."""
    r = np.random.default_rng(zlib.crc32(f"eeg:{key}".encode()))
    return {
        "alpha_height": float(np.clip(3.0 * r.lognormal(0, 0.2), 2.0, 5.0)),  # EO peak / aperiodic at the peak
        "alpha_reactivity": float(r.uniform(3.0, 6.0)),  # EC/EO alpha power
        "alpha_load_k": float(r.uniform(0.75, 0.95)),
        "theta_height": float(r.uniform(0.6, 0.9)),
        "theta_hz": float(r.uniform(5.5, 6.8)),
        "mu_height": float(r.uniform(1.0, 2.5)),
        "emg_uv": float(20.0 * r.lognormal(0, 0.25)),
        "blink_uv": float(r.uniform(90, 160)),
    }


def _flag(value: float | str | None, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "on", "true", "yes")
    return bool(value)


class _Gains:
    """Per-segment gains of several sources with linear transitions of ``ramp`` s at segment edges."""

    def __init__(self, plan: SessionPlan, values: np.ndarray, default: np.ndarray, ramp: float) -> None:
        kt: list[float] = []
        kv: list[np.ndarray] = []
        prev = 0.0
        for seg, v in zip(plan.segments, values, strict=True):
            a, b = seg.start_ns / 1e9, seg.stop_ns / 1e9
            if a > prev + ramp:  # a gap between segments takes the default
                kt += [prev + ramp / 2, a - ramp / 2]
                kv += [default, default]
            h = min(ramp / 2, (b - a) / 2)
            kt += [a + h, b - h]
            kv += [v, v]
            prev = b
        self.kt = np.array(kt) if kt else np.array([0.0])
        self.kv = np.array(kv) if kv else default[None, :]
        self.kv_t = np.ascontiguousarray(self.kv.T, dtype=np.float32)  # (sources, knots)
        # a block's lookups go through bisect on lists: numpy's per-call cost was most of this class's time
        self._kt = self.kt.tolist()
        self._flat = [True, *np.all(self.kv[1:] == self.kv[:-1], axis=1).tolist(), True]  # knots i-1, i equal

    def at(self, a: int, b: int, fs: float) -> np.ndarray:
        """Gains for samples [a, b): (S,) when constant over the block, else (S, b - a)."""
        i, j = bisect_right(self._kt, a / fs), bisect_right(self._kt, (b - 1) / fs)
        if i == j and self._flat[i]:
            return np.asarray(self.kv[min(max(i - 1, 0), self.kt.size - 1)], dtype=np.float64)
        # np.interp of every source at once, one blend per knot interval the block spans; knots i..j-1 lie
        # inside the block, and the interval index steps up at the first sample at or after each
        t = np.arange(a, b) / fs
        cuts = [0, *np.searchsorted(t, self.kt[i:j], side="left").tolist(), b - a]
        out = np.empty((self.kv_t.shape[0], b - a), np.float32)
        last = self.kt.size - 1
        for m, (i0, i1) in enumerate(pairwise(cuts)):
            if i1 > i0:
                k = min(max(i + m, 1), last)
                t0, t1 = self.kt[k - 1], self.kt[k]
                w = np.clip((t[i0:i1] - t0) / max(t1 - t0, 1e-12), 0.0, 1.0).astype(np.float32)
                v0, v1 = self.kv_t[:, k - 1, None], self.kv_t[:, k, None]
                out[:, i0:i1] = v0 + (v1 - v0) * w
        return out


def _interval_envelope(
    intervals_ns: np.ndarray, n: int, fs: float, weights: np.ndarray, smooth_s: float = 0.02
) -> np.ndarray:
    """Sum of weighted boxcars over [start, stop) intervals, smoothed by a ``smooth_s`` moving average."""
    env = np.zeros(n + 1)
    if len(intervals_ns):
        iv = np.clip(np.round(np.asarray(intervals_ns, dtype=np.float64) / 1e9 * fs).astype(np.int64), 0, n)
        np.add.at(env, iv[:, 0], weights)
        np.add.at(env, iv[:, 1], -weights)
    np.cumsum(env, out=env)
    k = max(1, round(smooth_s * fs))
    c = np.empty(n + 1)
    c[0] = 0.0
    np.cumsum(env[:n], out=c[1:])
    sm = np.empty(n)  # (c[min(i + k, n)] - c[i]) / k, in place
    m = max(0, n - k + 1)
    np.subtract(c[k:], c[:m], out=sm[:m])
    np.subtract(c[n], c[m:n], out=sm[m:])
    sm /= k
    return np.maximum(sm, 0.0, out=sm).astype(np.float32)


def _blink_track(blinks_ns: np.ndarray, n: int, fs: float, amp_uv: float, rng: np.random.Generator) -> np.ndarray:
    """Vertical EOG of blinks (uV at Fp1/Fp2): a fast rise and slower fall lasting the lid closure + 150 ms."""
    out = np.zeros(n)
    if len(blinks_ns) == 0:
        return out.astype(np.float32)
    b = np.asarray(blinks_ns, dtype=np.float64).reshape(-1, 2) / 1e9
    s = np.round(b[:, 0] * fs).astype(np.int64)
    L = np.maximum(2, np.round((b[:, 1] - b[:, 0] + 0.15) * fs).astype(np.int64))
    keep = (s >= 0) & (s < n)
    s, L = s[keep], np.minimum(L[keep], n - s[keep])
    a = amp_uv * rng.lognormal(0, 0.15, s.size)
    owner = np.repeat(np.arange(s.size), L)
    u = (np.arange(owner.size) - np.repeat(np.cumsum(L) - L, L)) / L[owner]
    shape = np.where(u < 0.35, 0.5 - 0.5 * np.cos(np.pi * u / 0.35), 0.5 + 0.5 * np.cos(np.pi * (u - 0.35) / 0.65))
    out += np.bincount(s[owner] + (u * L[owner]).astype(np.int64), weights=a[owner] * shape, minlength=n)[:n]
    return out.astype(np.float32)


def _eog_steps(times_ns: np.ndarray, steps: np.ndarray, n: int, fs: float, tau_s: float) -> np.ndarray:
    """Eye-position steps seen through the amplifier high-pass: each step relaxes with ``tau_s``."""
    from scipy.signal import lfilter

    imp = np.zeros(n)
    if len(times_ns):
        i = np.round(np.asarray(times_ns, dtype=np.float64) / 1e9 * fs).astype(np.int64)
        ok = (i >= 0) & (i < n)
        np.add.at(imp, i[ok], np.asarray(steps, dtype=np.float64)[ok])
    p = np.exp(-1.0 / (tau_s * fs))
    # the high-pass (1 - z^-1) / (1 - p z^-1) of the position cumsum(imp) is 1 / (1 - p z^-1) of imp itself
    y: np.ndarray = lfilter([1.0], [1.0, -p], imp)
    return y.astype(np.float32)


@cache
def _blas() -> ThreadpoolController:
    """This process's BLAS libraries (found once: a lookup costs ~0.3 ms, a limit through it ~5 us)."""
    return ThreadpoolController()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS limited to one thread: OpenBLAS's float32 products differ in the last bit between thread counts,
    and the bytes must not depend on the machine's core count. The limit is process-wide, and OpenBLAS
    ignores it from a thread other than the main one once the main thread has set it: then a warning."""
    ctl = _blas()
    with ctl.limit(limits=1, user_api="blas"):
        if any(lib.num_threads != 1 for lib in ctl.select(user_api="blas").lib_controllers):
            _warn_unpinned()
        yield


@cache
def _warn_unpinned() -> None:
    _log.warning("BLAS could not be limited to one thread here (a worker thread?): the EEG bytes may differ "
                 "from a run on another number of cores; run workers as processes, or with "
                 "OPENBLAS_NUM_THREADS=1, for byte-identical output")


def _line_rows(line_hz: float, fs: float, n: int, block: int) -> tuple[np.ndarray, int]:
    """Mains rows (cos and sin of the fundamental and, below Nyquist, of the 3rd harmonic) as ``(table, P)``:
    samples [a, a + block) of the session are ``table[:, a % P : a % P + block]`` (table float32, shape
    (rows, P + block)). P = fs / gcd(line_hz, fs) samples, one period, when both are whole numbers of Hz;
    else the whole session (P = n)."""
    whole = float(line_hz).is_integer() and float(fs).is_integer()
    period = int(fs) // math.gcd(int(line_hz), int(fs)) if whole else n
    wl = 2 * np.pi * line_hz * (np.arange(period + block) % period) / fs
    harmonics = [1, 3] if 3 * line_hz < fs / 2 else [1]
    return np.array([f(h * wl) for h in harmonics for f in (np.cos, np.sin)], np.float32), period


def generate_eeg(plan: SessionPlan, sensor: SensorSpec, rng: np.random.Generator, ctx: Context) -> ModalityOutput:
    """EEG of one session (see the module docstring for the model); no stream when ``plan.eeg_worn`` is False.

    Truth: the configured aperiodic exponent, alpha/theta peak frequencies, per-user rhythm parameters,
    electrode positions and the artifact intervals used.
    """
    if not plan.eeg_worn:
        return ModalityOutput(streams=[], truth={"eeg_worn": False})
    fs = float(sensor.rate_hz)
    params = sensor.params
    names = channel_names(params.get("channels", 32))
    pos = electrode_positions(names)
    nch = len(names)
    n = round(plan.duration_s * fs)
    traits = plan.user
    u = _user_eeg(traits.key)
    artifacts = _flag(params.get("artifacts"), True)
    line_on = _flag(params.get("line_noise"), False)
    tau = float(params.get("highpass_tau_s", 10.0))
    chi = float(traits.aperiodic_exponent)
    f_alpha = float(traits.alpha_peak_hz)
    f_theta = u["theta_hz"]
    amp = float(traits.eeg_amplitude_uv) * 1e-6

    if artifacts and any(s.talking for s in plan.segments) and len(ctx.speech) == 0:
        plan_speech(plan, np.random.default_rng(int(rng.integers(1 << 62))), ctx)

    # --- sources: rows of FFT-shaped noise with unit variance
    # aperiodic (nch), alpha O1/O2/Pz (3), theta (1), mu C3/C4 (2), EMG L/R temporal + frontal (3)
    osc_f = np.array([f_alpha - 0.15, f_alpha + 0.15, f_alpha, f_theta, f_alpha + 1.0, f_alpha + 1.2])
    osc_sd = np.array([0.7, 0.7, 0.8, 0.9, 0.8, 0.8])
    chi_ch = chi + rng.normal(0.0, 0.02, nch)
    f_hi = min(80.0, 0.4 * fs)

    def psd(f: np.ndarray) -> np.ndarray:
        log_f = np.log(np.maximum(f, 0.5))
        ap = np.exp(-chi_ch[:, None] * log_f[None, :]) / (1 + (f[None, :] / f_hi) ** 6)  # exp-log: 5x pow's speed
        osc = np.exp(-((f[None, :] - osc_f[:, None]) ** 2) / (2 * osc_sd[:, None] ** 2))
        emg = ((f / 25.0) ** 4 / (1 + (f / 25.0) ** 4) / (1 + (f / min(150.0, 0.45 * fs)) ** 8))[None, :]
        rows = np.vstack([ap, osc, np.repeat(emg, 3, axis=0)])
        df = f[1] - f[0]
        return np.asarray(rows / (rows[:, 1:-1].sum(axis=1, keepdims=True) * df))

    n_fft_rows = nch + 6 + 3
    noise = ColoredNoise(rng, psd, n_fft_rows, fs, n, block=1 << 14, overlap=256)

    # --- mixing matrix W (channels x sources) in volts
    d2 = np.sum((pos[:, None, :] - pos[None, :, :]) ** 2, axis=2)
    mix = np.exp(-d2 / (2 * 0.3**2))
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    ch_gain = rng.lognormal(0.0, 0.08, nch)  # skull thickness / impedance differences
    w_ap = mix * (amp * ch_gain)[:, None]
    # rhythm amplitudes: peak height h over the aperiodic PSD at the peak frequency, at the source position
    f_grid = np.linspace(0.0, fs / 2, 4097)
    ap_unit = np.maximum(f_grid, 0.5) ** (-chi) / (1 + (f_grid / f_hi) ** 6)
    ap_unit /= np.sum(ap_unit[1:-1]) * (f_grid[1] - f_grid[0])

    def rhythm_amp(height: float, fc: float, sd: float) -> float:
        return float(amp * np.sqrt(height * np.interp(fc, f_grid, ap_unit) * sd * np.sqrt(2 * np.pi)))

    src_pos = [_pos("O1"), _pos("O2"), 0.5 * (_pos("Pz") + _pos("POz")), 0.5 * (_pos("Fz") + _pos("FCz")),
               _pos("C3"), _pos("C4")]
    widths = [0.45, 0.45, 0.45, 0.4, 0.3, 0.3]
    topo = np.stack([_topo(pos, c, w) for c, w in zip(src_pos, widths, strict=True)], axis=1)
    # normalise the three alpha sources so the eyes-open alpha at O1 has the user's height
    alpha_w = np.array([1.0, 1.0, 1.0])
    at_o1 = np.array([_topo(_pos("O1")[None, :], c, w)[0] for c, w in zip(src_pos[:3], widths[:3], strict=True)])
    a_alpha = rhythm_amp(u["alpha_height"], f_alpha, 0.7) / np.sqrt(np.sum((at_o1 * alpha_w) ** 2))
    osc_amp = np.array([*(a_alpha * alpha_w), rhythm_amp(u["theta_height"], f_theta, 0.9),
                        rhythm_amp(u["mu_height"], f_alpha + 1, 0.8), rhythm_amp(u["mu_height"], f_alpha + 1.2, 0.8)])
    w_osc = topo * osc_amp[None, :] * ch_gain[:, None]
    emg_src = [0.5 * (_pos("T7") + _pos("FT7")), 0.5 * (_pos("T8") + _pos("FT8")), 0.5 * (_pos("Fp1") + _pos("Fp2"))]
    emg_amp = u["emg_uv"] * 1e-6 * np.array([1.0, 1.0, 0.6])
    w_emg = np.stack([_topo(pos, c, 0.28) for c in emg_src], axis=1) * emg_amp[None, :]
    # EOG: blink (row in uV), horizontal and vertical eye position (rows in deg)
    ap_deg = np.degrees(np.arcsin(np.clip(pos[:, 1], -1, 1)))
    w_blink = np.clip(np.exp((ap_deg - 72.0) / 25.0), 0, 1.0) * 1e-6
    frontal = np.clip(np.exp((ap_deg - 72.0) / 30.0), 0, 1.0)
    # horizontal EOG: each eye's corneo-retinal dipole seen from its outer canthus (8.3 uV/deg there, ~16 uV/deg
    # canthus to canthus as bipolar HEOG measures) and spreading over the scalp: ~3 uV/deg at F7/F8 with opposite
    # polarities (right gaze -> F8 positive), ~1 at Fp1/Fp2, none on the midline
    canthus = np.array([0.69, 0.58, -0.42])  # azimuth 50 deg off the nose, 25 deg below the Fpz-T8 circumference
    w_heog = np.sign(pos[:, 0]) * _topo(np.column_stack([np.abs(pos[:, 0]), pos[:, 1:]]), canthus, 0.45) * 8.3e-6
    w_veog = frontal * 3e-6
    w_gait = rng.uniform(0.5, 1.5, nch) * 4e-6
    line_amp = float(params.get("line_noise_uv", 4.0)) * 1e-6 * np.sqrt(2) * rng.lognormal(0, 0.4, nch)
    line_ph = rng.uniform(0, 2 * np.pi, nch)
    w_line = np.stack([line_amp * np.cos(line_ph), line_amp * np.sin(line_ph),
                       0.2 * line_amp * np.cos(2 * line_ph), 0.2 * line_amp * np.sin(2 * line_ph)], axis=1)
    W_ap, W_osc, W_emg = (w.astype(np.float32) for w in (w_ap, w_osc, w_emg))
    gait_phase = float(rng.uniform(0, 2 * np.pi))

    # --- state: amplitude gains per rhythm source (per segment, ramps between), artifact time courses
    segs = plan.segments
    load = np.array([s.load for s in segs])
    arousal = np.array([s.arousal for s in segs])
    closed = np.array([s.eyes_closed for s in segs], float)
    gesture = np.array([s.task == "gesture" for s in segs], float)
    walking = np.array([s.activity in ("walking", "running") for s in segs], float)
    k = u["alpha_load_k"]
    alpha_pow = (1 + (u["alpha_reactivity"] - 1) * closed) * (1.15 - k * load) / (1.15 - k * 0.3) \
        * (1 - 0.3 * np.clip(arousal - 0.3, 0, None))
    theta_pow = (0.4 + 1.25 * load) / (0.4 + 1.25 * 0.3)
    mu_contra, mu_ipsi = 1 - 0.7 * gesture, 1 - 0.4 * gesture
    mu_left, mu_right = (mu_ipsi, mu_contra) if traits.handedness == "left" else (mu_contra, mu_ipsi)
    tonic = 0.35 * np.clip((arousal - 0.3) / 0.6, 0, 1) if artifacts else np.zeros(len(segs))
    gains = _Gains(plan, np.stack([
        np.sqrt(alpha_pow), np.sqrt(alpha_pow), np.sqrt(alpha_pow), np.sqrt(theta_pow), np.sqrt(mu_left),
        np.sqrt(mu_right), tonic, walking if artifacts else np.zeros(len(segs)),
    ], axis=1), np.array([1, 1, 1, 1, 1, 1, 0, 0], float), ramp=0.5)
    extra: list[tuple[np.ndarray, np.ndarray]] = []  # (W columns, full-length rows) of sparse artifacts
    muscle = np.empty((0, 2), np.int64)
    emg_env = None
    if artifacts:
        speech_iv = np.asarray(ctx.speech, np.int64).reshape(-1, 2)
        muscle = np.concatenate([np.asarray(ctx.muscle, np.int64).reshape(-1, 2), speech_iv])
        if len(muscle):
            w_burst = np.concatenate([rng.lognormal(0, 0.3, len(ctx.muscle)), np.full(len(speech_iv), 0.35)])
            emg_env = _interval_envelope(muscle, n, fs, w_burst)
        if len(ctx.blinks):
            extra.append((w_blink[:, None].astype(np.float32),
                          _blink_track(ctx.blinks, n, fs, u["blink_uv"], rng)[None, :]))
        shifts = np.asarray(ctx.gaze_shifts, dtype=np.float64).reshape(-1, 3)
        if len(shifts):  # gaze to the right (negative yaw) -> F8 positive; up -> Fp positive
            eog = np.stack([_eog_steps(shifts[:, 0], -shifts[:, 1], n, fs, tau),
                            _eog_steps(shifts[:, 0], shifts[:, 2], n, fs, tau)])
            extra.append((np.stack([w_heog, w_veog], axis=1).astype(np.float32), eog))

    # --- assemble block by block: (sources x block), then one matrix product per block, written as samples
    # x channels, with BLAS pinned to one thread (~8x faster than einsum).
    data = reusable_empty("eeg", (n, nch), np.float32)  # every sample is written below
    chunk = 4096
    lines, period = _line_rows(float(traits.line_hz), fs, n, chunk) if line_on else (None, 1)
    w_gait32 = w_gait[:, None].astype(np.float32)
    w_line32 = w_line[:, : len(lines) if lines is not None else 0].astype(np.float32)
    with _one_blas_thread():
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            src = noise.next(b - a)
            g = gains.at(a, b, fs)
            rows: list[np.ndarray] = [src[:nch]]
            mats: list[np.ndarray] = [W_ap]
            if isinstance(g, np.ndarray) and g.ndim == 2:  # a state transition inside the block
                rows.append(src[nch : nch + 6] * g[:6])
                mats.append(W_osc)
                emg_g = g[6]
                gait_g: np.ndarray | float = g[7]
            else:  # constant state: scale the mixing columns instead of the samples
                gv = np.asarray(g)
                rows.append(src[nch : nch + 6])
                mats.append(W_osc * gv[:6].astype(np.float32))
                emg_g, gait_g = float(gv[6]), float(gv[7])
            env = emg_env[a:b] if emg_env is not None else None
            if env is not None and env.any():
                rows.append(src[nch + 6 : nch + 9] * (env + emg_g))
                mats.append(W_emg)
            elif np.any(emg_g):
                rows.append(src[nch + 6 : nch + 9] * emg_g)
                mats.append(W_emg)
            for w_cols, full in extra:
                part = full[:, a:b]
                if part.any():
                    rows.append(part)
                    mats.append(w_cols)
            if np.any(gait_g):
                ph = 2 * np.pi * 1.9 * np.arange(a, b) / fs + gait_phase
                rows.append(((np.sin(ph) + 0.4 * np.sin(2 * ph)) * gait_g).astype(np.float32)[None, :])
                mats.append(w_gait32)
            if lines is not None:
                rows.append(lines[:, a % period : a % period + b - a])
                mats.append(w_line32)
            R = np.concatenate(rows, axis=0) if len(rows) > 1 else rows[0]
            Wc = np.hstack(mats)  # all float32
            np.matmul(R.T, Wc.T, out=data[a:b])

    meta: dict[str, Any] = {
        "reference": str(params.get("reference", "linked_mastoids")), "montage": "10-10", "synthetic": True,
        "line_noise": line_on, "highpass_tau_s": tau,
    }
    stream = Stream("eeg", "eeg", sample_times_ns(n, fs), data, names, ["V"] * nch, rate_hz=fs, meta=meta)
    truth: dict[str, Any] = {
        "aperiodic_exponent": chi, "alpha_peak_hz": f_alpha, "theta_peak_hz": f_theta,
        "eeg_amplitude_uv": float(traits.eeg_amplitude_uv), "line_hz": float(traits.line_hz) if line_on else None,
        "user_latents": u, "artifacts": artifacts, "n_blinks": len(ctx.blinks), "n_muscle": len(muscle),
        "channel_positions": pos.round(4).tolist(),
    }
    return ModalityOutput(streams=[stream], truth=truth)
