"""``xrdata quickstart``: the main job, end to end on a small cohort.

Today: synthesize a small longitudinal cohort (the ``quickstart`` preset of :mod:`xrdata.synth`) into a
store, validate it, read the catalog, cut training windows per user, and write a JSON report. The federated
trainer joins as the train -> evaluate steps of the same pipeline when it lands.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from xrdata.store import open_store
from xrdata.validation import validate
from xrdata.windowing import windows


def run(out: Path, *, users: int | None = None, weeks: float | None = None, seed: int | None = None,
        workers: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Build ``out/store``, check it, cut windows, and write ``out/report.json``; returns the report.

    ``users``/``weeks``/``seed`` override the synthesizer's ``quickstart`` preset.
    """
    from tqdm import tqdm

    from xrdata.synth import config_from_preset, generate

    t0 = time.perf_counter()
    store_path = out / "store"
    if store_path.exists():
        shutil.rmtree(store_path)
    out.mkdir(parents=True, exist_ok=True)
    config = config_from_preset("quickstart", users=users, weeks=weeks, seed=seed)
    result = generate(config, store_path, workers=workers, progress=not quiet)
    store = open_store(store_path, mode="r")
    sessions = [(u, s) for u in store.users() for s in store.sessions(u)]
    errors = [
        f"{u}/{s}: {v.message}"
        for u, s in tqdm(sessions, desc="validate", unit="session", disable=quiet or None)
        for v in validate(store.read(u, s)) if v.severity == "error"
    ]
    cat = store.catalog().collect()
    n_windows = 0
    labelled = 0
    for user in tqdm(store.users(), desc="windows", unit="user", disable=quiet or None):
        for w in windows(store, user, length_s=2.0, hop_s=2.0, steps=20):
            n_windows += 1
            labelled += bool(w.labels)
    report = {
        "store": str(store_path),
        "users": len(store.users()),
        "sessions": len(sessions),
        "streams": cat.height,
        "hours": float(cat["duration_s"].sum()) / 3600,
        "schema_errors": errors,
        "windows": n_windows,
        "labelled_windows": labelled,
        "per_modality": cat.group_by("modality")
        .agg(pl.len().alias("streams"), pl.col("missing_frac").mean().alias("mean_missing_frac"))
        .sort("modality")
        .to_dicts(),
        "ground_truth": result.ground_truth,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if not quiet:
        print(f"synthesized {report['sessions']} sessions ({report['hours']:.2f} h) of {report['users']} users "
              f"into {store_path}")
        print(f"{len(errors)} schema error(s); {n_windows} training windows of 2 s, {labelled} with task labels")
        print(f"report: {out / 'report.json'} ({report['wall_s']} s)")
    return report
