"""``xrdata quickstart``: the main job, end to end on a small cohort.

Today it builds a small multi-user store from the package's example recordings, validates it, reads the
catalog and cuts training windows, and writes a JSON report. The synthesizer and the trainer plug into the
same steps (synthesize -> train -> evaluate -> report) as they land.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xrdata.store import open_store
from xrdata.testing import example_recording
from xrdata.validation import validate
from xrdata.windowing import windows


def run(out: Path, *, users: int = 4, sessions: int = 2, seconds: float = 20.0, seed: int = 0,
        quiet: bool = False) -> dict[str, Any]:
    """Build ``out/store``, check it, cut windows, and write ``out/report.json``; returns the report."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    store_path = out / "store"
    if store_path.exists():
        shutil.rmtree(store_path)
    out.mkdir(parents=True, exist_ok=True)
    store = open_store(store_path, mode="w-")
    rng = np.random.default_rng(seed)
    jobs = [(f"user{u:02d}", f"s{s:02d}") for u in range(users) for s in range(sessions)]
    for user, session in tqdm(jobs, desc="write", unit="session", disable=quiet or None):
        store.write(example_recording(user, session, seconds=seconds, rng=rng))
    violations = [v for u in store.users() for s in store.sessions(u) for v in validate(store.read(u, s))]
    cat = store.catalog().collect()
    n_windows = 0
    for user in tqdm(store.users(), desc="windows", unit="user", disable=quiet or None):
        n_windows += sum(1 for _ in windows(store, user, length_s=2.0, hop_s=1.0, steps=20))
    report = {
        "store": str(store_path),
        "users": len(store.users()),
        "sessions": len(jobs),
        "streams": cat.height,
        "hours": float(cat["duration_s"].sum()) / 3600,
        "violations": [v.message for v in violations],
        "windows": n_windows,
        "per_modality": cat.group_by("modality").agg(pl.len().alias("streams")).sort("modality").to_dicts(),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if not quiet:
        print(f"wrote {report['sessions']} sessions of {report['users']} users to {store_path}")
        print(f"{len(violations)} schema violation(s); {n_windows} training windows of 2 s")
        print(f"report: {out / 'report.json'} ({report['wall_s']} s)")
    return report
