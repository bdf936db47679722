"""Pupil Labs recordings -> Recording: Neon native folders, Neon (and Invisible) Cloud CSV exports, Pupil
Core Player exports.

Readers:

* :func:`read_pupil_neon`: a Neon native recording folder as the Companion app writes it: ``<sensor>
  ps<N>.raw`` + ``<sensor> ps<N>.time`` (a space in the name; parts ``ps1, ps2 ...`` are concatenated in
  part order), ``<sensor>.dtype`` (a numpy dtype descriptor, read with :func:`ast.literal_eval`),
  ``.time`` = little-endian int64 UTC nanoseconds. Gaze (``gaze_200hz`` if present, else ``gaze ps*``;
  float32 x, y px), eye state (pupil diameters, eyeball centres, optical axes, eyelids), IMU, worn,
  blinks, fixations/saccades and ``event.txt``/``event.time``. Videos and ``calibration.bin`` are not read.
* :func:`read_pupil_cloud`: a Pupil Cloud "Timeseries Data" folder (``gaze.csv``, ``3d_eye_states.csv``,
  ``imu.csv``, ``blinks.csv``, ``fixations.csv``, ``saccades.csv``, ``events.csv``; ``timestamp [ns]``
  columns) or one of those files.
* :func:`read_pupil_core`: a Pupil Player raw-data export folder (``gaze_positions.csv``,
  ``pupil_positions.csv``, ``fixations.csv``, ``blinks.csv``, ``annotations.csv``) or one of those files,
  both header generations (``timestamp``/``index``/``id`` before Pupil v1.x-2, ``gaze_timestamp``/
  ``pupil_timestamp``/``world_index``/``eye_id`` after).

No Pupil Labs library is needed: the native files are flat numpy records (``np.frombuffer`` with the
recording's own dtype files, exactly what pupil-labs-neon-recording does) and the exports are CSV (parsed
with polars through :mod:`xrdata.loaders.tabular`).

Conventions:

* Clocks: Neon times are UTC nanoseconds, so the session clock is Unix time (``utc_anchor`` =
  1970-01-01T00:00:00+00:00) and timestamps are kept exactly. Pupil Core times are "pupil time" seconds
  (float, arbitrary epoch): ``np.round(t * 1e9)``; the UTC anchor comes from ``info.player.json``
  (``start_time_system_s - start_time_synced_s``) or the older ``info.csv`` when found in the folder or up to
  two parents (``<recording>/exports/<n>/``).
* Scene camera points: ``norm_x = x_px / width``, ``norm_y = y_px / height`` (top-left origin; Neon's
  scene camera is 1600 x 1200 px, option ``scene_resolution``; Pupil Invisible is 1088 x 1080). Pupil
  Core's ``norm_pos`` has a bottom-left origin: ``norm_y = 1 - norm_pos_y``. Pixel values are recoverable
  (``x_px = norm_x * width``); the resolution is in the stream meta.
* 3D eye data (Neon eye state, Core 3D gaze) are in the scene camera frame (OpenCV: +X right, +Y down, +Z
  forward, mm): converted to OpenXR axes with ``(x, -y, -z)`` and to metres; ``reference_space`` names the
  scene camera (``neon_scene_camera`` / ``pupil_world_camera``). Core eye0 is the right eye, eye1 the left.
  Neon Cloud's ``azimuth/elevation [deg]`` give ``combined_dir`` (Pupil Labs' spherical convention: 0/0 =
  the camera's optical axis, positive azimuth right, positive elevation up).
* IMU (Neon): gyro deg/s -> rad/s, acceleration g -> m/s^2 (x 9.80665), quaternion (w, x, y, z) of the
  IMU in a world frame (+Z up, +Y magnetic north). IMU axes (+X right, +Y forward, +Z up when worn) ->
  OpenXR (+X right, +Y up, -Z forward): ``(x, y, z) -> (x, z, -y)`` for vectors, and the same axis change on
  both sides of the orientation (quaternion vector part ``(x, z, -y)``), so ``head_q*`` is the module's
  orientation in an OpenXR-axis world whose -Z is magnetic north (``reference_space = "neon_imu_world"``).
* Pupil diameters in mm. Blinks, fixations and saccades become events with durations (label ``blink``,
  ``fixation``, ``saccade``; the value is a JSON object with the positions and amplitudes; a native fixation's
  ``mean_gaze_px`` gets info.json's ``gaze_offset`` added as pupil-labs-neon-recording does); Neon/Cloud
  user events become ``event`` rows whose value is the event name; Core annotations ``annotation`` rows.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xrdata.errors import LoaderError, ValidationError, require
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.loaders.tabular import (
    TextTable,
    finite_or_nan,
    header_columns,
    numeric_column,
    read_text_table,
    sort_by_time,
    time_column_ns,
)
from xrdata.model import EVENTS_SCHEMA, Recording, Stream

__all__ = ["read_pupil_cloud", "read_pupil_core", "read_pupil_neon"]

EPOCH = "1970-01-01T00:00:00+00:00"
STANDARD_GRAVITY = 9.80665
NEON_SCENE_RESOLUTION = (1600, 1200)

_SCENE_NOTE = "scene camera frame (OpenCV: +X right, +Y down, +Z forward) -> OpenXR axes: (x, y, z) -> (x, -y, -z)"
_IMU_NOTE = (
    "Neon IMU axes (+X right, +Y forward, +Z up) -> OpenXR (+X right, +Y up, -Z forward): (x, y, z) -> (x, z, -y); "
    "quaternion (w, x, y, z) -> (w, x, z, -y), world -Z = magnetic north"
)
_EYE_STATE_CHANNELS = [
    "left_pupil_diameter", "right_pupil_diameter",
    *[f"{side}_{kind}_{a}" for side in ("left", "right") for kind in ("origin", "dir") for a in "xyz"],
]
_EYE_STATE_UNITS = ["mm", "mm", *(["m"] * 3 + ["1"] * 3) * 2]
_IMU_CHANNELS = [
    "accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z", "head_qx", "head_qy", "head_qz", "head_qw",
]
_IMU_UNITS = ["m/s^2"] * 3 + ["rad/s"] * 3 + ["1"] * 4


def _events_frame(rows: list[tuple[int, int, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=EVENTS_SCHEMA, orient="row")


def _json_value(**fields: Any) -> str:
    """A compact JSON event value; None and NaN fields are left out."""
    clean = {}
    for k, v in fields.items():
        if isinstance(v, list | tuple):
            v = [None if isinstance(x, float) and math.isnan(x) else x for x in v]
            if all(x is None for x in v):
                continue
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        clean[k] = v
    return json.dumps(clean, separators=(",", ":"), sort_keys=True)


def _scene_to_openxr(v: np.ndarray) -> np.ndarray:
    """(..., 3) scene-camera (OpenCV) vectors -> OpenXR axes: (x, -y, -z)."""
    out: np.ndarray = v * np.array([1.0, -1.0, -1.0])
    return out


def _imu_vectors(v: np.ndarray) -> np.ndarray:
    """(..., 3) Neon IMU-axis vectors -> OpenXR axes: (x, z, -y)."""
    return np.stack([v[..., 0], v[..., 2], -v[..., 1]], axis=-1)


def _imu_quaternion(wxyz: np.ndarray) -> np.ndarray:
    """(..., 4) IMU quaternions (w, x, y, z) -> OpenXR-axis (x, y, z, w)."""
    w, x, y, z = np.moveaxis(wxyz, -1, 0)
    return np.stack([x, z, -y, w], axis=-1)


def _spherical_dir(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Pupil Labs azimuth/elevation (deg) -> (N, 3) unit directions in OpenXR axes of the scene camera.

    Pupil Labs' convention (alpha-lab "IMU transformations", spherical_to_cartesian_scene): in the OpenCV
    scene frame the direction is (sin e' cos a', cos e', sin e' sin a') with e' = e + 90 deg and
    a' = 90 deg - a, i.e. (cos e sin a, -sin e, cos e cos a).
    """
    a = np.deg2rad(azimuth_deg)
    e = np.deg2rad(elevation_deg)
    opencv = np.stack([np.cos(e) * np.sin(a), -np.sin(e), np.cos(e) * np.cos(a)], axis=-1)
    return _scene_to_openxr(opencv)


