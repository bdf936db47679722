"""``xrdata quickstart``: the main job, end to end on a small cohort.

Synthesize a small longitudinal cohort (the ``quickstart`` preset of :mod:`xrdata.synth`) into a store,
validate it, train the federated model with its baselines (the ``quickstart`` preset of
:mod:`xrdata.fed_training`), evaluate it, and write the reports: ``report.json`` (summary),
``run/results.json``, ``run/results.md`` and ``run/report.html``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from xrdata.catalog import recorded_hours
from xrdata.store import open_store
from xrdata.validation import validate

#: The cohort: the synthesizer's ``quickstart`` preset with longer and more sessions (1.6 hours of recordings
#: of 8 users over 3 weeks), enough for the trainer's held-out users and future weeks. Attendance is balanced
#: (6 sessions per user): with the preset's skewed attendance, 8 users leave some with one session and no
#: future weeks, and one heavy user can hold half of all windows.
COHORT = {"users": 8, "weeks": 3.0, "session_minutes": 2.0, "sessions_per_week": 2.0, "balanced": True}


def run(out: Path, *, users: int | None = None, weeks: float | None = None, seed: int | None = None,
        workers: int | None = None, rounds: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Build ``out/store``, check it, train and evaluate into ``out/run``, write ``out/report.json``; returns
    the summary. ``users``/``weeks``/``seed`` override the synthesizer's preset, ``rounds`` the trainer's."""
    from xrdata.fed_training.config import config_from_preset as train_preset
    from xrdata.fed_training.train import train
    from xrdata.progress import progress_bar
    from xrdata.synth import config_from_preset, generate

    t0 = time.perf_counter()
    store_path = out / "store"
    if store_path.exists():
        shutil.rmtree(store_path)
    out.mkdir(parents=True, exist_ok=True)
    config = config_from_preset("quickstart", **{**COHORT, "users": users or COHORT["users"],
                                                 "weeks": weeks or COHORT["weeks"], "seed": seed})
    result = generate(config, store_path, workers=workers, progress=not quiet)
    t_synth = time.perf_counter() - t0
    store = open_store(store_path, mode="r")
    sessions = [(u, s) for u in store.users() for s in store.sessions(u)]
    errors = [
        f"{u}/{s}: {v.message}"
        for u, s in progress_bar(sessions, desc="validate", unit="session", enabled=not quiet)
        for v in validate(store.read(u, s)) if v.severity == "error"
    ]
    cat = store.catalog().collect()
    overrides: dict[str, Any] = {"fed": {"seed": config.seed}}
    if rounds is not None:
        overrides["fed"]["rounds"] = rounds
    cfg = train_preset("quickstart", overrides)
    t1 = time.perf_counter()
    results = train(store, cfg, out / "run", workers=workers or 1, progress=not quiet)
    methods = results["methods"]
    report = {
        "store": str(store_path),
        "run": str(out / "run"),
        "users": len(store.users()),
        "sessions": len(sessions),
        "streams": cat.height,
        "hours": float(recorded_hours(cat)["hours"][0]),
        "schema_errors": errors,
        "per_modality": cat.group_by("modality")
        .agg(pl.len().alias("streams"), pl.col("missing_frac").mean().alias("mean_missing_frac"))
        .sort("modality")
        .to_dicts(),
        "windows": results["windows"],
        "mean_macro_f1": {m: {k: v.get(f"{k}_mean_macro_f1") for k in ("future", "unseen")}
                          for m, v in methods.items()},
        "ground_truth": result.ground_truth,
        "synth_s": round(t_synth, 2),
        "train_eval_s": round(time.perf_counter() - t1, 2),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if not quiet:
        print("\n".join(summary_lines(report)))
    return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    """What ``xrdata quickstart`` prints at the end, from the summary :func:`run` returns."""
    w = report["windows"]
    lines = [
        f"synthesized {report['sessions']} sessions ({report['hours']:.2f} h) of {report['users']} users into "
        f"{report['store']} ({report['synth_s']} s); {len(report['schema_errors'])} schema error(s)",
        f"windows: {w.get('train', 0)} training, {w.get('future', 0)} of future weeks, {w.get('unseen', 0)} of "
        f"unseen users ({w.get('adapt', 0)} more for their adaptation)",
    ]
    width = max((len(m) for m in report["mean_macro_f1"]), default=0)
    for m, v in report["mean_macro_f1"].items():
        lines.append(f"  {m:{width}s} mean macro-F1: future weeks {_fmt(v['future'])}, "
                     f"unseen users {_fmt(v['unseen'])}")
    lines += ["  (a small cohort: these scores show that the pipeline runs; for the standard benchmark run "
              "xrdata synth --preset benchmark, then xrdata train --preset benchmark)",
              f"report: {Path(report['run']) / 'report.html'} ({report['wall_s']} s)"]
    return lines


def _fmt(v: float | None) -> str:
    return "-" if v is None or v != v else f"{v:.3f}"
