"""read_depth against the Pillow reference values (REFERENCE.json key ``depth``), corruption robustness of the
PNG frames and the JSON intrinsics, store round trips, time sources, stacks and videos."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xrdata
import xrdata.loaders
from xrdata.errors import LoaderError
from xrdata.loaders.depth import read_depth, seconds_text_to_ns
from xrdata.testing import assert_recording_equal, check_reader_contract, corrupt, corruptions
from xrdata.validation import check_writable

cv2 = pytest.importorskip("cv2")

OPEN3D = "isl-org_Open3D_RGBD"
FRAMES = [f"{OPEN3D}/depth/0000{k}.png" for k in range(5)]
TUM = f"{OPEN3D}/other_formats/TUM_depth.png"
INTRINSICS = f"{OPEN3D}/camera_primesense.json"
START_NS = 1_600_000_000_000_000_000


def _check_depth(rec: xrdata.Recording) -> xrdata.Stream:
    check_writable(rec)
    (s,) = rec.by_modality("depth")
    assert s.channels == ["depth"] and s.data.ndim == 3 and s.data.shape[0] == s.time_ns.shape[0]
    assert (s.data.dtype, s.units) in ((np.uint16, ["mm"]), (np.float32, ["m"]))
    return s


def _expected(ref: dict[str, Any], frame: np.ndarray, divide: int = 1) -> None:
    """Compare one uint16 mm frame with the reference statistics of its source PNG (source value / divide)."""
    assert frame.shape == tuple(ref["shape"]) == (ref["size_wh"][1], ref["size_wh"][0])
    h, w = frame.shape
    assert int(frame[h // 2, w // 2]) == round(ref["center_value"] / divide)
    assert int(frame.min()) == ref["min"]
    assert int(frame.max()) == round(ref["max"] / divide)
    assert float((frame > 0).mean()) == pytest.approx(ref["nonzero_fraction"], abs=1e-6)
    assert float(np.median(frame[frame > 0])) == pytest.approx(ref["median_nonzero"] / divide, abs=0.5)


# ------------------------------------------------------------------------------------- reference values


def test_open3d_folder_matches_reference(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    rec = read_depth(fixtures_dir / OPEN3D / "depth", user_id="u1", rate_hz=30.0, start_ns=START_NS,
                     intrinsics=fixtures_dir / INTRINSICS)
    s = _check_depth(rec)
    assert s.data.dtype == np.uint16 and s.data.shape == (5, 480, 640)
    for k, rel in enumerate(FRAMES):  # PrimeSense/Redwood frames are millimetres already
        _expected(reference["depth"]["files"][rel], s.data[k])
    assert s.rate_hz == 30.0
    np.testing.assert_array_equal(s.time_ns, START_NS + np.array([0, 33333333, 66666667, 100000000, 133333333]))
    assert s.meta["intrinsics"] == {"fx": 525.0, "fy": 525.0, "cx": 319.5, "cy": 239.5, "width": 640, "height": 480}
    assert s.meta["scale_units_per_metre"] == 1000.0 and s.meta["source_dtype"] == "uint16"
    assert rec.meta["source_files"] == ["depth", "camera_primesense.json"]


def test_tum_png_matches_reference(fixtures_dir: Path, reference: dict[str, Any]) -> None:
    ref = reference["depth"]["files"][TUM]
    rec = read_depth(fixtures_dir / TUM, scale=5000, start_ns=START_NS)
    s = _check_depth(rec)
    assert s.data.shape == (1, 480, 640) and s.time_ns.tolist() == [START_NS]
    _expected(ref, s.data[0], divide=5)  # TUM: value / 5000 m = value / 5 mm
    assert s.data[0, 240, 320] == 2184
    metres = _check_depth(read_depth(fixtures_dir / TUM, scale=5000, as_metres=True))
    assert metres.data.dtype == np.float32 and metres.data[0, 240, 320] == np.float32(10920 / 5000)
    assert float(np.isnan(metres.data).mean()) == pytest.approx(1 - ref["nonzero_fraction"], abs=1e-6)


def test_store_round_trip(fixtures_dir: Path) -> None:
    recs = [
        read_depth(fixtures_dir / OPEN3D / "depth", user_id="u1", rate_hz=30.0,
                   intrinsics=fixtures_dir / INTRINSICS),
        read_depth(fixtures_dir / TUM, user_id="u1", scale=5000),
        read_depth(fixtures_dir / TUM, user_id="u1", session_id="tum_m", scale=5000, as_metres=True),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = xrdata.open_store(Path(tmp) / "store")
        for rec in recs:
            store.write(rec)
            assert_recording_equal(rec, store.read("u1", rec.session_id))


def test_dispatch(fixtures_dir: Path) -> None:
    folder = fixtures_dir / OPEN3D / "depth"
    assert xrdata.loaders.READERS["depth"].func is read_depth
    assert_recording_equal(xrdata.loaders.read(folder, rate_hz=30.0), read_depth(folder, rate_hz=30.0))
    tum = fixtures_dir / TUM
    assert_recording_equal(xrdata.loaders.read(tum, scale=5000), read_depth(tum, scale=5000))
    # the RGB-D root: the sniff finds 16-bit grey PNGs in its depth/ folder, and the reader uses that folder
    root = xrdata.loaders.read(fixtures_dir / OPEN3D, rate_hz=30.0)
    np.testing.assert_array_equal(root.streams["depth"].data, read_depth(folder, rate_hz=30.0).streams["depth"].data)


# ---------------------------------------------------------------------------------------- robustness


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_open3d_frame(fixtures_dir: Path, data: st.DataObject) -> None:
    victim = data.draw(st.integers(0, 4))
    payload = (fixtures_dir / FRAMES[victim]).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "depth"
        shutil.copytree(fixtures_dir / OPEN3D / "depth", folder)
        (folder / Path(FRAMES[victim]).name).write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(read_depth, folder, rate_hz=30.0)
        if rec is not None:
            assert _check_depth(rec).data.shape == (5, 480, 640)


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_corrupted_tum_png(fixtures_dir: Path, data: st.DataObject) -> None:
    payload = (fixtures_dir / TUM).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "TUM_depth.png"
        p.write_bytes(corrupt(payload, spec))
        rec = check_reader_contract(read_depth, p, scale=5000)
        if rec is not None:
            assert _check_depth(rec).data.shape == (1, 480, 640)


def test_png_declaring_more_pixels_than_it_holds_is_refused_before_decoding(fixtures_dir: Path, tmp_path: Path) -> None:
    """A corrupt IHDR (30000 x 30000, under opencv's 2**30-pixel limit) would make opencv allocate 1.8 GB for a
    93 kB file; deflate cannot expand that far, so the reader refuses the frame from its header."""
    import resource

    folder = tmp_path / "depth"
    shutil.copytree(fixtures_dir / OPEN3D / "depth", folder)
    b = bytearray((folder / "00002.png").read_bytes())
    b[16:24] = (30000).to_bytes(4, "big") * 2
    (folder / "00002.png").write_bytes(bytes(b))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LoaderError, match=r"depth: frame 00002\.png declares 30000x30000 pixels"):
        read_depth(folder, rate_hz=30.0)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB


def test_png_chunk_longer_than_the_file_is_refused_before_decoding(fixtures_dir: Path, tmp_path: Path) -> None:
    """One corrupt byte in the first IDAT's length (8 kB -> 2 GB) made opencv allocate 1.9 GB for a 120 kB file
    before failing (found by the corruption property test); the reader walks the chunk headers first."""
    import resource

    b = bytearray((fixtures_dir / TUM).read_bytes())
    assert b[37:41] == b"IDAT"
    b[33] = 120
    p = tmp_path / "TUM_depth.png"
    p.write_bytes(bytes(b))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LoaderError, match=r"TUM_depth\.png: frame TUM_depth\.png: PNG chunk 'IDAT' at byte 33 "
                                          r"declares 2013274112 bytes"):
        read_depth(p, scale=5000)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB
    b[33] = 0
    p.write_bytes(bytes(b[: len(b) // 2]))  # truncated inside a chunk: the same refusal, naming that chunk
    with pytest.raises(LoaderError, match=r"PNG chunk 'IDAT' at byte \d+ declares \d+ bytes but the file has"):
        read_depth(p, scale=5000)


def test_npz_member_declaring_more_than_it_holds_is_refused(tmp_path: Path) -> None:
    """numpy allocates an .npz member's declared shape before reading it: a corrupt header (here 2e11 bytes
    for a 64-byte member) is refused from the archive's directory instead."""
    import io
    import zipfile

    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, {"descr": "<u2", "fortran_order": False,
                                               "shape": (100_000, 1000, 1000)})
    npy.write(bytes(64))
    p = tmp_path / "frames.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("depth.npy", npy.getvalue())
    with pytest.raises(LoaderError, match=r"frames\.npz: array 'depth' declares shape \(100000, 1000, 1000\)"):
        read_depth(p, rate_hz=30.0)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_corrupted_intrinsics_json(fixtures_dir: Path, data: st.DataObject) -> None:
    payload = (fixtures_dir / INTRINSICS).read_bytes()
    spec = data.draw(corruptions(len(payload)))
    with tempfile.TemporaryDirectory() as tmp:
        j = Path(tmp) / "camera_primesense.json"
        j.write_bytes(corrupt(payload, spec))
        try:
            rec = read_depth(fixtures_dir / TUM, scale=5000, intrinsics=j)
        except LoaderError as exc:  # a refusal names the depth input and the intrinsics file
            assert "TUM_depth.png" in str(exc) and "camera_primesense.json" in str(exc)
            return
        s = _check_depth(rec)
        assert s.meta["intrinsics"]["fx"] > 0 and s.meta["intrinsics"]["fy"] > 0


