"""The HTML realism report: every REALISM.md row present, numbers equal to xrdata.synth.stats on the same store,
a store without ground truth, the CLI, and (when Chromium is installed) a real browser rendering it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from xrdata import open_store
from xrdata.cli import main
from xrdata.synth import SynthConfig, generate, stats
from xrdata.synth.report import REPORT_SECTIONS, compute_statistics, write_report

pytest.importorskip("matplotlib")

#: Every row of REALISM.md (the document lives outside the package).
REALISM_IDS = (
    "E1", "E2", "E3", "E4", "E6", "E7", "E8", "E10", "E12",
    "H1", "H3", "H4", "H5", "H7", "H8",
    "M4", "M5", "M6", "M7",
    "G1", "G2", "G3", "G4", "G5", "G7", "G8",
    "A2", "A4", "A5", "A6",
    "D1", "D3", "D4", "D5",
    "T1", "T2", "T3", "T4", "T5", "T7",
    "F1", "F2", "F4", "F5",
)

#: Three users x 3 sessions on all-sensor devices (two eye trackers, an EEG cap each), 24 s sessions: ~10-20 s to
#: generate on 2 cores.
TINY = SynthConfig(
    users=3, weeks=2.0, seed=21, cohorts={"clinic": 0.5, "lab": 0.5},
    devices={"quest_pro": 0.5, "varjo_xr4": 0.5}, eeg_cap_prob=1.0, balanced=True, sessions_per_week=1.5,
    session_minutes=0.4, segment_seconds=(8.0, 12.0), depth_fps=2.0, depth_max_width=64, audio_rate_hz=16000.0,
    test_user_frac=0.0, mic_muted_prob=0.0, eeg_off_prob=0.0,
)


class _Page(HTMLParser):
    """Collects section ids, statistic rows (attributes + cell texts), images and the summary counts."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.images: list[str] = []
        self.counts: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self.tables: list[str] = []
        self._row: dict[str, Any] | None = None
        self._cell: list[str] | None = None
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(a.get("id", ""))
        elif tag == "table":
            self.tables.append(a.get("id", ""))
        elif tag == "tr" and "data-stat" in a:
            self._row = {"status": a["data-status"], "values": json.loads(a["data-values"]), "cells": []}
            self.rows[a["data-stat"]] = self._row
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "b" and "data-key" in a:
            self._key = a["data-key"]
        elif tag == "body":
            self.body = a

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._key is not None:
            self.counts[self._key] = data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "b":
            self._key = None


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("report") / "store")
    generate(TINY, url, workers=1)
    return url


@pytest.fixture(scope="module")
def report(store: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Page]:
    out = write_report(store, tmp_path_factory.mktemp("html") / "report.html", max_sessions=6)
    return out, _parse(out)


def test_every_section_and_realism_row_is_there(report: tuple[Path, _Page]) -> None:
    _, page = report
    assert page.sections == list(REPORT_SECTIONS)
    assert "stats" in page.tables and "cooccurrence" in page.tables
    assert list(page.rows) == list(REALISM_IDS)
    for rid, row in page.rows.items():
        assert row["status"] in ("pass", "fail", "n/a"), (rid, row)  # never "error": a row that raised
        assert len(row["cells"]) == 8 and row["cells"][0] == rid
        if row["status"] != "n/a":
            assert row["values"] and row["cells"][4], rid  # measured numbers and their text
        else:
            assert row["cells"][7], rid  # the note says why
    computed = sum(r["status"] != "n/a" for r in page.rows.values())
    assert computed >= 30, {k: r["status"] for k, r in page.rows.items()}
    # the calibration captures and the regeneration ran on this synthetic store
    for rid in ("D1", "H5", "M5", "F5"):
        assert page.rows[rid]["status"] != "n/a", (rid, page.rows[rid])
    assert page.rows["F5"]["status"] == "pass", page.rows["F5"]  # same seed -> identical bytes


def test_plots_are_decodable_inline_png(report: tuple[Path, _Page]) -> None:
    path, page = report
    assert len(page.images) >= 5  # availability, drift, labels, schedule, traces
    for src in page.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch


def test_summary_matches_the_catalog(store: str, report: tuple[Path, _Page]) -> None:
    _, page = report
    cat = open_store(store, "r").catalog().collect()
    per = cat.group_by("user", "session").agg(pl.col("duration_s").max())
    assert int(page.counts["users"]) == cat["user"].n_unique() == TINY.users
    assert int(page.counts["sessions"]) == per.height
    assert float(page.counts["hours"]) == pytest.approx(per["duration_s"].sum() / 3600, abs=0.006)
    assert int(page.counts["streams"]) == cat.height


