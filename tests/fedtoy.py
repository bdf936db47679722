"""Hand-made federated clients shared by the engine and Flower tests (importable: ``pythonpath`` in pyproject)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xrdata.fed_training.config import ModalitySpec, TaskSpec, TrainConfig
from xrdata.fed_training.data import ClientData

if TYPE_CHECKING:
    from xrdata.fed_training.model import M3T

MODS = [ModalitySpec("gaze", "series", 8, (3,), 4), ModalitySpec("eeg", "series", 8, (2,), 4)]
TASKS = [TaskSpec("gesture", ("a", "b")), TaskSpec("qoe")]


def client(user: str, n: int, seed: int, eeg: bool = True) -> ClientData:
    """``n`` windows whose gaze (and EEG) mean encodes the gesture class, ~20 % unlabelled, QoE on half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    gaze = rng.normal(0, 1, (n, 8, 3)).astype(np.float32) + y[:, None, None] * 1.5
    eeg_x = rng.normal(0, 1, (n, 8, 2)).astype(np.float32) - y[:, None, None]
    if not eeg:
        eeg_x[:] = 0
    labels = np.where(rng.random(n) < 0.8, y, -1).astype(np.int64)
    qoe = np.where(rng.random(n) < 0.5, 3.0 + y, np.nan).astype(np.float32)
    return ClientData(
        user, {"gaze": gaze, "eeg": eeg_x}, {"gaze": np.ones((n, 8), bool), "eeg": np.full((n, 8), eeg)},
        {"gesture": labels, "qoe": qoe}, np.array(["s001"] * n), np.arange(n, dtype=np.int64) * 2_000_000_000,
        np.array(["train"] * n),
    )


#: Three clients; u2 has no EEG.
CLIENTS = {"u1": client("u1", 40, 1), "u2": client("u2", 24, 2, eeg=False), "u3": client("u3", 32, 3)}


def model(cfg: TrainConfig) -> M3T:
    """The M3T of ``cfg`` over MODS/TASKS, initialised from ``cfg.fed.seed``."""
    import torch

    from xrdata.fed_training.model import M3T

    torch.manual_seed(cfg.fed.seed)
    return M3T(cfg.model, MODS, TASKS)


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Bit-identical parameter dicts."""
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
