"""Ingest time of xrdata against the reference reader's parse time alone, per format, in the same run.

For XDF and each EEG format (EDF, BDF, BrainVision, FIF, EEGLAB .set), on the same file:

    reference   the reference reader's parse alone: ``pyxdf.load_xdf(path)`` (default options: clock sync and
                dejitter, as ``read_xdf``'s defaults) or ``mne.io.read_raw_<fmt>(path, preload=True)``
    ingest      ``xrdata.loaders.ingest([path], store, user, session=...)`` into a fresh local store: content
                hash, parse, conversion, validation, the store write and the catalog: everything
    split       the same work in pieces, to show where the time goes: ``file_sha256(path)``, then
                ``read_<fmt>(path)`` (reference parse + conversion + check_writable), then ``Store.write(rec)``
                into a fresh store, then plain zarr writing the same arrays with the same chunks, shards and
                codecs as the store wrote them, then the codec alone: every chunk of the same arrays
                blosc-encoded in one thread and the bytes written to one file per array (the least any store
                of these samples with this codec costs)

target: ingest <= 1.3 x reference. Inputs:

* realistic-size generated files in a temp dir: a 10-minute XDF from ``write_synthetic_xdf`` (EEG 64 ch at
  1 kHz float32 microvolts, 120 Hz gaze, 90 Hz head pose, markers) and, for each EEG format, a 64-channel
  1 kHz 10-minute recording (correlated 1/f background, posterior alpha bursts, blinks, mains, amplifier
  noise, ~20 uV, 0.1 uV ADC step; an annotation every 2 s) written by mne (``raw.save`` for FIF,
  ``mne.export.export_raw`` for EDF/BDF (needs edfio), BrainVision (pybv) and EEGLAB (eeglabio));
* the real fixtures under ``../shared/fixtures`` (or ``$XRDATA_FIXTURES``): tiny files (<= 1 MB), where the
  store's fixed per-session costs (documents, fsyncs, catalog) dominate, so their ratios say little about
  throughput;
* a generated 60-minute XDF (same streams), for MB/s (input file bytes / wall seconds) of the whole ingest
  and of pyxdf's parse alone.

Each measurement is repeated ``--reps`` times (median reported), the order alternating between the reference
first and xrdata first. Wall-clock and CPU seconds (``time.process_time``, all threads, plus children from
``resource``) are both reported: the machine may be shared, and CPU time moves far less with other jobs.

Usage::

    python benchmarks/ingest_bench.py                  # full run: 4-6 min on 2 shared cores
    python benchmarks/ingest_bench.py --quick          # 1-minute files, 1 rep, no hour XDF: < 1 min
    python benchmarks/ingest_bench.py --json out.json  # also write every number (per-rep times too)
    python benchmarks/ingest_bench.py --update-readme  # rewrite this script's tables in benchmarks/README.md

Benchmark-only dependency: ``edfio`` (mne's EDF/BDF exporter; ``pip install edfio``). Without it the EDF
and BDF rows are skipped with a printed reason.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
from _common import cpu_model, md_table, settle, update_readme  # benchmarks/_common.py
from zarr.core.metadata import ArrayV3Metadata
from zarr.storage import LocalStore

import xrdata
from xrdata.loaders import ingest, read_bdf, read_brainvision, read_edf, read_eeglab, read_fif, read_xdf
from xrdata.loaders.ingest import file_sha256
from xrdata.loaders.xdf import write_synthetic_xdf
from xrdata.schemas import load as load_schema

USER = "bench"
TARGET = 1.3
ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- ingest_bench:begin -->", "<!-- ingest_bench:end -->"

# pyxdf logs warnings (e.g. declared vs effective rate of the real Pico file); xrdata's reader collects them
# with its own handler. A NullHandler keeps Python's last-resort handler from printing them, without changing
# the levels (which would change what the reader collects).
logging.getLogger("pyxdf").addHandler(logging.NullHandler())


# --------------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------------


def _cpu_s() -> float:
    """CPU seconds of this process (all threads: zarr's codec threads) and of its waited-for children."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


@contextmanager
def _timed(into: dict[str, list[float]], key: str) -> Iterator[None]:
    gc.collect()
    t, c = time.perf_counter(), _cpu_s()
    yield
    into.setdefault(key, []).append(time.perf_counter() - t)
    into.setdefault(key + "_cpu", []).append(_cpu_s() - c)


def _fresh_dir(work: Path, name: str) -> Path:
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    return path


# --------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------


def _pink(rng: np.random.Generator, n: int, c: int, fs: float, f0: float = 0.5) -> np.ndarray:
    """(n, c) 1/f noise above ``f0`` Hz, unit standard deviation, float32."""
    x = np.fft.rfft(rng.standard_normal((n, c), dtype=np.float32), axis=0)
    x *= (1.0 / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1.0 / fs), f0))).astype(np.float32)[:, None]
    x[0] = 0
    y = np.fft.irfft(x, n, axis=0)
    return (y / (y.std(axis=0, keepdims=True) + 1e-12)).astype(np.float32)


