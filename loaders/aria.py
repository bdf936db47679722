"""Project Aria (Gen1) Machine Perception Services outputs -> Recording.

Readers, one per MPS file kind, and :func:`read_aria_mps` for a whole MPS output folder:

* eye gaze (:func:`read_aria_eye_gaze`): every Gen1 column layout, found by column name: ``eyegaze.csv``
  (old order, depth before the bounds), ``general_eye_gaze.csv`` / ``generalized_eye_gaze.csv`` /
  ``personalized_eye_gaze.csv`` (``session_uid`` last) and the vergence ``generalized_gaze.csv`` (per-eye
  yaw, common pitch, eye origins).
* hand tracking (:func:`read_aria_hand_tracking`): ``hand_tracking_results`` v1 (21 landmarks + wrist pose)
  and v2 (+ palm/wrist normals), and the legacy ``wrist_and_palm_poses`` (v1, v2 with normals).
* trajectories (:func:`read_aria_trajectory`): closed-loop (``*_world_device``, optional geo/ECEF columns)
  and open-loop (``*_odometry_device``).
* ``online_calibration.jsonl`` (:func:`read_aria_online_calibration`) and ``speech.csv``
  (:func:`read_aria_speech`).

The files are plain CSV/JSON-lines, so they are parsed with polars (:mod:`xrdata.loaders.tabular`); the
projectaria-tools C++ readers are not needed and would only add a dependency. The readers follow the
reference reader (projectaria-tools ``mps`` module) where it computes something: the combined yaw of the
vergence layout and the per-eye directions.

Clock: ``tracking_timestamp_us`` (device clock, microseconds) becomes ``time_ns = us * 1000`` exactly;
trajectories keep ``utc_timestamp_ns`` exactly in an int64 'other' stream and give the recording an
approximate ``utc_anchor`` (see :func:`read_aria_trajectory`).

Frames (all proper rotations, recorded in the stream meta):

* CPF (central pupil frame, the eye-gaze frame): origin between the eyes, +X to the wearer's left (the
  left eye sits at +IPD/2 in the vergence files and in ``getGazeVectors``), +Y up, +Z forward. It is the
  OpenXR VIEW space with other axes: ``(x, y, z)_openxr = (-x, y, -z)_cpf``; gaze streams use
  ``reference_space = "view"``. A gaze direction is ``normalize(tan(yaw), tan(pitch), 1)`` in CPF
  (projectaria-tools ``getUnitVectorFromYawPitch``).
* Device frame (hand landmarks, trajectory body frame) = the left SLAM camera frame; with the glasses worn
  its +X points down, +Y to the wearer's left and +Z forward (measured on the sample trajectory: gravity
  lies along device +X within 2 degrees). Converted nominally with ``(x, y, z)_openxr = (-y, -x, -z)_device``
  (``reference_space = "aria_device"``); the SLAM camera's small outward/downward tilt is not removed (the
  CPF-from-device calibration lives in the VRS file, not in the MPS outputs).
* World frame of the trajectories: +Z up (gravity ``(0, 0, -9.81)``), converted with
  ``(x, y, z)_openxr = (x, z, -y)_world`` so +Y is up (``reference_space = "aria_world"``). A pose
  ``T_world_device`` becomes ``R_openxr = W R D^T``: quaternion ``q_W * q * conj(q_D)``.

Hand landmarks (21, projectaria-tools ``HandLandmark``) -> the 26 OpenXR joints:

=====================  ==================  =========================================================
Aria landmark (index)  OpenXR joint        note
=====================  ==================  =========================================================
WRIST (5)              wrist
PALM_CENTER (20)       palm
THUMB_INTERMEDIATE (6) thumb_proximal      thumb MCP joint (measured: ~8 cm from the wrist)
THUMB_DISTAL (7)       thumb_distal        thumb IP joint
THUMB_FINGERTIP (0)    thumb_tip
<F>_PROXIMAL           <f>_proximal        MCP joint (knuckle); F = INDEX, MIDDLE, RING, PINKY->little
<F>_INTERMEDIATE       <f>_intermediate    PIP joint
<F>_DISTAL             <f>_distal          DIP joint
<F>_FINGERTIP          <f>_tip
(none)                 thumb/index/middle/ring/little_metacarpal: NaN (Aria has no CMC landmarks)
=====================  ==================  =========================================================

Hand streams hold positions (px, py, pz) and the per-hand tracking confidence on every joint; a hand with
confidence <= 0 (-1 = not tracked, its values written as zeros; projectaria-tools also needs > 0) is NaN with
confidence 0. Wrist poses (``T_device_wrist``,
translation + quaternion, the quaternion keeps Aria's wrist-local axes and is only re-expressed in the
OpenXR-axis device frame) and palm/wrist normals go to an 'other' stream.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xrdata.errors import LoaderError, ValidationError
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.loaders.tabular import (
    TextTable,
    finite_or_nan,
    header_columns,
    numeric_column,
    read_table,
    read_text_table,
    time_column_ns,
)
from xrdata.model import Recording, Stream

__all__ = [
    "ARIA_TO_OPENXR_JOINTS",
    "read_aria_eye_gaze",
    "read_aria_hand_tracking",
    "read_aria_mps",
    "read_aria_online_calibration",
    "read_aria_speech",
    "read_aria_trajectory",
]

DEVICE = "Project Aria (Gen1)"

#: OpenXR joint index (XR_HAND_JOINT_*_EXT order of schemas/hand.json) -> Aria landmark index, or None.
ARIA_TO_OPENXR_JOINTS: tuple[int | None, ...] = (
    20, 5,                 # palm <- PALM_CENTER, wrist <- WRIST
    None, 6, 7, 0,         # thumb: metacarpal (none), proximal <- THUMB_INTERMEDIATE (MCP), distal <- IP, tip
    None, 8, 9, 10, 1,     # index: metacarpal, proximal (MCP), intermediate (PIP), distal (DIP), tip
    None, 11, 12, 13, 2,   # middle
    None, 14, 15, 16, 3,   # ring
    None, 17, 18, 19, 4,   # little <- PINKY
)

# Axis changes to OpenXR (x right, y up, z back); each is a proper rotation, given as matrix and quaternion.
_CPF = np.diag([-1.0, 1.0, -1.0])
_DEV = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_H = math.sqrt(0.5)
_Q_DEV = np.array([0.0, _H, -_H, 0.0])  # (w, x, y, z): 180 degrees about (1, -1, 0) / sqrt(2)
_Q_WORLD = np.array([_H, -_H, 0.0, 0.0])  # -90 degrees about x

_CPF_NOTE = "Aria CPF (+X left, +Y up, +Z forward) -> OpenXR view axes: (x, y, z) -> (-x, y, -z)"
_DEV_NOTE = (
    "Aria device frame (left SLAM camera: +X down, +Y left, +Z forward when worn) -> OpenXR axes: "
    "(x, y, z) -> (-y, -x, -z); nominal, the camera tilt is not removed"
)
_WORLD_NOTE = "Aria world frame (+Z up) -> OpenXR axes (+Y up): (x, y, z) -> (x, z, -y)"


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions in (w, x, y, z) order."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def _conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _rotate(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Apply the 3x3 matrix ``m`` to (..., 3) vectors."""
    out: np.ndarray = v @ m.T
    return out


