"""Depth generator: REALISM rows D1, D3, D4, D5 computed on generated frames, plus pose, lighting and contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xrdata.model import Recording
from xrdata.synth import stats
from xrdata.synth.depth import HAND_RADIUS_M, generate_depth
from xrdata.synth.types import EXAMPLE_DEVICE, Context, ModalityOutput, SensorSpec, SessionPlan, example_plan
from xrdata.validation import check_writable

SENSOR = EXAMPLE_DEVICE.sensors["depth"]


def _sensor(**params: float | str) -> SensorSpec:
    return replace(SENSOR, params={**SENSOR.params, **params})


def _frames(
    seconds: float = 1.0, seed: int = 0, ctx: Context | None = None, plan: SessionPlan | None = None,
    **params: float | str,
) -> tuple[np.ndarray, ModalityOutput]:
    plan = plan or example_plan(seconds)
    out = generate_depth(plan, _sensor(**params), np.random.default_rng(seed), ctx or Context())
    return out.streams[0].data, out


def _clean(seconds: float = 1.0, seed: int = 0, **params: float | str) -> np.ndarray:
    return _frames(seconds, seed, clean=1, **params)[0][0]


@pytest.mark.parametrize("z", [0.6, 1.0, 1.8, 2.6, 3.2])
def test_d1_structured_light_noise_law_on_static_plane(z: float) -> None:
    frames, _ = _frames(2.0, seed=int(z * 10), scene="plane", plane_m=z)
    zm, sd = stats.depth_temporal_noise(frames[:, 64:128, 96:160])
    assert zm.size > 3000 and abs(np.median(zm) - z) < 0.01
    ratio = np.median(sd / stats.structured_light_sigma_mm(zm))
    assert 0.8 <= ratio <= 1.2, ratio


@pytest.mark.parametrize("kind", ["structured_light", "tof"])
def test_clean_plane_renders_flat_through_the_intrinsics(kind: str) -> None:
    """Every pixel of a fronto-parallel plane has the plane's z (the panorama lookup follows the rays)."""
    for plane in (0.7, 2.0):
        f = _clean(0.1, kind=kind, scene="plane", plane_m=plane, tilt_deg=0.0)
        assert np.all(np.abs(f.astype(np.float64) - plane * 1000) <= 4 + 3e-3 * plane * 1000), (kind, plane)


def test_d3_valid_range_per_preset() -> None:
    for kind, (z_min, z_max) in (("structured_light", (0.5, 3.5)), ("tof", (0.5, 3.86))):
        frames, _ = _frames(0.5, kind=kind)
        valid = frames[frames > 0]
        assert valid.min() >= z_min * 1000 and valid.max() <= z_max * 1000
        # a plane beyond or before the range is invalid; one inside it is seen
        for plane, seen in ((0.4, False), (3.0, True), (3.7, kind == "tof"), (4.2, False)):
            f, _ = _frames(0.2, kind=kind, scene="plane", plane_m=plane)
            centre = f[:, 80:112, 112:144]
            assert (np.mean(centre > 0) > 0.9) if seen else np.all(centre == 0), (kind, plane)


def test_d3_pixels_beyond_range_are_invalid_in_rooms() -> None:
    for seed in range(3):
        truth = _clean(seed=seed, z_min_m=0.05, z_max_m=20.0)  # true depths, unclipped
        frames, _ = _frames(0.3, seed=seed, z_max_m=1.8)
        far, near = truth > 1850, (truth > 0) & (truth < 450)
        assert far.mean() > 0.05
        assert np.all(frames[:, far] == 0) and np.all(frames[:, near] == 0)
        assert frames[frames > 0].max() <= 1800


def test_d4_invalid_fraction_indoors_and_shadow_bands() -> None:
    for seed in range(4):
        for kind in ("structured_light", "tof"):
            frames, _ = _frames(0.5, seed=seed, kind=kind)
            frac = stats.invalid_fraction(frames)
            assert 0.02 <= frac <= 0.15, (kind, seed, frac)
        # structured light: invalid bands on the background left of foreground objects (projector on the right)
        ref = _clean(seed=seed).astype(np.float64)
        frames, _ = _frames(0.5, seed=seed)
        ref[ref == 0] = np.nan
        dz = ref[:, 1:] - ref[:, :-1]
        inv = (frames == 0).mean(axis=0)
        rows, cols = np.nonzero(dz < -300)  # far -> near going right: a left edge of a foreground object
        left = inv[rows[:, None], np.clip(cols[:, None] - np.arange(3), 0, None)].mean()
        rows, cols = np.nonzero(dz > 300)  # near -> far: a right edge
        right = inv[rows[:, None], np.clip(cols[:, None] + 1 + np.arange(1, 4), None, ref.shape[1] - 1)].mean()
        assert left > 0.6 and left > 2.5 * right, (left, right)


