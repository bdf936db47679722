"""Speech-like audio: source-filter voices, turn-taking, spoken commands, hand claps and room noise.

Mechanism (one mono microphone on the headset, float32 full scale, ``sensor.rate_hz``, 16 kHz by default):

* **Who speaks when.** Talking segments (``Segment.talking``) hold either a dyadic conversation between the
  user and a partner (alternating turns, each turn a run of log-normal talk spurts separated by pauses,
  turn-switch gaps that may overlap, rare backchannels; Brady-style on-off patterns) or, in
  ``speech_command`` segments, the user speaking the segment's command word every few seconds. The user's talk
  spurts are written to ``ctx.speech`` (unless an earlier generator filled it, in which case those spurts are
  voiced) and the jaw-opening vowel nuclei of every user syllable are appended to ``ctx.muscle`` so the EEG
  generator sees the matching EMG bursts. The whole plan is kept in ``ctx.voice``: the session generator
  plans speech before any stream (with the audio generator's random stream), so the head's IMU can carry
  the user's voice as skull vibration (:func:`bone_vibration`, opt-in).
* **What speech sounds like.** Each spurt is a string of syllables (onset consonant, vowel, optional coda) at
  3-6 syllables/s. Voiced phones are a glottal pulse train at f0 (``traits.voice_f0_hz``; per-phone contour
  with declination, pitch accents on stressed syllables, jitter and shimmer) through a critically damped
  glottal low-pass and spectral tilt set by the voice quality (lax, modal or tense with arousal), a cascade of
  five formant resonators (Peterson & Barney vowels, scaled by a vocal-tract factor that follows f0, so low
  voices are darker) and lip radiation; fricatives and plosive bursts are band-passed noise. Filtering is
  done once per (speaker, phone, voice quality) on the gathered samples, so the synthesis is vectorised.
* **Levels.** Room noise at ``plan.room_noise_dba`` (pink-ish spectrum with mains hum, calibrated
  A-weighted) plus the microphone's self-noise; the user's speech level at the microphone rises with the noise
  (Lombard effect, 0.6 dB/dB above 45 dBA, Pearsons et al. 1977) and with arousal, which gives per-session
  SNRs of about 10-32 dB over 30-65 dBA rooms. 0 dBFS (a full-scale sine) is ``dbspl_full_scale`` dB SPL.

Label imprints:

* ``speech_command``: each command is its own phone string (e.g. "select" = s@.lEkt, "back" = baek), so its
  duration, syllable count, formant and fricative pattern and f0 contour differ per class; unknown labels get a
  stable pseudo-word derived from the label. The same syllables drive the EMG bursts in the EEG (ctx.muscle)
  and, where the IMU's ``voice_vibration_ms2`` is set, the voice's vibration in the IMU (folded formants
  below its Nyquist).
* ``affect``/arousal: higher and more variable f0, louder and tenser voice (flatter spectral tilt, higher
  spectral centroid), faster syllables; EEG sees more tonic EMG.
* ``gesture`` clap: each meeting of the palms (:func:`xrdata.synth.hand.clap_contacts_s`) is a clap, a
  band-passed noise burst (``CLAP_PEAK_DBSPL``), drawn from its own random stream; times in truth ``claps_s``.
* talking vs not (any task): voice activity, turn-taking; EEG EMG and the eye generator's blink rate follow.

Sensor params read: ``dbspl_full_scale`` (dB SPL of a full-scale sine, default 110), ``self_noise_dba``
(microphone self-noise, default 33 dBA), ``speech_level_db`` (the user's normal-effort speech level at the
microphone in quiet, dB SPL, default 67; with the Lombard rise this keeps the SNR in 5-35 dB over 30-65 dBA
rooms). One mono channel is generated whatever the microphone count. The partner is 10 dB quieter and duller
(across the room).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from xrdata.model import Stream
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan

__all__ = [
    "COMMANDS",
    "ColoredNoise",
    "a_weighting_power",
    "bone_vibration",
    "command_phones",
    "gaussian_noise",
    "generate_audio",
    "plan_speech",
    "sample_times_ns",
]

# --------------------------------------------------------------------------------------------------------
# fast noise shared by the signal generators


@cache
def _normal_table() -> np.ndarray:
    from scipy.special import ndtri

    t = ndtri((np.arange(65536) + 0.5) / 65536.0)
    t /= np.sqrt(np.mean(t * t))
    return t.astype(np.float32)


def gaussian_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` standard-normal float32 values, about 4x faster than ``rng.standard_normal``.

    Each value is the normal quantile of 16 random bits (65536 equiprobable levels, tails cut at 4.3 sigma,
    unit variance), which is indistinguishable from Gaussian sensor noise and deterministic given ``rng``.
    """
    n = int(n)
    # the 32-bit words rng.bytes(2 * n) would draw, read as little-endian 16-bit halves: the same values,
    # without its three copies (astype, tobytes, the slice)
    words = rng.integers(0, 1 << 32, size=(2 * n - 1) // 4 + 1 if n else 0, dtype=np.uint32)
    out = np.empty(n, np.float32)
    _lookup(_normal_table(), words.astype("<u4", copy=False).view("<u2")[:n], out)
    return out


def _lookup(table: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = table[idx]`` for 16-bit indices into a 65536-entry table, in pieces: np.take converts its
    indices to intp first, and in pieces that copy stays in cache instead of being a temporary twice the size
    of the output; mode="wrap" (the indices are all valid) skips the buffered out."""
    step = 1 << 16
    for i in range(0, idx.size, step):
        np.take(table, idx[i : i + step], out=out[i : i + step], mode="wrap")


@cache
def _complex_normal_table() -> np.ndarray:
    """65536 complex64 values: every (real, imaginary) pair of 256 equiprobable unit-variance normal levels."""
    from scipy.special import ndtri

    t = ndtri((np.arange(256) + 0.5) / 256.0)
    t /= np.sqrt(np.mean(t * t))
    i = np.arange(65536)
    return (t[i & 255] + 1j * t[i >> 8]).astype(np.complex64)


def _complex_gaussian(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill the contiguous complex64 array ``out`` with independent unit-variance parts (E|z|^2 = 2), one
    16-bit draw and one table lookup per value: half of :func:`gaussian_noise`'s work per real value.

    Meant for spectral coefficients only: 256 levels per part (tails at 2.9 sigma) are coarse for a sample,
    but each time-domain sample of an inverse FFT sums thousands of coefficients and is Gaussian anyway.
    """
    if not out.flags.c_contiguous:  # reshape would copy, and the draws would be lost
        raise ValueError("_complex_gaussian fills a C-contiguous array")
    flat = out.reshape(-1)
    # the generator's raw 64-bit outputs, 4 indices each (~1.7x rng.integers' speed for the same bits)
    words = rng.bit_generator.random_raw((flat.size + 3) // 4)
    _lookup(_complex_normal_table(), words.astype("<u8", copy=False).view("<u2")[: flat.size], flat)


class ColoredNoise:
    """Stationary Gaussian noise with a given one-sided PSD per row, streamed in blocks of any length.

    Each block is shaped in the frequency domain (complex Gaussian spectrum times sqrt(PSD), one inverse FFT,
    many blocks per call) and consecutive blocks are joined with an equal-power crossfade, which keeps the
    variance and the spectrum (above fs/overlap) of the process.

    Args:
        rng: the generator the noise is drawn from.
        psd: function of the rfft bin frequencies (Hz, shape (F,)) returning the one-sided PSD per row,
            shape (rows, F) or (F,), in units^2/Hz.
        rows: number of independent rows.
        fs: sampling rate in Hz.
        n_total: how many samples will be asked for in all (short requests use short blocks).
        block: FFT length; overlap: crossfade length in samples.
    """

    def __init__(
        self, rng: np.random.Generator, psd: Callable[[np.ndarray], np.ndarray], rows: int, fs: float,
        n_total: int, block: int = 1 << 14, overlap: int = 512,
    ) -> None:
        block = int(min(block, max(1 << 10, 1 << int(np.ceil(np.log2(n_total + overlap + 1))))))
        overlap = min(overlap, block // 4)
        self.rng, self.rows, self.block, self.overlap = rng, rows, block, overlap
        freqs = np.fft.rfftfreq(block, 1.0 / fs)
        p = np.broadcast_to(np.asarray(psd(freqs), dtype=np.float64), (rows, freqs.size)).copy()
        p[:, 0] = 0.0
        p[:, -1] = 0.0
        # E|X_k|^2 = P_k fs B / 2 gives variance sum_k P_k df; the complex draws below have E|g|^2 = 2.
        # per (real, imaginary) float of the coefficients: a float32 product, ~1.5x a complex-by-real one
        self.amp2 = np.repeat(np.sqrt(p * fs * block / 4.0).astype(np.float32), 2, axis=1)
        ramp = (np.arange(overlap) + 0.5) / overlap * (np.pi / 2)
        self.fade_in = np.sin(ramp).astype(np.float32)
        self.fade_out = np.cos(ramp).astype(np.float32)
        self.buf = np.empty((rows, 0), np.float32)
        self.tail: np.ndarray | None = None

    def _blocks(self, m: int, out: np.ndarray) -> None:
        """``m`` new hops of noise written into ``out`` (rows, m * hop)."""
        from scipy import fft as sfft

        rows, nb, hop, ov = self.rows, self.amp2.shape[1] // 2, self.block - self.overlap, self.overlap
        spec = np.empty((m, rows, nb), np.complex64)
        for k in range(m):  # one draw per block: a block's values do not depend on how many come per call
            _complex_gaussian(self.rng, spec[k])
        parts = spec.view(np.float32).reshape(m, rows, 2 * nb)
        parts *= self.amp2
        x: np.ndarray = sfft.irfft(spec, n=self.block, axis=2)  # (m, rows, block)
        if self.tail is None:  # the very first block has nothing to fade from
            x[1:, :, :ov] = x[1:, :, :ov] * self.fade_in + x[:-1, :, hop:] * self.fade_out
        else:
            prev = np.concatenate([self.tail[None], x[:-1, :, hop:]])
            x[:, :, :ov] = x[:, :, :ov] * self.fade_in + prev * self.fade_out
        self.tail = x[-1, :, hop:].copy()
        out.reshape(rows, m, hop)[:] = x[:, :, :hop].transpose(1, 0, 2)

    def next(self, n: int) -> np.ndarray:
        """The next ``n`` samples, shape (rows, n), float32 (not shared with later calls)."""
        hop = self.block - self.overlap
        have = self.buf.shape[1]
        need = n - have
        if need > 0:  # new hops go straight into one buffer after the samples left over
            per_call = max(1, (1 << 21) // (self.block * self.rows))
            allx = np.empty((self.rows, have + -(-need // hop) * hop), np.float32)
            allx[:, :have] = self.buf
            pos = have
            while need > 0:
                m = min(-(-need // hop), per_call)
                self._blocks(m, allx[:, pos : pos + m * hop])
                pos += m * hop
                need -= m * hop
        else:
            allx = self.buf
        out, self.buf = allx[:, :n], allx[:, n:]
        return out


def a_weighting_power(f: np.ndarray) -> np.ndarray:
    """IEC 61672 A-weighting as a power gain (1 at 1 kHz) at frequencies ``f`` in Hz."""
    f2 = np.asarray(f, dtype=np.float64) ** 2
    ra = (12194.0**2 * f2**2) / (
        (f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    )
    gain: np.ndarray = (ra * 10 ** (2.0 / 20)) ** 2
    return gain


# --------------------------------------------------------------------------------------------------------
# phones and words

# kind: "V" vowel, "N" sonorant (voiced, formants), "F" fricative (band noise), "P" plosive (closure + burst).
# V/N params: F1-F3 in Hz of an adult male voice (Peterson & Barney 1952; sonorants after Klatt 1980);
# F/P params: (band centre Hz, bandwidth Hz). amp: RMS relative to a vowel; dur: typical duration in s.
_PHONE_TABLE: tuple[tuple[str, str, tuple[float, ...], float, float], ...] = (
    ("i", "V", (270, 2290, 3010), 1.0, 0.12),
    ("I", "V", (390, 1990, 2550), 1.0, 0.09),
    ("e", "V", (480, 1900, 2500), 1.0, 0.13),
    ("E", "V", (530, 1840, 2480), 1.0, 0.11),
    ("ae", "V", (660, 1720, 2410), 1.0, 0.14),
    ("a", "V", (730, 1090, 2440), 1.0, 0.15),
    ("o", "V", (570, 840, 2410), 1.0, 0.14),
    ("u", "V", (300, 870, 2240), 1.0, 0.12),
    ("@", "V", (500, 1500, 2500), 0.8, 0.07),
    ("m", "N", (250, 1100, 2200), 0.3, 0.07),
    ("n", "N", (250, 1500, 2500), 0.3, 0.06),
    ("l", "N", (360, 1300, 2700), 0.45, 0.06),
    ("r", "N", (420, 1300, 1600), 0.45, 0.06),
    ("w", "N", (300, 700, 2200), 0.45, 0.06),
    ("j", "N", (270, 2200, 3000), 0.45, 0.05),
    ("s", "F", (5800, 3000), 0.25, 0.11),
    ("S", "F", (3300, 2000), 0.3, 0.11),
    ("f", "F", (4500, 6000), 0.07, 0.09),
    ("h", "F", (1600, 2400), 0.08, 0.06),
    ("p", "P", (900, 1200), 0.3, 0.075),
    ("t", "P", (4200, 3000), 0.35, 0.075),
    ("k", "P", (2200, 1500), 0.35, 0.08),
    ("b", "P", (700, 900), 0.15, 0.06),
    ("d", "P", (3600, 2500), 0.18, 0.06),
    ("g", "P", (1900, 1300), 0.18, 0.065),
)
PHONES: tuple[str, ...] = tuple(p[0] for p in _PHONE_TABLE)
_PID = {p: i for i, p in enumerate(PHONES)}
_KIND = np.array([p[1] for p in _PHONE_TABLE])
_AMP = np.array([p[3] for p in _PHONE_TABLE])
_DUR = np.array([p[4] for p in _PHONE_TABLE])
_VOICED = np.isin(_KIND, ("V", "N"))
_F45 = (3500.0, 4500.0)  # fixed fourth and fifth formants (male), Hz
_BW = (70.0, 90.0, 130.0, 200.0, 300.0)  # formant bandwidths, Hz

# Spoken commands: syllables of phones (the first syllable carries the stress) and the final f0 movement
# (negative = falling statement, positive = rising).
COMMANDS: dict[str, tuple[tuple[tuple[str, ...], ...], float]] = {
    "select": ((("s", "@"), ("l", "E", "k", "t")), -0.15),
    "back": ((("b", "ae", "k"),), -0.25),
    "open": ((("o",), ("p", "@", "n")), -0.2),
    "close": ((("k", "l", "o", "s"),), -0.1),
    "next": ((("n", "E", "k", "s", "t"),), 0.1),
    "stop": ((("s", "t", "a", "p"),), -0.3),
    "yes": ((("j", "E", "s"),), 0.15),
    "no": ((("n", "o"),), -0.25),
    "menu": ((("m", "E"), ("n", "u")), -0.1),
    "undo": ((("@", "n"), ("d", "u")), -0.2),
    "home": ((("h", "o", "m"),), -0.2),
    "cancel": ((("k", "ae", "n"), ("s", "@", "l")), -0.15),
}
_ONSETS = (None, "s", "t", "k", "p", "b", "d", "g", "m", "n", "l", "r", "w", "j", "f", "h", "S")
_ONSET_P = np.array([20, 8, 9, 7, 5, 4, 6, 3, 6, 8, 6, 6, 4, 2, 4, 4, 3], float)
_VOWELS = ("i", "I", "e", "E", "ae", "a", "o", "u", "@")
_VOWEL_P = np.array([10, 14, 8, 12, 8, 12, 8, 6, 22], float)
_CODAS = (None, "n", "t", "s", "k", "m", "l", "r", "d")
_CODA_P = np.array([45, 10, 10, 8, 5, 5, 6, 5, 6], float)


def command_phones(label: str) -> tuple[tuple[tuple[str, ...], ...], float]:
    """Syllables (tuples of phone names) and final f0 movement of a spoken command.

    Known commands come from :data:`COMMANDS`; any other label gets a stable pseudo-word of 1-3 syllables
    derived from the label text, so every class has its own learnable pattern.
    """
    if label in COMMANDS:
        return COMMANDS[label]
    r = np.random.default_rng(zlib.crc32(label.encode()))
    syllables = []
    for _ in range(int(r.integers(1, 4))):
        onset = _ONSETS[int(r.integers(1, len(_ONSETS)))]
        vowel = _VOWELS[int(r.integers(len(_VOWELS)))]
        coda = _CODAS[int(r.integers(len(_CODAS)))]
        syllables.append(tuple(p for p in (onset, vowel, coda) if p is not None))
    return tuple(syllables), float(r.uniform(-0.3, 0.15))


# --------------------------------------------------------------------------------------------------------
# the speech plan: who speaks when, and the phones


@dataclass
class SpeechPlan:
    """Talk spurts and phones of one session (times in seconds on the session clock).

    ``spurts``: (K, 3) start, stop, speaker (0 = user, 1 = partner); ``utterances``: (start, stop, label) of
    spoken commands; phone arrays are parallel, one entry per phone.
    """

    spurts: np.ndarray
    utterances: list[tuple[float, float, str]]
    speaker: np.ndarray  # int
    phone: np.ndarray  # int index into PHONES
    start: np.ndarray  # s
    dur: np.ndarray  # s
    amp: np.ndarray  # relative amplitude (stress, arousal effort)
    f0a: np.ndarray  # Hz at phone start
    f0b: np.ndarray  # Hz at phone end
    quality: np.ndarray  # voice quality from arousal: 0 lax, 1 modal, 2 tense (flatter spectral tilt)
    level_db: np.ndarray  # per phone, relative level in dB from arousal


def _segment_value(plan: SessionPlan, t_s: np.ndarray, attr: str, default: float) -> np.ndarray:
    idx = plan.segment_at(np.round(np.asarray(t_s) * 1e9).astype(np.int64))
    vals = np.array([float(getattr(s, attr)) for s in plan.segments] + [default])
    return vals[idx]


def _user_voice(plan: SessionPlan) -> dict[str, float]:
    """Stable per-user voice latents (seeded by ``UserTraits.key``, so they hold across sessions)."""
    r = np.random.default_rng(zlib.crc32(f"voice:{plan.user.key}".encode()))
    return {
        "level_db": float(r.normal(0.0, 1.0)),  # vocal effort of this person
        "rate": float(r.uniform(0.85, 1.15)),  # speaking-rate factor
        "accent": float(r.uniform(0.06, 0.14)),  # pitch-accent size
    }


def _dyad_spurts(rng: np.random.Generator, a: float, b: float, rate: float) -> list[tuple[float, float, int]]:
    """Conversation in [a, b): alternating turns made of talk spurts, as (start, stop, speaker)."""
    out: list[tuple[float, float, int]] = []
    t = a + float(rng.uniform(0.1, 0.6))
    spk = int(rng.integers(2))
    while t < b - 0.2:
        turn_end = t + float(rng.lognormal(np.log(2.8), 0.6))
        first = True
        while t < min(turn_end, b - 0.15) and (first or t < turn_end):
            first = False
            d = min(float(rng.lognormal(np.log(0.85 / rate), 0.6)), b - t)
            if d < 0.12:
                break
            out.append((t, t + d, spk))
            t += d
            if t >= turn_end:
                break
            t += 0.2 + float(rng.lognormal(np.log(0.25), 0.5))  # within-turn pause (>= 200 ms ends a spurt)
        if rng.random() < 0.12 and out:  # the listener's backchannel ("mm-hm") late in the turn
            s0, s1, _ = out[-1]
            bt = s0 + float(rng.uniform(0.3, 0.9)) * (s1 - s0)
            if bt + 0.2 < b:
                out.append((bt, min(b, bt + float(rng.uniform(0.2, 0.4))), 1 - spk))
        t += float(np.clip(rng.normal(0.25, 0.3), -0.3, 1.2))  # switching gap (negative = overlap)
        spk = 1 - spk
    return out


def plan_speech(plan: SessionPlan, rng: np.random.Generator, ctx: Context | None = None) -> SpeechPlan:
    """Plan the talk spurts, command utterances and phones of a session and fill ``ctx``.

    ``ctx.speech`` gets the user's talk spurts when empty (otherwise its spurts are voiced) and the user's
    vowel nuclei are appended to ``ctx.muscle`` (jaw EMG for the EEG generator).
    """
    voice = _user_voice(plan)
    given = ctx is not None and len(ctx.speech) > 0
    spurts: list[tuple[float, float, int]] = []
    decl_of: dict[int, float] = {}  # command spurt -> f0 declination (conversation spurts: 0.14)
    utterances: list[tuple[float, float, str]] = []
    cmd: dict[str, list[Any]] = {k: [] for k in ("phone", "start", "dur", "stress", "spurt")}
    for seg in plan.segments:
        if not seg.talking:
            continue
        a, b = seg.start_ns / 1e9, seg.stop_ns / 1e9
        rate = voice["rate"] * (1.0 + 0.25 * (seg.arousal - 0.3))
        if seg.task == "speech_command":  # the user says the segment's command every few seconds
            syllables, fall = command_phones(seg.label)
            t = a + float(rng.uniform(0.3, 1.0))
            while True:
                stretch = float(rng.lognormal(0.0, 0.08)) / rate
                phones = [(p, i) for i, syl in enumerate(syllables) for p in syl]
                durs = [
                    _DUR[_PID[p]] * stretch * float(rng.lognormal(0, 0.08))
                    * (1.25 if i == 0 and _KIND[_PID[p]] == "V" else 1.0)
                    for p, i in phones
                ]
                total = float(sum(durs))
                if t + total > b - 0.1:
                    break
                k = len(spurts)
                offsets = np.concatenate([[0.0], np.cumsum(durs)[:-1]])
                for (p, i), dd, o in zip(phones, durs, offsets, strict=True):
                    cmd["phone"].append(_PID[p])
                    cmd["start"].append(t + o)
                    cmd["dur"].append(dd)
                    cmd["stress"].append(i == 0)
                    cmd["spurt"].append(k)
                spurts.append((t, t + total, 0))
                decl_of[k] = -fall
                utterances.append((t, t + total, seg.label))
                t += total + float(rng.uniform(1.2, 2.6))
        elif not given:
            spurts.extend(_dyad_spurts(rng, a, b, rate))
        else:  # the user's spurts are given: voice them, and the partner talks in the long gaps
            assert ctx is not None
            sp = ctx.speech[(ctx.speech[:, 1] > seg.start_ns) & (ctx.speech[:, 0] < seg.stop_ns)] / 1e9
            spurts.extend((max(a, float(s0)), min(b, float(s1)), 0) for s0, s1 in sp)
            edges = np.concatenate([[a], sp.ravel(), [b]]).reshape(-1, 2)
            for g0, g1 in edges:
                if g1 - g0 > 1.0:
                    spurts.extend(s for s in _dyad_spurts(rng, g0 + 0.2, g1 - 0.2, rate) if s[2] == 1)
    spurt_arr = np.array(spurts, dtype=np.float64).reshape(-1, 3)
    decl_spurt = np.full(len(spurts), 0.14)
    if decl_of:
        decl_spurt[list(decl_of)] = list(decl_of.values())
    # --- conversation spurts -> syllables -> phones (vectorised)
    conv = np.setdiff1d(np.arange(len(spurts)), np.array(list(decl_of), dtype=np.int64))
    c_start, c_stop = spurt_arr[conv, 0], spurt_arr[conv, 1]
    c_rate = voice["rate"] * (1.0 + 0.25 * (_segment_value(plan, c_start, "arousal", 0.3) - 0.3))
    n_syl = np.maximum(1, np.round((c_stop - c_start) * 4.6 * c_rate * rng.uniform(0.85, 1.15, conv.size)))
    syl_spurt = np.repeat(np.arange(conv.size), n_syl.astype(np.int64))
    ns = syl_spurt.size
    onset = rng.choice(len(_ONSETS), ns, p=_ONSET_P / _ONSET_P.sum())
    vowel = rng.choice(len(_VOWELS), ns, p=_VOWEL_P / _VOWEL_P.sum())
    coda = rng.choice(len(_CODAS), ns, p=_CODA_P / _CODA_P.sum())
    stress = rng.random(ns) < 0.35
    onset_pid = np.array([-1 if p is None else _PID[p] for p in _ONSETS])[onset]
    vowel_pid = np.array([_PID[p] for p in _VOWELS])[vowel]
    coda_pid = np.array([-1 if p is None else _PID[p] for p in _CODAS])[coda]
    slots = np.stack([onset_pid, vowel_pid, coda_pid], axis=1).ravel()
    keep = slots >= 0
    ph = slots[keep]
    ph_syl = np.repeat(np.arange(ns), 3)[keep]
    ph_spurt = syl_spurt[ph_syl]
    d = _DUR[ph] * rng.lognormal(0.0, 0.2, ph.size) * np.where(stress[ph_syl] & (_KIND[ph] == "V"), 1.3, 1.0)
    # fit the phones of each spurt to the spurt (the rate stays natural; the spurt end follows the phones)
    nat = np.bincount(ph_spurt, weights=d, minlength=conv.size)
    scale = np.clip((c_stop - c_start) / np.maximum(nat, 1e-9), 0.7, 1.4)
    d = d * scale[ph_spurt]
    cum = np.cumsum(d)
    first = np.searchsorted(ph_spurt, np.arange(conv.size))
    before = np.concatenate([[0.0], cum])[first]
    st = c_start[ph_spurt] + (cum - d) - before[ph_spurt]
    spurt_arr[conv, 1] = c_start + nat * scale
    ph_spurt = conv[ph_spurt]
    stressed = stress[ph_syl]
    if cmd["phone"]:
        ph = np.concatenate([np.array(cmd["phone"], np.int64), ph])
        st = np.concatenate([np.array(cmd["start"], np.float64), st])
        d = np.concatenate([np.array(cmd["dur"], np.float64), d])
        ph_spurt = np.concatenate([np.array(cmd["spurt"], np.int64), ph_spurt])
        stressed = np.concatenate([np.array(cmd["stress"], bool), stressed])
    speaker = spurt_arr[ph_spurt, 2].astype(np.int64)
    # --- prosody: f0 contour per phone (declination, accents, arousal), amplitude, voice quality
    arousal = _segment_value(plan, st, "arousal", 0.3)
    base_f0 = np.where(speaker == 0, plan.user.voice_f0_hz, _partner_f0(plan))
    f0_base = base_f0 * (1.0 + 0.35 * (arousal - 0.3))
    s0 = spurt_arr[ph_spurt, 0]
    s_len = np.maximum(spurt_arr[ph_spurt, 1] - s0, 1e-3)
    decl = decl_spurt[ph_spurt]
    accent = np.where(stressed, voice["accent"] * (1.0 + 1.5 * arousal), 0.0)
    jit = rng.lognormal(0.0, 0.03, ph.size)
    ua, ub = (st - s0) / s_len, (st + d - s0) / s_len
    f0a = f0_base * (1.0 + decl * (0.5 - ua)) * (1.0 + accent) * jit
    f0b = f0_base * (1.0 + decl * (0.5 - ub)) * (1.0 + accent * 0.6) * jit
    amp = _AMP[ph] * np.where(stressed, 1.25, 1.0) * rng.lognormal(0.0, 0.12, ph.size)
    level_db = 8.0 * (arousal - 0.3)  # vocal effort rises with arousal
    order = np.argsort(st, kind="stable")
    plan_out = SpeechPlan(
        spurts=spurt_arr, utterances=utterances, speaker=speaker[order], phone=ph[order], start=st[order],
        dur=d[order], amp=amp[order], f0a=f0a[order], f0b=f0b[order],
        quality=np.digitize(arousal, [0.2, 0.6])[order],
        level_db=level_db[order],
    )
    if ctx is not None:
        _fill_context(ctx, plan_out, given)
    return plan_out


def _partner_f0(plan: SessionPlan) -> float:
    r = np.random.default_rng(zlib.crc32(f"partner:{plan.user.key}:{plan.session_id}".encode()))
    return float(r.choice([r.uniform(95, 140), r.uniform(170, 240)]))


def _fill_context(ctx: Context, sp: SpeechPlan, given: bool) -> None:
    ctx.voice = sp
    user = sp.spurts[sp.spurts[:, 2] == 0]
    if not given:
        ctx.speech = np.round(user[np.argsort(user[:, 0]), :2] * 1e9).astype(np.int64).reshape(-1, 2)
    nuclei = (sp.speaker == 0) & (_KIND[sp.phone] == "V")
    jaw = np.round(np.stack([sp.start[nuclei], sp.start[nuclei] + sp.dur[nuclei]], axis=1) * 1e9).astype(np.int64)
    both = np.concatenate([np.asarray(ctx.muscle, dtype=np.int64).reshape(-1, 2), jaw])
    ctx.muscle = both[np.argsort(both[:, 0], kind="stable")]


# --------------------------------------------------------------------------------------------------------
# synthesis


def bone_vibration(sp: SpeechPlan, plan: SessionPlan, fs: float, m: int, rng: np.random.Generator) -> np.ndarray:
    """(m,) float32 skull vibration of the user's own voice, sampled at ``k / fs`` s (k < m), unit RMS while the
    user talks.

    What a headset accelerometer pressed against the face picks up of its wearer's voice (bone and tissue
    conduction: He et al., VibVoice, MobiSys 2023; Shi et al., Face-Mic, MobiCom 2021): the user's phones
    (not the partner's) rendered with the audio model at 4 ``fs``, through the bone-conduction low-pass
    (second order, 700 Hz: skull transfer falls steeply above ~1 kHz), then sampled at ``fs`` without an
    anti-alias filter, as MEMS accelerometers do, so formant energy above the IMU's Nyquist folds into its
    band (Ba et al., accelerometer eavesdropping, NDSS 2020).
    """
    from dataclasses import replace

    from scipy.signal import butter, sosfilt

    user = sp.speaker == 0
    if not user.any():
        return np.zeros(m, np.float32)
    fr = 4.0 * fs
    own = replace(sp, spurts=sp.spurts[sp.spurts[:, 2] == 0], speaker=sp.speaker[user], phone=sp.phone[user],
                  start=sp.start[user], dur=sp.dur[user], amp=sp.amp[user], f0a=sp.f0a[user], f0b=sp.f0b[user],
                  quality=sp.quality[user], level_db=sp.level_db[user])
    x = np.zeros(4 * m, np.float32)
    _synthesize(own, plan, fr, x, rng, (10 * np.log10(2.0), 0.0), 0.0)  # unit RMS over the user's talk
    y = sosfilt(butter(2, 700.0, fs=fr, output="sos"), x)[::4]
    return np.asarray(y, dtype=np.float32)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), vectorised."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    offs = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts.astype(np.int64), lengths) + np.arange(total, dtype=np.int64) - offs


def _resonator(f: float, bw: float, fs: float) -> list[float]:
    """Klatt resonator with unit DC gain as one second-order section."""
    r = np.exp(-np.pi * bw / fs)
    c = 2 * r * np.cos(2 * np.pi * f / fs)
    return [1 - c + r * r, 0.0, 0.0, 1.0, -c, r * r]


#: Voice quality -> (glottal low-pass corner Hz, spectral-tilt low-pass corner Hz or 0 for none): lax voice
#: has a soft glottal closure and a steep spectral tilt, tense (aroused) voice an abrupt one and a flat tilt.
_QUALITY = ((150.0, 1500.0), (200.0, 0.0), (450.0, 0.0))


@cache
def _voiced_sos(pid: int, scale: float, quality: int, far: bool, fs: float) -> np.ndarray:
    """Glottal low-pass with lip radiation, spectral tilt, then the formant cascade of one voiced phone.

    ``far``: the partner across the room; the region of the 4th and 5th formants is lost (duller, off-axis).
    Returned as float32 second-order sections.
    """
    formants = [*(_PHONE_TABLE[pid][2]), *_F45][: 3 if far else 5]
    glottal_hz, tilt_hz = _QUALITY[quality]
    rg = np.exp(-2 * np.pi * glottal_hz / fs)
    sos = [[1.0, -1.0, 0.0, 1.0, -2 * rg, rg * rg]]  # critically damped glottal pulse shape times d/dt
    if tilt_hz > 0:
        pt = np.exp(-2 * np.pi * tilt_hz / fs)
        sos.append([1 - pt, 0.0, 0.0, 1.0, -pt, 0.0])
    for f, bw in zip(formants, _BW, strict=False):
        fk = f * scale
        if fk < 0.45 * fs:
            sos.append(_resonator(fk, bw * (1 + 0.3 * (scale - 1)), fs))
    return _unit_energy(np.array(sos), fs, voiced_f0=120.0)


@cache
def _noise_sos(pid: int, scale: float, far: bool, fs: float) -> np.ndarray:
    """Band-pass of a fricative or plosive burst, as float32 sections."""
    from scipy.signal import butter

    centre, bw = _PHONE_TABLE[pid][2]
    centre = centre * scale
    hi = min(centre + bw / 2, 0.45 * fs, 4000.0 if far else np.inf)
    lo = min(max(centre - bw / 2, 200.0), 0.7 * hi)
    sos = butter(2, [lo, hi], btype="band", fs=fs, output="sos")
    return _unit_energy(np.asarray(sos), fs, voiced_f0=0.0)


def _unit_energy(sos: np.ndarray, fs: float, voiced_f0: float) -> np.ndarray:
    """Scale ``sos`` so unit-RMS noise (or a unit pulse train at ``voiced_f0``) comes out at unit RMS."""
    from scipy.signal import sosfilt

    imp = np.zeros(4096)
    imp[0] = 1.0
    e = float(np.sum(sosfilt(sos, imp) ** 2))
    g = 1.0 / np.sqrt(e * (voiced_f0 / fs if voiced_f0 > 0 else 1.0))
    sos = sos.copy()
    sos[0, :3] *= g
    return sos.astype(np.float32)


def _synthesize(
    sp: SpeechPlan, plan: SessionPlan, fs: float, out: np.ndarray, rng: np.random.Generator,
    levels_db: tuple[float, float], full_scale_db: float,
) -> None:
    """Render the phones of both speakers and add them to ``out`` (float32, the session's samples).

    Phones are grouped by (speaker, phone, voice quality): one source buffer and one filter call per group.
    Each phone keeps up to 30 ms of filter ring-out, cut where the next phone of its group starts, so the
    samples of a group are distinct and can be added in place.
    """
    from scipy.signal import sosfilt

    n = out.size
    pad = int(0.03 * fs)
    start = np.round(sp.start * fs).astype(np.int64)
    length = np.maximum(1, np.round(sp.dur * fs).astype(np.int64))
    for spk in (0, 1):
        f0 = plan.user.voice_f0_hz if spk == 0 else _partner_f0(plan)
        scale = round(float((f0 / 120.0) ** 0.3), 2)  # vocal-tract length follows voice pitch
        sel_spk = (start < n) & (sp.speaker == spk)
        key = sp.phone * 3 + sp.quality
        pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (starts, lengths, samples) per group
        energy = 0.0
        for k in np.unique(key[sel_spk]):
            sel = np.flatnonzero(sel_spk & (key == k))
            pid, quality = int(k) // 3, int(k % 3)
            s = start[sel]
            L = np.minimum(length[sel], n - s)
            room = np.append(s[1:] - (s[:-1] + L[:-1]), pad)  # gap to the group's next phone
            P = L + np.clip(room, 0, pad)
            P = np.minimum(P, n - s)
            buf_off = np.concatenate([[0], np.cumsum(P)[:-1]])
            total = int(P.sum())
            gain = sp.amp[sel] * 10 ** (sp.level_db[sel] / 20)
            if _VOICED[pid]:
                src = _pulses(sp.f0a[sel], sp.f0b[sel], L, buf_off, gain, total, fs, rng)
                sos = _voiced_sos(pid, scale, quality, spk == 1, fs)
            else:
                src = _noise_source(str(_KIND[pid]), L, buf_off, gain, total, fs, rng)
                sos = _noise_sos(pid, scale, spk == 1, fs)
            y = sosfilt(sos, src)
            energy += float(np.sum(np.square(y, dtype=np.float64)))  # no BLAS: same bytes for any threads
            pieces.append((s, P, y))
        if not pieces:
            continue
        active = sp.spurts[sp.spurts[:, 2] == spk]
        n_active = max(1.0, float(np.sum(np.minimum(active[:, 1] * fs, n) - np.minimum(active[:, 0] * fs, n))))
        target = 10 ** ((levels_db[spk] - full_scale_db) / 20) / np.sqrt(2)
        g = np.float32(target / max(np.sqrt(energy / n_active), 1e-20))
        for s, P, y in pieces:
            yg = y
            yg *= g  # in place: y is not used again
            if np.all(s[1:] >= s[:-1] + P[:-1]):  # disjoint phones: one slice each, cheaper than a scatter
                off = 0
                for a, p in zip(s.tolist(), P.tolist(), strict=True):
                    out[a : a + p] += yg[off : off + p]
                    off += p
            else:  # phones of one group overlap: a buffered scatter, where the later phone's samples win
                out[_ranges(s, P)] += yg


def _pulses(
    f0a: np.ndarray, f0b: np.ndarray, L: np.ndarray, off: np.ndarray, gain: np.ndarray, total: int, fs: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Glottal pulse train (impulses) of voiced phones laid out in a buffer; f0 moves linearly in each phone."""
    T = L / fs
    phase0 = rng.random(L.size)
    n_p = np.floor(0.5 * (f0a + f0b) * T + phase0).astype(np.int64)
    owner = np.repeat(np.arange(L.size), n_p)
    k = np.arange(owner.size) - np.repeat(np.cumsum(n_p) - n_p, n_p) + 1
    c = k - phase0[owner]
    a2 = (f0b - f0a)[owner] / T[owner]  # = 2a in phase(t) = f0a t + a t^2
    b = f0a[owner]
    t = 2 * c / (b + np.sqrt(np.maximum(b * b + 2 * a2 * c, 1e-9)))
    t = t + rng.normal(0.0, 0.006, t.size) / b  # jitter, ~0.6 % of the period
    pos = np.clip(np.round(t * fs).astype(np.int64), 0, L[owner] - 1)
    tt = pos / fs
    env = np.clip(np.minimum(np.minimum(tt / 0.02, (T[owner] - tt) / 0.03), 1.0), 0.0, 1.0)
    src = np.zeros(total, np.float32)
    src[off[owner] + pos] = gain[owner] * env * rng.lognormal(0.0, 0.06, t.size)  # shimmer
    return src


def _noise_source(
    kind: str, L: np.ndarray, off: np.ndarray, gain: np.ndarray, total: int, fs: float, rng: np.random.Generator,
) -> np.ndarray:
    """White noise with the envelope of a fricative (ramps) or a plosive (closure, then a decaying burst)."""
    # per-phone values repeated over the phone's samples (np.repeat: no gather through an index array)
    within = np.arange(int(L.sum()), dtype=np.int64) - np.repeat(np.cumsum(L) - L, L)  # sample in its phone
    idx = within + np.repeat(off, L)  # = _ranges(off, L)
    tt = within / fs
    T = np.repeat(L / fs, L)
    if kind == "P":
        tb = 0.6 * T
        env = np.where(tt < tb, 0.0, np.exp(-(tt - tb) / 0.012) * 2.0)
    else:
        env = np.clip(np.minimum(np.minimum(tt / 0.025, (T - tt) / 0.025), 1.0), 0.0, 1.0)
    src = np.zeros(total, np.float32)
    src[idx] = gaussian_noise(rng, idx.size) * (env * np.repeat(gain, L)).astype(np.float32)
    return src


def _room_psd(line_hz: float) -> Callable[[np.ndarray], np.ndarray]:
    def psd(f: np.ndarray) -> np.ndarray:
        p: np.ndarray = 1.0 / np.maximum(f, 40.0) ** 1.2 / (1.0 + (f / 6000.0) ** 4)
        return p

    return psd


def _noise_scale(psd: Callable[[np.ndarray], np.ndarray], fs: float, dba: float, full_scale_db: float) -> float:
    """Factor on ``psd`` (digital units) that makes its A-weighted level ``dba`` dB SPL."""
    f = np.linspace(0, fs / 2, 8193)[1:]
    pa = float(np.sum(psd(f) * a_weighting_power(f)) * (f[1] - f[0]))
    target = (10 ** ((dba - full_scale_db) / 20) / np.sqrt(2)) ** 2
    return target / pa


def _add_hum(x: np.ndarray, fs: float, line_hz: float, rms: float, rng: np.random.Generator) -> None:
    """Add mains hum (line frequency and harmonics, transformer-style: 2x line strongest) to ``x`` in place.

    With an integer sampling rate and line frequency the hum repeats every second exactly.
    """
    m = round(fs)
    t = np.arange(m) / fs
    h1 = np.zeros(m)
    for h, a in ((1, 0.3), (2, 1.0), (3, 0.4), (4, 0.2)):
        if h * line_hz < fs / 2:
            h1 += a * np.sin(2 * np.pi * h * line_hz * t + rng.uniform(0, 2 * np.pi))
    h1 = (h1 * (rms / np.sqrt(np.mean(h1 * h1)))).astype(np.float32)
    k = x.size // m
    x[: k * m].reshape(k, m)[:] += h1
    x[k * m :] += h1[: x.size - k * m]


#: Peak level (dB SPL: mean, sd) of a hand clap at the headset microphone, the hands ~0.4 m in front. The clap
#: itself (:func:`_add_claps`) is the palms' air-cavity resonance: a noise burst decaying in 3-8 ms, peaking at
#: 0.8-2.5 kHz depending on how the hands meet (Repp 1987, "The sound of two hands clapping").
CLAP_PEAK_DBSPL = (95.0, 3.0)


def _add_claps(x: np.ndarray, fs: float, plan: SessionPlan, full_scale_db: float) -> np.ndarray:
    """Add the claps of the session's clap gestures to ``x`` (samples, in place); returns their times (s).
    Drawn from their own random stream so the rest of the audio does not depend on them."""
    from scipy.signal import iirpeak, lfilter

    from xrdata.synth.hand import clap_contacts_s  # hand and head import this module
    from xrdata.synth.head import stable_rng, stable_uniform

    times = clap_contacts_s(plan)
    if not len(times):
        return times
    rng = stable_rng(plan.user.key, plan.session_id, "claps")
    user_hz = 800.0 + 1700.0 * stable_uniform(plan.user.key, "clap_hz")  # how this user's hands meet
    n = round(0.04 * fs)
    t = np.arange(n) / fs
    for t0 in times.tolist():
        f = min(user_hz * rng.lognormal(0.0, 0.1), 0.4 * fs)
        burst = lfilter(*iirpeak(f, 3.0, fs), rng.standard_normal(n)) * np.exp(-t / rng.uniform(0.003, 0.008))
        peak = 10 ** ((rng.normal(*CLAP_PEAK_DBSPL) - full_scale_db) / 20)
        a = round(t0 * fs)
        seg = x[a : a + n]
        seg += (peak / max(float(np.max(np.abs(burst))), 1e-12) * burst[: len(seg)]).astype(x.dtype)
    return times


def sample_times_ns(n: int, fs: float) -> np.ndarray:
    """Exact int64 timestamps of ``n`` regular samples at ``fs`` Hz from 0 (integer math when possible)."""
    step = 1e9 / fs
    if step == int(step):  # one pass: arange steps in exact int64
        return np.arange(0, n * int(step), int(step), dtype=np.int64)
    m = round(fs)
    if m == fs and n > 2 * m:  # integer rate: the pattern of one second repeats, shifted by 1e9 ns
        one = np.round(np.arange(m) * step).astype(np.int64)
        k = -(-n // m)
        return (np.arange(k, dtype=np.int64)[:, None] * 1_000_000_000 + one[None, :]).reshape(-1)[:n]
    return np.round(np.arange(n) * step).astype(np.int64)


def generate_audio(plan: SessionPlan, sensor: SensorSpec, rng: np.random.Generator, ctx: Context) -> ModalityOutput:
    """Headset microphone audio of one session (see the module docstring for the model).

    Returns one mono "audio" stream (float32 in [-1, 1]) unless ``plan.mic_muted``, events ("talk_spurt",
    "user"/"partner") and ("utterance", command), and truth (levels, SNR, spurts). Voices ``ctx.voice`` when
    the speech is planned already, else plans it (:func:`plan_speech`, which fills ``ctx.speech``,
    ``ctx.muscle`` and ``ctx.voice``), even when the microphone is muted (the user still talks).
    """
    fs = float(sensor.rate_hz)
    params = sensor.params
    full_scale_db = float(params.get("dbspl_full_scale", 110.0))
    self_noise_dba = float(params.get("self_noise_dba", 33.0))
    speech_db = float(params.get("speech_level_db", 67.0))
    sp = ctx.voice if ctx.voice is not None else plan_speech(plan, rng, ctx)
    events: list[tuple[int, int, str, str]] = [
        (round(s0 * 1e9), round((s1 - s0) * 1e9), "talk_spurt", "user" if spk == 0 else "partner")
        for s0, s1, spk in sp.spurts
    ]
    events += [(round(a * 1e9), round((b - a) * 1e9), "utterance", lab) for a, b, lab in sp.utterances]
    events.sort()
    room_dba = float(plan.room_noise_dba)
    voice = _user_voice(plan)
    # Lombard: speakers raise their voice by ~0.6 dB per dB of noise above 45 dBA
    user_db = speech_db + voice["level_db"] + 0.6 * max(0.0, room_dba - 45.0) + float(rng.normal(0.0, 1.0))
    partner_db = user_db - 10.0 + float(rng.normal(0.0, 2.0))
    truth: dict[str, Any] = {
        "room_noise_dba": room_dba, "self_noise_dba": self_noise_dba,
        "noise_dba": float(10 * np.log10(10 ** (room_dba / 10) + 10 ** (self_noise_dba / 10))),
        "user_spurts_s": sp.spurts[sp.spurts[:, 2] == 0, :2].tolist(),
        "partner_spurts_s": sp.spurts[sp.spurts[:, 2] == 1, :2].tolist(),
        "utterances": [list(u) for u in sp.utterances], "voice_f0_hz": plan.user.voice_f0_hz,
        "partner_f0_hz": _partner_f0(plan), "dbspl_full_scale": full_scale_db,
    }
    if plan.mic_muted:
        truth["mic_muted"] = True
        return ModalityOutput(streams=[], events=events, truth=truth)
    n = round(plan.duration_s * fs)
    room = _room_psd(plan.user.line_hz)
    k_room = _noise_scale(room, fs, room_dba, full_scale_db)
    white = 1.0 / max(1.0, fs / 2)
    k_self = _noise_scale(lambda f: np.full_like(f, white), fs, self_noise_dba, full_scale_db)
    x = ColoredNoise(rng, lambda f: k_room * room(f) + k_self * white, 1, fs, n).next(n)[0]
    _add_hum(x, fs, plan.user.line_hz, 10 ** ((room_dba - 18.0 - full_scale_db) / 20) / np.sqrt(2), rng)
    _synthesize(sp, plan, fs, x, rng, (user_db, partner_db), full_scale_db)
    truth["claps_s"] = _add_claps(x, fs, plan, full_scale_db).tolist()
    truth["user_level_db"], truth["partner_level_db"] = user_db, partner_db
    np.clip(x, -1.0, 1.0, out=x)
    stream = Stream(
        "audio", "audio", sample_times_ns(n, fs), x[:, None], ["mono"], ["1"], rate_hz=fs,
        meta={"dbspl_full_scale": full_scale_db, "synthetic": True},
    )
    return ModalityOutput(streams=[stream], events=events, truth=truth)

