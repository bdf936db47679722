"""EEG generator: REALISM rows G1-G5, G7, G8 computed on generated streams, plus coupling and contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xrdata.model import Recording, Stream
from xrdata.synth import stats
from xrdata.synth.audio import generate_audio
from xrdata.synth.eeg import channel_names, generate_eeg
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

SENSOR = EXAMPLE_DEVICE.sensors["eeg"]
FS = SENSOR.rate_hz


def _sensor(**params: float | str) -> SensorSpec:
    return replace(SENSOR, params={**SENSOR.params, **params})


def _user(i: int, **kw: float) -> UserTraits:
    r = np.random.default_rng(1000 + i)
    base: dict[str, float] = {
        "aperiodic_exponent": float(r.uniform(0.9, 2.1)),
        "alpha_peak_hz": float(r.uniform(8.5, 12.5)),
        "eeg_amplitude_uv": float(r.uniform(8.0, 30.0)),
    }
    return UserTraits(f"user{i}", **{**base, **kw})


def _eeg(
    plan: SessionPlan, seed: int = 0, ctx: Context | None = None, sensor: SensorSpec = SENSOR
) -> tuple[Stream, ModalityOutput]:
    out = generate_eeg(plan, sensor, np.random.default_rng(seed), ctx or Context())
    return out.streams[0], out


def _seg(x: np.ndarray, plan: SessionPlan, i: int) -> np.ndarray:
    s = plan.segments[i]
    return x[round(s.start_ns / 1e9 * FS) : round(s.stop_ns / 1e9 * FS)]


def _cols(stream: Stream, names: tuple[str, ...]) -> list[int]:
    return [stream.channels.index(c) for c in names]


def test_g1_aperiodic_exponent_recovered() -> None:
    for i, chi in enumerate((0.85, 1.5, 2.1)):
        plan = example_plan(60.0, user=_user(i, aperiodic_exponent=chi))
        s, _ = _eeg(plan, seed=i)
        fit = stats.aperiodic_exponent(s.data, FS)
        assert np.all(np.abs(fit - chi) <= 0.15), (chi, fit.round(2))
        assert 0.8 <= np.median(fit) <= 2.2


def test_g2_alpha_peak_posterior_and_stable_per_user() -> None:
    user = _user(3, alpha_peak_hz=9.2)
    peaks = []
    for session in range(2):
        plan = replace(example_plan(60.0, (("rest", "eyes_closed"),), user=user), session_id=f"s{session}")
        s, _ = _eeg(plan, seed=10 + session)
        p = stats.peak_frequency(s.data[:, _cols(s, ("O1", "Oz", "O2"))], FS)
        assert np.all((p >= 8) & (p <= 13)), p
        peaks.append(np.median(p))
    assert abs(peaks[0] - 9.2) < 0.5 and abs(peaks[0] - peaks[1]) < 0.5, peaks


def test_g3_eyes_closed_alpha_increase() -> None:
    for i in range(4):
        plan = example_plan(120.0, (("rest", "eyes_open"), ("rest", "eyes_closed")), user=_user(i))
        s, _ = _eeg(plan, seed=i)
        post = _cols(s, ("O1", "Oz", "O2"))
        ratio = stats.band_power_ratio(_seg(s.data, plan, 1)[:, post], _seg(s.data, plan, 0)[:, post], FS, 8, 13)
        assert 1.5 <= np.mean(ratio) <= 6.0, ratio


def test_g4_load_theta_up_alpha_down_in_most_users() -> None:
    ok = []
    for i in range(10):
        plan = example_plan(120.0, (("cognitive_load", "low"), ("cognitive_load", "high")), user=_user(i))
        s, _ = _eeg(plan, seed=i)
        fz, pz = _cols(s, ("Fz",)), _cols(s, ("Pz",))
        lo, hi = _seg(s.data, plan, 0), _seg(s.data, plan, 1)
        theta = stats.band_power_ratio(hi[:, fz], lo[:, fz], FS, 4, 8)[0]
        alpha = stats.band_power_ratio(hi[:, pz], lo[:, pz], FS, 8, 13)[0]
        ok.append(1.10 <= theta <= 1.60 and 0.50 <= alpha <= 0.90)
    assert np.mean(ok) >= 0.8, ok


def test_load_is_separable_from_short_windows() -> None:
    """Label imprint: 4 s windows of high vs low load separate on frontal theta / parietal alpha."""
    plan = example_plan(120.0, (("cognitive_load", "low"), ("cognitive_load", "high")), user=_user(7))
    s, _ = _eeg(plan, seed=3)
    fz, pz = _cols(s, ("Fz",)), _cols(s, ("Pz",))
    feats, labels = [], []
    for k, seg in enumerate((_seg(s.data, plan, 0), _seg(s.data, plan, 1))):
        for w in range(0, seg.shape[0] - 2000 + 1, 2000):
            x = seg[w : w + 2000]
            feats.append(np.log(stats.band_power(x[:, fz], FS, 4, 8)[0] / stats.band_power(x[:, pz], FS, 8, 13)[0]))
            labels.append(k)
    f, y = np.array(feats), np.array(labels)
    acc = max(np.mean((f > t) == y) for t in f)
    assert acc >= 0.8, acc


def test_g5_broadband_rms_artifact_free() -> None:
    for i, amp in enumerate((6.0, 15.0, 35.0)):
        plan = example_plan(60.0, user=_user(i, eeg_amplitude_uv=amp))
        s, _ = _eeg(plan, seed=i)
        r = stats.rms(s.data) * 1e6
        assert np.all((r >= 5) & (r <= 50)), r.round(1)
        assert abs(np.median(r) / amp - 1) < 0.35


def test_g7_emg_from_speech_is_fronto_temporal() -> None:
    plan = example_plan(120.0, (("rest", "eyes_open"), ("speech_command", "select"), ("affect", "neutral")),
                        user=_user(2))
    ctx = Context()
    generate_audio(plan, EXAMPLE_DEVICE.sensors["audio"], np.random.default_rng(5), ctx)
    assert len(ctx.muscle) > 20
    s, _ = _eeg(plan, seed=5, ctx=ctx)
    t = np.arange(s.n_samples) / FS
    active = stats.interval_mask(ctx.muscle / 1e9, t)
    rest = _seg(s.data, plan, 0)
    ft, central = _cols(s, ("F7", "F8", "T7", "T8")), _cols(s, ("Cz", "CP1", "CP2"))
    gain = stats.emg_power_change_db(s.data[active], rest, FS)
    assert np.all(gain[ft] >= 3.0), gain[ft]
    assert np.mean(gain[ft]) > np.mean(gain[central]) + 3.0, (gain[ft], gain[central])


def test_arousal_raises_tonic_emg() -> None:
    """Affect imprint: high-arousal segments carry more fronto-temporal EMG than low ones."""
    plan = example_plan(60.0, (("affect", "low"), ("affect", "high")), user=_user(4))
    plan = replace(plan, segments=tuple(replace(sg, talking=False) for sg in plan.segments))
    s, _ = _eeg(plan, seed=1)
    ft = _cols(s, ("F7", "F8", "T7", "T8"))
    gain = stats.emg_power_change_db(_seg(s.data, plan, 1)[:, ft], _seg(s.data, plan, 0)[:, ft], FS)
    assert np.all(gain > 0.5) and np.mean(gain) > 2.0, gain


@pytest.mark.parametrize("line_hz", [50.0, 60.0])
def test_g8_line_noise_peak(line_hz: float) -> None:
    plan = example_plan(30.0, user=_user(1, line_hz=line_hz))
    s, _ = _eeg(plan, seed=2, sensor=_sensor(line_noise="on"))
    snr = stats.line_noise_snr_db(s.data, FS, line_hz)
    assert np.all(snr >= 10.0), snr.round(1)
    other = 60.0 if line_hz == 50.0 else 50.0
    assert np.all(stats.line_noise_snr_db(s.data, FS, other) < 6.0)  # no peak: max of noisy bins vs median
    s_off, _ = _eeg(plan, seed=2)
    assert np.all(stats.line_noise_snr_db(s_off.data, FS, line_hz) < 6.0)


def test_blinks_give_frontal_positive_deflections() -> None:
    plan = example_plan(60.0, user=_user(5))
    starts = np.arange(2.0, 58.0, 3.7)
    ctx = Context(blinks=np.round(np.stack([starts, starts + 0.2], axis=1) * 1e9).astype(np.int64))
    s, _ = _eeg(plan, seed=4, ctx=ctx)
    t = np.arange(s.n_samples) / FS
    during = stats.interval_mask(ctx.blinks / 1e9 + np.array([0.05, 0.0]), t)
    x = s.data - np.median(s.data, axis=0)
    fp = x[:, _cols(s, ("Fp1", "Fp2"))]
    oz = x[:, _cols(s, ("Oz",))]
    assert np.mean(fp[during]) > 50e-6
    assert np.mean(oz[during]) < 0.1 * np.mean(fp[during])


@pytest.mark.parametrize("tau_s", [1.6, 10.0])
def test_eog_holds_the_eye_position_with_the_highpass_time_constant(tau_s: float) -> None:
    """The eye goes 20 deg right and back every 8 s: F8 - F7 follows the position (right -> F8 positive, ~6 uV
    per degree) and relaxes over the dwell as exp(-t / tau)."""
    plan = example_plan(64.0, user=_user(7))
    go = np.arange(2.0, 60.0, 8.0)
    t_ns = np.round(np.concatenate([go, go + 4.0]) * 1e9).astype(np.int64)
    yaw = np.concatenate([np.full(go.size, -20.0), np.full(go.size, 20.0)])  # negative yaw = right
    ctx = Context(gaze_shifts=np.column_stack([t_ns, yaw, np.zeros_like(yaw)]))
    s, _ = _eeg(plan, seed=7, ctx=ctx, sensor=_sensor(highpass_tau_s=tau_s))
    assert s.meta["highpass_tau_s"] == tau_s
    heog = (s.data[:, s.channels.index("F8")] - s.data[:, s.channels.index("F7")]).astype(np.float64)
    at = np.arange(0.0, 4.0, 1.0 / FS)
    trials = np.stack([heog[round(g * FS) : round(g * FS) + at.size] - heog[round((g - 0.25) * FS)] for g in go])
    mean = trials.mean(axis=0)  # the background averages out over the 8 trials
    early, late = mean[(at > 0.2) & (at < 0.7)].mean(), mean[(at > 3.2) & (at < 3.7)].mean()
    assert 80e-6 < early < 160e-6, early  # ~6 uV/deg between F8 and F7
    assert late / early == pytest.approx(np.exp(-3.0 / tau_s), abs=0.15), (late / early, np.exp(-3.0 / tau_s))


def test_spatial_mixing_correlates_neighbours() -> None:
    s, _ = _eeg(example_plan(60.0, user=_user(6)), seed=6)
    c = np.corrcoef(s.data.T)
    near = c[s.channels.index("Fz"), s.channels.index("F3")], c[s.channels.index("Pz"), s.channels.index("P3")]
    far = c[s.channels.index("Fz"), s.channels.index("Oz")], c[s.channels.index("T7"), s.channels.index("T8")]
    assert min(near) > 0.2 and max(abs(v) for v in far) < 0.15, (near, far)


def test_stream_is_writable_deterministic_and_sized() -> None:
    plan = example_plan(10.0, (("gesture", "pinch"), ("cognitive_load", "high")), user=_user(0))
    s1, out = _eeg(plan, seed=9)
    s2, _ = _eeg(plan, seed=9)
    check_writable(Recording("u", "s", [s1]))
    assert s1.data.dtype == np.float32 and s1.data.shape == (5000, 32) and s1.units == ["V"] * 32
    assert s1.channels == channel_names(32) and s1.rate_hz == FS
    assert np.array_equal(s1.data, s2.data) and np.array_equal(s1.time_ns, s2.time_ns)
    assert not np.array_equal(s1.data, _eeg(plan, seed=10)[0].data)
    assert out.truth["aperiodic_exponent"] == plan.user.aperiodic_exponent


def test_bytes_do_not_depend_on_the_blas_thread_count() -> None:
    """The mixing is a BLAS product, whose float32 sums differ between thread counts unless pinned."""
    from threadpoolctl import ThreadpoolController

    plan = example_plan(20.0, (("cognitive_load", "high"), ("gesture", "pinch")), user=_user(3))
    runs = []
    for threads in (1, 4):
        with ThreadpoolController().limit(limits=threads, user_api="blas"):
            runs.append(_eeg(plan, seed=5, sensor=_sensor(line_noise="on"))[0].data)
    assert np.array_equal(runs[0], runs[1], equal_nan=True)


def test_warns_when_blas_cannot_be_pinned(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Where the one-thread limit does not take (OpenBLAS ignores it from a worker thread once the main thread
    has set it), the user is told that the bytes may depend on the core count."""
    import contextlib
    import logging
    from types import SimpleNamespace

    from xrdata.synth import eeg

    class Unlimitable:
        def limit(self, **_: object) -> contextlib.AbstractContextManager[None]:
            return contextlib.nullcontext()

        def select(self, **_: object) -> SimpleNamespace:
            return SimpleNamespace(lib_controllers=[SimpleNamespace(num_threads=2)])

    monkeypatch.setattr(eeg, "_blas", Unlimitable)
    eeg._warn_unpinned.cache_clear()
    with caplog.at_level(logging.WARNING, logger="xrdata.synth"):
        _eeg(example_plan(2.0), seed=1)
    eeg._warn_unpinned.cache_clear()
    assert any("could not be limited to one thread" in m for m in caplog.messages)