# ------------------------------------------------------------------------------------------- shared


def _table(path: Path) -> TextTable:
    table = read_text_table(path)
    if "tracking_timestamp_us" not in table.frame.columns and "startTime_ns" not in table.frame.columns:
        raise LoaderError(f"{path}: no tracking_timestamp_us column: not an Aria MPS file")
    return table


def _cols(table: TextTable, names: Iterable[str]) -> np.ndarray:
    """(N, k) float64 of the named columns; a missing column is an error naming it."""
    names = list(names)
    missing = [n for n in names if n not in table.frame.columns]
    if missing:
        raise LoaderError(f"{table.path}: missing column(s) {missing}; the file is not a known Aria MPS layout")
    if not names:
        return np.zeros((table.frame.height, 0))
    return np.stack([numeric_column(table, n) for n in names], axis=-1)


def _tracking_ns(table: TextTable) -> np.ndarray:
    return time_column_ns(table, "tracking_timestamp_us", "us")


def _strings(table: TextTable, column: str) -> list[str]:
    if column not in table.frame.columns:
        return []
    return [s for s in table.frame[column].fill_null("").unique(maintain_order=True).to_list() if s]


def _check_time(path: Path, t: np.ndarray) -> None:
    if t.size > 1 and (np.diff(t) < 0).any():
        i = int(np.flatnonzero(np.diff(t) < 0)[0])
        raise LoaderError(
            f"{path}: tracking_timestamp_us goes back in time at row {i + 2} ({t[i]} -> {t[i + 1]} ns); "
            "the file is corrupt or not one recording"
        )


def _recording(path: Path, streams: list[Stream], user_id: str, session_id: str | None, **meta: Any) -> Recording:
    events = meta.pop("events", None)
    try:
        return Recording(
            user_id, session_id or default_session_id(path), streams, events=events,
            meta={"device": DEVICE, "source_files": [path.name], **meta},
        )
    except ValidationError as exc:
        raise LoaderError(f"{path}: {exc}") from exc


def _stream(path: Path, *args: Any, **kwargs: Any) -> Stream:
    try:
        return Stream(*args, **kwargs)
    except ValidationError as exc:
        raise LoaderError(f"{path}: {exc}") from exc


# ------------------------------------------------------------------------------------------- eye gaze

