"""The federated trainer: engine overhead against Flower, training throughput, input pipeline, quickstart time.

Each part puts xrdata beside its anchor, measured in the same run:

(a) **engine overhead**: 100 no-op clients x 20 rounds, every client in every round, a tiny model (a small
    parameter dict, so the numbers are the engines' own cost). xrdata: the in-process engine
    (``run_federated`` with a no-op ``local_fn`` that returns a zero delta). Anchor: Flower's Simulation
    Runtime (``flwr.simulation.run_simulation``, Ray backend, 1 core per ClientApp actor) with Flower's own
    ``FedAvg`` strategy and a ClientApp that returns the arrays it received unchanged. A third row runs
    xrdata's strategy under Flower (``run_flower`` with the same no-op client) to show where the time goes.
    Per-round time: Flower's from the strategy's round boundaries (Ray start-up and actor start excluded,
    shown separately); the engine's from its RoundLog wall times. Target: xrdata <= 1/30 of Flower's.
(b) **training throughput** (windows/s) of ``local_train`` on real windows of one client (quickstart and
    benchmark preset models, batch 32, after warm-up steps), on the CPU, and on the GPU when torch sees one.
(c) **input pipeline vs consumption**: the per-step pipeline (``ClientData.subset`` of a shuffled batch +
    ``to_tensors``), cold window loading from the store (``load_client``, ``DataConfig(cache=False)``: zarr
    reads, resampling, masks, labels; once per client and store version) and loading from the per-client
    window cache, against the model's training consumption from (b). Target >= 3x.
(d) **quickstart**: wall time of ``xrdata quickstart`` (synthesize, validate, train with baselines, evaluate,
    report) in a subprocess writing to a temp folder.

The store for (b)/(c) is opened read-only with the window cache off (nothing is written into it); default: a
``quickstart`` cohort synthesized into a temp folder.

Usage::

    python benchmarks/fl_bench.py                         # everything (~10 min on 2 busy cores)
    python benchmarks/fl_bench.py --store bench-store --skip quickstart
    python benchmarks/fl_bench.py --json out.json --update-readme
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import cpu_model, md_table, update_readme  # benchmarks/_common.py

import xrdata
from xrdata.fed_training.aggregate import ClientUpdate
from xrdata.fed_training.config import (
    MODALITIES,
    DataConfig,
    FedConfig,
    ModalitySpec,
    ModelConfig,
    TaskSpec,
    TrainConfig,
    config_from_preset,
    group_of,
)
from xrdata.fed_training.data import ClientData, discover_tasks, load_client, to_tensors
from xrdata.fed_training.engine import run_federated
from xrdata.fed_training.local import LocalResult, get_params, local_train
from xrdata.fed_training.model import M3T
from xrdata.store import open_store

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- fl_bench:begin -->", "<!-- fl_bench:end -->"

# --------------------------------------------------------------------------------------------------------
# (a) engine overhead
# --------------------------------------------------------------------------------------------------------

TINY_MODS = [ModalitySpec("gaze", "series", 4, (2,), 4)]
TINY_TASKS = [TaskSpec("t", ("a", "b"))]


def tiny_setup(clients: int, rounds: int, model_kind: str) -> tuple[TrainConfig, torch.nn.Module,
                                                                    dict[str, ClientData]]:
    """A config with every client in every round, the model whose parameters travel, and 1-window clients.

    ``model_kind``: ``"linear"`` (2 arrays, 10 floats: the engines' own cost) or ``"m3t"`` (the smallest M3T:
    28 arrays, 738 floats; per-array work adds to both sides, and ``run_flower`` can rebuild it on the nodes).
    """
    cfg = TrainConfig(data=DataConfig(modalities=("gaze",)),
                      model=ModelConfig(d_model=8, n_layers=1, n_heads=1, ffn_mult=1, dropout=0.0),
                      fed=FedConfig(rounds=rounds, clients_per_round=clients, availability=1.0, local_steps=1,
                                    batch_size=1, eval_every=0))
    torch.manual_seed(0)
    model = M3T(cfg.model, TINY_MODS, TINY_TASKS) if model_kind == "m3t" else torch.nn.Linear(4, 2)
    one = ClientData("c", {"gaze": np.zeros((1, 4, 2), np.float32)}, {"gaze": np.ones((1, 4), bool)},
                     {"t": np.zeros(1, np.int64)}, np.array(["s001"]), np.zeros(1, np.int64), np.array(["train"]))
    data = {f"c{i:03d}": dataclasses.replace(one, user=f"c{i:03d}") for i in range(clients)}
    return cfg, model, data


_ZERO: dict[tuple[str, ...], tuple[dict[str, np.ndarray], list[str]]] = {}


def noop_local(model: Any, global_params: dict[str, np.ndarray], data: ClientData, tasks: Any, *, steps: int,
               **_: Any) -> LocalResult:
    """A client that trains nothing: the arrays come back unchanged (a zero delta of every parameter, made once:
    a no-op client does no work)."""
    key = tuple(global_params)
    if key not in _ZERO:
        _ZERO[key] = ({k: np.zeros_like(v) for k, v in global_params.items()},
                      sorted({group_of(k) for k in global_params}))
    delta, groups = _ZERO[key]
    weights = {g: float(len(data)) for g in groups}
    return LocalResult(ClientUpdate(data.user, delta, weights, {"loss": 0.0}), steps, len(data), 0.0, 0.0, None)


def _rounds(walls: list[float]) -> dict[str, float]:
    """Round times: the first (Flower: Ray actors start and import) apart from the steady state after it."""
    steady = walls[1:] or walls
    return {"first_round_s": walls[0], "per_round_s": sum(steady) / len(steady),
            "median_round_s": statistics.median(steady)}


class _QuietFlower(logging.Filter):
    """Flower logs every round at INFO (and run_simulation's deprecation notice): keep the console readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "DEPRECATED" not in str(record.msg)


def bench_engine(clients: int, rounds: int, model_kind: str) -> dict[str, float]:
    cfg, model, data = tiny_setup(clients, rounds, model_kind)
    t = time.perf_counter()
    res = run_federated(cfg, model, data, TINY_TASKS, local_fn=noop_local)
    total = time.perf_counter() - t
    params = get_params(model)
    return {**_rounds([h.wall_s for h in res.history]), "total_s": total, "arrays": len(params),
            "params": sum(int(v.size) for v in params.values())}


def bench_flower_fedavg(clients: int, rounds: int, cpus: int, model_kind: str) -> dict[str, float]:
    """Flower alone: its FedAvg strategy and a ClientApp echoing the arrays, in its Simulation Runtime."""
    from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    _, model, _ = tiny_setup(clients, rounds, model_kind)
    arrays = ArrayRecord({k: Array(v) for k, v in get_params(model).items()})
    client_app = ClientApp()

    @client_app.train()
    def echo(msg: Message, context: Context) -> Message:
        content = RecordDict({"arrays": msg.content.array_records["arrays"],
                              "metrics": MetricRecord({"num-examples": 1})})
        return Message(content, reply_to=msg)

    marks: list[float] = []
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=clients,
                          min_available_nodes=clients)

        def mark(rnd: int, _: ArrayRecord) -> None:
            marks.append(time.perf_counter())  # called before round 1 and after every round

        strategy.start(grid, arrays, num_rounds=rounds, evaluate_fn=mark)

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_simulation(server_app, client_app, num_supernodes=clients, backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"address": "local", "num_cpus": cpus, "num_gpus": 0, "include_dashboard": False,
                          "logging_level": logging.ERROR, "log_to_driver": False}})
    return {**_rounds(np.diff(marks).tolist()), "total_s": time.perf_counter() - t}