@settings(max_examples=40, deadline=None)
@given(n_seg=st.integers(1, 6), seed=st.integers(0, 2**32 - 1), fs=st.sampled_from([128.0, 500.0, 1000.0]),
       start=st.floats(0.0, 1.0), length=st.integers(1, 5000))
def test_gain_blocks_are_np_interp(n_seg: int, seed: int, fs: float, start: float, length: int) -> None:
    """The per-block gains (constant or ramped) equal ``np.interp`` of each source over the block's samples."""
    from xrdata.synth.eeg import _Gains

    rng = np.random.default_rng(seed)
    plan = example_plan(6.0 * n_seg, tuple(("rest", "eyes_open") for _ in range(n_seg)))
    gains = _Gains(plan, rng.uniform(0.0, 2.0, (n_seg, 4)), np.ones(4), ramp=0.5)
    n = round(plan.duration_s * fs)
    a = min(int(start * n), n - 1)
    b = min(n, a + length)
    got = gains.at(a, b, fs)
    want = np.stack([np.interp(np.arange(a, b) / fs, gains.kt, gains.kv[:, k]) for k in range(4)])
    if got.ndim == 1:  # constant over the block
        got = np.repeat(got[:, None], b - a, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("line_hz", "fs"), [(50.0, 500.0), (60.0, 500.0), (60.0, 256.0), (49.5, 500.0)])
