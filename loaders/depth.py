"""Depth frames -> one ``depth`` stream, through opencv (``cv2.imread`` / ``cv2.VideoCapture``) and numpy.

Sources: a folder of 16-bit single-channel images (PNG by default; TUM RGB-D, Redwood/PrimeSense, Open3D
layouts), a single image, a ``.npy``/``.npz`` stack ``(N, H, W)``, or a video container opencv's FFmpeg
backend decodes.

Units. ``scale`` is the number of source units per metre: 1000 for millimetre frames (PrimeSense,
Redwood, Azure Kinect, RealSense at its default depth unit), 5000 for TUM RGB-D (``value / 5000`` = metres, so
``mm = value / 5``), 1 for float frames in metres. The output is uint16 millimetres,
``mm = round(value * 1000 / scale)``, with 0 = invalid (source zeros, negatives and NaN stay/become 0; values
that would exceed 65535 mm become 0 and are counted in the meta), or float32 metres ``value / scale`` with
``as_metres=True`` (invalid pixels NaN). Default scale: 5000 for TUM sequences (a ``depth.txt`` index or
TUM timestamp file names), 1000 for other integer frames, 1 for float frames; 8-bit sources need an explicit
``scale`` (they cannot carry millimetres).

Video. Lossy codecs cannot carry 16-bit depth. A video decoded as 16-bit grey (FFV1 ``gray16le``, PNG-in-AVI,
raw) is read exactly (opencv with ``CAP_PROP_CONVERT_RGB=0``). Anything else is decoded to 8-bit (BGR -> grey
with ``cv2.cvtColor``), needs ``scale`` (grey levels per metre), and the stream meta's ``warnings`` say so
(and whether the codec is lossy). Colour-mapped depth videos cannot be inverted and are read as grey.

Timestamps, first match wins: the ``timestamps`` argument (int64 ns, one per frame in file-name order);
times recorded with the frames: a TUM index file ``depth.txt`` (``timestamp filename`` lines, ``#``
comments) in the folder or its parent, TUM file names ``<seconds>.<fraction>.png``, a ``time_ns`` array in a
``.npz``; ``rate_hz`` (+ ``start_ns``): frames named by a number (``00042.png``) are placed at their number,
``start_ns + round((k - k_first) * 1e9 / rate_hz)`` (a missing number leaves a gap), other frames in name
order; video presentation times (``start_ns`` + pts - pts[0], or the container fps when pts are unusable);
a single frame at ``start_ns``. ``rate_hz`` is always the stream's nominal rate; it overrides a video's pts
(which the container derives from its declared fps) but never recorded times. Decimal seconds are converted
to ns exactly (float64 cannot resolve ns at epoch magnitudes). Frames are then sorted by time.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from xrdata.encoding import expand_time, rate_fraction
from xrdata.errors import LoaderError, require
from xrdata.loaders._registry import PathLike, default_session_id, reader
from xrdata.model import Recording, Stream

#: Containers tried with cv2.VideoCapture when read_depth is given a file with one of these suffixes.
VIDEO_SUFFIXES = (".mkv", ".avi", ".mp4", ".mov", ".nut", ".webm")
#: TUM RGB-D's index of the depth frames.
INDEX_FILE = "depth.txt"
#: TUM scale: 5000 units per metre (0.2 mm).
TUM_SCALE = 5000.0
#: Codecs (FOURCC, lower case) that store frames without loss.
LOSSLESS_FOURCC = frozenset({"ffv1", "png", "mpng", "y16", "b16g", "y800", "grey", "gray", "hfyu", "ffvh", "raw",
                             "", "utvd"})

_TUM_NAME = re.compile(r"\d+\.\d+")
_INDEX_NAME = re.compile(r"(\D*?)(\d+)")


@dataclass
class _Source:
    """Frames as decoded from the source, before unit conversion and timing."""

    frames: np.ndarray  # (N, H, W) source dtype and units
    names: list[str]  # one label per frame (file name, or "frame <k>")
    kind: str  # "image", "image_folder", "index_file", "npy", "npz", "video"
    source_files: list[str]
    time_ns: np.ndarray | None = None  # (N,) int64 from the source (index file, names, npz, pts), or None
    time_source: str | None = None
    times_recorded: bool = False  # time_ns was measured with the frames (not derived from a declared rate)
    tum: bool = False  # a TUM RGB-D sequence: default scale 5000
    index_numbers: np.ndarray | None = None  # (N,) frame numbers parsed from the names, for rate_hz timing
    nominal_rate_hz: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- helpers


def seconds_text_to_ns(text: str) -> int:
    """Decimal seconds (``"1305031102.160407"``) -> int nanoseconds, exactly (rounded half-even past ns).

    Hand-written on :mod:`decimal` because float64 resolves only ~256 ns at epoch magnitudes.
    """
    d = Decimal(text)
    if not d.is_finite():
        raise InvalidOperation(text)
    return int((d * 1_000_000_000).to_integral_value())


def _png_ihdr(path: Path) -> bytes | None:
    """The first 26 bytes of a PNG (signature, IHDR length and type, width, height, bit depth, colour type),
    or None when ``path`` is unreadable or not a PNG."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(26)
    except OSError:
        return None
    return head if _is_png_head(head) else None


