"""Hands: 2 x 26 OpenXR joints on a kinematic skeleton, driven by reaches, gestures, posture and tremor.

Mechanisms (REALISM.md H1-H8):

- **Skeleton**: wrist, palm, 4 metacarpals + 3 phalanges per finger, thumb metacarpal + 2 phalanges, tips
  (OpenXR XR_HAND_JOINT_* order), adult bone lengths scaled per user (0.92-1.08). Joint orientations follow
  OpenXR: -Z along the bone toward the tip, +Y out of the back of the hand; the joint carries the orientation
  of the bone distal to it; the wrist joint carries the distal forearm's orientation (so wrist flexion /
  deviation are the wrist -> palm rotation). The left hand is the mirror image of the right.
- **Control**: 29 channels per hand (wrist position and hand yaw/pitch/roll in the body frame, wrist
  flexion/deviation, MCP flexion/abduction, PIP and DIP flexion of four fingers, thumb CMC/MCP/IP) moving
  through keyframes with minimum-jerk profiles (Flash & Hogan): point-to-point reaches have a single bell
  peaking mid-movement with peak/mean speed 1.875. Hand shapes (relaxed, open, flat, fist, point, pinch,
  grab, thumbs-up) blend the finger joints; all joint angles stay within anatomical ranges.
- **Behaviour**: gesture segments (labels ``GESTURES``: swipe_left/right/up/down, pinch, grab, point, wave,
  thumbs_up, clap; 0.8-1.9 s each, scaled by ``traits.motor_speed``) with the dominant hand
  (``traits.handedness``; clap uses both, the palms meeting twice: :func:`clap_contacts_s`), the first about
  1.2 s (a reaction time and a gap) after the segment's prompt, then one every ~0.9 s; gaze_selection
  reaches toward targets dwelt on (direct touch); otherwise idle alternation between hands raised in view and
  resting (lap when sitting, at the sides standing), with arm swing while walking. The body (position,
  heading, gait) is :func:`xrdata.synth.head.body_path`, shared with the head.
- **Tremor**: physiological tremor, a narrow-band acceleration at ``traits.tremor_hz`` with RMS
  ``traits.tremor_amp_g`` (mostly vertical), always present.
- **Tracking**: latency (content at t - ``latency_ms``), tracking error on the kinematic parameters (a smooth
  cubic B-spline through random knots every 0.4 s: the tracker's model fit and temporal filter, so the
  skeleton stays rigid and the error does not reach the tremor band) scaled so the mean fingertip error is
  ~``fingertip_error_m``, bursty tracking loss (geometric bursts of ~4 frames, 25x more likely when the hands
  overlap, 5x near the edge of the tracking field of view, more in dim light), and hands outside the field of
  view untracked. Lost samples are NaN with confidence 0, never held (and never computed).

Ground truth (``ModalityOutput.truth``): ``true_palm`` (N, 2, 3) the true palm centre at the stream times;
``ideal_positions`` (F, 2, 6, 3) the ideal tracker output (same latency, no tracking error) of the palm and
the five tips on frames ``truth_frames`` (every 4th); ``in_view``, ``tracked`` (N, 2), ``overlap`` (N,).

Sensor parameters read (``SensorSpec.params``): ``fingertip_error_m`` (mean fingertip error, default 0.01),
``latency_ms`` (default 40), ``fov_h_deg`` / ``fov_v_deg`` (tracking field of view, default 140 / 110),
``loss_rate_hz`` (tracking-loss bursts per second in good conditions, default 0.12).

Label imprints in hands: gesture class (trajectory direction, hand shape, oscillation for wave, both hands
for clap), gaze_selection target (reach direction), activity (arm swing at the stride frequency when walking,
hand height / posture, hands out of view), affect/arousal (faster idle movements). Events: ``gesture``
(value = class) and ``reach`` (value = hand). Fills ``ctx.hand_overlap``, ``ctx.hands_out_of_view``
(intervals where at least one hand is outside the tracking field of view) and ``ctx.palm_head_m`` (the true
palms in the head frame, which the depth camera sees).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdata.model import Stream
from xrdata.synth.eye import selection_targets
from xrdata.synth.head import (
    GRAVITY,
    HEAD_OFFSET,
    BodyModel,
    BodyPath,
    direction_from_yaw_pitch,
    intervals_from_mask,
    minjerk_interp,
    quat_axis,
    quat_conj,
    quat_from_ypr,
    quat_mul,
    quat_rotate,
    stable_rng,
    stable_uniform,
    yaw_pitch_from_direction,
)
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan

JOINTS = [
    "palm", "wrist", "thumb_metacarpal", "thumb_proximal", "thumb_distal", "thumb_tip",
    "index_metacarpal", "index_proximal", "index_intermediate", "index_distal", "index_tip",
    "middle_metacarpal", "middle_proximal", "middle_intermediate", "middle_distal", "middle_tip",
    "ring_metacarpal", "ring_proximal", "ring_intermediate", "ring_distal", "ring_tip",
    "little_metacarpal", "little_proximal", "little_intermediate", "little_distal", "little_tip",
]
HAND_CHANNELS = ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"]
HAND_UNITS = ["m", "m", "m", "1", "1", "1", "1", "m", "1"]
TIPS = [5, 10, 15, 20, 25]
#: Joints kept in the ground truth: palm and the five tips.
TRUTH_JOINTS = [0, *TIPS]

# ---- geometry of the right hand (m), hand frame: wrist origin, -Z toward the fingers, +Y dorsal, +X ulnar
_FINGERS = {  # metacarpal base, MCP, (proximal, intermediate, distal) lengths
    "index": ((-0.016, 0.000, -0.020), (-0.024, -0.002, -0.088), (0.040, 0.024, 0.021)),
    "middle": ((-0.004, 0.001, -0.021), (-0.004, 0.000, -0.090), (0.045, 0.028, 0.022)),
    "ring": ((0.008, 0.000, -0.019), (0.014, -0.002, -0.083), (0.042, 0.027, 0.022)),
    "little": ((0.018, -0.002, -0.017), (0.030, -0.006, -0.073), (0.033, 0.019, 0.020)),
}
_THUMB_BASE = (-0.022, -0.012, -0.022)
_THUMB_DIR = (-0.55, -0.35, -0.76)
_THUMB_LEN = (0.042, 0.032, 0.027)
_RADIUS = np.array([
    0.022, 0.022, 0.016, 0.012, 0.010, 0.009,
    0.014, 0.011, 0.009, 0.008, 0.007,
    0.0145, 0.0115, 0.0095, 0.0085, 0.0075,
    0.014, 0.011, 0.009, 0.008, 0.007,
    0.013, 0.010, 0.008, 0.007, 0.006,
])

# ---- hand shapes: 20 finger values (deg): index/middle/ring/little (MCP flex, abduction toward the thumb,
# PIP, DIP), thumb (CMC flex, CMC abduction, MCP, IP)
_FIST = [85, 0, 100, 65, 88, 0, 100, 65, 88, 0, 98, 62, 85, 0, 95, 60]
SHAPES: dict[str, np.ndarray] = {name: np.asarray(v, dtype=np.float64) for name, v in {
    "relaxed": [20, 3, 30, 15, 22, 0, 32, 16, 24, -3, 34, 17, 26, -6, 36, 18, 10, 15, 15, 10],
    "open": [0, 8, 3, 2, 0, 0, 3, 2, 0, -7, 3, 2, 0, -14, 3, 2, 0, 35, 0, 0],
    "flat": [0, 2, 2, 1, 0, 0, 2, 1, 0, -2, 2, 1, 0, -4, 2, 1, 0, 10, 0, 0],
    "fist": [*_FIST, 20, 5, 45, 35],
    "point": [0, 0, 3, 2, *_FIST[4:], 20, 5, 45, 35],
    "pinch_open": [30, 0, 30, 15, 35, 0, 40, 20, 40, 0, 45, 22, 45, 0, 50, 25, 5, 40, 5, 5],
    "pinch": [43, 0, 51, 32, 35, 0, 40, 20, 40, 0, 45, 22, 45, 0, 50, 25, 15, -11, 14, 14],
    "grab_open": [25, 10, 25, 10, 25, 0, 25, 10, 25, -8, 25, 10, 25, -15, 25, 10, 5, 45, 10, 5],
    "thumbs_up": [*_FIST, 0, 20, 0, 0],
}.items()}
#: Anatomical limits of the 20 finger values (deg), per value.
_LIMITS = np.array(
    [[-40, 88], [-20, 20], [0.5, 98], [0.5, 85]] * 4 + [[-10, 60], [-30, 60], [-10, 70], [-15, 85]], dtype=np.float64
)
_WRIST_LIMITS = np.array([[-65.0, 75.0], [-25.0, 35.0]])

#: Gesture classes with a defined trajectory; base duration (s) at motor_speed 1.
GESTURES: dict[str, float] = {
    "swipe_left": 0.9, "swipe_right": 0.9, "swipe_up": 0.9, "swipe_down": 0.9, "pinch": 1.0, "grab": 1.15,
    "point": 1.0, "wave": 1.6, "thumbs_up": 1.1, "clap": 1.25,
}
GESTURE_DURATION_S = (0.8, 1.9)

# ---- control vector layout
C_POS, C_YPR, C_WRIST, C_FING, C_DOWN = slice(0, 3), slice(3, 6), slice(6, 8), slice(8, 28), 28
N_CONTROL = 29

READY = (np.array([0.15, -0.22, -0.36]), np.array([0.0, 10.0, -20.0]))
REST_SIT = (np.array([0.14, -0.52, -0.28]), np.array([0.0, -10.0, -15.0]))
REST_SIDE = (np.array([0.22, -0.68, -0.02]), np.array([0.0, -80.0, -90.0]))
SHOULDER = np.array([0.18, -0.02, 0.0])


def _quat_from_matrix(m: np.ndarray) -> np.ndarray:
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(1.0 + tr)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    out = np.asarray(q)
    return out / np.linalg.norm(out)


def _bone_frame(direction: np.ndarray, up: np.ndarray) -> np.ndarray:
    z = -direction / np.linalg.norm(direction)
    y = up - np.dot(up, z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return _quat_from_matrix(np.stack([x, y, z], axis=1))


@dataclass(frozen=True)
class _Geometry:
    bases: np.ndarray  # (4, 3)
    mcps: np.ndarray  # (4, 3)
    lengths: np.ndarray  # (4, 3)
    meta_q: np.ndarray  # (4, 4)
    thumb_base: np.ndarray
    thumb_q: np.ndarray
    thumb_len: np.ndarray
    palm: np.ndarray
    radius: np.ndarray
    chain_q: np.ndarray  # (5, 4) base frames of the index, middle, ring, little and thumb chains
    chain_start: np.ndarray  # (5, 3) first joint of each chain (MCP; thumb CMC)
    chain_len: np.ndarray  # (5, 3) bone lengths of each chain


def hand_geometry(scale: float = 1.0) -> _Geometry:
    bases = np.array([f[0] for f in _FINGERS.values()]) * scale
    mcps = np.array([f[1] for f in _FINGERS.values()]) * scale
    lengths = np.array([f[2] for f in _FINGERS.values()]) * scale
    meta_q = np.stack([_bone_frame(m - b, np.array([0.0, 1.0, 0.0])) for b, m in zip(bases, mcps, strict=True)])
    thumb_q = _bone_frame(np.array(_THUMB_DIR), np.array([-0.6, 0.6, 0.0]))
    palm = 0.5 * (bases[1] + mcps[1])
    tbase = np.array(_THUMB_BASE) * scale
    tlen = np.array(_THUMB_LEN) * scale
    return _Geometry(bases, mcps, lengths, meta_q, tbase, thumb_q, tlen, palm, _RADIUS * scale,
                     np.vstack([meta_q, thumb_q]), np.vstack([mcps, tbase]), np.vstack([lengths, tlen]))


def _qmul_y(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Constant quaternions b (C, 4) times rotations about Y by angles a (N, C) -> (N, C, 4)."""
    s, c = np.sin(0.5 * a), np.cos(0.5 * a)
    bx, by, bz, bw = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.stack([bx * c - bz * s, bw * s + by * c, bx * s + bz * c, bw * c - by * s], axis=-1)