def _smooth(rng: np.random.Generator, n: int, fs: float, fc: float) -> np.ndarray:
    """(n,) zero-mean, unit-std noise low-passed below ``fc`` Hz (a slow random envelope)."""
    k = max(1, int(fs / fc))
    step = rng.standard_normal(n // k + 2)
    y = np.interp(np.arange(n) / k, np.arange(step.size), step)
    return (y - y.mean()) / (y.std() + 1e-12)


def synthetic_eeg(seconds: float, n_ch: int = 64, fs: float = 1000.0, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(n_ch, n) float64 volts shaped like scalp EEG, and 10-10 channel names.

    16 spatially mixed 1/f sources (volume conduction makes neighbouring channels correlated), posterior
    alpha bursts near 10 Hz, frontal blink artefacts every ~4 s, 50 Hz mains, white amplifier noise; about
    20 uV RMS, quantised to a 0.1 uV ADC step (a usual resolution setting of research amplifiers).
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * fs)
    names = list(load_schema("eeg")["channels"]["preferred"])[:n_ch]
    names += [f"E{i + 1}" for i in range(len(names), n_ch)]
    mixing = rng.normal(0.0, 1.0, (16, n_ch)).astype(np.float32) / 4.0
    uv = (_pink(rng, n, 16, fs) @ mixing) * np.float32(15.0)
    uv += rng.standard_normal((n, n_ch), dtype=np.float32) * np.float32(3.0)
    t = np.arange(n) / fs
    posterior = np.array([1.0 if nm[0] in "PO" else 0.3 for nm in names], dtype=np.float32)
    alpha = np.clip(1.0 + _smooth(rng, n, fs, 0.2), 0.0, None) * np.sin(2 * np.pi * (10.0 * t + 0.2 * np.cumsum(
        _smooth(rng, n, fs, 0.1)) / fs))
    uv += (12.0 * alpha).astype(np.float32)[:, None] * posterior
    uv += (1.0 * np.sin(2 * np.pi * 50.0 * t)).astype(np.float32)[:, None]
    blinks = np.zeros(n, dtype=np.float32)
    at = (np.cumsum(rng.exponential(4.0, int(seconds / 2) + 4)) * fs).astype(np.int64)
    blinks[at[at < n]] = 1
    shape = np.hanning(int(0.3 * fs)).astype(np.float32)
    uv[:, :4] += 80.0 * np.convolve(blinks, shape, mode="same")[:, None]
    return (np.round(uv.T.astype(np.float64) / 0.1) * 0.1e-6), names


def write_eeg_files(work: Path, seconds: float) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """One synthetic recording written as every EEG format mne can write here, plus a BioSemi-style BDF of it
    with a ``Status`` trigger channel (a stim channel, as every BioSemi file has): ([(fmt, path)], {fmt: why
    not})."""
    import mne

    data, names = synthetic_eeg(seconds)
    info = mne.create_info(names, 1000.0, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_meas_date(datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
    onsets = np.arange(1.0, seconds - 0.5, 2.0)
    raw.set_annotations(mne.Annotations(onsets, 0.0, ["Stimulus/S  1"] * onsets.size,
                                        orig_time=raw.info["meas_date"]))
    status = np.zeros(raw.n_times)
    for k, at in enumerate((onsets * 1000.0).astype(np.int64)):
        status[at : at + 20] = 1 + k % 250  # a 20 ms trigger with the code of each annotation
    biosemi = raw.copy().add_channels(
        [mne.io.RawArray(status[None], mne.create_info(["Status"], 1000.0, "stim"), verbose="error")],
        force_update_info=True)
    out: list[tuple[str, Path]] = []
    skipped: dict[str, str] = {}
    plan = [("edf", "eeg.edf", "edfio"), ("bdf", "eeg.bdf", "edfio"), ("bdf", "eeg_status.bdf", "edfio"),
            ("brainvision", "eeg.vhdr", "pybv"), ("fif", "eeg_raw.fif", None), ("eeglab", "eeg.set", "eeglabio")]
    for fmt, name, needs in plan:
        if needs is not None and importlib.util.find_spec(needs) is None:
            skipped[fmt] = f"no {fmt.upper()} writer: mne needs {needs} to export it (pip install {needs})"
            continue
        path = work / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "EDF format requires equal-length data blocks" notes
            if fmt == "fif":
                raw.save(path, overwrite=True, verbose="error")  # float32 samples (fmt="single")
            else:
                mne.export.export_raw(path, biosemi if name == "eeg_status.bdf" else raw, fmt=fmt, overwrite=True,
                                      verbose="error")
        out.append((fmt, path))
    return out, skipped


def input_bytes(path: Path) -> int:
    """Bytes of a recording: the file, plus a BrainVision header's marker/data files or an EEGLAB .fdt."""
    files = [path]
    if path.suffix.lower() == ".vhdr":
        files += [path.with_suffix(s) for s in (".vmrk", ".eeg", ".dat")]
    if path.suffix.lower() == ".set":
        files.append(path.with_suffix(".fdt"))
    return sum(f.stat().st_size for f in files if f.is_file())


def fixture_files() -> tuple[list[tuple[str, Path]], str | None]:
    """The real XDF/EEG fixtures ([(format, path)]), or a reason why there are none."""
    root = Path(os.environ.get("XRDATA_FIXTURES", ROOT.parent / "shared" / "fixtures"))
    wanted = [
        ("xdf", "xdf-modules_example-files/minimal.xdf"), ("xdf", "xdf-modules_example-files/empty_streams.xdf"),
        ("xdf", "labstreaminglayer_PicoNeo2Eye/test_pico_lsl.xdf"), ("edf", "mne-python/test.edf"),
        ("bdf", "mne-python/test.bdf"), ("brainvision", "mne-python/test.vhdr"),
        ("fif", "mne-python/test_bin_raw.fif"),
    ]
    found = [(fmt, root / rel) for fmt, rel in wanted if (root / rel).is_file()]
    return found, None if found else f"no fixtures at {root} (set XRDATA_FIXTURES)"


# --------------------------------------------------------------------------------------------------------
# The two sides
# --------------------------------------------------------------------------------------------------------


def reference_parse(fmt: str) -> Callable[[Path], Any]:
    """The reference reader's parse alone, with the options xrdata's reader uses by default."""
    if fmt == "xdf":
        import pyxdf

        return lambda p: pyxdf.load_xdf(str(p))
    import mne

    fn = {"edf": mne.io.read_raw_edf, "bdf": mne.io.read_raw_bdf, "brainvision": mne.io.read_raw_brainvision,
          "fif": mne.io.read_raw_fif, "eeglab": mne.io.read_raw_eeglab}[fmt]
    return lambda p: fn(p, preload=True, verbose="error")


REFERENCE_CALL = {
    "xdf": "pyxdf.load_xdf(path)", "edf": "mne.io.read_raw_edf(path, preload=True)",
    "bdf": "mne.io.read_raw_bdf(path, preload=True)", "brainvision": "mne.io.read_raw_brainvision(path, preload=True)",
    "fif": "mne.io.read_raw_fif(path, preload=True)", "eeglab": "mne.io.read_raw_eeglab(path, preload=True)",
}
XRDATA_READER: dict[str, Callable[..., xrdata.Recording]] = {
    "xdf": read_xdf, "edf": read_edf, "bdf": read_bdf, "brainvision": read_brainvision, "fif": read_fif,
    "eeglab": read_eeglab,
}


def _array_specs(root: Path, session_rel: str, rec: xrdata.Recording) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """For every stream array the store wrote: (source array, create_array kwargs read back from its metadata)."""
    store = LocalStore(root, read_only=True)
    out = {}
    for name, s in rec.streams.items():
        for part, values in (("data", s.data), ("time", s.time_ns)):
            rel = f"{session_rel}/streams/{name}/{part}"
            if not (root / rel / "zarr.json").exists():
                continue  # the compact regular time base: no time array on disk
            a = zarr.open_array(store, path=rel, mode="r")
            assert isinstance(a.metadata, ArrayV3Metadata), f"{rel} is not a zarr v3 array"
            out[rel] = (np.ascontiguousarray(values), {
                "shape": a.shape, "dtype": a.metadata.data_type, "chunks": a.chunks, "shards": a.shards,
                "filters": a.filters, "compressors": a.compressors, "serializer": a.serializer,
                "fill_value": a.metadata.fill_value,
            })
    return out


def plain_zarr_write(root: Path, specs: dict[str, tuple[np.ndarray, dict[str, Any]]]) -> None:
    store = LocalStore(root)
    for rel, (values, spec) in specs.items():
        a = zarr.create_array(store, name=rel, overwrite=True, **spec)
        if a.shape[0]:
            a[...] = values


def encode_write(root: Path, specs: dict[str, tuple[np.ndarray, dict[str, Any]]]) -> None:
    """The codec alone: each array's chunks blosc-encoded with the store's codec, in one thread, and the bytes
    written to one file per array (no zarr, no index, no validation): the floor of any compressed write."""
    root.mkdir(parents=True, exist_ok=True)
    for k, (values, spec) in enumerate(specs.values()):
        b = spec["compressors"][0]
        codec = numcodecs.Blosc(cname=b.cname.value, clevel=b.clevel, shuffle=SHUFFLE_IDS[b.shuffle.value],
                                blocksize=b.blocksize, typesize=b.typesize)
        step = spec["chunks"][0]
        with open(root / f"a{k}.bin", "wb") as fh:
            for a in range(0, values.shape[0], step):
                fh.write(codec.encode(np.ascontiguousarray(values[a : a + step])))


SHUFFLE_IDS = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def bench_file(fmt: str, path: Path, work: Path, reps: int, split: bool = True) -> dict[str, Any]:
    """Median (and per-rep) wall/CPU seconds of the reference parse, the ingest and its split, on one file."""
    ref = reference_parse(fmt)
    times: dict[str, list[float]] = {}

    def do_ref() -> None:
        with _timed(times, "ref"):
            out = ref(path)
        del out

    def do_ingest(rep: int) -> None:
        store = xrdata.open_store(_fresh_dir(work, "ingest"))  # opening a store is not part of an ingest
        settle()
        with _timed(times, "ingest"):
            ingest([path], store, USER, session=f"r{rep}")
        shutil.rmtree(work / "ingest")

    def do_split(rep: int) -> None:
        with _timed(times, "sha256"):
            file_sha256(path)
        with _timed(times, "read"):
            rec = XRDATA_READER[fmt](path, user_id=USER, session_id=f"r{rep}")
        store = xrdata.open_store(_fresh_dir(work, "split"))
        settle()
        with _timed(times, "write"):
            store.write(rec)
        specs = _array_specs(work / "split", f"users/{USER}/r{rep}", rec)
        shutil.rmtree(work / "split")
        del rec
        root = _fresh_dir(work, "plain")
        settle()
        with _timed(times, "zarr"):
            plain_zarr_write(root, specs)
        shutil.rmtree(root)
        root = _fresh_dir(work, "codec")
        settle()
        with _timed(times, "encode"):
            encode_write(root, specs)
        del specs
        shutil.rmtree(root)

    for rep in range(reps):
        xr_steps = [lambda rep=rep: do_ingest(rep)] + ([lambda rep=rep: do_split(rep)] if split else [])
        steps = [do_ref, *xr_steps] if rep % 2 == 0 else [*xr_steps, do_ref]
        for step in steps:
            step()
    res: dict[str, Any] = {"format": fmt, "file": path.name, "bytes": input_bytes(path), "reps": times}
    for key, values in times.items():
        res[key] = statistics.median(values)
    res["ratio"] = res["ingest"] / res["ref"]
    res["ratio_cpu"] = res["ingest_cpu"] / res["ref_cpu"] if res["ref_cpu"] > 0 else float("nan")
    if split:
        res["floor_ratio"] = (res["ref"] + res["zarr"]) / res["ref"]
        res["floor_ratio_cpu"] = (res["ref_cpu"] + res["zarr_cpu"]) / res["ref_cpu"]
        res["vs_floor"] = res["ingest"] / (res["ref"] + res["zarr"])
        res["vs_floor_cpu"] = res["ingest_cpu"] / (res["ref_cpu"] + res["zarr_cpu"])
        # The least an ingest that hashes the file (dedupe) and stores the samples with this codec costs in
        # CPU, whatever it overlaps: parse + sha256 + encode/write.
        res["codec_floor_cpu"] = (res["ref_cpu"] + res["sha256_cpu"] + res["encode_cpu"]) / res["ref_cpu"]
    res["loadavg_after"] = os.getloadavg()[0]
    return res


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    mem_gb = float("nan")
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        pass
    versions: dict[str, str | None] = {}
    for mod in ("numpy", "zarr", "pyxdf", "mne", "edfio", "pybv", "eeglabio"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:  # not installed
            versions[mod] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "xrdata": xrdata.__version__,
            "loadavg_start": os.getloadavg()}


def _s(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def _ok(ratio: float) -> str:
    return "yes" if ratio <= TARGET else "**no**"


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    v = m["versions"]
    load = f"load average {m['loadavg_start'][0]:.1f} at start, {m.get('loadavg_end', [float('nan')])[0]:.1f} at end"
    out = [
        f"Machine: {m['cores']} cores, {m['cpu']}, {m['mem_gb']:.0f} GB; Python {m['python']}, numpy {v['numpy']}, "
        f"zarr {v['zarr']}, pyxdf {v['pyxdf']}, mne {v['mne']}, edfio {v['edfio']}, pybv {v['pybv']}, "
        f"eeglabio {v['eeglabio']}; {load} (the machine is shared). Generated files: {res['minutes']:g} min; "
        f"median of {res['reps']} reps (fixtures: {res['fixture_reps']}), alternating order.",
        "",
    ]
    sections = [("Generated recordings", res["generated"]), ("Real fixtures (tiny: fixed per-session costs dominate)",
                                                             res["fixtures"])]
    for title, rows in sections:
        if not rows:
            continue
        out += [f"**{title}**: ingest (hash + parse + convert + validate + write + catalog) vs the reference "
                "parse alone; wall s (CPU s); ingest / floor = ingest / (reference + plain zarr write of the same "
                "arrays), i.e. xrdata's cost beyond the parse and the compressed write", ""]
        table = []
        for r in rows:
            table.append([
                r["format"], r["file"], f"{r['bytes'] / 1e6:.2f}", REFERENCE_CALL[r["format"]].split("(")[0],
                f"{_s(r['ref'])} ({_s(r['ref_cpu'])})", f"{_s(r['ingest'])} ({_s(r['ingest_cpu'])})",
                f"{r['ratio']:.2f}", f"{r['ratio_cpu']:.2f}", f"<= {TARGET}", _ok(r["ratio"]),
                f"{r['vs_floor']:.2f} ({r['vs_floor_cpu']:.2f})",
            ])
        out.append(md_table(["format", "file", "MB", "reference", "reference s", "ingest s", "ingest / ref",
                              "ingest / ref (CPU)", "target", "met", "ingest / floor"], table))
        out += ["", f"Where the time goes ({title.split(' (')[0].lower()}; medians, wall s (CPU s)): `read_<fmt>` = "
                "reference parse + conversion + `check_writable`; conversion = `read_<fmt>` - reference; plain zarr = "
                "the same arrays written with the store's chunks/shards/codecs; floor = (reference + plain zarr) / "
                "reference; codec = the same arrays' chunks encoded with the store's codec in one thread and the "
                "bytes written (no zarr); CPU floor = (reference + sha256 + codec) / reference in CPU seconds: "
                "the least any ingest that hashes the file and stores these samples with this codec can cost", ""]
        table = []
        for r in rows:
            table.append([
                r["format"], r["file"], f"{_s(r['sha256'])} ({_s(r['sha256_cpu'])})",
                f"{_s(r['read'])} ({_s(r['read_cpu'])})",
                f"{r['read'] - r['ref']:+.3f} ({r['read_cpu'] - r['ref_cpu']:+.3f})",
                f"{_s(r['write'])} ({_s(r['write_cpu'])})", f"{_s(r['zarr'])} ({_s(r['zarr_cpu'])})",
                f"{r['floor_ratio']:.2f} ({r['floor_ratio_cpu']:.2f})", f"{_s(r['encode'])} ({_s(r['encode_cpu'])})",
                f"{r['codec_floor_cpu']:.2f}",
            ])
        out.append(md_table(["format", "file", "sha256", "read_<fmt>", "conversion", "Store.write",
                              "plain zarr write", "floor", "codec", "CPU floor"], table))
        out.append("")
    if res["skipped"]:
        out += ["Skipped: " + "; ".join(f"{k}: {why}" for k, why in res["skipped"].items()), ""]
    h = res.get("hour")
    if h:
        mb = h["bytes"] / 1e6
        out += [
            f"**{h['minutes']:g}-minute XDF** ({mb:.0f} MB: EEG 64 ch float32 at 1 kHz, gaze 120 Hz, head pose 90 Hz, "
            f"markers; generated in {h['generate_s']:.0f} s; {h['reps_n']} rep): MB/s = input file MB / wall s "
            "(CPU: MB per CPU-second)", "",
            md_table(["", "wall s", "CPU s", "MB/s", "MB/CPU-s"], [
                ["pyxdf.load_xdf (parse alone)", _s(h["ref"]), _s(h["ref_cpu"]), f"{mb / h['ref']:.1f}",
                 f"{mb / h['ref_cpu']:.1f}"],
                ["xrdata ingest (everything)", _s(h["ingest"]), _s(h["ingest_cpu"]), f"{mb / h['ingest']:.1f}",
                 f"{mb / h['ingest_cpu']:.1f}"],
                ["ingest / pyxdf", f"{h['ratio']:.2f}", f"{h['ratio_cpu']:.2f}", "", ""],
            ]),
            "",
            f"Process peak RSS over the whole run: {res['peak_rss_gb']:.2f} GB (reached in the {h['minutes']:g}-minute "
            "runs).",
        ]
    elif res.get("hour_skipped"):
        out.append(f"Hour XDF skipped: {res['hour_skipped']}")
    return "\n".join(out).rstrip()


# --------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------


def _mem_available_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def _print_row(r: dict[str, Any]) -> None:
    print(f"  {r['format']:12s} {r['file']:28s} ref {_s(r['ref'])} s ({_s(r['ref_cpu'])} CPU)  ingest "
          f"{_s(r['ingest'])} s ({_s(r['ingest_cpu'])} CPU)  ratio {r['ratio']:.2f} (CPU {r['ratio_cpu']:.2f})  "
          f"load {os.getloadavg()[0]:.1f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1-minute files, 1 rep, no hour XDF (smoke run)")
    ap.add_argument("--minutes", type=float, help="length of the generated files (default 10, 1 with --quick)")
    ap.add_argument("--reps", type=int, help="repetitions per measurement (default 3, 1 with --quick)")
    ap.add_argument("--hour-minutes", type=float, default=60.0, help="length of the MB/s XDF (default 60)")
    ap.add_argument("--no-hour", action="store_true", help="skip the hour-long XDF")
    ap.add_argument("--no-fixtures", action="store_true", help="skip the real fixtures")
    ap.add_argument("--formats", default="xdf,edf,bdf,brainvision,fif,eeglab", help="comma-separated formats")
    ap.add_argument("--dir", type=Path, help="work directory on the disk to measure (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="write every result (per-rep times too) as JSON here")
    ap.add_argument("--update-readme", type=Path, nargs="?", const=Path(__file__).with_name("README.md"),
                    help="replace this script's generated block in benchmarks/README.md")
    args = ap.parse_args(argv)
    minutes = args.minutes or (1.0 if args.quick else 10.0)
    reps = args.reps or (1 if args.quick else 3)
    fixture_reps = reps if args.quick else max(reps, 5)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    t_all = time.perf_counter()
    res: dict[str, Any] = {"machine": machine(), "minutes": minutes, "reps": reps, "fixture_reps": fixture_reps,
                           "generated": [], "fixtures": [], "skipped": {}}
    print(f"load average {os.getloadavg()[0]:.1f}; {minutes:g}-min files, {reps} rep(s)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="xrdata-ingest-bench-", dir=args.dir))
    try:
        inputs: list[tuple[str, Path]] = []
        t = time.perf_counter()
        if "xdf" in formats:
            inputs.append(("xdf", work / "synthetic.xdf"))
            write_synthetic_xdf(inputs[0][1], minutes * 60.0, eeg_channels=64, eeg_rate=1000.0)
        eeg_formats = [f for f in formats if f != "xdf"]
        if eeg_formats:
            eeg, skipped = write_eeg_files(work, minutes * 60.0)
            inputs += [(f, p) for f, p in eeg if f in eeg_formats]
            res["skipped"].update({f: why for f, why in skipped.items() if f in eeg_formats})
        res["generate_s"] = time.perf_counter() - t
        print(f"generated {len(inputs)} files ({sum(input_bytes(p) for _, p in inputs) / 1e6:.0f} MB) in "
              f"{res['generate_s']:.0f} s", flush=True)
        for why in res["skipped"].items():
            print(f"  skipped {why[0]}: {why[1]}", flush=True)
        for fmt, path in inputs:
            r = bench_file(fmt, path, work, reps)
            res["generated"].append(r)
            _print_row(r)
            path.unlink()
        if not args.no_fixtures:
            found, why_not = fixture_files()
            if why_not:
                print(f"fixtures skipped: {why_not}", flush=True)
            for fmt, path in found:
                if fmt in formats:
                    r = bench_file(fmt, path, work, fixture_reps)
                    res["fixtures"].append(r)
                    _print_row(r)
        if not (args.quick or args.no_hour or "xdf" not in formats):
            hm = args.hour_minutes
            need_disk = 20e6 * hm * 2.5  # the file (~16.5 MB/min) + a store + headroom
            need_mem = 0.06 * hm  # GB: pyxdf's arrays + the converted copy + the write (measured ~3.5 GB/h)
            free = shutil.disk_usage(work).free
            if free < need_disk:
                res["hour_skipped"] = f"{free / 1e9:.1f} GB free on {work}, {need_disk / 1e9:.1f} GB needed"
            elif _mem_available_gb() < need_mem:
                res["hour_skipped"] = f"{_mem_available_gb():.1f} GB of memory available, {need_mem:.1f} GB needed"
            else:
                path = work / "hour.xdf"
                t = time.perf_counter()
                write_synthetic_xdf(path, hm * 60.0, eeg_channels=64, eeg_rate=1000.0)
                gen = time.perf_counter() - t
                print(f"generated the {hm:g}-min XDF ({path.stat().st_size / 1e6:.0f} MB) in {gen:.0f} s", flush=True)
                r = bench_file("xdf", path, work, 1, split=False)
                r.update(minutes=hm, generate_s=gen, reps_n=1)
                res["hour"] = r
                mb = r["bytes"] / 1e6
                print(f"  hour: pyxdf {mb / r['ref']:.1f} MB/s, ingest {mb / r['ingest']:.1f} MB/s, ratio "
                      f"{r['ratio']:.2f} (CPU {r['ratio_cpu']:.2f})", flush=True)
                path.unlink()
            if res.get("hour_skipped"):
                print(f"hour XDF skipped: {res['hour_skipped']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res["total_s"] = time.perf_counter() - t_all
    text = report(res)
    print()
    print(text)
    print(f"\ntotal {res['total_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if args.update_readme:
        update_readme(args.update_readme, BEGIN, END, text + f"\n\nWhole run: {res['total_s']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