# --------------------------------------------------------------------------------------- time sources


def _tum_sequence(fixtures_dir: Path, folder: Path, stamps: list[str]) -> None:
    (folder / "depth").mkdir(parents=True)
    for stamp in stamps:
        shutil.copy(fixtures_dir / TUM, folder / "depth" / f"{stamp}.png")


def test_tum_names_and_index(fixtures_dir: Path) -> None:
    stamps = ["1305031102.194330", "1305031102.160407", "1305031102.226738"]
    want = [1305031102160407000, 1305031102194330000, 1305031102226738000]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "rgbd_dataset_freiburg1_xyz"
        _tum_sequence(fixtures_dir, root, stamps)
        s = _check_depth(read_depth(root / "depth"))  # names are seconds; TUM default scale 5000
        assert s.time_ns.tolist() == want and s.rate_hz is None
        s = _check_depth(read_depth(root / "depth", rate_hz=30.0))  # a nominal rate never replaces real times
        assert s.time_ns.tolist() == want and s.rate_hz == 30.0
        assert s.data[0, 240, 320] == 2184 and s.meta["scale_units_per_metre"] == 5000.0
        # depth.txt (TUM layout, in the dataset root): times from it, even where the names differ
        index = ["# depth maps", "# file: 'rgbd_dataset_freiburg1_xyz.bag'", "# timestamp filename"]
        index += [f"{float(st_) + 0.5:.6f} depth/{st_}.png" for st_ in stamps]
        (root / "depth.txt").write_text("\n".join(index) + "\n")
        s = _check_depth(read_depth(root / "depth"))
        assert s.time_ns.tolist() == [t + 500_000_000 for t in want]
        assert s.meta["time_source"] == "index file depth.txt"
        via_index = read_depth(root / "depth.txt")
        assert via_index.meta["source_files"] == ["depth.txt"]
        np.testing.assert_array_equal(via_index.streams["depth"].time_ns, s.time_ns)
        np.testing.assert_array_equal(via_index.streams["depth"].data, s.data)
        # explicit timestamps win over names and index (in file-name order), then frames are sorted by time
        s = _check_depth(read_depth(root / "depth", timestamps=np.array([30, 10, 20])))
        assert s.time_ns.tolist() == [10, 20, 30] and s.meta["reordered_by_time"]
        with pytest.raises(LoaderError, match="timestamps"):
            read_depth(root / "depth", timestamps=[1, 2])
        with pytest.raises(LoaderError, match="integer ns"):
            read_depth(root / "depth", timestamps=np.array([0.1, 0.2, 0.3]))
        (root / "depth.txt").write_text("1305031102.160407 depth/missing.png\n")
        with pytest.raises(LoaderError, match=r"missing\.png"):
            read_depth(root / "depth")
        (root / "depth.txt").write_text("not-a-time depth/1305031102.160407.png\n")
        with pytest.raises(LoaderError, match="not a time"):
            read_depth(root / "depth")


