"""Head calibration (CCVR): the clients' class statistics, their exact merge, and heads retrained on them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fedtoy import CLIENTS, TASKS, model, same  # noqa: E402  (tests/fedtoy.py)

from xrdata.errors import ValidationError  # noqa: E402
from xrdata.fed_training.calibrate import (  # noqa: E402
    calibrate_heads,
    check_calibration,
    class_stats,
    merge_stats,
    stats_bytes,
)
from xrdata.fed_training.config import DataConfig, FedConfig, ModelConfig, TrainConfig, group_of  # noqa: E402
from xrdata.fed_training.data import concat, to_tensors  # noqa: E402
from xrdata.fed_training.engine import run_federated  # noqa: E402
from xrdata.fed_training.local import get_params, set_params  # noqa: E402

CFG = TrainConfig(data=DataConfig(modalities=("gaze", "eeg")), model=ModelConfig(d_model=16, n_layers=1, n_heads=2),
                  fed=FedConfig(rounds=2, clients_per_round=3, availability=1.0, local_steps=3, batch_size=8,
                                eval_every=0))


def features(params: dict[str, np.ndarray], data) -> np.ndarray:  # type: ignore[no-untyped-def]
    m = model(CFG)
    set_params(m, params)
    m.eval()
    x, present, _ = to_tensors(data)
    with torch.no_grad():
        return m.features(x, present).double().numpy()


def test_class_stats_are_the_sufficient_statistics_and_merge_exactly() -> None:
    params = get_params(model(CFG))
    parts = [class_stats(model(CFG), params, c, TASKS, batch_size=7) for c in CLIENTS.values()]
    merged = merge_stats(parts)
    pooled = concat(list(CLIENTS.values()))
    f = features(params, pooled)
    y = pooled.y["gesture"]
    assert set(merged) == {"gesture"}  # the regression task qoe has no classes
    for c in (0, 1):
        n, s1, s2 = merged["gesture"][c]
        fc = f[y == c]
        assert n == len(fc)
        np.testing.assert_allclose(s1, fc.sum(axis=0), rtol=1e-5, atol=1e-5)  # float32 features, other batch sizes
        np.testing.assert_allclose(s2, fc.T @ fc, rtol=1e-5, atol=1e-5)  # float32 features, other batch sizes
    d = f.shape[1]
    assert stats_bytes(parts[0]) == 2 * 8 * (1 + d + d * d)


def test_calibration_unbiases_a_head_and_changes_nothing_else() -> None:
    params = get_params(model(CFG))
    trained = run_federated(dataclasses.replace(CFG, fed=dataclasses.replace(CFG.fed, rounds=6)), model(CFG),
                            CLIENTS, TASKS).params
    biased = dict(trained)
    biased["heads.gesture.out.bias"] = trained["heads.gesture.out.bias"] + np.array([6.0, -6.0], np.float32)
    pooled = concat(list(CLIENTS.values()))
    y = pooled.y["gesture"]

    def balanced_accuracy(p: dict[str, np.ndarray]) -> float:
        m = model(CFG)
        set_params(m, p)
        m.eval()
        x, present, _ = to_tensors(pooled)
        with torch.no_grad():
            pred = m(x, present).outputs["gesture"].argmax(-1).numpy()
        return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1)]))

    stats = merge_stats(class_stats(model(CFG), biased, c, TASKS) for c in CLIENTS.values())
    fixed = calibrate_heads(model(CFG), biased, stats, TASKS, samples=200, steps=150, lr=1e-2, seed=3)
    assert balanced_accuracy(biased) == 0.5  # everything predicted as class 0
    assert balanced_accuracy(fixed) > 0.8
    changed = {k for k in params if not np.array_equal(fixed[k], biased[k])}
    assert changed and all(group_of(k) == "head/gesture" for k in changed)
    assert same(fixed, calibrate_heads(model(CFG), biased, stats, TASKS, samples=200, steps=150, lr=1e-2, seed=3))
    assert same(calibrate_heads(model(CFG), biased, stats, TASKS, steps=0), biased)


def test_the_engine_runs_the_calibration_round_and_counts_its_bytes() -> None:
    plain = run_federated(CFG, model(CFG), CLIENTS, TASKS)
    cfg = dataclasses.replace(CFG, fed=dataclasses.replace(CFG.fed, calibrate_heads=True, calibration_steps=20))
    res = run_federated(cfg, model(CFG), CLIENTS, TASKS)
    assert {k for k in plain.params if not np.array_equal(plain.params[k], res.params[k])} <= {
        k for k in plain.params if group_of(k) == "head/gesture"}
    assert res.calibration is not None and res.calibration["clients"] == 3
    uploads = [class_stats(model(CFG), plain.params, CLIENTS[u], TASKS) for u in sorted(CLIENTS)]
    assert res.calibration["bytes_up"] == sum(stats_bytes(s) for s in uploads)
    for u, s in zip(sorted(CLIENTS), uploads, strict=True):
        assert res.comm[u]["up"] - plain.comm[u]["up"] == stats_bytes(s)
        assert res.comm[u]["down"] > plain.comm[u]["down"]
    assert res.summary()["calibration"] == res.calibration


def test_refused_with_client_level_dp() -> None:
    with pytest.raises(ValidationError, match="dp_clip"):
        check_calibration(FedConfig(calibrate_heads=True, dp_clip=1.0))
    with pytest.raises(ValidationError, match="samples"):
        calibrate_heads(model(CFG), get_params(model(CFG)), {}, TASKS, samples=0)