def _make_stream(path: Path, *args: Any, **kwargs: Any) -> Stream:
    try:
        return Stream(*args, **kwargs)
    except ValidationError as exc:
        raise LoaderError(f"{path}: {exc}") from exc


def _make_recording(
    path: Path, streams: Sequence[Stream], events: list[tuple[int, int, str, str]], user_id: str,
    session_id: str | None, meta: dict[str, Any],
) -> Recording:
    try:
        return Recording(user_id, session_id or default_session_id(path), list(streams),
                         events=_events_frame(events), meta=meta)
    except ValidationError as exc:
        raise LoaderError(f"{path}: {exc}") from exc


def _check_increasing(path: Path, t: np.ndarray, what: str) -> None:
    if t.size > 1:
        back = np.flatnonzero(np.diff(t) < 0)
        if back.size:
            i = int(back[0])
            raise LoaderError(
                f"{path}: {what} timestamps go back in time at sample {i + 1} ({t[i]} -> {t[i + 1]} ns); the file "
                "is corrupt"
            )


# ============================================================================================ Neon native

_FALLBACK_DTYPES: dict[str, list[tuple[str, str]]] = {
    "gaze": [("x", "<f4"), ("y", "<f4")],
    "worn": [("worn", "u1")],
    "eye_state": [
        (f"{n}", "<f4") for side in ("left", "right") for n in (
            f"pupil_diameter_{side}_mm", f"eyeball_center_{side}_x", f"eyeball_center_{side}_y",
            f"eyeball_center_{side}_z", f"optical_axis_{side}_x", f"optical_axis_{side}_y", f"optical_axis_{side}_z",
        )
    ],
    "blinks": [("start_timestamp_ns", "<i8"), ("end_timestamp_ns", "<i8")],
    "fixations": [
        ("event_type", "<i4"), ("start_timestamp_ns", "<i8"), ("end_timestamp_ns", "<i8"),
        ("start_gaze_x", "<f4"), ("start_gaze_y", "<f4"), ("end_gaze_x", "<f4"), ("end_gaze_y", "<f4"),
        ("mean_gaze_x", "<f4"), ("mean_gaze_y", "<f4"), ("amplitude_pixels", "<f4"),
        ("amplitude_angle_deg", "<f4"), ("mean_velocity", "<f4"), ("max_velocity", "<f4"),
    ],
    "imu": [(n, "<f4") for n in ("gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z", "quaternion_w",
                                 "quaternion_x", "quaternion_y", "quaternion_z")],
}
_DTYPE_KINDS = "iuf"


def _parts(folder: Path, sensor: str, time_of: str | None = None) -> list[tuple[Path, Path]]:
    """The ``<sensor> ps<N>.raw`` / ``.time`` pairs in part order (N as a number: ps2 before ps10).

    ``time_of``: the sensor whose ``ps<N>.time`` to use when ``<sensor> ps<N>.time`` is absent (the
    real-time ``worn`` values are written one per real-time gaze sample, without their own times).
    """
    pattern = re.compile(rf"{re.escape(sensor)} ps(\d+)\.raw")
    found = []
    for f in folder.iterdir():
        m = pattern.fullmatch(f.name)
        if m:
            time = f.with_name(f"{sensor} ps{m.group(1)}.time")
            if not time.is_file() and time_of is not None:
                time = f.with_name(f"{time_of} ps{m.group(1)}.time")
            found.append((int(m.group(1)), f, time))
    return [(raw, time) for _, raw, time in sorted(found)]


def _dtype(folder: Path, sensor: str) -> tuple[np.dtype[Any], str]:
    """The record dtype of a sensor from ``<sensor>.dtype``, else the documented fallback."""
    f = folder / f"{sensor}.dtype"
    if not f.is_file():
        if sensor not in _FALLBACK_DTYPES:
            raise LoaderError(f"{f}: missing; cannot tell the record layout of '{sensor}'")
        return np.dtype(_FALLBACK_DTYPES[sensor]), "fallback (no .dtype file)"
    try:
        spec = ast.literal_eval(f.read_text(encoding="utf-8", errors="replace"))
        if not isinstance(spec, list) or not spec or not all(
            isinstance(e, tuple) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in spec
        ):
            raise ValueError("expected a list of (name, type) pairs")
        dtype = np.dtype(spec)
        fields: dict[str, Any] = dict(dtype.fields or {})
        if any(fields[n][0].kind not in _DTYPE_KINDS or fields[n][0].shape for n in dtype.names or ()):
            raise ValueError("only numeric scalar fields are expected")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise LoaderError(f"{f}: not a numpy dtype descriptor: {exc}") from exc
    return dtype, f.name


