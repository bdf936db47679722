"""Depth frames of simple indoor scenes with the noise, holes, shadows and flying pixels of the sensor.

Mechanism (uint16 millimetres, 0 = invalid, ``sensor.rate_hz`` frames per second, (height, width) frames):

* **Scene and rendering.** Each session gets a room (floor, walls, ceiling), a table with legs, boxes and a
  dark monitor on it and furniture along the walls, all axis-aligned boxes. The scene is ray cast once per
  session from the head position into a panorama (range, surface albedo, incidence angle) at 0.8 x the
  camera's angular resolution. Each frame looks the panorama up with the head yaw/pitch of the frame
  (``ctx.head_time_ns``/``ctx.head_yaw_pitch_deg``, interpolated; static when absent) plus the camera's mount
  tilt, through the pinhole intrinsics: yaw is an exact column shift and every quantised pitch has its own
  cached lookup table, so a frame costs one gather and one compiled (numba) pass over its pixels. Head
  translation is not rendered (the camera stays at the session's mean head position; parallax of walking is
  ignored).
* **Structured light** (Kinect-class; projector ``baseline_m`` to the right of the camera): axial noise
  sigma_z = 1.2 + 1.9 (z - 0.4)^2 mm (Nguyen et al. 2012), spatially correlated over ~3 px like block
  matching; shadow bands where the projector's light is occluded (invalid beside the left edges of foreground
  objects, width f b (1/z_fg - 1/z_bg) px); flickering holes at depth edges, grazing angles and dark
  (absorbing) surfaces; valid 0.5-3.5 m.
* **Time of flight** (continuous-wave): range noise from the returned amplitude (albedo / r^2) and ambient
  light, sigma_r = s0 sqrt(A + B) / A; a small systematic "wiggling" error periodic in range; invalid where the
  amplitude is too low (dark or far surfaces); flying pixels: pixels next to a depth jump > 10 cm mix the near
  and far depths (1-3 px wide), never on smooth surfaces; valid 0.5-3.86 m.
* **Lighting** (``plan.lighting_lux``): ambient infrared raises the noise (structured light: pattern contrast,
  ToF: shot noise of the ambient term) and the share of speckle holes, and shortens the usable range.

Per-frame randomness comes from noise pools drawn once per session and kept as int16 (white depth noise,
spatially correlated hole noise, ToF mixing fractions) read at random offsets (the depth noise as the sum of
two slices), so frames stay independent while costing almost no new random numbers.

* **Hands.** The user's hands (``ctx.palm_head_m``, from the hand generator) are spheres of
  ``HAND_RADIUS_M`` in front of the camera, drawn into each frame's gathered values before the noise, so they
  get the sensor's noise, holes (more at their grazing silhouettes) and valid range: a hand nearer than
  ``z_min_m`` is a hole, as on real sensors. Their projector shadows and flying pixels are not modelled.

Label imprints: gaze_selection / activity through the head pose (what the camera sees); gestures and reaches
through the hands; session-level lighting through holes and noise.

Sensor params read: ``kind`` ("structured_light" | "tof", default structured_light), ``width``/``height``
(px, default 256 x 192), ``z_min_m``/``z_max_m`` (default 0.5 and 3.5 m structured light, 3.86 m ToF),
``hfov_deg`` (horizontal field of view, default 58 structured light, 75 ToF), ``tilt_deg`` (camera mount pitch
relative to the head, default -15; 0 for the plane scene), ``baseline_m`` (projector offset, default 0.075),
``tof_noise_mm`` (ToF range noise at unit amplitude, default 1.2 mm), ``noise_scale`` (default 1),
``scene`` ("room" | "plane", default room), ``plane_m`` (plane distance, default 1.5 m), ``hands`` (1 -> draw
the hands; default 1 in rooms, 0 for the plane scene), ``clean`` (1 ->
noise-, hole- and flying-pixel-free frames, for ground truth), ``batch_frames`` (frames per kernel call,
default 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xrdata.errors import require
from xrdata.model import Stream
from xrdata.synth.audio import gaussian_noise, sample_times_ns
from xrdata.synth.buffers import reusable_empty
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan

__all__ = ["DEPTH_KINDS", "generate_depth", "intrinsics"]

#: Steps per unit of the int16 noise pools (``_quantize``); a power of two, so scaling by it is exact.
_POOL_STEPS = 4096.0

#: Defaults per sensor kind: valid range (m), horizontal FOV (deg), projector baseline (m).
DEPTH_KINDS: dict[str, dict[str, float]] = {
    "structured_light": {"z_min_m": 0.5, "z_max_m": 3.5, "hfov_deg": 58.0, "baseline_m": 0.075},
    "tof": {"z_min_m": 0.5, "z_max_m": 3.86, "hfov_deg": 75.0, "baseline_m": 0.0},
}


def intrinsics(width: int, height: int, hfov_deg: float) -> dict[str, float]:
    """Pinhole intrinsics (px) of a ``width`` x ``height`` camera with square pixels and the given FOV."""
    fx = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    return {"fx": float(fx), "fy": float(fx), "cx": (width - 1) / 2, "cy": (height - 1) / 2}


@dataclass
class _Box:
    lo: np.ndarray  # (3,) min corner, m, camera-centred world frame (x right, y up, -z forward)
    hi: np.ndarray
    albedo: float
    name: str


def _room_scene(rng: np.random.Generator, eye_h: float) -> tuple[_Box, list[_Box]]:
    """A furnished room around the camera at the origin, eye ``eye_h`` m above the floor."""
    floor = -eye_h
    wl, wr = rng.uniform(1.6, 2.5, 2)
    df, db = rng.uniform(2.2, 3.1), rng.uniform(1.5, 2.6)
    height = rng.uniform(2.5, 2.9)
    room = _Box(np.array([-wl, floor, -df]), np.array([wr, floor + height, db]), float(rng.uniform(0.6, 0.85)), "room")
    boxes: list[_Box] = []
    # table in front, with legs
    tx, tw = rng.uniform(-0.2, 0.2), rng.uniform(1.0, 1.5)
    tz0, td = rng.uniform(0.4, 0.6), rng.uniform(0.65, 0.9)
    top = floor + rng.uniform(0.72, 0.76)
    x0, x1, z0, z1 = tx - tw / 2, tx + tw / 2, -tz0 - td, -tz0
    alb_t = float(rng.uniform(0.3, 0.7))
    boxes.append(_Box(np.array([x0, top - 0.035, z0]), np.array([x1, top, z1]), alb_t, "table_top"))
    for lx in (x0 + 0.05, x1 - 0.1):
        for lz in (z0 + 0.05, z1 - 0.1):
            boxes.append(_Box(np.array([lx, floor, lz]), np.array([lx + 0.05, top - 0.035, lz + 0.05]), alb_t, "leg"))
    # monitor (dark, absorbing) at the back of the table
    mx = rng.uniform(x0 + 0.35, x1 - 0.35)
    boxes.append(_Box(np.array([mx - 0.28, top + 0.1, z0 + 0.08]), np.array([mx + 0.28, top + 0.43, z0 + 0.13]),
                      0.04, "monitor"))
    # objects on the table
    for _ in range(int(rng.integers(2, 5))):
        sx, sy, sz = rng.uniform(0.08, 0.25), rng.uniform(0.05, 0.25), rng.uniform(0.08, 0.2)
        cx, cz = rng.uniform(x0 + sx / 2, x1 - sx / 2), rng.uniform(z0 + 0.2 + sz / 2, z0 + 0.65 * td)
        boxes.append(_Box(np.array([cx - sx / 2, top, cz - sz / 2]), np.array([cx + sx / 2, top + sy, cz + sz / 2]),
                          float(rng.uniform(0.2, 0.9)), "object"))
    # furniture along the walls
    for _ in range(int(rng.integers(2, 4))):
        sx, sy, sz = rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.8), rng.uniform(0.35, 0.6)
        wall = int(rng.integers(3))
        if wall == 0:  # front wall
            cx = rng.uniform(-wl + sx / 2, wr - sx / 2)
            lo, hi = [cx - sx / 2, floor, -df], [cx + sx / 2, floor + sy, -df + sz]
        elif wall == 1:  # left wall
            cz = rng.uniform(-df + sx / 2, db - sx / 2)
            lo, hi = [-wl, floor, cz - sx / 2], [-wl + sz, floor + sy, cz + sx / 2]
        else:  # right wall
            cz = rng.uniform(-df + sx / 2, db - sx / 2)
            lo, hi = [wr - sz, floor, cz - sx / 2], [wr, floor + sy, cz + sx / 2]
        boxes.append(_Box(np.array(lo), np.array(hi), float(rng.uniform(0.2, 0.8)), "furniture"))
    return room, boxes


def _plane_scene(distance: float) -> tuple[_Box, list[_Box]]:
    """A large flat wall facing the camera at ``distance`` m (for noise measurements)."""
    room = _Box(np.array([-50.0, -50.0, -distance]), np.array([50.0, 50.0, 50.0]), 0.7, "plane")
    return room, []


def _cast(az: np.ndarray, el: np.ndarray, room: _Box, boxes: list[_Box]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray cast a panorama grid (azimuth ``az`` (A,), elevation ``el`` (E,), radians) from the origin.

    Returns range (m), albedo and |cos incidence|, each (E, A). Rays leave the room box from inside; each
    furniture box is only tested on the panorama patch its angular bounds cover.
    """
    d = _dirs(az[None, :], el[:, None]).astype(np.float32)  # (E, A, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / np.where(d == 0, np.float32(1e-12), d)
        t_exit = np.where(inv > 0, room.hi.astype(np.float32) * inv, room.lo.astype(np.float32) * inv)
        axis = np.argmin(t_exit, axis=-1)
        r = np.take_along_axis(t_exit, axis[..., None], axis=-1)[..., 0]
        alb = np.full(r.shape, room.albedo, np.float32)
        for b in boxes:
            rows, cols = _patch(b, az, el)
            if rows.stop <= rows.start or cols.stop <= cols.start:
                continue
            iv = inv[rows, cols]
            t1 = b.lo.astype(np.float32) * iv
            t2 = b.hi.astype(np.float32) * iv
            tn = np.minimum(t1, t2)
            tmin = tn.max(axis=-1)
            tmax = np.maximum(t1, t2).min(axis=-1)
            rp = r[rows, cols]
            hit = (tmax >= tmin) & (tmin > 0) & (tmin < rp)
            if hit.any():
                r[rows, cols] = np.where(hit, tmin, rp)
                axis[rows, cols] = np.where(hit, np.argmax(tn, axis=-1), axis[rows, cols])
                alb[rows, cols] = np.where(hit, np.float32(b.albedo), alb[rows, cols])
    cos_inc = np.abs(np.take_along_axis(d, axis[..., None], axis=-1)[..., 0])
    return r, alb, cos_inc