def bench_run_flower(clients: int, rounds: int, cpus: int) -> dict[str, float]:
    """xrdata's strategy and ClientApp under Flower with the same no-op client (the smallest M3T)."""
    from xrdata.fed_training.flower import run_flower

    cfg, model, data = tiny_setup(clients, rounds, "m3t")
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_flower(cfg, model, data, TINY_TASKS, local_fn=noop_local, num_cpus=cpus)
    return {**_rounds([h.wall_s for h in res.history]), "total_s": time.perf_counter() - t}


def bench_overhead(clients: int, rounds: int, cpus: int, run_flower: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"clients": clients, "rounds": rounds}
    for kind in ("linear", "m3t"):
        e = bench_engine(clients, rounds, kind)
        print(f"(a) {kind}: engine {1e3 * e['per_round_s']:.1f} ms/round", flush=True)
        f = bench_flower_fedavg(clients, rounds, cpus, kind)
        print(f"(a) {kind}: Flower FedAvg {1e3 * f['per_round_s']:.1f} ms/round", flush=True)
        out[kind] = {"engine": e, "flower_fedavg": f}
    if run_flower:
        out["m3t"]["flower_xrdata"] = x = bench_run_flower(clients, rounds, cpus)
        print(f"(a) m3t: run_flower {1e3 * x['per_round_s']:.1f} ms/round", flush=True)
    return out


# --------------------------------------------------------------------------------------------------------
# (b) training throughput, (c) input pipeline
# --------------------------------------------------------------------------------------------------------


