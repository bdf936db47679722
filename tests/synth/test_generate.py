"""End-to-end generation into a store: streams, catalog, labels, ground truth, determinism (REALISM F5)."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from xrdata import open_store
from xrdata.errors import MissingDependencyError, SessionExistsError, StoreError, ValidationError
from xrdata.synth import PRESETS, SynthConfig, config_from_preset, generate, read_ground_truth
from xrdata.synth.generate import TABLES

GEN = importlib.import_module("xrdata.synth.generate")

#: A tiny cohort on an all-sensor device (Quest Pro + EEG cap) so that all six generators run.
TINY = SynthConfig(
    users=2, weeks=1.0, seed=11, cohorts={"gaming": 0.5, "clinic": 0.5}, devices={"quest_pro": 1.0},
    eeg_cap_prob=1.0, balanced=True, sessions_per_week=1, session_minutes=0.25, segment_seconds=(5.0, 8.0),
    depth_fps=2.0, depth_max_width=48, audio_rate_hz=8000.0, test_user_frac=0.0, future_week_frac=0.5,
    mic_muted_prob=0.0, eeg_off_prob=0.0, likert_prob=1.0,
)


def _arrays(url: str, users: list[str] | None = None) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    st = open_store(url, "r")
    out = {}
    for u in users or st.users():
        for s in st.sessions(u):
            rec = st.read(u, s)
            for name, stream in rec.streams.items():
                out[(u, s, name)] = (np.asarray(stream.time_ns), np.asarray(stream.data))
            out[(u, s, "events")] = (rec.events["time_ns"].to_numpy(), rec.events["label"].to_numpy())
    return out


def _assert_same_arrays(url: str, other: str, users: list[str] | None = None) -> None:
    """Every stream's timestamps and samples, and the events, of ``url`` equal those of ``other`` (its ``users``)."""
    a, b = _arrays(url), _arrays(other, users)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key][0], b[key][0], err_msg=str(key))
        np.testing.assert_array_equal(a[key][1], b[key][1], err_msg=str(key))


def _catalog(url: str, users: list[str] | None = None) -> pl.DataFrame:
    df = open_store(url, "r").catalog(users).collect()
    return df.sort(["user", "session", "stream"])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("synth")
    one, two, more = str(base / "one"), str(base / "two"), str(base / "more")
    r1 = generate(TINY, one, workers=1)
    r2 = generate(TINY, two, workers=2)
    r3 = generate(config_from_preset_like(TINY, users=3), more, workers=1)
    return {"one": one, "two": two, "more": more, "r1": r1, "r2": r2, "r3": r3}


def config_from_preset_like(config: SynthConfig, **changes: Any) -> SynthConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_end_to_end_streams_catalog_and_labels(stores: dict[str, Any]) -> None:
    r = stores["r1"]
    assert r.users == ["u0001", "u0002"] and r.sessions == 2 and not r.missing_generators
    st = open_store(stores["one"], "r")
    assert st.users() == ["u0001", "u0002"]
    cat = _catalog(stores["one"])
    assert cat.height == r.streams
    # Quest Pro + EEG cap records every stream, so every session has all seven
    per_session = cat.group_by(["user", "session"]).agg(pl.col("stream").sort())
    for streams in per_session["stream"].to_list():
        assert streams == sorted(["gaze", "head", "imu", "hand", "audio", "eeg", "depth"])
    assert set(cat["device"].unique()) == {"quest_pro+eeg_cap_32", "quest_pro+eeg_cap_8"} & set(cat["device"].unique())
    rec = st.read("u0001", "s001")
    labels = rec.events.filter(pl.col("label").str.starts_with("task/"))
    assert labels.height >= 2 and (labels["value"].str.len_chars() > 0).all()
    assert set(rec.meta["tasks"]) == {x.removeprefix("task/") for x in labels["label"]}
    assert rec.meta["split"] in ("train", "future") and rec.meta["utc_anchor"].endswith("+00:00")
    assert rec.events.filter(pl.col("label") == "qoe/likert").height == 1  # likert_prob = 1
    assert rec.events.filter(pl.col("label") == "blink").height >= 1
    assert rec.streams["depth"].data.dtype == np.uint16 and rec.streams["depth"].data.shape[1:] == (36, 48)
    assert rec.streams["audio"].rate_hz == 8000.0
    splits = read_ground_truth(stores["one"], "sessions")["split"].unique().to_list()
    assert set(splits) <= {"train", "future"}