def _is_png_head(head: bytes) -> bool:
    return len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"


def _png_is_16bit_grey(path: Path) -> bool:
    """PNG signature + IHDR bit depth 16, colour type 0 (grey) (cheap sniff)."""
    head = _png_ihdr(path)
    return head is not None and head[24] == 16 and head[25] == 0


def _looks_like_depth(path: Path) -> bool:
    """Sniff for folders: a TUM index, or a first PNG that is 16-bit grey (here or in a ``depth/`` child)."""
    if not path.is_dir():
        return path.suffix.lower() == ".png" and _png_is_16bit_grey(path)
    if (path / INDEX_FILE).is_file():
        return True
    first = next(iter(sorted(path.glob("*.png"))), None)
    if first is not None:
        return _png_is_16bit_grey(first)
    sub = path / "depth"
    return sub.is_dir() and _looks_like_depth(sub)


def _positive(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, int | float | np.number)
        and math.isfinite(float(value)) and float(value) > 0
    )


def _intrinsics(path: Path, spec: Any) -> tuple[dict[str, Any], str | None]:
    """Intrinsics {fx, fy, cx, cy[, width, height][, skew]} from a JSON file or a mapping, and the file name.

    Accepted: Open3D's ``PinholeCameraIntrinsic`` JSON (``width``, ``height``, column-major 3x3
    ``intrinsic_matrix``) or a mapping with ``fx``, ``fy``, ``cx``, ``cy`` (optionally ``width``, ``height``).
    """
    source: str | None = None
    if isinstance(spec, str | os.PathLike):
        jpath = Path(spec)
        source = jpath.name
        try:
            spec = json.loads(jpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise LoaderError(f"{path}: intrinsics file {jpath.name} is not readable JSON: {exc}") from exc
    where = f"{path}: intrinsics" + (f" file {source}" if source else "")
    if not isinstance(spec, Mapping):
        raise LoaderError(f"{where}: expected a JSON object / mapping, got {type(spec).__name__}")
    out: dict[str, Any] = {}
    if "intrinsic_matrix" in spec:
        m = spec["intrinsic_matrix"]
        if not (isinstance(m, list | tuple) and len(m) == 9 and all(
            not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) for v in m
        )):
            raise LoaderError(f"{where}: intrinsic_matrix must be 9 finite numbers (column-major 3x3), got {m!r}")
        k = np.asarray(m, dtype=np.float64).reshape(3, 3, order="F")  # Open3D/Eigen store column-major
        if k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
            raise LoaderError(f"{where}: intrinsic_matrix {m!r} is not a pinhole matrix [[fx,s,cx],[0,fy,cy],[0,0,1]]"
                              " stored column-major")
        out = {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2])}
        if k[0, 1] != 0:
            out["skew"] = float(k[0, 1])
    elif all(key in spec for key in ("fx", "fy", "cx", "cy")):
        for key in ("fx", "fy", "cx", "cy"):
            v = spec[key]
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)):
                raise LoaderError(f"{where}: {key} must be a finite number, got {v!r}")
            out[key] = float(v)
    else:
        raise LoaderError(f"{where}: give Open3D's {{width, height, intrinsic_matrix}} or {{fx, fy, cx, cy}}; "
                          f"got keys {sorted(map(str, spec))}")
    if out["fx"] <= 0 or out["fy"] <= 0:
        raise LoaderError(f"{where}: focal lengths must be > 0 pixels, got fx={out['fx']}, fy={out['fy']}")
    for key in ("width", "height"):
        if key in spec:
            v = spec[key]
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
                raise LoaderError(f"{where}: {key} must be a positive integer, got {v!r}")
            out[key] = int(v)
    return out, source


