"""Head pose and IMU: the head moves because the body does and because gaze recruits it.

Mechanisms (REALISM.md M4-M7):

- **Body path** (shared latent, :func:`body_path`): posture per segment activity (sitting, standing, walking,
  running, ``still`` = the headset lies on a table), with minimum-jerk transitions between postures. Walking
  follows a room-scale loop (3-5 m straight legs joined by 180 deg turns of radius 0.6-0.9 m, analytic in
  the distance walked), with vertical bob at the step frequency and lateral sway at the stride frequency.
  It is a deterministic function of the plan (seeded by user/session ids), so the hand generator moves the
  hands with the same body.
- **Gaze-head coupling** (:func:`head_recruitment`, :func:`head_coupling`): every gaze shift in
  ``ctx.gaze_shifts`` that leaves the eye more than 10 deg eccentric in the head recruits a head rotation that
  removes 80 % (yaw) / 50 % (pitch) of the excess, as a minimum-jerk movement lasting 0.3 s + 7.5 ms/deg;
  overlapping movements superpose (Flash & Hogan). Larger gaze shifts -> larger and faster head turns. The
  eye generator subtracts the same deterministic rotation to get eye-in-head gaze.
- **Head sway**: band-limited (< 0.7 Hz) noise, larger standing than sitting, scaled up by arousal and down
  by cognitive load (x (1.25 - 0.6 load): 1.16 at low, 0.74 at high load; head stillness is a measure of
  mental load in HMD studies); speech-related nods (1-4 Hz) while the user talks; gait oscillations of yaw/pitch/roll
  while walking; small gesture-following head movements (yaw toward the swipe, nods on pinch/grab/point).
- **Spoken answers with the head**: a spoken "yes" comes with a nod and a "no" with a shake (1-3 cycles at
  2-3 Hz, ~4 deg, around the word's onset) for 50-95 % of a user's answers (McClave 2000; Hadar et al. 1985);
  ground truth ``answer_head_gestures``.
- **One trajectory for pose and IMU**: the model is evaluated on 100 Hz knots and joined by a C1 Catmull-Rom
  curve; the pose stream samples that curve and the gyro measures its exact rate of rotation. The
  accelerometer takes the knots' second differences joined linearly (continuous acceleration): the curve's
  own second derivative jumps at every knot, which put a comb of lines at the 100 Hz knot rate 13-18 dB
  above the accelerometer's noise floor while walking.
- **IMU** at the IMU rate on the device (head) frame, OpenXR axes: accelerometer = R^T (p'' + g_up) + bias +
  white noise (``accel_noise_density``), gyroscope = body rate 2 vec(q* q') + bias + white noise
  (``gyro_noise_density``); both biases start at ``plan.imu_*_bias`` and random-walk. Integrating the gyro
  reproduces the pose's rotation up to the noise (M7); at rest the gyro Allan deviation is white-noise
  limited, slope -1/2 with ADEV(1 s) = noise density (M5).
- **The wearer's voice in the accelerometer** (opt-in, ``voice_vibration_ms2``): when the session's speech
  is planned (``ctx.voice``), the user's own phones reach the IMU through the skull and the face cushion
  (:func:`xrdata.synth.audio.bone_vibration`: the audio model's phones, bone-conduction low-pass, sampled
  without an anti-alias filter) along a per-user axis, at ``voice_vibration_ms2`` RMS while talking times a
  per-user fit factor (log-normal, sigma 0.4). The partner's voice does not reach it.

Sensor parameters read (``SensorSpec.params``):

- head: ``position_noise_m`` (default 0.0002 m RMS per axis), ``rotation_noise_deg`` (0.003 deg RMS per
  axis), ``jitter_ms`` (timestamp jitter, 0.2 ms RMS).
- imu: ``gyro_noise_density`` (rad/s/sqrt(Hz), default 0.003), ``accel_noise_density`` (m/s^2/sqrt(Hz),
  default 0.02), ``gyro_bias_walk`` (rad/s/sqrt(s), default 2e-5), ``accel_bias_walk`` (m/s^2/sqrt(s),
  default 2e-4), ``voice_vibration_ms2`` (RMS acceleration of the wearer's voice while talking, m/s^2;
  default 0, off: no device preset sets it, because its level is not calibrated on a headset (skull
  vibration during phonation is of the order of 0.1-1 m/s^2) and with it at 0.3 m/s^2 the trainer's
  benchmark moved (federated further behind centralized; benchmarks/README.md, fl_acceptance)).

Label imprints in head/IMU: activity (head height: sitting ~1.2 m, standing ~1.6 m; walking/running: gait
bob at 1.8-2.7 Hz in accel and position, translation), gaze_selection target (head yaw toward the target
through gaze-head coupling), cognitive load (less head sway under high load), affect/arousal (more sway),
talking (1-4 Hz nods; with ``voice_vibration_ms2`` the voice's vibration in the accelerometer, whose folded
spectrum differs per spoken command), the spoken commands "yes" and "no" (a nod, a shake), gesture class (small
head yaw/pitch following the gesture), rest eyes closed (still).

Conventions: yaw is a right-handed rotation about +Y (positive = to the left), pitch about +X (positive =
up), roll about -Z... composed as q = q_y(yaw) q_x(pitch) q_z(roll). Positions are in the OpenXR ``stage``
space (floor at y = 0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdata.model import Stream
from xrdata.synth.audio import SpeechPlan, bone_vibration, gaussian_noise
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan

#: Standard gravity (m/s^2).
GRAVITY = 9.80665
#: Eye centre relative to the neck pivot, in the head frame (m): up and forward.
HEAD_OFFSET = np.array([0.0, 0.10, -0.08])
#: Posture per activity: neck height (m), speed (m/s), vertical bob (m), lateral sway (m), head-sway scale.
ACTIVITIES: dict[str, tuple[float, float, float, float, float]] = {
    "sitting": (1.07, 0.0, 0.0, 0.0, 1.0),
    "standing": (1.48, 0.0, 0.0, 0.0, 1.3),
    "walking": (1.48, 1.25, 0.022, 0.02, 1.4),
    "running": (1.45, 2.6, 0.045, 0.03, 1.6),
    "still": (0.75, 0.0, 0.0, 0.0, 0.0),
}
#: Gaze-head coupling: eccentricity the eyes tolerate (deg), share of the excess the head takes (yaw, pitch).
ECCENTRICITY_DEG = 10.0
HEAD_GAIN = (0.8, 0.5)
HEAD_LIMIT_DEG = (75.0, 40.0)

HEAD_CHANNELS = ["head_px", "head_py", "head_pz", "head_qx", "head_qy", "head_qz", "head_qw"]
HEAD_UNITS = ["m", "m", "m", "1", "1", "1", "1"]
IMU_CHANNELS = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]
IMU_UNITS = ["m/s^2", "m/s^2", "m/s^2", "rad/s", "rad/s", "rad/s"]


# --------------------------------------------------------------------------------------------------------------
# Deterministic per-user / per-session latents


def stable_seed(*keys: object) -> int:
    """A 64-bit seed from keys (stable across processes and Python versions)."""
    text = "\x1f".join(str(k) for k in keys).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def stable_uniform(*keys: object) -> float:
    """A number in [0, 1) fixed by ``keys`` (e.g. a user's body height factor)."""
    return stable_seed(*keys) / 2.0**64


def stable_rng(*keys: object) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*keys))


