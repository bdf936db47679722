"""Throughput of ``xrdata.windows`` against a naive in-memory anchor, measured in the same run.

Writes one 10-minute session (gaze 200 Hz (28,), hand 90 Hz (2, 26, 9), IMU 1 kHz (9,), EEG 32 ch 500 Hz,
audio 16 kHz mono) to a temporary store, then times:

- ``xrdata.windows(length 2 s, hop 1 s)``: lazy block reads + per-step resampling and masks for every
  stream (default steps = rate x length, method "auto"), labels and events per window;
- the anchor: the whole session read with plain ``zarr`` into memory (time axis expanded from the compact
  regular time base where the store keeps one), then each window sliced per stream with ``np.searchsorted``
  and copied to float32 (no pooling, no masks, no labels, whole session resident).

Prints windows/s and MB/s (float32 window bytes produced per second) for both and the ratio, the peak
memory of each, and (when torch is installed) the windows/s a small model consumes in training on the same
CPU, since the input pipeline must outrun it at least 3x.
Usage: ``python benchmarks/windows_bench.py [--minutes 10] [--repeat 1] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr

import xrdata
from xrdata.encoding import expand_time
from xrdata.model import EVENTS_SCHEMA
from xrdata.testing import example_stream

LENGTH_S, HOP_S = 2.0, 1.0


def _regular(n: int, rate: float) -> np.ndarray:
    return np.round(np.arange(n) * (1e9 / rate)).astype(np.int64)


def _smooth(rng: np.random.Generator, n: int, c: int, scale: float) -> np.ndarray:
    """Band-limited noise: a random walk per channel, cheap to make, compressible like real signals."""
    steps = rng.standard_normal((n, c), dtype=np.float32) * np.float32(scale)
    return np.cumsum(steps, axis=0, dtype=np.float32) * np.float32(0.01)


def make_session(minutes: float, seed: int = 0) -> xrdata.Recording:
    rng = np.random.default_rng(seed)
    seconds = minutes * 60.0
    streams = [
        example_stream("gaze", int(seconds * 200), rng=rng, rate_hz=200.0, name="gaze"),
        example_stream("hand", int(seconds * 90), rng=rng, rate_hz=90.0, name="hand"),
        example_stream("audio", int(seconds * 16000), rng=rng, rate_hz=16000.0, name="audio"),
    ]
    n_imu = int(seconds * 1000)
    imu = np.concatenate(
        [_smooth(rng, n_imu, 3, 1.0) + np.float32(9.81) * np.array([0, 1, 0], np.float32),
         _smooth(rng, n_imu, 3, 0.5), _smooth(rng, n_imu, 3, 1e-7) + np.float32(4e-5)], axis=1,
    )
    chans = [f"{k}_{a}" for k in ("accel", "gyro", "mag") for a in "xyz"]
    units = ["m/s^2"] * 3 + ["rad/s"] * 3 + ["T"] * 3
    streams.append(xrdata.Stream("imu", "motion", _regular(n_imu, 1000.0), imu, chans, units, rate_hz=1000.0))
    n_eeg = int(seconds * 500)
    eeg = _smooth(rng, n_eeg, 32, 1e-5)
    streams.append(
        xrdata.Stream("eeg", "eeg", _regular(n_eeg, 500.0), eeg, [f"E{i}" for i in range(32)], "V", rate_hz=500.0)
    )
    edges = np.arange(0, int(seconds) + 1, 5, dtype=np.int64) * 1_000_000_000
    classes = ["pinch", "swipe", "point", "grab"]
    events = pl.DataFrame(
        {"time_ns": edges[:-1], "duration_ns": np.diff(edges), "label": ["task/gesture"] * (edges.size - 1),
         "value": [classes[i % 4] for i in range(edges.size - 1)]},
        schema=EVENTS_SCHEMA,
    )
    return xrdata.Recording("bench", "s0001", streams, events=events)


def run_windows(store: xrdata.Store) -> tuple[int, int, float]:
    t = time.perf_counter()
    n = nbytes = 0
    for w in xrdata.windows(store, "bench", LENGTH_S, HOP_S):
        n += 1
        nbytes += sum(a.nbytes for a in w.data.values())
    return n, nbytes, time.perf_counter() - t


def _plain_time(arr_group: Any, attrs: dict[str, Any]) -> np.ndarray:
    base = attrs["time"]
    n = int(attrs["n_samples"])
    if base["kind"] == "regular_segments":  # the documented compact time base
        return expand_time(base["segments"], int(base["rate_num"]), int(base["rate_den"]), n)
    return np.asarray(arr_group["time"][:n])


def run_anchor(root: Path) -> tuple[int, int, float]:
    """Whole session into memory with plain zarr, then searchsorted slices per window."""
    t = time.perf_counter()
    session = zarr.open_group(str(root), mode="r", path="users/bench/s0001/streams")
    loaded = {}
    for name in sorted(session.group_keys()):
        g = session[name]
        attrs = dict(g.attrs)["xrdata"]
        loaded[name] = (_plain_time(g, attrs), np.asarray(g["data"][:]))
    t0 = min(int(tt[0]) for tt, _ in loaded.values())
    last = max(int(tt[-1]) for tt, _ in loaded.values())
    length, hop = round(LENGTH_S * 1e9), round(HOP_S * 1e9)
    n = nbytes = 0
    for start in range(t0, last + 1, hop):
        for tt, d in loaded.values():
            i, j = np.searchsorted(tt, [start, start + length])
            nbytes += d[i:j].astype(np.float32).nbytes
        n += 1
    return n, nbytes, time.perf_counter() - t


def _peak_mb(fn: Any) -> float:
    """Peak memory traced (numpy buffers included) while ``fn`` runs, MB."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run_consumer(shapes: dict[str, tuple[int, ...]], batch: int = 32, steps: int = 3) -> tuple[int, int, float]:
    """Windows/s a small model consumes in training (torch CPU): per-stream linear tokenizers over 20 time
    patches, a 2-layer transformer (d=128), one head; AdamW steps on random batches of window shape."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    n_tok, dim = 20, 128
    flat = {k: (v[0], int(np.prod(v[1:]))) for k, v in shapes.items()}

    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.ModuleDict({k: nn.Linear(c, dim) for k, (_, c) in flat.items()})
            layer = nn.TransformerEncoderLayer(dim, 4, 4 * dim, dropout=0.0, batch_first=True)
            self.backbone = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(dim, 4)

        def forward(self, xb: dict[str, tuple[Any, Any]]) -> Any:
            toks = []
            for k, (x, m) in xb.items():
                x = torch.nan_to_num(x.reshape(x.shape[0], x.shape[1], -1)) * m[..., None]
                pad = (-x.shape[1]) % n_tok
                x = F.pad(x, (0, 0, 0, pad)).reshape(x.shape[0], n_tok, -1, x.shape[-1]).mean(2)  # (B, T, C)
                toks.append(self.tok[k](x))
            return self.head(self.backbone(torch.cat(toks, 1)).mean(1))

    model = Small()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    xb = {k: (torch.randn(batch, *v), torch.ones(batch, v[0])) for k, v in shapes.items()}
    y = torch.randint(0, 4, (batch,))
    t = 0.0
    for i in range(steps + 1):  # the first step warms up
        if i == 1:
            t = time.perf_counter()
        loss = F.cross_entropy(model(xb), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    n = batch * steps
    return n, n * sum(4 * int(np.prod(v)) for v in shapes.values()), time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="session length (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes of each side; the best is kept")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    ap.add_argument("--no-model", action="store_true", help="skip the small-model consumer proxy (torch)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="xrdata-windows-bench-") as tmp:
        root = Path(tmp) / "store"
        store = xrdata.open_store(root)
        t = time.perf_counter()
        rec = make_session(args.minutes)
        raw_mb = sum(s.data.nbytes + s.time_ns.nbytes for s in rec.streams.values()) / 1e6
        store.write(rec)
        del rec
        print(f"session: {args.minutes:g} min, {raw_mb:.0f} MB raw, made and written in "
              f"{time.perf_counter() - t:.1f} s")

        shapes = {k: v.shape for k, v in next(iter(xrdata.windows(store, "bench", LENGTH_S, HOP_S))).data.items()}
        ours = min((run_windows(store) for _ in range(args.repeat)), key=lambda r: r[2])
        anchor = min((run_anchor(root) for _ in range(args.repeat)), key=lambda r: r[2])
        peak_ours, peak_anchor = _peak_mb(lambda: run_windows(store)), _peak_mb(lambda: run_anchor(root))

    consumer = None
    if not args.no_model:
        try:
            consumer = run_consumer(shapes)
        except ImportError:
            print("torch is not installed: no small-model consumer proxy (pip install 'xrdata[train]')")
    rows = []
    measured = [("xrdata.windows (pooled, masked, lazy)", ours), ("anchor: zarr whole session + slices", anchor)]
    if consumer is not None:
        measured.append(("consumer: small model train step (CPU)", consumer))
    for label, (n, nbytes, sec) in measured:
        rows.append({"method": label, "windows": n, "seconds": sec, "windows_per_s": n / sec,
                     "mb_per_s": nbytes / 1e6 / sec, "window_mb": nbytes / 1e6 / max(1, n)})
    print(f"\nwindows of {LENGTH_S:g} s, hop {HOP_S:g} s; gaze 200 Hz, hand 90 Hz, IMU 1 kHz, EEG 500 Hz x 32, "
          "audio 16 kHz")
    print(f"{'method':<40} {'windows':>8} {'seconds':>8} {'windows/s':>10} {'MB/s':>8} {'MB/window':>10}")
    for r in rows:
        print(f"{r['method']:<40} {r['windows']:>8} {r['seconds']:>8.2f} {r['windows_per_s']:>10.1f} "
              f"{r['mb_per_s']:>8.1f} {r['window_mb']:>10.2f}")
    ratio = rows[0]["windows_per_s"] / rows[1]["windows_per_s"]
    print(f"ratio xrdata / anchor (windows/s): {ratio:.2f}x")
    consumer_ratio = None
    if consumer is not None:
        consumer_ratio = rows[0]["windows_per_s"] / rows[2]["windows_per_s"]
        print(f"ratio xrdata / small-model consumer (windows/s): {consumer_ratio:.1f}x (target >= 3x)")
    print(f"peak traced memory (separate untimed pass): xrdata.windows {peak_ours:.0f} MB, "
          f"anchor {peak_anchor:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratio": ratio, "consumer_ratio": consumer_ratio,
                                         "raw_mb": raw_mb,
                                         "peak_mb_windows": peak_ours, "peak_mb_anchor": peak_anchor},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