def _cv2() -> Any:
    return require("cv2", "loaders")


# ------------------------------------------------------------------------------------------------ sources


#: deflate's largest expansion (a run of one byte value): no PNG holds more image bytes than this x its size
_DEFLATE_MAX_RATIO = 1032
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # IHDR colour type -> samples per pixel


def _check_png(path: Path, f: Path) -> None:
    """Refuse a corrupt PNG frame before opencv allocates what it declares: an IHDR with more pixels than the
    file's bytes can hold (up to opencv's 2**30-pixel limit, ~2 GB), or a chunk longer than the rest of the
    file (the decoder allocates a chunk's declared length, up to 2 GB, before reading it)."""
    try:
        fh = open(f, "rb")
    except OSError:
        return  # unreadable: cv2.imread reports it
    with fh:
        head = fh.read(26)
        if not _is_png_head(head):
            return  # not a PNG: cv2.imread reports it
        size = os.fstat(fh.fileno()).st_size
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        raw = height * (1 + -(-width * _PNG_CHANNELS.get(head[25], 4) * head[24] // 8))  # filter byte + row bytes
        if raw > _DEFLATE_MAX_RATIO * size:
            raise LoaderError(f"{path}: frame {f.name} declares {width}x{height} pixels but has only {size} bytes "
                              "(corrupt or truncated PNG)")
        pos = 8  # chunk headers only: length (4 bytes), type (4), then data and a CRC (4)
        while pos + 8 <= size:
            fh.seek(pos)
            hdr = fh.read(8)
            n, kind = int.from_bytes(hdr[:4], "big"), hdr[4:8]
            if pos + 12 + n > size:
                raise LoaderError(f"{path}: frame {f.name}: PNG chunk {kind.decode('latin-1')!r} at byte {pos} "
                                  f"declares {n} bytes but the file has {max(0, size - pos - 12)} after its header "
                                  "(corrupt or truncated PNG)")
            if kind == b"IEND":
                break
            pos += 12 + n


def _read_images(path: Path, files: Sequence[Path]) -> np.ndarray:
    """(N, H, W) frames of single-channel images, all of one size and dtype, via cv2.imread."""
    cv2 = _cv2()
    out: np.ndarray | None = None
    for k, f in enumerate(files):
        _check_png(path, f)
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise LoaderError(f"{path}: frame {f.name} cannot be decoded (corrupt, truncated or not an image)")
        if img.ndim != 2:
            raise LoaderError(f"{path}: frame {f.name} has {img.shape[2]} channels; depth frames are "
                              "single-channel (16-bit grey) images")
        if out is None:
            out = np.empty((len(files), *img.shape), dtype=img.dtype)
        elif img.shape != out.shape[1:] or img.dtype != out.dtype:
            raise LoaderError(
                f"{path}: frame {f.name} is {img.shape[1]}x{img.shape[0]} {img.dtype} but {files[0].name} is "
                f"{out.shape[2]}x{out.shape[1]} {out.dtype}; all frames of a stream must have one size and type"
            )
        out[k] = img
    assert out is not None
    return out


def _index_entries(path: Path, index: Path) -> tuple[list[Path], np.ndarray]:
    """Frame files and int64 ns times listed in a TUM ``depth.txt`` (``timestamp filename`` per line)."""
    try:
        text = index.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{path}: index file {index.name} is not readable text: {exc}") from exc
    files: list[Path] = []
    times: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(None, 1)
        if len(parts) != 2:
            raise LoaderError(f"{path}: {index.name} line {lineno}: expected 'timestamp filename', got {s!r}")
        try:
            times.append(seconds_text_to_ns(parts[0]))
        except InvalidOperation:
            raise LoaderError(f"{path}: {index.name} line {lineno}: {parts[0]!r} is not a time in seconds") from None
        f = index.parent / parts[1]
        if not f.is_file():
            raise LoaderError(f"{path}: {index.name} line {lineno} lists {parts[1]!r}, which does not exist")
        files.append(f)
    if not files:
        raise LoaderError(f"{path}: index file {index.name} lists no frames")
    return files, np.array(times, dtype=np.int64)


def _find_index(folder: Path) -> Path | None:
    """A TUM index in the folder, or in its parent when its entries point into this folder."""
    if (folder / INDEX_FILE).is_file():
        return folder / INDEX_FILE
    parent_index = folder.parent / INDEX_FILE
    if parent_index.is_file():
        try:
            for line in parent_index.read_text(encoding="utf-8").splitlines():
                parts = line.strip().split(None, 1)
                if parts and not parts[0].startswith("#") and len(parts) == 2:
                    inside = (folder.parent / parts[1]).parent.resolve() == folder.resolve()
                    return parent_index if inside else None
        except (OSError, UnicodeDecodeError):
            return parent_index  # let _index_entries report it
    return None


def _from_names(files: Sequence[Path], src: _Source) -> None:
    """Times from TUM names (``<s>.<frac>.png``) or frame numbers from index names (``00042.png``)."""
    stems = [f.stem for f in files]
    if stems and all(_TUM_NAME.fullmatch(s) for s in stems):
        src.time_ns = np.array([seconds_text_to_ns(s) for s in stems], dtype=np.int64)
        src.time_source = "file names (TUM: seconds)"
        src.times_recorded = True
        src.tum = True
        return
    matches = [_INDEX_NAME.fullmatch(s) for s in stems]
    if stems and all(matches) and len({m.group(1) for m in matches if m}) == 1:
        src.index_numbers = np.array([int(m.group(2)) for m in matches if m], dtype=np.int64)


def _image_source(path: Path, pattern: str) -> _Source:
    if path.is_dir():
        index = _find_index(path)
        if index is not None:
            files, times = _index_entries(path, index)
            return _Source(_read_images(path, files), [f.name for f in files], "index_file",
                           [path.name, index.name], times, f"index file {index.name}", True, tum=True)
        files = sorted(f for f in path.glob(pattern) if f.is_file())
        if not files and (path / "depth").is_dir():
            return _image_source(path / "depth", pattern)
        if not files:
            raise LoaderError(f"{path}: no frames matching {pattern!r} and no {INDEX_FILE}; pass pattern= "
                              "(e.g. '*.tiff') or point at the folder of depth frames")
        src = _Source(_read_images(path, files), [f.name for f in files], "image_folder", [path.name])
        _from_names(files, src)
        return src
    if path.suffix.lower() == ".txt":
        files, times = _index_entries(path, path)
        return _Source(_read_images(path, files), [f.name for f in files], "index_file",
                       [path.name], times, f"index file {path.name}", True, tum=True)
    src = _Source(_read_images(path, [path]), [path.name], "image", [path.name])
    _from_names([path], src)
    return src


def _check_npz_member(path: Path, archive: Any, key: str) -> None:
    """Refuse an ``.npz`` member whose ``.npy`` header declares more bytes than the archive says it holds:
    numpy allocates the declared shape before reading a member (a ``.npy`` file is mapped instead, below)."""
    name = f"{key}.npy"
    if name not in archive.namelist():
        return  # numpy's own error names the member
    with archive.open(name) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
    need, held = math.prod(shape) * dtype.itemsize, archive.getinfo(name).file_size
    if need > held:
        raise LoaderError(f"{path}: array {key!r} declares shape {shape} {dtype} ({need} bytes) but the archive "
                          f"holds {held} bytes for it (corrupt .npz)")


def _array_source(path: Path) -> _Source:
    """A ``.npy`` stack, or a ``.npz`` with a ``depth`` array (or a single array) and optional ``time_ns``."""
    time_ns: np.ndarray | None = None
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            key = "depth" if "depth" in names else None
            others = [n for n in names if n not in ("time_ns", "timestamps")]
            if key is None and len(others) == 1:
                key = others[0]
            if key is None:
                raise LoaderError(f"{path}: cannot tell which array holds the depth frames among {names}; "
                                  "name it 'depth'")
            _check_npz_member(path, z.zip, key)
            arr = np.asarray(z[key])
            tkey = "time_ns" if "time_ns" in names else None
            if tkey is not None:
                _check_npz_member(path, z.zip, tkey)
                time_ns = np.asarray(z[tkey])
        kind = "npz"
    else:
        # mmap checks the header's shape against the file size, so a corrupt header cannot allocate.
        arr = np.array(np.load(path, mmap_mode="r", allow_pickle=False))
        kind = "npy"
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.dtype.kind not in "uif" or 0 in arr.shape[1:]:
        raise LoaderError(f"{path}: expected a numeric (N, H, W) or (H, W) depth array, got {arr.dtype} {arr.shape}")
    src = _Source(arr, [f"frame {k}" for k in range(arr.shape[0])], kind, [path.name])
    if time_ns is not None:
        if time_ns.dtype.kind not in "iu" or time_ns.shape != (arr.shape[0],):
            raise LoaderError(f"{path}: 'time_ns' must be ({arr.shape[0]},) integer ns, got {time_ns.dtype} "
                              f"{time_ns.shape}")
        src.time_ns = time_ns.astype(np.int64)
        src.time_source = "npz array 'time_ns'"
        src.times_recorded = True
    return src


def _video_source(path: Path) -> _Source:
    """Frames of a video: 16-bit grey decoded exactly, anything else as 8-bit grey (see the module doc)."""
    cv2 = _cv2()
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    # opencv warns on stderr whenever CAP_PROP_CONVERT_RGB is off; that is the documented way to get gray16.
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_CONVERT_RGB, 0])
    try:
        if not cap.isOpened():
            raise LoaderError(f"{path}: opencv's FFmpeg backend cannot open this video")
        fourcc_int = int(cap.get(cv2.CAP_PROP_FOURCC))
        fourcc = "".join(chr((fourcc_int >> 8 * i) & 0xFF) for i in range(4)).strip("\x00 ")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        ok, first = cap.read()
        if not ok or first is None:
            raise LoaderError(f"{path}: the video has no decodable frame")
        exact = first.dtype == np.uint16 and first.shape == (height, width)
        if exact:
            frames, pts = [first], [cap.get(cv2.CAP_PROP_POS_MSEC)]
        else:
            cap.release()
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
            frames, pts = [], []
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if not exact:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            expected = frames[0].shape if frames else (height, width)
            if frame.shape != expected:
                raise LoaderError(f"{path}: frame {len(frames)} has shape {frame.shape}, expected {expected}; "
                                  "a depth video must have one frame size")
            frames.append(frame)
            pts.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    finally:
        cap.release()
        logging.setLogLevel(level)
    if not frames:
        raise LoaderError(f"{path}: the video has no decodable frame")
    src = _Source(np.stack(frames), [f"frame {k}" for k in range(len(frames))], "video", [path.name])
    src.meta["video"] = {"fourcc": fourcc, "fps": fps if math.isfinite(fps) else None,
                         "decoded_as": "gray16 (exact)" if exact else "8-bit grey (cvtColor BGR2GRAY)"}
    if fps > 0 and math.isfinite(fps):
        src.nominal_rate_hz = fps
    pts_ms = np.asarray(pts, dtype=np.float64)
    if pts_ms.size and np.isfinite(pts_ms).all() and (pts_ms.size == 1 or bool((np.diff(pts_ms) > 0).all())):
        src.time_ns = np.round((pts_ms - pts_ms[0]) * 1e6).astype(np.int64)  # relative; start_ns added later
        src.time_source = "video presentation times (start_ns + pts - pts[0])"
    elif src.nominal_rate_hz is not None:
        src.time_ns = _regular(0, src.nominal_rate_hz, np.arange(len(frames), dtype=np.int64))
        src.time_source = "video container fps from start_ns"
    lossy = fourcc.lower() not in LOSSLESS_FOURCC
    if not exact:
        src.warnings.append("8-bit video: depth is quantised to 256 levels (steps of 1000/scale mm)")
    if lossy:
        src.warnings.append(f"codec {fourcc!r} is lossy or unknown: depth values (and the 0 = invalid marks) "
                            "may be altered by compression")
    return src