# --------------------------------------------------------------------------------------------------------------
# Quaternions (x, y, z, w), arrays (..., 4)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4) (broadcasting)."""
    qx, qy, qz, qw = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    tx = 2.0 * (qy * vz - qz * vy)
    ty = 2.0 * (qz * vx - qx * vz)
    tz = 2.0 * (qx * vy - qy * vx)
    return np.stack([vx + qw * tx + qy * tz - qz * ty, vy + qw * ty + qz * tx - qx * tz,
                     vz + qw * tz + qx * ty - qy * tx], axis=-1)


def quat_axis(axis: int, angle_rad: np.ndarray | float) -> np.ndarray:
    """Rotation by ``angle_rad`` about the coordinate axis 0=x, 1=y, 2=z."""
    half = 0.5 * np.asarray(angle_rad, dtype=np.float64)
    q = np.zeros((*half.shape, 4))
    q[..., axis] = np.sin(half)
    q[..., 3] = np.cos(half)
    return q


def quat_from_ypr(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray | float = 0.0) -> np.ndarray:
    """q_y(yaw) q_x(pitch) q_z(roll), angles in radians: the two products of :func:`quat_axis` quaternions
    written out without their zero terms (the same values, a third of the arithmetic)."""
    hy = 0.5 * np.asarray(yaw, dtype=np.float64)
    hp = 0.5 * np.asarray(pitch, dtype=np.float64)
    cy, sy, cp, sp = np.cos(hy), np.sin(hy), np.cos(hp), np.sin(hp)
    x, y, z, w = cy * sp, sy * cp, 0.0 - sy * sp, cy * cp
    roll_arr = np.asarray(roll, dtype=np.float64)
    if roll_arr.ndim == 0 and float(roll_arr) == 0.0:
        return np.stack(np.broadcast_arrays(x, y, z, w), axis=-1)
    hr = 0.5 * roll_arr
    cr, sr = np.cos(hr), np.sin(hr)
    return np.stack(np.broadcast_arrays(x * cr + y * sr, y * cr - x * sr, w * sr + z * cr, w * cr - z * sr),
                    axis=-1)


