"""Stream and Recording reject malformed input with an XRDataError that names the stream or recording."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from xrdata.errors import InvalidIdError, ValidationError, XRDataError
from xrdata.model import EVENTS_SCHEMA, Recording, Stream, check_id


def gaze(**overrides: Any) -> Stream:
    """A tiny valid gaze stream named 'eye0'; keyword arguments replace constructor arguments."""
    args: dict[str, Any] = {
        "name": "eye0",
        "modality": "gaze",
        "time_ns": np.array([0, 10, 20], dtype=np.int64),
        "data": np.zeros((3, 2), dtype=np.float32),
        "channels": ["norm_x", "norm_y"],
        "units": ["1", "1"],
        "rate_hz": 100.0,
        "meta": {"device": "tracker"},
    }
    args.update(overrides)
    return Stream(**args)


def raises_naming(what: str, **overrides: Any) -> str:
    with pytest.raises(XRDataError) as info:
        gaze(**overrides)
    assert isinstance(info.value, ValidationError)
    assert what in str(info.value), str(info.value)
    return str(info.value)


def test_valid_stream() -> None:
    s = gaze()
    assert len(s) == s.n_samples == 3
    assert s.time_ns.dtype == np.int64
    assert s.channels == ["norm_x", "norm_y"] and s.units == ["1", "1"]
    assert gaze(units="1").units == ["1", "1"], "one unit string applies to every channel"
    assert gaze(rate_hz=None).rate_hz is None
    assert "eye0" in repr(s)


@pytest.mark.parametrize(
    "bad",
    ["", "../x", "a/b", "a b", "x" * 65, "ü", "é1", "a.b", "a\n", None, 5],
    ids=[
        "empty",
        "dotdot",
        "slash",
        "space",
        "65chars",
        "unicode",
        "unicode2",
        "dot",
        "newline",
        "none",
        "int",
    ],
)
def test_invalid_ids_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidIdError, match="stream name"):
        gaze(name=bad)
    with pytest.raises(InvalidIdError, match="user id"):
        Recording(bad, "s1")
    with pytest.raises(InvalidIdError, match="session id"):
        Recording("u1", bad)
    with pytest.raises(InvalidIdError, match=r"\[A-Za-z0-9_-\]"):
        check_id(bad, "thing")


@pytest.mark.parametrize("good", ["a", "A-b_9", "x" * 64, "-", "_"])
def test_valid_ids(good: str) -> None:
    assert check_id(good, "thing") == good
    assert Recording(good, good).user_id == good


def test_nan_timestamps() -> None:
    msg = raises_naming("eye0", time_ns=np.array([0.0, np.nan, 2.0]))
    assert "NaN" in msg


def test_float_timestamps() -> None:
    msg = raises_naming("eye0", time_ns=np.array([0.0, 1.0, 2.0]))
    assert "int64" in msg and "1e9" in msg


def test_non_monotonic_timestamps() -> None:
    msg = raises_naming("eye0", time_ns=np.array([0, 20, 10], dtype=np.int64))
    assert "non-decreasing" in msg and "sample 2" in msg


def test_duplicate_timestamps_are_allowed() -> None:
    assert gaze(time_ns=np.array([5, 5, 5], dtype=np.int64)).n_samples == 3


def test_other_bad_time_arrays() -> None:
    raises_naming("eye0", time_ns=np.zeros((3, 1), dtype=np.int64))
    raises_naming("eye0", time_ns=np.array(["a", "b", "c"]))
    raises_naming("eye0", time_ns=np.array([0, 2**63, 2**64 - 1], dtype=np.uint64))
    raises_naming("eye0", time_ns=[0, [1], 2])  # ragged


def test_length_mismatch() -> None:
    msg = raises_naming("eye0", data=np.zeros((4, 2), dtype=np.float32))
    assert "4 samples" in msg and "3" in msg


def test_bad_data() -> None:
    raises_naming("eye0", data=np.float32(1.0))
    raises_naming("eye0", data=np.array([["a", "b"]] * 3))
    raises_naming("eye0", data=[[1.0, 2.0], [1.0], [1.0, 2.0]])  # ragged


def test_unknown_modality() -> None:
    msg = raises_naming("eye0", modality="smell")
    assert "gaze" in msg, "the message lists the known modalities"
    raises_naming("eye0", modality="events")  # the events table is not a stream modality


def test_duplicate_channels() -> None:
    msg = raises_naming("eye0", channels=["norm_x", "norm_x"])
    assert "norm_x" in msg


@pytest.mark.parametrize("channels", ["norm_x", ["norm_x", ""], ["norm_x", 3], None])
def test_bad_channel_lists(channels: Any) -> None:
    raises_naming("eye0", channels=channels)


@pytest.mark.parametrize("units", [["1"], ["1", "1", "1"], ["1", 1], None])
def test_units_length_and_type(units: Any) -> None:
    msg = raises_naming("eye0", units=units)
    assert "units" in msg


@pytest.mark.parametrize("rate", [0, -1.0, float("nan"), float("inf"), "100", True])
def test_bad_rate(rate: Any) -> None:
    msg = raises_naming("eye0", rate_hz=rate)
    assert "rate_hz" in msg


@pytest.mark.parametrize(
    "meta",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": np.int64(1)},
        {"x": object()},
        {"x": {1, 2}},
        ["not", "a", "dict"],
    ],
)
def test_non_json_meta(meta: Any) -> None:
    msg = raises_naming("eye0", meta=meta)
    assert "meta" in msg
    with pytest.raises(ValidationError, match="recording u1/s1"):
        Recording("u1", "s1", meta=meta)


def test_meta_is_normalised() -> None:
    assert gaze(meta={"a": (1, 2)}).meta == {"a": [1, 2]}


@pytest.mark.parametrize(
    "anchor", ["2026-01-31T09:00:00", "yesterday", "", 1700000000, "2026-13-01T00:00:00+00:00"]
)
def test_bad_utc_anchor(anchor: Any) -> None:
    with pytest.raises(ValidationError, match=r"recording u1/s1.*utc_anchor"):
        Recording("u1", "s1", meta={"utc_anchor": anchor})


def test_good_utc_anchor() -> None:
    for anchor in ("2026-01-31T09:00:00+00:00", "2026-01-31T10:00:00+01:00", "2026-01-31T09:00:00Z"):
        assert Recording("u1", "s1", meta={"utc_anchor": anchor}).meta["utc_anchor"] == anchor


@pytest.mark.parametrize(
    "meta", [{"device": 3}, {"tasks": "gesture"}, {"tasks": [1]}, {"source_files": "a.xdf"}]
)
def test_bad_known_meta_keys(meta: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="recording u1/s1"):
        Recording("u1", "s1", meta=meta)


def events(**columns: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "time_ns": [5, 1],
        "duration_ns": [0, 2],
        "label": ["a", "task/gesture"],
        "value": ["", "pinch"],
    }
    base.update(columns)
    return base


def test_events_are_typed_and_sorted() -> None:
    rec = Recording("u1", "s1", events=events())
    assert dict(rec.events.schema) == EVENTS_SCHEMA
    assert rec.events["time_ns"].to_list() == [1, 5]
    assert Recording("u1", "s1").events.height == 0
    assert Recording("u1", "s1", events={}).events.height == 0
    empty = Recording("u1", "s1", events={"time_ns": [], "duration_ns": [], "label": [], "value": []})
    assert empty.events.height == 0 and dict(empty.events.schema) == EVENTS_SCHEMA


@pytest.mark.parametrize(
    "bad",
    [
        {"time_ns": [0.5, 1.0]},  # float times
        {"duration_ns": [-1, 0]},  # negative duration
        {"label": ["", "x"]},  # empty label
        {"label": [1, 2]},  # not strings
        {"value": [None, "x"]},  # null
        {"time_ns": [2**63, 0]},  # does not fit int64
    ],
)
def test_bad_events(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"recording u1/s1.*events"):
        Recording("u1", "s1", events=events(**bad))


def test_events_columns() -> None:
    with pytest.raises(ValidationError, match=r"recording u1/s1.*missing \['value'\]"):
        Recording("u1", "s1", events={k: v for k, v in events().items() if k != "value"})
    with pytest.raises(ValidationError, match=r"recording u1/s1.*unexpected \['extra'\]"):
        Recording("u1", "s1", events={**events(), "extra": [1, 2]})
    with pytest.raises(ValidationError, match="recording u1/s1"):
        Recording("u1", "s1", events="not a table")
    frame = pl.DataFrame(events()).cast({"time_ns": pl.Int32})
    assert Recording("u1", "s1", events=frame).events["time_ns"].dtype == pl.Int64


def test_recording_streams() -> None:
    s = gaze()
    assert Recording("u1", "s1", [s]).streams == {"eye0": s}
    assert Recording("u1", "s1", {"eye0": s}).by_modality("gaze") == [s]
    with pytest.raises(ValidationError, match=r"recording u1/s1.*'other'.*'eye0'"):
        Recording("u1", "s1", {"other": s})
    with pytest.raises(ValidationError, match=r"recording u1/s1.*two streams named 'eye0'"):
        Recording("u1", "s1", [s, gaze()])
    with pytest.raises(ValidationError, match=r"recording u1/s1.*Stream objects"):
        Recording("u1", "s1", [{"name": "x"}])


def test_slice_time() -> None:
    s = gaze(
        time_ns=np.array([0, 10, 10, 30], dtype=np.int64), data=np.arange(8, dtype=np.float32).reshape(4, 2)
    )
    part = s.slice_time(10, 30)
    assert part.n_samples == 2 and part.time_ns.tolist() == [10, 10]
    assert part.data.tolist() == [[2.0, 3.0], [4.0, 5.0]]
    assert s.slice_time(40, 10).n_samples == 0