def test_line_rows_are_the_mains_phases(line_hz: float, fs: float) -> None:
    from xrdata.synth.eeg import _line_rows

    n, block = 3000, 256
    table, period = _line_rows(line_hz, fs, n, block)
    for a in (0, 1, 257, n - block):
        wl = 2 * np.pi * line_hz * np.arange(a, a + block) / fs
        want = [np.cos(wl), np.sin(wl)] + ([np.cos(3 * wl), np.sin(3 * wl)] if 3 * line_hz < fs / 2 else [])
        np.testing.assert_allclose(table[:, a % period : a % period + block], want, atol=2e-6)


def test_not_worn_gives_no_stream() -> None:
    plan = example_plan(5.0, eeg_worn=False)
    assert generate_eeg(plan, SENSOR, np.random.default_rng(0), Context()).streams == []


@pytest.mark.parametrize("spec", [8, 16, 64, "Fz,Cz,Pz,Oz,O1,O2"])
def test_channel_param(spec: int | str) -> None:
    s, _ = _eeg(example_plan(4.0), sensor=_sensor(channels=spec))
    n = spec if isinstance(spec, int) else len(spec.split(","))
    assert s.data.shape[1] == n == len(set(s.channels))
    with pytest.raises(ValueError, match="unknown EEG electrode"):
        channel_names("Fz,XYZ")


@pytest.mark.parametrize(("channels", "rate"), [(8, 250.0), (16, 250.0), (64, 500.0)])
def test_cap_presets(channels: int, rate: float) -> None:
    """The add-on caps (8-64 channels, 250-500 Hz, mains pickup on) keep G1, G2 and G8."""
    sensor = SensorSpec("eeg", rate, {"channels": float(channels), "line_noise": 1.0, "line_noise_uv": 4.0})
    user = _user(8, aperiodic_exponent=1.3, alpha_peak_hz=10.5, line_hz=60.0)
    s, _ = _eeg(example_plan(60.0, (("rest", "eyes_closed"),), user=user), seed=channels, sensor=sensor)
    assert s.data.shape == (round(60 * rate), channels) and s.rate_hz == rate
    assert abs(np.median(stats.aperiodic_exponent(s.data, rate)) - 1.3) <= 0.15
    assert np.all(np.abs(stats.peak_frequency(s.data[:, _cols(s, ("O1", "O2"))], rate) - 10.5) < 1.0)
    assert np.all(stats.line_noise_snr_db(s.data, rate, 60.0) >= 10.0)
