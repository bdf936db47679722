"""The in-process engine and local training: reproducibility, resume, module-wise aggregation, accounting."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fedtoy import CLIENTS, TASKS, model, same  # noqa: E402  (tests/fedtoy.py)

from xrdata.errors import ValidationError  # noqa: E402
from xrdata.fed_training.aggregate import payload_bytes  # noqa: E402
from xrdata.fed_training.config import DataConfig, FedConfig, ModelConfig, TrainConfig, group_of  # noqa: E402
from xrdata.fed_training.engine import run_federated  # noqa: E402
from xrdata.fed_training.local import (  # noqa: E402
    drop_modalities,
    get_params,
    group_weights,
    label_log_prior,
    local_train,
)


def config(**fed: object) -> TrainConfig:
    base = FedConfig(rounds=3, clients_per_round=2, availability=1.0, local_steps=3, batch_size=8, eval_every=0)
    return TrainConfig(data=DataConfig(modalities=("gaze", "eeg")),
                       model=ModelConfig(d_model=16, n_layers=1, n_heads=2, dropout=0.1),
                       fed=dataclasses.replace(base, **fed))


def test_bit_reproducible_for_a_seed() -> None:
    cfg = config()
    r1 = run_federated(cfg, model(cfg), CLIENTS, TASKS)
    r2 = run_federated(cfg, model(cfg), CLIENTS, TASKS)
    assert same(r1.params, r2.params)
    assert [h.participants for h in r1.history] == [h.participants for h in r2.history]
    other = run_federated(config(seed=1), model(cfg), CLIENTS, TASKS)
    assert not same(r1.params, other.params)


def test_reports_the_mean_of_the_last_rounds_global_models() -> None:
    seen: dict[int, dict[str, np.ndarray]] = {}

    def on_round(rnd: int, params: dict[str, np.ndarray]) -> dict[str, float]:
        seen[rnd] = {k: v.copy() for k, v in params.items()}
        return {}

    res = run_federated(config(rounds=4, tail_rounds=3, eval_every=1), model(config()), CLIENTS, TASKS,
                        on_round=on_round)
    assert not same(res.params, seen[4])
    for k, v in res.params.items():
        np.testing.assert_allclose(v, np.mean([seen[r][k] for r in (2, 3, 4)], axis=0, dtype=np.float64),
                                   rtol=1e-6, atol=1e-9, err_msg=k)
    plain = run_federated(config(rounds=4, tail_rounds=1), model(config()), CLIENTS, TASKS)
    assert same(plain.params, seen[4])


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    # the tail average spans the interruption: its running sum must come back from the checkpoint
    cfg = config(rounds=4, optimizer_state="keep", server_opt="fedadam", server_lr=0.01, tail_rounds=3)
    full = run_federated(cfg, model(cfg), CLIENTS, TASKS)
    short = dataclasses.replace(cfg, fed=dataclasses.replace(cfg.fed, rounds=2))
    run_federated(short, model(cfg), CLIENTS, TASKS, checkpoint_dir=tmp_path)
    with pytest.raises(ValidationError, match="different training config"):
        run_federated(cfg, model(cfg), CLIENTS, TASKS, checkpoint_dir=tmp_path, resume=True)
    ck = tmp_path / "b"
    run_federated(cfg, model(cfg), CLIENTS, TASKS, checkpoint_dir=ck)
    for p in sorted(ck.glob("round-*.safetensors"))[2:]:
        p.unlink()  # as if the run had been killed after round 2
    resumed = run_federated(cfg, model(cfg), CLIENTS, TASKS, checkpoint_dir=ck, resume=True)
    assert len(resumed.history) == 4
    assert same(full.params, resumed.params)


def test_client_without_eeg_leaves_the_eeg_encoder_alone() -> None:
    cfg = config(rounds=1, clients_per_round=1, weight_decay=0.5)
    m = model(cfg)
    start = get_params(m)
    res = run_federated(cfg, m, {"u2": CLIENTS["u2"]}, TASKS)
    eeg = [k for k in start if group_of(k) == "encoder/eeg"]
    gaze = [k for k in start if group_of(k) == "encoder/gaze"]
    assert eeg and gaze
    assert all(np.array_equal(start[k], res.params[k]) for k in eeg)
    assert any(not np.array_equal(start[k], res.params[k]) for k in gaze)
    # plain FedAvg without module-wise weighting still leaves it: the client never sends the untrained group
    res = run_federated(config(rounds=1, clients_per_round=1, weight_decay=0.5, modulewise=False), model(cfg),
                        {"u2": CLIENTS["u2"]}, TASKS)
    assert all(np.array_equal(start[k], res.params[k]) for k in eeg)


def test_group_weights_count_windows_with_the_modality_and_labels() -> None:
    d = CLIENTS["u1"]
    idx = np.arange(10)
    w = group_weights(d, idx, ["encoder/gaze", "encoder/eeg", "head/gesture", "head/qoe", "backbone"])
    assert w["encoder/gaze"] == 10 and w["encoder/eeg"] == 10 and w["backbone"] == 10
    assert w["head/gesture"] == (d.y["gesture"][:10] >= 0).sum()
    assert w["head/qoe"] == (~np.isnan(d.y["qoe"][:10])).sum()
    assert "encoder/eeg" not in group_weights(CLIENTS["u2"], idx, ["encoder/eeg"])


def test_label_log_prior_is_the_clients_class_shares() -> None:
    d = CLIENTS["u1"]
    y = d.y["gesture"][d.y["gesture"] >= 0]
    prior = label_log_prior(d, TASKS)
    assert set(prior) == {"gesture"}  # regression tasks have none
    np.testing.assert_allclose(prior["gesture"].exp().numpy(), np.bincount(y, minlength=2) / len(y), rtol=1e-6)
    one_class = dataclasses.replace(d, y={**d.y, "gesture": np.where(d.y["gesture"] == 1, -1, d.y["gesture"])})
    assert float(label_log_prior(one_class, TASKS)["gesture"][1]) < -9  # an unseen class: (almost) no gradient


def test_communication_is_counted_exactly() -> None:
    cfg = config(rounds=2)
    m = model(cfg)
    full = payload_bytes(get_params(m))
    res = run_federated(cfg, m, CLIENTS, TASKS)
    for h in res.history:
        assert h.bytes_down == full * len(h.participants)
        assert h.bytes_up == sum(h.bytes_up_by_group.values())  # uncompressed float32
    assert sum(c["down"] for c in res.comm.values()) == sum(h.bytes_down for h in res.history)
    q = run_federated(config(rounds=2, compression="int8"), model(cfg), CLIENTS, TASKS)
    for h in q.history:
        assert h.bytes_up < 0.3 * sum(h.bytes_up_by_group.values())
        assert 0 < h.compression_error < 0.05


def test_deadline_drops_stragglers() -> None:
    cfg = config(rounds=2, deadline_s=1e-9)
    m = model(cfg)
    start = get_params(m)
    res = run_federated(cfg, m, CLIENTS, TASKS)
    assert all(not h.participants and len(h.dropped) == 2 for h in res.history)
    assert same(start, res.params)
    assert all(v > 0 for v in res.energy_j.values() if v)  # the dropped clients still spent energy


def test_semi_with_one_cluster_matches_centralized_modulewise() -> None:
    # one round: later rounds train from parameters that differ in the last float bits, which AdamW amplifies
    cen = run_federated(config(rounds=1), model(config()), CLIENTS, TASKS)
    semi = run_federated(config(rounds=1, topology="semi", clusters=1), model(config()), CLIENTS, TASKS)
    for k in cen.params:
        np.testing.assert_allclose(semi.params[k], cen.params[k], rtol=1e-4, atol=1e-6)
    assert all(h.bytes_d2d > 0 for h in semi.history)
    assert sum(h.bytes_up for h in semi.history) < sum(h.bytes_up for h in cen.history)


def test_decentralized_gossip_runs_without_server() -> None:
    cfg = config(rounds=3, topology="decentralized", clients_per_round=3, graph_degree=2)
    res = run_federated(cfg, model(cfg), CLIENTS, TASKS)
    assert res.node_params is not None and len(res.node_params) == 3
    assert all(h.bytes_up == 0 and h.bytes_down == 0 and h.bytes_d2d > 0 for h in res.history)
    for k, v in res.params.items():
        np.testing.assert_allclose(v, np.mean([p[k] for p in res.node_params], axis=0), rtol=1e-5, atol=1e-6)


def test_dp_reports_epsilon_and_needs_centralized() -> None:
    res = run_federated(config(rounds=2, dp_clip=0.5, dp_noise=1.0), model(config()), CLIENTS, TASKS)
    assert res.epsilon is not None and res.epsilon > 0
    with pytest.raises(ValidationError, match="centralized"):
        run_federated(config(dp_clip=0.5, topology="semi"), model(config()), CLIENTS, TASKS)


def test_local_training_freezes_unselected_groups_and_prox_shrinks_the_step() -> None:
    cfg = config()
    m = model(cfg)
    start = get_params(m)
    res = local_train(m, start, CLIENTS["u1"], TASKS, steps=5, batch_size=8, lr=1e-2, seed=0,
                      train_groups=("head",))
    assert {group_of(k) for k in res.update.delta} == {"head/gesture", "head/qoe"}
    free = local_train(m, start, CLIENTS["u1"], TASKS, steps=5, batch_size=8, lr=1e-2, seed=0)
    prox = local_train(m, start, CLIENTS["u1"], TASKS, steps=5, batch_size=8, lr=1e-2, seed=0, prox_mu=100.0)

    def norm(d: dict[str, np.ndarray]) -> float:
        return float(np.sqrt(sum((v.astype(np.float64) ** 2).sum() for v in d.values())))

    assert norm(prox.update.delta) < norm(free.update.delta)
    assert free.steps == 5 and free.windows == 40


@pytest.mark.parametrize(("option", "value", "bad"), [("decorr", 1.0, -1.0), ("modality_drop", 0.3, 1.0)])
def test_local_option_changes_training_reproducibly_and_is_checked(option: str, value: float, bad: float) -> None:
    cfg = config()
    m = model(cfg)
    start = get_params(m)
    kw: dict[str, Any] = {"steps": 3, "batch_size": 8, "lr": 1e-2, "seed": 0}
    plain = local_train(m, start, CLIENTS["u1"], TASKS, **kw)
    on = local_train(m, start, CLIENTS["u1"], TASKS, **{option: value}, **kw)
    again = local_train(m, start, CLIENTS["u1"], TASKS, **{option: value}, **kw)
    assert same(on.update.delta, again.update.delta) and not same(on.update.delta, plain.update.delta)
    if option == "decorr":
        assert on.loss > plain.loss  # the batch loss includes the (positive) decorrelation term
    with pytest.raises(ValidationError, match=option):
        local_train(m, start, CLIENTS["u1"], TASKS, **{option: bad}, **kw)


def test_modality_drop_hides_whole_modalities_and_keeps_one() -> None:
    batch = CLIENTS["u1"].subset(np.arange(40))
    gaze, eeg = batch.x["gaze"].copy(), batch.x["eeg"].copy()
    drop_modalities(batch, 0.5, np.random.default_rng(0))
    for m, before in (("gaze", gaze), ("eeg", eeg)):
        hidden = ~batch.present[m].any(axis=1)
        # a window loses a modality whole (mask and input) or keeps it untouched
        assert (batch.present[m].all(axis=1) | hidden).all()
        assert (batch.x[m][hidden] == 0).all() and np.array_equal(batch.x[m][~hidden], before[~hidden])
        assert 5 < hidden.sum() < 35
    assert (batch.present["gaze"].any(axis=1) | batch.present["eeg"].any(axis=1)).all()
    # a client without EEG never loses its only modality, and the client's own arrays are left alone
    lone = CLIENTS["u2"].subset(np.arange(24))
    drop_modalities(lone, 0.9, np.random.default_rng(0))
    assert lone.present["gaze"].all() and CLIENTS["u1"].present["gaze"].all()


def test_federated_training_learns() -> None:
    cfg = config(rounds=8, local_steps=5, clients_per_round=3, lr=5e-3)
    m = model(cfg)
    before = local_train(m, get_params(m), CLIENTS["u1"], TASKS, steps=1, batch_size=40, lr=0.0, seed=0).loss
    res = run_federated(cfg, m, CLIENTS, TASKS)
    after = local_train(m, res.params, CLIENTS["u1"], TASKS, steps=1, batch_size=40, lr=0.0, seed=0).loss
    assert after < before