# ------------------------------------------------------------------------------------------ conversions


def _convert(frames: np.ndarray, scale: float, as_metres: bool) -> tuple[np.ndarray, dict[str, int]]:
    """Source units -> uint16 mm (0 invalid) or float32 m (NaN invalid), frame by frame (bounded temporaries)."""
    counts = {"invalid_source_pixels": 0, "overflow_pixels": 0}
    if not as_metres and scale == 1000.0 and frames.dtype == np.uint16:
        return frames, counts  # already millimetres
    out = np.empty(frames.shape, dtype=np.float32 if as_metres else np.uint16)
    factor = (1.0 / scale) if as_metres else (1000.0 / scale)
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(frames.shape[0]):
            v = frames[k].astype(np.float64) * factor
            bad = ~np.isfinite(v) | (v < 0)
            counts["invalid_source_pixels"] += int(bad.sum())
            if as_metres:
                v[bad | (v == 0)] = np.nan
                out[k] = v
                continue
            v = np.rint(v)
            over = v > 65535
            counts["overflow_pixels"] += int(over.sum())
            v[bad | over] = 0
            out[k] = v
    return out, counts


def _regular(start_ns: int, rate_hz: float, numbers: np.ndarray) -> np.ndarray:
    """``start_ns + round((k - k0) * 1e9 / rate_hz)`` for frame numbers ``k`` (the store's exact time base)."""
    num, den = rate_fraction(rate_hz)
    rel = numbers - numbers.min()
    span = int(rel.max()) + 1 if rel.size else 0
    if span > 100 * rel.size + 1000:
        raise ValueError(f"frame numbers jump over {span} frames for {rel.size} files")
    return expand_time([[0, start_ns]], num, den, span)[rel]


