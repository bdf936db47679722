"""Head pose and IMU generator: REALISM rows M4-M7 computed on the generated streams, imprints and contract."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from xrdata.model import Recording, Stream
from xrdata.synth import stats
from xrdata.synth.audio import plan_speech
from xrdata.synth.eye import generate_gaze
from xrdata.synth.head import GRAVITY, generate_head, head_yaw_pitch
from xrdata.synth.types import EXAMPLE_DEVICE, Context, DevicePreset, SensorSpec, SessionPlan, example_plan
from xrdata.validation import check_writable

#: A consumer-grade IMU (BMI088 class) beside the example device's noisy one.
CONSUMER_IMU = SensorSpec("motion", 1000.0, {"gyro_noise_density": 1.2e-4, "accel_noise_density": 1.6e-3,
                                             "gyro_bias_walk": 2e-5, "accel_bias_walk": 2e-4})
CONSUMER = DevicePreset("consumer", "VR/MR", {**EXAMPLE_DEVICE.sensors, "imu": CONSUMER_IMU,
                                              "head": SensorSpec("motion", 72.0, {"rotation_noise_deg": 0.005})})


def _with_activities(plan: SessionPlan, activities: tuple[str, ...]) -> SessionPlan:
    segs = tuple(replace(s, activity=a) for s, a in zip(plan.segments, activities, strict=True))
    return replace(plan, segments=segs)


def _session(plan: SessionPlan, seed: int = 0, *, voice: bool = False) -> tuple[Stream, Stream, Stream | None, Context]:
    ctx = Context()
    if voice:
        plan_speech(plan, np.random.default_rng(seed + 2), ctx)
    dev = plan.device.sensors
    gaze = generate_gaze(plan, dev["gaze"], np.random.default_rng(seed), ctx).streams[0]
    out = generate_head(plan, dev["head"], np.random.default_rng(seed + 1), ctx)
    streams = {s.name: s for s in out.streams}
    return gaze, streams["head"], streams.get("imu"), ctx


@functools.cache
def _free() -> tuple[Stream, Stream, Stream | None, Context]:
    return _session(example_plan(240.0, (("rest", "eyes_open"),)), 31)


def test_m4_head_angular_speed() -> None:
    _, head, _, _ = _free()
    w = stats.head_angular_speed(head.time_ns, head.data[:, 3:7])
    assert 3.0 <= np.median(w) <= 25.0, np.median(w)
    assert np.percentile(w, 99) < 400.0


def test_m4_larger_gaze_shifts_move_the_head_more() -> None:
    gaze, head, _, _ = _free()
    d = stats.gaze_directions(gaze.data, gaze.channels)
    world = stats.gaze_in_world(gaze.time_ns, d, head.time_ns, head.data[:, 3:7])
    sac = stats.detect_saccades(gaze.time_ns, world, 30.0, 1.0)
    w = stats.head_angular_speed(head.time_ns, head.data[:, 3:7])
    th = head.time_ns[1:]
    peak = np.array([w[(th >= s) & (th < s + 8e8)].max() for s in sac["start_ns"]])
    small, large = peak[sac["amplitude"] < 8], peak[sac["amplitude"] > 20]
    assert len(large) >= 10
    assert np.median(large) > 3 * np.median(small), (np.median(small), np.median(large))
    assert np.corrcoef(sac["amplitude"], peak)[0, 1] > 0.4


DEVICES = {"example": EXAMPLE_DEVICE, "consumer": CONSUMER}


@functools.cache
def _still(name: str, seconds: float) -> tuple[SessionPlan, Stream, Stream]:
    device = DEVICES[name]
    plan = _with_activities(example_plan(seconds, (("rest", "eyes_open"),), device=device,
                                         imu_gyro_bias=(0.002, -0.001, 0.0015), imu_accel_bias=(0.02, -0.01, 0.03)),
                            ("still",))
    _, head, imu, _ = _session(plan, 41)
    assert imu is not None
    return plan, head, imu


def test_m5_gyro_allan_deviation_at_rest() -> None:
    taus = np.logspace(-2, 0, 9)
    for name, device in DEVICES.items():
        _, _, imu = _still(name, 300.0)
        density = float(device.sensors["imu"].params["gyro_noise_density"])
        adev = stats.allan_deviation(imu.data[:, 3:6], imu.rate_hz or 0.0, taus)
        slopes = [stats.allan_slope(taus, adev[:, k]) for k in range(3)]
        assert all(abs(s + 0.5) <= 0.1 for s in slopes), slopes
        assert abs(adev[-1].mean() / density - 1) <= 0.1, (adev[-1], density)


def test_m6_accelerometer_at_rest() -> None:
    for name, device in DEVICES.items():
        plan, head, imu = _still(name, 120.0)
        mag, tilt = stats.accel_gravity_check(imu.time_ns, imu.data[:, :3], head.time_ns, head.data[:, 3:7], 1.0)
        noise = float(device.sensors["imu"].params["accel_noise_density"])  # per-axis sd of a 1 s mean
        bias = float(np.linalg.norm(plan.imu_accel_bias)) + 2e-4 * np.sqrt(120.0) * 3
        assert np.all(np.abs(mag - GRAVITY) <= bias + 3 * noise * np.sqrt(3)), (mag.min(), mag.max())
        assert abs(mag.mean() - GRAVITY) <= bias + noise
        assert tilt.max() < 2.0, tilt.max()


def test_m6_gravity_follows_orientation_while_moving() -> None:
    """Over 1 s windows the mean specific force points along the pose's up axis within 2 deg while seated."""
    _, head, imu, _ = _session(replace(example_plan(120.0, (("rest", "eyes_open"),), device=CONSUMER)), 43)
    assert imu is not None
    mag, tilt = stats.accel_gravity_check(imu.time_ns, imu.data[:, :3], head.time_ns, head.data[:, 3:7], 1.0)
    assert np.percentile(tilt, 95) < 2.0 and abs(np.median(mag) - GRAVITY) < 0.1


