"""Generation speed of ``xrdata.synth`` in multiples of real time per CPU core, against writing the same
arrays through the same ``Store`` (the anchor), measured in the same run.

One planned session (default 10 minutes; all seven tasks; the planner's segments, dropout, drift and QoE) is
generated with ``xrdata.synth.generate.generate_session`` on two device presets:

    quest_pro + eeg_cap_32   gaze 90 Hz, head 90 Hz, IMU 1 kHz, hands 60 Hz, audio 16 kHz (the synthesizer's
                             default rate), EEG 32 ch 500 Hz, structured-light depth 256 x 192 at 30 fps
    vision_pro + eeg_cap_32  the same streams with its own rates (hands 90 Hz) and a ToF depth 256 x 192 at 30 fps

Each generator call is timed inside ``generate_session`` (the module's generator lookup is wrapped, and the
speech planning that precedes the generators is counted as audio's; nothing else changes), so the per-modality
numbers add up to the full session; the rest of ``generate_session``
(bursty loss, label and QoE events, ground-truth rows) is reported as "other" and belongs to the full set.
x real time per core = session seconds / process CPU seconds (numpy/BLAS threads are pinned to 1 before
numpy is imported, so one generator uses one core; the wall clock is reported too, the machine is shared).

The anchor: the recording that was just generated is written again with ``Store.write`` into a fresh local
store, one recording per modality (its streams alone) and one with every stream and the events: the write-only
throughput of exactly the bytes the generator produces. Generation + write against write alone:
``ratio = write / (generate + write)``; the issue's target is >= 0.5 (generation costs no more than the write).
Medians of ``--reps`` runs, generation and writes alternating.

Targets (issue 4): all non-depth modalities together >= 500 x real time per core; depth 256 x 192 at 30 fps
>= 30 x real time per core; generate + write >= 0.5 x the write-only throughput.

Usage::

    python benchmarks/synth_bench.py                  # 10-minute session, 3 reps: ~3-4 min on 2 cores
    python benchmarks/synth_bench.py --minutes 2 --reps 1   # smoke run
    python benchmarks/synth_bench.py --json out.json  # also write every number as JSON
    python benchmarks/synth_bench.py --update-readme  # rewrite this script's block in benchmarks/README.md
    python benchmarks/synth_bench.py --profile gaze,head,hand   # cProfile of those generators (top 25)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per generator: set before numpy is imported

import argparse  # noqa: E402
import cProfile  # noqa: E402
import dataclasses  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from _common import cpu_model, md_table, settle, update_readme  # noqa: E402  benchmarks/_common.py

import xrdata  # noqa: E402
from xrdata.model import EVENTS_SCHEMA, Recording  # noqa: E402

GEN = importlib.import_module("xrdata.synth.generate")  # the module (xrdata.synth.generate is the function)
AUDIO = importlib.import_module("xrdata.synth.audio")
README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- synth_bench:begin -->", "<!-- synth_bench:end -->"
#: Generator module -> the streams it records (head also makes the IMU stream).
MODULE_STREAMS = {"eye": ("gaze",), "head": ("head", "imu"), "hand": ("hand",), "audio": ("audio",),
                  "eeg": ("eeg",), "depth": ("depth",)}
NON_DEPTH = ("eye", "head", "hand", "audio", "eeg")
TARGET_NON_DEPTH, TARGET_DEPTH, TARGET_RATIO = 500.0, 30.0, 0.5
DEVICES = {"structured_light": "quest_pro", "tof": "vision_pro"}


def _plan(device_base: str, minutes: float, seed: int) -> Any:
    """A planned 10-minute-class session of one user doing all seven tasks on ``device_base`` + a 32-channel
    EEG cap, depth at the device's native 256 x 192 x 30 fps and audio at the synthesizer's 16 kHz."""
    from xrdata.synth import SynthConfig
    from xrdata.synth.devices import get_device, scaled_sensors
    from xrdata.synth.timeline import LABELS, plan_user

    cfg = SynthConfig(
        users=1, weeks=1.0, seed=seed, cohorts={"lab": 1.0}, devices={device_base: 1.0}, eeg_cap_prob=1.0,
        tasks=tuple(LABELS), all_tasks=True, balanced=True, sessions_per_week=1, session_minutes=minutes,
        segment_seconds=(15.0, 45.0), depth_fps=None, depth_max_width=None, audio_rate_hz=16000.0,
        mic_muted_prob=0.0, eeg_off_prob=0.0, dirichlet_alpha=10.0, test_user_frac=0.0,
    )
    plan = plan_user(cfg, seed, "u0001").sessions[0]
    device = scaled_sensors(get_device(f"{device_base}+eeg_cap_32"), audio_rate_hz=16000.0)
    meta = {**plan.meta, "device_sensors": sorted(device.sensors)}
    return dataclasses.replace(plan, device=device, eeg_worn=True, mic_muted=False, meta=meta)


class _Timed:
    """Wraps the generator lookup of ``xrdata.synth.generate`` to time every generator call (CPU and wall), and
    the session's speech planning, which ``generate_session`` runs before the generators, as audio's."""

    def __init__(self, profile: set[str] | None = None) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.profile = profile or set()
        self.profiler = cProfile.Profile() if self.profile else None
        self._orig: Callable[..., Any] = GEN._generator
        self._plan_speech: Callable[..., Any] = AUDIO.plan_speech

    def _timed(self, module: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            c, w = time.process_time(), time.perf_counter()
            prof = self.profiler if module in self.profile else None
            if prof is not None:
                prof.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                if prof is not None:
                    prof.disable()
                self.cpu[module] = self.cpu.get(module, 0.0) + time.process_time() - c
                self.wall[module] = self.wall.get(module, 0.0) + time.perf_counter() - w

        return timed

    def __enter__(self) -> _Timed:
        def lookup(module: str, func: str) -> Any:
            fn = self._orig(module, func)
            return None if fn is None else self._timed(module, fn)

        GEN._generator = lookup
        AUDIO.plan_speech = self._timed("audio", self._plan_speech)
        return self

    def __exit__(self, *exc: object) -> None:
        GEN._generator = self._orig
        AUDIO.plan_speech = self._plan_speech


def _generate(plan: Any, seed: int, profile: set[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """Run generate_session once: (result, {"cpu": {module: s}, "wall": {...}, "total_cpu", "total_wall"})."""
    with _Timed(profile) as t:
        c, w = time.process_time(), time.perf_counter()
        res = GEN.generate_session(plan, seed)
        total_cpu, total_wall = time.process_time() - c, time.perf_counter() - w
    out = {"cpu": dict(t.cpu), "wall": dict(t.wall), "total_cpu": total_cpu, "total_wall": total_wall,
           "profiler": t.profiler}
    return res, out


def _write(rec: Recording, root: Path) -> tuple[float, float]:
    """Store.write of ``rec`` into a fresh store under ``root``: (CPU s, wall s), store opened before the timer."""
    if root.exists():
        shutil.rmtree(root)
    store = xrdata.open_store(root)
    settle()
    c, w = time.process_time(), time.perf_counter()
    store.write(rec)
    return time.process_time() - c, time.perf_counter() - w


def _subset(rec: Recording, names: tuple[str, ...], events: bool) -> Recording:
    streams = {k: v for k, v in rec.streams.items() if k in names}
    ev = rec.events if events else pl.DataFrame(schema=EVENTS_SCHEMA)
    return Recording(rec.user_id, rec.session_id, streams, ev, dict(rec.meta))


def _nbytes(rec: Recording, names: tuple[str, ...]) -> int:
    return sum(s.data.nbytes + s.time_ns.nbytes for k, s in rec.streams.items() if k in names)


def run(minutes: float, reps: int, seed: int, work: Path, profile: set[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"minutes": minutes, "reps": reps, "seed": seed, "devices": {}}
    med = statistics.median
    # warm-up: imports (scipy.signal alone takes seconds), caches and first-touch allocations, untimed
    GEN.generate_session(_plan("quest_pro", 0.5, seed + 1), seed)
    for kind, base in DEVICES.items():
        plan = _plan(base, minutes, seed)
        gen_runs: list[dict[str, Any]] = []
        writes: dict[str, list[tuple[float, float]]] = {}
        rec = None
        for rep in range(reps):
            # like a synth worker, which frees each session once written: the previous rep's arrays are released
            # first, so the allocator can reuse their pages (first-touching 530 MB of depth frames costs ~0.5
            # CPU s without transparent huge pages, more than the generator's own arithmetic)
            rec = res = sub = None
            res, timing = _generate(plan, seed, profile if (rep == 0 and kind == "structured_light") else None)
            if timing["profiler"] is not None:
                s = io.StringIO()
                pstats.Stats(timing["profiler"], stream=s).sort_stats("cumulative").print_stats(25)
                out["profile"] = s.getvalue()
            timing.pop("profiler")
            gen_runs.append(timing)
            rec = res.recording
            groups = {m: MODULE_STREAMS[m] for m in MODULE_STREAMS}
            groups["non_depth"] = tuple(s for m in NON_DEPTH for s in MODULE_STREAMS[m])
            groups["all"] = tuple(rec.streams)
            for name, streams in groups.items():
                sub = _subset(rec, streams, events=name == "all")
                writes.setdefault(name, []).append(_write(sub, work / f"w-{kind}-{name}"))
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True, exist_ok=True)
        assert rec is not None
        duration = float(plan.duration_s)

        def gen_cpu(mods: tuple[str, ...], runs: list[dict[str, Any]] = gen_runs) -> float:
            return med([sum(r["cpu"].get(m, 0.0) for m in mods) for r in runs])

        def gen_wall(mods: tuple[str, ...], runs: list[dict[str, Any]] = gen_runs) -> float:
            return med([sum(r["wall"].get(m, 0.0) for m in mods) for r in runs])

        rows: dict[str, dict[str, Any]] = {}
        for name in (*MODULE_STREAMS, "non_depth", "all"):
            mods = (name,) if name in MODULE_STREAMS else NON_DEPTH if name == "non_depth" else None
            if mods is None:
                g_cpu = med([r["total_cpu"] for r in gen_runs])
                g_wall = med([r["total_wall"] for r in gen_runs])
            else:
                g_cpu, g_wall = gen_cpu(mods), gen_wall(mods)
            w_cpu = med([c for c, _ in writes[name]])
            w_wall = med([w for _, w in writes[name]])
            streams = MODULE_STREAMS.get(name) or (tuple(rec.streams) if name == "all" else
                                                   tuple(s for m in NON_DEPTH for s in MODULE_STREAMS[m]))
            rows[name] = {
                "streams": [s for s in streams if s in rec.streams],
                "shapes": {s: [rec.streams[s].rate_hz, list(rec.streams[s].data.shape[1:]),
                               str(rec.streams[s].data.dtype)] for s in streams if s in rec.streams},
                "mb": _nbytes(rec, streams) / 1e6,
                "gen_cpu_s": g_cpu, "gen_wall_s": g_wall, "write_cpu_s": w_cpu, "write_wall_s": w_wall,
                "gen_x_rt_core": duration / g_cpu, "gen_x_rt_wall": duration / g_wall,
                "write_x_rt_core": duration / w_cpu, "gen_write_x_rt_core": duration / (g_cpu + w_cpu),
                "ratio_cpu": w_cpu / (g_cpu + w_cpu), "ratio_wall": w_wall / (g_wall + w_wall),
                "gen_cpu_each": [sum(r["cpu"].get(m, 0.0) for m in (mods or ())) if mods else r["total_cpu"]
                                 for r in gen_runs],
            }
        other = med([r["total_cpu"] - sum(r["cpu"].values()) for r in gen_runs])
        out["devices"][kind] = {"device": plan.device.name, "duration_s": duration, "rows": rows,
                                "other_cpu_s": other, "segments": len(plan.segments),
                                "tasks": sorted({s.task for s in plan.segments})}
    return out


def _fmt_shape(row: dict[str, Any]) -> str:
    parts = []
    for s, (rate, shape, dtype) in row["shapes"].items():
        parts.append(f"{s} {rate:g} Hz {'x'.join(str(v) for v in shape) or '1'} {dtype}")
    return "; ".join(parts)


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}; "
        f"load average {m['loadavg_start'][0]:.1f} / {m['loadavg_start'][1]:.1f} / {m['loadavg_start'][2]:.1f} "
        f"(1/5/15 min) at start, {m['loadavg_end'][0]:.1f} / {m['loadavg_end'][1]:.1f} / "
        f"{m['loadavg_end'][2]:.1f} at end (the machine is shared with other jobs; CPU-time columns are the "
        "steadier ones). Session: "
        f"{res['minutes']:g} min planned, median of {res['reps']} reps; BLAS/OpenMP threads pinned to 1.",
        "",
    ]
    sl, tof = res["devices"]["structured_light"], res["devices"]["tof"]
    lines.append(f"**Generation** on {sl['device']} ({sl['duration_s']:.0f} s, {sl['segments']} segments of "
                 f"{len(sl['tasks'])} tasks); x real time per core = session s / process CPU s; "
                 "anchor = `Store.write` of the same arrays alone (write-only), same run; "
                 "ratio = write / (generate + write)")
    lines.append("")
    header = ["generator", "streams", "MB", "generate CPU s", "x real time / core", "target", "met",
              "write-only CPU s", "write-only x RT / core", "generate + write x RT / core",
              "ratio (CPU)", "ratio (wall)", "ratio >= 0.5"]
    rows = []
    for name, label in (("eye", "gaze"), ("head", "head + IMU"), ("hand", "hand"), ("audio", "audio"),
                        ("eeg", "EEG"), ("non_depth", "**all non-depth**"), ("depth", "depth (structured light)"),
                        ("all", "**full set** (+ dropout, events, QoE)")):
        r = sl["rows"][name]
        target = TARGET_NON_DEPTH if name == "non_depth" else TARGET_DEPTH if name == "depth" else None
        met = "" if target is None else ("yes" if r["gen_x_rt_core"] >= target else "**no**")
        rows.append([label, _fmt_shape(r), f"{r['mb']:.0f}", f"{r['gen_cpu_s']:.2f}", f"{r['gen_x_rt_core']:.0f}",
                     f">= {target:g}" if target else "", met, f"{r['write_cpu_s']:.2f}",
                     f"{r['write_x_rt_core']:.0f}", f"{r['gen_write_x_rt_core']:.0f}", f"{r['ratio_cpu']:.2f}",
                     f"{r['ratio_wall']:.2f}", "yes" if r["ratio_cpu"] >= TARGET_RATIO else "**no**"])
    r = tof["rows"]["depth"]
    rows.append([f"depth (ToF, {tof['device']})", _fmt_shape(r), f"{r['mb']:.0f}", f"{r['gen_cpu_s']:.2f}",
                 f"{r['gen_x_rt_core']:.0f}", f">= {TARGET_DEPTH:g}",
                 "yes" if r["gen_x_rt_core"] >= TARGET_DEPTH else "**no**", f"{r['write_cpu_s']:.2f}",
                 f"{r['write_x_rt_core']:.0f}", f"{r['gen_write_x_rt_core']:.0f}", f"{r['ratio_cpu']:.2f}",
                 f"{r['ratio_wall']:.2f}", "yes" if r["ratio_cpu"] >= TARGET_RATIO else "**no**"])
    lines.append(md_table(header, rows))
    lines.append("")
    gg = " / ".join(f"{x:.2f}" for x in sl["rows"]["non_depth"]["gen_cpu_each"])
    lines.append(f"Per rep, all non-depth generators (CPU s): {gg}; rest of `generate_session` (bursty loss, "
                 f"events, QoE, ground-truth rows): {sl['other_cpu_s']:.2f} CPU s. Wall-clock x real time "
                 f"(non-depth / depth SL / depth ToF): {sl['rows']['non_depth']['gen_x_rt_wall']:.0f} / "
                 f"{sl['rows']['depth']['gen_x_rt_wall']:.0f} / {tof['rows']['depth']['gen_x_rt_wall']:.0f}.")
    lines.append("")
    lines.append(f"Whole run: {res['wall_s']:.0f} s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="planned session length (default 10)")
    ap.add_argument("--reps", type=int, default=3, help="generations and writes per device (default 3)")
    ap.add_argument("--seed", type=int, default=7, help="planner seed (default 7)")
    ap.add_argument("--dir", type=Path, help="work directory for the stores (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write every number as JSON here")
    ap.add_argument("--update-readme", action="store_true", help="rewrite this script's block in README.md")
    ap.add_argument("--profile", help="comma-separated generator modules to cProfile (eye, head, hand, ...)")
    args = ap.parse_args(argv)

    import scipy

    t0 = time.perf_counter()
    machine = {"cores": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
               "numpy": np.__version__, "scipy": scipy.__version__, "loadavg_start": os.getloadavg()}
    tmp = tempfile.mkdtemp(prefix="xrdata-synth-bench-", dir=args.dir)
    try:
        profile = set(args.profile.split(",")) if args.profile else None
        res = run(args.minutes, args.reps, args.seed, Path(tmp) / "work", profile)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    machine["loadavg_end"] = os.getloadavg()
    res["machine"] = machine
    res["wall_s"] = time.perf_counter() - t0
    text = report(res)
    print(text)
    if "profile" in res:
        print("\ncProfile (cumulative) of", args.profile, "\n", res["profile"])
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if args.update_readme:
        update_readme(README, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
