"""Modality dropout: Gilbert-Elliott bursts (T1), per-user / per-session variation (T2), coupling to events (T3)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xrdata.model import Stream
from xrdata.synth import stats
from xrdata.synth.devices import DEVICES
from xrdata.synth.dropout import (
    BASE,
    StreamLoss,
    apply_mask,
    ge_params,
    gilbert_elliott,
    inject,
    plan_session_loss,
    session_level,
)
from xrdata.synth.population import sample_profile
from xrdata.synth.presets import SynthConfig, config_from_preset
from xrdata.synth.timeline import plan_user, user_ids
from xrdata.synth.types import Context, example_plan


@pytest.mark.parametrize(("p", "r"), [(0.002, 0.05), (0.01, 0.2), (0.004, 0.01), (0.05, 0.5)])
def test_t1_gilbert_elliott_rate_burst_and_fano(p: float, r: float) -> None:
    mask = gilbert_elliott(np.random.default_rng(7), 1_000_000, p, r)
    st = stats.loss_statistics(mask)
    assert st["loss_rate"] == pytest.approx(p / (p + r), rel=0.10)
    assert st["mean_burst"] == pytest.approx(1 / r, rel=0.10)
    assert st["fano"] > 1.0
    # the estimator recovers the chain
    assert st["p"] == pytest.approx(p, rel=0.15) and st["r"] == pytest.approx(r, rel=0.15)


def test_t1_independent_loss_is_not_bursty() -> None:
    mask = np.random.default_rng(0).uniform(size=200_000) < 0.05
    assert stats.loss_statistics(mask, window=100)["fano"] < 1.0


def test_t1_on_an_injected_stream() -> None:
    """inject() on an hour of a 1 kHz stream with a 2 % / 20 ms plan: lost samples are NaN, the chain holds."""
    n = 3_600_000
    s = Stream("imu", "motion", np.arange(n, dtype=np.int64) * 1_000_000, np.zeros((n, 1), np.float32),
               ["gyro_x"], "rad/s", rate_hz=1000.0)
    mask, runs, summary = inject(np.random.default_rng(3), s, StreamLoss(0.02, 0.02), Context(), key="imu")
    st = stats.loss_statistics(mask)
    assert st["loss_rate"] == pytest.approx(0.02, rel=0.10)
    assert st["mean_burst"] == pytest.approx(20.0, rel=0.10)
    assert st["fano"] > 1.0
    assert np.isnan(s.data[mask]).all() and not np.isnan(s.data[~mask]).any()
    assert sum(r["n_samples"] for r in runs) == int(mask.sum())
    assert summary["ge_r"] == pytest.approx(1 / 20) and summary["injected_frac"] == pytest.approx(mask.mean())
    first = runs[0]
    assert first["stop_ns"] - first["start_ns"] == first["n_samples"] * 1_000_000


def test_gaze_losses_last_at_least_the_reacquisition_time() -> None:
    n = 90 * 600
    s = Stream("gaze", "gaze", np.arange(n, dtype=np.int64) * 11_111_111, np.zeros((n, 1), np.float32),
               ["left_pupil_diameter"], "mm", rate_hz=90.0)
    mask, runs, summary = inject(np.random.default_rng(1), s, StreamLoss(0.05, 1.2), Context(), key="gaze")
    assert summary["ge_step_samples"] == 54 and len(runs) > 5
    assert min(r["n_samples"] for r in runs) >= 54
    assert stats.loss_statistics(mask)["loss_rate"] == pytest.approx(0.05, rel=0.5)


def test_apply_mask_flags_and_depth() -> None:
    chans = ["combined_dir_x", "combined_dir_y", "combined_dir_z", "left_pupil_diameter", "combined_valid"]
    g = Stream("gaze", "gaze", np.arange(6, dtype=np.int64), np.tile([0, 0, -1, 4, 1], (6, 1)).astype(np.float32),
               chans, ["1", "1", "1", "mm", "1"], rate_hz=1.0)
    m = np.array([0, 1, 1, 0, 0, 1], bool)
    apply_mask(g, m)
    assert np.isnan(g.data[m, :4]).all() and (g.data[m, 4] == 0).all()
    assert (g.data[~m, 4] == 1).all() and not np.isnan(g.data[~m]).any()
    d = Stream("depth", "depth", np.arange(3, dtype=np.int64), np.full((3, 4, 5), 1500, np.uint16), ["depth"], "mm",
               rate_hz=1.0)
    apply_mask(d, np.array([False, True, False]))
    assert (d.data[1] == 0).all() and (d.data[[0, 2]] == 1500).all()


def test_ge_params_burst_in_seconds() -> None:
    p, r = ge_params(0.1, 0.5, 60.0)  # 30-sample bursts
    assert r == pytest.approx(1 / 30) and p / (p + r) == pytest.approx(0.1)
    assert ge_params(0.0, 0.5, 60.0)[0] == 0.0
    assert not gilbert_elliott(np.random.default_rng(0), 1000, 0.0, 0.5).any()


def test_t2_rates_differ_by_user_and_change_over_time() -> None:
    """Realised loss of the hand stream per session over a benchmark cohort: CV across users > 0.2 and a user's
    rate changes from session to session (not one static coin per client)."""
    cfg = config_from_preset("benchmark", users=30, weeks=4.0)
    users, rates, weeks = [], [], []
    rng = np.random.default_rng(5)
    for uid in user_ids(cfg):
        for plan in plan_user(cfg, None, uid).sessions:
            d = plan.meta["dropout"].get("imu")
            if d is None:
                continue
            p, r = ge_params(d["loss_rate"], d["burst_s"], 100.0)
            mask = gilbert_elliott(rng, round(plan.duration_s * 100), p, r)
            users.append(uid)
            rates.append(mask.mean())
            weeks.append(plan.meta["study_week"])
    var = stats.dropout_variation(np.array(users), np.array(rates))
    assert var["cv_between_users"] > 0.2
    assert var["median_cv_within_user"] > 0.1
    # per-user planned rates differ across that user's sessions
    u0 = users[0]
    planned = {plan.meta["dropout"]["imu"]["loss_rate"] for plan in plan_user(cfg, None, u0).sessions}
    assert len(planned) > 1


def test_t2_trend_and_lighting_change_the_rate() -> None:
    cfg = SynthConfig(users=1)
    prof = dataclasses.replace(sample_profile(0, "u0001", cfg), loss_trend_per_week=0.3, loss_propensity=1.0)
    early = plan_session_loss(np.random.default_rng(1), prof, ("hand", "depth"), 0.0, 300.0, cfg)
    late = plan_session_loss(np.random.default_rng(1), prof, ("hand", "depth"), 4.0, 300.0, cfg)
    mean_one = np.exp(-((cfg.dropout_trend_sd * 4.0) ** 2) / 2)  # the trend's log-normal mean taken out
    assert late["hand"].loss_rate == pytest.approx(early["hand"].loss_rate * np.exp(1.2) * mean_one, rel=1e-6)
    dim = plan_session_loss(np.random.default_rng(1), prof, ("hand", "depth"), 0.0, 15.0, cfg)
    sun = plan_session_loss(np.random.default_rng(1), prof, ("hand", "depth"), 0.0, 20000.0, cfg)
    assert dim["hand"].loss_rate > 2 * early["hand"].loss_rate  # dim light: camera hand tracking fails
    assert sun["depth"].loss_rate > 2 * early["depth"].loss_rate  # sunlight washes out active depth
    bursty = plan_session_loss(np.random.default_rng(1), prof, ("imu",), 0.0, 300.0,
                               dataclasses.replace(cfg, bursty_loss=0.3))
    assert 0.1 < bursty["imu"].loss_rate < 0.9 and bursty["imu"].burst_s == BASE["imu"][1]


@pytest.mark.parametrize("week", [0.0, 3.0, 6.0])
def test_bursty_loss_is_the_mean_rate_at_every_week(week: float) -> None:
    """``bursty_loss`` is the cohort's mean planned rate in early and late weeks alike: the per-user
    propensity, trend and session factors each average 1 (under indoor light, no lighting factor)."""
    cfg = SynthConfig(users=1, bursty_loss=0.05)
    rates = [plan_session_loss(np.random.default_rng(i), sample_profile(0, f"u{i:05d}", cfg), ("imu",), week,
                               300.0, cfg)["imu"].loss_rate for i in range(10000)]
    assert np.mean(rates) == pytest.approx(0.05, rel=0.06)


def test_session_level_dropout_rates() -> None:
    cfg = SynthConfig(mic_muted_prob=0.2, eeg_off_prob=0.3)
    draws = [session_level(np.random.default_rng(i), True, cfg) for i in range(4000)]
    worn = np.mean([d[0] for d in draws])
    muted = np.mean([d[1] for d in draws])
    assert worn == pytest.approx(0.7, abs=0.03) and muted == pytest.approx(0.2, abs=0.03)
    assert not any(session_level(np.random.default_rng(i), False, cfg)[0] for i in range(50))


@pytest.fixture(scope="module")
def coupled() -> object:
    """One generated session on a Quest Pro with gesture (clap: hands overlap), selection and rest segments,
    with the gaze stream's bursty loss raised, so blinks and injected losses coexist."""
    from xrdata.synth.generate import generate_session

    plan = example_plan(
        90.0, (("gesture", "clap"), ("gaze_selection", "left"), ("rest", "eyes_open"), ("gesture", "clap"),
               ("affect", "neutral"), ("gesture", "wave")),
        user=dataclasses.replace(example_plan().user, user_id="u0009"), device=DEVICES["quest_pro"],
        meta={"dropout": {"gaze": {"loss_rate": 0.03, "burst_s": 1.2}, "hand": {"loss_rate": 0.02, "burst_s": 0.25},
                          "imu": {"loss_rate": 0.001, "burst_s": 0.02}}, "skill": 0.0},
    )
    return generate_session(plan, seed=5)