def test_m7_integrated_gyro_matches_pose() -> None:
    for device in (EXAMPLE_DEVICE, CONSUMER):
        plan = _with_activities(
            example_plan(150.0, (("rest", "eyes_open"), ("gaze_selection", "left"), ("activity", "walking"),
                                 ("rest", "eyes_open"), ("speech_command", "open")), device=device,
                         imu_gyro_bias=(0.002, -0.001, 0.0015)),
            ("still", "sitting", "walking", "standing", "sitting"))
        _, head, imu, _ = _session(plan, 51)
        assert imu is not None
        params = device.sensors["imu"].params
        nd, walk = float(params["gyro_noise_density"]), float(params.get("gyro_bias_walk", 0.0))
        rot = np.radians(float(device.sensors["head"].params.get("rotation_noise_deg", 0.003)))
        rest = imu.time_ns < plan.segments[0].stop_ns - 1e9
        bias = imu.data[rest, 3:6].mean(axis=0)  # calibrate at rest, as a user of the data would
        moving = head.time_ns >= plan.segments[1].start_ns
        err = stats.gyro_pose_increments(imu.time_ns, imu.data[:, 3:6], head.time_ns[moving],
                                         head.data[moving, 3:7], 1.0, bias)
        t_since = np.arange(len(err)) + 30.0  # s since the calibration window
        sigma = np.sqrt(nd**2 * 1.0 + 2 * rot**2 + walk**2 * t_since + nd**2 / 29.0)[:, None]
        assert len(err) > 100
        assert np.mean(np.abs(err) < 3 * sigma) >= 0.99, np.abs(err / sigma).max()
        assert np.all(np.abs(err) < 5 * sigma)