def load_one_client(store: str) -> tuple[ClientData, list[TaskSpec], dict[str, Any]]:
    """The training windows of the store's user with the most of them, loaded cold (cache off), with the rate."""
    st = open_store(store, "r")
    dcfg = DataConfig(cache=False)
    tasks = discover_tasks(st, dcfg)
    users = sorted(st.users())
    sizes = {u: float(st.catalog([u]).collect()["duration_s"].sum()) for u in users}
    loads = []
    best: ClientData | None = None
    for u in sorted(users, key=lambda u: -sizes[u])[:2]:  # the two longest recordings
        t = time.perf_counter()
        data = load_client(st, u, dcfg, tasks)
        dt = time.perf_counter() - t
        loads.append({"user": u, "windows": len(data), "s": dt, "windows_s": len(data) / dt,
                      "mb": data.nbytes / 1e6})
        train = data.subset(np.flatnonzero(data.split == "train"))
        if best is None or len(train) > len(best):
            best = train
    assert best is not None
    n = sum(x["windows"] for x in loads)
    s = sum(x["s"] for x in loads)
    return best, tasks, {"users": loads, "windows_s": n / s, "mb_s": sum(x["mb"] for x in loads) / s}


def bench_cached_load(store: str, users: list[str], tasks: list[TaskSpec]) -> dict[str, float]:
    """``load_client`` from the per-client window cache (``DataConfig(cache=True)``, what every run after the
    first reads). Writes the cache into ``<store>/.xrdata/cache/fed`` first (untimed)."""
    st = open_store(store, "r")
    dcfg = DataConfig(cache=True)
    n, s, mb = 0, 0.0, 0.0
    for u in users:
        load_client(st, u, dcfg, tasks)  # builds the cache if it is missing or stale
        t = time.perf_counter()
        data = load_client(st, u, dcfg, tasks)
        s += time.perf_counter() - t
        n += len(data)
        mb += data.nbytes / 1e6
    return {"windows_s": n / s, "mb_s": mb / s}


def bench_training(data: ClientData, tasks: list[TaskSpec], preset: str, device: str, steps: int) -> dict[str, Any]:
    cfg = config_from_preset(preset)
    torch.manual_seed(0)
    model = M3T(cfg.model, [MODALITIES[m] for m in cfg.data.modalities], tasks)
    params = get_params(model)
    local_train(model, params, data, tasks, steps=3, batch_size=32, lr=1e-3, seed=0, device=device)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    res = local_train(model, params, data, tasks, steps=steps, batch_size=32, lr=1e-3, seed=1, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"preset": preset, "device": device, "steps": res.steps, "windows": res.windows, "s": res.time_s,
            "windows_s": res.windows / res.time_s, "params": sum(int(v.size) for v in params.values())}


def bench_batching(data: ClientData, batches: int, batch_size: int = 32) -> dict[str, float]:
    """What local_train does per step before the model: gather a shuffled batch and make tensors."""
    rng = np.random.default_rng(0)
    n = 0
    t = time.perf_counter()
    while n < batches * batch_size:
        order = rng.permutation(len(data))
        for start in range(0, len(order), batch_size):
            _, present, _ = to_tensors(data.subset(np.sort(order[start:start + batch_size])))
            n += len(next(iter(present.values())))
            if n >= batches * batch_size:
                break
    dt = time.perf_counter() - t
    return {"windows": n, "s": dt, "windows_s": n / dt}


# --------------------------------------------------------------------------------------------------------
# (d) quickstart
# --------------------------------------------------------------------------------------------------------