def _read_pairs(
    pairs: Sequence[tuple[Path, Path]], dtype: np.dtype[Any], notes: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate raw records and their int64 timestamps; unequal counts are trimmed and noted."""
    datas, times = [], []
    for raw, time in pairs:
        if not time.is_file():
            raise LoaderError(f"{time}: missing: every '{raw.name}' needs its timestamps file")
        rb, tb = raw.read_bytes(), time.read_bytes()
        n_raw, n_time = len(rb) // dtype.itemsize, len(tb) // 8
        n = min(n_raw, n_time)
        if n_raw != n_time or len(rb) % dtype.itemsize or len(tb) % 8:
            notes.setdefault("trimmed", []).append(
                {"file": raw.name, "records": n_raw, "timestamps": n_time, "kept": n,
                 "partial_bytes": len(rb) % dtype.itemsize + len(tb) % 8}
            )
        datas.append(np.frombuffer(rb, dtype=dtype, count=n))
        times.append(np.frombuffer(tb, dtype="<i8", count=n).astype(np.int64))
    if not datas:
        return np.zeros(0, dtype=dtype), np.zeros(0, dtype=np.int64)
    return np.concatenate(datas), np.concatenate(times)


def _sensor(
    folder: Path, sensor: str, files: list[str], *, single: tuple[str, str] | None = None, time_of: str | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """Records, timestamps and notes of one sensor, or None if the recording lacks it.

    ``single``: a (raw, time) file pair that replaces the ``ps<N>`` parts when both exist (``gaze_200hz``).
    """
    pairs: list[tuple[Path, Path]]
    if single and (folder / single[0]).is_file() and (folder / single[1]).is_file():
        pairs = [(folder / single[0], folder / single[1])]
    else:
        pairs = _parts(folder, sensor, time_of)
    if not pairs:
        return None
    dtype, dtype_source = _dtype(folder, sensor)
    notes: dict[str, Any] = {"dtype": dtype_source}
    data, t = _read_pairs(pairs, dtype, notes)
    for raw, time in pairs:
        files += [raw.name, time.name]
    notes["source_files"] = [p.name for pair in pairs for p in pair]
    _check_increasing(pairs[0][1], t, sensor)
    return data, t, notes


def _field(data: np.ndarray, *names: str) -> np.ndarray:
    """(N, len(names)) float64 of structured fields (a missing field is NaN)."""
    fields = data.dtype.names or ()
    cols = [data[n].astype(np.float64) if n in fields else np.full(data.shape[0], np.nan) for n in names]
    return np.stack(cols, axis=-1) if cols else np.zeros((data.shape[0], 0))


def _eye_state_block(
    pupil_l: np.ndarray, pupil_r: np.ndarray, centres: np.ndarray, axes: np.ndarray
) -> np.ndarray:
    """(N, 14) eye-state channels (``_EYE_STATE_CHANNELS``) from mm pupils, (N, 6) mm centres (left xyz,
    right xyz) and (N, 6) optical axes, scene-camera frame."""
    left_o = _scene_to_openxr(centres[:, :3]) / 1000.0
    right_o = _scene_to_openxr(centres[:, 3:]) / 1000.0
    return np.concatenate(
        [pupil_l[:, None], pupil_r[:, None], left_o, _scene_to_openxr(axes[:, :3]), right_o,
         _scene_to_openxr(axes[:, 3:])], axis=-1,
    )


_EYELID_FIELDS = (
    "eyelid_angle_top_left", "eyelid_angle_bottom_left", "eyelid_aperture_left_mm", "eyelid_angle_top_right",
    "eyelid_angle_bottom_right", "eyelid_aperture_right_mm",
)
_EYELID_CHANNELS = (
    "left_eyelid_angle_top", "left_eyelid_angle_bottom", "left_eyelid_aperture", "right_eyelid_angle_top",
    "right_eyelid_angle_bottom", "right_eyelid_aperture",
)
_EYELID_UNITS = ("rad", "rad", "mm", "rad", "rad", "mm")


# ---------------------------------------------------------------------------------------------- protobuf

# imu.proto as written by the Neon Companion app (used when a recording lacks its own copy).
_IMU_PROTO = """
syntax = "proto3";
package imuproto;
message AccelData { float x = 1; float y = 2; float z = 3; int32 reserved = 4; }
message GyroData { float x = 1; float y = 2; float z = 3; int32 reserved = 4; }
message QuaternionData { float w = 1; float x = 2; float y = 3; float z = 4; float reserved = 5; }
message ImuPacket {
  uint64 tsNs = 1; AccelData accelData = 2; GyroData gyroData = 3; QuaternionData quaternionData = 4;
}
"""
_PROTO_SCALARS = {
    "double": 1, "float": 2, "int64": 3, "uint64": 4, "int32": 5, "fixed64": 6, "fixed32": 7, "bool": 8,
    "string": 9, "bytes": 12, "uint32": 13, "sfixed32": 15, "sfixed64": 16, "sint32": 17, "sint64": 18,
}


def _imu_packet_class(proto_text: str, where: Path) -> Any:
    """The ImuPacket message class built from the recording's ``imu.proto`` at run time.

    protobuf's Python runtime cannot compile .proto text (that is protoc's job), so the flat proto3 subset
    the Companion app writes (messages of scalar/message fields) is turned into a FileDescriptorProto here;
    decoding itself is protobuf's.
    """
    require("google.protobuf", "loaders")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", proto_text, flags=re.S)
    package = (re.search(r"\bpackage\s+([\w.]+)\s*;", text) or [None, "imuproto"])[1]
    fdp = descriptor_pb2.FileDescriptorProto(name=f"xrdata_{package}.proto", package=package, syntax="proto3")
    messages = re.findall(r"\bmessage\s+(\w+)\s*\{([^{}]*)\}", text)
    names = {m for m, _ in messages}
    for mname, body in messages:
        msg = fdp.message_type.add(name=mname)
        for rep, ftype, fname, num in re.findall(r"(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;", body):
            fld = msg.field.add(name=fname, number=int(num))
            fld.label = 3 if rep else 1
            if ftype in _PROTO_SCALARS:
                fld.type = _PROTO_SCALARS[ftype]
            elif ftype in names:
                fld.type, fld.type_name = 11, f".{package}.{ftype}"
            else:
                raise LoaderError(f"{where}: unsupported field type {ftype!r} in imu.proto")
    if "ImuPacket" not in names:
        raise LoaderError(f"{where}: imu.proto defines no ImuPacket message")
    pool = descriptor_pool.DescriptorPool()
    try:
        pool.Add(fdp)
        desc = pool.FindMessageTypeByName(f"{package}.ImuPacket")
    except Exception as exc:  # protobuf raises TypeError/KeyError for inconsistent descriptors
        raise LoaderError(f"{where}: imu.proto does not describe a usable ImuPacket: {exc}") from exc
    get_class = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22; older: the factory
    return get_class(desc) if get_class is not None else message_factory.MessageFactory(pool).GetPrototype(desc)


def _decode_imu_packets(raw: bytes, packet_class: Any, where: Path, notes: dict[str, Any]) -> np.ndarray:
    """(N, 11) float64: tsNs, accel xyz (g), gyro xyz (deg/s), quaternion wxyz from uint16-length-prefixed
    ImuPacket messages (the framing pupil-labs-neon-recording reads); a cut-off last packet is dropped."""
    from google.protobuf.message import DecodeError

    fields = packet_class.DESCRIPTOR.fields_by_number
    if not {1, 2, 3, 4} <= set(fields):
        raise LoaderError(f"{where}: ImuPacket lacks fields 1-4 (tsNs, accel, gyro, quaternion)")

    def sub(msg: Any, number: int) -> Any:
        return getattr(msg, fields[number].name)

    rows: list[tuple[float, ...]] = []
    pos = 0
    while pos + 2 <= len(raw):
        size = int.from_bytes(raw[pos : pos + 2], "little")
        if pos + 2 + size > len(raw):
            notes["dropped_partial_packets"] = 1
            break
        packet = packet_class()
        try:
            packet.ParseFromString(raw[pos + 2 : pos + 2 + size])
        except DecodeError as exc:
            raise LoaderError(f"{where}: IMU packet {len(rows)} at byte {pos} does not decode: {exc}") from exc
        accel, gyro, quat = sub(packet, 2), sub(packet, 3), sub(packet, 4)
        qf = quat.DESCRIPTOR.fields_by_number
        rows.append(
            (float(sub(packet, 1)), accel.x, accel.y, accel.z, gyro.x, gyro.y, gyro.z,
             *(getattr(quat, qf[k].name) for k in (1, 2, 3, 4)))
        )
        pos += 2 + size
    return np.array(rows, dtype=np.float64).reshape(len(rows), 11)


def _neon_imu(folder: Path, files: list[str], source: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """(t, (N, 10) raw [gyro deg/s xyz, accel g xyz, quaternion wxyz], notes) from the flat records
    (``imu.dtype``) or the protobuf ``extimu`` packets."""
    use_raw = source in ("auto", "raw") and bool(_parts(folder, "imu"))
    if source == "raw" and not use_raw:
        raise LoaderError(f"{folder}: no 'imu ps*.raw' files (imu_source='raw')")
    if use_raw:
        got = _sensor(folder, "imu", files)
        assert got is not None
        data, t, notes = got
        if "timestamp_ns" in (data.dtype.names or ()):
            t = data["timestamp_ns"].astype(np.int64)  # pupil-labs-neon-recording uses the record's own time
            _check_increasing(folder / "imu ps1.raw", t, "imu")
        raw = _field(data, "gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z", "quaternion_w",
                     "quaternion_x", "quaternion_y", "quaternion_z")
        notes["decoder"] = "flat records (imu.dtype)"
        return t, raw, notes
    pairs = _parts(folder, "extimu")
    if not pairs:
        if source == "protobuf":
            raise LoaderError(f"{folder}: no 'extimu ps*.raw' files (imu_source='protobuf')")
        return None
    proto = folder / "imu.proto"
    packet_class = _imu_packet_class(
        proto.read_text(encoding="utf-8", errors="replace") if proto.is_file() else _IMU_PROTO, proto
    )
    notes = {"decoder": f"protobuf ImuPacket ({'imu.proto' if proto.is_file() else 'built-in imu.proto'})"}
    ts, rows = [], []
    for raw_f, time_f in pairs:
        if not time_f.is_file():
            raise LoaderError(f"{time_f}: missing: every '{raw_f.name}' needs its timestamps file")
        packets = _decode_imu_packets(raw_f.read_bytes(), packet_class, raw_f, notes)
        t = np.frombuffer(time_f.read_bytes(), dtype="<i8", count=time_f.stat().st_size // 8).astype(np.int64)
        n = min(len(t), len(packets))
        if n != len(t) or n != len(packets):
            notes.setdefault("trimmed", []).append({"file": raw_f.name, "records": len(packets), "timestamps": len(t)})
        ts.append(t[:n])
        rows.append(packets[:n])
        files += [raw_f.name, time_f.name]
    if proto.is_file():
        files.append(proto.name)
    t = np.concatenate(ts)
    _check_increasing(pairs[0][1], t, "extimu")
    packets = np.concatenate(rows)
    # packet columns: ts, accel xyz, gyro xyz, quaternion wxyz -> gyro, accel, quaternion
    return t, np.concatenate([packets[:, 4:7], packets[:, 1:4], packets[:, 7:11]], axis=-1), notes


def _imu_stream(path: Path, t: np.ndarray, raw: np.ndarray, meta: dict[str, Any]) -> Stream:
    """motion stream from (N, 10) gyro deg/s, accel g, quaternion wxyz in Neon IMU axes."""
    gyro = _imu_vectors(np.deg2rad(raw[:, 0:3]))
    accel = _imu_vectors(raw[:, 3:6] * STANDARD_GRAVITY)
    quat = _imu_quaternion(raw[:, 6:10])
    data = np.concatenate([accel, gyro, quat], axis=-1)
    meta = {
        **meta, "reference_space": "neon_imu_world", "source_frame": "Neon IMU", "frame_conversion": _IMU_NOTE,
        "source_units": {"gyro": "deg/s", "accel": "g", "quaternion": "w, x, y, z"},
    }
    return _make_stream(path, "imu", "motion", t, finite_or_nan(data, meta), _IMU_CHANNELS, _IMU_UNITS, None, meta)


def _sniff_neon(path: Path) -> bool:
    try:
        return path.is_dir() and (path / "info.json").is_file() and (
            (path / "gaze_200hz.raw").is_file() or any(path.glob("* ps*.raw")) or any(path.glob("*.dtype"))
        )
    except OSError:
        return False


@reader("pupil_neon", (), sniff=_sniff_neon, description="Pupil Labs Neon native recording folder")
def read_pupil_neon(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    scene_resolution: tuple[int, int] = NEON_SCENE_RESOLUTION,
    imu_source: str = "auto",
) -> Recording:
    """Read a Neon native recording folder (``info.json`` + ``<sensor> ps<N>.raw/.time`` files).

    Args:
        scene_resolution: scene camera (width, height) in px for ``norm_x/norm_y`` (Neon: 1600 x 1200).
        imu_source: ``"auto"`` (flat ``imu ps*.raw`` records when present, else the protobuf ``extimu``
            packets), ``"raw"`` or ``"protobuf"``.

    Streams (time_ns = the files' UTC nanoseconds, exact):
        ``gaze`` (gaze: norm_x, norm_y), ``eye_state`` (gaze: left/right_pupil_diameter mm, left/right
        origin m and dir in OpenXR axes of the scene camera), ``eyelid`` (other: angles rad, apertures mm),
        ``imu`` (motion: accel m/s^2, gyro rad/s, head quaternion), ``worn`` (other, uint8 as recorded:
        255 = worn). Events: ``event`` (value = name from event.txt), ``blink``, ``fixation``, ``saccade``.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise LoaderError(f"{folder}: a Neon native recording is a folder; pass the folder")
    info_file = folder / "info.json"
    if not info_file.is_file():
        raise LoaderError(f"{folder}: no info.json: not a Neon native recording folder")
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{info_file}: not valid JSON: {exc}") from exc
    if imu_source not in ("auto", "raw", "protobuf"):
        raise LoaderError(f"{folder}: imu_source must be 'auto', 'raw' or 'protobuf', got {imu_source!r}")
    width, height = scene_resolution
    files: list[str] = [info_file.name]
    streams: list[Stream] = []
    rate = info.get("gaze_frequency")
    rate = (
        float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) and 0 < rate < math.inf else None
    )

    gaze = _sensor(folder, "gaze", files, single=("gaze_200hz.raw", "gaze_200hz.time"))
    if gaze is not None:
        data, t, notes = gaze
        xy = _field(data, "x", "y")
        norm = xy / np.array([float(width), float(height)])
        meta = {**notes, "scene_resolution": [width, height], "source_units": "px (x right, y down, top-left origin)",
                "conversion": "norm_x = x_px / width, norm_y = y_px / height"}
        streams.append(_make_stream(folder, "gaze", "gaze", t, finite_or_nan(norm, meta), ["norm_x", "norm_y"],
                                    ["1", "1"], rate, meta))

    eye = _sensor(folder, "eye_state", files)
    if eye is not None:
        data, t, notes = eye
        block = _eye_state_block(
            _field(data, "pupil_diameter_left_mm")[:, 0], _field(data, "pupil_diameter_right_mm")[:, 0],
            _field(data, *[f"eyeball_center_{s}_{a}" for s in ("left", "right") for a in "xyz"]),
            _field(data, *[f"optical_axis_{s}_{a}" for s in ("left", "right") for a in "xyz"]),
        )
        meta = {**notes, "reference_space": "neon_scene_camera", "source_frame": "Neon scene camera",
                "frame_conversion": _SCENE_NOTE + "; eyeball centres mm -> m"}
        streams.append(_make_stream(folder, "eye_state", "gaze", t, finite_or_nan(block, meta), _EYE_STATE_CHANNELS,
                                    _EYE_STATE_UNITS, rate, meta))
        if set(_EYELID_FIELDS) <= set(data.dtype.names or ()):
            lids = _field(data, *_EYELID_FIELDS)
            lmeta = {"source_files": notes["source_files"], "source_fields": list(_EYELID_FIELDS)}
            streams.append(_make_stream(folder, "eyelid", "other", t, finite_or_nan(lids, lmeta),
                                        list(_EYELID_CHANNELS), list(_EYELID_UNITS), rate, lmeta))

    imu = _neon_imu(folder, files, imu_source)
    if imu is not None:
        t, raw, notes = imu
        streams.append(_imu_stream(folder, t, raw, notes))

    worn = _sensor(folder, "worn", files, single=("worn_200hz.raw", "gaze_200hz.time"), time_of="gaze")
    if worn is not None:
        data, t, notes = worn
        values = data["worn"].astype(np.uint8)[:, None] if "worn" in (data.dtype.names or ()) else None
        if values is not None:
            meta = {**notes, "values": "as recorded: 255 = worn, 0 = not worn"}
            streams.append(_make_stream(folder, "worn", "other", t, values, ["worn"], ["1"], rate, meta))

    events: list[tuple[int, int, str, str]] = []
    blinks = _sensor(folder, "blinks", files)
    if blinks is not None:
        data, _, _ = blinks
        for start, end in zip(data["start_timestamp_ns"].tolist(), data["end_timestamp_ns"].tolist(), strict=True):
            events.append((int(start), _duration(folder, int(start), int(end)), "blink", ""))
    fixations = _sensor(folder, "fixations", files)
    if fixations is not None:
        data, _, _ = fixations
        raw_offset = info.get("gaze_offset")
        offset = (
            (float(raw_offset[0]), float(raw_offset[1]))
            if isinstance(raw_offset, list) and len(raw_offset) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw_offset)
            else (0.0, 0.0)
        )
        events += _neon_fixation_events(folder, data, width, height, offset)
    events += _neon_user_events(folder, files)

    device = {
        "name": "Pupil Labs Neon", **{k: info[k] for k in (
            "module_serial_number", "android_device_model", "app_version", "data_format_version", "pipeline_version",
            "firmware_version", "frame_name", "gaze_mode") if k in info},
    }
    skipped = sorted(
        f.name for f in folder.iterdir() if f.is_file() and f.name not in files and not f.name.endswith(".dtype")
    )
    meta = {
        "device": device, "utc_anchor": EPOCH, "source_files": sorted(set(files)),
        "start_time_ns": info.get("start_time"), "duration_ns": info.get("duration"),
        "recording_id": info.get("recording_id"), "skipped_files": skipped,
        "clock": "UTC nanoseconds (Neon .time files): the session clock is Unix time",
    }
    return _make_recording(folder, streams, events, user_id, session_id, meta)


