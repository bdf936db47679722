"""The trainer under Flower's Deployment Runtime, on loopback: one SuperLink, one SuperNode per user (each a
separate process holding only its user's partition, as on a headset or a lab machine), the run submitted with
``flwr run`` from a Flower App project that names ``app_server`` / ``app_client`` (the layout the
``xrdata.fed_training.flower`` docstring gives). The run is stopped (``flwr stop``) once its first round's
checkpoint is written and resumed by a second ``flwr run`` with ``resume=true``. The result must be the run
the in-process engine trains on the same store: the same clients, steps and bytes per round, the same energy
per device profile and (up to float rounding) the same losses; and the run folder must evaluate with
``xrdata evaluate``. About 3 minutes on 2 cores: every message runs in a fresh ClientApp process that imports
torch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
flwr = pytest.importorskip("flwr", reason="Flower is not installed (pip install flwr)")

from xrdata import open_store  # noqa: E402
from xrdata.fed_training.config import load_config  # noqa: E402
from xrdata.fed_training.evaluate import evaluate_run  # noqa: E402
from xrdata.fed_training.train import train  # noqa: E402
from xrdata.synth import config_from_preset, generate  # noqa: E402

pytestmark = pytest.mark.skipif(tuple(int(p) for p in flwr.__version__.split(".")[:2]) < (1, 42),
                                reason="the loopback deployment uses the HTTP SuperLink of flwr >= 1.42 (--port)")

RUN = {"preset": "quickstart", "baselines": [],
       "fed": {"rounds": 3, "local_steps": 3, "tail_rounds": 1, "availability": 1.0, "compression": "int8"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(ready: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        return True
    except OSError:
        return False


def _log_tails(root: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(root.glob("*.log")))


def _tool(name: str) -> str:
    """The console script next to this interpreter (the same environment), else on PATH."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found next to {sys.executable} or on PATH (it comes with flwr)")
    return found


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("flower-deployment")
    store = root / "store"
    generate(config_from_preset("quickstart", users=4, weeks=1.0, seed=2, balanced=True, sessions_per_week=3.0,
                                test_user_frac=0.0), store, workers=1)
    users = open_store(store, "r").users()
    (root / "run.json").write_text(json.dumps(RUN))
    app = root / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "xrdata-deployment-test"
version = "1.0.0"
description = "xrdata's federated trainer as a Flower App"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "xrdata"

[tool.flwr.app.components]
serverapp = "xrdata.fed_training.flower:app_server"
clientapp = "xrdata.fed_training.flower:app_client"

[tool.flwr.app.config]
store = "{store}"
config = "{root / 'run.json'}"
out = "{root / 'deployed'}"
min-nodes = {len(users)}
resume = false
""")
    port = _free_port()
    home = root / "flwr-home"
    home.mkdir()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\n'
                                      f'address = "127.0.0.1:{port}"\ninsecure = true\n')
    env = {**os.environ, "FLWR_HOME": str(home)}
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(name: str, *args: str) -> None:
        log = (root / f"{name}.log").open("wb")
        logs.append(log)
        procs.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                                      start_new_session=True))

    try:
        start("superlink", _tool("flower-superlink"), "--insecure", "--port", str(port))
        if not _wait(lambda: _listening(port), 60):
            pytest.fail(f"the SuperLink did not listen on port {port} within 60 s:\n{_log_tails(root)}")
        for u in users:  # one node per user, each told which partition is its own
            start(f"node-{u}", _tool("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                  "--port", str(_free_port()), "--node-config", f"store='{store}' user='{u}'")

        def cli(*args: str) -> str:
            done = subprocess.run([_tool("flwr"), *args], env=env, cwd=root, capture_output=True, timeout=600)
            out = (done.stdout + done.stderr).decode(errors="replace")
            if done.returncode != 0:
                pytest.fail(f"flwr {' '.join(args)} failed (rc {done.returncode}):\n{out[-3000:]}\n{_log_tails(root)}")
            return done.stdout.decode(errors="replace")

        run_id = str(json.loads(cli("run", str(app), "loopback", "--format", "json"))["run-id"])
        first = root / "deployed" / "checkpoints" / "federated" / "round-0001.safetensors"
        if not _wait(first.exists, 300):
            pytest.fail(f"no checkpoint of round 1 within 300 s:\n{_log_tails(root)}")
        cli("stop", run_id, "loopback")

        def stopped() -> bool:
            runs = json.loads(cli("ls", "loopback", "--run-id", run_id, "--format", "json"))["runs"]
            return bool(runs) and str(runs[0]["status"]).startswith("finished")

        if not _wait(stopped, 120):
            pytest.fail(f"run {run_id} did not stop within 120 s:\n{_log_tails(root)}")
        interrupted = not (root / "deployed" / "history.json").exists()
        cli("run", str(app), "loopback", "--stream", "--run-config", "resume=true")
        if not (root / "deployed" / "history.json").exists():
            pytest.fail(f"the resumed run wrote no history.json:\n{_log_tails(root)}")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for log in logs:
            log.close()
    train(store, load_config(root / "run.json"), root / "inprocess", evaluate=False)
    yield {"root": root, "store": store, "interrupted": interrupted}


def _history(folder: Path) -> dict[str, Any]:
    history: dict[str, Any] = json.loads((folder / "history.json").read_text())
    return history


def test_stopped_and_resumed_deployed_run_trains_like_the_in_process_engine(deployed: dict[str, Any]) -> None:
    assert deployed["interrupted"]  # the first run was stopped before it finished
    got_h, ref_h = _history(deployed["root"] / "deployed"), _history(deployed["root"] / "inprocess")
    assert got_h["comm"] == ref_h["comm"]
    assert got_h["energy_j"] == pytest.approx(ref_h["energy_j"])  # per device profile: the nodes' devices
    got, ref = got_h["rounds"], ref_h["rounds"]
    assert len(got) == len(ref) == RUN["fed"]["rounds"]
    for g, r in zip(got, ref, strict=True):
        assert g["participants"] == r["participants"] and len(g["participants"]) >= 2
        assert g["local_steps"] == r["local_steps"]
        assert g["bytes_up"] == r["bytes_up"] > 0 and g["bytes_down"] == r["bytes_down"] > 0
        assert g["bytes_up_by_group"] == r["bytes_up_by_group"]
        assert g["loss"] == pytest.approx(r["loss"], rel=1e-4)


def test_deployed_run_folder_evaluates(deployed: dict[str, Any]) -> None:
    folder = deployed["root"] / "deployed"
    assert json.loads((folder / "config.json").read_text())["fed"]["rounds"] == RUN["fed"]["rounds"]
    results = evaluate_run(folder, deployed["store"])
    assert results["users"]["train"] and "federated" in results["methods"]
    assert (folder / "results.json").exists()
