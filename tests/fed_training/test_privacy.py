"""Client-level DP and the membership-inference check (xrdata.fed_training.privacy)."""

from __future__ import annotations

import itertools
import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xrdata.errors import MissingDependencyError, ValidationError
from xrdata.fed_training.privacy import (
    clip_update,
    dp_average,
    epsilon,
    gaussian_noise_,
    membership_inference_auc,
    update_norm,
)


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


# --- clipping and noise --------------------------------------------------------------------------------------------


def test_clip_update_global_norm() -> None:
    delta = {"a": f32(3.0, 0.0), "b": f32(4.0)}  # global norm 5
    clipped, scale = clip_update(delta, 1.0)
    assert scale == pytest.approx(0.2) and update_norm(clipped) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(clipped["a"], f32(0.6, 0.0), rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], f32(0.8), rtol=1e-6)
    same, scale = clip_update(delta, 10.0)
    assert scale == 1.0
    np.testing.assert_array_equal(same["a"], delta["a"])
    assert clip_update({"z": np.zeros(3, np.float32)}, 1.0)[1] == 1.0
    with pytest.raises(ValidationError, match="max_norm"):
        clip_update(delta, 0.0)


@given(values=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=20), c=st.floats(0.01, 100))
def test_clipped_norm_is_at_most_max_norm(values: list[float], c: float) -> None:
    clipped, scale = clip_update({"x": np.array(values, np.float32)}, c)
    assert 0 < scale <= 1
    assert update_norm(clipped) <= c * (1 + 1e-5)


def test_gaussian_noise_std() -> None:
    z, clip, n = 1.5, 2.0, 4
    mean = {"a": np.zeros(200_000, np.float32), "b": np.zeros((10, 10), np.float32)}
    out = gaussian_noise_(mean, z, clip, n, np.random.default_rng(0))
    assert out is mean  # in place
    sd = z * clip / n
    assert np.std(mean["a"]) == pytest.approx(sd, rel=0.01)
    assert abs(np.mean(mean["a"])) < 5 * sd / math.sqrt(200_000)
    assert mean["a"].dtype == np.float32 and np.any(mean["b"] != 0)
    untouched = {"a": np.ones(3, np.float32)}
    gaussian_noise_(untouched, 0.0, clip, n, np.random.default_rng(0))
    np.testing.assert_array_equal(untouched["a"], np.ones(3, np.float32))
    with pytest.raises(ValidationError, match="n_clients"):
        gaussian_noise_(mean, z, clip, 0, np.random.default_rng(0))


def test_dp_average_clips_then_takes_the_unweighted_mean() -> None:
    d1 = {"a": f32(3.0, 4.0)}  # norm 5 -> clipped to (0.6, 0.8)
    d2 = {"a": f32(0.3, 0.0), "b": f32(0.4)}  # norm 0.5: unchanged
    out = dp_average([d1, d2], max_norm=1.0, noise_multiplier=0.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out["a"], f32(0.45, 0.4), rtol=1e-6)
    np.testing.assert_allclose(out["b"], f32(0.2), rtol=1e-6)  # d1 lacks "b": counts as 0 over n = 2
    noisy = dp_average([d1, d2], 1.0, 1.0, np.random.default_rng(0))
    again = dp_average([d1, d2], 1.0, 1.0, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy["a"], again["a"])  # the generator alone decides the noise
    assert not np.allclose(noisy["a"], out["a"])
    with pytest.raises(ValidationError, match="empty"):
        dp_average([], 1.0, 1.0, np.random.default_rng(0))


# --- accounting ---------------------------------------------------------------------------------------------------


def test_epsilon_matches_opacus_directly() -> None:
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    for _ in range(30):
        acc.step(noise_multiplier=1.1, sample_rate=0.1)
    assert epsilon(1.1, 0.1, 30, 1e-5) == pytest.approx(acc.get_epsilon(delta=1e-5), rel=1e-9)


def test_epsilon_monotonic_and_edges() -> None:
    by_noise = [epsilon(z, 0.1, 50, 1e-5) for z in (0.7, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in itertools.pairwise(by_noise))
    by_rounds = [epsilon(1.0, 0.1, r, 1e-5) for r in (1, 10, 100)]
    assert all(a < b for a, b in itertools.pairwise(by_rounds))
    assert epsilon(1.0, 0.1, 0, 1e-5) == 0.0
    assert epsilon(0.0, 0.1, 5, 1e-5) == math.inf
    with pytest.raises(ValidationError, match="sample_rate"):
        epsilon(1.0, 0.0, 5, 1e-5)
    with pytest.raises(ValidationError, match="delta"):
        epsilon(1.0, 0.1, 5, 1.0)


def test_epsilon_without_opacus_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opacus.accountants", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"xrdata\[train\]"):
        epsilon(1.0, 0.1, 5, 1e-5)


# --- membership inference -------------------------------------------------------------------------------------------


def test_membership_inference_auc_by_hand() -> None:
    assert membership_inference_auc([0.1, 0.2], [1.0, 2.0]) == 1.0  # members have lower loss: full leakage
    assert membership_inference_auc([1.0, 2.0], [0.1, 0.2]) == 0.0
    assert membership_inference_auc([0.5, 0.5, 0.5], [0.5, 0.5]) == 0.5
    same = np.random.default_rng(0).exponential(size=50)
    assert membership_inference_auc(same, same) == 0.5
    # pairs: (1 vs 1) tie 1/2, (1 vs 3) 1, (2 vs 1) 0, (2 vs 3) 1 -> 2.5 / 4
    assert membership_inference_auc([1.0, 2.0], [1.0, 3.0]) == 0.625
    with pytest.raises(ValidationError, match="member_losses is empty"):
        membership_inference_auc([], [1.0])
    with pytest.raises(ValidationError, match="non-finite"):
        membership_inference_auc([1.0], [math.nan])


@given(
    members=st.lists(st.integers(0, 5).map(float), min_size=1, max_size=15),
    others=st.lists(st.integers(0, 5).map(float), min_size=1, max_size=15),
)
def test_membership_inference_auc_is_the_pairwise_probability(members: list[float], others: list[float]) -> None:
    wins = sum(1.0 if m < o else 0.5 if m == o else 0.0 for m in members for o in others)
    assert membership_inference_auc(members, others) == pytest.approx(wins / (len(members) * len(others)))