def test_d5_flying_pixels_only_beside_jumps_for_tof() -> None:
    for seed in range(3):
        ref = _clean(seed=seed, kind="tof")
        frames, _ = _frames(0.4, seed=seed, kind="tof")
        zone = stats.depth_jumps(ref, jump_mm=100.0, radius=2)  # within 3 px of a > 10 cm discontinuity
        fly = np.array([stats.flying_pixels(f, ref, tol_mm=50.0) for f in frames])
        assert fly.sum() > 100 * len(frames) and fly[:, zone].mean() > 0.01
        assert not np.any(fly[:, ~zone]), "flying pixels on smooth surfaces"
        # structured light has no mixed pixels: detections are rare noise outliers at most
        sl = _frames(0.4, seed=seed)[0]
        sl_fly = np.mean([stats.flying_pixels(f, _clean(seed=seed), tol_mm=50.0).mean() for f in sl])
        assert sl_fly < 1e-4 and fly.mean() > 50 * max(sl_fly, 1e-6)


def test_lighting_raises_noise_and_holes() -> None:
    dim = example_plan(1.0, lighting_lux=200.0)
    bright = example_plan(1.0, lighting_lux=20000.0)
    for kind in ("structured_light", "tof"):
        f_dim, _ = _frames(plan=dim, kind=kind)
        f_bright, _ = _frames(plan=bright, kind=kind)
        assert stats.invalid_fraction(f_bright) > stats.invalid_fraction(f_dim) + 0.01
        p_dim, _ = _frames(plan=dim, kind=kind, scene="plane", plane_m=2.0)
        p_bright, _ = _frames(plan=bright, kind=kind, scene="plane", plane_m=2.0)
        sd_dim = np.median(stats.depth_temporal_noise(p_dim[:, 80:112, 112:144])[1])
        sd_bright = np.median(stats.depth_temporal_noise(p_bright[:, 80:112, 112:144])[1])
        assert sd_bright > 1.3 * sd_dim, (kind, sd_dim, sd_bright)


def test_head_yaw_moves_the_scene() -> None:
    """Turning the head left by 10 deg moves the scene right by fx tan(10 deg) pixels."""
    imgs = []
    for yaw in (0.0, 10.0):
        ctx = Context(head_time_ns=np.array([0, 2_000_000_000]), head_yaw_pitch_deg=np.array([[yaw, 0.0], [yaw, 0.0]]))
        imgs.append(_frames(0.1, ctx=ctx, clean=1)[0][0].astype(np.float64))
    _, out = _frames(0.1)
    expected = out.truth["intrinsics"]["fx"] * np.tan(np.radians(10.0))
    a, b = imgs
    err = {s: np.mean(np.abs(a[:, : 256 - s] - b[:, s:])) for s in range(0, 80)}
    assert abs(min(err.items(), key=lambda kv: kv[1])[0] - expected) <= 2


def test_stream_is_writable_deterministic_with_intrinsics() -> None:
    plan = example_plan(0.5, (("gaze_selection", "target_1"),))
    for kind in ("structured_light", "tof"):
        f1, out = _frames(plan=plan, kind=kind, seed=3)
        f2, _ = _frames(plan=plan, kind=kind, seed=3)
        s = out.streams[0]
        check_writable(Recording("u", "s", [s]))
        assert s.data.dtype == np.uint16 and s.data.shape == (15, 192, 256) and s.units == ["mm"]
        assert set(s.meta["intrinsics"]) == {"fx", "fy", "cx", "cy"} and s.meta["kind"] == kind
        assert np.array_equal(f1, f2) and not np.array_equal(f1, _frames(plan=plan, kind=kind, seed=4)[0])
    small, out = _frames(0.2, width=128, height=96)
    assert small.shape == (6, 96, 128) and out.truth["intrinsics"]["cx"] == 63.5


def test_wide_head_motion_is_rendered() -> None:
    """Full turns and large pitch excursions stay inside the panorama (no artefacts, same invalid share)."""
    t = np.linspace(0, 4e9, 400).astype(np.int64)
    yp = np.stack([np.linspace(0, 540, t.size), 25 * np.sin(np.linspace(0, 6, t.size))], axis=1)
    frames, _ = _frames(4.0, ctx=Context(head_time_ns=t, head_yaw_pitch_deg=yp), kind="tof")
    per_frame = (frames == 0).mean(axis=(1, 2))
    assert np.all(per_frame < 0.3) and 0.005 < per_frame.mean() < 0.15


