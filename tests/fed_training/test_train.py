"""``xrdata train`` / ``xrdata evaluate`` end to end on a tiny synthetic store."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from safetensors.numpy import load_file

from xrdata.cli import main
from xrdata.errors import ValidationError
from xrdata.fed_training.config import config_from_preset, load_config, override
from xrdata.synth import config_from_preset as synth_preset
from xrdata.synth import generate

TINY = ["--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.n_heads=2",
        "--set", "fed.rounds=2", "--set", "fed.clients_per_round=2", "--set", "fed.local_steps=2",
        "--set", "fed.personalize_steps=2", "--set", "fed.eval_every=1", "--set", "fed.batch_size=16",
        "--set", "fed.calibrate_heads=true", "--set", "fed.calibration_steps=5",
        "--set", 'baselines=["centralized", "local", "zero_fill"]']


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train") / "store"
    cfg = synth_preset("quickstart", users=4, weeks=2.0, seed=1, session_minutes=0.6, test_user_frac=0.3,
                       future_week_frac=0.3, modalities=("gaze", "head", "imu", "audio"))
    generate(cfg, path, workers=1)
    return path


@pytest.fixture(scope="module")
def run(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--store", str(store), "--out", str(out), "--json", *TINY]) == 0
    return out


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_train_writes_models_results_and_report(run: Path) -> None:
    for name in ("config.json", "tasks.json", "federated.safetensors", "centralized.safetensors",
                 "zero_fill.safetensors", "history.json", "local.json", "results.json", "results.md",
                 "report.html"):
        assert (run / name).is_file(), name
    assert len(list((run / "checkpoints" / "federated").glob("round-*.safetensors"))) == 2
    res = json.loads((run / "results.json").read_text())
    assert set(res["methods"]) == {"federated", "federated_prior", "federated_personalized", "centralized",
                                  "centralized_personalized", "local", "zero_fill"}
    fed = res["methods"]["federated"]
    assert any(m.get("n") for m in fed.get("unseen", {}).values())
    prior = res["methods"]["federated_prior"]  # the same windows, each user's logits shifted by its own prior
    for split in ("future", "unseen"):
        assert {t: m["n"] for t, m in prior[split].items()} == {t: m["n"] for t, m in fed[split].items()}
    assert set(res["federated_prior_vs_centralized"]) == set(res["federated_vs_centralized"])
    # each user tuned on its own windows: every training user, the held-out users with adaptation sessions
    for name in ("federated_personalized", "centralized_personalized"):
        pers = res["methods"][name]
        assert {t: m["n"] for t, m in pers["future"].items()} == {t: m["n"] for t, m in fed["future"].items()}
        assert 0 < sum(m["n"] for m in pers["unseen"].values()) <= sum(m["n"] for m in fed["unseen"].values())
    assert set(res["federated_personalized_vs_centralized"]) == set(res["federated_vs_centralized"])
    users = res["personalization"]["users"]
    assert res["personalization"]["effectiveness"] == pytest.approx(
        sum(v["personalized"] - v["global"] for v in users.values()) / len(users))
    for key in ("inference_latency", "footprint_by_device", "on_device", "communication", "cross_context",
                "privacy"):
        assert key in res["xr_metrics"], key
    assert res["xr_metrics"]["communication"]["bytes_up"] > 0
    assert set(res["robustness"]) == {"federated", "zero_fill"}
    assert [r for r, _ in res["history"]["val_macro_f1"]] == [1, 2]
    page = _Collect()
    page.feed((run / "report.html").read_text())
    assert page.tags.count("svg") >= 3 and "table" in page.tags
    assert "XR metrics" in " ".join(page.text)
    scope = f"users: {len(res['users']['train'])} training, {len(res['users']['held_out'])} held out"
    assert scope in " ".join(page.text) and f"unseen {res['windows']['unseen']}" in " ".join(page.text)
    assert "| mean macro-F1 |" in (run / "results.md").read_text()
    cal = res["xr_metrics"]["communication"]["calibration"]
    assert cal["bytes_up"] > 0 and "| head calibration round |" in (run / "results.md").read_text()


def test_evaluate_is_deterministic(run: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = json.loads((run / "results.json").read_text())
    assert main(["evaluate", "--run", str(run), "--store", str(store), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["methods"] == before["methods"]
    assert after["personalization"]["effectiveness"] == before["personalization"]["effectiveness"]


def test_progress_names_every_long_part(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # stderr is not a terminal here: each bar ends with one whole line (a line per 30 s in between)
    out = tmp_path / "run"
    assert main(["train", "--store", str(store), "--out", str(out), "--no-eval", *TINY]) == 0
    assert main(["evaluate", "--run", str(out), "--store", str(store)]) == 0
    lines = capsys.readouterr().err.splitlines()

    def starting(prefix: str) -> list[str]:
        return [line for line in lines if line.startswith(prefix)]

    assert len(starting("federated rounds: 2/2 [")) == 2  # the federated model and the zero-fill baseline
    assert len(starting("centralized: 0/")) == 1 and len(starting("local-only: 4/4 [")) == 1
    steps = starting("centralized: 0/")[0].split("/")[1].split(" ")[0]
    assert len(starting(f"centralized: {steps}/{steps} [")) == 1
    evaluate = starting("evaluate: ")
    assert evaluate[0].startswith("evaluate: 0/5 [") and evaluate[-1].startswith("evaluate: 5/5 [")
    assert evaluate[-1].endswith(", report]")


def test_resume_continues_from_the_checkpoint(run: Path, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    short = [a if a != "fed.rounds=2" else "fed.rounds=1" for a in TINY]
    assert main(["train", "--store", str(store), "--out", str(out), "--json", "--no-eval", *TINY]) == 0
    full = load_file(out / "federated.safetensors")
    (out / "checkpoints" / "federated" / "round-0002.safetensors").unlink()
    assert main(["train", "--store", str(store), "--out", str(out), "--json", "--no-eval", "--resume", *TINY]) == 0

    def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    assert same(load_file(out / "federated.safetensors"), full)
    assert same(load_file(run / "federated.safetensors"), full)  # same config and seed as the module's run
    assert main(["train", "--store", str(store), "--out", str(out), "--json", "--no-eval", "--resume", *short]) == 1


def test_bad_configs_are_named(tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValidationError, match="unknown train preset"):
        config_from_preset("nope")
    with pytest.raises(ValidationError, match=r"TrainConfig.fed: unknown field\(s\) \['roundz'\]"):
        override(config_from_preset("quickstart"), {"fed": {"roundz": 3}})
    bad = tmp_path / "c.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValidationError, match="must hold a JSON object"):
        load_config(bad)
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"preset": "benchmark", "fed": {"rounds": 3}}))
    assert load_config(good).fed.rounds == 3 and load_config(good).model.n_experts == 4
    assert main(["train", "--store", str(store), "--out", str(tmp_path / "x"), "--set", "fed.rounds"]) == 1
    assert "SECTION.FIELD=VALUE" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "none"), "--store", str(store)]) == 1
    assert "no model 'federated'" in capsys.readouterr().err
