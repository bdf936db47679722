"""Audio generator: REALISM rows A2, A4, A5, A6 computed on generated streams, plus imprints and contract."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from xrdata.model import Recording
from xrdata.synth import stats
from xrdata.synth.audio import CLAP_PEAK_DBSPL, COMMANDS, generate_audio
from xrdata.synth.hand import clap_contacts_s, generate_hand
from xrdata.synth.types import (
    EXAMPLE_DEVICE,
    Context,
    ModalityOutput,
    SensorSpec,
    SessionPlan,
    UserTraits,
    example_plan,
)
from xrdata.validation import check_writable

SENSOR = EXAMPLE_DEVICE.sensors["audio"]
FS = SENSOR.rate_hz


def _audio(
    plan: SessionPlan, seed: int = 0, ctx: Context | None = None
) -> tuple[np.ndarray, ModalityOutput, Context]:
    ctx = ctx if ctx is not None else Context()
    out = generate_audio(plan, SENSOR, np.random.default_rng(seed), ctx)
    return out.streams[0].data[:, 0], out, ctx


def _spurts(out: ModalityOutput) -> tuple[np.ndarray, np.ndarray]:
    user = np.array(out.truth["user_spurts_s"]).reshape(-1, 2)
    partner = np.array(out.truth["partner_spurts_s"]).reshape(-1, 2)
    return user, partner


def _conversation(f0: float = 140.0, dba: float = 40.0, seconds: float = 120.0, uid: str = "talker") -> SessionPlan:
    return example_plan(seconds, (("affect", "neutral"),), user=UserTraits(uid, voice_f0_hz=f0),
                        room_noise_dba=dba)


def test_a2_spectral_centroid_of_speech_frames() -> None:
    medians = {}
    for f0 in (100.0, 140.0, 220.0):
        x, out, _ = _audio(_conversation(f0, uid=f"v{f0:.0f}"), seed=1)
        user, partner = _spurts(out)
        c = stats.speech_centroid_hz(x, FS, user, np.vstack([user, partner]))
        assert c.size > 500
        medians[f0] = float(np.median(c))
        assert 900 <= medians[f0] <= 2500, medians
    assert medians[100.0] < medians[140.0] < medians[220.0], medians


def test_a4_envelope_modulation_peak() -> None:
    for seed in range(3):
        x, _, _ = _audio(_conversation(uid=f"m{seed}"), seed=seed)
        assert 2.5 <= stats.envelope_modulation_peak_hz(x, FS) <= 8.0


def test_a5_dyad_voice_activity() -> None:
    for seed in range(3):
        plan = _conversation(seconds=180.0, dba=30.0, uid=f"d{seed}")
        x, out, _ = _audio(plan, seed=seed)
        user, partner = _spurts(out)
        spurts = np.vstack([np.c_[user, np.zeros(len(user))], np.c_[partner, np.ones(len(partner))]])
        v = stats.voice_activity_stats(spurts, plan.duration_s)
        assert all(0.25 <= a <= 0.6 for a in v["activity"].values()), v
        assert 0.2 <= v["spurt_median_s"] <= 1.5 and v["spurt_mean_s"] > v["spurt_median_s"], v
        assert v["spurt_skewness"] > 0 and 8 <= v["turn_changes_per_min"] <= 25, v
        # the stream carries the spurts: an energy detector agrees with them on most 20 ms frames
        vad = stats.energy_vad(x, FS)
        truth = stats.interval_mask(spurts[:, :2], (np.arange(vad.size) + 0.5) * 0.02)
        assert np.mean(vad == truth) > 0.75


def test_a6_snr_and_room_noise_levels() -> None:
    for seed, dba in enumerate((30.0, 40.0, 52.0, 65.0)):
        x, out, _ = _audio(_conversation(dba=dba, seconds=60.0, uid=f"n{seed}"), seed=seed)
        user, partner = _spurts(out)
        both = np.vstack([user, partner])
        snr = stats.snr_db(x, FS, user, both)
        assert 5.0 <= snr <= 35.0, (dba, snr)
        t = (np.arange(x.size // 320) + 0.5) * 0.02
        quiet = ~stats.interval_mask(both, t)
        noise = x[: t.size * 320].reshape(-1, 320)[quiet].ravel()
        level = stats.a_weighted_level_db(noise, FS, out.truth["dbspl_full_scale"])
        assert abs(level - out.truth["noise_dba"]) < 1.5 and 30.0 <= level <= 66.0, (dba, level)


def _utterance_features(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Log band energies (8 bands to 8 kHz) in three thirds of an utterance, plus its duration."""
    seg = x[int(a * FS) : int(b * FS)].astype(np.float64)
    feats = [b - a]
    edges = np.geomspace(100, 7900, 9)
    for part in np.array_split(seg, 3):
        spec = np.abs(np.fft.rfft(part * np.hanning(part.size))) ** 2
        f = np.fft.rfftfreq(part.size, 1 / FS)
        feats += [np.log(spec[(f >= lo) & (f < hi)].sum() + 1e-20) for lo, hi in pairwise(edges)]
    return np.array(feats)