def test_activity_imprint_height_and_gait() -> None:
    """Nearest-centroid on (mean head height, accel magnitude sd, 1.5-3 Hz vertical accel power) per 5 s
    window separates sitting / standing / walking, trained on one session, tested on another."""
    acts = ("sitting", "standing", "walking") * 2
    data = []
    for seed in (1, 2):
        base = example_plan(180.0, tuple(("activity", a) for a in acts))
        plan = _with_activities(replace(base, session_id=f"s{seed}"), acts)
        _, head, imu, _ = _session(plan, seed * 10)
        assert imu is not None
        feats, labels = [], []
        for a in np.arange(2.0, 180.0 - 5.0, 5.0):
            seg = plan.segments[int(plan.segment_at(np.array([round((a + 2.5) * 1e9)]))[0])]
            if a * 1e9 < seg.start_ns + 2e9:  # skip posture transitions
                continue
            mh = (head.time_ns >= a * 1e9) & (head.time_ns < (a + 5) * 1e9)
            mi = (imu.time_ns >= a * 1e9) & (imu.time_ns < (a + 5) * 1e9)
            acc = imu.data[mi, :3].astype(np.float64)
            mag = np.linalg.norm(acc, axis=1)
            spec = np.abs(np.fft.rfft(mag - mag.mean())) ** 2
            f = np.fft.rfftfreq(len(mag), 1.0 / (imu.rate_hz or 1.0))
            gait = np.log10(spec[(f > 1.5) & (f < 5.0)].sum() + 1e-9)
            feats.append([head.data[mh, 1].mean(), np.log10(mag.std()), gait])
            labels.append(seg.activity)
        data.append((np.asarray(feats), np.asarray(labels)))
    (xa, ya), (xb, yb) = data
    assert xa[ya == "standing", 0].mean() > xa[ya == "sitting", 0].mean() + 0.3
    mu, sd = xa.mean(axis=0), xa.std(axis=0)
    cents = {c: ((xa[ya == c] - mu) / sd).mean(axis=0) for c in set(ya)}
    names = sorted(cents)
    dist = np.stack([np.linalg.norm((xb - mu) / sd - cents[c], axis=1) for c in names], axis=1)
    pred = np.asarray(names)[np.argmin(dist, axis=1)]
    assert np.mean(pred == yb) >= 0.9


def test_gaze_selection_imprint_head_yaw() -> None:
    plan = example_plan(80.0, (("gaze_selection", "left"), ("gaze_selection", "right")))
    _, head, _, ctx = _session(plan, 61)
    yaw = np.unwrap(np.radians(ctx.head_yaw_pitch_deg[:, 0]))
    q = head.data[:, 3:7].astype(np.float64)
    fwd_yaw = np.unwrap(2 * np.arctan2(q[:, 1], q[:, 3]))  # yaw of a mostly upright head
    first = head.time_ns < plan.segments[1].start_ns
    for y in (yaw, fwd_yaw):
        diff = np.degrees(np.median(y[first & (head.time_ns > 5e9)]) - np.median(y[~first & (head.time_ns > 45e9)]))
        assert diff > 4.0, diff  # the head turns toward the selected target (left = positive yaw)


def test_cognitive_load_imprint_head_stillness() -> None:
    """High load holds the head stiller than low load: the median angular speed of the low-load segment is at
    least 1.3 x that of the high-load one (sway scales by 1.25 - 0.6 load: 1.16 at load 0.15, 0.74 at 0.85)."""
    plan = example_plan(120.0, (("cognitive_load", "low"), ("cognitive_load", "high")))
    _, head, _, _ = _session(plan, 7)
    w = stats.head_angular_speed(head.time_ns, head.data[:, 3:7])
    t = head.time_ns[1:]
    mid = plan.segments[1].start_ns
    low, high = np.median(w[(t > 5e9) & (t < mid)]), np.median(w[t > mid + 5e9])
    assert low > 1.3 * high, (low, high)