def _patch(b: _Box, az: np.ndarray, el: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the panorama grid (``el`` descending, ``az`` ascending) a box can cover."""
    xs, ys, zs = (b.lo[0], b.hi[0]), (b.lo[1], b.hi[1]), (b.lo[2], b.hi[2])
    # horizontal distance range from the origin to the box footprint
    px = min(max(0.0, xs[0]), xs[1]) if not xs[0] <= 0 <= xs[1] else 0.0
    pz = min(max(0.0, zs[0]), zs[1]) if not zs[0] <= 0 <= zs[1] else 0.0
    rho_min = float(np.hypot(px, pz))
    rho_max = float(max(np.hypot(x, z) for x in xs for z in zs))
    margin = 2 * abs(az[1] - az[0]) if az.size > 1 else 0.0
    e_lo = np.arctan2(ys[0], rho_min if ys[0] < 0 else rho_max) - margin
    e_hi = np.arctan2(ys[1], rho_min if ys[1] > 0 else rho_max) + margin
    rows = slice(int(np.searchsorted(-el, -e_hi, side="left")), int(np.searchsorted(-el, -e_lo, side="right")))
    if rho_min <= 1e-9:  # the box is above or below the camera: every azimuth
        return rows, slice(0, az.size)
    corners = np.array([np.arctan2(x, -z) for x in xs for z in zs])
    centre = np.arctan2(np.mean(xs), -np.mean(zs))
    rel = (corners - centre + np.pi) % (2 * np.pi) - np.pi
    a_lo, a_hi = centre + rel.min() - margin, centre + rel.max() + margin
    c0, c1 = az.size, 0
    for k in (-2, -1, 0, 1, 2):  # the panorama may span more than one turn
        lo = int(np.searchsorted(az, a_lo + 2 * np.pi * k, side="left"))
        hi = int(np.searchsorted(az, a_hi + 2 * np.pi * k, side="right"))
        if hi > lo:
            c0, c1 = min(c0, lo), max(c1, hi)
    return rows, slice(c0, c1)


def _dirs(az: np.ndarray, el: np.ndarray) -> np.ndarray:
    """Unit directions (x right, y up, -z forward) of azimuth (+ = right) and elevation (+ = up), radians."""
    ce = np.cos(el)
    az, el, ce = np.broadcast_arrays(az, el, ce)
    return np.stack([ce * np.sin(az), np.sin(el), -ce * np.cos(az)], axis=-1)


def _rotate(dc: np.ndarray, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """Elevation and camera-relative azimuth (rad) of camera rays ``dc`` (M, 3) after pitching by ``pitch``."""
    c, s = np.float32(np.cos(pitch)), np.float32(np.sin(pitch))
    y = dc[:, 1] * c - dc[:, 2] * s
    zz = dc[:, 1] * s + dc[:, 2] * c
    return np.arcsin(np.clip(y, -1, 1)), np.arctan2(dc[:, 0], -zz)


#: Radius (m) of the sphere that stands for a hand (palm and curled fingers) in the depth frames.
HAND_RADIUS_M = 0.05


def _palms_in_view(ctx: Context, t_ns: np.ndarray, tilt_deg: float, K: dict[str, float], W: int,
                   H: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Palm centres in the camera frame at the frame times, (frames, 2, 3) m (x right, y up, -z forward), and
    (frames, 2) whether each hand's sphere falls in the image; None without hand data."""
    ht = np.asarray(ctx.hand_time_ns, dtype=np.float64)
    if len(ht) < 2 or not len(t_ns):
        return None
    ph = np.asarray(ctx.palm_head_m, dtype=np.float64)
    v = np.stack([np.stack([np.interp(t_ns, ht, ph[:, h, k]) for k in range(3)], axis=-1) for h in (0, 1)], axis=1)
    c, s = np.cos(np.radians(tilt_deg)), np.sin(np.radians(tilt_deg))  # head frame -> camera pitched by tilt
    cam = np.stack([v[..., 0], v[..., 1] * c + v[..., 2] * s, -v[..., 1] * s + v[..., 2] * c], axis=-1)
    depth = np.maximum(-cam[..., 2], 1e-3)
    rp = K["fx"] * HAND_RADIUS_M / depth + 2
    u = K["cx"] + K["fx"] * cam[..., 0] / depth
    vv = K["cy"] - K["fy"] * cam[..., 1] / depth
    seen = (cam[..., 2] < -HAND_RADIUS_M) & (u + rp >= 0) & (u - rp < W) & (vv + rp >= 0) & (vv - rp < H)
    return cam, seen


def _sphere_hits(cam: np.ndarray, K: dict[str, float], W: int, H: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels whose rays hit hand spheres centred at ``cam`` (k, 3) (camera frame, m; one per frame), from the
    pinhole rays over a common bounding box: (frame index into cam, flat pixel index, range m, cosine of the
    incidence angle), ordered by frame, row and column."""
    x, y, z = (np.ascontiguousarray(c, dtype=np.float64) for c in cam.T)
    depth = -z
    rp = K["fx"] * HAND_RADIUS_M / depth + 2
    S = int(2 * np.ceil(rp.max())) + 2
    col0 = np.floor(K["cx"] + K["fx"] * x / depth - S / 2).astype(np.int64)
    row0 = np.floor(K["cy"] - K["fy"] * y / depth - S / 2).astype(np.int64)
    hits = _compiled(_ray_sphere)
    args = (x, y, z, col0, row0, S, K["fx"], K["fy"], K["cx"], K["cy"], W, H)
    cap = int(np.sum(np.minimum(S * S, 4 * rp * rp)))  # twice the discs' areas: one pass unless far off-axis
    for _ in range(2):
        out = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap), np.empty(cap))
        n = hits(*args, *out)
        if n <= cap:
            break
        cap = n
    frame, pix, rng_m, cos_i = out
    return frame[:n], pix[:n], rng_m[:n], cos_i[:n]


def _ray_sphere(x: np.ndarray, y: np.ndarray, z: np.ndarray, col0: np.ndarray, row0: np.ndarray, S: int,
                fx: float, fy: float, cx: float, cy: float, W: int, H: int, frame: np.ndarray, pix: np.ndarray,
                rng_m: np.ndarray, cos_i: np.ndarray) -> int:
    """Ray-sphere tests of the pixels of an S x S box from (``row0``, ``col0``) per frame (numba-compiled by
    ``_sphere_hits``): the hits' frame, flat pixel index, range (m) and incidence cosine are written to the
    output arrays while they have room (the rest are only counted). Returns the number of hits."""
    n = 0
    cap = frame.size
    for f in range(x.size):
        xf, yf, zf = x[f], y[f], z[f]
        c_sq = xf * xf + yf * yf + zf * zf - HAND_RADIUS_M**2
        for r in range(S):
            row = row0[f] + r
            if row < 0 or row >= H:
                continue
            a_v = -(row - cy) / fy
            # the row's rays that can hit: (a_u x + w)^2 >= c_sq (a_u^2 + a_v^2 + 1), w = a_v y - z, holds on
            # one interval of a_u; only its columns (plus a margin for rounding) get the exact test below
            w = a_v * yf - zf
            qa, qb, qc = xf * xf - c_sq, 2 * xf * w, w * w - c_sq * (a_v * a_v + 1)
            dq = qb * qb - 4 * qa * qc
            c_lo, c_hi = 0, S  # the whole row where the interval is not bounded (a sphere beside the camera)
            if qa < 0:
                if dq < -1e-9 * (qb * qb + abs(4 * qa * qc)):
                    continue
                e = np.sqrt(max(dq, 0.0))
                u_lo, u_hi = (-qb + e) / (2 * qa), (-qb - e) / (2 * qa)  # the roots in ascending order
                c_lo = max(0, int(np.floor(cx + fx * u_lo)) - 2 - col0[f])
                c_hi = min(S, int(np.ceil(cx + fx * u_hi)) + 3 - col0[f])
            for c in range(c_lo, c_hi):
                col = col0[f] + c
                if col < 0 or col >= W:
                    continue
                a_u = (col - cx) / fx
                b = (a_u * xf + a_v * yf - zf) / np.sqrt(a_u * a_u + a_v * a_v + 1.0)  # ray . centre, |ray| = 1
                disc = b * b - c_sq
                if disc > 0 and b > 0:
                    if n < cap:
                        sq = np.sqrt(disc)
                        frame[n], pix[n], rng_m[n], cos_i[n] = f, row * W + col, b - sq, sq / HAND_RADIUS_M
                    n += 1
    return n


def _flag(value: float | str | None) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "on", "true", "yes")
    return bool(value)


def generate_depth(plan: SessionPlan, sensor: SensorSpec, rng: np.random.Generator, ctx: Context) -> ModalityOutput:
    """Depth stream of one session (see the module docstring for the model)."""
    from scipy.ndimage import uniform_filter
    from scipy.special import ndtri

    p = sensor.params
    kind = str(p.get("kind", "structured_light"))
    if kind not in DEPTH_KINDS:
        raise ValueError(f"depth kind must be one of {sorted(DEPTH_KINDS)}, got {kind!r}")
    dflt = DEPTH_KINDS[kind]
    tof = kind == "tof"
    W, H = int(p.get("width", 256)), int(p.get("height", 192))
    z_min = float(p.get("z_min_m", dflt["z_min_m"]))
    z_max = float(p.get("z_max_m", dflt["z_max_m"]))
    hfov = float(p.get("hfov_deg", dflt["hfov_deg"]))
    scene = str(p.get("scene", "room"))
    tilt = float(p.get("tilt_deg", 0.0 if scene == "plane" else -15.0))
    baseline = float(p.get("baseline_m", dflt["baseline_m"]))
    noise_scale = float(p.get("noise_scale", 1.0))
    s0 = float(p.get("tof_noise_mm", 1.2)) * 1e-3  # ToF range noise at unit amplitude (m)
    clean = _flag(p.get("clean", 0))
    fs = float(sensor.rate_hz)
    K = intrinsics(W, H, hfov)
    fx = K["fx"]
    lux = float(plan.lighting_lux)
    n_frames = max(0, int(np.ceil(plan.duration_s * fs - 1e-6)))  # frames at t < duration
    t_ns = sample_times_ns(n_frames, fs)

    # --- scene (drawn first, so a clean render of the same seed shows the same room)
    sitting = sum((s.stop_ns - s.start_ns) for s in plan.segments if s.activity == "sitting")
    eye_h = 1.2 if 2 * sitting >= plan.duration_ns or not plan.segments else 1.6
    if scene == "plane":
        room, boxes = _plane_scene(float(p.get("plane_m", 1.5)))
    else:
        room, boxes = _room_scene(rng, eye_h)

    # --- head pose per frame (yaw + = left, pitch + = up, degrees) and the camera rays
    if len(ctx.head_time_ns) > 1:
        ht = np.asarray(ctx.head_time_ns, dtype=np.float64)
        hyp = np.asarray(ctx.head_yaw_pitch_deg, dtype=np.float64)
        yaw = np.degrees(np.interp(t_ns, ht, np.unwrap(np.radians(hyp[:, 0]))))
        pitch = np.interp(t_ns, ht, hyp[:, 1])
    else:
        yaw = np.zeros(n_frames)
        pitch = np.zeros(n_frames)
    pitch = np.clip(pitch + tilt, -85.0, 85.0)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    dc = np.stack([(u - K["cx"]) / fx, -(v - K["cy"]) / K["fy"], -np.ones_like(u, dtype=np.float64)], axis=-1)
    norm = np.linalg.norm(dc, axis=-1)
    cfac = (1.0 / norm).reshape(-1).astype(np.float32)  # z = range * cfac
    dc = (dc / norm[..., None]).reshape(-1, 3).astype(np.float32)
    step = 0.8 * np.arctan(1.0 / fx)  # panorama resolution, rad
    pq = 0.25  # pitch quantisation, deg
    pbin = np.round(pitch / pq).astype(np.int64)
    # extent of the pixel rays (camera-relative azimuth, elevation) over the pitches used
    probe = np.unique(np.concatenate([np.linspace(pbin.min(), pbin.max(), 9).round(), [pbin.min(), pbin.max()]])) \
        if n_frames else np.array([round(tilt / pq)])
    az_ext, el_lo, el_hi = 0.0, np.inf, -np.inf
    for pb in probe:
        el, az = _rotate(dc, np.radians(pb * pq))
        az_ext, el_lo, el_hi = max(az_ext, float(np.abs(az).max())), min(el_lo, el.min()), max(el_hi, el.max())
    margin = az_ext + 4 * step
    yaw_r = np.radians(yaw)
    wrap = n_frames and (np.ptp(yaw_r) > 2 * np.pi - 2 * margin)
    if wrap:
        yaw_r = (yaw_r + np.pi) % (2 * np.pi) - np.pi
    world0 = -yaw_r  # world azimuth of the camera's forward direction
    az0 = (world0.min() if n_frames else 0.0) - margin
    az1 = (world0.max() if n_frames else 0.0) + margin
    el0 = max(-np.pi / 2 + 1e-3, el_lo - 4 * step)
    el1 = min(np.pi / 2 - 1e-3, el_hi + 4 * step)
    n_az = int(np.ceil((az1 - az0) / step)) + 1
    n_el = int(np.ceil((el1 - el0) / step)) + 1
    az_grid = az0 + np.arange(n_az) * step
    el_grid = el1 - np.arange(n_el) * step
    r, alb, cos_inc = _cast(az_grid, el_grid, room, boxes)
    E = el_grid[:, None]

    # --- per-panorama-pixel validity (probability of a hole per frame), ToF noise and flying-pixel partners
    amb = lux / (lux + 20000.0)
    p_hole = np.full(r.shape, (0.004 + 0.12 * amb) if not tof else (0.003 + 0.08 * amb))
    p_hole = 1 - (1 - p_hole) * (1 - 0.9 * np.clip((0.3 - cos_inc) / 0.2, 0, 1))  # grazing incidence
    edge = _edges(r, 0.05)  # depth discontinuities > 5 cm between panorama neighbours
    cols = [r, None]
    ambient = 2e-5 * lux  # ToF: the ambient light's term in the shot noise

    def tof_sigma(amp: np.ndarray) -> np.ndarray:
        """ToF range noise (m per noise-pool step) at returned amplitude ``amp``: s0 sqrt(A + B) / A."""
        return np.asarray(s0 * np.sqrt(amp + ambient) / amp * noise_scale / _POOL_STEPS)

    if tof:
        amp_ret = alb / np.maximum(r, 0.05) ** 2  # returned amplitude ~ albedo / r^2
        a_min = 0.02
        p_hole = 1 - (1 - p_hole) * (1 - np.clip((2 * a_min - amp_ret) / a_min, 0, 1))
        p_hole = np.where(edge, 1 - (1 - p_hole) * 0.6, p_hole)  # the mixed-pixel filter drops some edges
        sig_r = tof_sigma(amp_ret)
        r = r + 0.002 * np.sin(2 * np.pi * r / 0.75)  # wiggling: systematic error periodic in range
        cols = [r, None, sig_r, _flying_partners(r, 0.13)]
    else:
        p_hole = 1 - (1 - p_hole) * (1 - 0.5 * np.clip((0.12 - alb) / 0.1, 0, 1))  # absorbing surfaces
        p_hole = np.where(edge, 1 - (1 - p_hole) * 0.6, p_hole)  # edge flicker
        if baseline > 0:  # projector shadows: occluded from the projector to the camera's right
            disp = baseline / np.maximum(r * np.cos(E), 1e-3) / step  # parallax in panorama columns
            u_p = np.arange(n_az)[None, :] - disp
            right_min = np.minimum.accumulate(u_p[:, ::-1], axis=1)[:, ::-1]
            shadow = np.zeros(r.shape, bool)
            shadow[:, :-1] = u_p[:, :-1] > right_min[:, 1:] + 0.5
            p_hole = np.where(shadow, 1.0, p_hole)
        far = np.clip((r - 0.93 * z_max * (1 - 0.3 * amb)) / (0.07 * z_max), 0, 1)  # weak pattern far away
        p_hole = 1 - (1 - p_hole) * (1 - 0.3 * far)
    thr = ndtri(np.clip(1 - p_hole, 1e-12, 1 - 1e-12))
    thr[p_hole >= 1] = -np.inf
    thr[p_hole <= 0] = np.inf
    cols[1] = thr * _POOL_STEPS  # in pool steps, as the hole noise
    packed = np.stack([np.asarray(c, np.float32).reshape(-1) for c in cols], axis=1)  # (panorama px, C)

    # --- lookup tables: base panorama index of every pixel for each quantised pitch (yaw adds a column shift)
    # a frame reads the panorama from column offset ``shift`` (its yaw) at the pitch table's indices; tables
    # hold camera-relative columns plus ``col0`` so they are never negative
    shift = np.round((world0 - az0) / step).astype(np.int64) if n_frames else np.zeros(0, np.int64)
    col0 = int(shift.min()) if n_frames else 0  # >= the widest camera-relative column (the margin)
    shift -= col0
    tables: dict[int, np.ndarray] = {}  # quantised pitch -> panorama index of each pixel (yaw 0), LRU
    # at least 128 tables, more while they fit in 100 MB (266 at 256 x 192; a 10-minute session uses ~180)
    n_tables = max(128, (100 << 20) // (8 * W * H))

    def table(b: int) -> np.ndarray:
        if b in tables:
            tables[b] = tables.pop(b)
        else:
            if len(tables) >= n_tables:
                del tables[next(iter(tables))]
            el, az = _rotate(dc, np.radians(b * pq))
            row = np.clip(np.round((el1 - el) / step), 0, n_el - 1).astype(np.int64)
            tables[b] = row * n_az + np.round(az / step).astype(np.int64) + col0
        return tables[b]

    # --- the user's hands: spheres in front of the camera (drawn into the gathered panorama values per frame,
    # so the sensor's noise, holes and valid range apply to them as to the room)
    hands = _palms_in_view(ctx, t_ns, tilt, K, W, H) if _flag(p.get("hands", scene != "plane")) else None
    p0 = (0.004 + 0.12 * amb) if not tof else (0.003 + 0.08 * amb)
    # hole threshold by incidence cosine (in 1/64 steps): more holes at the grazing silhouette
    cos_lut = np.arange(65) / 64
    thr_lut = ndtri((1 - p0) * (1 - 0.9 * np.clip((0.3 - cos_lut) / 0.2, 0, 1))) * _POOL_STEPS

    chunk: dict[str, Any] = {"stop": 0}  # the hands' pixels of the frames up to "stop", computed 64 frames at a time
    draw = _compiled(_draw_hits)

    def draw_hands(a: int, b: int, P: np.ndarray) -> None:
        """Draw the hands of frames [a, b) into their gathered values ``P`` ((b - a) * H * W, C)."""
        assert hands is not None
        if b > chunk["stop"]:
            chunk.update(stop=min(n_frames, a + max(64, b - a)), hands=[])
            for h in (0, 1):
                fr = a + np.flatnonzero(hands[1][a : chunk["stop"], h])
                k, pix, rng_m, cos_i = _sphere_hits(hands[0][fr, h], K, W, H) if len(fr) else (np.zeros(0, int),) * 4
                vals = [rng_m, thr_lut[np.minimum(cos_i * 64, 64).astype(np.intp)]]  # pool steps
                if tof:
                    amp = 0.5 / np.maximum(rng_m, 0.05) ** 2  # skin albedo ~0.5 in the near infrared
                    vals += [tof_sigma(amp), np.zeros_like(rng_m)]
                # pixel index into the gathered values of all frames from 0, ascending (hits are frame-major)
                chunk["hands"].append((fr[k] * HW + pix, np.stack(vals, axis=1).astype(np.float32)))
        for pos, vals in chunk["hands"]:  # left then right: the nearer surface wins
            draw(P, pos, vals, a * HW, b * HW)

    HW = H * W
    batch = int(p.get("batch_frames", 4))  # frames per kernel call (their gathered values stay in cache)
    cfac_mm = cfac * np.float32(1000.0)
    lo_mm, hi_mm = np.float32(z_min * 1000 + 0.5), np.float32(z_max * (1 - 0.3 * amb) * 1000 + 0.5)
    # structured-light noise law in mm (per pool step) as a polynomial of z in mm (times the ambient multiplier)
    m_lux = float(np.sqrt(1 + lux / 5000.0) * noise_scale)
    c2, c1, c0 = (np.float32(m_lux * c / _POOL_STEPS) for c in (1.9e-6, -2 * 0.4 * 1.9e-3, 1.2 + 1.9 * 0.16))
    dn = hn = mix_a = mix_b = np.zeros(1, np.int16)  # no noise pools for clean frames
    if not clean:  # noise pools: white depth noise (correlated over 3 px along rows), correlated hole noise
        pool_n = 3 * batch * HW
        g = gaussian_noise(rng, pool_n + 2)
        dn = _quantize((g[:-2] + g[1:-1] + g[2:]) * np.float32(1 / np.sqrt(6.0)))  # two slices summed per frame
        g = uniform_filter(gaussian_noise(rng, pool_n).reshape(-1, W), size=3, mode="wrap").reshape(-1)
        hn = _quantize(g / g.std())
        if tof:  # flying pixels: the first pixel past a jump mixes with probability 0.6, the second 0.35
            fly_u = rng.random(pool_n, dtype=np.float32)
            mix_a, mix_b = (_quantize(np.where(fly_u < pf, np.float32(0.15) + np.float32(0.7) * fly_u / pf, -1))
                            for pf in (np.float32(0.6), np.float32(0.35)))
    data = reusable_empty("depth", (n_frames, H, W), np.uint16)  # every pixel is written below
    flat = data.reshape(n_frames, HW)
    p_b = np.empty((batch * HW, packed.shape[1]), np.float32)
    finish = _compiled(_finish_frames)
    consts = np.array([lo_mm, hi_mm, c2, c1, c0], np.float32)
    n_valid = 0
    for a in range(0, n_frames, batch):
        b = min(n_frames, a + batch)
        m = b - a
        P = p_b[: m * HW]
        for j in range(m):  # mode="clip" avoids take's buffering; the indices are in range by construction
            packed[shift[a + j] :].take(table(int(pbin[a + j])), axis=0, out=P[j * HW : (j + 1) * HW], mode="clip")
        if hands is not None:
            draw_hands(a, b, P)
        o = o2 = ho = 0
        if not clean:  # the sum of two slices at independent offsets: a frame's noise field never recurs
            span = pool_n - m * HW + 1
            o, o2 = (int(v) for v in rng.integers(0, span, 2))
            o2 = o2 if o2 != o else (o + 1) % span
            ho = int(rng.integers(0, (pool_n - m * HW) // W + 1)) * W
        n_valid += finish(P.reshape(-1), cfac_mm, consts, dn, o, o2, hn, ho, mix_a, mix_b, tof, clean, flat[a:b])

    meta: dict[str, Any] = {
        "intrinsics": K, "kind": kind, "z_min_m": z_min, "z_max_m": z_max, "reference_space": "view",
        "baseline_m": baseline, "synthetic": True,
    }
    stream = Stream("depth", "depth", t_ns, data, ["depth"], ["mm"], rate_hz=fs, meta=meta)
    truth: dict[str, Any] = {
        "kind": kind, "intrinsics": K, "lighting_lux": lux, "scene": scene, "eye_height_m": eye_h,
        "boxes": [{"name": bx.name, "lo": bx.lo.round(3).tolist(), "hi": bx.hi.round(3).tolist(),
                   "albedo": round(bx.albedo, 3)} for bx in [room, *boxes]],
        "noise_law_mm": "1.2 + 1.9 (z - 0.4)^2" if not tof else "tof amplitude model",
        "noise_multiplier": float(m_lux), "panorama_shape": [n_el, n_az], "tilt_deg": tilt,
        "invalid_fraction": (data.size - n_valid) / data.size if data.size else 0.0,
    }
    return ModalityOutput(streams=[stream], truth=truth)


def _finish_frames(P: np.ndarray, cfac_mm: np.ndarray, consts: np.ndarray, dn: np.ndarray, o: int, o2: int,
                   hn: np.ndarray, ho: int, mix_a: np.ndarray, mix_b: np.ndarray, tof: bool, clean: bool,
                   out: np.ndarray) -> int:
    """Turn the gathered panorama values of m frames into uint16 depth (mm, 0 = invalid), in place in ``out``.

    ``P`` (m * H * W * C,) float32, C values per pixel: range (m), hole threshold, and for ToF (C = 4) the range
    noise sigma and the flying-pixel partner range (m); ``cfac_mm`` (H * W,) range -> depth in mm; ``consts`` =
    lo, hi (mm + 0.5) and the structured-light noise polynomial c2, c1, c0 (mm). The noise pools are int16 in
    steps of 1 / ``_POOL_STEPS`` (``_quantize``), so the thresholds and sigmas are per step: ``dn`` (depth,
    read at offsets ``o`` + ``o2`` and summed), ``hn`` (holes, offset ``ho``) and the ToF flying pixels'
    near-surface weights ``mix_a`` (first pixel past a jump) and ``mix_b`` (second; offset ``o``; < 0: no
    mixing). ``out`` (m, H * W) uint16. Returns the number of valid pixels.

    Compiled with numba (``_compiled``): one pass over the pixels instead of the ~15 passes array code needs,
    with the float32 operations of the array code in the same order (its output is bit-identical).
    """
    lo, hi, c2, c1, c0 = consts[0], consts[1], consts[2], consts[3], consts[4]
    half, zero, step = np.float32(0.5), np.float32(0.0), np.float32(1.0 / _POOL_STEPS)
    m, hw = out.shape
    c = P.size // max(1, m * hw)
    n_valid = 0
    # per frame, 1-D slices and branch-free inner loops (one per sensor mode): the compiler vectorises them
    for j in range(m):
        k0 = j * hw
        oj = out[j]
        d1, d2 = dn[o + k0 : o + k0 + hw], dn[o2 + k0 : o2 + k0 + hw]
        h = hn[ho + k0 : ho + k0 + hw]
        if clean:
            q = P[c * k0 : c * (k0 + hw)]
            for i in range(hw):
                z = q[c * i] * cfac_mm[i] + half
                v = np.uint16(z if (z >= lo) & (z <= hi) else zero)
                oj[i] = v
                n_valid += v != 0
        elif tof:
            q = P[4 * k0 : 4 * (k0 + hw)]
            fa, fb = mix_a[o + k0 : o + k0 + hw], mix_b[o + k0 : o + k0 + hw]
            for i in range(hw):
                rr, near = q[4 * i], q[4 * i + 3]
                # next to a depth jump (near != 0): a flying pixel mixes the near and far ranges
                an = abs(near)
                f = np.float32(fa[i] if near > 0 else fb[i]) * step
                rr = an + f * (rr - an) if (near != 0) & (f >= 0) else rr
                z = (q[4 * i + 2] * (np.float32(d1[i]) + np.float32(d2[i])) + rr) * cfac_mm[i] + half
                v = np.uint16(z if (np.float32(h[i]) < q[4 * i + 1]) & (z >= lo) & (z <= hi) else zero)
                oj[i] = v
                n_valid += v != 0
        else:  # structured light: sigma_z(z) = c2 z^2 + c1 z + c0 (mm)
            q = P[2 * k0 : 2 * (k0 + hw)]
            for i in range(hw):
                z = q[2 * i] * cfac_mm[i]
                z = z + ((z * c2 + c1) * z + c0) * (np.float32(d1[i]) + np.float32(d2[i])) + half
                v = np.uint16(z if (np.float32(h[i]) < q[2 * i + 1]) & (z >= lo) & (z <= hi) else zero)
                oj[i] = v
                n_valid += v != 0
    return n_valid


def _draw_hits(P: np.ndarray, pos: np.ndarray, vals: np.ndarray, base: int, stop: int) -> None:
    """Draw a hand's pixels into gathered values: row ``pos[k] - base`` of ``P`` (pixels, C) becomes
    ``vals[k]`` (C values) for every ``base <= pos[k] < stop`` (``pos`` ascending) whose range (column 0) is
    nearer than the row's. Compiled with numba (``_compiled``): one pass over the hits instead of numpy's
    gather, comparison and scatter, which took ~10 % of a ToF session's time."""
    k = np.searchsorted(pos, base)
    c = P.shape[1]
    while k < pos.size and pos[k] < stop:
        i = pos[k] - base
        if vals[k, 0] < P[i, 0]:
            for j in range(c):
                P[i, j] = vals[k, j]
        k += 1


def _quantize(x: np.ndarray) -> np.ndarray:
    """A noise pool as int16 in steps of 1 / ``_POOL_STEPS`` (|x| < 8, which unit-variance noise does not
    exceed in practice). The frame kernel reads five pool values per ToF pixel (three for structured light):
    at 2 bytes instead of 4 it runs in ~0.6 of the time (it was bound by the memory traffic), and a step of
    1/4096 of the noise's standard deviation changes nothing a depth frame in whole millimetres can show."""
    return np.clip(np.rint(x * _POOL_STEPS), -32767, 32767).astype(np.int16)


_COMPILED: dict[str, Any] = {}


def _compiled(fn: Any) -> Any:
    """``fn`` compiled by numba on first use (cached on disk; numba is imported only when depth is generated)."""
    if fn.__name__ not in _COMPILED:
        numba = require("numba", "synth")
        _COMPILED[fn.__name__] = numba.njit(cache=True, nogil=True)(fn)  # type: ignore[attr-defined]
    return _COMPILED[fn.__name__]


def _edges(r: np.ndarray, jump_m: float) -> np.ndarray:
    """Pixels of a (rows, cols) range image next to a discontinuity larger than ``jump_m``."""
    e = np.zeros(r.shape, bool)
    jh = np.abs(np.diff(r, axis=1)) > jump_m
    jv = np.abs(np.diff(r, axis=0)) > jump_m
    e[:, 1:] |= jh
    e[:, :-1] |= jh
    e[1:, :] |= jv
    e[:-1, :] |= jv
    return e


def _flying_partners(r: np.ndarray, jump_m: float) -> np.ndarray:
    """Range of the near surface for panorama pixels that can become ToF flying (mixed) pixels.

    The first pixel on the far side of a jump larger than ``jump_m`` gets the near range (> 0), the second one
    on the same far surface gets it negated (< 0, mixing less often); all others 0. Rows and columns both.
    """
    out = np.zeros(r.shape, np.float64)
    for axis in (1, 0):
        a = np.moveaxis(r, axis, -1)
        o = np.moveaxis(out, axis, -1)
        d = a[..., 1:] - a[..., :-1]
        flat_next = np.abs(np.diff(a, axis=-1)) < 0.05
        up = d > jump_m  # the next pixel is farther
        o[..., 1:] = np.where(up & (o[..., 1:] == 0), a[..., :-1], o[..., 1:])
        second = up[..., :-1] & flat_next[..., 1:]
        o[..., 2:] = np.where(second & (o[..., 2:] == 0), -a[..., :-2], o[..., 2:])
        down = d < -jump_m  # the previous pixel is farther
        o[..., :-1] = np.where(down & (o[..., :-1] == 0), a[..., 1:], o[..., :-1])
        second = down[..., 1:] & flat_next[..., :-1]
        o[..., :-2] = np.where(second & (o[..., :-2] == 0), -a[..., 2:], o[..., :-2])
    return out
