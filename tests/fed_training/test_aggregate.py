"""Aggregation, server optimizers, compression and topologies (xrdata.fed_training.aggregate)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xrdata.errors import ValidationError
from xrdata.fed_training.aggregate import (
    ClientUpdate,
    ErrorFeedback,
    ServerOptimizer,
    clusters,
    compress,
    fedavg_deltas,
    gossip,
    metropolis_weights,
    modulewise_average,
    payload_bytes,
    ring_lattice,
    weighted_average,
)
from xrdata.fed_training.config import FedConfig

EEG = "encoders.eeg.tokenizer.weight"
DEPTH = "encoders.depth.tokenizer.weight"
BACKBONE = "blocks.0.attn.qkv.weight"

finite32 = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_aggregate_does_not_import_torch() -> None:
    code = "import sys, xrdata.fed_training.aggregate, xrdata.fed_training.privacy; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- weighted_average ------------------------------------------------------------------------------------------


def test_weighted_average_by_hand() -> None:
    a = {"w": f32(1, 2), "b": np.array([[1.0]], np.float32)}
    b = {"w": f32(3, 6), "b": np.array([[5.0]], np.float32)}
    out = weighted_average([a, b], [1, 3])
    np.testing.assert_array_equal(out["w"], f32(2.5, 5.0))
    np.testing.assert_array_equal(out["b"], np.array([[4.0]], np.float32))
    assert out["w"].dtype == np.float32 and out["b"].shape == (1, 1)
    # a zero-weight client is allowed while the total is positive
    np.testing.assert_array_equal(weighted_average([a, b], [0, 2])["w"], b["w"])


def test_weighted_average_errors_name_client_and_key() -> None:
    a = {"w": f32(1, 2)}
    with pytest.raises(ValidationError, match="empty"):
        weighted_average([], [])
    with pytest.raises(ValidationError, match="positive total"):
        weighted_average([a, a], [0, 0])
    with pytest.raises(ValidationError, match=r"weights\[1\]"):
        weighted_average([a, a], [1, -1])
    with pytest.raises(ValidationError, match="2 weights for 1"):
        weighted_average([a], [1, 1])
    with pytest.raises(ValidationError, match=r"client 1 .*missing \['w'\]"):
        weighted_average([a, {"v": f32(1, 2)}], [1, 1])
    with pytest.raises(ValidationError, match=r"client 2 parameter 'w'"):
        weighted_average([a, a, {"w": f32(1, 2, 3)}], [1, 1, 1])


@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=4), elements=finite32),
    weights=st.lists(st.floats(0.01, 100), min_size=1, max_size=6),
)
def test_weighted_average_of_identical_arrays_is_that_array(x: np.ndarray, weights: list[float]) -> None:
    out = weighted_average([{"p": x.copy()} for _ in weights], weights)
    np.testing.assert_allclose(out["p"], x, rtol=1e-6, atol=1e-6)


@given(
    data=st.data(),
    n=st.integers(1, 6),
)
def test_weighted_average_is_permutation_invariant(data: st.DataObject, n: int) -> None:
    xs = [data.draw(hnp.arrays(np.float32, (3,), elements=finite32)) for _ in range(n)]
    ws = data.draw(st.lists(st.floats(0.01, 100), min_size=n, max_size=n))
    perm = data.draw(st.permutations(range(n)))
    a = weighted_average([{"p": x} for x in xs], ws)["p"]
    b = weighted_average([{"p": xs[i]} for i in perm], [ws[i] for i in perm])["p"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


# --- modulewise_average / fedavg_deltas ---------------------------------------------------------------------------


def _three_clients() -> tuple[list[ClientUpdate], dict[str, np.ndarray]]:
    a, b = f32(1.0, -2.0), f32(3.0, 2.0)
    p1, p2, p3 = f32(1.0), f32(2.0), f32(4.0)
    ups = [
        ClientUpdate("u1", {EEG: a, BACKBONE: p1}, {"backbone": 10, "encoder/eeg": 10}),
        ClientUpdate("u2", {EEG: b, BACKBONE: p2}, {"backbone": 30, "encoder/eeg": 30}),
        # sends an EEG delta but did not train the encoder (no EEG): weight absent, so it must be ignored
        ClientUpdate("u3", {EEG: f32(0.0, 0.0), BACKBONE: p3}, {"backbone": 20}),
    ]
    return ups, {"a": a, "b": b, "p1": p1, "p2": p2, "p3": p3}


def test_modulewise_average_only_over_trainers() -> None:
    ups, v = _three_clients()
    delta, totals = modulewise_average(ups)
    np.testing.assert_allclose(delta[EEG], (10 * v["a"] + 30 * v["b"]) / 40, rtol=1e-6)
    np.testing.assert_allclose(delta[BACKBONE], (10 * v["p1"] + 30 * v["p2"] + 20 * v["p3"]) / 60, rtol=1e-6)
    assert DEPTH not in delta  # nobody trained the depth encoder: the server keeps it
    assert totals == {"backbone": 60.0, "encoder/eeg": 40.0}
    assert all(x.dtype == np.float32 for x in delta.values())


def test_fedavg_dilutes_the_eeg_encoder() -> None:
    ups, v = _three_clients()
    plain = fedavg_deltas(ups, n=[10, 30, 20])
    np.testing.assert_allclose(plain[EEG], (10 * v["a"] + 30 * v["b"] + 20 * 0) / 60, rtol=1e-6)
    np.testing.assert_allclose(plain[BACKBONE], (10 * v["p1"] + 30 * v["p2"] + 20 * v["p3"]) / 60, rtol=1e-6)
    # a client that does not send the parameter at all counts as a zero delta too
    ups[2] = ClientUpdate("u3", {BACKBONE: v["p3"]}, {"backbone": 20})
    np.testing.assert_allclose(fedavg_deltas(ups, n=[10, 30, 20])[EEG], (10 * v["a"] + 30 * v["b"]) / 60, rtol=1e-6)
    # default weight = sum of the client's group weights: 20, 60, 20
    np.testing.assert_allclose(fedavg_deltas(ups)[EEG], (20 * v["a"] + 60 * v["b"]) / 100, rtol=1e-6)


def test_modulewise_average_edge_cases() -> None:
    assert modulewise_average([]) == ({}, {})
    bad = [
        ClientUpdate("u1", {EEG: f32(1, 2)}, {"encoder/eeg": 1}),
        ClientUpdate("u2", {EEG: f32(1, 2, 3)}, {"encoder/eeg": 1}),
    ]
    with pytest.raises(ValidationError, match=r"client 1 \(u2\) parameter 'encoders.eeg"):
        modulewise_average(bad)
    with pytest.raises(ValidationError, match="u1"):
        modulewise_average([ClientUpdate("u1", {EEG: f32(1)}, {"encoder/eeg": -1})])
    # a custom grouping function
    delta, totals = modulewise_average([ClientUpdate("u1", {"x": f32(2)}, {"all": 3})], group_of=lambda _: "all")
    assert totals == {"all": 3.0} and delta["x"][0] == 2


# --- server optimizers ---------------------------------------------------------------------------------------------


def test_server_fedavg() -> None:
    opt = ServerOptimizer("fedavg", lr=0.5)
    params = {"a": f32(1, 2), "b": f32(7)}
    new = opt.step(params, {"a": f32(2, -2)})
    np.testing.assert_array_equal(new["a"], f32(2, 1))
    assert new["b"] is params["b"]  # not in the delta: unchanged
    np.testing.assert_array_equal(params["a"], f32(1, 2))  # input not mutated


def test_server_fedavgm_by_hand() -> None:
    opt = ServerOptimizer("fedavgm", lr=0.5, betas=(0.9, 0.99))
    p1 = opt.step({"w": f32(1, 0), "frozen": f32(3)}, {"w": f32(0.2, -0.4)})
    p2 = opt.step(p1, {"w": f32(0.1, 0.4)})
    # m1 = d1; x1 = x0 + lr m1; m2 = 0.9 m1 + d2; x2 = x1 + lr m2
    np.testing.assert_allclose(p1["w"], [1.1, -0.2], rtol=1e-6)
    np.testing.assert_allclose(opt.m["w"], [0.28, 0.04], rtol=1e-6)
    np.testing.assert_allclose(p2["w"], [1.24, -0.18], rtol=1e-6)
    assert p2["frozen"][0] == 3 and "frozen" not in opt.m


@pytest.mark.parametrize("kind", ["fedadam", "fedyogi"])
def test_server_adaptive_two_steps_by_hand(kind: str) -> None:
    lr, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    x0 = [1.0, -1.0]
    d1 = [0.5, -0.2]
    d2 = [0.01, 0.3]  # entry 0: d2^2 < v1 (Yogi's v shrinks), entry 1: d2^2 > v1 (v grows)
    opt = ServerOptimizer(kind, lr=lr, betas=(b1, b2), tau=tau)
    p1 = opt.step({"w": f32(*x0), "frozen": f32(3)}, {"w": f32(*d1)})
    p2 = opt.step(p1, {"w": f32(*d2)})

    def v_next(v: float, d: float) -> float:
        if kind == "fedadam":
            return b2 * v + (1 - b2) * d * d
        return v - (1 - b2) * d * d * math.copysign(1.0, v - d * d)

    for i in range(2):
        m, v, x = 0.0, tau**2, x0[i]
        d1i = float(np.float32(d1[i]))
        m = b1 * m + (1 - b1) * d1i
        v = v_next(v, d1i)
        x1 = x + lr * m / (math.sqrt(v) + tau)
        d2i = float(np.float32(d2[i]))
        m = b1 * m + (1 - b1) * d2i
        v = v_next(v, d2i)
        x2 = x1 + lr * m / (math.sqrt(v) + tau)
        assert p1["w"][i] == pytest.approx(x1, rel=1e-6)
        assert p2["w"][i] == pytest.approx(x2, rel=1e-6)
        assert opt.v["w"][i] == pytest.approx(v, rel=1e-5)
    assert p2["frozen"][0] == 3 and "frozen" not in opt.m


def test_server_state_roundtrip_and_validation() -> None:
    delta = {"w": f32(0.3, -0.1)}
    a = ServerOptimizer.from_config(FedConfig(server_opt="fedyogi", server_lr=0.05))
    params = a.step({"w": f32(0, 0)}, delta)
    state = a.state_dict()
    assert set(state) == {"steps", "m/w", "v/w"} and all(isinstance(x, np.ndarray) for x in state.values())
    b = ServerOptimizer("fedyogi", lr=0.05)
    b.load_state_dict(state)
    assert b.steps == 1
    np.testing.assert_array_equal(a.step(params, delta)["w"], b.step(params, delta)["w"])
    with pytest.raises(ValidationError, match="lacks"):
        b.step(params, {"nope": f32(1)})
    with pytest.raises(ValidationError, match="shape"):
        b.step(params, {"w": f32(1)})
    with pytest.raises(ValidationError, match="unexpected key"):
        b.load_state_dict({"x/w": f32(1)})
    with pytest.raises(ValidationError, match="kind"):
        ServerOptimizer("sgd")


# --- compression ---------------------------------------------------------------------------------------------------


def test_compress_none_and_payload_bytes() -> None:
    d = {"a": np.ones((2, 3), np.float32), "b": f32(1)}
    c = compress(d, "none")
    assert c.nbytes == 4 * 7 == payload_bytes(d) and c.rel_error == 0
    np.testing.assert_array_equal(c.delta["a"], d["a"])
    assert payload_bytes({"h": np.zeros((2, 3), np.float16)}) == 24


def test_compress_int8_by_hand() -> None:
    d = {"a": f32(1.0, -0.5, 0.25, 0.0), "b": np.zeros(3, np.float32)}
    c = compress(d, "int8")
    assert c.nbytes == (4 + 4) + (3 + 4)  # 1 byte per entry + a float32 scale per tensor
    scale = np.float32(1.0 / 127)
    q = np.array([127, -64, 32, 0], np.float32)  # round(127 * d), -63.5 ties to even
    np.testing.assert_array_equal(c.delta["a"], q * scale)
    np.testing.assert_array_equal(c.delta["b"], np.zeros(3, np.float32))
    err = np.linalg.norm(d["a"].astype(np.float64) - c.delta["a"]) / np.linalg.norm(d["a"].astype(np.float64))
    assert c.rel_error == pytest.approx(err) and 0 < c.rel_error < 0.01
    assert compress({"z": np.zeros(4, np.float32)}, "int8").rel_error == 0


@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=2, max_side=8), elements=finite32))
def test_int8_error_is_at_most_half_a_step(x: np.ndarray) -> None:
    c = compress({"x": x}, "int8")
    step = np.float32(np.max(np.abs(x)) / 127)
    assert np.all(np.abs(c.delta["x"].astype(np.float64) - x) <= 0.5 * step * (1 + 1e-5) + 1e-30)


def test_compress_topk_by_hand() -> None:
    a = f32(0.1, -5.0, 0.3, 2.0, -0.2, 0.05, 1.0, -0.4, 0.0, 0.6)
    d = {"a": a, "b": f32(1.0, -3.0, 2.0)}
    c = compress(d, "topk", topk_frac=0.2)  # k = 2 of 10, ceil(0.6) = 1 of 3
    assert c.nbytes == 8 * (2 + 1)  # int32 index + float32 value per kept entry
    np.testing.assert_array_equal(c.delta["a"], f32(0, -5.0, 0, 2.0, 0, 0, 0, 0, 0, 0))
    np.testing.assert_array_equal(c.delta["b"], f32(0, -3.0, 0))
    kept = 25 + 4 + 9
    total = float(np.sum(a.astype(np.float64) ** 2)) + 14
    assert c.rel_error == pytest.approx(math.sqrt((total - kept) / total))


@given(
    x=hnp.arrays(np.float32, st.integers(1, 40), elements=finite32),
    frac=st.floats(0.01, 1.0),
)
def test_topk_keeps_exactly_the_k_largest(x: np.ndarray, frac: float) -> None:
    c = compress({"x": x}, "topk", topk_frac=frac)
    k = min(x.size, max(1, math.ceil(frac * x.size)))
    assert c.nbytes == 8 * k
    kept = c.delta["x"] != 0
    # every nonzero entry beats a zero, so exactly k are kept unless fewer than k are nonzero
    assert kept.sum() == min(k, np.count_nonzero(x))
    np.testing.assert_array_equal(c.delta["x"][kept], x[kept])
    if kept.any() and not kept.all():
        assert np.min(np.abs(x[kept])) >= np.max(np.abs(x[~kept]))


def test_compress_rejects_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="method"):
        compress({}, "fp16")
    with pytest.raises(ValidationError, match="topk_frac"):
        compress({}, "topk", topk_frac=0)


def test_error_feedback_resends_what_was_dropped() -> None:
    ef = ErrorFeedback()
    c1 = ef.compress("u1", {"x": f32(3.0, 1.0)}, "topk", topk_frac=0.5)
    np.testing.assert_array_equal(c1.delta["x"], f32(3.0, 0.0))
    np.testing.assert_array_equal(ef.residuals["u1"]["x"], f32(0.0, 1.0))
    c2 = ef.compress("u1", {"x": f32(0.0, 0.5)}, "topk", topk_frac=0.5)
    np.testing.assert_array_equal(c2.delta["x"], f32(0.0, 1.5))
    np.testing.assert_array_equal(ef.residuals["u1"]["x"], f32(0.0, 0.0))
    assert "u2" not in ef.residuals


# --- topologies ------------------------------------------------------------------------------------------------


def test_ring_lattice_by_hand() -> None:
    assert ring_lattice(1, 4).tolist() == [[False]]
    a = ring_lattice(6, 2)
    assert a.sum(axis=1).tolist() == [2] * 6 and a[0, 1] and a[0, 5] and not a[0, 2]
    assert ring_lattice(6, 3).sum(axis=1).tolist() == [3] * 6 and ring_lattice(6, 3)[0, 3]
    assert ring_lattice(5, 10).sum() == 5 * 4  # clipped to n - 1: complete graph
    assert ring_lattice(4, 0).sum() == 0
    with pytest.raises(ValidationError, match="n must"):
        ring_lattice(0, 2)


@given(n=st.integers(1, 20), degree=st.integers(0, 25))
def test_ring_lattice_properties(n: int, degree: int) -> None:
    a = ring_lattice(n, degree)
    assert a.shape == (n, n) and a.dtype == bool
    assert np.array_equal(a, a.T) and not np.any(np.diag(a))
    d = min(degree, n - 1)
    assert set(a.sum(axis=1).tolist()) <= {d, d - 1}
    if degree >= n - 1:
        assert a.sum() == n * (n - 1)
    w = metropolis_weights(a)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert np.array_equal(w, w.T) and np.all(w >= 0)


def test_metropolis_weights_by_hand() -> None:
    path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])  # degrees 1, 2, 1
    w = metropolis_weights(path)
    expected = np.array([[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(w, expected)
    with pytest.raises(ValidationError, match="symmetric"):
        metropolis_weights(np.array([[0, 1], [0, 0]]))
    with pytest.raises(ValidationError, match="self loops"):
        metropolis_weights(np.eye(2))


def test_gossip_converges_to_the_mean() -> None:
    rng = np.random.default_rng(0)
    nodes = [
        {"w": rng.normal(size=(2, 3)).astype(np.float32), "b": rng.normal(size=1).astype(np.float32)} for _ in range(8)
    ]
    mean = {k: np.mean([p[k].astype(np.float64) for p in nodes], axis=0) for k in nodes[0]}
    w = metropolis_weights(ring_lattice(8, 2))
    out = gossip(nodes, w, 300)
    for p in out:
        for k in mean:
            np.testing.assert_allclose(p[k], mean[k], atol=1e-5)
            assert p[k].dtype == np.float32 and p[k].shape == nodes[0][k].shape
    one = gossip(nodes, w, 1)  # one step is x <- W x
    np.testing.assert_allclose(one[0]["b"], sum(w[0, j] * nodes[j]["b"] for j in range(8)), rtol=1e-6)
    np.testing.assert_array_equal(gossip(nodes, w, 0)[3]["w"], nodes[3]["w"])
    with pytest.raises(ValidationError, match="W has shape"):
        gossip(nodes, np.eye(3), 1)


@given(
    data=st.data(),
    n=st.integers(1, 10),
    degree=st.integers(0, 6),
    steps=st.integers(0, 5),
)
def test_gossip_preserves_the_mean(data: st.DataObject, n: int, degree: int, steps: int) -> None:
    nodes = [{"p": data.draw(hnp.arrays(np.float32, (3,), elements=st.floats(-100, 100, width=32)))} for _ in range(n)]
    out = gossip(nodes, metropolis_weights(ring_lattice(n, degree)), steps)
    before = np.mean([p["p"].astype(np.float64) for p in nodes], axis=0)
    after = np.mean([p["p"].astype(np.float64) for p in out], axis=0)
    np.testing.assert_allclose(after, before, atol=1e-4)


def test_clusters_by_hand() -> None:
    assert clusters(5, 2) == [[0, 1, 2], [3, 4]]
    assert clusters(2, 4) == [[0], [1]]
    assert clusters(0, 3) == []
    assert clusters(10, 3, rng_seed=1) == clusters(10, 3, rng_seed=1)
    with pytest.raises(ValidationError, match="k must"):
        clusters(3, 0)


@given(n=st.integers(0, 60), k=st.integers(1, 12), seed=st.none() | st.integers(0, 2**32 - 1))
def test_clusters_partition(n: int, k: int, seed: int | None) -> None:
    parts = clusters(n, k, seed)
    assert sorted(i for p in parts for i in p) == list(range(n))
    assert len(parts) == min(n, k) and all(p for p in parts)
    sizes = [len(p) for p in parts]
    assert not sizes or max(sizes) - min(sizes) <= 1
