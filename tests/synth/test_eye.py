"""Gaze generator: REALISM rows E1-E12 computed on generated gaze streams, label imprints and the contract.

Events are detected on the streams (I-VT at 30 deg/s on gaze-in-world, i.e. the gaze rays rotated by the
head pose stream, as for head-free recordings), never read from the generator's parameters.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from xrdata.model import EVENTS_SCHEMA, Recording, Stream
from xrdata.synth import stats
from xrdata.synth.eye import GAZE_CHANNELS, generate_gaze
from xrdata.synth.head import generate_head
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan, UserTraits, example_plan
from xrdata.validation import check_writable

THRESHOLD = 30.0  # deg/s


def _session(plan: SessionPlan, seed: int = 0, gaze_sensor: SensorSpec | None = None) -> tuple[
        ModalityOutput, ModalityOutput, Context]:
    ctx = Context()
    dev = plan.device.sensors
    gaze = generate_gaze(plan, gaze_sensor or dev["gaze"], np.random.default_rng(seed), ctx)
    head = generate_head(plan, dev["head"], np.random.default_rng(seed + 1000), ctx)
    return gaze, head, ctx


def _world(gaze: Stream, head: Stream) -> np.ndarray:
    d = stats.gaze_directions(gaze.data, gaze.channels)
    return stats.gaze_in_world(gaze.time_ns, d, head.time_ns, head.data[:, 3:7])


def _valid(gaze: Stream) -> np.ndarray:
    return np.asarray(gaze.data[:, gaze.channels.index("combined_valid")] > 0.5)


@functools.cache
def _free() -> dict[str, Any]:
    """Four minutes of seated free viewing."""
    plan = example_plan(240.0, (("rest", "eyes_open"),))
    gaze, head, ctx = _session(plan, 11)
    g, h = gaze.streams[0], head.streams[0]
    world = _world(g, h)
    return {"plan": plan, "gaze": g, "out": gaze, "world": world, "ctx": ctx,
            "sacc": stats.detect_saccades(g.time_ns, world, THRESHOLD)}


def test_e1_main_sequence() -> None:
    f = _free()
    sac = f["sacc"]
    eta, c = stats.main_sequence_fit(sac["amplitude"], sac["peak_velocity"])
    assert 400 <= eta <= 750 and 4 <= c <= 15, (eta, c)
    assert 290 <= eta * (1 - np.exp(-10 / c)) <= 550
    a, v = sac["amplitude"], sac["peak_velocity"]
    mid, big = v[(a >= 10) & (a < 15)], v[(a >= 20) & (a <= 30)]
    assert len(mid) >= 10 and len(big) >= 5
    assert np.median(big) / np.median(mid) < 1.35  # saturating: doubling the amplitude adds < 35 %


def test_e1_main_sequence_follows_the_user() -> None:
    fits = []
    for eta_u, c_u in ((450.0, 5.0), (700.0, 8.0)):
        plan = example_plan(180.0, (("rest", "eyes_open"),), user=UserTraits("ms", saccade_eta=eta_u, saccade_c=c_u))
        gaze, head, _ = _session(plan, 5)
        w = _world(gaze.streams[0], head.streams[0])
        sac = stats.detect_saccades(gaze.streams[0].time_ns, w, THRESHOLD)
        eta, _ = stats.main_sequence_fit(sac["amplitude"], sac["peak_velocity"])
        assert abs(eta / eta_u - 1) < 0.15, (eta_u, eta)
        fits.append(eta)
    assert fits[0] < fits[1]


def test_e2_duration_amplitude() -> None:
    sac = _free()["sacc"]
    d, d0, r2 = stats.duration_fit(sac["amplitude"], sac["duration_ms"])
    assert 1.8 <= d <= 3.0 and 15 <= d0 <= 35 and r2 > 0.8, (d, d0, r2)


def test_e3_fixation_durations() -> None:
    f = _free()
    fx = stats.fixations(f["gaze"].time_ns, f["world"], THRESHOLD)
    s = stats.fixation_stats(fx["duration_ms"])
    assert s["count"] > 300
    assert 180 <= s["mean"] <= 350, s
    assert s["median"] < s["mean"], s  # right-skewed
    assert s["p5"] >= 80 and s["frac_80_1000"] >= 0.95, s


def test_e4_saccade_rate_and_fixation_time() -> None:
    f = _free()
    rate, fix = stats.saccade_rate(f["gaze"].time_ns, f["world"], THRESHOLD)
    assert 2.0 <= rate <= 4.0 and fix >= 0.8, (rate, fix)


def test_e6_blink_rate_by_task() -> None:
    ranges = {"reading": (1.4, 14.4), "neutral": (8.0, 21.0), "conversation": (10.5, 32.5)}
    tasks = {"reading": ("cognitive_load", "low"), "neutral": ("rest", "eyes_open"),
             "conversation": ("speech_command", "open")}
    rates = {}
    for name, task in tasks.items():
        plan = example_plan(240.0, (task,))
        g = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(21), Context()).streams[0]
        rates[name] = stats.blink_stats(g.time_ns, _valid(g))["rate_per_min"]
        lo, hi = ranges[name]
        assert lo <= rates[name] <= hi, (name, rates[name])
    assert rates["reading"] < rates["neutral"] < rates["conversation"]


def test_e7_blink_duration_and_invalid_samples() -> None:
    g = _free()["gaze"]
    valid = _valid(g)
    b = stats.blink_stats(g.time_ns, valid)
    assert 100 <= b["median_ms"] <= 300 and b["frac_50_500"] >= 0.98, b
    d = g.data
    ray = [g.channels.index(c) for c in GAZE_CHANNELS[:20]]  # origins, directions, pupils
    assert np.isnan(d[~valid][:, ray]).all()  # NaN, never zero-filled or held
    assert (d[~valid][:, 22:25] == 0).all()
    assert np.isfinite(d[valid][:, ray]).all()
    openness = d[:, g.channels.index("left_openness")]
    assert openness[~valid].max() < 0.2 < np.median(openness[valid])  # the lid closes


def _pupil_mean(plan: SessionPlan, seed: int = 3) -> tuple[float, float, float]:
    g = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(seed), Context()).streams[0]
    s = stats.pupil_stats(g.data[:, g.channels.index("left_pupil_diameter")])
    s2 = stats.pupil_stats(g.data[:, g.channels.index("right_pupil_diameter")])
    return s["mean"], min(s["min"], s2["min"]), max(s["max"], s2["max"])


def test_e8_pupil_range_load_and_light() -> None:
    for resting in (2.7, 4.0, 6.8):
        user = UserTraits("p", resting_pupil_mm=resting)
        rest, lo, hi = _pupil_mean(example_plan(60.0, (("rest", "eyes_open"),), user=user))
        assert 2.5 <= rest <= 7.0 and abs(rest - resting) < 0.2, (resting, rest)
        for lux, task in ((2.0, ("cognitive_load", "high")), (20000.0, ("cognitive_load", "low"))):
            _, lo, hi = _pupil_mean(example_plan(60.0, (task,), user=user, lighting_lux=lux))
            assert 1.5 <= lo and hi <= 8.0, (resting, lux, lo, hi)
    plan = example_plan(120.0, (("cognitive_load", "low"), ("cognitive_load", "high")))
    g = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(4), Context()).streams[0]
    p = g.data[:, g.channels.index("left_pupil_diameter")]
    t = g.time_ns * 1e-9
    low, high = np.nanmean(p[(t > 10) & (t < 60)]), np.nanmean(p[t > 70])
    assert 0.2 <= high - low <= 0.8, (low, high)  # task-evoked dilation
    dim = _pupil_mean(example_plan(60.0, (("rest", "eyes_open"),), lighting_lux=30.0))[0]
    bright = _pupil_mean(example_plan(60.0, (("rest", "eyes_open"),), lighting_lux=3000.0))[0]
    assert bright < dim - 0.3, (dim, bright)  # light reflex


def test_e10_precision_per_device() -> None:
    base = example_plan(120.0, (("rest", "eyes_open"),))
    for rate, precision in ((200.0, 0.06), (90.0, 0.25), (120.0, 0.12)):
        sensor = SensorSpec("gaze", rate, {"precision_deg": precision})
        g = generate_gaze(base, sensor, np.random.default_rng(8), Context()).streams[0]
        rms = stats.precision_rms_s2s(g.time_ns, stats.gaze_directions(g.data, g.channels), THRESHOLD)
        assert abs(rms / precision - 1) <= 0.3, (precision, rms)


def test_e12_sampling_interval() -> None:
    base = example_plan(120.0, (("rest", "eyes_open"),))
    for rate in (90.0, 120.0, 200.0, 250.0):
        sensor = SensorSpec("gaze", rate, {"precision_deg": 0.1})
        g = generate_gaze(base, sensor, np.random.default_rng(9), Context()).streams[0]
        mean, rel = stats.sampling_interval(g.time_ns, rate)
        assert abs(rel) < 0.01, (rate, mean)
        assert g.rate_hz == rate
        assert (np.diff(g.time_ns) > 0).all()
        assert np.std(np.diff(g.time_ns)) > 0  # jittered, not a synthetic perfect grid


def test_calibration_offset_and_its_growth() -> None:
    """The reported gaze is the true gaze plus the plan's calibration offset, growing during the session."""
    rays = []
    for offset, drift in (((0.0, 0.0), 0.0), ((2.0, -1.0), 6.0)):  # a drift-free baseline, same random stream
        sensor = SensorSpec("gaze", 120.0, {"precision_deg": 0.1, "offset_drift_deg_per_h": drift})
        plan = example_plan(600.0, (("rest", "eyes_open"),), gaze_offset_deg=offset)
        g = generate_gaze(plan, sensor, np.random.default_rng(12), Context()).streams[0]
        d = stats.gaze_directions(g.data, g.channels)
        rays.append((np.degrees(np.arctan2(-d[:, 0], -d[:, 2])), np.degrees(np.arcsin(d[:, 1]))))
    t = g.time_ns * 1e-9
    dyaw, dpitch = rays[1][0] - rays[0][0], rays[1][1] - rays[0][1]
    start, end = t < 20, t > 580
    growth = 6.0 * 590 / 3600 * np.array([2.0, -1.0]) / np.sqrt(5.0)  # along the offset, deg
    assert np.allclose([np.nanmedian(dyaw[start]), np.nanmedian(dpitch[start])], [2.0, -1.0], atol=0.1)
    assert np.allclose([np.nanmedian(dyaw[end]), np.nanmedian(dpitch[end])], np.array([2.0, -1.0]) + growth, atol=0.15)