def quat_from_rotvec(r: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    return np.concatenate([r * (0.5 * np.sinc(angle / (2 * np.pi))), np.cos(0.5 * angle)], axis=-1)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    q = np.where(q[..., 3:4] < 0, -q, q)
    n = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    w = q[..., 3:4]
    angle = 2.0 * np.arctan2(n, w)
    scale = np.divide(angle, n, out=2.0 / np.maximum(w, 1e-12), where=n > 1e-9)
    return q[..., :3] * scale


def direction_from_yaw_pitch(yaw_deg: np.ndarray, pitch_deg: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 3) in the OpenXR frame (-Z forward, +Y up, yaw positive to the left)."""
    return np.stack(direction_components(yaw_deg, pitch_deg), axis=-1)


def direction_components(yaw_deg: np.ndarray, pitch_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x, y, z components of :func:`direction_from_yaw_pitch`, unstacked (each shaped like the angles)."""
    y = np.radians(yaw_deg)
    p = np.radians(pitch_deg)
    cp = np.cos(p)
    return -np.sin(y) * cp, np.sin(p), -np.cos(y) * cp


def yaw_pitch_from_direction(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`direction_from_yaw_pitch` (degrees)."""
    yaw = np.degrees(np.arctan2(-d[..., 0], -d[..., 2]))
    pitch = np.degrees(np.arcsin(np.clip(d[..., 1], -1.0, 1.0)))
    return yaw, pitch


# --------------------------------------------------------------------------------------------------------------
# Minimum-jerk keyframes


def minjerk(tau: np.ndarray) -> np.ndarray:
    """The minimum-jerk position profile s(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5 on [0, 1] (clipped)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau * tau * tau * (10.0 + tau * (-15.0 + 6.0 * tau))


def minjerk_interp(t: np.ndarray, kt: np.ndarray, kv: np.ndarray) -> np.ndarray:
    """Values at times ``t`` of a path through keyframes ``(kt, kv)`` (K,), (K, C), moving between
    consecutive keyframes with a minimum-jerk profile (zero velocity and acceleration at every keyframe);
    constant before the first and after the last keyframe."""
    kv = np.asarray(kv, dtype=np.float64)
    if kv.ndim == 1:
        kv = kv[:, None]
    if len(kt) == 1:
        return np.broadcast_to(kv[0], (len(t), kv.shape[1])).copy()
    i = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
    t0 = kt[i]
    span = kt[i + 1] - t0
    tau = np.divide(t - t0, span, out=np.ones_like(t, dtype=np.float64), where=span > 0)
    s = minjerk(tau)
    # kv[i + 1] - kv[i] gathered from the K - 1 keyframe differences: the same subtraction, so the same bits,
    # without a second (N, C) gather and an (N, C) subtraction. In pieces of rows, so the gathered keyframe
    # values are added while in cache rather than from a second (N, C) array.
    d = np.diff(kv, axis=0)
    out = np.empty((len(t), kv.shape[1]))
    step = max(256, (1 << 15) // kv.shape[1])
    for a in range(0, len(t), step):
        ii = i[a : a + step]
        o = out[a : a + step]
        np.take(d, ii, axis=0, out=o, mode="clip")  # i is in range: "clip" only skips the buffered copy
        o *= s[a : a + step, None]
        o += kv[ii]
    return out


def minjerk_integral(t: np.ndarray, kt: np.ndarray, kv: np.ndarray) -> np.ndarray:
    """The integral from kt[0] to ``t`` of the 1-D minimum-jerk keyframe path (analytic)."""
    return minjerk_integrals(t, kt, [kv])[0]


def minjerk_integrals(t: np.ndarray, kt: np.ndarray, kvs: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`minjerk_integral` of several 1-D keyframe paths on the same keyframe times ``kt`` (K,): one
    (N,) array per path in ``kvs``; the keyframe lookup and the minimum-jerk shape are computed once."""
    kvs = [np.asarray(kv, dtype=np.float64) for kv in kvs]
    if len(kt) == 1:
        return [kv[0] * (t - kt[0]) for kv in kvs]
    span = np.diff(kt)
    i = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
    t0 = kt[i]
    sp = span[i]
    tau = np.clip(np.divide(t - t0, sp, out=np.ones_like(t, dtype=np.float64), where=sp > 0), 0.0, 1.0)
    partial_shape = tau**4 * (2.5 + tau * (-3.0 + tau))  # integral of minjerk from 0 to tau
    late = t > kt[-1]
    out = []
    for kv in kvs:
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (kv[:-1] + kv[1:]) * span)])
        inside = kv[i] * tau * sp + (kv[i + 1] - kv[i]) * sp * partial_shape
        after = np.maximum(t - kt[-1], 0.0) * kv[-1]
        before = np.minimum(t - kt[0], 0.0) * kv[0]
        out.append(cum[i] + inside + np.where(late, after, 0.0) + before)
    return out


def segment_keyframes(plan: SessionPlan, values: np.ndarray, transition_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes that hold ``values[i]`` (S, C) during segment i, moving to it over ``transition_s`` after
    the segment starts (clipped to half the segment)."""
    values = np.asarray(values, dtype=np.float64)
    kt = [0.0]
    kv = [values[0]]
    for i, seg in enumerate(plan.segments):
        if i == 0:
            continue
        a = seg.start_ns * 1e-9
        length = (seg.stop_ns - seg.start_ns) * 1e-9
        kt += [a, a + min(transition_s, 0.5 * length)]
        kv += [values[i - 1], values[i]]
    return np.asarray(kt), np.asarray(kv)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n)."""
    lengths = np.maximum(lengths, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


def intervals_from_mask(t_ns: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K, 2) int64 [start_ns, stop_ns) of the runs where ``mask`` is True (stop = next sample's time)."""
    if not mask.any():
        return np.empty((0, 2), dtype=np.int64)
    m = np.concatenate([[False], mask, [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    step = int(np.median(np.diff(t_ns))) if len(t_ns) > 1 else 1
    t_ext = np.concatenate([t_ns, [t_ns[-1] + step]])
    return np.stack([t_ext[starts], t_ext[stops]], axis=1).astype(np.int64)


def smooth_noise(rng: np.random.Generator, n: int, fs: float, band: tuple[float, float] | float,
                 channels: int = 1, order: int = 4) -> np.ndarray:
    """(n, channels) Gaussian noise band-limited by a Butterworth filter, unit standard deviation.

    ``band`` is a low-pass corner (Hz) or a (low, high) band-pass; a burn-in of 4 / corner seconds removes the
    filter's start-up transient."""
    from scipy import signal

    low = band if isinstance(band, float | int) else band[0]
    burn = int(4.0 * fs / max(float(low), 1e-3))
    x = rng.standard_normal((n + burn, channels))
    if isinstance(band, float | int):
        sos = signal.butter(order, float(band), btype="lowpass", fs=fs, output="sos")
    else:
        sos = signal.butter(order, list(band), btype="bandpass", fs=fs, output="sos")
    y = signal.sosfilt(sos, x, axis=0)[burn:]
    sd = y.std(axis=0)
    return np.asarray(y / np.where(sd > 0, sd, 1.0))


def catmull_rom(x: np.ndarray, fs: float, t: np.ndarray) -> np.ndarray:
    """Interpolate a series ``x`` (M, C), M >= 2, sampled at ``fs`` from t=0 at times ``t`` (C1-smooth)."""
    m = x.shape[0]
    u = np.clip(t * fs, 0.0, m - 1.000001)
    j = np.floor(u).astype(np.int64)
    f = u - j
    # the cubic of each of the M - 1 intervals once (end knots repeated), then Horner at the samples; channel-
    # major (4, C, M - 1) so the broadcasts of f run along the samples; returned as the (N, C) transposed view
    xt = np.ascontiguousarray(x.T)
    k = np.arange(m - 1)
    p0, p1, p2, p3 = xt[:, np.maximum(k - 1, 0)], xt[:, :-1], xt[:, 1:], xt[:, np.minimum(k + 2, m - 1)]
    coef = np.stack([p1, 0.5 * (p2 - p0), 0.5 * (2 * p0 - 5 * p1 + 4 * p2 - p3), 0.5 * (3 * (p1 - p2) + p3 - p0)])
    c0, c1, c2, c3 = np.take(coef, j, axis=2)
    out: np.ndarray = c0 + f * (c1 + f * (c2 + f * c3))
    return out.T


# --------------------------------------------------------------------------------------------------------------
# Body path (shared with hand.py)


def activity_params(activity: str) -> tuple[float, float, float, float, float]:
    return ACTIVITIES.get(activity, ACTIVITIES["standing"])


@dataclass(frozen=True)
class BodyPath:
    """The body at given times: neck pivot position (N, 3) in stage space, heading (N,) rad (yaw),
    stride phase (N,) rad, gait envelope (N,) 0..1 and the worn flag (N,) 0..1 (0 = device on a table)."""

    neck: np.ndarray
    heading: np.ndarray
    stride_phase: np.ndarray
    gait: np.ndarray
    worn: np.ndarray


class BodyModel:
    """Deterministic body path of one session (a function of the plan only, shared by head and hand)."""

    def __init__(self, plan: SessionPlan) -> None:
        uid = plan.user.key
        self.height_factor = 0.93 + 0.14 * stable_uniform(uid, "height")
        self.step_factor = 0.93 + 0.14 * stable_uniform(uid, "cadence")
        rng = stable_rng(uid, plan.session_id, "body")
        self.straight = rng.uniform(3.0, 5.0)  # m, the straight legs of a room-scale walking loop
        self.radius = rng.uniform(0.6, 0.9)  # m, the 180 deg turns at each end
        self.sign = 1.0 if rng.uniform() < 0.5 else -1.0
        self.heading0 = rng.uniform(-np.pi, np.pi)
        acts = [activity_params(s.activity) for s in plan.segments] or [ACTIVITIES["sitting"]]
        vals = np.array(
            [[a[0] * self.height_factor, a[1], 1.0 if a[1] > 0 else 0.0, a[2], a[3],
              0.0 if s.activity == "still" else 1.0] for a, s in zip(acts, plan.segments, strict=False)]
            or [[acts[0][0], 0, 0, 0, 0, 1]]
        )
        self.kt: np.ndarray
        self.kv: np.ndarray
        self.kt, self.kv = segment_keyframes(plan, vals, 1.5) if plan.segments else (np.zeros(1), vals)

    def _arc(self, a: np.ndarray, h_a: float, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position and heading after ``length`` m along an arc of the loop starting at ``a`` (2,), heading h_a."""
        sg, r = self.sign, self.radius
        h = h_a + sg * length / r
        return a[0] + sg * r * (np.cos(h) - np.cos(h_a)), a[1] - sg * r * (np.sin(h) - np.sin(h_a)), h

    def _loop(self, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, z, heading) after walking ``dist`` m around a stadium-shaped loop through the origin: a
        straight leg, a 180 deg turn, the way back, another turn (forward = (-sin h, 0, -cos h))."""
        leg, r, h0, sg = self.straight, self.radius, self.heading0, self.sign
        arc = np.pi * r
        per = 2 * leg + 2 * arc
        u = np.mod(dist, per)
        f0 = np.array([-np.sin(h0), -np.cos(h0)])
        p1 = leg * f0
        x2, z2, _ = self._arc(p1, h0, np.array(arc))
        p2 = np.array([float(x2), float(z2)])
        h2 = h0 + sg * np.pi
        p3 = p2 + leg * np.array([-np.sin(h2), -np.cos(h2)])
        x = np.empty_like(u)
        z = np.empty_like(u)
        h = np.empty_like(u)
        seg1 = u < leg
        seg2 = ~seg1 & (u < leg + arc)
        seg3 = ~seg1 & ~seg2 & (u < 2 * leg + arc)
        seg4 = ~(seg1 | seg2 | seg3)
        x[seg1], z[seg1], h[seg1] = u[seg1] * f0[0], u[seg1] * f0[1], h0
        x[seg2], z[seg2], h[seg2] = self._arc(p1, h0, u[seg2] - leg)
        v3 = u[seg3] - leg - arc
        x[seg3], z[seg3], h[seg3] = p2[0] - v3 * np.sin(h2), p2[1] - v3 * np.cos(h2), h2
        x[seg4], z[seg4], h[seg4] = self._arc(p3, h2, u[seg4] - 2 * leg - arc)
        del h
        return x, z, self._heading(dist)

    def _heading(self, dist: np.ndarray, width: float = 0.5) -> np.ndarray:
        """Heading along the loop, with each change of curvature blended over ``width`` m (minimum jerk) so
        the yaw rate ramps up into a turn instead of jumping (the body turns smoothly)."""
        leg, r, sg = self.straight, self.radius, self.sign
        arc = np.pi * r
        per = 2 * leg + 2 * arc
        laps = int(np.max(dist, initial=0.0) // per) + 2
        one = np.array([leg, leg + arc, 2 * leg + arc, per])
        brk = (one[None, :] + per * np.arange(laps)[:, None]).ravel() - 0.5 * width  # blend centred on the break
        slope = np.tile(np.array([1.0, -1.0, 1.0, -1.0]) * sg / r, laps)
        done = np.searchsorted(brk + width, dist, side="right")  # breaks whose blend is complete
        c_sum = np.concatenate([[0.0], np.cumsum(slope)])
        cs_sum = np.concatenate([[0.0], np.cumsum(slope * (brk + 0.5 * width))])
        h = self.heading0 + c_sum[done] * dist - cs_sum[done]
        k = np.minimum(done, len(brk) - 1)
        tau = np.clip((dist - brk[k]) / width, 0.0, 1.0)
        active = (dist >= brk[k]) & (done < len(brk))
        ramp = width * tau**4 * (2.5 + tau * (-3.0 + tau))
        return h + np.where(active, slope[k] * ramp, 0.0)

    def at(self, t_s: np.ndarray) -> BodyPath:
        kt, kv = self.kt, self.kv
        env = minjerk_interp(t_s, kt, kv)
        height, bob, lat, worn = env[:, 0], env[:, 3], env[:, 4], env[:, 5]
        dist, moved = minjerk_integrals(t_s, kt, [kv[:, 1], kv[:, 2]])
        x, z, h = self._loop(dist)
        # Steps: cadence 1.45 Hz + 0.45 Hz per m/s while moving; stride phase = pi * steps.
        steps = self.step_factor * (1.45 * moved + 0.45 * dist)
        phase = np.pi * steps
        y = height + bob * np.cos(2.0 * phase)
        side = lat * np.sin(phase)
        x = x + side * np.cos(h)
        z = z - side * np.sin(h)
        gait = np.clip(bob / 0.022, 0.0, 2.0)
        return BodyPath(np.stack([x, y, z], axis=1), h, phase, gait, worn)


def body_path(plan: SessionPlan, t_s: np.ndarray) -> BodyPath:
    """The session's body path at times ``t_s`` (seconds); see :class:`BodyModel`."""
    return BodyModel(plan).at(np.asarray(t_s, dtype=np.float64))


# --------------------------------------------------------------------------------------------------------------
# Gaze-head coupling (shared with eye.py)


def head_recruitment(gaze_shifts: np.ndarray) -> np.ndarray:
    """Head movements recruited by gaze shifts: (K, 4) onset_s, d_yaw_deg, d_pitch_deg, duration_s.

    ``gaze_shifts`` (M, 3): time_ns, d_yaw, d_pitch of the gaze target in the body frame, in time order.
    The gaze target path is their running sum from straight ahead; whenever the gaze ends up more than
    ``ECCENTRICITY_DEG`` away from the head, the head takes ``HEAD_GAIN`` of the excess.
    """
    if len(gaze_shifts) == 0:
        return np.empty((0, 4))
    gy = gp = hy = hp = 0.0
    out: list[tuple[float, float, float, float]] = []
    e0 = ECCENTRICITY_DEG
    for t_ns, dy, dp in np.asarray(gaze_shifts, dtype=np.float64).tolist():
        gy += dy
        gp += dp
        ey = gy - hy
        ep = gp - hp
        e = (ey * ey + ep * ep) ** 0.5
        if e <= e0:
            continue
        f = (e - e0) / e
        ny = min(max(hy + HEAD_GAIN[0] * f * ey, -HEAD_LIMIT_DEG[0]), HEAD_LIMIT_DEG[0])
        npi = min(max(hp + HEAD_GAIN[1] * f * ep, -HEAD_LIMIT_DEG[1]), HEAD_LIMIT_DEG[1])
        my, mp = ny - hy, npi - hp
        amp = (my * my + mp * mp) ** 0.5
        if amp < 0.5:
            continue
        out.append((t_ns * 1e-9 + 0.03, my, mp, 0.30 + 0.0075 * amp))
        hy, hp = ny, npi
    return np.asarray(out, dtype=np.float64).reshape(-1, 4)


def head_coupling(t_s: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(N, 2) head-on-body yaw/pitch (deg) at ``t_s`` from :func:`head_recruitment` steps (superposed
    minimum-jerk movements)."""
    n = len(t_s)
    out = np.zeros((n, 2))
    if len(steps) == 0 or n == 0:
        return out
    onset, d, dur = steps[:, 0], steps[:, 1:3], steps[:, 3]
    started = np.searchsorted(onset, t_s, side="right")
    csum = np.concatenate([np.zeros((1, 2)), np.cumsum(d, axis=0)])
    out[:] = csum[started]
    i0 = np.searchsorted(t_s, onset, side="left")
    i1 = np.searchsorted(t_s, onset + dur, side="left")
    idx = _ranges(i0, i1 - i0)
    if idx.size:
        sid = np.repeat(np.arange(len(onset)), np.maximum(i1 - i0, 0))
        rest = 1.0 - minjerk((t_s[idx] - onset[sid]) / dur[sid])
        out[:, 0] -= np.bincount(idx, weights=d[sid, 0] * rest, minlength=n)
        out[:, 1] -= np.bincount(idx, weights=d[sid, 1] * rest, minlength=n)
    return out


# --------------------------------------------------------------------------------------------------------------
# Head model


#: Head micro-movements following a gesture, per class: (yaw deg, pitch deg, oscillation count).
GESTURE_HEAD = {
    "swipe_left": (2.0, 0.0, 0), "swipe_right": (-2.0, 0.0, 0), "swipe_up": (0.0, 1.5, 0),
    "swipe_down": (0.0, -1.5, 0), "pinch": (0.0, -1.0, 0), "grab": (0.0, -1.2, 0), "point": (0.0, -0.8, 0),
    "wave": (0.8, 0.0, 3), "thumbs_up": (0.0, 0.6, 0), "clap": (0.0, -1.5, 0),
}


def _gesture_head_keyframes(plan: SessionPlan) -> tuple[np.ndarray, np.ndarray]:
    from xrdata.synth.hand import gesture_schedule

    kt: list[float] = [0.0]
    kv: list[tuple[float, float]] = [(0.0, 0.0)]
    for g in gesture_schedule(plan):
        yaw, pitch, osc = GESTURE_HEAD.get(g.label, (0.0, -0.5, 0))
        a, b = g.start_s, g.stop_s
        dur = b - a
        if osc:
            n = 2 * osc
            times = a + dur * (0.2 + 0.6 * np.arange(n + 1) / n)
            kt += [a, *times.tolist(), b]
            kv += [(0.0, 0.0)] + [(yaw * (-1) ** k, pitch) for k in range(n + 1)] + [(0.0, 0.0)]
        else:
            kt += [a, a + 0.45 * dur, a + 0.7 * dur, b + 0.2]
            kv += [(0.0, 0.0), (yaw, pitch), (yaw, pitch), (0.0, 0.0)]
    order = np.argsort(np.asarray(kt), kind="stable")
    return np.asarray(kt)[order], np.asarray(kv, dtype=np.float64)[order]


#: Co-speech head gestures of spoken answers (McClave 2000; Hadar et al. 1985): "yes" with a nod (pitch),
#: "no" with a shake (yaw); unit (yaw, pitch) of the oscillation.
ANSWER_HEAD = {"yes": (0.0, 1.0), "no": (1.0, 0.0)}


def _answer_head_keyframes(plan: SessionPlan, voice: SpeechPlan | None) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Keyframes (yaw, pitch deg) of the nods and shakes that go with the user's spoken "yes" and "no", and
    the gestures as ``[start_s, stop_s, word, peak_deg]`` (ground truth).

    Per user (the same every session): the share of answers given with the head (0.5-0.95), the peak
    amplitude (4 deg, log-normal sigma 0.3) and the rate (2-3 Hz). Per answer: 1-3 cycles, each swing 0.8 x
    the one before, from -0.15..+0.1 s around the word's onset; a nod starts downward."""
    kt: list[float] = [0.0]
    kv: list[tuple[float, float]] = [(0.0, 0.0)]
    done: list[Any] = []
    answers = [u for u in (voice.utterances if voice is not None else ()) if u[2] in ANSWER_HEAD]
    if answers:
        user = stable_rng("answer-head", plan.user.key)
        share, amp, hz = user.uniform(0.5, 0.95), 4.0 * user.lognormal(0.0, 0.3), user.uniform(2.0, 3.0)
        r = stable_rng("answer-head", plan.user.key, plan.session_id)
        for t0, _, label in answers:
            if r.random() > share:
                continue
            swings = 2 * int(r.integers(1, 4))
            start = t0 + r.uniform(-0.15, 0.1)
            yaw, pitch = ANSWER_HEAD[label]
            a = amp * r.lognormal(0.0, 0.2) * (-1.0 if pitch else r.choice((-1.0, 1.0)))
            peaks = a * (-0.8) ** np.arange(swings)
            kt += [float(start), *(start + (np.arange(swings + 1) + 0.5) / (2 * hz)).tolist()]
            kv += [(0.0, 0.0), *((yaw * v, pitch * v) for v in peaks.tolist()), (0.0, 0.0)]
            done.append([float(start), kt[-1], label, float(a)])
    order = np.argsort(np.asarray(kt), kind="stable")
    return np.asarray(kt)[order], np.asarray(kv, dtype=np.float64)[order], done


class HeadModel:
    """The head trajectory of one session as a function of time (pose in stage space)."""

    SWAY_FS = 50.0

    def __init__(self, plan: SessionPlan, rng: np.random.Generator, gaze_shifts: np.ndarray,
                 steps: np.ndarray | None = None, voice: SpeechPlan | None = None) -> None:
        """``steps``: :func:`head_recruitment` of ``gaze_shifts`` when already known (``ctx.head_steps``);
        ``voice``: the session's speech plan (``ctx.voice``), for the head gestures of spoken answers."""
        self.body = BodyModel(plan)
        self.steps = head_recruitment(gaze_shifts) if steps is None else steps
        segs = plan.segments
        vals = []
        for s in segs:
            a = activity_params(s.activity)
            sway = a[4] * (0.8 + 0.6 * s.arousal) * (1.25 - 0.6 * s.load) * (0.5 if s.eyes_closed else 1.0)
            vals.append([sway, 1.0 if s.talking else 0.0])
        if not vals:
            vals = [[1.0, 0.0]]
        self.env_kt: np.ndarray
        self.env_kv: np.ndarray
        self.env_kt, self.env_kv = segment_keyframes(plan, np.asarray(vals), 1.5) if segs else (
            np.zeros(1), np.asarray(vals))
        m = int(plan.duration_s * self.SWAY_FS) + 8
        sway = smooth_noise(rng, m, self.SWAY_FS, 0.7, channels=3)
        nods = smooth_noise(rng, m, self.SWAY_FS, (1.0, 4.0), channels=2, order=2)
        # deg RMS: sway yaw/pitch/roll; nods pitch/yaw
        self.noise = np.concatenate([sway * np.array([1.3, 0.9, 0.45]), nods * np.array([0.8, 0.4])], axis=1)
        self.g_kt, self.g_kv = _gesture_head_keyframes(plan)
        self.a_kt, self.a_kv, self.answers = _answer_head_keyframes(plan, voice)
        self.offset = HEAD_OFFSET * self.body.height_factor

    def orientation_on_body(self, t_s: np.ndarray, bp: BodyPath) -> np.ndarray:
        """(N, 3) yaw, pitch, roll (deg) of the head relative to the body."""
        env = minjerk_interp(t_s, self.env_kt, self.env_kv)
        noise = catmull_rom(self.noise, self.SWAY_FS, t_s)
        ypr = np.zeros((len(t_s), 3))
        ypr[:, :2] = head_coupling(t_s, self.steps)
        ypr += noise[:, :3] * env[:, :1]
        ypr[:, 0] += noise[:, 4] * env[:, 1]
        ypr[:, 1] += noise[:, 3] * env[:, 1]
        g = bp.gait
        ph = bp.stride_phase
        ypr[:, 0] += 0.9 * g * np.sin(ph)
        ypr[:, 1] += 0.7 * g * np.cos(2 * ph)
        ypr[:, 2] += 1.0 * g * np.sin(ph)
        ypr[:, :2] += minjerk_interp(t_s, self.g_kt, self.g_kv)
        if len(self.a_kt) > 1:
            ypr[:, :2] += minjerk_interp(t_s, self.a_kt, self.a_kv)
        return ypr * bp.worn[:, None]

    #: Rate (Hz) of the grid the model is evaluated on before Catmull-Rom upsampling.
    COARSE_HZ = 100.0

    def upsample_factor(self, fs: float) -> int:
        return max(1, round(fs / self.COARSE_HZ))

    def set_grid(self, fc: float, duration_s: float) -> None:
        """Evaluate the model once on knots j / fc, j = -3 .. duration * fc + 4 (``self.knots``: pos, quat)."""
        self.fc = fc
        self.first = -3
        j = np.arange(self.first, int(np.ceil(duration_s * fc)) + 5)
        chunk = 65536
        parts = []
        for i in range(0, len(j), chunk):
            p, q = self.pose(j[i:i + chunk] / fc)
            parts.append(np.concatenate([p, q], axis=1))
        self.knots = np.concatenate(parts)

    def smooth_pose(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pose at ``t_s`` on the C1 Catmull-Rom trajectory through the knots (what the IMU measures)."""
        u = t_s * self.fc
        j = np.floor(u).astype(np.int64)
        w = _catmull_weights(u - j)
        idx = j - 1 - self.first
        kn = np.ascontiguousarray(self.knots.T)  # (7, K): the weights broadcast along samples
        wt = np.ascontiguousarray(w.T)
        xt = wt[0] * kn[:, idx] + wt[1] * kn[:, idx + 1] + wt[2] * kn[:, idx + 2] + wt[3] * kn[:, idx + 3]
        x = np.ascontiguousarray(xt.T)
        return x[:, :3], x[:, 3:] / np.linalg.norm(x[:, 3:], axis=1, keepdims=True)

    def pose(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position (N, 3) and orientation (N, 4) of the head (eye centre) in stage space."""
        bp = self.body.at(t_s)
        ypr = np.radians(self.orientation_on_body(t_s, bp))
        q = quat_from_ypr(bp.heading + ypr[:, 0], ypr[:, 1], ypr[:, 2])
        pos = bp.neck + quat_rotate(q, self.offset)
        return pos, q


def _catmull_weights(f: np.ndarray, deriv: int = 0) -> np.ndarray:
    """(len(f), 4) Catmull-Rom weights (or their ``deriv``-th derivative in f) of the knots j-1, j, j+1, j+2
    at fraction f of [j, j+1]."""
    f = np.asarray(f, dtype=np.float64)
    one = np.ones_like(f)
    if deriv == 0:
        f2, f3 = f * f, f * f * f
        w = [-f + 2 * f2 - f3, 2 - 5 * f2 + 3 * f3, f + 4 * f2 - 3 * f3, -f2 + f3]
    elif deriv == 1:
        f2 = f * f
        w = [-one + 4 * f - 3 * f2, -10 * f + 9 * f2, one + 8 * f - 9 * f2, -2 * f + 3 * f2]
    else:
        w = [4 * one - 6 * f, -10 * one + 18 * f, 8 * one - 18 * f, -2 * one + 6 * f]
    return 0.5 * np.stack(w, axis=1)


def imu_from_model(model: HeadModel, fs: float, m: int, rng: np.random.Generator, ng: float, na: float,
                   wg: float, wa: float, bg: np.ndarray, ba: np.ndarray) -> np.ndarray:
    """(m, 6) float32 accel (m/s^2) and gyro (rad/s) at ``fs``.

    Derivatives of the C1 Catmull-Rom trajectory through the model's knots (the one the pose stream
    samples): body rate 2 vec(q* q') / |q|^2, exact; specific force R^T (p'' + g_up) with p'' = fc^2 ((1 - f)
    D_j + f D_j+1), D the knots' second differences: the curve's own p'' = fc^2 ((2 - 3f) D_j + (3f - 1)
    D_j+1) has the same mean over each knot interval but jumps at the knots. Then white noise (densities
    ``ng``, ``na``; :func:`~xrdata.synth.audio.gaussian_noise`, ~3x cheaper than numpy's normal draws and
    indistinguishable as sensor noise) and bias random walks (``wg``, ``wa`` per sqrt(s), from ``bg``, ``ba``;
    steps drawn the same way) are added.
    """
    f32 = np.float32
    r = model.upsample_factor(fs)
    fc = model.fc
    sd = (np.repeat([na, ng], 3) * np.sqrt(fs)).astype(f32)
    out = np.empty((m, 6), dtype=f32)
    kn = model.knots  # knot j at row j - model.first
    nk_all = len(kn)
    # bias random walks at the knot rate (accel, gyro); constant within a knot interval
    # (component-major (6, K): the cumsum and the additions below run along contiguous rows)
    scale = np.sqrt(1.0 / fc) * np.repeat([wa, wg], 3)
    steps = gaussian_noise(rng, 6 * nk_all).reshape(6, nk_all) * scale[:, None]
    walk = (np.concatenate([ba, bg])[:, None] + np.cumsum(steps, axis=1) - steps[:, :1]).astype(f32)
    # Catmull-Rom as a cubic per knot interval j: q(f) = c0 + c1 f + c2 f^2 + c3 f^3 from knots j-1 .. j+2
    # component-major (4 components, 4 coefficients, K-3) and (3, K): every operation below runs on
    # contiguous rows; interval j at column j - model.first - 1
    qk = np.ascontiguousarray(kn[:, 3:].T)
    coef = np.empty((4, 4, len(kn) - 3), dtype=f32)
    coef[:, 0] = qk[:, 1:-2]
    coef[:, 1] = 0.5 * (qk[:, 2:-1] - qk[:, :-3])
    coef[:, 2] = 0.5 * (2 * qk[:, :-3] - 5 * qk[:, 1:-2] + 4 * qk[:, 2:-1] - qk[:, 3:])
    coef[:, 3] = 0.5 * (-qk[:, :-3] + 3 * qk[:, 1:-2] - 3 * qk[:, 2:-1] + qk[:, 3:])
    pk = kn[:, :3]
    d2 = np.zeros_like(pk)
    d2[1:-1] = (pk[2:] - 2.0 * pk[1:-1] + pk[:-2]) * (fc * fc)
    d2 = np.ascontiguousarray(d2.astype(f32).T)
    # samples of knot interval j at fractions fr (r, 1); every (r, nk) array below holds sample j * r + i at
    # [i, j]: broadcasts then run along knots (long contiguous rows), not along the r (~10) samples of a knot
    fr = (np.arange(r) / r).astype(f32)[:, None]
    wa0, wa1 = 1.0 - fr, fr
    g_up = f32(GRAVITY)
    f_c = f32(fc)
    kc = 2048  # knot intervals per chunk
    chunk = kc * r
    plane = np.empty((6, r, kc), dtype=f32)
    sd_flat = np.tile(sd, chunk)  # the noise's scale per value of a (chunk, 6) block, flat: no 6-long inner loops
    for i0 in range(0, m, chunk):
        i1 = min(m, i0 + chunk)
        j0, j1 = i0 // r, (i1 - 1) // r + 1  # knot intervals covering the samples (i0 = j0 * r)
        b0 = j0 - model.first  # row of knot j0
        nk = j1 - j0
        q: list[np.ndarray] = []  # x, y, z, w of the quaternion and of its time derivative, (r, nk) each
        qd: list[np.ndarray] = []
        for c in range(4):
            a0, a1, a2, a3 = (coef[c, k, None, b0 - 1:j1 - model.first - 1] for k in range(4))  # (1, nk)
            q.append(a0 + fr * (a1 + fr * (a2 + fr * a3)))
            qd.append((a1 + fr * (2 * a2 + 3 * fr * a3)) * f_c)
        ux, uy, uz, w = q
        vx, vy, vz, sv = qd
        ax, ay, az = (wa0 * d2[c, None, b0:j1 - model.first] + wa1 * d2[c, None, b0 + 1:j1 - model.first + 1]
                      for c in range(3))
        n2 = ux * ux + uy * uy + uz * uz + w * w
        block = plane[:, :, :nk]
        # body rate: 2 vec(q* q') / |q|^2 = 2 (w v - s u - u x v) / |q|^2
        k2 = 2.0 / n2
        np.multiply(k2, w * vx - sv * ux - (uy * vz - uz * vy), out=block[3])
        np.multiply(k2, w * vy - sv * uy - (uz * vx - ux * vz), out=block[4])
        np.multiply(k2, w * vz - sv * uz - (ux * vy - uy * vx), out=block[5])
        # specific force in the device frame: R(q)^T (a + g_up) = v + w t + t x u, t = 2 v x u, u -> -u
        s = 1.0 / np.sqrt(n2)
        ux, uy, uz, w = -ux * s, -uy * s, -uz * s, w * s
        ay = ay + g_up
        tx, ty, tz = 2 * (uy * az - uz * ay), 2 * (uz * ax - ux * az), 2 * (ux * ay - uy * ax)
        block[0] = ax + w * tx + uy * tz - uz * ty
        block[1] = ay + w * ty + uz * tx - ux * tz
        block[2] = az + w * tz + ux * ty - uy * tx
        block += walk[:, None, b0:b0 + nk]
        dst = out[i0:i1]
        full = (i1 - i0) // r  # whole knot intervals; the last chunk may end inside one
        rows = dst[: full * r].reshape(full, r, 6)
        for c in range(6):  # one component at a time: long strided rows, not 6-element inner loops
            rows[:, :, c] = block[c, :, :full].T
        if full < nk:
            dst[full * r:] = block[:, : i1 - i0 - full * r, full].T
        noise = gaussian_noise(rng, 6 * (i1 - i0))
        noise *= sd_flat[: noise.size]
        dst += noise.reshape(-1, 6)
    return out


def head_yaw_pitch(q: np.ndarray) -> np.ndarray:
    """(N, 2) yaw/pitch (deg) of the head's forward axis."""
    f = quat_rotate(q, np.array([0.0, 0.0, -1.0]))
    yaw, pitch = yaw_pitch_from_direction(f)
    return np.stack([yaw, pitch], axis=1)


def _param(spec: SensorSpec | None, name: str, default: float) -> float:
    if spec is None:
        return default
    value = spec.params.get(name, default)
    return float(value)


def generate_head(plan: SessionPlan, sensor: SensorSpec, rng: np.random.Generator, ctx: Context) -> ModalityOutput:
    """Head pose stream ``"head"`` and, when the device has one, the ``"imu"`` stream (see module docstring).

    ``sensor`` is the head tracker; the IMU spec is read from ``plan.device.sensors["imu"]``. Fills
    ``ctx.head_time_ns`` and ``ctx.head_yaw_pitch_deg`` (world yaw/pitch of the head, degrees).
    """
    sensors = plan.device.sensors
    head_spec = sensors.get("head", sensor)
    imu_spec = sensors.get("imu")
    model = HeadModel(plan, rng, ctx.gaze_shifts, ctx.head_steps, ctx.voice)
    fc = float(imu_spec.rate_hz) / model.upsample_factor(float(imu_spec.rate_hz)) if imu_spec else model.COARSE_HZ
    model.set_grid(fc, plan.duration_s)
    duration = plan.duration_s
    streams: list[Stream] = []
    truth: dict[str, Any] = {}

    # ---- head pose stream (and the context at its rate; 90 Hz when the device only has an IMU)
    rate = float(head_spec.rate_hz) if "head" in sensors or imu_spec is None else 90.0
    n = max(int(np.floor(duration * rate)), 1)
    jitter = _param(head_spec, "jitter_ms", 0.2) * 1e-3
    t_s = np.arange(n) / rate + np.clip(rng.normal(0.0, jitter, n), -0.25 / rate, 0.25 / rate)
    t_s[0] = max(t_s[0], 0.0)
    t_ns = np.round(t_s * 1e9).astype(np.int64)
    t_s = t_ns * np.float64(1e-9)
    pos, q = model.smooth_pose(t_s)
    ctx.head_time_ns = t_ns
    ctx.head_yaw_pitch_deg = head_yaw_pitch(q)
    pos_noise = _param(head_spec, "position_noise_m", 0.0002)
    rot_noise = np.radians(_param(head_spec, "rotation_noise_deg", 0.003))
    pos_out = pos + rng.normal(0.0, pos_noise, pos.shape)
    q_out = quat_mul(q, quat_from_rotvec(rng.normal(0.0, rot_noise, (n, 3))))
    q_out /= np.linalg.norm(q_out, axis=1, keepdims=True)
    data = np.concatenate([pos_out, q_out], axis=1).astype(np.float32)
    if "head" in sensors or imu_spec is None:
        streams.append(Stream("head", "motion", t_ns, data, HEAD_CHANNELS, HEAD_UNITS, rate_hz=rate,
                              meta={"reference_space": "stage", "source": "xrdata.synth"}))
    truth.update(head_position_noise_m=pos_noise, head_rotation_noise_deg=float(np.degrees(rot_noise)),
                 head_recruitment_steps=model.steps, answer_head_gestures=model.answers)

    # ---- IMU: the model on a coarse grid (fs / r ~ 100 Hz), Catmull-Rom upsampled to the IMU rate, so the
    # IMU and the pose stream share one C1-smooth trajectory.
    if imu_spec is not None:
        fs = float(imu_spec.rate_hz)
        ng = _param(imu_spec, "gyro_noise_density", 0.003)
        na = _param(imu_spec, "accel_noise_density", 0.02)
        wg = _param(imu_spec, "gyro_bias_walk", 2e-5)
        wa = _param(imu_spec, "accel_bias_walk", 2e-4)
        m = max(int(np.floor(duration * fs)), 2)
        out = imu_from_model(model, fs, m, rng, ng, na, wg, wa, np.asarray(plan.imu_gyro_bias, dtype=np.float64),
                             np.asarray(plan.imu_accel_bias, dtype=np.float64))
        level = _param(imu_spec, "voice_vibration_ms2", 0.0)
        if level > 0 and ctx.voice is not None:  # the wearer's own voice, through the skull and the face cushion
            fit = stable_rng("voice-vibration", plan.user.key)  # how this headset sits on this face
            level *= float(fit.lognormal(0.0, 0.4))
            axis = np.array([0.2, 0.55, 0.8]) + fit.normal(0.0, 0.15, 3)
            vib = bone_vibration(ctx.voice, plan, fs, m, rng)
            out[:, :3] += vib[:, None] * (level * axis / np.linalg.norm(axis)).astype(np.float32)
            truth["voice_vibration_ms2"] = level
        step_ns = 1e9 / fs
        if step_ns == int(step_ns):  # exact in int64: the same values as rounding k * step_ns, in one pass
            imu_t = np.arange(0, m * int(step_ns), int(step_ns), dtype=np.int64)
        else:
            imu_t = np.round(np.arange(m) * step_ns).astype(np.int64)
        streams.append(Stream("imu", "motion", imu_t, out, IMU_CHANNELS, IMU_UNITS, rate_hz=fs,
                              meta={"frame": "device", "source": "xrdata.synth",
                                    "gyro_noise_density": ng, "accel_noise_density": na}))
        truth.update(gyro_noise_density=ng, accel_noise_density=na, gyro_bias_walk=wg, accel_bias_walk=wa,
                     gyro_bias_start=list(plan.imu_gyro_bias), accel_bias_start=list(plan.imu_accel_bias))
    return ModalityOutput(streams=streams, events=[], truth=truth)