def _hand_ctx(palm: tuple[float, float, float]) -> Context:
    """Both palms at ``palm`` (head frame, m) for 2 s, the right hand far out of view."""
    t = np.array([0, 2_000_000_000])
    ph = np.array([[palm, (0.4, -0.5, 0.2)]] * 2)
    return Context(hand_time_ns=t, palm_head_m=ph)


@pytest.mark.parametrize("kind", ["structured_light", "tof"])
def test_hands_are_spheres_in_front_of_the_camera(kind: str) -> None:
    """A palm 0.8 m straight ahead of the camera shows as a disc of depth 0.8 - r at the image centre with the
    projected radius; one 0.3 m ahead (nearer than z_min) is a hole; the plane scene has no hands."""
    empty = _clean(0.1, kind=kind).astype(np.float64)
    tilt = np.radians(-15.0)  # the default mount pitch: camera forward is (0, sin t, -cos t) in the head frame
    for dist in (0.8, 0.3):
        palm = (0.0, dist * np.sin(tilt), -dist * np.cos(tilt))
        f, out = _frames(0.1, ctx=_hand_ctx(palm), clean=1, kind=kind)
        img = f[0].astype(np.float64)
        fx = out.truth["intrinsics"]["fx"]
        changed = img != empty
        centre = img[95:97, 127:129]
        if dist == 0.8:
            assert np.all(np.abs(centre - (dist - HAND_RADIUS_M) * 1000) < 3), centre
            radius_px = np.sqrt(changed.sum() / np.pi)
            assert abs(radius_px - fx * HAND_RADIUS_M / np.sqrt(dist**2 - HAND_RADIUS_M**2)) < 1.5
        else:
            assert np.all(centre == 0) and changed.sum() > 1000
    noisy, _ = _frames(0.3, ctx=_hand_ctx((0.0, -0.2, -0.8)), kind=kind)
    assert (noisy[:, 96, 128] > 0).mean() > 0.6  # the hand gets noise and holes, not only the clean disc
    plane = {"clean": 1, "kind": kind, "scene": "plane", "plane_m": 1.5}
    assert np.array_equal(_frames(0.1, ctx=_hand_ctx((0.0, 0.0, -0.8)), **plane)[0], _frames(0.1, **plane)[0])


@given(st.lists(st.floats(-12.0, 12.0, allow_nan=False), min_size=1, max_size=50))
def test_noise_pools_keep_values_within_half_a_step(xs: list[float]) -> None:
    """The int16 pools hold every value within half a step of 1/4096, clipped only beyond +-8 (unit-variance
    noise); -1 (no flying-pixel mixing) stays negative."""
    from xrdata.synth.depth import _POOL_STEPS, _quantize

    x = np.array(xs)
    q = _quantize(x)
    assert q.dtype == np.int16
    inside = np.abs(x) < 32767 / _POOL_STEPS
    assert np.all(np.abs(q[inside] / _POOL_STEPS - x[inside]) <= 0.5 / _POOL_STEPS)
    assert np.all(np.abs(q[~inside]) == 32767) and np.array_equal(np.sign(q[~inside]), np.sign(x[~inside]))
    assert _quantize(np.array([-1.0]))[0] < 0


@pytest.mark.parametrize("mode", ["structured_light", "tof", "clean"])
def test_compiled_frame_kernel_matches_its_python(mode: str) -> None:
    """numba's build of the per-pixel kernel gives the bytes the interpreted function gives (no fast-math or
    fused multiply-add changes), on values at the valid-range limits, holes, infinities and flying pixels."""
    from xrdata.synth.depth import _POOL_STEPS, _compiled, _finish_frames, _quantize

    rng = np.random.default_rng(3)
    m, hw, c = 2, 48, 4 if mode == "tof" else 2
    P = np.empty((m * hw, c), np.float32)
    P[:, 0] = rng.uniform(0.3, 4.5, m * hw)
    P[:, 1] = rng.normal(0, 1.5, m * hw)
    P[::7, 1], P[3::11, 1] = np.inf, -np.inf  # never / always a hole
    if c == 4:
        P[:, 2] = rng.uniform(1e-3, 2e-2, m * hw) / _POOL_STEPS  # range noise per pool step
        P[:, 3] = np.where(rng.random(m * hw) < 0.3, rng.uniform(0.3, 3.0, m * hw), 0) * rng.choice([-1, 1], m * hw)
    cfac = rng.uniform(850, 1000, hw).astype(np.float32)
    consts = np.array([500.5, 3500.5, *(np.array([1.9e-6, -1.5e-3, 1.5]) / _POOL_STEPS)], np.float32)
    P[5, 0] = (consts[0] - 0.5) / cfac[5]  # exactly at the near limit before noise
    P[:, 1] *= _POOL_STEPS  # hole thresholds in pool steps
    pool = 3 * m * hw
    dn, hn = (_quantize(rng.normal(size=pool)) for _ in range(2))
    mix_a = _quantize(np.where(rng.random(pool) < 0.6, rng.uniform(0.15, 0.85, pool), -1))
    mix_b = _quantize(np.where(rng.random(pool) < 0.35, rng.uniform(0.15, 0.85, pool), -1))
    args = (P.reshape(-1), cfac, consts, dn, 7, 40, hn, 13, mix_a, mix_b, mode == "tof", mode == "clean")
    want, got = np.zeros((m, hw), np.uint16), np.zeros((m, hw), np.uint16)
    n_want = _finish_frames(*args, want)
    n_got = _compiled(_finish_frames)(*args, got)
    assert 0 < n_want < m * hw
    assert n_got == n_want == np.count_nonzero(want)
    np.testing.assert_array_equal(got, want)


