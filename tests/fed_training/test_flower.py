"""The trainer under Flower: wire format, and one small simulation checked against the engine's functions.

The simulation (3 hand-made clients, one without EEG, 3 rounds, int8 uplink, AdamW state kept on the nodes)
runs once per module (~30 s on 2 busy cores, most of it Ray starting its actors) and is compared with
modulewise_average + ServerOptimizer on the updates the server received, and with run_federated.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("flwr", reason="Flower is not installed (pip install 'flwr[simulation]')")

from fedtoy import CLIENTS, TASKS, model  # noqa: E402  (tests/fedtoy.py)
from flwr.app import RecordDict  # noqa: E402

from xrdata.errors import ValidationError  # noqa: E402
from xrdata.fed_training.aggregate import ClientUpdate, ServerOptimizer, compress, modulewise_average  # noqa: E402
from xrdata.fed_training.config import (  # noqa: E402
    DataConfig,
    FedConfig,
    ModelConfig,
    TrainConfig,
    group_of,
)
from xrdata.fed_training.engine import run_federated  # noqa: E402
from xrdata.fed_training.flower import (  # noqa: E402
    Setup,
    _load_opt_state,
    _save_opt_state,
    decode_delta,
    encode_delta,
    params_to_record,
    record_to_params,
    run_flower,
)
from xrdata.fed_training.local import get_params, local_train  # noqa: E402


def config(**fed: Any) -> TrainConfig:
    base = FedConfig(rounds=3, clients_per_round=3, availability=1.0, local_steps=3, batch_size=8, eval_every=1,
                     lr=5e-3, compression="int8", optimizer_state="keep", tail_rounds=2, calibrate_heads=True,
                     calibration_steps=20)
    return TrainConfig(data=DataConfig(modalities=("gaze", "eeg")),
                       model=ModelConfig(d_model=16, n_layers=1, n_heads=2, dropout=0.1),
                       fed=dataclasses.replace(base, **fed))


def pooled_loss(params: dict[str, np.ndarray], cfg: TrainConfig) -> float:
    """Mean loss of ``params`` over every client's windows (lr 0: nothing moves)."""
    m = model(cfg)
    return float(np.mean([local_train(m, params, c, TASKS, steps=1, batch_size=len(c), lr=0.0, seed=0).loss
                          for c in CLIENTS.values()]))


# ---------------------------------------------------------------------------------------------------------------
# wire format (no simulation)


@given(st.sampled_from(["none", "int8", "topk"]), st.integers(0, 2**32 - 1),
       st.lists(st.tuples(st.integers(1, 6), st.integers(1, 5)), min_size=1, max_size=4))
def test_encoded_delta_decodes_to_what_compress_reconstructs(method: str, seed: int,
                                                             shapes: list[tuple[int, int]]) -> None:
    rng = np.random.default_rng(seed)
    delta = {f"p{i}": (rng.normal(0, 1, s) * rng.choice([0.0, 1e-4, 3.0])).astype(np.float32)
             for i, s in enumerate(shapes)}
    records, packed = encode_delta(delta, method, topk_frac=0.3)
    decoded = decode_delta(RecordDict(records), {k: v.shape for k, v in delta.items()})
    expected = compress(delta, method, topk_frac=0.3).delta  # type: ignore[arg-type]
    assert decoded.keys() == expected.keys()
    for k in expected:
        assert decoded[k].dtype == np.float32 and np.array_equal(decoded[k], expected[k])
    assert packed.nbytes == compress(delta, method, topk_frac=0.3).nbytes  # type: ignore[arg-type]
    wire = {"none": np.float32, "int8": np.int8, "topk": np.float32}[method]
    assert all(a.numpy().dtype == wire for a in records["delta"].values())


def test_params_and_setup_round_trip() -> None:
    cfg = config()
    m = model(cfg)
    params = get_params(m)
    back = record_to_params(params_to_record(params))
    assert back.keys() == params.keys() and all(np.array_equal(back[k], params[k]) for k in params)
    setup = Setup(m.cfg, tuple(m.modalities), tuple(m.tasks), tuple(TASKS), cfg.data)
    assert Setup.from_json(setup.to_json()) == setup


def test_optimizer_state_survives_the_node_context() -> None:
    w = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    opt = torch.optim.AdamW([w], lr=0.1)
    w.sum().backward()
    opt.step()
    state = RecordDict()
    _save_opt_state(state, opt.state_dict())
    loaded = _load_opt_state(state)
    assert loaded is not None
    again = torch.optim.AdamW([torch.nn.Parameter(w.detach().clone())], lr=0.1)
    again.load_state_dict(loaded)
    for key, val in opt.state_dict()["state"][0].items():
        assert torch.equal(again.state_dict()["state"][0][key], val)
    assert _load_opt_state(RecordDict()) is None