def test_ground_truth_tables_readable_with_polars(stores: dict[str, Any]) -> None:
    root = Path(stores["one"]) / "ground_truth"
    assert not (Path(stores["one"]) / "users" / "ground_truth").exists()
    assert (root / "config.json").is_file()
    recorded = json.loads((root / "config.json").read_text())["config"]
    # every mapping in the config's order (the planner draws from cohorts, devices... in order), not sorted
    assert json.dumps(recorded) == json.dumps(TINY.to_dict())
    for table, columns in TABLES.items():
        lazy = pl.scan_parquet(str(root / table) + "/", hive_partitioning=True, hive_schema={"user": pl.String()})
        df = lazy.collect()
        assert set(columns) <= set(df.columns), table
        assert df["user"].dtype == pl.String
        assert read_ground_truth(stores["one"], table).columns == ["user", *columns]
    seg = read_ground_truth(stores["one"], "segments")
    sessions = read_ground_truth(stores["one"], "sessions")
    assert seg.height >= sessions.height and seg["task"].is_in(list(
        importlib.import_module("xrdata.synth.timeline").LABELS)).all()
    # the labels in the store are the segments of the ground truth
    st = open_store(stores["one"], "r")
    ev = st.read("u0002", "s001").events.filter(pl.col("label").str.starts_with("task/"))
    gt = seg.filter((pl.col("user") == "u0002") & (pl.col("session") == "s001")).sort("index")
    assert ev["value"].to_list() == gt["label"].to_list()
    assert ev["time_ns"].to_list() == gt["start_ns"].to_list()
    avail = read_ground_truth(stores["one"], "availability")
    assert set(avail["status"]) == {"present"}
    assert avail.height == sessions.height * 7
    drift = read_ground_truth(stores["one"], "drift")
    assert drift.height == sessions.height and drift["recalibrated"].dtype == pl.Boolean
    users = read_ground_truth(stores["one"], "users")
    assert users.height == 2 and users["tasks"].list.len().min() >= 1
    qoe = read_ground_truth(stores["one"], "qoe")
    assert qoe["likert"].is_between(1, 5).all()


def test_dropout_runs_are_the_lost_samples(stores: dict[str, Any]) -> None:
    runs = read_ground_truth(stores["one"], "dropout")
    st = open_store(stores["one"], "r")
    checked = 0
    for row in runs.filter(pl.col("stream").is_in(["imu", "eeg", "audio", "head"])).head(10).iter_rows(named=True):
        data = st.read(row["user"], row["session"]).streams[row["stream"]].data
        lost = data[row["first_sample"]: row["first_sample"] + row["n_samples"]]
        assert np.isnan(lost).all()
        checked += 1
    assert checked > 0
    avail = read_ground_truth(stores["one"], "availability")
    # the realised missing share includes the injected loss
    assert (avail["missing_frac"] >= avail["injected_frac"] - 1e-9).all()


def test_same_seed_identical_bytes_whatever_the_workers(stores: dict[str, Any]) -> None:
    _assert_same_arrays(stores["one"], stores["two"])
    assert _catalog(stores["one"]).equals(_catalog(stores["two"]))
    for table in TABLES:
        assert read_ground_truth(stores["one"], table).equals(read_ground_truth(stores["two"], table)), table


def test_adding_a_user_changes_no_other_user(stores: dict[str, Any]) -> None:
    users = ["u0001", "u0002"]
    assert stores["r3"].users == [*users, "u0003"]
    _assert_same_arrays(stores["one"], stores["more"], users)
    assert _catalog(stores["one"]).equals(_catalog(stores["more"], users))
    assert read_ground_truth(stores["one"], "segments").equals(read_ground_truth(stores["more"], "segments", users))