def _duration(where: Path, start: int, end: int) -> int:
    if end < start:
        raise LoaderError(f"{where}: an event ends ({end}) before it starts ({start}); the file is corrupt")
    return end - start


def _neon_fixation_events(
    where: Path, data: np.ndarray, width: int, height: int, offset: tuple[float, float]
) -> list[tuple[int, int, str, str]]:
    """Fixations (event_type 1) and saccades (0) from the native fixation records.

    The recorded fixation mean gaze lacks the wearer's gaze offset correction: like pupil-labs-neon-recording
    (2.1.6), ``mean_gaze_px`` adds info.json's ``gaze_offset`` as (x + dx, y - dy); the recorded value is kept
    as ``mean_gaze_px_recorded``.
    """
    names = data.dtype.names or ()
    out = []
    kinds = data["event_type"].tolist() if "event_type" in names else [1] * len(data)
    for k, rec in enumerate(data):
        start, end = int(rec["start_timestamp_ns"]), int(rec["end_timestamp_ns"])

        def px(field: str, rec: np.void = rec) -> float:
            return float(rec[field]) if field in names else math.nan

        if kinds[k] == 1:
            label = "fixation"
            value = _json_value(
                start_gaze_px=[px("start_gaze_x"), px("start_gaze_y")],
                end_gaze_px=[px("end_gaze_x"), px("end_gaze_y")],
                mean_gaze_px=[px("mean_gaze_x") + offset[0], px("mean_gaze_y") - offset[1]],
                mean_gaze_px_recorded=[px("mean_gaze_x"), px("mean_gaze_y")],
                mean_gaze_norm=[(px("mean_gaze_x") + offset[0]) / width, (px("mean_gaze_y") - offset[1]) / height],
            )
        elif kinds[k] == 0:
            label = "saccade"
            value = _json_value(
                start_gaze_px=[px("start_gaze_x"), px("start_gaze_y")],
                end_gaze_px=[px("end_gaze_x"), px("end_gaze_y")],
                amplitude_px=px("amplitude_pixels"), amplitude_deg=px("amplitude_angle_deg"),
                mean_velocity_px_s=px("mean_velocity"), max_velocity_px_s=px("max_velocity"),
            )
        else:
            label, value = "eye_movement", _json_value(event_type=int(kinds[k]))
        out.append((start, _duration(where, start, end), label, value))
    return out