def _qmul_x(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Quaternions g (..., 4) times rotations about X by angles a (...) -> (..., 4)."""
    s, c = np.sin(0.5 * a), np.cos(0.5 * a)
    gx, gy, gz, gw = g[..., 0], g[..., 1], g[..., 2], g[..., 3]
    return np.stack([gw * s + gx * c, gy * c + gz * s, gz * c - gy * s, gw * c - gx * s], axis=-1)


def forward_kinematics(ctrl: np.ndarray, geo: _Geometry, with_quat: bool = True) -> tuple[
        np.ndarray, np.ndarray | None]:
    """Joint positions (N, 26, 3) and orientations (N, 26, 4) of a RIGHT hand in its hand frame (wrist at
    the origin, before the hand's own rotation and position are applied).

    The five chains (four fingers from their MCP joints, the thumb from its CMC joint) each bend about one
    local X axis after an abduction about Y, so each chain is planar: bone k points along
    (0, -sin phi_k, -cos phi_k) in the chain frame, phi_k the cumulative flexion.
    """
    n = ctrl.shape[0]
    f = np.radians(ctrl[:, C_FING])
    abd = np.concatenate([f[:, 1:16:4], f[:, 17:18]], axis=1)  # (N, 5)
    flex = np.stack([
        np.concatenate([f[:, 0:16:4], f[:, 16:17]], axis=1),
        np.concatenate([f[:, 2:16:4], f[:, 18:19]], axis=1),
        np.concatenate([f[:, 3:16:4], f[:, 19:20]], axis=1),
    ], axis=-1)  # (N, 5, 3): per-joint flexion
    phi = np.cumsum(flex, axis=-1)
    g = _qmul_y(geo.chain_q, abd)  # (N, 5, 4) chain frames
    gx, gy, gz, gw = g[..., 0], g[..., 1], g[..., 2], g[..., 3]
    # columns 1 and 2 of the chain rotation matrices
    c1 = np.stack([2 * (gx * gy - gw * gz), 1 - 2 * (gx * gx + gz * gz), 2 * (gy * gz + gw * gx)], axis=-1)
    c2 = np.stack([2 * (gx * gz + gw * gy), 2 * (gy * gz - gw * gx), 1 - 2 * (gx * gx + gy * gy)], axis=-1)
    vy = -geo.chain_len * np.sin(phi)  # (N, 5, 3)
    vz = -geo.chain_len * np.cos(phi)
    bones = vy[..., None] * c1[:, :, None, :] + vz[..., None] * c2[:, :, None, :]  # (N, 5, 3 bones, 3)
    pts = geo.chain_start[None, :, None, :] + np.concatenate(
        [np.zeros((n, 5, 1, 3)), np.cumsum(bones, axis=2)], axis=2)  # (N, 5, 4 points, 3)
    pos = np.empty((n, 26, 3))
    pos[:, 0] = geo.palm
    pos[:, 1] = 0.0
    pos[:, 2:6] = pts[:, 4]
    for c in range(4):
        j = 6 + 5 * c
        pos[:, j] = geo.bases[c]
        pos[:, j + 1:j + 5] = pts[:, c]
    if not with_quat:
        return pos, None
    qj = _qmul_x(g[:, :, None, :], -phi)  # (N, 5, 3, 4)
    quat = np.empty((n, 26, 4))
    quat[:, 0] = (0.0, 0.0, 0.0, 1.0)
    wr = np.radians(ctrl[:, C_WRIST])
    quat[:, 1] = quat_conj(_qmul_x(_qmul_y(np.array([[0.0, 0.0, 0.0, 1.0]]), wr[:, 1:2])[:, 0], -wr[:, 0]))
    quat[:, 2:5] = qj[:, 4]
    quat[:, 5] = qj[:, 4, 2]
    for c in range(4):
        j = 6 + 5 * c
        quat[:, j] = geo.meta_q[c]
        quat[:, j + 1:j + 4] = qj[:, c]
        quat[:, j + 4] = qj[:, c, 2]
    return pos, quat


_MIRROR_POS = np.array([-1.0, 1.0, 1.0])
_MIRROR_Q = np.array([1.0, -1.0, -1.0, 1.0])
_MIRROR_YPR = np.array([-1.0, 1.0, -1.0])


def mirror_control(ctrl: np.ndarray) -> np.ndarray:
    """Left-hand controls <-> the right-hand controls of the mirror image (x -> -x)."""
    out = ctrl.copy()
    out[..., C_POS] *= _MIRROR_POS
    out[..., C_YPR] *= _MIRROR_YPR
    return out


# --------------------------------------------------------------------------------------------------------------
# Gesture schedule (deterministic from the plan; shared with eye and head)


@dataclass(frozen=True)
class GestureInstance:
    segment: int
    start_s: float
    stop_s: float
    label: str
    hand: str  # "left" | "right" | "both"
    scale: float  # amplitude factor


def gesture_schedule(plan: SessionPlan, segment: int | None = None) -> list[GestureInstance]:
    """Every gesture the user performs in the session's gesture segments, or in segment ``segment`` only
    (deterministic from the plan; each segment's gestures are drawn independently)."""
    out: list[GestureInstance] = []
    dominant = "left" if plan.user.handedness == "left" else "right"
    speed = max(float(plan.user.motor_speed), 0.2)
    lo, hi = GESTURE_DURATION_S
    for i, seg in enumerate(plan.segments):
        if seg.task != "gesture" or segment not in (None, i):
            continue
        rng = stable_rng(plan.user.key, plan.session_id, i, "gesture")
        a, b = seg.start_ns * 1e-9, min(seg.stop_ns * 1e-9, plan.duration_s)
        base = GESTURES.get(seg.label, 1.1)
        t = a + 0.3  # a reaction time to the segment's prompt; the first gap follows
        while True:
            gap = min(max(rng.lognormal(np.log(0.9), 0.35), 0.4), 3.0)  # (np.clip's values, without its cost)
            dur = min(max(base / speed * rng.lognormal(0.0, 0.12), lo), hi)
            scale = min(max(rng.lognormal(0.0, 0.12), 0.75), 1.3)
            if t + gap + dur > b - 0.4:
                break
            hand = "both" if seg.label == "clap" else dominant
            out.append(GestureInstance(i, t + gap, t + gap + dur, seg.label, hand, scale))
            t += gap + dur
    return out


def _generic_gesture(label: str) -> list[tuple[float, np.ndarray, np.ndarray, str, tuple[float, float]]]:
    ang = 2 * np.pi * stable_uniform("gesture_label", label)
    shape = ["open", "fist", "point", "pinch", "flat", "grab_open"][int(stable_uniform("gesture_shape", label) * 6)]
    d = 0.12 * np.array([np.cos(ang), np.sin(ang), -0.4])
    return [(0.3, d * 0.3, np.array([0.0, 20.0, -40.0]), shape, (0.0, 0.0)),
            (0.7, d, np.array([0.0, 20.0, -40.0]), shape, (10.0, 0.0))]


def gesture_keyframes(label: str) -> list[tuple[float, np.ndarray, np.ndarray, str, tuple[float, float]]]:
    """Inner keyframes of a right-hand gesture: (fraction of the duration, position offset from the ready
    pose (m, body frame), hand yaw/pitch/roll (deg), shape, wrist flex/dev (deg)). The gesture starts and ends
    at the ready pose."""
    v = np.array
    if label == "swipe_left":
        return [(0.25, v([0.10, 0.0, -0.02]), v([0.0, 5.0, -80.0]), "flat", (0.0, 10.0)),
                (0.65, v([-0.17, 0.01, -0.04]), v([15.0, 5.0, -80.0]), "flat", (0.0, -15.0))]
    if label == "swipe_right":
        return [(0.25, v([-0.10, 0.0, -0.02]), v([0.0, 5.0, 70.0]), "flat", (0.0, -10.0)),
                (0.65, v([0.17, 0.01, -0.04]), v([-15.0, 5.0, 70.0]), "flat", (0.0, 15.0))]
    if label == "swipe_up":
        return [(0.25, v([0.0, -0.08, -0.03]), v([0.0, 55.0, -10.0]), "flat", (-20.0, 0.0)),
                (0.65, v([0.0, 0.15, -0.05]), v([0.0, 60.0, -10.0]), "flat", (-40.0, 0.0))]
    if label == "swipe_down":
        return [(0.25, v([0.0, 0.10, -0.03]), v([0.0, 15.0, -10.0]), "flat", (-30.0, 0.0)),
                (0.65, v([0.0, -0.14, -0.05]), v([0.0, 10.0, -10.0]), "flat", (30.0, 0.0))]
    if label == "pinch":
        return [(0.25, v([0.0, 0.02, -0.04]), v([0.0, 15.0, -30.0]), "pinch_open", (-10.0, 0.0)),
                (0.5, v([0.0, 0.02, -0.05]), v([0.0, 15.0, -30.0]), "pinch", (-10.0, 0.0)),
                (0.7, v([0.0, 0.02, -0.05]), v([0.0, 15.0, -30.0]), "pinch", (-10.0, 0.0)),
                (0.85, v([0.0, 0.02, -0.04]), v([0.0, 15.0, -30.0]), "pinch_open", (-10.0, 0.0))]
    if label == "grab":
        return [(0.25, v([0.0, 0.0, -0.09]), v([0.0, 5.0, -10.0]), "grab_open", (-15.0, 0.0)),
                (0.55, v([0.0, 0.0, -0.09]), v([0.0, 5.0, -10.0]), "fist", (0.0, 0.0)),
                (0.75, v([0.0, 0.01, 0.02]), v([0.0, 5.0, -10.0]), "fist", (10.0, 0.0))]
    if label == "point":
        return [(0.3, v([-0.02, 0.05, -0.12]), v([5.0, 5.0, -20.0]), "point", (0.0, 0.0)),
                (0.6, v([-0.02, 0.05, -0.17]), v([5.0, 5.0, -20.0]), "point", (0.0, 0.0))]
    if label == "wave":
        keys = [(0.15, v([0.02, 0.18, -0.02]), v([0.0, 80.0, 0.0]), "open", (-10.0, 0.0))]
        for k in range(5):
            sgn = 1.0 if k % 2 == 0 else -1.0
            keys.append((0.25 + 0.15 * k, v([0.02 + 0.03 * sgn, 0.18, -0.02]), v([18.0 * sgn, 80.0, 0.0]),
                         "open", (-10.0, 20.0 * sgn)))
        return keys
    if label == "thumbs_up":
        return [(0.3, v([0.0, 0.05, -0.05]), v([0.0, 0.0, -85.0]), "thumbs_up", (0.0, 0.0)),
                (0.7, v([0.0, 0.06, -0.05]), v([0.0, 0.0, -85.0]), "thumbs_up", (0.0, 0.0))]
    if label == "clap":  # right hand; the left mirrors it
        return [(0.3, v([-0.12, 0.04, -0.04]), v([0.0, 30.0, -85.0]), "flat", (-10.0, 0.0)),
                (0.45, v([-0.07, 0.05, -0.04]), v([0.0, 30.0, -85.0]), "flat", (-10.0, 0.0)),
                (0.6, v([-0.12, 0.04, -0.04]), v([0.0, 30.0, -85.0]), "flat", (-10.0, 0.0))]
    return _generic_gesture(label)


def clap_contacts_s(plan: SessionPlan) -> np.ndarray:
    """Times (s) at which the palms meet in the session's clap gestures: the keyframes where the hands come
    closest to the midline (two per clap gesture)."""
    keys = gesture_keyframes("clap")
    closest = min(float(k[1][0]) for k in keys)
    fracs = np.array([k[0] for k in keys if float(k[1][0]) <= closest + 1e-9])
    starts, stops = np.array([(g.start_s, g.stop_s) for g in gesture_schedule(plan) if g.label == "clap"]
                             ).reshape(-1, 2).T
    return np.sort((starts[:, None] + fracs * (stops - starts)[:, None]).ravel())


def _mirror_label(label: str) -> str:
    return {"swipe_left": "swipe_right", "swipe_right": "swipe_left"}.get(label, label)


def _hand_gesture_keys(label: str, side: str) -> list[tuple[float, np.ndarray, np.ndarray, str, tuple[float, float]]]:
    """Gesture keyframes for ``side`` in right-hand semantics (the left hand performs the mirror gesture)."""
    return gesture_keyframes(_mirror_label(label) if side == "left" else label)


def hand_gaze_targets(plan: SessionPlan, index: int) -> tuple[tuple[int, float, float, float], ...]:
    """Gaze targets (t_ns, yaw, pitch, depth) following the gesturing hand in gesture segment ``index``."""
    hf = 0.93 + 0.14 * stable_uniform(plan.user.key, "height")
    eye = HEAD_OFFSET * hf
    times: list[float] = []
    points: list[np.ndarray] = []
    for g in gesture_schedule(plan, index):
        side = "right" if g.hand == "both" else g.hand
        keys = _hand_gesture_keys(g.label, side)
        ready = READY[0]
        far = max(keys, key=lambda k: float(np.linalg.norm(k[1])))
        mirror = _MIRROR_POS if side == "left" else 1.0
        times += [g.start_s, g.start_s + far[0] * (g.stop_s - g.start_s), g.stop_s]
        points += [ready * mirror, (ready + far[1] * g.scale) * mirror, ready * mirror]
    if not points:
        return ()
    vec = np.array(points) - eye  # (P, 3), one vectorised pass for every point
    dist = np.linalg.norm(vec, axis=1)
    yaw, pitch = yaw_pitch_from_direction(vec / dist[:, None])
    return tuple((round(t * 1e9), y, p, d)
                 for t, y, p, d in zip(times, yaw.tolist(), pitch.tolist(), dist.tolist(), strict=True))


# --------------------------------------------------------------------------------------------------------------
# Keyframe tracks


class _Track:
    """Keyframes of one hand's control vector (body frame, left hand in its own (mirrored) semantics)."""

    def __init__(self, first: np.ndarray) -> None:
        self.t: list[float] = [0.0]
        self.v: list[np.ndarray] = [first]

    @property
    def last(self) -> np.ndarray:
        return self.v[-1]

    def add(self, t: float, v: np.ndarray) -> None:
        self.t.append(max(t, self.t[-1]))
        self.v.append(v)

    def hold(self, t: float) -> None:
        self.add(t, self.last.copy())


def _pose(pos: np.ndarray, ypr: np.ndarray, shape: str, wrist: tuple[float, float] = (0.0, 0.0),
          down: float = 0.0) -> np.ndarray:
    v = np.empty(N_CONTROL)
    v[C_POS] = pos
    v[C_YPR] = ypr
    v[C_WRIST] = wrist
    v[C_FING] = SHAPES[shape]
    v[C_DOWN] = down
    return v


def _rest_pose(activity: str) -> np.ndarray:
    if activity == "sitting":
        return _pose(REST_SIT[0], REST_SIT[1], "relaxed", (15.0, 0.0), 1.0)
    return _pose(REST_SIDE[0], REST_SIDE[1], "relaxed", (0.0, 5.0), 1.0)


def _ready_pose() -> np.ndarray:
    return _pose(READY[0], READY[1], "relaxed")


def _move_time(a: np.ndarray, b: np.ndarray, speed: float) -> float:
    dist = float(np.linalg.norm(a[C_POS] - b[C_POS]))
    return (0.35 + 0.11 * np.log2(1.0 + dist / 0.02)) / speed


class _Behaviour:
    def __init__(self, plan: SessionPlan, rng: np.random.Generator) -> None:
        self.plan = plan
        self.rng = rng
        self.speed = max(float(plan.user.motor_speed), 0.2)
        self.dominant = "left" if plan.user.handedness == "left" else "right"
        act0 = plan.segments[0].activity if plan.segments else "sitting"
        self.tracks = {"left": _Track(_rest_pose(act0)), "right": _Track(_rest_pose(act0))}
        self.events: list[tuple[int, int, str, str]] = []
        self.hf = 0.93 + 0.14 * stable_uniform(plan.user.key, "height")

    def move(self, side: str, t: float, target: np.ndarray, duration: float | None = None) -> float:
        tr = self.tracks[side]
        tr.hold(t)
        d = _move_time(tr.last, target, self.speed) if duration is None else duration
        tr.add(t + d, target)
        return t + d

    def build(self) -> None:
        gest = gesture_schedule(self.plan)
        for i, seg in enumerate(self.plan.segments):
            a, b = seg.start_ns * 1e-9, min(seg.stop_ns * 1e-9, self.plan.duration_s)
            if b - a < 0.5:
                continue
            if seg.task == "gesture":
                self._gestures(seg.activity, a, b, [g for g in gest if g.segment == i])
            elif seg.task == "gaze_selection":
                self._selection(seg.activity, a, b, selection_targets(self.plan, i))
            else:
                self._idle(seg.activity, seg.arousal, a, b)

    def _idle(self, activity: str, arousal: float, a: float, b: float) -> None:
        rng = self.rng
        p_up = 0.2 if activity in ("walking", "running") else (0.0 if activity == "still" else 0.35)
        for side in ("left", "right"):
            t = a
            while t < b - 0.5:
                up = rng.uniform() < p_up
                target = _ready_pose() if up else _rest_pose(activity)
                if up:
                    target[C_POS] += rng.normal(0, 0.04, 3)
                    target[C_YPR] += rng.normal(0, 8.0, 3)
                end = self.move(side, t, target)
                hold = float(rng.lognormal(np.log(4.0), 0.5)) / (0.8 + 0.6 * arousal)
                self.tracks[side].hold(min(end + hold, b))
                t = end + hold

    def _gestures(self, activity: str, a: float, b: float, gestures: list[GestureInstance]) -> None:
        rng = self.rng
        for side in ("left", "right"):
            if side == self.dominant or any(g.hand == "both" for g in gestures):
                self.move(side, a, _ready_pose(), 0.8)
            else:
                self.move(side, a, _rest_pose(activity))
        for g in gestures:
            sides = ["left", "right"] if g.hand == "both" else [g.hand]
            for side in sides:
                tr = self.tracks[side]
                ready = _ready_pose()
                tr.add(g.start_s, ready)
                dur = g.stop_s - g.start_s
                for frac, dpos, ypr, shape, wrist in _hand_gesture_keys(g.label, side):
                    v = _pose(READY[0] + dpos * g.scale + rng.normal(0, 0.005, 3), ypr + rng.normal(0, 3.0, 3),
                              shape, (wrist[0] + float(rng.normal(0, 3)), wrist[1] + float(rng.normal(0, 2))))
                    tr.add(g.start_s + frac * dur, v)
                tr.add(g.stop_s, ready)
            self.events.append((round(g.start_s * 1e9), round((g.stop_s - g.start_s) * 1e9), "gesture", g.label))

    def _selection(self, activity: str, a: float, b: float,
                   targets: tuple[tuple[int, float, float, float], ...]) -> None:
        """Direct-touch selection: reach (minimum jerk) toward each target dwelt on for >= 1 s, hold, return."""
        rng = self.rng
        side = self.dominant
        other = "left" if side == "right" else "right"
        self.move(other, a, _rest_pose(activity))
        self.move(side, a, _ready_pose(), 0.8)
        times = [x[0] * 1e-9 for x in targets] + [b]
        eye = HEAD_OFFSET * self.hf
        free = a + 0.8
        for k, (_, yaw, pitch, _) in enumerate(targets):
            t0, t1 = times[k], min(times[k + 1], b)
            start = max(t0 + 0.45, free)
            if t1 - start < 1.0:
                continue
            target = eye + direction_from_yaw_pitch(np.array(yaw), np.array(pitch)) * 0.52
            ypr = np.array([0.5 * yaw, 0.5 * pitch + 5.0, -20.0])
            if side == "left":  # tracks hold right-hand semantics: mirror the body-frame target
                target = target * _MIRROR_POS
                ypr = ypr * _MIRROR_YPR
            vec = target - SHOULDER
            reach = float(np.linalg.norm(vec))
            if reach > 0.6:
                target = SHOULDER + vec * (0.6 / reach)
            pose = _pose(target + rng.normal(0, 0.01, 3), ypr, "point")
            ready = _ready_pose()
            self.tracks[side].add(start, ready)
            end = self.move(side, start, pose)
            back = self.move(side, end + float(rng.uniform(0.25, 0.5)), ready)
            free = back + 0.2
            self.events.append((round(start * 1e9), round((end - start) * 1e9), "reach", side))


def _tremor(rng: np.random.Generator, n: int, fs: float, f0: float, amp_g: float) -> np.ndarray:
    """(n, 3) tremor displacement (m) whose acceleration is a narrow band at f0 with RMS amp_g (vertical)."""
    if n < 4:
        return np.zeros((n, 3))
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.exp(-0.5 * ((freqs - f0) / 1.0) ** 2)
    spec = (rng.standard_normal((3, len(freqs))) + 1j * rng.standard_normal((3, len(freqs)))) * shape
    acc = np.fft.irfft(spec, n, axis=1)
    acc /= np.maximum(acc.std(axis=1, keepdims=True), 1e-12)
    acc *= (amp_g * GRAVITY * np.array([0.45, 1.0, 0.35]))[:, None]
    spec_a = np.fft.rfft(acc, axis=1)
    w = 2 * np.pi * freqs
    disp = np.fft.irfft(np.divide(-spec_a, w * w, out=np.zeros_like(spec_a), where=w > 0), n, axis=1)
    return disp.T


def _clip_controls(ctrl: np.ndarray) -> None:
    """Clip finger and wrist angles (deg) of ``ctrl`` (N, >= 28) to the joint limits, in place."""
    ctrl[:, C_FING] = np.clip(ctrl[:, C_FING], _LIMITS[:, 0], _LIMITS[:, 1])
    ctrl[:, C_WRIST] = np.clip(ctrl[:, C_WRIST], _WRIST_LIMITS[:, 0], _WRIST_LIMITS[:, 1])


def _right_mul_matrix(b: np.ndarray) -> np.ndarray:
    """(4, 4) matrix M with a (x) b = a @ M for quaternions a (row vectors) and a constant b."""
    bx, by, bz, bw = b
    return np.array([[bw, -bz, by, -bx], [bz, bw, -bx, -by], [-by, bx, bw, -bz], [bx, by, bz, bw]])


def _rotation_rows_t(q: np.ndarray) -> np.ndarray:
    """(9, N) rotation matrices of quaternions q (4, N): row-major entries first, frames last."""
    x, y, z, w = q[0], q[1], q[2], q[3]
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])


def _small_matmul_t(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """(a.T @ b).T for a (K, N), b (K, M) and small K, as K multiply-adds: (M, N); no BLAS call, so no
    hidden threads and a fixed summation order."""
    out = b[0][:, None] * a[0]
    for k in range(1, b.shape[0]):
        out += b[k][:, None] * a[k]
    return np.asarray(out)


def _apply_rows_t(rows: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """Rotate constant vectors (K, 3) by per-frame rotations (9, N) -> (K, 3, N); float64 holding the float32
    products and sums (the positions built on them add in float64)."""
    out = np.empty((len(vecs), 3, rows.shape[1]))
    for i in range(3):
        out[:, i] = vecs[:, 0, None] * rows[3 * i] + vecs[:, 1, None] * rows[3 * i + 1] \
            + vecs[:, 2, None] * rows[3 * i + 2]
    return out


def _fk_world(ctrl: np.ndarray, geo: _Geometry, left: bool, neck: np.ndarray, heading: np.ndarray,
              dst: np.ndarray, chunk: int = 2048) -> None:
    """Joints in stage space written into ``dst`` (N, 26, 3) positions or (N, 26, >= 7) positions and
    quaternions, OpenXR joint order.

    Same kinematics as :func:`forward_kinematics`, but the stage transform (neck, heading, hand pose, the
    mirror for the left hand) is applied to the five chain frames rather than to every joint; products with
    constant quaternions and rotations of constant vectors are explicit multiply-adds. Offsets from the wrist
    (< 0.25 m) are computed in float32 (~1e-8 m), the wrist itself in float64.

    Per-frame quantities are held frames-last ((5, 3, m) rather than (m, 5, 3)): the many small broadcasts
    then run along frames, and the frame is transposed into ``dst`` once per chunk."""
    f32 = np.float32
    mq = (_MIRROR_Q if left else np.ones(4)).astype(f32)
    mp = _MIRROR_POS if left else np.ones(3)
    sign = -1.0 if left else 1.0
    consts = np.vstack([geo.chain_start * mp, geo.palm * mp, geo.bases * mp]).astype(f32)  # (10, 3)
    chain_m = np.concatenate([_right_mul_matrix(b) for b in geo.chain_q * mq], axis=1).astype(f32)  # (4, 20)
    meta_m = np.concatenate([_right_mul_matrix(b) for b in geo.meta_q * mq], axis=1).astype(f32)  # (4, 16)
    chain_len = geo.chain_len.astype(f32)[:, :, None]  # (5, 3, 1)
    with_quat = dst.shape[-1] >= 7
    n = ctrl.shape[0]
    for i0 in range(0, n, chunk):
        sl = slice(i0, min(n, i0 + chunk))
        c = ctrl[sl].astype(f32)
        m = c.shape[0]
        buf = np.empty((26, 7 if with_quat else 3, m), dtype=f32)  # joint, channel, frame
        fingers = buf[6:].reshape(4, 5, -1, m)  # index, middle, ring, little: metacarpal .. tip
        f = np.radians(c[:, C_FING]).T  # (20, m)
        half = np.empty((5, 3, m), dtype=f32)  # -phi / 2: cumulative flexion of each bone
        half[:4, 0], half[:4, 1], half[:4, 2] = f[0:16:4], f[2:16:4], f[3:16:4]
        half[4, 0], half[4, 1], half[4, 2] = f[16], f[18], f[19]
        half[:, 1] += half[:, 0]
        half[:, 2] += half[:, 1]
        half *= f32(-0.5)
        sh, ch = np.sin(half), np.cos(half)
        abd = np.empty((5, m), dtype=f32)
        abd[:4] = f[1:16:4]
        abd[4] = f[17]
        abd *= f32(0.5 * sign)
        ya, yc = np.sin(abd), np.cos(abd)
        ypr = np.radians(c[:, C_YPR])
        qhead = quat_axis(1, heading[sl])  # float64: the wrist below; float32 for the hand's rotation
        qt = quat_mul(qhead.astype(f32), quat_from_ypr(ypr[:, 0], ypr[:, 1], ypr[:, 2]).astype(f32) * mq)
        base = neck[sl] + quat_rotate(qhead, ctrl[sl, C_POS] * mp)  # wrist, float64
        qtt = np.ascontiguousarray(qt.T)  # (4, m)
        pq = _small_matmul_t(chain_m, qtt).reshape(5, 4, m)  # qt (x) chain base frames
        px, py, pz, pw = pq[:, 0], pq[:, 1], pq[:, 2], pq[:, 3]
        gx, gy, gz, gw = px * yc - pz * ya, pw * ya + py * yc, px * ya + pz * yc, pw * yc - py * ya  # (x) q_y(abd)
        # chain-frame columns 1 (y) and 2 (z) in stage space, (5, 3, m)
        c1 = np.stack([2 * (gx * gy - gw * gz), 1 - 2 * (gx * gx + gz * gz), 2 * (gy * gz + gw * gx)], axis=1)
        c2 = np.stack([2 * (gx * gz + gw * gy), 2 * (gy * gz - gw * gx), 1 - 2 * (gx * gx + gy * gy)], axis=1)
        # the chain is planar: bone k along (0, -sin phi_k, -cos phi_k), with sin phi = -2 sh ch and
        # cos phi = ch^2 - sh^2; sum the bones in 2-D, then map to stage space
        vy = chain_len * (2 * sh * ch)
        vz = chain_len * (sh * sh - ch * ch)
        vy[:, 1] += vy[:, 0]
        vy[:, 2] += vy[:, 1]
        vz[:, 1] += vz[:, 0]
        vz[:, 2] += vz[:, 1]
        rot = _apply_rows_t(_rotation_rows_t(qtt), consts)  # (10, 3, m) constant points, relative to the wrist
        pts = vy[:, :, None, :] * c1[:, None] + vz[:, :, None, :] * c2[:, None] + rot[:5, None]  # (5, 3, 3, m)
        pos = buf[:, :3]
        pos[0] = rot[5]
        pos[1] = 0.0
        fingers[:, 0, :3] = rot[6:]
        fingers[:, 1, :3] = rot[:4]
        fingers[:, 2:, :3] = pts[:4]
        pos[2] = rot[4]
        pos[3:6] = pts[4]
        pos += base.T.astype(f32)
        if with_quat:
            gx, gy, gz, gw = gx[:, None], gy[:, None], gz[:, None], gw[:, None]
            qj = np.stack([gw * sh + gx * ch, gy * ch + gz * sh, gz * ch - gy * sh, gw * ch - gx * sh], axis=2)
            fingers[:, 1:4, 3:] = qj[:4]
            fingers[:, 4, 3:] = qj[:4, 2]
            fingers[:, 0, 3:] = _small_matmul_t(meta_m, qtt).reshape(4, 4, m)
            buf[2:5, 3:] = qj[4]
            buf[5, 3:] = qj[4, 2]
            buf[0, 3:] = qtt
            wr = np.radians(ctrl[sl, C_WRIST])
            wrist_local = quat_conj(_qmul_x(_qmul_y(np.array([[0.0, 0.0, 0.0, 1.0]]), wr[:, 1:2])[:, 0], -wr[:, 0]))
            buf[1, 3:] = quat_mul(qt, wrist_local.astype(f32) * mq).T
        out = dst[sl]
        for j in range(26):  # one (joint, channel) row at a time: long strided rows, not 7-element loops
            for k in range(buf.shape[1]):
                out[:, j, k] = buf[j, k]


def _palm_world(ctrl: np.ndarray, geo: _Geometry, left: bool, neck: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """(N, 3) palm centre in stage space (cheap: no finger chains)."""
    mq = _MIRROR_Q if left else np.ones(4)
    mp = _MIRROR_POS if left else np.ones(3)
    ypr = np.radians(ctrl[:, C_YPR])
    qhead = quat_axis(1, heading)
    qt = quat_mul(qhead, quat_from_ypr(ypr[:, 0], ypr[:, 1], ypr[:, 2]) * mq)
    return np.asarray(neck + quat_rotate(qhead, ctrl[:, C_POS] * mp) + quat_rotate(qt, geo.palm * mp))


def _head_pose_at(ctx: Context, t_s: np.ndarray, neck: np.ndarray, heading: np.ndarray, hf: float) -> tuple[
        np.ndarray, np.ndarray]:
    if len(ctx.head_time_ns) >= 2:
        ht = ctx.head_time_ns * 1e-9
        yaw = np.interp(t_s, ht, np.unwrap(np.radians(ctx.head_yaw_pitch_deg[:, 0])))
        pitch = np.interp(t_s, ht, np.radians(ctx.head_yaw_pitch_deg[:, 1]))
    else:
        yaw, pitch = heading, np.full(len(t_s), np.radians(-10.0))
    q = quat_from_ypr(yaw, pitch)
    return neck + quat_rotate(q, HEAD_OFFSET * hf), q


def _bursts(rng: np.random.Generator, p_start: np.ndarray, mean_len: np.ndarray) -> np.ndarray:
    """Bursty loss: a burst starts at frame i with probability p_start[i] and lasts a geometric number of
    frames with mean mean_len[i]; returns the union mask."""
    n = len(p_start)
    starts = np.flatnonzero(rng.uniform(size=n) < p_start)
    if starts.size == 0:
        return np.zeros(n, dtype=bool)
    lengths = rng.geometric(1.0 / np.maximum(mean_len[starts], 1.0))
    ends = np.zeros(n, dtype=np.int64)
    np.maximum.at(ends, starts, starts + lengths)
    return np.maximum.accumulate(ends) > np.arange(n)


#: Ground-truth joint positions are kept for every TRUTH_STEP-th frame.
TRUTH_STEP = 4
#: Knot spacing (s) of the tracking-error spline: the error wanders over ~0.5 s, it does not jitter.
ERROR_KNOT_S = 0.4


def _spline_noise(rng: np.random.Generator, n: int, rate: float, channels: int) -> np.ndarray:
    """(n, channels) smooth unit-variance noise on the frame grid: a uniform cubic B-spline through Gaussian
    knots every ~ERROR_KNOT_S (a whole number of frames), C2, so its acceleration stays far below the tremor
    band."""
    r = max(2, round(ERROR_KNOT_S * rate))
    nk = n // r + 1
    f = np.arange(r) / r
    w = np.stack([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], axis=1) / 6.0
    w /= np.sqrt(np.mean(np.sum(w * w, axis=1)))  # unit variance on average over a knot interval
    knots = rng.standard_normal((nk + 3, channels))
    # the first term written, the others added through one reused buffer: no zero fill, no fresh temporaries
    out = np.multiply(w[None, :, 0, None], knots[0:nk, None, :])
    term = np.empty_like(out)
    for c in range(1, 4):
        out += np.multiply(w[None, :, c, None], knots[c:c + nk, None, :], out=term)
    return out.reshape(-1, channels)[:n]


def _add_swing_tremor(ctrl: np.ndarray, bp: BodyPath, phase_shift: float, tremor: np.ndarray) -> None:
    """Arm swing while walking (hands down, at the stride frequency) and tremor, on the wrist position."""
    swing = ctrl[:, C_DOWN] * bp.gait
    phase = bp.stride_phase + phase_shift
    ctrl[:, 2] += 0.12 * swing * np.sin(phase)
    ctrl[:, 1] += 0.015 * swing * np.cos(2 * phase)
    ctrl[:, C_POS] += tremor


def generate_hand(plan: SessionPlan, sensor: SensorSpec, rng: np.random.Generator, ctx: Context) -> ModalityOutput:
    """The ``"hand"`` stream (N, 2, 26, 9), gesture/reach events, ``ctx.hand_overlap``,
    ``ctx.hands_out_of_view`` and ``ctx.palm_head_m``; see the module docstring."""
    rate = float(sensor.rate_hz)
    params = sensor.params
    err_m = float(params.get("fingertip_error_m", 0.01))
    latency = float(params.get("latency_ms", 40.0)) * 1e-3
    fov_h = float(params.get("fov_h_deg", 140.0))
    fov_v = float(params.get("fov_v_deg", 110.0))
    loss_hz = float(params.get("loss_rate_hz", 0.12))
    user = plan.user
    n = max(int(np.floor(plan.duration_s * rate)), 2)
    t = np.arange(n) / rate + np.clip(rng.normal(0.0, 0.3e-3, n), -0.2 / rate, 0.2 / rate)
    t[0] = max(t[0], 0.0)
    t_ns = np.round(t * 1e9).astype(np.int64)
    t = t_ns * np.float64(1e-9)

    beh = _Behaviour(plan, rng)
    beh.build()
    body = BodyModel(plan)
    bp_true = body.at(t)
    bp_rep = body.at(t - latency)
    hs = 0.92 + 0.16 * stable_uniform(user.key, "hand_size")
    geo = hand_geometry(hs)
    k = err_m / 0.01
    sigma = np.concatenate([np.full(3, 0.0045 * k), np.full(3, 1.2 * k), np.full(2, 3.0 * k),
                            np.tile([3.0, 1.5, 3.0, 3.0], 5) * k])

    out = np.empty((n, 2, 26, 9), dtype=np.float32)
    truth_frames = np.arange(0, n, TRUTH_STEP)
    ideal = np.empty((len(truth_frames), 2, len(TRUTH_JOINTS), 3), dtype=np.float32)
    palms = np.empty((n, 2, 3))
    reported: list[np.ndarray] = []
    for h, side in enumerate(("left", "right")):
        tr = beh.tracks[side]
        kt, kv = np.asarray(tr.t), np.asarray(tr.v)
        left = side == "left"
        tremor = _tremor(rng, n, rate, float(user.tremor_hz), float(user.tremor_amp_g))
        err = _spline_noise(rng, n, rate, N_CONTROL - 1)
        err *= sigma
        phase_shift = np.pi if side == "right" else 0.0
        # what the tracker sees: the hand at t - latency (all controls), and the true palm now
        ctrl = minjerk_interp(t - latency, kt, kv)
        _add_swing_tremor(ctrl, bp_rep, phase_shift, tremor)
        now = minjerk_interp(t, kt, kv[:, :N_CONTROL])
        _add_swing_tremor(now, bp_true, phase_shift, tremor)
        palms[:, h] = _palm_world(now, geo, left, bp_true.neck, bp_true.heading)
        # ground truth: the ideal tracker output (same latency, no tracking error) on every TRUTH_STEP-th frame
        ideal_ctrl = ctrl[truth_frames]  # a copy (integer index)
        _clip_controls(ideal_ctrl)
        ideal_pos = np.empty((len(truth_frames), 26, 3))
        _fk_world(ideal_ctrl, geo, left, bp_rep.neck[truth_frames], bp_rep.heading[truth_frames], ideal_pos)
        ideal[:, h] = ideal_pos[:, TRUTH_JOINTS]
        ctrl[:, :28] += err
        _clip_controls(ctrl)
        reported.append(ctrl)

    # ---- field of view, overlap, tracking loss
    head_pos, head_q = _head_pose_at(ctx, t, bp_true.neck, bp_true.heading, body.height_factor)
    in_view = np.empty((n, 2), dtype=bool)
    edge = np.empty((n, 2), dtype=bool)
    dirs = np.empty((n, 2, 3))
    palm_head = np.empty((n, 2, 3), dtype=np.float32)
    for h in range(2):
        v = quat_rotate(quat_conj(head_q), palms[:, h] - head_pos)
        palm_head[:, h] = v
        dist = np.linalg.norm(v, axis=1)
        dirs[:, h] = v / dist[:, None]
        az = np.degrees(np.arctan2(-v[:, 0], -v[:, 2]))
        el = np.degrees(np.arctan2(v[:, 1], np.hypot(v[:, 0], v[:, 2])))
        in_view[:, h] = (np.abs(az) < fov_h / 2) & (np.abs(el) < fov_v / 2) & (dist < 1.2)
        edge[:, h] = in_view[:, h] & ((np.abs(az) > fov_h / 2 - 8) | (np.abs(el) > fov_v / 2 - 8))
    sep = np.degrees(np.arccos(np.clip(np.sum(dirs[:, 0] * dirs[:, 1], axis=1), -1, 1)))
    overlap = (np.linalg.norm(palms[:, 0] - palms[:, 1], axis=1) < 0.12) | (in_view.all(axis=1) & (sep < 10.0))
    light = float(np.clip((100.0 / max(plan.lighting_lux, 1.0)) ** 0.5, 1.0, 5.0))
    tracked = np.empty((n, 2), dtype=bool)
    conf = np.empty((n, 2))
    for h in range(2):
        p_start = loss_hz / rate * light * (1.0 + 24.0 * overlap + 4.0 * edge[:, h])
        lost = _bursts(rng, np.clip(p_start, 0, 0.5), 4.0 + 4.0 * overlap)
        tracked[:, h] = in_view[:, h] & ~lost
        conf[:, h] = np.clip(0.97 - 0.35 * overlap - 0.2 * edge[:, h] + rng.normal(0, 0.01, n), 0.3, 1.0)
    # ---- the tracker's output: joints of the tracked frames (untracked frames are NaN, never computed).
    # Whole (26, 9) frames are assembled first and scattered: contiguous rows copy fast. Per piece of frames,
    # so the assembled block stays in cache and is reused instead of being a second copy of the stream.
    lost_frame = np.full((26, 9), np.nan, dtype=np.float32)
    lost_frame[:, 8] = 0.0
    piece = 2048  # = _fk_world's chunk
    block = np.empty((piece, 26, 9), dtype=np.float32)
    block[..., 7] = geo.radius
    for h in range(2):
        idx = np.flatnonzero(tracked[:, h])
        for i0 in range(0, len(idx), piece):
            rows = idx[i0 : i0 + piece]
            b = block[: len(rows)]
            _fk_world(reported[h][rows], geo, h == 0, bp_rep.neck[rows], bp_rep.heading[rows], b, chunk=piece)
            b[..., 8] = conf[rows, h, None]
            out[rows, h] = b
        out[~tracked[:, h], h] = lost_frame

    ctx.hand_overlap = intervals_from_mask(t_ns, overlap)
    ctx.hands_out_of_view = intervals_from_mask(t_ns, ~in_view.all(axis=1))
    ctx.hand_time_ns, ctx.palm_head_m = t_ns, palm_head
    stream = Stream("hand", "hand", t_ns, out, HAND_CHANNELS, HAND_UNITS, rate_hz=rate,
                    meta={"reference_space": "stage", "source": "xrdata.synth", "joints": JOINTS,
                          "wrist_orientation": "distal forearm"})
    beh.events.sort(key=lambda e: e[0])
    truth: dict[str, Any] = {
        "latency_s": latency, "fingertip_error_m": err_m, "hand_scale": hs,
        "tremor_hz": float(user.tremor_hz), "tremor_amp_g": float(user.tremor_amp_g),
        # the true palm centre at the stream times (N, 2, 3), for latency, field of view and overlap
        "true_palm": palms.astype(np.float32),
        # the ideal tracker output (the same latency, no tracking error) on frames ``truth_frames``:
        # (len(truth_frames), 2, 6, 3) for the joints ``truth_joints`` (palm and the five tips)
        "ideal_positions": ideal, "truth_frames": truth_frames, "truth_joints": [JOINTS[j] for j in TRUTH_JOINTS],
        "in_view": in_view, "tracked": tracked, "overlap": overlap,
    }
    return ModalityOutput(streams=[stream], events=beh.events, truth=truth)