def test_existing_users_error_skip_or_overwrite(stores: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(SessionExistsError, match="if_exists"):
        generate(TINY, stores["one"], workers=1, users=["u0001"])
    r = generate(TINY, stores["one"], workers=1, users=["u0001"], if_exists="skip")
    assert r.sessions == 0
    with pytest.raises(ValidationError, match="if_exists"):
        generate(TINY, tmp_path / "x", if_exists="nope")
    with pytest.raises(StoreError, match="read-only"):
        generate(TINY, open_store(stores["one"], "r"))


def test_missing_generator_is_skipped_and_logged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    real = importlib.import_module

    def fake(name: str, *args: Any) -> Any:
        if name == "xrdata.synth.depth":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(GEN.importlib, "import_module", fake)
    monkeypatch.setattr(GEN, "_MISSING_LOGGED", set())
    cfg = config_from_preset_like(TINY, users=1)
    with caplog.at_level(logging.WARNING, logger="xrdata.synth"):
        r = generate(cfg, tmp_path / "s", workers=1)
    assert r.missing_generators == ["depth"]
    assert any("xrdata.synth.depth is not available" in m for m in caplog.messages)
    avail = read_ground_truth(tmp_path / "s", "availability")
    assert avail.filter(pl.col("stream") == "depth")["status"].to_list() == ["generator_missing"]


def test_dask_engine_needs_dask(tmp_path: Path) -> None:
    if importlib.util.find_spec("dask") is None:
        with pytest.raises(MissingDependencyError, match="dask"):
            generate(config_from_preset_like(TINY, users=1), tmp_path / "d", engine="dask")
    else:
        r = generate(config_from_preset_like(TINY, users=1), tmp_path / "d", engine="dask")
        assert r.users == ["u0001"]


@pytest.mark.skipif(importlib.util.find_spec("dask") is None, reason="dask is not installed")
def test_dask_engine_matches_processes(tmp_path: Path, stores: dict[str, Any]) -> None:
    generate(TINY, tmp_path / "d", engine="dask")
    _assert_same_arrays(stores["one"], str(tmp_path / "d"))


@pytest.mark.skipif(importlib.util.find_spec("dask") is None, reason="dask is not installed")
def test_dask_engine_writes_an_in_memory_store(stores: dict[str, Any]) -> None:
    """Dask's local scheduler runs users in processes, which cannot see this process's memory:// store:
    those run in-process."""
    url = "memory://dask-engine-test"
    generate(TINY, url, engine="dask")
    _assert_same_arrays(stores["one"], url)


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="distributed is not installed")
def test_dask_engine_on_a_distributed_cluster_matches_processes(tmp_path: Path, stores: dict[str, Any]) -> None:
    """With a ``distributed`` client the users run on the cluster's workers (threads of worker processes)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, \
            Client(cluster):
        generate(TINY, tmp_path / "d", engine="dask")
    _assert_same_arrays(stores["one"], str(tmp_path / "d"))


def test_presets_and_config_overrides() -> None:
    assert {"quickstart", "benchmark", "neuro", "industrial"} <= set(PRESETS)
    cfg = config_from_preset("benchmark", users=7, seed=3, weeks=None)
    assert cfg.users == 7 and cfg.seed == 3 and cfg.weeks == PRESETS["benchmark"].weeks
    assert config_from_preset("benchmark_bursty").bursty_loss == 0.3
    with pytest.raises(ValidationError, match="unknown synth preset"):
        config_from_preset("nope")
    with pytest.raises(ValidationError, match="unknown SynthConfig field"):
        config_from_preset("quickstart", userz=3)
    with pytest.raises(ValidationError, match="modalities"):
        SynthConfig(modalities=("gaze", "smell"))
    with pytest.raises(ValidationError, match="cohorts"):
        SynthConfig(cohorts={"mars": 1.0})
    assert "eeg" in config_from_preset("neuro").modalities and config_from_preset("neuro").eeg_cap_prob >= 0.8
    assert config_from_preset("industrial").cohorts == {"factory": 1.0}
    assert PRESETS["quickstart"].to_dict()["users"] == 6


def test_generate_stays_the_function_after_the_submodule_is_imported() -> None:
    import xrdata.synth
    import xrdata.synth.generate

    assert callable(xrdata.synth.generate) and xrdata.synth.generate is GEN.generate


def test_import_stays_light() -> None:
    code = "import sys, xrdata.synth; print([m for m in ('scipy', 'torch', 'dask', 'ray') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_another_seed_gives_other_people() -> None:
    """The per-user latents the generators draw themselves (voice, EEG, body and hand size, gesture styles) are
    keyed by the user id and the cohort seed: the same plan for "u0001" of seed 1 and of seed 2, generated
    with the same random streams, differs in every stream; seed 0 keys by the bare id."""
    from xrdata.synth.generate import generate_session
    from xrdata.synth.types import UserTraits, example_plan

    tasks = (("speech_command", "yes"), ("gesture", "swipe_left"), ("cognitive_load", "high"))
    results = {s: generate_session(example_plan(12.0, tasks, user=UserTraits("u0001", seed=s)), seed=7) for s in (1, 2)}
    streams = {s: {k: v.data for k, v in r.recording.streams.items()} for s, r in results.items()}
    assert set(streams[1]) == set(streams[2]) == {"gaze", "head", "imu", "hand", "audio", "depth", "eeg"}
    for name, data in streams[1].items():
        assert not np.array_equal(data, streams[2][name], equal_nan=True), name
    truth = {s: {row["generator"]: json.loads(row["truth_json"]) for row in r.rows["generator_truth"]}
             for s, r in results.items()}
    for generator, latent in (("eeg", "user_latents"), ("hand", "hand_scale"), ("audio", "user_level_db")):
        assert truth[1][generator][latent] != truth[2][generator][latent], (generator, latent)
    assert UserTraits("u0001").key == "u0001" and UserTraits("u0001", seed=2).key == "u0001@2"