def bench_quickstart() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="xrdata-fl-bench-qs-"))
    try:
        exe = shutil.which("xrdata")
        cmd = [exe] if exe else [sys.executable, "-c", "import sys; from xrdata.cli import main; sys.exit(main())"]
        t = time.perf_counter()
        proc = subprocess.run([*cmd, "quickstart", "--out", str(tmp / "qs"), "--json"], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            return {"wall_s": wall, "error": proc.stderr[-2000:]}
        rep = json.loads(proc.stdout[proc.stdout.index("{"):])
        return {"wall_s": wall, "synth_s": rep.get("synth_s"), "train_eval_s": rep.get("train_eval_s"),
                "users": rep.get("users"), "sessions": rep.get("sessions"), "mean_macro_f1": rep.get("mean_macro_f1")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import flwr

    try:
        import ray

        ray_version = ray.__version__
    except ImportError:
        ray_version = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "flwr": flwr.__version__,
            "ray": ray_version, "xrdata": xrdata.__version__, "gpu": gpu, "loadavg_start": os.getloadavg()}


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    la0, la1 = m["loadavg_start"], m["loadavg_end"]
    out = [f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}, torch {m['torch']} "
           f"({m['torch_threads']} threads), flwr {m['flwr']}, ray {m['ray']}; GPU: {m['gpu'] or 'none'}. "
           f"Load average {la0[0]:.1f} / {la0[1]:.1f} / {la0[2]:.1f} (1/5/15 min) at start, "
           f"{la1[0]:.1f} / {la1[1]:.1f} / {la1[2]:.1f} at end: the machine is shared with other jobs, so "
           "absolute times are pessimistic; the ratios are taken in the same run.", ""]
    if "overhead" in res:
        o = res["overhead"]

        def row(name: str, r: dict[str, float], ratio: str, target: str) -> list[str]:
            return [name, f"{1e3 * r['per_round_s']:.1f}", f"{1e3 * r['median_round_s']:.1f}",
                    f"{r['first_round_s']:.2f}", f"{r['total_s']:.1f}", ratio, target]

        def ratio(r: dict[str, float], e: dict[str, float], bold: bool) -> str:
            text = f"{r['per_round_s'] / e['per_round_s']:.0f}x / {r['median_round_s'] / e['median_round_s']:.0f}x"
            return f"**{text}**" if bold else text

        rows = []
        for kind, target in (("linear", ">= 30x"), ("m3t", "(info)")):
            e, f = o[kind]["engine"], o[kind]["flower_fedavg"]
            what = f"{e['arrays']} arrays, {e['params']} floats"
            rows += [row(f"{what}: xrdata in-process engine (`run_federated`, no-op `local_fn`)", e, "", ""),
                     row(f"{what}: anchor: Flower Simulation Runtime, `FedAvg` + echo ClientApp", f,
                         ratio(f, e, True), target)]
            if "flower_xrdata" in o[kind]:
                x = o[kind]["flower_xrdata"]
                rows.append(row(f"{what}: xrdata strategy + ClientApp under Flower (`run_flower`, no-op client)", x,
                                ratio(x, e, False), "(info)"))
        out += [f"**(a) Engine overhead**: {o['clients']} no-op clients x {o['rounds']} rounds, every client in "
                "every round; first with a 2-array parameter dict (the engines' own cost), then with the smallest "
                f"M3T. Per-round times are the steady state (rounds 2 to {o['rounds']}); Flower's first round also "
                "starts its Ray actors, and its whole run includes starting Ray.", "",
                md_table(["parameters: engine", "ms / round (mean)", "ms / round (median)", "first round s",
                          "whole run s", "Flower / xrdata (mean / median)", "target"], rows), ""]
    if "training" in res:
        rows = []
        for t in res["training"]:
            rows.append([f"`local_train`, {t['preset']} model ({t['params'] / 1e3:.0f} k params), {t['device']}",
                         f"{t['windows_s']:.1f}", f"{t['steps']} x 32", f"{t['s']:.2f}"])
        if not any(t["device"].startswith("cuda") for t in res["training"]):
            rows.append(["GPU", "n/a", "", "(torch sees no GPU on this machine)"])
        out += [f"**(b) Training throughput** on one client's real windows ({res['client']['windows']} training "
                f"windows of {res['client']['user']}, the 7 model inputs, batch 32, after 3 warm-up steps)", "",
                md_table(["", "windows/s", "steps x batch", "s"], rows), ""]
    if "pipeline" in res:
        p = res["pipeline"]
        cons = p["consumption_windows_s"]
        out += ["**(c) Input pipeline vs the model's consumption** (quickstart model training on the CPU, from (b))",
                "", md_table(["", "windows/s", "MB/s", "pipeline / consumption", "target"], [
                    ["per step: `ClientData.subset` (shuffled batch of 32) + `to_tensors`",
                     f"{p['batching']['windows_s']:.0f}", f"{p['batching']['windows_s'] * p['window_mb']:.0f}",
                     f"{p['batching']['windows_s'] / cons:.0f}x", ">= 3x"],
                    ["cold load from the store: `load_client`, cache off, 1 process (once per client and "
                     "store version)", f"{p['cold']['windows_s']:.0f}", f"{p['cold']['mb_s']:.1f}",
                     f"{p['cold']['windows_s'] / cons:.1f}x", "(info)"],
                    *([["warm load: `load_client` from the per-client window cache (later runs)",
                        f"{p['cached']['windows_s']:.0f}", f"{p['cached']['mb_s']:.0f}",
                        f"{p['cached']['windows_s'] / cons:.0f}x", ">= 3x"]] if p.get("cached") else []),
                    ["consumer: `local_train` step (forward + backward + AdamW)", f"{cons:.1f}",
                     f"{cons * p['window_mb']:.2f}", "", ""],
                ]), ""]
    if "quickstart" in res:
        q = res["quickstart"]
        if "error" in q:
            out += [f"**(d) `xrdata quickstart`** failed after {q['wall_s']:.0f} s: `{q['error'][-300:]}`", ""]
        else:
            out += [f"**(d) `xrdata quickstart`** ({q['users']} users, {q['sessions']} sessions): "
                    f"**{q['wall_s']:.0f} s** wall (synthesis {q['synth_s']:.0f} s, training with baselines and "
                    f"evaluation {q['train_eval_s']:.0f} s; the rest is start-up, validation and the report).", ""]
    return "\n".join(out)