def _band_power(x: np.ndarray, fs: float, lo: float, hi: float) -> float:
    """Mean Welch PSD of (T, 3) ``x`` (summed over axes) in [lo, hi) Hz, 1 s segments."""
    f, p = stats.welch_psd(x, fs, seconds=1.0)
    return float(p[(f >= lo) & (f < hi)].sum(axis=1).mean())


def test_accelerometer_has_no_knot_rate_lines_while_walking() -> None:
    """Above the gait band the accelerometer is white noise: no comb at the 100 Hz knot rate of the model."""
    plan = _with_activities(example_plan(60.0, (("activity", "walking"),), device=CONSUMER), ("walking",))
    _, _, imu, _ = _session(plan, 71)
    assert imu is not None
    x = imu.data[5000:, :3].astype(np.float64)
    floor = _band_power(x, 1000.0, 380.0, 480.0)
    for lo in (60.0, 95.0, 195.0, 295.0):  # the knot-rate harmonics were 13-15 dB above the floor
        assert _band_power(x, 1000.0, lo, lo + 10.0) < 1.5 * floor, lo


def test_imu_feels_the_wearers_voice_not_the_partners() -> None:
    """Bone-conducted voice (opt-in, ``voice_vibration_ms2``): accelerometer power above the gait band >= 7 dB
    over silence in the user's talk spurts (pauses and unvoiced consonants included); the partner's turns and a
    session planned without speech stay at the floor; without the parameter the IMU does not change."""
    talking = (("affect", "neutral"), ("speech_command", "menu"))
    imu_spec = replace(CONSUMER_IMU, params={**CONSUMER_IMU.params, "voice_vibration_ms2": 0.3})
    device = replace(CONSUMER, sensors={**CONSUMER.sensors, "imu": imu_spec})
    plan = example_plan(120.0, talking, device=device)
    _, _, imu, ctx = _session(plan, 81, voice=True)
    assert imu is not None and ctx.voice is not None
    t = imu.time_ns / 1e9
    sp = ctx.voice.spurts

    def inside(speaker: int) -> np.ndarray:
        iv = sp[sp[:, 2] == speaker]
        return ((t[:, None] >= iv[:, 0]) & (t[:, None] < iv[:, 1])).any(axis=1)

    user, partner = inside(0), inside(1)
    _, _, quiet, _ = _session(plan, 81)
    assert quiet is not None
    power = {}
    for name, stream in (("voice", imu), ("quiet", quiet)):
        d = np.diff(stream.data[:, :3].astype(np.float64), axis=0)  # first difference: gait and gravity out
        power[name] = {k: float(np.mean(d[m[1:]] ** 2)) for k, m in
                       (("user", user & ~partner), ("partner", partner & ~user), ("silence", ~user & ~partner))}
    voice, floor = power["voice"], power["voice"]["silence"]
    assert voice["user"] > 5 * floor and voice["partner"] < 1.3 * floor, power
    assert power["quiet"]["user"] < 1.3 * floor, power
    _, _, default, _ = _session(example_plan(120.0, talking, device=CONSUMER), 81, voice=True)
    assert default is not None and np.array_equal(default.data, quiet.data)


def test_streams_writable_context_and_determinism() -> None:
    plan = _with_activities(example_plan(40.0, (("gesture", "swipe_left"), ("activity", "walking"))),
                            ("sitting", "walking"))
    ctx = Context()
    generate_gaze(plan, plan.device.sensors["gaze"], np.random.default_rng(1), ctx)
    a = generate_head(plan, plan.device.sensors["head"], np.random.default_rng(2), ctx)
    b = generate_head(plan, plan.device.sensors["head"], np.random.default_rng(2), ctx)
    check_writable(Recording("u1", "s1", a.streams))
    names = [s.name for s in a.streams]
    assert names == ["head", "imu"]
    for sa, sb in zip(a.streams, b.streams, strict=True):
        assert np.array_equal(sa.data, sb.data) and np.array_equal(sa.time_ns, sb.time_ns)
        assert sa.modality == "motion" and sa.data.dtype == np.float32
    head, imu = a.streams
    assert np.array_equal(ctx.head_time_ns, head.time_ns) and ctx.head_yaw_pitch_deg.shape == (len(head), 2)
    assert abs(stats.sampling_interval(imu.time_ns, imu.rate_hz or 0.0)[1]) < 1e-6
    assert abs(stats.sampling_interval(head.time_ns, head.rate_hz or 0.0)[1]) < 0.01
    q = head.data[:, 3:7].astype(np.float64)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    walking = head.time_ns >= plan.segments[1].start_ns + 3e9
    assert np.ptp(head.data[walking, 0]) + np.ptp(head.data[walking, 2]) > 2.0  # translation while walking