def test_stream_is_writable_and_context_filled() -> None:
    f = _free()
    out, ctx, g = f["out"], f["ctx"], f["gaze"]
    events = pl.DataFrame(out.events, schema=EVENTS_SCHEMA, orient="row")
    check_writable(Recording("u1", "s1", out.streams, events=events))
    assert set(events["label"].unique()) == {"fixation", "saccade", "blink"}
    assert g.channels == GAZE_CHANNELS and g.data.dtype == np.float32
    # context: blinks are exactly the invalid episodes, saccades and gaze shifts are filled
    ep = stats.invalid_episodes(g.time_ns, _valid(g))
    assert len(ctx.blinks) >= len(ep) > 0
    assert np.all(np.abs(ep[:, 0, None] - ctx.blinks[None, :, 0]).min(axis=1) < 2e7)
    assert ctx.saccades.shape[1] == 4 and len(ctx.saccades) > 500
    assert ctx.gaze_shifts.shape[1] == 3 and len(ctx.gaze_shifts) >= len(ctx.saccades)
    assert (ctx.saccades[:, 1] > ctx.saccades[:, 0]).all()


def test_eyes_closed_segment_has_no_valid_gaze() -> None:
    plan = example_plan(60.0, (("rest", "eyes_open"), ("rest", "eyes_closed")))
    g = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(1), Context()).streams[0]
    closed = g.time_ns >= plan.segments[1].start_ns
    assert not _valid(g)[closed].any() and _valid(g)[~closed].mean() > 0.9
    assert np.nanmax(g.data[closed, g.channels.index("left_openness")]) < 0.1