def test_t3_short_eye_invalid_episodes_are_blinks(coupled: object) -> None:
    res = coupled
    g = res.recording.streams["gaze"]  # type: ignore[attr-defined]
    valid = g.data[:, g.channels.index("combined_valid")] > 0
    valid &= np.isfinite(g.data[:, g.channels.index("combined_dir_x")])
    t = g.time_ns
    d = np.diff(np.concatenate([[0], (~valid).astype(np.int8), [0]]))
    a, b = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = (a > 0) & (b < len(t))
    episodes = np.column_stack([t[a[keep]], t[b[keep]]])
    blinks = res.context.blinks  # type: ignore[attr-defined]
    assert len(blinks) >= 5
    share = stats.episode_overlap_share(episodes, blinks, max_ns=500_000_000)
    assert share >= 0.95, share


def test_t3_hand_loss_more_likely_during_overlap(coupled: object) -> None:
    res = coupled
    h = res.recording.streams["hand"]  # type: ignore[attr-defined]
    ctx = res.context  # type: ignore[attr-defined]
    lost = ~np.isfinite(h.data[:, :, 0, 0]).all(axis=1)  # either hand lost
    overlap = stats.times_in_intervals(h.time_ns, ctx.hand_overlap)
    out_of_view = stats.times_in_intervals(h.time_ns, ctx.hands_out_of_view)
    assert overlap.sum() > 20
    p_overlap = lost[overlap & ~out_of_view].mean()
    p_clear = lost[~overlap & ~out_of_view].mean()
    assert p_overlap > 1.5 * p_clear, (p_overlap, p_clear)