def test_compiled_ray_sphere_matches_its_python() -> None:
    from xrdata.synth.depth import _compiled, _ray_sphere

    rng = np.random.default_rng(4)
    k, S, W, H = 3, 30, 40, 30
    x, y = rng.uniform(-0.2, 0.2, k), rng.uniform(-0.2, 0.2, k)
    z = rng.uniform(-0.6, -0.2, k)
    col0, row0 = rng.integers(-10, 25, k), rng.integers(-10, 15, k)  # boxes partly outside the image
    args = (x, y, z, col0, row0, S, 60.0, 60.0, (W - 1) / 2, (H - 1) / 2, W, H)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    n = _ray_sphere(*args, *empty)
    assert n > 0 and _compiled(_ray_sphere)(*args, *empty) == n
    want = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n), np.empty(n))
    got = tuple(np.empty_like(a) for a in want)
    _ray_sphere(*args, *want)
    _compiled(_ray_sphere)(*args, *got)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_hand_hits_drawn_where_nearer() -> None:
    """A hand's pixel replaces the gathered values only where it is nearer, only inside [base, stop), the same
    compiled and interpreted."""
    from xrdata.synth.depth import _compiled, _draw_hits

    rng = np.random.default_rng(5)
    P = rng.uniform(0.5, 3.0, (200, 4)).astype(np.float32)
    pos = np.sort(rng.choice(600, 120, replace=False)).astype(np.int64)
    vals = rng.uniform(0.3, 2.0, (120, 4)).astype(np.float32)
    base, stop = 200, 400
    want = P.copy()
    for p, v in zip(pos, vals, strict=True):
        if base <= p < stop and v[0] < want[p - base, 0]:
            want[p - base] = v
    for fn in (_draw_hits, _compiled(_draw_hits)):
        got = P.copy()
        fn(got, pos, vals, base, stop)
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(want, P) and (want == P).any()


def test_ray_sphere_row_intervals_lose_no_hit() -> None:
    """The compiled ray-sphere test only visits each row's candidate interval; a brute-force test of every
    pixel of the boxes finds the same hits with the same values (near, far, off-axis and clipped spheres)."""
    from xrdata.synth.depth import _sphere_hits, intrinsics

    rng = np.random.default_rng(5)
    W, H = 256, 192
    K = intrinsics(W, H, 75.0)
    k = 60
    dist = rng.uniform(0.12, 1.5, k)
    ang = rng.uniform(-0.7, 0.7, (k, 2))
    cam = np.stack([dist * np.sin(ang[:, 0]), dist * np.sin(ang[:, 1]), -dist * np.cos(ang[:, 0])], axis=1)
    got = _sphere_hits(cam, K, W, H)

    x, y, z = (c[:, None, None] for c in cam.T)
    S = int(2 * np.ceil((K["fx"] * HAND_RADIUS_M / -z + 2).max())) + 2
    cols = np.floor(K["cx"] + K["fx"] * x / -z - S / 2).astype(np.int64) + np.arange(S)[None, None, :]
    rows = np.floor(K["cy"] - K["fy"] * y / -z - S / 2).astype(np.int64) + np.arange(S)[None, :, None]
    a_u, a_v = (cols - K["cx"]) / K["fx"], -(rows - K["cy"]) / K["fy"]
    b = (a_u * x + a_v * y - z) / np.sqrt(a_u * a_u + a_v * a_v + 1.0)
    disc = b * b - (x * x + y * y + z * z - HAND_RADIUS_M**2)
    hit = (disc > 0) & (b > 0) & (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
    f, r_i, c_i = np.nonzero(hit)
    sq = np.sqrt(disc[hit])
    want = (f, rows[f, r_i, 0] * W + cols[f, 0, c_i], b[hit] - sq, sq / HAND_RADIUS_M)
    assert len(f) > 1000
    for a, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, w)