def test_deterministic() -> None:
    plan = example_plan(30.0, (("gaze_selection", "up"), ("gesture", "swipe_left")))
    a = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(7), Context())
    b = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(7), Context())
    c = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(8), Context())
    assert np.array_equal(a.streams[0].data, b.streams[0].data, equal_nan=True)
    assert np.array_equal(a.streams[0].time_ns, b.streams[0].time_ns)
    assert a.events == b.events
    assert not np.array_equal(a.streams[0].data, c.streams[0].data, equal_nan=True)


def _window_features(gaze: Stream, head: Stream, seconds: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    t = gaze.time_ns
    world = _world(gaze, head)
    pupil = gaze.data[:, gaze.channels.index("left_pupil_diameter")]
    feats, starts = [], np.arange(0.0, t[-1] * 1e-9 - seconds + 1e-9, seconds)
    for a in starts:
        m = (t >= a * 1e9) & (t < (a + seconds) * 1e9)
        rate, _ = stats.saccade_rate(t[m], world[m], THRESHOLD)
        feats.append([np.nanmean(pupil[m]), rate])
    return np.asarray(feats), starts


def test_load_imprint_pupil_and_saccade_rate() -> None:
    """Nearest-centroid on (mean pupil, saccade rate) per 10 s window separates high from low load, trained on
    one session and tested on another."""
    tasks = (("cognitive_load", "low"), ("cognitive_load", "high")) * 3
    data = []
    for seed in (1, 2):
        plan = replace(example_plan(360.0, tasks), session_id=f"s{seed}")
        gaze, head, _ = _session(plan, seed)
        x, starts = _window_features(gaze.streams[0], head.streams[0])
        seg = plan.segment_at(np.round((starts + 5.0) * 1e9).astype(np.int64))
        y = np.array([plan.segments[i].label == "high" for i in seg])
        data.append((x, y))
    (xa, ya), (xb, yb) = data
    assert xa[ya, 0].mean() > xa[~ya, 0].mean() + 0.2  # dilation
    assert xa[ya, 1].mean() < xa[~ya, 1].mean()  # fewer saccades
    mu, sd = xa.mean(axis=0), xa.std(axis=0)
    za, zb = (xa - mu) / sd, (xb - mu) / sd
    c1, c0 = za[ya].mean(axis=0), za[~ya].mean(axis=0)
    pred = np.linalg.norm(zb - c1, axis=1) < np.linalg.norm(zb - c0, axis=1)
    assert np.mean(pred == yb) >= 0.85


def test_gaze_selection_imprint_direction() -> None:
    plan = example_plan(60.0, (("gaze_selection", "left"), ("gaze_selection", "right")))
    g = generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(2), Context()).streams[0]
    yaw, _ = np.degrees(np.arctan2(-g.data[:, 15], -g.data[:, 17])), None
    first = g.time_ns < plan.segments[1].start_ns
    assert np.nanmedian(yaw[first]) > 5.0 > -5.0 > np.nanmedian(yaw[~first])  # yaw positive = left