_GAZE_BOUNDS = ("yaw_low_rads_cpf", "pitch_low_rads_cpf", "yaw_high_rads_cpf", "pitch_high_rads_cpf")
_VERGENCE_ANGLES = (
    "left_yaw_rads_cpf", "right_yaw_rads_cpf", "pitch_rads_cpf", "left_yaw_low_rads_cpf", "right_yaw_low_rads_cpf",
    "pitch_low_rads_cpf", "left_yaw_high_rads_cpf", "right_yaw_high_rads_cpf", "pitch_high_rads_cpf",
)
_EYE_ORIGINS = ("tx_left_eye_cpf", "ty_left_eye_cpf", "tz_left_eye_cpf", "tx_right_eye_cpf", "ty_right_eye_cpf",
                "tz_right_eye_cpf")


def _cpf_dir(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(N, 3) OpenXR unit directions of CPF yaw/pitch: normalize(tan(yaw), tan(pitch), 1), axes changed."""
    v = np.stack([np.tan(yaw), np.tan(pitch), np.ones_like(yaw)], axis=-1)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return _rotate(_CPF, v)


def _is_eye_gaze(cols: list[str]) -> bool:
    return "tracking_timestamp_us" in cols and (
        {"yaw_rads_cpf", "pitch_rads_cpf"} <= set(cols) or {"left_yaw_rads_cpf", "right_yaw_rads_cpf"} <= set(cols)
    )


def _eye_gaze_streams(path: Path, table: TextTable) -> tuple[list[Stream], dict[str, Any]]:
    t = _tracking_ns(table)
    _check_time(path, t)
    cols = table.frame.columns
    depth = numeric_column(table, "depth_m") if "depth_m" in cols else np.full(t.shape, np.nan)
    # Depth 0 means "not available" (projectaria-tools EyeGaze::depth); a blank cell is NaN already.
    depth = np.where(depth == 0, np.nan, depth)
    n = t.shape[0]
    zeros = np.zeros((n, 3))
    if "left_yaw_rads_cpf" in cols:
        layout = "vergence (generalized_gaze.csv)"
        ang = _cols(table, _VERGENCE_ANGLES)
        left, right, pitch = ang[:, 0], ang[:, 1], ang[:, 2]
        # Combined yaw as the reference reader computes it (computeDepthAndCombinedGazeDirection): the
        # direction from the CPF origin to the intersection of the two eye rays, atan((tan l + tan r) / 2).
        yaw = np.arctan((np.tan(left) + np.tan(right)) / 2.0)
        origins = _cols(table, _EYE_ORIGINS) if set(_EYE_ORIGINS) <= set(cols) else np.full((n, 6), np.nan)
        combined = _cpf_dir(yaw, pitch)
        gaze = np.concatenate(
            [_rotate(_CPF, origins[:, :3]), _cpf_dir(left, pitch), _rotate(_CPF, origins[:, 3:]),
             _cpf_dir(right, pitch), np.where(np.isnan(combined), np.nan, zeros), combined], axis=-1,
        )
        gaze_names = [f"{side}_{kind}_{a}" for side in ("left", "right", "combined") for kind in ("origin", "dir")
                      for a in "xyz"]
        raw_names = ["yaw_rads_cpf", *_VERGENCE_ANGLES, "depth_m"]
        raw = np.concatenate([yaw[:, None], ang, depth[:, None]], axis=-1)
    else:
        old = {"depth_m", "yaw_low_rads_cpf"} <= set(cols) and cols.index("depth_m") < cols.index("yaw_low_rads_cpf")
        layout = "eyegaze.csv (depth before the bounds)" if old else "general/generalized/personalized eye gaze"
        ang = _cols(table, ("yaw_rads_cpf", "pitch_rads_cpf", *[b for b in _GAZE_BOUNDS if b in cols]))
        yaw, pitch = ang[:, 0], ang[:, 1]
        combined = _cpf_dir(yaw, pitch)
        gaze = np.concatenate([np.where(np.isnan(combined), np.nan, zeros), combined], axis=-1)
        gaze_names = [f"combined_{kind}_{a}" for kind in ("origin", "dir") for a in "xyz"]
        raw_names = ["yaw_rads_cpf", "pitch_rads_cpf", *[b for b in _GAZE_BOUNDS if b in cols], "depth_m"]
        raw = np.concatenate([ang, depth[:, None]], axis=-1)
    gaze_units = ["m" if "origin" in c else "1" for c in gaze_names]
    sessions = _strings(table, "session_uid")
    meta = {
        "source_file": path.name, "layout": layout, "reference_space": "view", "source_frame": "Aria CPF",
        "frame_conversion": _CPF_NOTE, "session_uids": sessions,
        "direction": "normalize(tan(yaw), tan(pitch), 1) in CPF (projectaria-tools getUnitVectorFromYawPitch)",
    }
    raw_meta: dict[str, Any] = {
        "source_file": path.name, "layout": layout, "source_frame": "Aria CPF (angles as in the file)",
        "depth_m": "NaN where the file has no depth (blank, or 0 = not available; projectaria-tools reads 0.0)",
    }
    if "left_yaw_rads_cpf" in cols:
        raw_meta["yaw_rads_cpf"] = "combined yaw computed like projectaria-tools: atan((tan(left) + tan(right)) / 2)"
    streams = [
        _stream(path, "eye_gaze", "gaze", t, finite_or_nan(gaze, meta), gaze_names, gaze_units, None, meta),
        _stream(path, "eye_gaze_angles", "other", t, finite_or_nan(raw, raw_meta), raw_names,
                ["m" if c == "depth_m" else "rad" for c in raw_names], None, raw_meta),
    ]
    return streams, {"session_uids": sessions}


def _sniff_eye_gaze(path: Path) -> bool:
    cols = header_columns(path) if path.is_file() else None
    return bool(cols) and _is_eye_gaze(cols or [])


@reader("aria_eye_gaze", (".csv",), sniff=_sniff_eye_gaze,
        description="Project Aria MPS eye gaze CSV (all Gen1 layouts)")
def read_aria_eye_gaze(path: PathLike, *, user_id: str = "anonymous", session_id: str | None = None) -> Recording:
    """Read an Aria MPS eye-gaze CSV (any Gen1 layout, found by column names).

    Returns streams ``eye_gaze`` (gaze, ``reference_space="view"``: ``combined_origin_*`` = the CPF origin
    (0, 0, 0) m and ``combined_dir_*`` unit vectors in OpenXR axes; the vergence layout adds
    ``left/right_origin_*`` from ``t*_left/right_eye_cpf`` and ``left/right_dir_*``) and ``eye_gaze_angles``
    ('other', the source angles in rad and ``depth_m`` in m, NaN where the file gives none). Time:
    ``tracking_timestamp_us * 1000`` ns on the device clock.
    """
    p = Path(path)
    table = _table(p)
    if not _is_eye_gaze(table.columns):
        raise LoaderError(f"{p}: unknown Aria eye-gaze layout (columns {table.columns[:12]})")
    streams, extra = _eye_gaze_streams(p, table)
    return _recording(p, streams, user_id, session_id, **table.meta, **extra)


# ----------------------------------------------------------------------------------------- hand tracking


def _hand_layout(cols: list[str]) -> str | None:
    if "tracking_timestamp_us" not in cols or "left_tracking_confidence" not in cols:
        return None
    if "tx_left_landmark_0_device" in cols:
        return "results"
    if "tx_left_wrist_device" in cols:
        return "wrist_and_palm"
    return None


def _hand_streams(path: Path, table: TextTable) -> tuple[list[Stream], dict[str, Any]]:
    layout = _hand_layout(table.columns)
    t = _tracking_ns(table)
    _check_time(path, t)
    n = t.shape[0]
    hands = np.full((n, 2, 26, 4), np.nan)
    extra_cols: list[np.ndarray] = []
    extra_names: list[str] = []
    cols = set(table.columns)
    n_tracked = {}
    for h, side in enumerate(("left", "right")):
        conf = numeric_column(table, f"{side}_tracking_confidence")
        # A hand is present iff its confidence is > 0, as projectaria-tools reads it: -1 (and, in the
        # wrist-and-palm v2 sample, 0) mark an untracked hand whose values are written as zeros.
        tracked = conf > 0
        n_tracked[side] = int(tracked.sum())
        hands[:, h, :, 3] = np.where(tracked, conf, 0.0)[:, None]
        if layout == "results":
            for j, lm in enumerate(ARIA_TO_OPENXR_JOINTS):
                if lm is not None:
                    xyz = _cols(table, [f"t{a}_{side}_landmark_{lm}_device" for a in "xyz"])
                    hands[:, h, j, :3] = _rotate(_DEV, xyz)
            if {f"tx_{side}_device_wrist", f"qw_{side}_device_wrist"} <= cols:
                pos = _rotate(_DEV, _cols(table, [f"t{a}_{side}_device_wrist" for a in "xyz"]))
                q = _cols(table, [f"q{a}_{side}_device_wrist" for a in "wxyz"])
                q = _qmul(np.broadcast_to(_Q_DEV, q.shape), q)
                block = np.concatenate([pos, q[:, 1:], q[:, :1]], axis=-1)
                extra_cols.append(np.where(tracked[:, None], block, np.nan))
                extra_names += [f"{side}_wrist_{c}" for c in ("px", "py", "pz", "qx", "qy", "qz", "qw")]
        else:
            for joint, name in ((1, "wrist"), (0, "palm")):
                xyz = _cols(table, [f"t{a}_{side}_{name}_device" for a in "xyz"])
                hands[:, h, joint, :3] = _rotate(_DEV, xyz)
        for part in ("palm", "wrist"):
            normal = [f"n{a}_{side}_{part}_device" for a in "xyz"]
            if set(normal) <= cols:
                extra_cols.append(np.where(tracked[:, None], _rotate(_DEV, _cols(table, normal)), np.nan))
                extra_names += [f"{side}_{part}_normal_{a}" for a in "xyz"]
        hands[~tracked, h, :, :3] = np.nan
    meta: dict[str, Any] = {
        "source_file": path.name, "layout": "hand_tracking_results" if layout == "results" else "wrist_and_palm_poses",
        "reference_space": "aria_device", "source_frame": "Aria device frame", "frame_conversion": _DEV_NOTE,
        "aria_landmark_of_joint": list(ARIA_TO_OPENXR_JOINTS),
        "confidence": "per-hand tracking confidence on every joint; <= 0 in the file (not tracked) -> NaN pose, 0",
        "tracked_frames": n_tracked,
    }
    if layout != "results":
        meta["aria_landmark_of_joint"] = [20, 5] + [None] * 24
        meta["note"] = "legacy wrist-and-palm file: only the wrist and palm joints are set, the others are NaN"
    streams = [_stream(path, "hands", "hand", t, finite_or_nan(hands, meta), ["px", "py", "pz", "confidence"],
                       ["m", "m", "m", "1"], None, meta)]
    if extra_cols:
        emeta = {
            "source_file": path.name, "reference_space": "aria_device", "frame_conversion": _DEV_NOTE,
            "wrist_pose": "T_device_wrist: position in OpenXR device axes; quaternion (x, y, z, w) = q_D * q, "
                          "the wrist-local axes stay Aria's",
        }
        extra = np.concatenate(extra_cols, axis=-1)
        streams.append(_stream(path, "hand_wrist", "other", t, finite_or_nan(extra, emeta), extra_names,
                               ["1" if "_q" in c or "normal" in c else "m" for c in extra_names], None, emeta))
    return streams, {}


def _sniff_hand(path: Path) -> bool:
    cols = header_columns(path) if path.is_file() else None
    return bool(cols) and _hand_layout(cols or []) is not None


@reader("aria_hand_tracking", (".csv",), sniff=_sniff_hand,
        description="Project Aria MPS hand tracking CSV (results v1/v2, wrist and palm poses)")
def read_aria_hand_tracking(path: PathLike, *, user_id: str = "anonymous", session_id: str | None = None) -> Recording:
    """Read an Aria MPS hand-tracking CSV (v1/v2 results or the legacy wrist-and-palm poses).

    Returns stream ``hands`` (hand, ``(N, 2, 26, 4)``: px, py, pz in m, OpenXR axes of the device frame, and
    the per-hand confidence; joints Aria lacks and untracked hands NaN, see the module docstring) and, where
    the file has them, ``hand_wrist`` ('other': wrist poses and palm/wrist normals).
    """
    p = Path(path)
    table = _table(p)
    if _hand_layout(table.columns) is None:
        raise LoaderError(f"{p}: unknown Aria hand-tracking layout (columns {table.columns[:8]})")
    streams, extra = _hand_streams(p, table)
    return _recording(p, streams, user_id, session_id, **table.meta, **extra)


# -------------------------------------------------------------------------------------------- trajectory


def _trajectory_frame(cols: list[str]) -> str | None:
    for frame in ("world", "odometry"):
        if "tracking_timestamp_us" in cols and f"qw_{frame}_device" in cols:
            return frame
    return None


def _iso(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 10**9, tz=UTC).replace(microsecond=(ns % 10**9) // 1000)
    return when.isoformat()


def _trajectory_streams(path: Path, table: TextTable) -> tuple[list[Stream], dict[str, Any]]:
    frame = _trajectory_frame(table.columns)
    assert frame is not None
    t = _tracking_ns(table)
    _check_time(path, t)
    cols = set(table.columns)
    pos = _rotate(_WORLD, _cols(table, [f"t{a}_{frame}_device" for a in "xyz"]))
    q = _cols(table, [f"q{a}_{frame}_device" for a in "wxyz"])
    q = _qmul(_qmul(np.broadcast_to(_Q_WORLD, q.shape), q), np.broadcast_to(_conj(_Q_DEV), q.shape))
    pose = np.concatenate([pos, q[:, 1:], q[:, :1]], axis=-1)
    space = f"aria_{frame}"
    meta = {
        "source_file": path.name, "reference_space": space, "source_frame": f"Aria T_{frame}_device",
        "frame_conversion": f"{_WORLD_NOTE}; body: {_DEV_NOTE}; q = q_W * q * conj(q_D)",
        "graph_uids": _strings(table, "graph_uid"), "session_uids": _strings(table, "session_uid"),
    }
    streams = [_stream(path, "head_pose", "motion", t, finite_or_nan(pose, meta),
                       ["head_px", "head_py", "head_pz", "head_qx", "head_qy", "head_qz", "head_qw"],
                       ["m", "m", "m", "1", "1", "1", "1"], None, meta)]
    blocks: list[np.ndarray] = []
    names: list[str] = []
    units: list[str] = []
    vel_frame = "device" if "device_linear_velocity_x_device" in cols else frame
    vel_rotation = _DEV if vel_frame == "device" else _WORLD
    vectors = (
        (f"device_linear_velocity_{{}}_{vel_frame}", "linear_velocity", "m/s", vel_rotation),
        ("angular_velocity_{}_device", "angular_velocity", "rad/s", _DEV),
        (f"gravity_{{}}_{frame}", "gravity", "m/s^2", _WORLD),
    )
    for pattern, name, unit, m in vectors:
        src = [pattern.format(a) for a in "xyz"]
        if set(src) <= cols:
            blocks.append(_rotate(m, _cols(table, src)))
            names += [f"{name}_{a}" for a in "xyz"]
            units += [unit] * 3
    scalars = [c for c in ("quality_score", "geo_available") if c in cols]
    ecef = [f"{k}{a}_ecef_device" for k in ("t", "q") for a in ("xyz" if k == "t" else "xyzw")]
    if set(ecef) <= cols:
        scalars += ecef  # ECEF is its own (earth-fixed) frame: kept as in the file
    if scalars:
        blocks.append(_cols(table, scalars))
        names += scalars
        units += ["m" if c.startswith("t") and c.endswith("_ecef_device") else "1" for c in scalars]
    smeta = {
        "source_file": path.name,
        "frames": f"linear velocity in the {vel_frame} frame, angular velocity in the device frame, gravity in "
                  f"the {frame} frame, all converted to OpenXR axes ({_DEV_NOTE}; {_WORLD_NOTE}); ECEF poses as in "
                  "the file",
    }
    if blocks:
        streams.append(_stream(path, "trajectory_state", "other", t, finite_or_nan(np.concatenate(blocks, -1), smeta),
                               names, units, None, smeta))
    extra: dict[str, Any] = {}
    if "utc_timestamp_ns" in cols:
        utc = time_column_ns(table, "utc_timestamp_ns", "ns")
        umeta = {"source_file": path.name, "note": "utc_timestamp_ns exactly as in the file (UTC, ns)"}
        streams.append(_stream(path, "trajectory_utc", "other", t, utc[:, None], ["utc_timestamp_ns"], ["ns"],
                               None, umeta))
        if utc.size:
            anchor = int(np.median(utc - t))
            extra["utc_anchor"] = _iso(anchor)
            extra["utc_anchor_note"] = (
                "median of utc_timestamp_ns - tracking time over the trajectory; the UTC column is updated in "
                "coarse steps (about 0.1 s), so the anchor is approximate to that"
            )
    return streams, extra


def _sniff_trajectory(path: Path) -> bool:
    cols = header_columns(path) if path.is_file() else None
    return bool(cols) and _trajectory_frame(cols or []) is not None


@reader("aria_trajectory", (".csv",), sniff=_sniff_trajectory,
        description="Project Aria MPS closed/open-loop trajectory CSV")
def read_aria_trajectory(path: PathLike, *, user_id: str = "anonymous", session_id: str | None = None) -> Recording:
    """Read an Aria MPS closed-loop or open-loop trajectory CSV.

    Returns ``head_pose`` (motion: head_px..pz m, head_qx..qw, the device pose in the OpenXR-axis world
    frame, ``reference_space="aria_world"`` or ``"aria_odometry"``), ``trajectory_state`` ('other':
    linear/angular velocity, gravity in OpenXR axes, quality score, geo/ECEF columns as in the file) and
    ``trajectory_utc`` ('other', int64 ``utc_timestamp_ns`` exactly). The recording's ``utc_anchor`` is the
    median of ``utc_timestamp_ns - time_ns`` (approximate: the UTC column is coarse).
    """
    p = Path(path)
    table = _table(p)
    if _trajectory_frame(table.columns) is None:
        raise LoaderError(f"{p}: unknown Aria trajectory layout (columns {table.columns[:10]})")
    streams, extra = _trajectory_streams(p, table)
    return _recording(p, streams, user_id, session_id, **table.meta, **extra)


# ------------------------------------------------------------------------------------ online calibration


def _calibration_leaves(value: Any, key: str, numbers: dict[str, float], static: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _calibration_leaves(v, f"{key}.{k}" if key else str(k), numbers, static)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _calibration_leaves(v, f"{key}.{i}", numbers, static)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        static[key] = value
    else:
        numbers[key] = float(value)


def _calibration_streams(path: Path) -> tuple[list[Stream], dict[str, Any]]:
    import json

    rows: list[dict[str, float]] = []
    times: list[int] = []
    utcs: list[int] = []
    static: dict[str, Any] = {}
    lines = path.read_bytes().split(b"\n")
    dropped = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if i == len(lines) - 1:  # last line without line break: cut short
                dropped += 1
                continue
            raise LoaderError(f"{path}: line {i + 1} is not valid JSON ({exc})") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("tracking_timestamp_us"), int):
            raise LoaderError(f"{path}: line {i + 1} has no integer tracking_timestamp_us")
        numbers: dict[str, float] = {}
        for group in ("ImuCalibrations", "CameraCalibrations"):
            entries = obj.get(group, [])
            if not isinstance(entries, list):
                raise LoaderError(f"{path}: line {i + 1}: {group} is not a list")
            for k, entry in enumerate(entries):
                label = entry.get("Label") if isinstance(entry, dict) else None
                _calibration_leaves(entry, str(label or f"{group}{k}"), numbers, static)
        rows.append(numbers)
        times.append(int(obj["tracking_timestamp_us"]) * 1000)
        utc = obj.get("utc_timestamp_ns")
        utcs.append(utc if isinstance(utc, int) and not isinstance(utc, bool) else np.iinfo(np.int64).min)
    if not rows:
        raise LoaderError(f"{path}: no calibration lines")
    names = list(dict.fromkeys(k for r in rows for k in r))
    data = np.array([[r.get(k, np.nan) for k in names] for r in rows], dtype=np.float64).reshape(len(rows), len(names))
    t = np.array(times, dtype=np.int64)
    _check_time(path, t)
    meta = {
        "source_file": path.name,
        "note": "every numeric value of each line's ImuCalibrations/CameraCalibrations, named <Label>.<json path>, "
                "in the file's units and Aria frames (no conversion); text fields of the first line in 'static'",
        "static": {k: v for k, v in static.items() if not k.endswith("SerialNumber")},
        "cameras": [n.split(".")[0] for n in names if n.endswith(".Projection.Params.0")],
        "imus": [n.split(".")[0] for n in names if n.endswith(".Gyroscope.Bias.Offset.0")],
    }
    streams = [_stream(path, "online_calibration", "other", t, finite_or_nan(data, meta), names, "1", None, meta)]
    utc = np.array(utcs, dtype=np.int64)
    if (utc != np.iinfo(np.int64).min).all():
        streams.append(_stream(path, "online_calibration_utc", "other", t, utc[:, None], ["utc_timestamp_ns"], ["ns"],
                               None, {"source_file": path.name}))
    extra: dict[str, Any] = {"dropped_truncated_lines": dropped} if dropped else {}
    return streams, extra


def _sniff_calibration(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return path.is_file() and b'"tracking_timestamp_us"' in head and (
        b'"ImuCalibrations"' in head or b'"CameraCalibrations"' in head
    )


@reader("aria_online_calibration", (".jsonl",), sniff=_sniff_calibration,
        description="Project Aria MPS online_calibration.jsonl")
def read_aria_online_calibration(
    path: PathLike, *, user_id: str = "anonymous", session_id: str | None = None
) -> Recording:
    """Read ``online_calibration.jsonl``: one 'other' stream ``online_calibration`` with every numeric
    calibration value per line (columns ``<label>.<json path>``, e.g. ``camera-rgb.Projection.Params.0``,
    ``imu-left.Gyroscope.Bias.Offset.2``) at ``tracking_timestamp_us * 1000`` ns, plus
    ``online_calibration_utc`` (int64 ``utc_timestamp_ns``)."""
    p = Path(path)
    streams, extra = _calibration_streams(p)
    return _recording(p, streams, user_id, session_id, **extra)


# ------------------------------------------------------------------------------------------------ speech


def _sniff_speech(path: Path) -> bool:
    cols = header_columns(path) if path.is_file() else None
    return bool(cols) and {"startTime_ns", "endTime_ns", "written"} <= set(cols or [])


@reader("aria_speech", (".csv",), sniff=_sniff_speech, description="Project Aria speech.csv (ASR words)")
def read_aria_speech(path: PathLike, *, user_id: str = "anonymous", session_id: str | None = None) -> Recording:
    """Read an Aria ``speech.csv``: each word becomes a ``speech`` event (value = the written text, duration
    = end - start, device clock ns) and the ASR confidence an 'other' stream ``speech_confidence``; this is
    :func:`xrdata.loaders.tabular.read_table` with the shipped ``aria_speech`` mapping."""
    rec = read_table(path, user_id=user_id, session_id=session_id, mapping="aria_speech")
    rec.meta["device"] = DEVICE
    return rec


# -------------------------------------------------------------------------------------------- MPS folder

_KINDS = ("eye_gaze", "hand_tracking", "trajectory", "online_calibration", "speech")
# Preferred file of each kind: it keeps the plain stream names, the others are prefixed with their file stem.
_PRIORITY = (
    "personalized_eye_gaze", "generalized_gaze", "general_eye_gaze", "generalized_eye_gaze", "eyegaze",
    "hand_tracking_results", "hand_tracking_results_v2", "hand_tracking_results_v1", "wrist_and_palm_poses_v2",
    "wrist_and_palm_poses", "closed_loop_trajectory", "open_loop_trajectory",
)


def _classify(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "online_calibration" if _sniff_calibration(path) else None
    if suffix != ".csv":
        return None
    cols = header_columns(path) or []
    if _is_eye_gaze(cols):
        return "eye_gaze"
    if _hand_layout(cols):
        return "hand_tracking"
    if _trajectory_frame(cols):
        return "trajectory"
    if {"startTime_ns", "endTime_ns", "written"} <= set(cols):
        return "speech"
    return None


def _candidates(folder: Path, depth: int = 3, limit: int | None = None) -> list[Path]:
    """CSV/JSON-lines files up to ``depth`` folders below ``folder`` (at most ``limit``), shallow first."""
    out: list[Path] = []
    level = [folder]
    for _ in range(depth + 1):
        nxt: list[Path] = []
        for d in level:
            try:
                entries = sorted(d.iterdir())
            except OSError:
                continue
            out += [e for e in entries if e.is_file() and e.suffix.lower() in (".csv", ".jsonl")]
            nxt += [e for e in entries if e.is_dir() and not e.name.startswith(".")]
            if limit is not None and len(out) >= limit:
                return out[:limit]
        level = nxt
    return out


def _sniff_mps(path: Path) -> bool:
    if not path.is_dir():
        return False
    # read() sniffs every folder it is given: look at a bounded number of files
    return any(_classify(f) is not None for f in _candidates(path, limit=64))


def _rank(path: Path) -> tuple[int, str]:
    stem = path.stem
    return (_PRIORITY.index(stem) if stem in _PRIORITY else len(_PRIORITY), path.as_posix())


@reader("aria_mps", (), sniff=_sniff_mps, description="Project Aria MPS output folder (eye gaze, hands, SLAM...)")
def read_aria_mps(path: PathLike, *, user_id: str = "anonymous", session_id: str | None = None) -> Recording:
    """Read a whole Aria MPS output folder (searched up to 3 levels deep) into one Recording.

    Every eye-gaze, hand-tracking, trajectory, online-calibration and speech file found is read with its
    per-file reader; the preferred file of each kind (e.g. ``personalized_eye_gaze`` over
    ``general_eye_gaze``, closed- over open-loop trajectory) keeps the plain stream names (``eye_gaze``,
    ``hands``, ``head_pose`` ...), the others are prefixed with their file stem. Other files are listed in
    ``meta["skipped_files"]``. One folder must hold one recording (all on one device clock).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise LoaderError(f"{folder}: read_aria_mps needs an MPS output folder; use the per-file readers for files")
    readers = {
        "eye_gaze": read_aria_eye_gaze, "hand_tracking": read_aria_hand_tracking,
        "trajectory": read_aria_trajectory, "online_calibration": read_aria_online_calibration,
        "speech": read_aria_speech,
    }
    found: dict[str, list[Path]] = {k: [] for k in _KINDS}
    skipped: list[str] = []
    for f in _candidates(folder):
        kind = _classify(f)
        if kind is None:
            skipped.append(f.relative_to(folder).as_posix())
        else:
            found[kind].append(f)
    if not any(found.values()):
        raise LoaderError(f"{folder}: no Aria MPS eye gaze, hand tracking, trajectory or calibration file found")
    streams: dict[str, Stream] = {}
    events: list[pl.DataFrame] = []
    meta: dict[str, Any] = {"device": DEVICE, "source_files": []}
    for kind in _KINDS:
        for k, f in enumerate(sorted(found[kind], key=_rank)):
            rel = f.relative_to(folder).as_posix()
            try:
                rec = readers[kind](f, user_id=user_id, session_id="mps")
            except LoaderError as exc:
                raise LoaderError(f"{folder}: {exc}") from exc
            for name, s in rec.streams.items():
                key = name if k == 0 else re.sub(r"[^A-Za-z0-9_-]", "-", f"{f.stem}_{name}")[:64]
                if key in streams:
                    raise LoaderError(f"{folder}: two files give a stream named {key!r} ({rel})")
                streams[key] = Stream(key, s.modality, s.time_ns, s.data, s.channels, s.units, s.rate_hz,
                                      {**s.meta, "source_file": rel})
            if rec.events.height:
                events.append(rec.events)
            meta["source_files"].append(rel)
            for key in ("utc_anchor", "utc_anchor_note"):
                if key in rec.meta and key not in meta:
                    meta[key] = rec.meta[key]
            if rec.meta.get("dropped_truncated_lines"):
                meta.setdefault("dropped_truncated_lines", {})[rel] = rec.meta["dropped_truncated_lines"]
    if skipped:
        meta["skipped_files"] = skipped
    try:
        return Recording(user_id, session_id or default_session_id(folder), streams,
                         events=pl.concat(events) if events else None, meta=meta)
    except ValidationError as exc:
        raise LoaderError(f"{folder}: {exc}") from exc
