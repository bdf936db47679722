"""The declarative modality schemas (schemas/<modality>.json) are complete and self-consistent."""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np
import pytest

from xrdata.model import EVENTS_SCHEMA
from xrdata.schemas import MODALITIES, STREAM_MODALITIES, load, version

STREAM_KEYS = {
    "modality",
    "version",
    "description",
    "dtypes",
    "sample_axes",
    "channels",
    "frame",
    "missing",
    "units",
}
OPENXR_JOINTS = [
    "palm", "wrist",
    "thumb_metacarpal", "thumb_proximal", "thumb_distal", "thumb_tip",
    "index_metacarpal", "index_proximal", "index_intermediate", "index_distal", "index_tip",
    "middle_metacarpal", "middle_proximal", "middle_intermediate", "middle_distal", "middle_tip",
    "ring_metacarpal", "ring_proximal", "ring_intermediate", "ring_distal", "ring_tip",
    "little_metacarpal", "little_proximal", "little_intermediate", "little_distal", "little_tip",
]  # fmt: skip


def test_every_modality_has_exactly_one_file() -> None:
    files = {p.name for p in resources.files("xrdata.schemas").iterdir() if p.name.endswith(".json")}
    assert files == {f"{m}.json" for m in MODALITIES}


@pytest.mark.parametrize("modality", MODALITIES)
def test_file_parses_and_is_versioned(modality: str) -> None:
    text = resources.files("xrdata.schemas").joinpath(f"{modality}.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    assert raw == load(modality)
    assert raw["modality"] == modality
    assert re.fullmatch(r"\d+\.\d+\.\d+", raw["version"])
    assert version(modality) == raw["version"] == "1.0.0"
    assert isinstance(raw["description"], str) and raw["description"]


def test_unknown_modality_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unknown modality"):
        load("smell")


@pytest.mark.parametrize("modality", STREAM_MODALITIES)
def test_stream_schema_structure(modality: str) -> None:
    schema = load(modality)
    assert STREAM_KEYS <= set(schema), STREAM_KEYS - set(schema)
    assert schema["dtypes"], "at least one dtype"
    for name in schema["dtypes"]:
        assert np.dtype(name).name == name
        assert np.dtype(name).kind in "biuf"
    axes = schema["sample_axes"]
    assert len(set(axes)) == len(axes)
    if "channel" in axes:
        assert axes[-1] == "channel", "the channel axis is always last"
    for axis, size in schema.get("axis_sizes", {}).items():
        assert axis in axes and axis != "channel" and isinstance(size, int) and size > 0
    for axis, labels in schema.get("axis_labels", {}).items():
        assert len(labels) == schema["axis_sizes"][axis]
        assert len(set(labels)) == len(labels)
    assert isinstance(schema["units"], dict) and schema["units"].get("system") == "SI"
    assert isinstance(schema["missing"], dict)
    if "float32" in schema["dtypes"] or "float64" in schema["dtypes"]:
        assert schema["missing"]["float"] == "NaN"


def _check_range(rng: object) -> None:
    assert rng is None or (isinstance(rng, list) and len(rng) == 2)
    if isinstance(rng, list) and None not in rng:
        assert rng[0] < rng[1]


@pytest.mark.parametrize("modality", STREAM_MODALITIES)
def test_channel_spec(modality: str) -> None:
    spec = load(modality)["channels"]
    assert spec["mode"] in ("canonical", "free")
    if spec["mode"] == "canonical":
        names = [c["name"] for c in spec["canonical"]]
        assert names and len(set(names)) == len(names), "canonical names are unique"
        for c in spec["canonical"]:
            assert {"name", "unit", "range", "description"} <= set(c)
            assert re.fullmatch(r"[a-z][a-z0-9_]*", c["name"])
            assert isinstance(c["unit"], str) and c["unit"]
            _check_range(c["range"])
        grouped: list[str] = []
        for group in spec.get("groups", []):
            assert group["kind"] in ("vector3", "unit_vector3", "unit_quaternion", "point2")
            assert set(group["channels"]) <= set(names)
            grouped += group["channels"]
        assert len(set(grouped)) == len(grouped), "a channel is in at most one group"
    else:
        assert "default_unit" in spec and "allowed_units" in spec and "range" in spec
        _check_range(spec["range"])
        preferred = spec.get("preferred", [])
        assert len(set(preferred)) == len(preferred)


def test_hand_has_26_openxr_joints_in_order() -> None:
    hand = load("hand")
    assert hand["sample_axes"] == ["hand", "joint", "channel"]
    assert hand["axis_sizes"] == {"hand": 2, "joint": 26}
    assert hand["axis_labels"]["hand"] == ["left", "right"]
    assert hand["axis_labels"]["joint"] == OPENXR_JOINTS
    names = [c["name"] for c in hand["channels"]["canonical"]]
    assert names == ["px", "py", "pz", "qx", "qy", "qz", "qw", "radius", "confidence"]


def test_gaze_canonical_channels() -> None:
    gaze = {c["name"]: c for c in load("gaze")["channels"]["canonical"]}
    for eye in ("left", "right", "combined"):
        for ax in "xyz":
            assert gaze[f"{eye}_origin_{ax}"]["unit"] == "m"
            assert gaze[f"{eye}_dir_{ax}"]["unit"] == "1"
        assert gaze[f"{eye}_valid"]["range"] == [0, 1]
    for eye in ("left", "right"):
        assert gaze[f"{eye}_pupil_diameter"]["unit"] == "mm"
        assert gaze[f"{eye}_pupil_diameter"]["range"] == [1.0, 10.0]
        assert gaze[f"{eye}_openness"]["range"] == [0, 1]
    lo, hi = gaze["norm_x"]["range"]
    assert lo < 0 and hi > 1, "the normalised point may overshoot the image slightly"
    assert gaze["confidence"]["range"] == [0, 1]


def test_motion_units() -> None:
    motion = {c["name"]: c for c in load("motion")["channels"]["canonical"]}
    assert motion["accel_x"]["unit"] == "m/s^2" and motion["accel_x"]["range"] == [-160, 160]
    assert motion["gyro_y"]["unit"] == "rad/s" and motion["gyro_y"]["range"] == [-35, 35]
    assert motion["mag_z"]["unit"] == "T"
    for prefix in ("head", "left_ctrl", "right_ctrl"):
        assert [motion[f"{prefix}_p{a}"]["unit"] for a in "xyz"] == ["m"] * 3
        assert all(f"{prefix}_q{a}" in motion for a in "xyzw")


def test_depth_rules() -> None:
    depth = load("depth")
    assert depth["sample_axes"] == ["height", "width"]
    assert [c["name"] for c in depth["channels"]["canonical"]] == ["depth"]
    assert depth["missing"]["invalid_value"] == 0
    assert depth["dtype_units"]["uint16"]["unit"] == "mm"
    assert depth["dtype_units"]["float32"]["unit"] == depth["dtype_units"]["float64"]["unit"] == "m"
    assert set(depth["dtype_units"]) == set(depth["dtypes"])


def test_free_modalities() -> None:
    eeg, audio, other = load("eeg")["channels"], load("audio")["channels"], load("other")["channels"]
    assert eeg["mode"] == audio["mode"] == other["mode"] == "free"
    assert eeg["allowed_units"] == ["V"] and eeg["range"] == [-0.01, 0.01]
    assert {"Fp1", "Cz", "O2"} <= set(eeg["preferred"])
    assert load("eeg")["dtypes"] == ["float32", "float64"]
    assert audio["allowed_units"] == ["1"] and audio["range"] == [-1, 1]
    assert load("audio")["dtypes"] == ["float32"]
    assert other["allowed_units"] is None and other["range"] is None


def test_frames_follow_openxr() -> None:
    for modality in ("gaze", "hand", "motion", "depth"):
        frame = load(modality)["frame"]
        assert (frame["handedness"], frame["up"], frame["forward"], frame["length_unit"]) == (
            "right",
            "+Y",
            "-Z",
            "m",
        )


def test_events_schema_matches_the_model() -> None:
    events = load("events")
    cols = [c["name"] for c in events["columns"]]
    assert cols == list(EVENTS_SCHEMA)
    dtypes = {c["name"]: c["dtype"] for c in events["columns"]}
    assert dtypes == {"time_ns": "int64", "duration_ns": "int64", "label": "string", "value": "string"}
    assert events["task_labels"]["prefix"] == "task/"
    assert events["task_labels"]["example"]["label"].startswith("task/")