def test_seconds_text_is_exact() -> None:
    assert seconds_text_to_ns("1305031102.160407") == 1305031102160407000
    assert seconds_text_to_ns("1305031102.1604071234") == 1305031102160407123
    assert seconds_text_to_ns("5") == 5_000_000_000


def test_numbered_frames_need_a_rate_and_keep_gaps(fixtures_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        for k in (0, 1, 3):
            shutil.copy(fixtures_dir / FRAMES[k], folder / f"{k:05d}.png")
        with pytest.raises(LoaderError, match="rate_hz"):
            read_depth(folder)
        s = _check_depth(read_depth(folder, rate_hz=10.0, start_ns=7))
        assert s.time_ns.tolist() == [7, 100_000_007, 300_000_007]  # frame 2 was dropped: a gap, not a shift


def test_mismatched_frames(fixtures_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        shutil.copy(fixtures_dir / FRAMES[0], folder / "00000.png")
        cv2.imwrite(str(folder / "00001.png"), np.ones((48, 64), np.uint16))
        with pytest.raises(LoaderError, match=r"00001\.png.*64x48"):
            read_depth(folder, rate_hz=30.0)
        cv2.imwrite(str(folder / "00001.png"), np.ones((480, 640, 3), np.uint8))
        with pytest.raises(LoaderError, match=r"00001\.png.*3 channels"):
            read_depth(folder, rate_hz=30.0)
        (folder / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        with pytest.raises(LoaderError, match=r"00001\.png.*cannot be decoded"):
            read_depth(folder, rate_hz=30.0)
        (folder / "00001.png").unlink()
        with pytest.raises(LoaderError, match="no frames matching"):
            read_depth(folder, pattern="*.tiff")


# ------------------------------------------------------------------------------------ units, intrinsics


def test_stacks_and_unit_conversion() -> None:
    metres = np.array([[[0.0, 1.2344], [70.0, np.nan]], [[-1.0, 0.0004], [2.0, 65.535]]], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "stack.npy"
        np.save(npy, metres)
        with pytest.raises(LoaderError, match="rate_hz"):
            read_depth(npy)
        s = _check_depth(read_depth(npy, rate_hz=5.0))  # float frames: metres by default
        assert s.meta["scale_units_per_metre"] == 1.0
        np.testing.assert_array_equal(s.data, [[[0, 1234], [0, 0]], [[0, 0], [2000, 65535]]])
        assert s.meta["overflow_pixels"] == 1 and s.meta["invalid_source_pixels"] == 2
        m = _check_depth(read_depth(npy, rate_hz=5.0, as_metres=True))
        invalid = [[[True, False], [False, True]], [[True, False], [False, False]]]
        np.testing.assert_array_equal(np.isnan(m.data), invalid)
        assert m.data[0, 0, 1] == np.float32(1.2344)
        npz = Path(tmp) / "stack.npz"
        tum = np.array([[[10920, 0], [5, 2]]], dtype=np.uint16)
        np.savez(npz, depth=tum, time_ns=np.array([123], dtype=np.int64))
        s = _check_depth(read_depth(npz, scale=5000))
        assert s.time_ns.tolist() == [123] and s.data[0].tolist() == [[2184, 0], [1, 0]]
        np.savez(npz, a=tum, b=tum)
        with pytest.raises(LoaderError, match="'depth'"):
            read_depth(npz)
        u8 = Path(tmp) / "u8.npy"
        np.save(u8, np.ones((2, 3, 4), np.uint8))
        with pytest.raises(LoaderError, match="scale="):
            read_depth(u8, rate_hz=1.0)
        np.save(u8, np.ones((2, 3, 4, 2), np.uint16))
        with pytest.raises(LoaderError, match=r"\(N, H, W\)"):
            read_depth(u8, rate_hz=1.0)


def test_intrinsics_forms(fixtures_dir: Path) -> None:
    png = fixtures_dir / TUM
    s = _check_depth(read_depth(png, scale=5000, intrinsics={"fx": 517.3, "fy": 516.5, "cx": 318.6, "cy": 255.3}))
    assert s.meta["intrinsics"] == {"fx": 517.3, "fy": 516.5, "cx": 318.6, "cy": 255.3, "width": 640, "height": 480}
    bad: list[tuple[Any, str]] = [
        ({"fx": 0, "fy": 1, "cx": 1, "cy": 1}, "focal"),
        ({"fx": 1, "fy": 1, "cx": float("nan"), "cy": 1}, "finite"),
        ({"focal": 1}, "fx, fy, cx, cy"),
        ({"width": 320, "height": 240, "intrinsic_matrix": [525, 0, 0, 0, 525, 0, 159.5, 119.5, 1]}, "width 320"),
        ({"width": 640, "height": 480, "intrinsic_matrix": [525, 0, 0, 0, 525, 0, 319.5, 239.5]}, "9 finite"),
        ({"width": 640, "height": 480, "intrinsic_matrix": [525, 1, 0, 0, 525, 0, 319.5, 239.5, 1]}, "pinhole"),
    ]
    for spec, message in bad:
        with pytest.raises(LoaderError, match=message):
            read_depth(png, scale=5000, intrinsics=spec)
    with tempfile.TemporaryDirectory() as tmp:
        j = Path(tmp) / "intrinsic.json"
        j.write_text(json.dumps([1, 2, 3]))
        with pytest.raises(LoaderError, match=r"TUM_depth\.png.*intrinsic\.json"):
            read_depth(png, intrinsics=j)


# --------------------------------------------------------------------------------------------- videos


def _write_video(path: Path, frames: np.ndarray, fourcc: str, fps: float) -> bool:
    params = [cv2.VIDEOWRITER_PROP_IS_COLOR, 0]
    if frames.dtype == np.uint16:
        params += [cv2.VIDEOWRITER_PROP_DEPTH, cv2.CV_16U]
    h, w = frames.shape[1:]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), params)
    if not writer.isOpened():
        return False
    for f in frames:
        writer.write(f)
    writer.release()
    return True


def test_video_ffv1_16bit_is_exact() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 65535, size=(6, 48, 64), dtype=np.uint16)
    frames[:, :4] = 0
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "depth.mkv"
        if not _write_video(p, frames, "FFV1", 10.0):
            pytest.skip("this opencv build cannot write 16-bit FFV1")
        rec = read_depth(p, start_ns=START_NS)
        s = _check_depth(rec)
        np.testing.assert_array_equal(s.data, frames)
        assert s.rate_hz == 10.0 and "warnings" not in s.meta
        assert s.meta["video"]["decoded_as"] == "gray16 (exact)"
        assert s.time_ns.tolist() == [START_NS + k * 100_000_000 for k in range(6)]
        assert_recording_equal(xrdata.loaders.read(p, start_ns=START_NS), rec)
        fast = _check_depth(read_depth(p, rate_hz=20.0))  # rate_hz overrides the container's timing
        assert fast.rate_hz == 20.0 and fast.time_ns.tolist() == [k * 50_000_000 for k in range(6)]
        m = _check_depth(read_depth(p, scale=5000, as_metres=True))
        np.testing.assert_allclose(m.data, np.where(frames == 0, np.nan, frames / 5000), rtol=1e-6)


def test_video_8bit_lossy_needs_scale_and_warns() -> None:
    frames = np.repeat(np.arange(0, 250, 50, dtype=np.uint8)[:, None, None], 48, 1).repeat(64, 2)  # (5, 48, 64)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "depth.avi"
        if not _write_video(p, frames, "MJPG", 15.0):
            pytest.skip("this opencv build cannot write MJPG")
        with pytest.raises(LoaderError, match=r"depth\.avi.*scale="):
            read_depth(p)
        s = _check_depth(read_depth(p, scale=25.5))  # 255 grey levels = 10 m
        assert s.data.shape == (5, 48, 64) and s.rate_hz == 15.0
        assert any("8-bit" in w for w in s.meta["warnings"]) and any("lossy" in w for w in s.meta["warnings"])
        np.testing.assert_allclose(s.data[:, 24, 32], np.arange(0, 250, 50) * 1000 / 25.5, atol=2 * 1000 / 25.5)
    with tempfile.TemporaryDirectory() as tmp:
        junk = Path(tmp) / "junk.mkv"
        junk.write_bytes(b"\x1a\x45\xdf\xa3 not a matroska file")
        with pytest.raises(LoaderError, match=r"junk\.mkv"):
            read_depth(junk)


def test_bad_arguments(fixtures_dir: Path) -> None:
    png = fixtures_dir / TUM
    for kwargs, message in (({"rate_hz": 0}, "rate_hz"), ({"scale": -5}, "scale"), ({"start_ns": 0.5}, "start_ns")):
        with pytest.raises(LoaderError, match=message):
            read_depth(png, **kwargs)
    with pytest.raises(LoaderError, match="no such file"):
        read_depth(fixtures_dir / "nope.png")