PARTS = ("overhead", "training", "pipeline", "quickstart")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", help="store for (b)/(c), opened read-only, cache off (default: synthesize the "
                                    "quickstart cohort into a temp folder)")
    ap.add_argument("--clients", type=int, default=100, help="(a) no-op clients (default 100)")
    ap.add_argument("--rounds", type=int, default=20, help="(a) rounds (default 20)")
    ap.add_argument("--steps", type=int, default=20, help="(b) timed training steps (default 20)")
    ap.add_argument("--skip", action="append", default=[], choices=PARTS, help="skip a part (repeatable)")
    ap.add_argument("--write-cache", action="store_true",
                    help="(c) also time loading from the window cache, which is written into --store (never use "
                         "this on a shared store; a synthesized store always gets it)")
    ap.add_argument("--no-run-flower", action="store_true", help="(a) skip the xrdata-strategy-under-Flower row")
    ap.add_argument("--json", type=Path, help="also write every number as JSON here")
    ap.add_argument("--update-readme", action="store_true", help="rewrite this script's block in README.md")
    args = ap.parse_args(argv)
    logging.getLogger("flwr").addFilter(_QuietFlower())
    t_all = time.perf_counter()
    res: dict[str, Any] = {"machine": machine()}
    cpus = os.cpu_count() or 1
    if "overhead" not in args.skip:
        res["overhead"] = bench_overhead(args.clients, args.rounds, cpus, not args.no_run_flower)
    if "training" not in args.skip or "pipeline" not in args.skip:
        tmp = None
        store = args.store
        if store is None:
            from xrdata.synth import config_from_preset as synth_preset
            from xrdata.synth import generate

            tmp = Path(tempfile.mkdtemp(prefix="xrdata-fl-bench-"))
            store = str(tmp / "store")
            t = time.perf_counter()
            generate(synth_preset("quickstart"), store, workers=cpus, progress=False)
            print(f"synthesized the quickstart cohort in {time.perf_counter() - t:.0f} s", flush=True)
        try:
            data, tasks, cold = load_one_client(store)
            res["client"] = {"user": data.user, "windows": len(data), "store": "quickstart (synthesized)"
                             if tmp else store}
            print(f"(c) cold load: {cold['windows_s']:.0f} windows/s", flush=True)
            res["training"] = [bench_training(data, tasks, "quickstart", "cpu", args.steps),
                               bench_training(data, tasks, "benchmark", "cpu", args.steps)]
            if torch.cuda.is_available():
                res["training"] += [bench_training(data, tasks, p, "cuda", args.steps) for p in ("quickstart",
                                                                                                  "benchmark")]
            print("(b) " + ", ".join(f"{t['preset']}/{t['device']} {t['windows_s']:.1f} windows/s"
                                     for t in res["training"]), flush=True)
            if tmp is not None or args.write_cache:
                cached = bench_cached_load(store, [x["user"] for x in cold["users"]], tasks)
                print(f"(c) cached load: {cached['windows_s']:.0f} windows/s", flush=True)
            else:
                cached = None
            res["pipeline"] = {"cold": cold, "cached": cached, "batching": bench_batching(data, 200),
                               "consumption_windows_s": res["training"][0]["windows_s"],
                               "window_mb": data.nbytes / len(data) / 1e6}
            print(f"(c) batching: {res['pipeline']['batching']['windows_s']:.0f} windows/s", flush=True)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    if "quickstart" not in args.skip:
        res["quickstart"] = bench_quickstart()
        print(f"(d) quickstart: {res['quickstart']['wall_s']:.0f} s", flush=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["total_s"] = time.perf_counter() - t_all
    text = report(res)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if args.update_readme:
        update_readme(README, BEGIN, END, text + f"\n\nWhole run: {res['total_s']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