def test_command_classes_are_separable() -> None:
    """Label imprint: each spoken command has its own phone pattern (nearest centroid, leave one out)."""
    labels = ("select", "back", "open", "close", "next", "undo")
    plan = example_plan(12.0 * len(labels), tuple(("speech_command", c) for c in labels), room_noise_dba=45.0)
    x, out, ctx = _audio(plan, seed=4)
    utt = out.truth["utterances"]
    assert {u[2] for u in utt} == set(labels) and len(utt) >= 3 * len(labels)
    feats = np.array([_utterance_features(x, a, b) for a, b, _ in utt])
    feats = (feats - feats.mean(axis=0)) / feats.std(axis=0)
    y = np.array([labels.index(u[2]) for u in utt])
    hits = 0
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        cent = np.array([feats[rest & (y == k)].mean(axis=0) for k in range(len(labels))])
        hits += int(np.argmin(np.linalg.norm(cent - feats[i], axis=1)) == y[i])
    assert hits / len(y) >= 0.8, hits / len(y)
    assert set(labels) <= set(COMMANDS)
    # the same syllables reach the EEG as jaw EMG intervals
    assert len(ctx.muscle) >= len(utt) and len(ctx.speech) == len(utt)


def _alpha_ratio_db(x: np.ndarray, intervals: np.ndarray) -> float:
    """Energy 1-5 kHz over 50-1000 Hz in dB (the "alpha ratio" of eGeMAPS) inside ``intervals``."""
    seg = x[stats.interval_mask(intervals, np.arange(x.size) / FS)].astype(np.float64)
    frames = seg[: seg.size // 512 * 512].reshape(-1, 512)
    spec = (np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)) ** 2).sum(axis=0)
    f = np.fft.rfftfreq(512, 1 / FS)
    return float(10 * np.log10(spec[(f >= 1000) & (f < 5000)].sum() / spec[(f >= 50) & (f < 1000)].sum()))


def test_arousal_raises_level_and_brightness() -> None:
    """Affect imprint: high arousal -> louder, tenser voice (flatter tilt, higher centroid)."""
    plan = example_plan(120.0, (("affect", "low"), ("affect", "high")), user=UserTraits("aro", voice_f0_hz=130.0),
                        room_noise_dba=35.0)
    x, out, _ = _audio(plan, seed=2)
    user, _ = _spurts(out)
    half = plan.duration_s / 2
    lo, hi = user[user[:, 1] <= half], user[user[:, 0] >= half]
    c_lo, c_hi = (np.median(stats.speech_centroid_hz(x, FS, s, user)) for s in (lo, hi))
    assert c_hi > c_lo, (c_lo, c_hi)
    assert _alpha_ratio_db(x, hi) > _alpha_ratio_db(x, lo) + 2.0
    level = [np.mean(x[stats.interval_mask(s, np.arange(x.size) / FS)] ** 2) for s in (lo, hi)]
    assert 10 * np.log10(level[1] / level[0]) > 3.0


