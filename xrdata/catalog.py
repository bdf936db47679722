"""The catalog: one row per (user, session, stream), hive-partitioned Parquet by user.

Layout: ``<store>/catalog/user=<user_id>/part-0.parquet``. The hive key ``user`` is always read as a string
(``hive_schema``), so ids such as ``"007"`` stay strings. Each partition also records, in its Parquet
key-value metadata, the sessions it covers, so a store can tell cheaply whether a partition is stale.
"""

from __future__ import annotations

import io
import json
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

#: Column -> dtype of the catalog (``user`` comes from the hive partition and is always a string).
CATALOG_SCHEMA: dict[str, pl.DataType] = {
    "user": pl.String(),
    "session": pl.String(),
    "stream": pl.String(),
    "modality": pl.String(),
    "n_samples": pl.Int64(),
    "start_ns": pl.Int64(),  # first sample time
    "stop_ns": pl.Int64(),  # last sample time + 1 ns: [start_ns, stop_ns) holds every sample
    "duration_s": pl.Float64(),
    "nominal_rate_hz": pl.Float64(),  # null for irregular streams
    "effective_rate_hz": pl.Float64(),  # (n - 1) / (last - first); null below 2 samples
    "missing_frac": pl.Float64(),  # 1 - valid samples / expected samples (see stream_row)
    "dtype": pl.String(),
    "sample_shape": pl.List(pl.Int64()),
    "channels": pl.List(pl.String()),
    "device": pl.String(),
    "tasks": pl.List(pl.String()),
    "utc_anchor": pl.String(),
    "schema_version": pl.String(),
    "complete": pl.Boolean(),
}
SESSIONS_KEY = b"xrdata.sessions"


def recorded_hours(cat: pl.DataFrame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """Hours recorded, per ``by`` group (e.g. ``("modality",)``), from catalog rows: columns ``*by, hours``
    (one row when ``by`` is empty). A session counts once per group, as its longest stream there: head pose and
    IMU are both "motion", and summing streams would count the session twice."""
    per_session = cat.group_by(*by, "user", "session").agg(pl.col("duration_s").max())
    hours = (pl.col("duration_s").sum() / 3600).alias("hours")
    return per_session.group_by(*by).agg(hours) if by else per_session.select(hours)


def empty_catalog() -> pl.DataFrame:
    return pl.DataFrame(schema=CATALOG_SCHEMA)


def stream_row(
    *, user: str, session: str, attrs: dict[str, Any], n: int, valid: int, first: int | None,
    last: int | None, device: str | None, tasks: list[str], utc_anchor: str | None, complete: bool,
) -> dict[str, Any]:
    """The catalog row of one stream from its stored metadata (``attrs``: the stream document).

    ``missing_frac`` counts both gaps and invalid samples: for a stream with a nominal rate the expected
    count is ``round(span * rate) + 1`` (or the sample count if larger); a sample is invalid as
    :func:`xrdata.validation.sample_validity` decides (every non-flag value NaN, or the schema's invalid
    value). Irregular streams only count invalid samples. Null for an empty stream.
    """
    rate = attrs["rate_hz"]
    span = (last - first) if first is not None and last is not None else 0
    missing: float | None = None
    if n:
        expected = max(n, round(span * rate / 1e9) + 1) if rate is not None else n
        missing = 1.0 - valid / expected
    return {
        "user": user,
        "session": session,
        "stream": attrs["name"],
        "modality": attrs["modality"],
        "n_samples": n,
        "start_ns": first,
        "stop_ns": None if last is None else last + 1,
        "duration_s": span / 1e9,
        "nominal_rate_hz": rate,
        "effective_rate_hz": (n - 1) * 1e9 / span if n > 1 and span > 0 else None,
        "missing_frac": missing,
        "dtype": attrs["dtype"],
        "sample_shape": list(attrs["sample_shape"]),
        "channels": list(attrs["channels"]),
        "device": device,
        "tasks": tasks,
        "utc_anchor": utc_anchor,
        "schema_version": attrs["schema_version"],
        "complete": complete,
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CATALOG_SCHEMA) if rows else empty_catalog()


def encode_partition(df: pl.DataFrame, sessions: list[str]) -> bytes:
    """Parquet bytes of one user's rows (without the hive column) plus the covered-session list."""
    table = df.drop("user").to_arrow()
    meta = dict(table.schema.metadata or {})
    meta[SESSIONS_KEY] = json.dumps(sorted(sessions)).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf, compression="zstd")
    return buf.getvalue()


def partition_sessions(payload: bytes) -> list[str] | None:
    """The sessions a partition covers, from its footer only; None if the file is unreadable."""
    try:
        meta = pq.read_schema(pa.BufferReader(payload)).metadata or {}
        return [str(s) for s in json.loads(meta[SESSIONS_KEY])]
    except (KeyError, ValueError, OSError, pa.ArrowException):
        return None


def decode_partition(payload: bytes, user: str) -> tuple[pl.DataFrame, list[str]] | None:
    """Rows and covered sessions of a partition file, or None if it is unreadable (then it is rebuilt)."""
    try:
        table = pq.read_table(pa.BufferReader(payload))
        sessions = json.loads((table.schema.metadata or {})[SESSIONS_KEY])
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        df = df.with_columns(pl.lit(user, dtype=pl.String()).alias("user")).select(list(CATALOG_SCHEMA))
        return df.cast(CATALOG_SCHEMA), [str(s) for s in sessions]  # type: ignore[arg-type]
    except (KeyError, ValueError, OSError, pa.ArrowException, pl.exceptions.PolarsError):
        return None
