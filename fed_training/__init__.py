"""Multi-modal multi-task federated training on per-user store partitions.

The configuration (:mod:`~xrdata.fed_training.config`) imports nothing heavy; the rest needs the ``train``
extra (torch) and is imported on first use, so ``import xrdata.fed_training`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from xrdata.fed_training.config import (
    DataConfig,
    FedConfig,
    ModelConfig,
    TrainConfig,
    config_from_preset,
    load_config,
)

_LAZY = {
    "M3T": "model", "ClientData": "data", "load_client": "data", "local_train": "local",
    "run_federated": "engine", "train": "train", "evaluate_run": "evaluate",
}

__all__ = ["DataConfig", "FedConfig", "ModelConfig", "TrainConfig", "config_from_preset", "load_config", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"xrdata.fed_training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'xrdata.fed_training' has no attribute {name!r}")