def test_values_match_synth_stats_on_the_same_store(store: str, report: tuple[Path, _Page]) -> None:
    _, page = report
    st = open_store(store, "r")
    cat = st.catalog().collect()
    # E12: mean sampling interval of every gaze stream against its declared rate
    worst = 0.0
    for u, s in cat.filter(pl.col("stream") == "gaze").select("user", "session").iter_rows():
        g = st.read(u, s, streams=["gaze"]).streams["gaze"]
        worst = max(worst, abs(stats.sampling_interval(g.time_ns, g.rate_hz or 0.0)[1]))
    assert page.rows["E12"]["values"]["max_abs_rel"] == pytest.approx(worst, rel=1e-6, abs=1e-9)
    # F4: users lacking some task, from the task label events
    user_tasks: dict[str, set[str]] = {}
    for u, s in cat.select("user", "session").unique().iter_rows():
        ev = st.read(u, s, streams=[]).events
        user_tasks.setdefault(u, set()).update(x[5:] for x in ev["label"] if x.startswith("task/"))
    every = set().union(*user_tasks.values())
    lacking = sum(1 for v in user_tasks.values() if every - v)
    assert page.rows["F4"]["values"]["users_lacking_a_task"] == lacking
    assert page.rows["F4"]["values"]["tasks"] == len(every)
    # E7: blink durations (invalid episodes of 30-500 ms) pooled over the sampled gaze sessions
    durs = []
    gaze_sessions = cat.filter(pl.col("stream") == "gaze").select("user", "session").sort("user", "session").rows()
    sampled = _round_robin(gaze_sessions, 6)
    for u, s in sampled:
        g = st.read(u, s, streams=["gaze"]).streams["gaze"]
        dirs = stats.gaze_directions(g.data, g.channels)
        valid = np.isfinite(dirs).all(axis=1) & (g.data[:, g.channels.index("combined_valid")] > 0.5)
        durs.append(stats.blink_stats(g.time_ns, valid)["durations_ms"])
    assert page.rows["E7"]["values"]["median_ms"] == pytest.approx(float(np.median(np.concatenate(durs))))
    # T2: CV across users of the catalog's missing fraction, per stream
    for name in ("audio", "eeg"):
        c = cat.filter(pl.col("stream") == name)
        v = stats.dropout_variation(c["user"].to_numpy(), c["missing_frac"].to_numpy())
        assert page.rows["T2"]["values"][f"{name}_cv_users"] == pytest.approx(v["cv_between_users"])
    # and the same numbers through compute_statistics (captures off: compare the rows that use none; H7 and T3
    # add the hand capture's overlap coupling when captures are on)
    rows = {r.id: r for r in compute_statistics(store, max_sessions=6, captures=False, regenerate=False)}
    for rid, r in rows.items():
        if r.source in ("store", "catalog") and rid not in ("H7", "T3"):
            assert page.rows[rid]["status"] == r.status, rid
            assert page.rows[rid]["values"] == pytest.approx(r.values), rid


def _round_robin(sessions: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    by_user: dict[str, list[str]] = {}
    for u, s in sessions:
        by_user.setdefault(u, []).append(s)
    out: list[tuple[str, str]] = []
    k = 0
    while len(out) < limit and any(len(v) > k for v in by_user.values()):
        for u in sorted(by_user):
            if len(by_user[u]) > k and len(out) < limit:
                out.append((u, by_user[u][k]))
        k += 1
    return out


def test_store_without_ground_truth(store: str, tmp_path: Path) -> None:
    """Real recordings have no ground truth: catalog- and event-based rows still work, the rest say n/a."""
    plain = tmp_path / "real"
    shutil.copytree(store, plain, ignore=shutil.ignore_patterns("ground_truth"))
    out = write_report(plain, max_sessions=2)
    assert out == plain / "report.html"
    page = _parse(out)
    assert page.body.get("data-synthetic") == "false"
    assert list(page.rows) == list(REALISM_IDS)
    assert all(r["status"] in ("pass", "fail", "n/a") for r in page.rows.values())
    for rid in ("T1", "T4", "T7", "D1", "H5", "M5", "F5"):  # need ground truth, captures or the config
        assert page.rows[rid]["status"] == "n/a", rid
    for rid in ("E12", "T2", "F4", "E7", "M4", "G1"):  # catalog, events and streams are enough
        assert page.rows[rid]["status"] != "n/a", rid
    assert len(page.images) >= 3  # availability, labels, schedule (+ traces); no drift plot


def test_escapes_text(store: str, tmp_path: Path) -> None:
    out = write_report(store, tmp_path / "r.html", title="<script>alert(1)</script> & co", statistics=[],
                       plots=False)
    text = out.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text


def test_cli_report_and_synth_report(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.html"
    assert main(["report", "--store", store, "--out", str(out), "--max-sessions", "2", "--no-captures",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"] == str(out) and out.is_file()
    assert [r["id"] for r in doc["statistics"]] == list(REALISM_IDS)
    assert {r["id"]: r["status"] for r in doc["statistics"]} == {k: r["status"] for k, r in _parse(out).rows.items()}
    target = tmp_path / "synth"
    assert main(["synth", "--preset", "quickstart", "--users", "1", "--weeks", "0.5", "--store", str(target),
                 "--workers", "1", "--report", "--json"]) == 0
    capsys.readouterr()
    assert (target / "report.html").is_file()
    page = _parse(target / "report.html")
    assert list(page.rows) == list(REALISM_IDS)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (apt install chromium) for the "
                                                 "real-browser rendering test")
def test_renders_in_headless_chromium(report: tuple[Path, _Page], tmp_path: Path) -> None:
    path, _ = report
    exe = _chromium()
    assert exe is not None
    cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           path.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Page()
    dom.feed(res.stdout)
    assert "stats" in dom.tables and list(dom.rows) == list(REALISM_IDS)
    total, decoded = int(dom.body.get("data-images-total", "-1")), int(dom.body.get("data-images-decoded", "-1"))
    assert total >= 5 and decoded == total, (total, decoded)  # every inline PNG decoded by the browser
    shot = tmp_path / "shot.png"
    res = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'p2'}",
                          f"--screenshot={shot}", "--window-size=1280,2000", path.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, res.stderr[-2000:]