def test_rejects_what_it_cannot_run() -> None:
    cfg = config(topology="decentralized")
    with pytest.raises(ValidationError, match="centralized"):
        run_flower(cfg, model(cfg), CLIENTS, TASKS)
    with pytest.raises(ValidationError, match="no training windows"):
        run_flower(config(), model(config()), {**CLIENTS, "u4": CLIENTS["u1"].subset([])}, TASKS)


def test_cli_train_has_the_flower_engine() -> None:
    from xrdata.cli import build_parser

    assert build_parser().parse_args(["train", "--store", "s", "--engine", "flower"]).engine == "flower"
    assert build_parser().parse_args(["train", "--store", "s"]).engine == "inprocess"


# ---------------------------------------------------------------------------------------------------------------
# one simulation


@pytest.fixture(scope="module")
def flower_run() -> dict[str, Any]:
    pytest.importorskip("ray", reason="Flower's simulation runtime needs Ray: pip install 'flwr[simulation]'")
    cfg = config()
    updates: dict[int, list[ClientUpdate]] = {}
    globals_: dict[int, dict[str, np.ndarray]] = {}

    def on_round(rnd: int, params: dict[str, np.ndarray]) -> dict[str, float]:
        globals_[rnd] = {k: v.copy() for k, v in params.items()}
        return {}

    start = get_params(model(cfg))
    res = run_flower(cfg, model(cfg), CLIENTS, TASKS, on_round=on_round,
                     on_updates=lambda rnd, ups: updates.setdefault(rnd, ups), num_cpus=2)
    return {"cfg": cfg, "res": res, "updates": updates, "globals": globals_, "start": start}


def test_round_one_is_modulewise_average_plus_server_optimizer(flower_run: dict[str, Any]) -> None:
    ups = flower_run["updates"][1]
    assert [u.client for u in ups] == ["u1", "u2", "u3"]
    assert "encoder/eeg" not in ups[1].weights  # u2 has no EEG: it neither trains nor sends the EEG encoder
    assert not any(group_of(k) == "encoder/eeg" for k in ups[1].delta)
    delta, totals = modulewise_average(ups)
    expected = ServerOptimizer.from_config(flower_run["cfg"].fed).step(flower_run["start"], delta)
    got = flower_run["globals"][1]
    assert got.keys() == expected.keys()
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k
    assert totals["encoder/eeg"] == ups[0].weights["encoder/eeg"] + ups[2].weights["encoder/eeg"]  # u1, u3 only


def test_same_run_as_the_in_process_engine(flower_run: dict[str, Any]) -> None:
    cfg, res = flower_run["cfg"], flower_run["res"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Ray actors (1 core each): same float reductions
    try:
        ref = run_federated(cfg, model(cfg), CLIENTS, TASKS)
    finally:
        torch.set_num_threads(threads)
    assert [h.participants for h in res.history] == [h.participants for h in ref.history]
    assert [h.local_steps for h in res.history] == [h.local_steps for h in ref.history]
    assert [h.bytes_up_by_group for h in res.history] == [h.bytes_up_by_group for h in ref.history]
    assert res.comm == ref.comm and res.summary()["bytes_up"] == ref.summary()["bytes_up"] > 0
    assert res.energy_j == pytest.approx(ref.energy_j)
    assert [h.loss for h in res.history] == pytest.approx([h.loss for h in ref.history], rel=1e-5)
    for k, v in ref.params.items():
        np.testing.assert_allclose(res.params[k], v, rtol=0, atol=1e-6, err_msg=k)


def test_reports_the_tail_average_with_calibrated_heads(flower_run: dict[str, Any]) -> None:
    globals_, res = flower_run["globals"], flower_run["res"]
    for k, v in res.params.items():
        tail = (globals_[2][k].astype(np.float64) + globals_[3][k]) / 2
        if group_of(k) == "head/gesture":
            assert not np.allclose(v, tail, rtol=1e-6), k  # retrained on the nodes' class statistics
        else:
            np.testing.assert_allclose(v, tail, rtol=1e-6, err_msg=k)
    assert res.calibration["clients"] == 3 and res.calibration["windows"]["gesture"]["0"] > 0


def test_it_learns(flower_run: dict[str, Any]) -> None:
    cfg, res = flower_run["cfg"], flower_run["res"]
    losses = [h.loss for h in res.history]
    assert losses[-1] < losses[0]
    assert pooled_loss(res.params, cfg) < pooled_loss(flower_run["start"], cfg)