def test_context_filled_and_muted_microphone() -> None:
    plan = example_plan(30.0, (("speech_command", "open"), ("rest", "eyes_open")), mic_muted=True)
    ctx = Context()
    out = generate_audio(plan, SENSOR, np.random.default_rng(0), ctx)
    assert out.streams == [] and out.truth["mic_muted"]
    assert len(ctx.speech) > 3 and ctx.speech.dtype == np.int64 and np.all(ctx.speech[:, 1] <= 15e9)
    assert len(ctx.muscle) >= len(ctx.speech) and np.all(np.diff(ctx.muscle[:, 0]) >= 0)


def test_given_speech_is_voiced() -> None:
    plan = _conversation(seconds=30.0, dba=30.0)
    given = np.array([[2.0, 3.5], [8.0, 9.0], [20.0, 22.0]])
    ctx = Context(speech=np.round(given * 1e9).astype(np.int64))
    x, out, _ = _audio(plan, seed=3, ctx=ctx)
    assert np.array_equal(ctx.speech, np.round(given * 1e9).astype(np.int64))
    user, _ = _spurts(out)
    assert np.allclose(user[:, 0], given[:, 0])
    t = np.arange(x.size) / FS
    inside = stats.interval_mask(given, t)
    assert np.mean(x[inside] ** 2) > 30 * np.median(x[~inside] ** 2)


def test_stream_is_writable_deterministic_and_bounded() -> None:
    plan = example_plan(20.0, (("affect", "high"), ("speech_command", "next")), room_noise_dba=65.0)
    x1, out, _ = _audio(plan, seed=7)
    x2, _, _ = _audio(plan, seed=7)
    s = out.streams[0]
    check_writable(Recording("u", "s", [s]))
    assert s.data.dtype == np.float32 and s.data.shape == (320000, 1) and s.channels == ["mono"]
    assert np.abs(x1).max() <= 1.0 and np.array_equal(x1, x2)
    assert np.array_equal(s.time_ns[:3], [0, 62500, 125000])
    assert not np.array_equal(x1, _audio(plan, seed=8)[0])
    assert {e[2] for e in out.events} == {"talk_spurt", "utterance"}


@pytest.mark.parametrize("label", ["zoom_in", "mute"])
def test_unknown_commands_get_stable_patterns(label: str) -> None:
    plan = example_plan(10.0, (("speech_command", label),))
    a = generate_audio(plan, SENSOR, np.random.default_rng(0), Context()).truth["utterances"]
    b = generate_audio(replace(plan, session_id="other"), SENSOR, np.random.default_rng(1), Context())
    dur_a = np.median([u[1] - u[0] for u in a])
    dur_b = np.median([u[1] - u[0] for u in b.truth["utterances"]])
    assert a and abs(dur_a - dur_b) / dur_a < 0.25


def test_device_rate_48k() -> None:
    """Headset presets record at 48 kHz (0 dBFS = 120 dB SPL): A2 (measured at 16 kHz) and A6 still hold."""
    sensor = SensorSpec("audio", 48000.0, {"dbspl_full_scale": 120.0, "self_noise_dba": 33.0})
    plan = _conversation(f0=120.0, dba=45.0, seconds=60.0, uid="r48")
    out = generate_audio(plan, sensor, np.random.default_rng(0), Context())
    s = out.streams[0]
    check_writable(Recording("u", "s", [s]))
    x = s.data[:, 0]
    user, partner = _spurts(out)
    both = np.vstack([user, partner])
    assert x.size == 48000 * 60 and s.time_ns[-1] == round((x.size - 1) * 1e9 / 48000)
    assert 900 <= np.median(stats.speech_centroid_hz(x, 48000.0, user, both)) <= 2500
    assert 5 <= stats.snr_db(x, 48000.0, user, both) <= 35
    assert 2.5 <= stats.envelope_modulation_peak_hz(x, 48000.0) <= 8.0