# ----------------------------------------------------------------------------------------------- reader


@reader(
    "depth",
    (".png", ".npy", ".npz", ".mkv", ".avi"),
    sniff=_looks_like_depth,
    description="depth frames: 16-bit PNG folders (TUM, Redwood, Open3D), .npy/.npz stacks, videos via opencv",
)
def read_depth(
    path: PathLike,
    *,
    user_id: str = "anonymous",
    session_id: str | None = None,
    scale: float | None = None,
    intrinsics: PathLike | Mapping[str, Any] | None = None,
    timestamps: Sequence[int] | np.ndarray | None = None,
    rate_hz: float | None = None,
    start_ns: int = 0,
    pattern: str = "*.png",
    as_metres: bool = False,
) -> Recording:
    """Read depth frames into a recording with one ``depth`` stream named ``depth``.

    Args:
        path: a folder of frames (or its parent holding a ``depth/`` folder), one image, a TUM ``depth.txt``,
            a ``.npy``/``.npz`` stack ``(N, H, W)``, or a video file.
        user_id, session_id: ids of the recording (session id defaults to the file/folder name).
        scale: source units per metre (1000 = mm, 5000 = TUM, 1 = metres); see the module doc for defaults.
        intrinsics: a JSON file (Open3D ``camera_primesense.json`` layout) or a mapping with fx, fy, cx, cy
            (pixels); stored as ``meta["intrinsics"] = {fx, fy, cx, cy, width, height}``.
        timestamps: int64 ns per frame, in file-name order (overrides every other time source).
        rate_hz: nominal frame rate; times the frames from ``start_ns`` unless they carry recorded times
            (``timestamps``, TUM index or names, npz ``time_ns``).
        start_ns: int64 ns on the session clock of the first frame (for ``rate_hz``, single frames, video).
        pattern: glob of the frame files inside a folder.
        as_metres: return float32 metres (invalid = NaN) instead of uint16 millimetres (invalid = 0).

    Returns:
        Recording with stream ``depth``: data ``(N, H, W)`` uint16 mm or float32 m, channel ``depth``,
        ``time_ns`` (N,) sorted, ``rate_hz`` the given or container rate (None for TUM's irregular frames).
        Stream meta: intrinsics, scale and its origin, source dtype, invalid/overflow pixel counts, time
        source, warnings (lossy or 8-bit video).
    """
    path = Path(path)
    if isinstance(start_ns, bool) or not isinstance(start_ns, int | np.integer):
        raise LoaderError(f"{path}: start_ns must be integer nanoseconds, got {start_ns!r}")
    if rate_hz is not None and not _positive(rate_hz):
        raise LoaderError(f"{path}: rate_hz must be a positive number of Hz, got {rate_hz!r}")
    if scale is not None and not _positive(scale):
        raise LoaderError(f"{path}: scale must be a positive number of source units per metre, got {scale!r}")
    intr, intr_file = _intrinsics(path, intrinsics) if intrinsics is not None else (None, None)

    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        src = _array_source(path)
    elif suffix in VIDEO_SUFFIXES:
        src = _video_source(path)
    else:
        src = _image_source(path, pattern)
    frames = src.frames
    n, height, width = frames.shape

    # --- time
    if timestamps is not None:
        t = np.asarray(timestamps)
        if t.dtype.kind not in "iu" or t.shape != (n,):
            raise LoaderError(
                f"{path}: timestamps must be {n} integer ns (one per frame in file-name order), got {t.dtype} "
                f"{t.shape}; convert seconds with np.round(t_s * 1e9).astype('int64')"
            )
        time_ns, time_source = t.astype(np.int64), "timestamps argument"
    elif src.time_ns is not None and (src.times_recorded or rate_hz is None):
        time_ns = src.time_ns + (int(start_ns) if src.kind == "video" else 0)
        time_source = str(src.time_source)
    elif rate_hz is not None:
        numbers = src.index_numbers if src.index_numbers is not None else np.arange(n, dtype=np.int64)
        try:
            time_ns = _regular(int(start_ns), float(rate_hz), numbers)
        except ValueError as exc:
            raise LoaderError(f"{path}: {exc}; pass timestamps= instead of rate_hz=") from None
        time_source = f"rate_hz {float(rate_hz):g} from start_ns" + (
            " by frame number" if src.index_numbers is not None else " in name order")
    elif n == 1:
        time_ns, time_source = np.array([int(start_ns)], dtype=np.int64), "single frame at start_ns"
    else:
        raise LoaderError(
            f"{path}: {n} frames but no time source (names are not TUM timestamps, no {INDEX_FILE}); "
            "pass rate_hz= (and start_ns=) or timestamps="
        )
    order = np.argsort(time_ns, kind="stable")
    reordered = bool((order != np.arange(n)).any())
    if reordered:
        time_ns, frames = time_ns[order], frames[order]

    # --- units
    if scale is not None:
        used_scale, scale_source = float(scale), "argument"
    elif src.tum:
        used_scale, scale_source = TUM_SCALE, "TUM RGB-D default (5000 units per metre)"
    elif frames.dtype == np.uint8:
        raise LoaderError(f"{path}: 8-bit frames cannot carry millimetre depth; pass scale= (grey levels per "
                          "metre, e.g. 25.5 for 0-10 m)")
    elif frames.dtype.kind in "iu":
        used_scale, scale_source = 1000.0, "default for integer frames: millimetres"
    else:
        used_scale, scale_source = 1.0, "default for float frames: metres"
    source_dtype = str(frames.dtype)
    data, counts = _convert(frames, used_scale, as_metres)

    meta: dict[str, Any] = {
        "source_kind": src.kind,
        "source_dtype": source_dtype,
        "scale_units_per_metre": used_scale,
        "scale_source": scale_source,
        "conversion": "m = value / scale (invalid = NaN)" if as_metres else
                      "mm = round(value * 1000 / scale); 0, negative, NaN, < 0.5 mm and > 65535 mm -> 0 (invalid)",
        "time_source": time_source,
        "source_convention": "pinhole z-depth image (row 0 = top); z-depth needs no frame conversion",
        "reference_space": "view",
        **{k: v for k, v in counts.items() if v},
        **src.meta,
    }
    if reordered:
        meta["reordered_by_time"] = True
    if n:
        meta["first_frame"], meta["last_frame"] = src.names[int(order[0])], src.names[int(order[-1])]
    if src.warnings:
        meta["warnings"] = list(src.warnings)
    if intr is not None:
        for key, size in (("width", width), ("height", height)):
            if key in intr and intr[key] != size:
                raise LoaderError(f"{path}: intrinsics{' file ' + intr_file if intr_file else ''} are for "
                                  f"{key} {intr[key]} but the frames are {width}x{height}")
        meta["intrinsics"] = {**intr, "width": width, "height": height}
    rate = float(rate_hz) if rate_hz is not None else src.nominal_rate_hz
    stream = Stream("depth", "depth", time_ns, data, ["depth"], ["m" if as_metres else "mm"], rate_hz=rate,
                    meta=meta)
    source_files = src.source_files + ([intr_file] if intr_file else [])
    return Recording(user_id, session_id or default_session_id(path), [stream],
                     meta={"source_files": source_files})
