"""Ground-truth side tables of a store (written by :mod:`xrdata.synth`, readable by everyone).

A synthetic store keeps per-user Parquet tables beside the data, hive-partitioned like the catalog:
``<store>/ground_truth/<table>/user=<id>/part-0.parquet`` (format: docs/FORMAT.md). This reader lives in
the core so consumers (the trainer's splits, reports) need not import the synthesizer; the synthesizer's
``read_ground_truth`` adds its column schemas on top.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import polars as pl

from xrdata._fs import Backend
from xrdata.store import Store

__all__ = ["GROUND_TRUTH_DIR", "has_ground_truth", "read_config", "read_table"]

GROUND_TRUTH_DIR = "ground_truth"


def _backend(store: Store | str | os.PathLike[str]) -> Backend:
    url = getattr(store, "url", None)
    return Backend(str(url) if url is not None else os.fspath(store))  # type: ignore[arg-type]


def read_config(store: Store | str | os.PathLike[str]) -> dict[str, Any] | None:
    """The generator's ``ground_truth/config.json`` (config, seed, table columns, and ``labels``: task ->
    class names in the generator's order), or None for a store without ground truth."""
    doc = _backend(store).read_json(f"{GROUND_TRUTH_DIR}/config.json")
    return doc if isinstance(doc, dict) else None


def has_ground_truth(store: Store | str | os.PathLike[str], table: str) -> bool:
    """True if the store has the ground-truth ``table`` for at least one user."""
    return any(p.startswith("user=") for p in _backend(store).listdir(f"{GROUND_TRUTH_DIR}/{table}"))


def read_table(store: Store | str | os.PathLike[str], table: str,
               users: Sequence[str] | None = None) -> pl.DataFrame | None:
    """The ground-truth ``table`` of ``users`` (default all; only their partitions are read), with a ``user``
    column first; None when the store has no such table."""
    b = _backend(store)
    present = sorted(p[5:] for p in b.listdir(f"{GROUND_TRUTH_DIR}/{table}") if p.startswith("user="))
    if not present:
        return None
    want = present if users is None else [u for u in sorted(users) if u in present]
    frames = []
    for u in want:
        raw = b.read_bytes(f"{GROUND_TRUTH_DIR}/{table}/user={u}/part-0.parquet")
        if raw is not None:
            df = pl.read_parquet(io.BytesIO(raw))
            frames.append(df.select(pl.lit(u, dtype=pl.String()).alias("user"), pl.all()))
    if not frames:
        return pl.DataFrame(schema={"user": pl.String()})
    return pl.concat(frames, how="diagonal_relaxed")
