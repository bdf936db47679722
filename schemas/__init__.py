"""Declarative modality schemas: one versioned JSON file per modality in this folder.

``load(modality)`` returns the parsed schema; :mod:`xrdata.validation` checks streams against it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

#: Stream modalities, in the order reports list them. ``events`` describes the events table of a recording
#: and ``other`` holds source streams that map to no modality (kept, never used for training).
STREAM_MODALITIES: tuple[str, ...] = ("gaze", "hand", "audio", "depth", "motion", "eeg", "other")
MODALITIES: tuple[str, ...] = (*STREAM_MODALITIES, "events")


@cache
def load(modality: str) -> dict[str, Any]:
    """Return the schema of ``modality`` as a dict (cached; do not mutate it)."""
    if modality not in MODALITIES:
        raise KeyError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
    text = resources.files(__name__).joinpath(f"{modality}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def version(modality: str) -> str:
    """The schema version string of ``modality``, e.g. ``"1.0.0"``."""
    return str(load(modality)["version"])