def test_colored_noise_has_its_psd_whatever_the_request_sizes() -> None:
    """The streamed noise has the asked one-sided PSD and a Gaussian marginal (its spectral coefficients are
    drawn from 256 levels per part), and its samples do not depend on how they are asked for."""
    from scipy.signal import welch
    from scipy.stats import kurtosis, skew

    from xrdata.synth.audio import ColoredNoise

    fs, n = 500.0, 200_000

    def psd(f: np.ndarray) -> np.ndarray:  # 1/f above 1 Hz (units^2/Hz), and a narrow peak at 10 Hz
        return np.vstack([1.0 / np.maximum(f, 1.0), 0.5 * np.exp(-((f - 10.0) ** 2) / (2 * 0.8**2))])

    whole = ColoredNoise(np.random.default_rng(3), psd, 2, fs, n).next(n)
    noise = ColoredNoise(np.random.default_rng(3), psd, 2, fs, n)
    pieces = np.concatenate([noise.next(k) for k in (1, 4095, 17_000, 50_000, 128_904)], axis=1)
    assert np.array_equal(whole, pieces)

    f, p = welch(whole, fs, nperseg=2048)
    for lo, hi in ((2.0, 5.0), (5.0, 20.0), (20.0, 100.0), (100.0, 240.0)):
        band = (f >= lo) & (f < hi)
        want = np.trapezoid(psd(f[band])[0], f[band])
        got = np.trapezoid(p[0, band], f[band])
        assert abs(got / want - 1) < 0.1, (lo, hi, got, want)
    peak = (f > 7) & (f < 13)
    assert abs(np.trapezoid(p[1, peak], f[peak]) / (0.5 * 0.8 * np.sqrt(2 * np.pi)) - 1) < 0.15
    assert p[1, f > 20].max() < 1e-3 * p[1, peak].max()
    # excess kurtosis: sampling sd ~0.02 for the broadband row, ~0.07 for the narrow one (its slow envelope)
    assert abs(skew(whole[0])) < 0.1 and abs(kurtosis(whole[0])) < 0.1
    assert abs(kurtosis(whole[1])) < 0.35


def test_claps_are_heard_when_the_palms_meet() -> None:
    plan = example_plan(40.0, (("gesture", "clap"),), user=UserTraits("clapper"), room_noise_dba=40.0)
    x, out, _ = _audio(plan)
    times = np.asarray(out.truth["claps_s"])
    assert len(times) >= 8 and np.array_equal(times, clap_contacts_s(plan))
    full_scale = SENSOR.params.get("dbspl_full_scale", 110.0)
    for t in times:
        a = round(t * FS)
        burst = x[a : a + round(0.04 * FS)].astype(np.float64)
        peak_db = full_scale + 20 * np.log10(np.max(np.abs(burst)))
        assert abs(peak_db - CLAP_PEAK_DBSPL[0]) <= 4 * CLAP_PEAK_DBSPL[1], peak_db
        spec = np.abs(np.fft.rfft(burst * np.hanning(len(burst)))) ** 2
        assert 600 <= np.fft.rfftfreq(len(burst), 1 / FS)[np.argmax(spec)] <= 3000
        assert np.max(np.abs(x[a - round(0.05 * FS) : a - round(0.01 * FS)])) < 0.1 * np.max(np.abs(burst))
    hands = generate_hand(plan, EXAMPLE_DEVICE.sensors["hand"], np.random.default_rng(0), Context()).streams[0]
    gap = np.linalg.norm(hands.data[:, 0, 0, :3] - hands.data[:, 1, 0, :3], axis=1)
    at = np.searchsorted(hands.time_ns, np.round(times * 1e9).astype(np.int64))
    assert np.nanmedian(gap[np.minimum(at, len(gap) - 1)]) < np.nanmedian(gap) - 0.05  # the palms are together
    quiet, out, _ = _audio(replace(plan, segments=tuple(replace(s, label="pinch") for s in plan.segments)))
    assert out.truth["claps_s"] == [] and np.max(np.abs(quiet)) < 0.05
