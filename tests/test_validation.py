"""Schema validation: every kind of violation is reported, named and explained; the test kit is valid."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as hs

import xrdata.validation as VALIDATION_MODULE
from xrdata.errors import SchemaError, ValidationError
from xrdata.model import Recording, Stream
from xrdata.schemas import STREAM_MODALITIES, load
from xrdata.testing import (
    assert_recording_equal,
    assert_stream_equal,
    example_recording,
    example_stream,
    recordings,
    streams,
)
from xrdata.validation import (
    Violation,
    check_writable,
    format_violations,
    missing_value,
    sample_shape_for,
    sample_validity,
    validate,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def make(
    modality: str,
    data: Any,
    channels: list[str],
    units: list[str] | str,
    *,
    name: str = "s1",
    time_ns: Any = None,
    rate_hz: float | None = None,
    meta: dict[str, Any] | None = None,
) -> Stream:
    data = np.asarray(data)
    t = np.arange(data.shape[0], dtype=np.int64) * 10_000_000 if time_ns is None else time_ns
    return Stream(name, modality, t, data, channels, units, rate_hz=rate_hz, meta=meta)


def only(violations: list[Violation], field: str, severity: str = "error") -> Violation:
    found = [v for v in violations if v.field == field and v.severity == severity]
    assert len(found) == 1, format_violations(violations)
    return found[0]


# ------------------------------------------------------------------------------------- clean data


@pytest.mark.parametrize("modality", STREAM_MODALITIES)
def test_example_streams_are_clean(modality: str) -> None:
    s = example_stream(modality, 300, rng=rng(1), name=f"{modality}_0")
    assert validate(s, strict=True) == []
    assert s.name == f"{modality}_0" and s.rate_hz is not None
    shape = sample_shape_for(modality, len(s.channels))
    if shape is not None:
        assert s.data.shape[1:] == shape


def test_example_recording_is_clean_and_labelled() -> None:
    rec = example_recording("u1", "s1", seconds=4.0, rng=rng(2))
    assert validate(rec, strict=True) == []
    check_writable(rec)
    assert {s.modality for s in rec.streams.values()} == {"gaze", "hand", "audio", "depth", "motion", "eeg"}
    tasks = rec.events.filter(pl.col("label").str.starts_with("task/"))
    assert tasks.height >= 2 and (tasks["value"].str.len_chars() > 0).all()
    assert sorted(rec.meta["tasks"]) == ["activity", "gesture"]


def test_examples_are_deterministic() -> None:
    a = example_recording("u1", "s1", seconds=1.0, rng=rng(3))
    b = example_recording("u1", "s1", seconds=1.0, rng=rng(3))
    assert_recording_equal(a, b)


def test_example_depth_is_uint16_mm_with_invalid_pixels() -> None:
    s = example_stream("depth", 20, rng=rng(4))
    assert s.data.dtype == np.uint16 and s.data.shape == (20, 12, 16) and s.units == ["mm"]
    assert (s.data == missing_value("depth", s.data.dtype)).any()
    assert set(s.meta["intrinsics"]) == {"fx", "fy", "cx", "cy"}


def test_nan_is_never_a_violation() -> None:
    data = np.full((5, 3), np.nan, dtype=np.float32)
    s = make("motion", data, ["gyro_x", "gyro_y", "gyro_z"], "rad/s")
    assert validate(s) == []
    s = make("eeg", np.full((0, 1), np.nan, dtype=np.float32), ["Cz"], "V")
    assert validate(s) == [], "empty streams are fine"


# ------------------------------------------------------------------------------------- each kind


def test_unknown_channel_suggests_the_closest_name() -> None:
    s = make("gaze", np.full((4, 1), 3.0), ["left_pupil"], "mm", name="eyes")
    v = only(validate(s), "channels")
    assert v.stream == "eyes" and "'eyes'" in v.message
    assert "'left_pupil'" in v.message and "did you mean 'left_pupil_diameter'" in v.message
    assert "rename" in v.message.lower()


def test_unknown_channel_case_only() -> None:
    s = make("hand", np.zeros((2, 2, 26, 1)), ["PX"], "m")
    assert "did you mean 'px'" in only(validate(s), "channels").message


def test_unit_mismatch_with_conversion() -> None:
    s = make(
        "motion", np.zeros((3, 3)), ["gyro_x", "gyro_y", "gyro_z"], ["deg/s", "rad/s", "rad/s"], name="imu"
    )
    v = only(validate(s), "units")
    assert v.message == (
        "stream 'imu': channel 'gyro_x' has unit 'deg/s'; the schema requires 'rad/s': "
        "multiply by pi/180 and set the unit to 'rad/s'"
    )


@pytest.mark.parametrize(
    ("modality", "channel", "unit", "hint"),
    [
        ("eeg", "Cz", "uV", "multiply by 1e-6"),
        ("motion", "mag_x", "uT", "multiply by 1e-6"),
        ("motion", "accel_x", "g", "9.80665"),
        ("gaze", "left_pupil_diameter", "m", "multiply by 1000"),
        ("gaze", "confidence", "%", "divide by 100"),
        ("audio", "mono", "", "'1'"),
        ("hand", "radius", "mm", "divide by 1000"),
    ],
)
def test_unit_hints(modality: str, channel: str, unit: str, hint: str) -> None:
    shape = (2, 2, 26, 1) if modality == "hand" else (2, 1)
    s = make(modality, np.zeros(shape, dtype=np.float32), [channel], unit)
    extra = [
        ("mag_x", "mag_y", "mag_z"),
        ("accel_x", "accel_y", "accel_z"),
    ]
    for group in extra:  # complete the group so only the unit is wrong
        if channel in group:
            s = make(modality, np.zeros((2, 3), dtype=np.float32), list(group), unit)
    v = next(x for x in validate(s) if x.field == "units")
    assert hint in v.message and "'s1'" in v.message


def test_dtype_not_allowed() -> None:
    s = make("gaze", np.zeros((3, 1), dtype=np.int16), ["confidence"], "1", name="g")
    v = only(validate(s), "dtype")
    assert "int16" in v.message and "float32" in v.message and "'g'" in v.message
    v = only(validate(make("audio", np.zeros((3, 1), dtype=np.int16), ["mono"], "1")), "dtype")
    assert "32768" in v.message
    v = only(validate(make("audio", np.zeros((3, 1), dtype=np.float64), ["mono"], "1")), "dtype")
    assert "astype('float32')" in v.message


def test_shape_wrong_for_modality() -> None:
    v = only(
        validate(
            make(
                "hand",
                np.zeros((3, 52, 9)),
                ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"],
                ["m", "m", "m", "1", "1", "1", "1", "m", "1"],
                name="hands",
            )
        ),
        "shape",
    )
    assert "(N, 2, 26, 9)" in v.message and "reshape" in v.message and "'hands'" in v.message
    v = only(validate(make("hand", np.zeros((3, 2, 21, 3)), ["px", "py", "pz"], "m")), "shape")
    assert "26" in v.message and "joint" in v.message
    v = only(validate(make("eeg", np.zeros(3), ["Cz"], "V")), "shape")
    assert "data.reshape(N, 1)" in v.message


def test_channel_count_vs_channel_axis() -> None:
    v = only(validate(make("eeg", np.zeros((3, 4)), ["Cz", "Pz"], "V", name="cap")), "shape")
    assert "4 entries on the channel axis" in v.message and "2 channel names" in v.message
    assert "'cap'" in v.message


def test_depth_rules() -> None:
    frames = np.ones((2, 4, 5), dtype=np.uint16)
    assert validate(make("depth", frames, ["depth"], "mm")) == []
    assert validate(make("depth", frames.astype(np.float32), ["depth"], "m")) == []
    v = only(validate(make("depth", frames, ["z"], "mm", name="tof")), "channels")
    assert "exactly the channel(s) ['depth']" in v.message and "'tof'" in v.message
    v = only(validate(make("depth", frames, ["depth"], "m")), "units")
    assert "requires 'mm'" in v.message and "multiply by 1000" in v.message
    v = only(validate(make("depth", frames.astype(np.float32), ["depth"], "mm")), "units")
    assert "requires 'm'" in v.message and "divide by 1000" in v.message
    v = only(validate(make("depth", frames[..., None], ["depth"], "mm")), "shape")
    assert "data[..., 0]" in v.message
    assert only(validate(make("depth", frames.astype(np.int32), ["depth"], "mm")), "dtype")
    assert only(validate(make("depth", np.ones((2, 0, 5), np.uint16), ["depth"], "mm")), "shape")


def test_depth_range_float_metres_and_uint16_skip() -> None:
    mm_as_float = np.full((2, 3, 3), 1500.0, dtype=np.float32)
    v = only(validate(make("depth", mm_as_float, ["depth"], "m")), "range", "warning")
    assert "divide by 1000" in v.message
    full = np.full((2, 3, 3), 65535, dtype=np.uint16)
    assert validate(make("depth", full, ["depth"], "mm")) == []


def test_depth_intrinsics() -> None:
    frames = np.ones((1, 2, 2), dtype=np.uint16)
    bad = make("depth", frames, ["depth"], "mm", meta={"intrinsics": {"fx": 0, "fy": 1, "cx": 0, "cy": 0}})
    assert "intrinsics" in only(validate(bad), "meta").message
    missing_key = make("depth", frames, ["depth"], "mm", meta={"intrinsics": {"fx": 1.0}})
    assert only(validate(missing_key), "meta")
    good = make(
        "depth", frames, ["depth"], "mm", meta={"intrinsics": {"fx": 1, "fy": 1.5, "cx": 0.5, "cy": 0.5}}
    )
    assert validate(good) == []


def test_missing_value() -> None:
    assert missing_value("depth", np.uint16) == 0
    assert np.isnan(missing_value("depth", np.float32))  # type: ignore[arg-type]
    assert np.isnan(missing_value("gaze", "float64"))  # type: ignore[arg-type]
    assert missing_value("other", np.int32) is None
    assert load("depth")["missing"]["invalid_value"] == 0


def test_audio_outside_full_scale_is_an_error() -> None:
    pcm = np.array([[0.0], [1200.0], [-32768.0], [0.5]], dtype=np.float32)
    v = only(validate(make("audio", pcm, ["mono"], "1", name="mic")), "range")
    assert "2 of 4" in v.message and "first at sample 1" in v.message
    assert "32768" in v.message and "'mic'" in v.message
    edge = np.array([[-1.0], [1.0], [np.nan]], dtype=np.float32)
    assert validate(make("audio", edge, ["mono"], "1")) == []


def test_range_is_a_warning_with_count_and_first_index() -> None:
    d = np.array([[3.0], [np.nan], [25.0], [4.0], [30.0]], dtype=np.float32)
    v = only(validate(make("gaze", d, ["left_pupil_diameter"], "mm", name="eye")), "range", "warning")
    assert "2 of 5" in v.message and "first at sample 2" in v.message and "[1, 10]" in v.message
    assert "'eye'" in v.message and ("NaN" in v.message or "unit" in v.message)


def test_eeg_in_microvolts_is_flagged() -> None:
    d = np.full((4, 2), 40.0)
    got = validate(make("eeg", d, ["Cz", "Pz"], "V"))
    assert [(v.field, v.severity) for v in got] == [("range", "warning")] * 2, "one warning per channel"
    assert all("microvolts" in v.message and "multiply by 1e-6" in v.message for v in got)


def test_range_tolerance_for_float_rounding() -> None:
    d = np.array([[1.0000001, 0.0, 0.0]], dtype=np.float32)
    s = make("gaze", d, ["left_dir_x", "left_dir_y", "left_dir_z"], "1")
    assert validate(s) == []


def test_infinite_values_are_errors() -> None:
    d = np.array([[0.0, 1.0, 0.0], [np.inf, 0.0, 0.0]], dtype=np.float32)
    v = only(validate(make("motion", d, ["head_px", "head_py", "head_pz"], "m", name="head")), "range")
    assert "infinite" in v.message and "first at sample 1" in v.message and "NaN" in v.message


def test_validity_channel_values() -> None:
    d = np.array([[0.0], [1.0], [0.5], [np.nan]])
    v = only(validate(make("gaze", d, ["left_valid"], "1")), "range", "warning")
    assert "[0, 1]" in v.message and "first at sample 2" in v.message


def test_partial_groups_and_unit_norms() -> None:
    q = np.zeros((3, 2, 26, 3))
    v = only(validate(make("hand", q, ["qx", "qy", "qz"], "1", name="h")), "channels")
    assert "['qw'] are missing" in v.message and "'h'" in v.message
    dirs = np.array([[0.0, 0.0, -1.0], [0.0, 0.5, -0.5], [np.nan, np.nan, np.nan]])
    v = only(
        validate(make("gaze", dirs, ["left_dir_x", "left_dir_y", "left_dir_z"], "1")), "range", "warning"
    )
    assert "unit length in 1 sample(s), first at sample 1" in v.message


def test_free_channel_case_warning() -> None:
    v = only(validate(make("eeg", np.zeros((2, 1)), ["CZ"], "V")), "channels", "warning")
    assert "'Cz'" in v.message
    assert validate(make("eeg", np.zeros((2, 1)), ["EEG 001"], "V")) == []
    assert validate(make("other", np.zeros((2, 2), np.int8), ["a", "b"], ["furlong", ""])) == []


def test_rate_mismatch_warning() -> None:
    t = np.arange(10, dtype=np.int64) * 16_666_667  # 60 Hz
    v = only(
        validate(make("gaze", np.zeros((10, 1)), ["confidence"], "1", time_ns=t, rate_hz=90.0)),
        "time_ns",
        "warning",
    )
    assert "90" in v.message and "60" in v.message
    assert validate(make("gaze", np.zeros((10, 1)), ["confidence"], "1", time_ns=t, rate_hz=60.0)) == []


def test_lazy_stream_problems() -> None:
    t = np.array([0, 5, 3], dtype=np.int64)
    d = np.zeros((3, 1), dtype=np.float32)
    s = Stream.lazy("lazy", "eeg", 3, lambda: t, lambda: d, ["Cz"], ["V"], None, {})
    v = only(validate(s), "time_ns")
    assert "non-decreasing" in v.message and "'lazy'" in v.message and "sample 2" in v.message
    s = Stream.lazy("lazy", "eeg", 4, lambda: t, lambda: d, ["Cz", "Cz"], ["V"], None, {"x": float("nan")})
    fields = sorted(x.field for x in validate(s))
    assert fields == ["channels", "meta", "shape", "time_ns", "time_ns", "units"], format_violations(
        validate(s)
    )
    s = Stream.lazy("lazy", "smell", 3, lambda: t, lambda: d, ["Cz"], ["V"], None, {})
    assert "unknown modality 'smell'" in only(validate(s), "modality").message
    s = Stream.lazy("lazy", "eeg", 3, lambda: t.astype(np.float64), lambda: d, ["Cz"], ["V"], None, {})
    assert "int64" in only(validate(s), "time_ns").message


def test_several_violations_are_all_returned() -> None:
    d = np.array([[1.0, 2.0, 3.0], [np.inf, 1.0, 99.0]], dtype=np.float64)
    s = make("gaze", d, ["left_pupil", "left_pupil_diameter", "confidence"], ["mm", "m", "1"], name="many")
    got = validate(s)
    assert sorted((v.field, v.severity) for v in got) == [
        ("channels", "error"),  # left_pupil is not canonical
        ("range", "error"),  # an infinity (in the unknown channel: infinities are never valid)
        ("range", "warning"),  # confidence 99 > 1
        ("units", "error"),  # left_pupil_diameter in m
    ]
    assert all(v.stream == "many" and "'many'" in v.message for v in got)
    d = np.zeros((2, 3), dtype=np.int32)
    got = validate(make("gaze", d, ["left_pupil", "bogus"], ["mm", "mm"]))
    fields = [v.field for v in got]
    assert fields.count("channels") == 2 and "dtype" in fields and "shape" in fields


def test_strict_raises_with_all_violations() -> None:
    d = np.array([[1.0, 25.0]], dtype=np.float32)
    s = make("gaze", d, ["left_pupil", "right_pupil_diameter"], "mm", name="eyes")
    found = validate(s)
    assert len(found) == 2
    with pytest.raises(SchemaError) as info:
        validate(s, strict=True)
    assert info.value.violations == found
    lines = str(info.value).splitlines()
    assert "eyes" in lines[0] and "2 violation" in lines[0]
    assert len(lines) == 3 and "[error] channels" in lines[1] and "[warning] range" in lines[2]
    assert isinstance(info.value, ValidationError)


def test_strict_counts_warnings() -> None:
    s = make("gaze", np.array([[25.0]]), ["left_pupil_diameter"], "mm")
    with pytest.raises(SchemaError):
        validate(s, strict=True)


def test_check_writable_ignores_warnings() -> None:
    warn_only = make("gaze", np.array([[25.0]]), ["left_pupil_diameter"], "mm")
    rec = Recording("u1", "s1", [warn_only])
    check_writable(rec)
    bad = make("audio", np.array([[2.0]], dtype=np.float32), ["mono"], "1", name="mic")
    rec = Recording("u1", "s1", [warn_only, bad])
    with pytest.raises(SchemaError) as info:
        check_writable(rec)
    assert [v.stream for v in info.value.violations] == ["mic"]
    assert "cannot write recording u1/s1" in str(info.value) and "mic" in str(info.value)


def test_validate_rejects_other_objects() -> None:
    with pytest.raises(ValidationError, match="Stream or a Recording"):
        validate("gaze.xdf")  # type: ignore[arg-type]


def test_sample_shape_for() -> None:
    assert sample_shape_for("hand", 9) == (2, 26, 9)
    assert sample_shape_for("gaze", 4) == (4,)
    assert sample_shape_for("eeg", 32) == (32,)
    assert sample_shape_for("depth", 1) is None
    with pytest.raises(ValidationError):
        sample_shape_for("events", 1)


# ------------------------------------------------------------------------------------- sample validity

GAZE_CHANNELS = [c["name"] for c in load("gaze")["channels"]["canonical"]]
HAND_CHANNELS = ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"]


def test_flag_channels_in_the_schemas() -> None:
    def flags(modality: str) -> set[str]:
        return {c["name"] for c in load(modality)["channels"].get("canonical", []) if c.get("flag")}

    assert flags("gaze") == {"left_valid", "right_valid", "combined_valid", "confidence"}
    assert flags("hand") == {"confidence"}
    for modality in ("audio", "depth", "motion", "eeg", "other"):
        assert flags(modality) == set()
    for modality in STREAM_MODALITIES:
        assert "missing" in load(modality)["missing"]["description"], modality


def test_sample_validity_gaze_flags_never_make_a_sample_valid() -> None:
    d = np.full((5, len(GAZE_CHANNELS)), np.nan, dtype=np.float32)
    col = {c: k for k, c in enumerate(GAZE_CHANNELS)}
    flags = [col[c] for c in ("left_valid", "right_valid", "combined_valid", "confidence")]
    d[0] = 0.5  # every channel present
    d[1, flags] = 1.0  # flags say valid, every data channel NaN: missing
    d[2, flags] = 0.0  # both eyes lost: missing
    d[3, col["right_pupil_diameter"]] = 3.0  # one data value is enough
    d[3, flags] = 0.0
    # sample 4: all NaN, flags included
    assert sample_validity("gaze", GAZE_CHANNELS, d).tolist() == [True, False, False, True, False]
    # any channel order, float64 too
    order = np.random.default_rng(0).permutation(len(GAZE_CHANNELS))
    got = sample_validity("gaze", [GAZE_CHANNELS[k] for k in order], d[:, order].astype(np.float64))
    assert got.tolist() == [True, False, False, True, False]
    # a stream of flag channels only holds no data
    only_flags = np.ones((3, 2), np.float32)
    assert sample_validity("gaze", ["confidence", "left_valid"], only_flags).tolist() == [False] * 3
    assert sample_validity("gaze", ["left_pupil_diameter"], np.array([[3.0], [np.nan]])).tolist() == [True, False]


def test_sample_validity_hand_untracked_is_missing() -> None:
    d = np.zeros((4, 2, 26, 9), dtype=np.float32)
    d[..., 8] = 0.8
    d[1] = np.nan  # both hands untracked: NaN except confidence 0
    d[1, ..., 8] = 0.0
    d[2, 0] = np.nan  # left hand untracked only
    d[2, 0, :, 8] = 0.0
    d[3, :, [0, 2, 6, 11, 16, 21]] = np.nan  # a 21-landmark source: palm and metacarpals NaN
    assert sample_validity("hand", HAND_CHANNELS, d).tolist() == [True, False, True, True]
    assert sample_validity("hand", ["confidence"], d[..., 8:]).tolist() == [False] * 4
    assert sample_validity("hand", ["px", "py", "pz"], d[..., :3]).tolist() == [True, False, True, True]


def test_sample_validity_depth_zero_frames() -> None:
    frames = np.full((4, 3, 5), 1200, dtype=np.uint16)
    frames[1] = 0  # an all-invalid frame
    frames[2, :2] = 0  # partly invalid: still a frame
    frames[3] = 0
    frames[3, 2, 4] = 1
    assert sample_validity("depth", ["depth"], frames).tolist() == [True, False, True, True]
    metres = frames.astype(np.float32) / 1000
    metres[2] = np.nan
    metres[2, 0, 0] = 0.0  # NaN and 0 are both invalid pixels in float frames
    assert sample_validity("depth", ["depth"], metres).tolist() == [True, False, False, True]


def test_sample_validity_eeg_and_integer_other() -> None:
    d = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    d[1] = np.nan
    d[2, :2] = np.nan
    assert sample_validity("eeg", ["Cz", "Pz", "Oz"], d).tolist() == [True, False, True, True]
    assert sample_validity("audio", ["mono"], np.array([[0.0], [np.nan]], np.float32)).tolist() == [True, False]
    ints = np.array([[0, -1], [0, 0], [7, 2]], dtype=np.int32)
    assert sample_validity("other", ["a", "b"], ints).tolist() == [True, True, True]
    # integer data that cannot mark missing samples is not even read: 10^10 values answered at once
    huge = np.broadcast_to(np.int8(0), (1_000_000, 10_000))
    valid = sample_validity("other", ["x"] * 10_000, huge)
    assert valid.shape == (1_000_000,) and valid.all()
    assert sample_validity("other", ["x"], np.array([[1.0], [np.nan]])).tolist() == [True, False]


def test_sample_validity_edges_and_errors() -> None:
    assert sample_validity("eeg", ["Cz"], np.empty((0, 1), np.float32)).shape == (0,)
    assert sample_validity("eeg", [], np.empty((3, 0), np.float32)).tolist() == [False] * 3
    with pytest.raises(ValidationError, match="channel axis"):
        sample_validity("hand", HAND_CHANNELS[:3], np.zeros((2, 2, 26, 9), np.float32))
    with pytest.raises(ValidationError, match="unknown stream modality"):
        sample_validity("smell", ["x"], np.zeros((2, 1)))


def _reference_validity(modality: str, channels: list[str], data: np.ndarray) -> np.ndarray:
    """The rule, one sample at a time."""
    flags = {c["name"] for c in load(modality)["channels"].get("canonical", []) if c.get("flag")}
    invalid = load(modality)["missing"].get("invalid_value")
    keep = [k for k, c in enumerate(channels) if c not in flags]
    out = []
    for sample in data:
        values = sample[..., keep] if "channel" in load(modality)["sample_axes"] else sample
        values = values.astype(np.float64).ravel()
        good = ~np.isnan(values) & (values != invalid if invalid is not None else True)
        out.append(bool(good.any()))
    return np.array(out, dtype=bool)


@given(
    modality=hs.sampled_from(["gaze", "hand", "depth", "eeg"]),
    n=hs.integers(0, 40),
    nan_frac=hs.sampled_from([0.0, 0.5, 0.9, 1.0]),
    seed=hs.integers(0, 2**32 - 1),
    chunk=hs.sampled_from([1, 7, 64, 1 << 18]),
)
def test_sample_validity_matches_the_rule(modality: str, n: int, nan_frac: float, seed: int, chunk: int) -> None:
    r = np.random.default_rng(seed)
    if modality == "gaze":
        channels = list(r.permutation(GAZE_CHANNELS)[: r.integers(1, len(GAZE_CHANNELS) + 1)])
        shape: tuple[int, ...] = (n, len(channels))
    elif modality == "hand":
        channels = list(r.permutation(HAND_CHANNELS)[: r.integers(1, 10)])
        shape = (n, 2, 26, len(channels))
    elif modality == "depth":
        channels, shape = ["depth"], (n, 3, 4)
    else:
        channels = ["Cz", "Pz"]
        shape = (n, 2)
    data = r.random(shape)
    # whole samples (or single values) go missing; flags keep values
    lost = r.random(n) < nan_frac
    data[lost] = np.nan
    data[r.random(shape) < nan_frac / 2] = np.nan
    if modality == "depth":
        data = np.where(np.isnan(data), 0, data * 5000).astype(np.uint16) if seed % 2 else data.astype(np.float32)
    else:
        for k, c in enumerate(channels):
            if c in ("confidence", "left_valid", "right_valid", "combined_valid"):
                data[..., k] = np.round(r.random(shape[:-1]))
        data = data.astype(np.float32)
    old = VALIDATION_MODULE._VALIDITY_CHUNK
    VALIDATION_MODULE._VALIDITY_CHUNK = chunk
    try:
        got = sample_validity(modality, channels, data)
    finally:
        VALIDATION_MODULE._VALIDITY_CHUNK = old
    assert got.dtype == bool and got.shape == (n,)
    np.testing.assert_array_equal(got, _reference_validity(modality, channels, data))


# ------------------------------------------------------------------------------------- recordings


def rec_with_events(rows: list[tuple[int, int, str, str]], meta: dict[str, Any] | None = None) -> Recording:
    frame = pl.DataFrame(
        rows,
        schema={"time_ns": pl.Int64, "duration_ns": pl.Int64, "label": pl.String, "value": pl.String},
        orient="row",
    )
    return Recording("u1", "s1", events=frame, meta=meta)


def test_task_label_rules() -> None:
    rec = rec_with_events(
        [(0, 10, "task/hand gesture", "pinch"), (5, 0, "task/gesture", ""), (6, 0, "task/", "x")]
    )
    got = [v for v in validate(rec) if v.field == "events"]
    assert len(got) == 3 and all(v.stream is None and "recording u1/s1" in v.message for v in got)
    text = format_violations(got)
    assert "'task/hand_gesture'" in text and "put the class in 'value'" in text
    assert validate(rec_with_events([(0, 10, "task/gesture", "pinch"), (1, 0, "blink", "")])) == []


def test_tasks_missing_from_meta_warns() -> None:
    rec = rec_with_events([(0, 10, "task/gesture", "pinch")], meta={"tasks": ["activity"]})
    v = only(validate(rec), "events", "warning")
    assert "['gesture']" in v.message and "meta['tasks']" in v.message


def test_events_mutated_after_construction() -> None:
    rec = rec_with_events([(0, 10, "a", ""), (5, 0, "b", "")])
    rec.events = rec.events.reverse()
    assert "sort" in only(validate(rec), "events").message
    rec.events = rec.events.with_columns(pl.col("duration_ns") - 100)
    assert any("negative duration" in v.message for v in validate(rec))
    rec.events = rec.events.drop("value")
    assert "columns" in only(validate(rec), "events").message
    rec.events = "oops"  # type: ignore[assignment]
    assert only(validate(rec), "events")


def test_recording_collects_stream_and_recording_violations() -> None:
    bad = make("eeg", np.zeros((2, 1)), ["Cz"], "uV", name="cap")
    rec = Recording(
        "u1", "s1", [bad], events={"time_ns": [0], "duration_ns": [0], "label": ["task/x y"], "value": ["a"]}
    )
    rec.meta["utc_anchor"] = "not a time"
    got = validate(rec)
    assert {(v.stream, v.field) for v in got} == {("cap", "units"), (None, "events"), (None, "meta")}
    rec.streams["renamed"] = rec.streams["cap"]
    assert any("key 'renamed'" in v.message for v in validate(rec))


# ------------------------------------------------------------------------------------- test kit


@given(s=streams())
def test_generated_streams_have_no_errors(s: Stream) -> None:
    errors = [v for v in validate(s) if v.severity == "error"]
    assert errors == [], format_violations(errors)


@given(r=recordings())
def test_generated_recordings_are_writable(r: Recording) -> None:
    check_writable(r)
    assert_recording_equal(r, r)


@given(s=streams("hand"))
def test_generated_hand_streams_are_four_dimensional(s: Stream) -> None:
    assert s.data.ndim == 4 and s.data.shape[1:3] == (2, 26)


def test_assert_equal_reports_differences() -> None:
    a = example_recording("u1", "s1", seconds=1.0, rng=rng(5))
    b = example_recording("u1", "s1", seconds=1.0, rng=rng(5))
    b.streams["gaze"].data[3, 2] = np.float32(0.123)
    b.meta["device"] = "other"
    with pytest.raises(AssertionError) as info:
        assert_recording_equal(a, b)
    text = str(info.value)
    assert "stream 'gaze'" in text and "first at (3, 2)" in text and "meta['device']" in text


def test_assert_stream_equal_is_bitwise() -> None:
    d = np.array([[0.0], [np.nan]], dtype=np.float32)
    a = make("other", d, ["x"], "1")
    assert_stream_equal(a, make("other", d.copy(), ["x"], "1"))
    with pytest.raises(AssertionError, match="bitwise"):
        assert_stream_equal(a, make("other", np.array([[-0.0], [np.nan]], dtype=np.float32), ["x"], "1"))
    with pytest.raises(AssertionError, match="NaN positions"):
        assert_stream_equal(a, make("other", np.array([[np.nan], [0.0]], dtype=np.float32), ["x"], "1"))
    with pytest.raises(AssertionError, match="dtype float32 != float64"):
        assert_stream_equal(a, make("other", d.astype(np.float64), ["x"], "1"))
    with pytest.raises(AssertionError, match="rate_hz"):
        assert_stream_equal(a, make("other", d, ["x"], "1", rate_hz=5.0))
    with pytest.raises(AssertionError, match="time_ns"):
        assert_stream_equal(a, make("other", d, ["x"], "1", time_ns=np.array([0, 1], dtype=np.int64)))
    with pytest.raises(AssertionError, match=r"meta\['k'\]: 1 \(int\) != 1.0 \(float\)"):
        assert_stream_equal(
            make("other", d, ["x"], "1", meta={"k": 1}), make("other", d, ["x"], "1", meta={"k": 1.0})
        )


def test_assert_recording_equal_events() -> None:
    a = rec_with_events([(0, 10, "a", "")])
    with pytest.raises(AssertionError, match="events row 0"):
        assert_recording_equal(a, rec_with_events([(0, 11, "a", "")]))
    with pytest.raises(AssertionError, match="1 rows != 0 rows"):
        assert_recording_equal(a, Recording("u1", "s1"))
