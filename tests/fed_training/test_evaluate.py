"""Evaluation helpers checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from xrdata.fed_training.config import TaskSpec
from xrdata.fed_training.data import ClientData
from xrdata.fed_training.evaluate import (
    Predictions,
    client_log_prior,
    label_counts,
    macro_f1,
    missing_steps,
    task_metrics,
    with_prior,
)
from xrdata.fed_training.report import format_tables

TASKS = [TaskSpec("load", ("low", "medium", "high")), TaskSpec("qoe")]


def _client(load: list[int], qoe: list[float]) -> ClientData:
    n = len(load)
    return ClientData("u1", {}, {}, {"load": np.asarray(load, np.int64), "qoe": np.asarray(qoe, np.float32)},
                      np.array(["s1"] * n), np.arange(n, dtype=np.int64), np.array(["train"] * n))


def test_macro_f1_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 0 -> 0
    assert macro_f1(y, p, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(np.array([1, 1]), np.array([1, 1]), 3) == 1.0  # classes absent from both are not averaged


def test_client_log_prior_is_laplace_smoothed_and_skips_regression() -> None:
    prior = client_log_prior(_client([0, 0, 1, -1], [1.0, 2.0, np.nan, 3.0]), TASKS)
    assert set(prior) == {"load"}
    np.testing.assert_allclose(prior["load"], np.log([3 / 6, 2 / 6, 1 / 6]), rtol=1e-6)
    assert prior["load"].dtype == np.float32
    np.testing.assert_allclose(client_log_prior(_client([-1, -1], [1.0, 2.0]), TASKS)["load"], np.log([1 / 3] * 3),
                               rtol=1e-6)


def test_with_prior_moves_ties_toward_the_clients_classes() -> None:
    logits = np.array([[0.0, 0.1, 0.0], [2.0, 0.0, 0.0]], np.float32)
    pred = Predictions({"load": logits, "qoe": np.array([3.0, 4.0], np.float32)}, None)
    prior = client_log_prior(_client([2, 2, 2, 2, 0], [1.0] * 5), TASKS)  # frequencies 2/8, 1/8, 5/8
    out = with_prior(pred, prior)
    assert out.outputs["load"].argmax(axis=1).tolist() == [2, 0]  # a near tie goes to the client's class
    np.testing.assert_array_equal(out.outputs["qoe"], pred.outputs["qoe"])
    np.testing.assert_array_equal(pred.outputs["load"], logits)  # the input is not modified
    data = _client([2, 0], [1.0, 2.0])
    assert task_metrics(out, data, TASKS)["load"]["accuracy"] == 1.0
    assert task_metrics(pred, data, TASKS)["load"]["accuracy"] == 0.5


def test_label_counts_per_class_over_clients() -> None:
    parts = {"u1": _client([0, 0, -1, 2], [1.0] * 4), "u2": _client([2, -1], [np.nan] * 2)}
    assert label_counts(parts, TASKS) == {"load": {"low": 2, "medium": 0, "high": 2}}
    assert label_counts({}, TASKS) == {"load": {"low": 0, "medium": 0, "high": 0}}


def test_report_flags_test_classes_without_training_windows() -> None:
    labels = {"train": {"load": {"low": 5, "medium": 3, "high": 0}},
              "future": {"load": {"low": 1, "medium": 1, "high": 0}},
              "unseen": {"load": {"low": 0, "medium": 2, "high": 4}}}
    metric = {"load": {"n": 2, "accuracy": 0.5, "macro_f1": 0.5}}
    results = {"tasks": ["load"], "labels": labels,
               "methods": {"federated": {"future": metric, "unseen": metric}, "local": {"unseen": metric}}}
    tables = {title.split(" (")[0]: (header, rows) for title, header, rows in format_tables(results)}
    future, unseen = tables["Task metrics on future weeks of training users"], tables["Task metrics on unseen users"]
    assert future[0] == ["task", "federated"] and unseen[0] == ["task", "federated", "local"]  # the run's methods
    assert future[1][0] == ["load", "0.500"] and unseen[1][0] == ["load", "0.500 *", "0.500"]  # only unseen has "high"
    # (local-only trains on each unseen user's own adaptation windows: no flag)
    coverage = {(r[0], r[1]): r[2:] for r in tables["Labelled windows per class"][1]}
    assert coverage[("load", "high")] == ["0", "0", "4", "in unseen, never in training"]
    assert coverage[("load", "low")] == ["5", "1", "0", ""]


def test_missing_steps_counts_only_devices_with_the_modality() -> None:
    def client(user: str, gaze: list[list[bool]], eeg: list[list[bool]]) -> ClientData:
        n = len(gaze)
        return ClientData(user, {}, {"gaze": np.array(gaze), "eeg": np.array(eeg)}, {},
                          np.array(["s1"] * n), np.arange(n, dtype=np.int64), np.array(["future"] * n))

    parts = {"a": client("a", [[True, False], [True, True]], [[False, False], [True, True]]),
             "b": client("b", [[False, False]], [[False, False]])}  # b's glasses have gaze, no EEG
    out = missing_steps(parts, {"a": "headset", "b": "glasses"}, {"headset": ["eeg", "gaze"], "glasses": ["gaze"]})
    assert out == {"eeg": pytest.approx(2 / 4), "gaze": pytest.approx(3 / 6)}
    assert missing_steps({}, {}, {}) == {}


def test_personalize_tunes_each_user_from_the_same_start_and_restores_the_model() -> None:
    from fedtoy import CLIENTS, model, same
    from fedtoy import TASKS as TOY_TASKS

    from xrdata.fed_training.config import FedConfig, ModelConfig, TrainConfig
    from xrdata.fed_training.evaluate import _personalize, predict
    from xrdata.fed_training.local import get_params

    cfg = TrainConfig(model=ModelConfig(d_model=16, n_layers=1, n_heads=2, lora_rank=2))
    m = model(cfg)
    start = get_params(m)
    fed = FedConfig(personalize_steps=5, batch_size=8, lr=1e-2)
    empty = CLIENTS["u2"].subset(np.arange(0))
    users = {"u1": (CLIENTS["u1"], CLIENTS["u3"]), "u3": (CLIENTS["u3"], CLIENTS["u1"]), "u2": (empty, CLIENTS["u2"])}
    preds = _personalize(m, users, TOY_TASKS, fed, ("peft", "head"), seed=0, device="cpu")
    assert set(preds) == {"u1", "u3"}  # u2 has no windows of its own to tune on
    assert same(get_params(m), start)
    base = predict(m, CLIENTS["u3"]).outputs["gesture"]
    assert not np.allclose(preds["u1"].outputs["gesture"], base)  # tuned on u1 before predicting u3
    # each user starts from the same model: u3 alone gives what it gives beside the others (seed: 0 + its rank)
    alone = _personalize(m, {"u3": users["u3"]}, TOY_TASKS, fed, ("peft", "head"), seed=2, device="cpu")
    np.testing.assert_array_equal(alone["u3"].outputs["gesture"], preds["u3"].outputs["gesture"])