def test_imu_absent_when_device_has_none() -> None:
    dev: dict[str, Any] = {k: v for k, v in EXAMPLE_DEVICE.sensors.items() if k != "imu"}
    plan = example_plan(10.0, device=DevicePreset("no_imu", "AR", dev))
    out = generate_head(plan, dev["head"], np.random.default_rng(0), Context())
    assert [s.name for s in out.streams] == ["head"]


def test_spoken_answers_come_with_a_nod_or_a_shake() -> None:
    """A spoken "yes" comes with a pitch swing and a "no" with a yaw swing, each in the ground truth within
    0.15 s of its word; nothing else of the head changes, and the swings stand out from the head's other
    movements while talking (median angular speed >= 1.5 x that around other commands)."""
    plan = example_plan(90.0, (("speech_command", "yes"), ("speech_command", "no"), ("speech_command", "menu")))
    _, head, _, ctx = _session(plan, 91, voice=True)
    assert ctx.voice is not None
    sensor = plan.device.sensors["head"]
    gestures = generate_head(plan, sensor, np.random.default_rng(92), ctx).truth["answer_head_gestures"]
    silent = generate_head(plan, sensor, np.random.default_rng(92), replace(ctx, voice=None)).streams[0]
    words = {u[0]: u[2] for u in ctx.voice.utterances}
    assert {g[2] for g in gestures} == {"yes", "no"}
    t = head.time_ns / 1e9
    yp = np.unwrap(head_yaw_pitch(head.data[:, 3:7].astype(np.float64)), period=360.0, axis=0)  # deg
    moved = np.abs(yp - np.unwrap(head_yaw_pitch(silent.data[:, 3:7].astype(np.float64)), period=360.0, axis=0))
    inside = np.zeros((len(t), 3), bool)
    near = np.zeros(len(t), bool)  # the pose is a spline through 100 Hz knots: a knot's reach beyond the swing
    for start, stop, word, peak in gestures:
        onset = min(words, key=lambda w: abs(w - start))
        assert words[onset] == word and abs(onset - start) <= 0.15 and 0.3 < stop - start < 1.8, (start, word)
        sel = (t >= start) & (t < stop)
        axis = 1 if word == "yes" else 0
        assert 0.6 * abs(peak) < moved[sel, axis].max() < 1.1 * abs(peak) and moved[sel, 1 - axis].max() < 0.05
        inside[sel, axis] = True
        near |= (t >= start - 0.03) & (t < stop + 0.03)
    assert moved[~near].max() < 1e-6
    for a, b, word in ctx.voice.utterances:
        if word == "menu":
            inside[(t >= a - 0.1) & (t < b + 0.6), 2] = True
    speed = np.abs(np.diff(yp, axis=0)) * head.rate_hz  # |d yaw / dt|, |d pitch / dt|, deg/s
    # inside: column 0 the "no" swings (yaw), 1 the "yes" swings (pitch), 2 around the other command
    no, yes, other = (np.median(speed[inside[1:, k]], axis=0) for k in range(3))
    assert yes[1] > 1.5 * other[1] and no[0] > 1.5 * other[0], (yes, no, other)