def _neon_user_events(folder: Path, files: list[str]) -> list[tuple[int, int, str, str]]:
    txt, tim = folder / "event.txt", folder / "event.time"
    if not (txt.is_file() and tim.is_file()):
        return []
    names = txt.read_bytes().decode("utf-8", errors="replace").rstrip("\n").split("\n")
    if names == [""]:
        names = []
    t = np.frombuffer(tim.read_bytes(), dtype="<i8", count=tim.stat().st_size // 8).astype(np.int64)
    n = min(len(names), len(t))
    files += [txt.name, tim.name]
    return [(int(t[i]), 0, "event", names[i].rstrip("\r")) for i in range(n)]


# ============================================================================================ Neon Cloud

_CLOUD_FILES = ("gaze.csv", "3d_eye_states.csv", "imu.csv", "blinks.csv", "fixations.csv", "saccades.csv", "events.csv")


def _cloud_gaze(table: TextTable, width: int, height: int) -> list[Stream]:
    t = time_column_ns(table, "timestamp [ns]", "ns")
    _check_increasing(table.path, t, "gaze")
    xy = np.stack([numeric_column(table, "gaze x [px]"), numeric_column(table, "gaze y [px]")], axis=-1)
    data = [xy / np.array([float(width), float(height)])]
    names = ["norm_x", "norm_y"]
    meta: dict[str, Any] = {"source_file": table.path.name, "scene_resolution": [width, height],
                            "conversion": "norm_x = gaze x [px] / width, norm_y = gaze y [px] / height"}
    if table.has("azimuth [deg]", "elevation [deg]"):
        direction = _spherical_dir(numeric_column(table, "azimuth [deg]"), numeric_column(table, "elevation [deg]"))
        data += [np.where(np.isnan(direction), np.nan, 0.0), direction]  # no direction, no ray
        names += [f"combined_{k}_{a}" for k in ("origin", "dir") for a in "xyz"]
        meta.update(reference_space="neon_scene_camera", frame_conversion=_SCENE_NOTE,
                    direction="from azimuth/elevation [deg] (Pupil Labs spherical convention)")
    block = np.concatenate(data, axis=-1)
    units = ["m" if "origin" in n else "1" for n in names]
    streams = [_make_stream(table.path, "gaze", "gaze", t, finite_or_nan(block, meta), names, units, None, meta)]
    if table.has("worn"):
        worn = numeric_column(table, "worn")[:, None]
        streams.append(_make_stream(table.path, "worn", "other", t, worn, ["worn"], ["1"], None,
                                    {"source_file": table.path.name, "values": "1 = worn, 0 = not worn"}))
    return streams


def _cloud_eye_states(table: TextTable) -> list[Stream]:
    t = time_column_ns(table, "timestamp [ns]", "ns")
    _check_increasing(table.path, t, "3d eye state")
    cols = table.columns

    def col(name: str) -> np.ndarray:
        return numeric_column(table, name) if name in cols else np.full(t.shape, np.nan)

    if "pupil diameter left [mm]" not in cols and "pupil diameter [mm]" not in cols:
        raise LoaderError(f"{table.path}: no pupil diameter columns: not a Neon 3d_eye_states.csv")
    centres = np.stack([col(f"eyeball center {s} {a} [mm]") for s in ("left", "right") for a in "xyz"], axis=-1)
    axes = np.stack([col(f"optical axis {s} {a}") for s in ("left", "right") for a in "xyz"], axis=-1)
    meta: dict[str, Any] = {"source_file": table.path.name, "reference_space": "neon_scene_camera",
                            "frame_conversion": _SCENE_NOTE + "; eyeball centres mm -> m"}
    if "pupil diameter left [mm]" in cols:
        left, right = col("pupil diameter left [mm]"), col("pupil diameter right [mm]")
    else:  # the first Neon exports had one binocular diameter; it is not assigned to an eye
        left = right = np.full(t.shape, np.nan)
        meta["pupil_diameter_mm_binocular"] = "kept in the 'pupil_diameter' stream"
    block = _eye_state_block(left, right, centres, axes)
    streams = [_make_stream(table.path, "eye_state", "gaze", t, finite_or_nan(block, meta), _EYE_STATE_CHANNELS,
                            _EYE_STATE_UNITS, None, meta)]
    if "pupil diameter [mm]" in cols:
        streams.append(_make_stream(table.path, "pupil_diameter", "other", t, col("pupil diameter [mm]")[:, None],
                                    ["pupil_diameter"], ["mm"], None, {"source_file": table.path.name}))
    lid_cols = ["eyelid angle top left [rad]", "eyelid angle bottom left [rad]", "eyelid aperture left [mm]",
                "eyelid angle top right [rad]", "eyelid angle bottom right [rad]", "eyelid aperture right [mm]"]
    if table.has(*lid_cols):
        lids = np.stack([col(c) for c in lid_cols], axis=-1)
        lmeta = {"source_file": table.path.name, "source_columns": lid_cols}
        streams.append(_make_stream(table.path, "eyelid", "other", t, finite_or_nan(lids, lmeta),
                                    list(_EYELID_CHANNELS), list(_EYELID_UNITS), None, lmeta))
    return streams


def _cloud_imu(table: TextTable) -> list[Stream]:
    t = time_column_ns(table, "timestamp [ns]", "ns")
    _check_increasing(table.path, t, "imu")
    gyro = [f"gyro {a} [deg/s]" for a in "xyz"]
    accel = [f"acceleration {a} [g]" for a in "xyz"]
    if not table.has(*gyro, *accel):
        raise LoaderError(f"{table.path}: needs {gyro + accel}: not a Neon imu.csv")
    quat = [f"quaternion {a}" for a in "wxyz"]
    q = (np.stack([numeric_column(table, c) for c in quat], axis=-1) if table.has(*quat)
         else np.full((t.shape[0], 4), np.nan))
    raw = np.concatenate([np.stack([numeric_column(table, c) for c in gyro + accel], axis=-1), q], axis=-1)
    streams = [_imu_stream(table.path, t, raw, {"source_file": table.path.name})]
    euler = ["roll [deg]", "pitch [deg]", "yaw [deg]"]
    if table.has(*euler):
        angles = np.deg2rad(np.stack([numeric_column(table, c) for c in euler], axis=-1))
        emeta = {"source_file": table.path.name, "note": "Pupil Labs Euler angles of the IMU (deg -> rad), as defined "
                 "by Pupil Labs (roll about +Y north, pitch about +X, yaw about +Z up)"}
        streams.append(_make_stream(table.path, "imu_euler", "other", t, finite_or_nan(angles, emeta),
                                    ["roll", "pitch", "yaw"], ["rad"] * 3, None, emeta))
    return streams


def _span_events(table: TextTable, label: str, id_col: str, extra: dict[str, str]) -> list[tuple[int, int, str, str]]:
    start = time_column_ns(table, "start timestamp [ns]", "ns")
    end = time_column_ns(table, "end timestamp [ns]", "ns")
    values = {k: numeric_column(table, c) for k, c in extra.items() if c in table.frame.columns}
    ids = table.frame[id_col].fill_null("").to_list() if id_col in table.frame.columns else [""] * len(start)
    out = []
    for i in range(len(start)):
        fields: dict[str, Any] = {"id": ids[i]} if ids[i] else {}
        fields.update({k: float(v[i]) for k, v in values.items()})
        out.append((int(start[i]), _duration(table.path, int(start[i]), int(end[i])), label, _json_value(**fields)))
    return out


def _cloud_events(table: TextTable) -> list[tuple[int, int, str, str]]:
    t = time_column_ns(table, "timestamp [ns]", "ns")
    if "name" not in table.frame.columns:
        raise LoaderError(f"{table.path}: no 'name' column: not a Neon events.csv")
    names = table.frame["name"].fill_null("").to_list()
    return [(int(t[i]), 0, "event", names[i]) for i in range(len(t))]


def _cloud_kind(cols: list[str]) -> str | None:
    s = set(cols)
    if {"timestamp [ns]", "gaze x [px]", "gaze y [px]"} <= s:
        return "gaze.csv"
    if "timestamp [ns]" in s and ("pupil diameter left [mm]" in s or "pupil diameter [mm]" in s):
        return "3d_eye_states.csv"
    if {"timestamp [ns]", "gyro x [deg/s]"} <= s:
        return "imu.csv"
    if {"start timestamp [ns]", "end timestamp [ns]"} <= s:
        if "blink id" in s:
            return "blinks.csv"
        if "fixation id" in s:
            return "fixations.csv"
        if "saccade id" in s:
            return "saccades.csv"
    if {"timestamp [ns]", "name"} <= s:
        return "events.csv"
    return None


def _sniff_cloud(path: Path) -> bool:
    try:
        if path.is_dir():
            return any(_cloud_kind(header_columns(path / f) or []) for f in _CLOUD_FILES if (path / f).is_file())
        return path.is_file() and _cloud_kind(header_columns(path) or []) is not None
    except OSError:
        return False


@reader("pupil_cloud", (".csv",), sniff=_sniff_cloud, description="Pupil Cloud (Neon/Invisible) timeseries CSV export")
def read_pupil_cloud(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    scene_resolution: tuple[int, int] = NEON_SCENE_RESOLUTION,
) -> Recording:
    """Read a Pupil Cloud "Timeseries Data" export folder of one recording, or one of its CSV files.

    Args:
        scene_resolution: scene camera (width, height) px for norm_x/norm_y (Neon 1600 x 1200; Pupil
            Invisible 1088 x 1080).

    Streams: ``gaze`` (norm_x, norm_y and, with azimuth/elevation, combined_origin (0) / combined_dir in the
    scene camera frame), ``worn`` (other, 0/1), ``eye_state`` (gaze, as in :func:`read_pupil_neon`),
    ``eyelid`` (other), ``imu`` (motion) and ``imu_euler`` (other, rad). Events: ``blink``, ``fixation``,
    ``saccade`` (with durations) and ``event`` (value = the event name). Times: ``timestamp [ns]`` (UTC ns,
    exact); ``utc_anchor`` is the Unix epoch.
    """
    p = Path(path)
    if p.is_dir():
        files = [p / f for f in _CLOUD_FILES if (p / f).is_file()]
        if not files:
            raise LoaderError(f"{p}: no Pupil Cloud CSV ({', '.join(_CLOUD_FILES)}) in the folder")
        folder = p
    else:
        files, folder = [p], p.parent
    streams: list[Stream] = []
    events: list[tuple[int, int, str, str]] = []
    meta: dict[str, Any] = {"utc_anchor": EPOCH, "source_files": []}
    recordings: set[str] = set()
    width, height = scene_resolution
    for f in files:
        table = read_text_table(f)
        kind = _cloud_kind(table.columns)
        if kind is None:
            raise LoaderError(f"{f}: not a known Pupil Cloud CSV layout (columns {table.columns[:8]})")
        if "recording id" in table.frame.columns:
            recordings.update(x for x in table.frame["recording id"].unique().to_list() if x)
        if kind == "gaze.csv":
            streams += _cloud_gaze(table, width, height)
        elif kind == "3d_eye_states.csv":
            streams += _cloud_eye_states(table)
        elif kind == "imu.csv":
            streams += _cloud_imu(table)
        elif kind == "blinks.csv":
            events += _span_events(table, "blink", "blink id", {})
        elif kind == "fixations.csv":
            events += _span_events(table, "fixation", "fixation id", {
                "gaze_x_px": "fixation x [px]", "gaze_y_px": "fixation y [px]", "azimuth_deg": "azimuth [deg]",
                "elevation_deg": "elevation [deg]"})
        elif kind == "saccades.csv":
            events += _span_events(table, "saccade", "saccade id", {
                "amplitude_px": "amplitude [px]", "amplitude_deg": "amplitude [deg]",
                "mean_velocity_px_s": "mean velocity [px/s]", "peak_velocity_px_s": "peak velocity [px/s]"})
        else:
            events += _cloud_events(table)
        meta["source_files"].append(f.name)
        for k, v in table.meta.items():
            meta.setdefault("parse_notes", {}).setdefault(f.name, {})[k] = v
    if len(recordings) > 1:
        raise LoaderError(f"{p}: the export holds {len(recordings)} recordings; read one recording folder at a time")
    info = _json_file(folder / "info.json")
    device: dict[str, Any] = {"name": "Pupil Labs Neon" if scene_resolution == NEON_SCENE_RESOLUTION else "Pupil Labs"}
    if isinstance(info, dict):
        meta["source_files"].append("info.json")
        device.update({k: info[k] for k in ("module_serial_number", "app_version", "data_format_version",
                                            "pipeline_version", "android_device_model") if k in info})
        meta["start_time_ns"] = info.get("start_time")
        meta["recording_id"] = info.get("recording_id")
    elif recordings:
        meta["recording_id"] = next(iter(recordings))
    camera = _json_file(folder / "scene_camera.json")
    if isinstance(camera, dict):
        meta["scene_camera"] = camera
        meta["source_files"].append("scene_camera.json")
    meta["device"] = device
    meta["scene_resolution"] = [width, height]
    return _make_recording(p, streams, events, user_id, session_id, meta)


def _json_file(f: Path) -> Any:
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{f}: not valid JSON: {exc}") from exc


# ============================================================================================ Pupil Core

_CORE_FILES = ("gaze_positions.csv", "pupil_positions.csv", "fixations.csv", "blinks.csv", "annotations.csv")


def _core_kind(cols: list[str]) -> str | None:
    s = set(cols)
    if "norm_pos_x" in s and ("gaze_timestamp" in s or ("timestamp" in s and "base_data" in s and "id" not in s
                                                         and "diameter" not in s)):
        return "gaze_positions.csv"
    if "norm_pos_x" in s and "diameter" in s and ("pupil_timestamp" in s or "timestamp" in s):
        return "pupil_positions.csv"
    if {"start_timestamp", "duration", "dispersion"} <= s:
        return "fixations.csv"
    if {"start_timestamp", "end_timestamp", "filter_response"} <= s:
        return "blinks.csv"
    if {"timestamp", "label"} <= s and "norm_pos_x" not in s:
        return "annotations.csv"
    return None


def _pupil_time(table: TextTable, *candidates: str) -> tuple[np.ndarray, str]:
    col = next((c for c in candidates if c in table.frame.columns), None)
    if col is None:
        raise LoaderError(f"{table.path}: no time column ({' or '.join(candidates)})")
    return time_column_ns(table, col, "s"), col


def _core_gaze(table: TextTable, min_confidence: float | None) -> Stream:
    t, tcol = _pupil_time(table, "gaze_timestamp", "timestamp")
    cols = table.columns
    conf = numeric_column(table, "confidence") if "confidence" in cols else np.full(t.shape, np.nan)
    blocks = [numeric_column(table, "norm_pos_x")[:, None], 1.0 - numeric_column(table, "norm_pos_y")[:, None],
              conf[:, None]]
    names = ["norm_x", "norm_y", "confidence"]
    meta: dict[str, Any] = {
        "source_file": table.path.name, "header_generation": "new" if tcol == "gaze_timestamp" else "old",
        "conversion": "norm_x = norm_pos_x, norm_y = 1 - norm_pos_y (bottom-left -> top-left origin)",
    }
    point = [f"gaze_point_3d_{a}" for a in "xyz"]
    if table.has(*point):
        p = np.stack([numeric_column(table, c) for c in point], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            direction = _scene_to_openxr(p / np.linalg.norm(p, axis=-1, keepdims=True))
        blocks += [np.where(np.isnan(direction), np.nan, 0.0), direction]
        names += [f"combined_{k}_{a}" for k in ("origin", "dir") for a in "xyz"]
        meta.update(reference_space="pupil_world_camera", frame_conversion=_SCENE_NOTE + "; mm -> m",
                    combined="ray from the world camera origin through gaze_point_3d")
    for eye, side in (("0", "right"), ("1", "left")):
        centre, normal = [f"eye_center{eye}_3d_{a}" for a in "xyz"], [f"gaze_normal{eye}_{a}" for a in "xyz"]
        if table.has(*centre, *normal):
            c = _scene_to_openxr(np.stack([numeric_column(table, x) for x in centre], axis=-1)) / 1000.0
            n = _scene_to_openxr(np.stack([numeric_column(table, x) for x in normal], axis=-1))
            blocks += [c, n]
            names += [f"{side}_origin_{a}" for a in "xyz"] + [f"{side}_dir_{a}" for a in "xyz"]
            meta["eyes"] = "eye0 = right eye, eye1 = left eye"
    data = np.concatenate(blocks, axis=-1)
    if min_confidence is not None:
        low = ~(conf >= min_confidence)
        data[low, :] = np.where(np.array(names) == "confidence", data[low, :], np.nan)
        meta["min_confidence"] = min_confidence
    t, data = sort_by_time(t, data, meta)
    units = ["m" if "origin" in n else "1" for n in names]
    return _make_stream(table.path, "gaze", "gaze", t, finite_or_nan(data, meta), names, units, None, meta)


def _core_pupil(table: TextTable) -> Stream:
    t, tcol = _pupil_time(table, "pupil_timestamp", "timestamp")
    eye_col = "eye_id" if "eye_id" in table.frame.columns else "id"
    eye = numeric_column(table, eye_col)
    conf = numeric_column(table, "confidence") if "confidence" in table.frame.columns else np.full(t.shape, np.nan)
    method = table.frame["method"].fill_null("").to_list() if "method" in table.frame.columns else [""] * len(t)
    meta: dict[str, Any] = {"source_file": table.path.name, "header_generation": "new" if tcol == "pupil_timestamp"
                            else "old", "eyes": "eye0 = right eye, eye1 = left eye"}
    d3 = numeric_column(table, "diameter_3d") if "diameter_3d" in table.frame.columns else np.full(t.shape, np.nan)
    is3d = np.array(["3d" in m for m in method], dtype=bool) & ~np.isnan(d3)
    if is3d.any():
        keep, values, unit = is3d, d3, "mm"
        meta["rows"] = "3d detector rows (diameter_3d, mm)"
        names = ["left_pupil_diameter", "right_pupil_diameter", "confidence"]
        modality = "gaze"
    else:
        keep, values, unit = np.ones(t.shape, dtype=bool), numeric_column(table, "diameter"), "px"
        meta["rows"] = "2d detector rows: diameter in eye-image pixels (no 3d model in this export)"
        names = ["left_pupil_diameter_px", "right_pupil_diameter_px", "confidence"]
        modality = "other"
    left = np.where(eye == 1, values, np.nan)
    right = np.where(eye == 0, values, np.nan)
    data = np.stack([left, right, conf], axis=-1)[keep]
    ts, data = sort_by_time(t[keep], data, meta)
    name = "pupil" if modality == "gaze" else "pupil_2d"
    return _make_stream(table.path, name, modality, ts, finite_or_nan(data, meta), names, [unit, unit, "1"], None, meta)


def _core_fixations(table: TextTable, duration_unit: str) -> tuple[list[tuple[int, int, str, str]], str]:
    start = time_column_ns(table, "start_timestamp", "s")
    dur = numeric_column(table, "duration")
    new = "start_frame_index" in table.frame.columns
    unit = duration_unit
    if unit == "auto":
        # Pupil Player >= 1.x exports milliseconds (with start_frame_index); the first fixation detector wrote
        # seconds. Fixations last 0.05-2 s, so a median below 20 can only be seconds.
        finite = dur[np.isfinite(dur)]
        unit = "ms" if new or (finite.size and float(np.median(finite)) >= 20) else "s"
    factor = {"ms": 1e6, "s": 1e9}.get(unit)
    if factor is None:
        raise LoaderError(f"{table.path}: fixation_duration_unit must be 'auto', 'ms' or 's', got {duration_unit!r}")
    cols = table.frame.columns

    def col(name: str) -> np.ndarray:
        return numeric_column(table, name) if name in cols else np.full(start.shape, np.nan)

    nx, ny, disp, conf = col("norm_pos_x"), col("norm_pos_y"), col("dispersion"), col("confidence")
    ids = table.frame["id"].fill_null("").to_list() if "id" in cols else [""] * len(start)
    out = []
    for i in range(len(start)):
        if not math.isfinite(dur[i]) or dur[i] < 0:
            raise LoaderError(f"{table.path}: fixation row {i + 1} has no valid duration ({dur[i]})")
        value = _json_value(id=ids[i] or None, norm=[float(nx[i]), float(1.0 - ny[i])], dispersion_deg=float(disp[i]),
                            confidence=float(conf[i]))
        out.append((int(start[i]), round(float(dur[i]) * factor), "fixation", value))
    return out, unit


def _core_blinks(table: TextTable) -> list[tuple[int, int, str, str]]:
    start = time_column_ns(table, "start_timestamp", "s")
    end = time_column_ns(table, "end_timestamp", "s")
    conf = numeric_column(table, "confidence") if "confidence" in table.frame.columns else np.full(start.shape, np.nan)
    ids = table.frame["id"].fill_null("").to_list() if "id" in table.frame.columns else [""] * len(start)
    return [(int(start[i]), _duration(table.path, int(start[i]), int(end[i])), "blink",
             _json_value(id=ids[i] or None, confidence=float(conf[i]))) for i in range(len(start))]


def _core_annotations(table: TextTable) -> list[tuple[int, int, str, str]]:
    t = time_column_ns(table, "timestamp", "s")
    labels = table.frame["label"].fill_null("").to_list()
    dur = numeric_column(table, "duration") if "duration" in table.frame.columns else np.zeros(t.shape)
    out = []
    for i in range(len(t)):
        d = 0 if not math.isfinite(dur[i]) else round(float(dur[i]) * 1e9)
        out.append((int(t[i]), _duration(table.path, 0, d), "annotation", labels[i]))
    return out


def _core_anchor(folder: Path) -> tuple[str | None, str | None]:
    """(utc_anchor, file) from info.player.json or info.csv in the folder or up to two parents."""
    for d in (folder, folder.parent, folder.parent.parent):
        info = d / "info.player.json"
        if info.is_file():
            doc = _json_file(info)
            if isinstance(doc, dict) and isinstance(doc.get("start_time_system_s"), int | float) \
                    and isinstance(doc.get("start_time_synced_s"), int | float):
                return _iso_s(float(doc["start_time_system_s"]) - float(doc["start_time_synced_s"])), info.name
        old = d / "info.csv"
        if old.is_file():
            try:
                rows = dict(r[:2] for r in csv.reader(old.read_text(encoding="utf-8", errors="replace").splitlines())
                            if len(r) >= 2)
                system, synced = float(rows["Start Time (System)"]), float(rows["Start Time (Synced)"])
            except (KeyError, ValueError):
                continue
            return _iso_s(system - synced), old.name
    return None, None


def _iso_s(seconds: float) -> str | None:
    if not math.isfinite(seconds) or not -1e10 < seconds < 1e11:
        return None
    return datetime.fromtimestamp(round(seconds, 6), tz=UTC).isoformat()


def _sniff_core(path: Path) -> bool:
    try:
        if path.is_dir():
            return any((path / f).is_file() and _core_kind(header_columns(path / f) or []) for f in _CORE_FILES[:2])
        return path.is_file() and _core_kind(header_columns(path) or []) is not None
    except OSError:
        return False


@reader("pupil_core", (".csv",), sniff=_sniff_core, description="Pupil Core (Pupil Player) raw-data export")
def read_pupil_core(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    min_confidence: float | None = None,
    fixation_duration_unit: str = "auto",
) -> Recording:
    """Read a Pupil Player export folder (``exports/<n>/``) or one of its CSV files.

    Args:
        min_confidence: gaze samples below it become NaN (their confidence is kept); None keeps all.
        fixation_duration_unit: ``"auto"`` (ms for the current header, else judged from the values), ``"ms"``
            or ``"s"``.

    Streams: ``gaze`` (norm_x, norm_y top-left origin, confidence; with 3D mapping combined/left/right rays
    in OpenXR axes of the world camera) and ``pupil`` (left/right_pupil_diameter mm from the 3d detector,
    confidence; one eye per row, the other NaN; a 2d-only export gives ``pupil_2d`` in px, 'other').
    Events: ``fixation``, ``blink`` (durations), ``annotation``. Times: pupil time s -> ns.
    """
    p = Path(path)
    if p.is_dir():
        files = [p / f for f in _CORE_FILES if (p / f).is_file()]
        if not files:
            raise LoaderError(f"{p}: no Pupil Player export CSV ({', '.join(_CORE_FILES)}) in the folder")
        folder = p
    else:
        files, folder = [p], p.parent
    streams: list[Stream] = []
    events: list[tuple[int, int, str, str]] = []
    meta: dict[str, Any] = {"device": "Pupil Labs Pupil Core", "source_files": []}
    for f in files:
        table = read_text_table(f)
        kind = _core_kind(table.columns)
        if kind is None:
            raise LoaderError(f"{f}: not a known Pupil Player export layout (columns {table.columns[:8]})")
        if kind == "gaze_positions.csv":
            streams.append(_core_gaze(table, min_confidence))
        elif kind == "pupil_positions.csv":
            streams.append(_core_pupil(table))
        elif kind == "fixations.csv":
            fix, unit = _core_fixations(table, fixation_duration_unit)
            events += fix
            meta["fixation_duration_unit"] = unit
        elif kind == "blinks.csv":
            events += _core_blinks(table)
        else:
            events += _core_annotations(table)
        meta["source_files"].append(f.name)
        for k, v in table.meta.items():
            meta.setdefault("parse_notes", {}).setdefault(f.name, {})[k] = v
    anchor, anchor_file = _core_anchor(folder)
    if anchor is not None:
        meta["utc_anchor"] = anchor
        meta["utc_anchor_source"] = f"{anchor_file}: start_time_system_s - start_time_synced_s"
    export_info = folder / "export_info.csv"
    if export_info.is_file():
        rows = [r for r in csv.reader(export_info.read_text(encoding="utf-8", errors="replace").splitlines())
                if len(r) >= 2]
        meta["export_info"] = {r[0]: r[1] for r in rows[1:] if r[0]}
    meta["clock"] = "Pupil time (s, arbitrary epoch) -> ns"
    return _make_recording(p, streams, events, user_id, session_id, meta)
