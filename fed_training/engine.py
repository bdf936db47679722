"""The in-process federated engine: rounds of sampling, local training, compression and aggregation.

Every client is one user's partition (:class:`~xrdata.fed_training.data.ClientData`); the engine trains them
one after another on one model object, so a round costs only the clients' own compute.

Per round ``r`` (all randomness from ``SeedSequence([seed, r])``, so a run resumed from a checkpoint is bit
identical to one that never stopped):

1. **Availability and sampling**: each client is reachable with probability ``availability``; up to
   ``clients_per_round`` of the reachable ones are drawn.
2. **Budgets and stragglers**: client ``c`` has a device speed ``s_c`` (its device profile's speed times a
   log-normal factor drawn once) and a per-round slowdown ``z_cr`` (log-normal). It runs
   ``clamp(round(local_steps * s_c), 1, local_steps)`` steps; its simulated round time is
   ``steps * step_time_s / (s_c * z_cr)`` plus the radio time of its payloads. With a ``deadline_s`` the
   clients over it are dropped (their work is lost, as a server that stops waiting would lose it).
3. **Local training** (:func:`~xrdata.fed_training.local.local_train`) of the selected module groups.
4. **Uplink compression** (int8 / top-k) of each update; the error it introduces is logged.
5. **Aggregation** by topology:

   - ``centralized``: the server averages the updates (module-wise by default; client-level DP when
     ``dp_clip > 0``), then applies its optimizer (FedAvg / FedAdam / FedYogi).
   - ``semi``: clients are split into fixed clusters; inside a cluster the members reach consensus on the
     weighted module-wise average by D2D gossip over their complete graph (numerators and weights gossiped
     separately, so the ratio is the weighted mean), one representative uplinks it with the cluster's
     weights, and the server averages the representatives.
   - ``decentralized``: no server; every client keeps its own model, trains it when sampled, and every round
     all clients run ``gossip_steps`` Metropolis-Hastings gossip steps over a ring-lattice D2D graph. The
     reported global model is the average of the clients' models.

The reported global model is the last round's or, with ``tail_rounds = N``, the mean of the last N rounds'
global models (:class:`TailAverage`). With ``calibrate_heads`` every client then uploads the class statistics
of its features under that model and the server retrains the heads on them (one extra round,
:mod:`~xrdata.fed_training.calibrate`).

Communication is counted exactly in bytes: downlink (the float32 model each participant receives), uplink
(the compressed update, per module group too) and D2D (gossip messages).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xrdata.errors import ValidationError
from xrdata.fed_training.aggregate import (
    ClientUpdate,
    ServerOptimizer,
    clusters,
    compress,
    fedavg_deltas,
    gossip,
    metropolis_weights,
    modulewise_average,
    payload_bytes,
    ring_lattice,
)
from xrdata.fed_training.calibrate import apply_calibration, check_calibration, class_stats
from xrdata.fed_training.config import FedConfig, TaskSpec, TrainConfig, group_of
from xrdata.fed_training.data import ClientData
from xrdata.fed_training.local import LocalResult, get_params, local_train
from xrdata.fed_training.model import M3T
from xrdata.fed_training.privacy import dp_average, epsilon
from xrdata.fed_training.profiles import DeviceProfile, profile_for, radio_energy_j

__all__ = ["FedResult", "RoundLog", "TailAverage", "run_federated"]


@dataclass
class RoundLog:
    """What happened in one round."""

    round: int
    participants: list[str]  # clients whose update was aggregated
    dropped: list[str]  # sampled clients that missed the deadline
    available: int  # clients reachable this round
    loss: float  # mean local training loss of the participants
    bytes_up: int  # uplink bytes (after compression)
    bytes_down: int  # downlink bytes
    bytes_d2d: int  # device-to-device bytes (semi / decentralized)
    bytes_up_by_group: dict[str, int]  # uplink bytes per module group (before compression scaling: raw float32)
    compression_error: float  # mean relative L2 error of the compressed updates (0 without compression)
    sim_time_s: float  # simulated round time: the slowest participant's compute + radio time
    wall_s: float  # wall time of the round on this host
    local_steps: dict[str, int]  # steps each participant ran
    local_time_s: dict[str, float]  # host wall time of each participant's local training
    metrics: dict[str, float] = field(default_factory=dict)  # from the on_round callback (validation)


@dataclass
class FedResult:
    """The outcome of a federated run."""

    params: dict[str, np.ndarray]  # the global model (decentralized: the mean of the clients' models)
    history: list[RoundLog]
    comm: dict[str, dict[str, int]]  # client -> {"up": bytes, "down": bytes, "d2d": bytes, "rounds": n}
    energy_j: dict[str, float]  # client -> simulated energy (compute + radio) over the run (J)
    epsilon: float | None  # client-level DP epsilon at cfg.fed.dp_delta (None without DP)
    node_params: list[dict[str, np.ndarray]] | None = None  # decentralized: every client's own model
    calibration: dict[str, Any] | None = None  # the head-calibration round (calibrate.py), when it ran

    def summary(self) -> dict[str, Any]:
        up = sum(r.bytes_up for r in self.history)
        down = sum(r.bytes_down for r in self.history)
        d2d = sum(r.bytes_d2d for r in self.history)
        return {
            "rounds": len(self.history), "bytes_up": up, "bytes_down": down, "bytes_d2d": d2d,
            "bytes_per_round": (up + down + d2d) / max(1, len(self.history)),
            "dropped_stragglers": sum(len(r.dropped) for r in self.history),
            "sim_time_s": sum(r.sim_time_s for r in self.history), "wall_s": sum(r.wall_s for r in self.history),
            "epsilon": self.epsilon, "calibration": self.calibration,
        }


def round_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of round ``key`` (and sub-stream) of a run seeded with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def client_speeds(fed: FedConfig, names: Sequence[str], devices: Mapping[str, str] | None
                  ) -> tuple[dict[str, DeviceProfile], dict[str, float]]:
    """Each client's device profile and speed ``s_c`` (profile speed x a log-normal factor drawn once)."""
    init = round_rng(fed.seed, 0)
    profiles = {u: profile_for((devices or {}).get(u)) for u in names}
    return profiles, {u: profiles[u].speed * float(np.exp(init.normal(0.0, fed.speed_sigma))) for u in names}


@dataclass
class RoundPlan:
    """Who takes part in a round and with which budget (steps 1 and 2 of the module docstring)."""

    reachable: int  # clients reachable this round
    chosen: list[str]  # sampled clients, sorted
    slowdown: dict[str, float]  # client -> this round's slowdown factor z_cr
    steps: dict[str, int]  # client -> local steps
    seeds: dict[str, int]  # client -> torch/numpy seed of its local training this round


def plan_round(fed: FedConfig, names: Sequence[str], speed: Mapping[str, float], rnd: int) -> RoundPlan:
    """The round ``rnd``'s availability draw, client sample, slowdowns and step budgets (shared by the
    in-process and the Flower engines, so both run the same plan for a seed)."""
    rng = round_rng(fed.seed, rnd)
    reachable = [u for u in names if rng.random() < fed.availability]
    chosen = [str(u) for u in sorted(rng.choice(reachable, size=min(fed.clients_per_round, len(reachable)),
                                                replace=False))] if reachable else []
    slowdown = {u: float(np.exp(rng.normal(0.0, fed.speed_sigma))) for u in chosen}
    steps = {u: int(min(fed.local_steps, max(1, round(fed.local_steps * speed[u])))) for u in chosen}
    # one SeedSequence per round: word i belongs to client names[i] (independent of how many clients there are)
    words = np.random.SeedSequence([fed.seed, rnd, 7]).generate_state(len(names))
    index = {u: i for i, u in enumerate(names)}
    return RoundPlan(len(reachable), chosen, slowdown, steps, {u: int(words[index[u]]) for u in chosen})


class TailAverage:
    """The running mean of the global models of the last ``n`` of ``rounds`` rounds (tail averaging, as in SWA).

    Under label skew each round's global model leans toward the classes its sampled clients hold, so it swings
    from round to round; the mean of the last rounds' models cancels much of the swing (on the benchmark
    cohort, benchmarks/README.md). The sum is float64 and saved in checkpoints, so a resumed run reports the
    same model. ``n <= 1`` keeps nothing and reports the last round's model.
    """

    def __init__(self, rounds: int, n: int) -> None:
        self.first = rounds - n + 1 if n > 1 else rounds + 1
        self.sum: dict[str, np.ndarray] = {}
        self.count = 0

    def add(self, rnd: int, params: Mapping[str, np.ndarray]) -> None:
        """Add round ``rnd``'s global ``params`` when the round is in the tail."""
        if rnd < self.first:
            return
        for k, v in params.items():
            self.sum[k] = self.sum[k] + v if k in self.sum else v.astype(np.float64)
        self.count += 1

    def model(self, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reported model: the tail mean, or ``params`` while the tail is empty."""
        if not self.count:
            return dict(params)
        return {k: (v / self.count).astype(np.float32) for k, v in self.sum.items()}


def run_federated(
    cfg: TrainConfig,
    model: M3T,
    clients: Mapping[str, ClientData],
    tasks: Sequence[TaskSpec],
    *,
    devices: Mapping[str, str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    on_round: Callable[[int, dict[str, np.ndarray]], dict[str, float]] | None = None,
    progress: bool = False,
    local_fn: Callable[..., LocalResult] = local_train,
) -> FedResult:
    """Run ``cfg.fed.rounds`` rounds over ``clients`` (user -> its training windows), starting from ``model``'s
    parameters, and return the global model with the logs.

    Args:
        devices: user -> device preset name (for the device profile: speed, energy); default a standalone headset.
        checkpoint_dir: write ``round-NNNN.safetensors`` there every ``checkpoint_every`` rounds.
        resume: continue from the latest checkpoint in ``checkpoint_dir`` (its config must equal ``cfg``).
        on_round: called after aggregation with (round, global params); the floats it returns are logged
            (used for validation curves every ``eval_every`` rounds).
        local_fn: the client's training function, :func:`~xrdata.fed_training.local.local_train` by default
            (same signature; the engine benchmark passes a no-op one to time the engine alone).
    """
    from xrdata.progress import progress_bar

    fed = cfg.fed
    names = sorted(clients)
    if not names:
        raise ValidationError("run_federated needs at least one client with training windows")
    empty = [u for u in names if len(clients[u]) == 0]
    if empty:
        raise ValidationError(f"clients {empty} have no training windows; leave them out")
    if fed.dp_clip > 0 and fed.topology != "centralized":
        raise ValidationError("client-level DP (dp_clip > 0) needs topology='centralized'")
    if fed.rounds < 0 or fed.clients_per_round < 1 or not 0 < fed.availability <= 1:
        raise ValidationError("FedConfig: rounds >= 0, clients_per_round >= 1 and 0 < availability <= 1 are needed")
    check_calibration(fed)

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    params = get_params(model)
    server = ServerOptimizer(fed.server_opt, lr=fed.server_lr, betas=fed.server_betas, tau=fed.server_tau)
    n = len(names)
    profiles, speed = client_speeds(fed, names, devices)
    cluster_of: dict[str, int] = {}
    if fed.topology == "semi":
        for k, members in enumerate(clusters(n, min(fed.clusters, n), fed.seed)):
            cluster_of.update({names[i]: k for i in members})
    node_params = [dict(params) for _ in names] if fed.topology == "decentralized" else None
    mixing = metropolis_weights(ring_lattice(n, fed.graph_degree)) if node_params is not None else None
    opt_states: dict[str, dict[str, Any]] = {}
    tail = TailAverage(fed.rounds, fed.tail_rounds)
    history: list[RoundLog] = []
    comm = {u: {"up": 0, "down": 0, "d2d": 0, "rounds": 0} for u in names}
    energy = {u: 0.0 for u in names}
    start = 1
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume:
        if ckpt is None:
            raise ValidationError("resume=True needs a checkpoint_dir")
        state = load_checkpoint(ckpt, cfg)
        if state is not None:
            params, server, node_params, opt_states, history, comm, energy, tail = (
                state["params"], state["server"], state["node_params"], state["opt_states"], state["history"],
                state["comm"], state["energy"], state["tail"])
            start = len(history) + 1
    model_bytes = payload_bytes(params)

    bar = progress_bar(range(start, fed.rounds + 1), desc="federated rounds", unit="round", enabled=progress)
    for rnd in bar:
        t0 = time.perf_counter()
        plan = plan_round(fed, names, speed, rnd)
        chosen, slowdown = plan.chosen, plan.slowdown
        updates: list[ClientUpdate] = []
        log = RoundLog(rnd, [], [], plan.reachable, math.nan, 0, 0, 0, {}, 0.0, 0.0, 0.0, {}, {})
        losses, errors, times = [], [], []
        trained_nodes: dict[int, dict[str, np.ndarray]] = {}
        for u in chosen:
            i = names.index(u)
            steps = plan.steps[u]
            start_params = node_params[i] if node_params is not None else params
            res = local_fn(
                model, start_params, clients[u], tasks, steps=steps, batch_size=fed.batch_size, lr=fed.lr,
                seed=plan.seeds[u], weight_decay=fed.weight_decay, train_groups=fed.train_groups,
                prox_mu=fed.prox_mu, time_s=fed.local_time_s, opt_state=opt_states.get(u),
                keep_opt_state=fed.optimizer_state == "keep", logit_adjust=fed.logit_adjust, decorr=fed.decorr,
                modality_drop=fed.modality_drop, device=cfg.device,
            )
            if res.opt_state is not None:
                opt_states[u] = res.opt_state
            packed = compress(res.update.delta, fed.compression, topk_frac=fed.topk_frac)
            up = packed.nbytes
            down = model_bytes if fed.topology != "decentralized" else 0
            prof = profiles[u]
            compute_s = res.steps * fed.step_time_s / (speed[u] * slowdown[u])
            radio_s = 8 * up / (prof.uplink_mbps * 1e6) + 8 * down / (prof.downlink_mbps * 1e6)
            energy[u] += compute_s * prof.power_w + radio_energy_j(up, down, prof)
            comm[u]["down"] += down
            log.bytes_down += down
            if fed.deadline_s is not None and compute_s + radio_s > fed.deadline_s:
                log.dropped.append(u)
                continue
            comm[u]["up"] += up if fed.topology == "centralized" else 0
            comm[u]["rounds"] += 1
            log.participants.append(u)
            log.local_steps[u] = res.steps
            log.local_time_s[u] = round(res.time_s, 6)
            times.append(compute_s + radio_s)
            losses.append(res.loss)
            errors.append(packed.rel_error)
            for name, arr in res.update.delta.items():
                g = group_of(name)
                log.bytes_up_by_group[g] = log.bytes_up_by_group.get(g, 0) + arr.size * 4
            upd = ClientUpdate(u, packed.delta, res.update.weights, res.update.metrics)
            updates.append(upd)
            if node_params is not None:
                trained_nodes[i] = {k: node_params[i][k] + packed.delta.get(k, 0.0) for k in node_params[i]}
            if fed.topology == "centralized":
                log.bytes_up += up

        if fed.topology == "centralized" and updates:
            if fed.dp_clip > 0:
                delta = dp_average([x.delta for x in updates], fed.dp_clip, fed.dp_noise, round_rng(fed.seed, rnd, 1))
            elif fed.modulewise:
                delta, _ = modulewise_average(updates)
            else:
                delta = fedavg_deltas(updates)
            params = server.step(params, delta)
        elif fed.topology == "semi" and updates:
            reps = []
            for k in sorted({cluster_of[x.client] for x in updates}):
                members = [x for x in updates if cluster_of[x.client] == k]
                reps.append(_cluster_consensus(members, fed.gossip_steps, log, comm))
                rep = reps[-1]
                up = compress(rep.delta, fed.compression, topk_frac=fed.topk_frac).nbytes
                log.bytes_up += up
                comm[rep.client]["up"] += up
            delta, _ = modulewise_average(reps) if fed.modulewise else (fedavg_deltas(reps), None)
            params = server.step(params, delta)
        elif node_params is not None and mixing is not None:
            for i, p in trained_nodes.items():
                node_params[i] = p
            node_params = gossip(node_params, mixing, fed.gossip_steps)
            degree = (mixing > 0).sum(axis=1) - 1
            for i, u in enumerate(names):
                sent = int(degree[i]) * model_bytes * fed.gossip_steps
                comm[u]["d2d"] += sent
                log.bytes_d2d += sent
            params = {k: np.mean([p[k] for p in node_params], axis=0).astype(np.float32) for k in params}

        log.loss = float(np.mean(losses)) if losses else math.nan
        log.participants = sorted(log.participants)
        log.compression_error = float(np.mean(errors)) if errors else 0.0
        log.sim_time_s = float(max(times)) if times else 0.0
        if on_round is not None and fed.eval_every and (rnd % fed.eval_every == 0 or rnd == fed.rounds):
            log.metrics = on_round(rnd, params)
        log.wall_s = time.perf_counter() - t0
        history.append(log)
        tail.add(rnd, params)
        bar.set_postfix(loss=f"{log.loss:.3f}", clients=len(log.participants))
        if ckpt is not None and (rnd % max(1, fed.checkpoint_every) == 0 or rnd == fed.rounds):
            save_checkpoint(ckpt, rnd, cfg, params, server, node_params, opt_states, history, comm, energy, tail)

    eps = None
    if fed.dp_clip > 0 and fed.rounds > 0:
        eps = epsilon(fed.dp_noise, min(1.0, fed.clients_per_round / n), fed.rounds, fed.dp_delta)
    final, calibration = tail.model(params), None
    if fed.calibrate_heads:
        uploads = {u: class_stats(model, final, clients[u], tasks, device=cfg.device) for u in names}
        final, calibration = apply_calibration(fed, model, final, uploads, tasks, comm, model_bytes, cfg.device)
    return FedResult(final, history, comm, energy, eps, node_params, calibration)


def _cluster_consensus(members: list[ClientUpdate], steps: int, log: RoundLog,
                       comm: dict[str, dict[str, int]]) -> ClientUpdate:
    """D2D consensus of one cluster on the weighted module-wise mean of its members' updates.

    Each member gossips, per parameter, the numerator ``w_g * delta`` and the weight ``w_g`` of its group
    (0 where it did not train the group) over the cluster's complete graph with Metropolis weights; the ratio
    of the two is the weighted mean (exact after one step on a complete graph, to which it converges anyway).
    The first member (sorted ids) is the representative that uplinks.
    """
    m = len(members)
    names = sorted({k for x in members for k in x.delta})
    shapes = {k: next(x.delta[k].shape for x in members if k in x.delta) for k in names}
    nodes = []
    for x in members:
        state: dict[str, np.ndarray] = {}
        for k in names:
            w = x.weights.get(group_of(k), 0.0) if k in x.delta else 0.0
            state[k] = (x.delta[k] * w).astype(np.float32) if k in x.delta else np.zeros(shapes[k], np.float32)
            state["w/" + k] = np.array([w], np.float32)
        nodes.append(state)
    if m > 1:
        nodes = gossip(nodes, metropolis_weights(ring_lattice(m, m - 1)), max(1, steps))
        msg = payload_bytes({k: v for k, v in nodes[0].items() if not k.startswith("w/")})
        for x in members:
            sent = (m - 1) * msg * max(1, steps)
            comm[x.client]["d2d"] += sent
            log.bytes_d2d += sent
    rep = nodes[0]
    total: dict[str, float] = {}
    for x in members:
        for g, w in x.weights.items():
            total[g] = total.get(g, 0.0) + w
    delta = {k: (rep[k] / rep["w/" + k][0]).astype(np.float32) for k in names if rep["w/" + k][0] > 0}
    return ClientUpdate(members[0].client, delta, total, {})


# ----------------------------------------------------------------------------------------------------------
# checkpoints (safetensors: tensors + string metadata)


def save_checkpoint(folder: Path, rnd: int, cfg: TrainConfig, params: Mapping[str, np.ndarray],
                    server: ServerOptimizer, node_params: list[dict[str, np.ndarray]] | None,
                    opt_states: Mapping[str, dict[str, Any]], history: list[RoundLog],
                    comm: Mapping[str, Any], energy: Mapping[str, float], tail: TailAverage) -> Path:
    """Write ``round-NNNN.safetensors`` atomically: global params, server optimizer state, per-client models
    (decentralized), AdamW states (``optimizer_state="keep"``), the tail average's sum, and the logs as JSON
    metadata."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"param/{k}": np.ascontiguousarray(v) for k, v in params.items()}
    tensors.update({f"server/{k}": np.ascontiguousarray(v) for k, v in server.state_dict().items()})
    tensors.update({f"tail/{k}": np.ascontiguousarray(v) for k, v in tail.sum.items()})
    for i, p in enumerate(node_params or []):
        tensors.update({f"node/{i}/{k}": np.ascontiguousarray(v) for k, v in p.items()})
    opt_meta: dict[str, Any] = {}
    for u, st in opt_states.items():
        opt_meta[u] = {"param_groups": st["param_groups"], "keys": {}}
        for pid, entry in st["state"].items():
            for key, val in entry.items():
                tensors[f"opt/{u}/{pid}/{key}"] = val.detach().cpu().numpy().reshape(val.shape)
                opt_meta[u]["keys"].setdefault(str(pid), []).append(key)
    meta = {
        "round": str(rnd), "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "history": json.dumps([asdict(h) for h in history]), "comm": json.dumps(comm),
        "energy": json.dumps(energy), "opt": json.dumps(opt_meta), "tail_count": str(tail.count),
        "format": "xrdata-fed-checkpoint-1",
    }
    path = folder / f"round-{rnd:04d}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_checkpoint(folder: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The latest checkpoint in ``folder`` (None when there is none); its config must equal ``cfg``."""
    from safetensors import safe_open

    paths = sorted(folder.glob("round-*.safetensors"))
    if not paths:
        return None
    path = paths[-1]
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
        if meta.get("format") != "xrdata-fed-checkpoint-1":
            raise ValidationError(f"{path} is not an xrdata federated checkpoint")
        if json.loads(meta["config"]) != json.loads(json.dumps(cfg.to_dict(), sort_keys=True)):
            raise ValidationError(f"{path} was written with a different training config; resume needs the same one")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    params = {k[6:]: v for k, v in tensors.items() if k.startswith("param/")}
    fed = cfg.fed
    server = ServerOptimizer(fed.server_opt, lr=fed.server_lr, betas=fed.server_betas, tau=fed.server_tau)
    server.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("server/")})
    nodes: dict[int, dict[str, np.ndarray]] = {}
    for k, v in tensors.items():
        if k.startswith("node/"):
            _, i, name = k.split("/", 2)
            nodes.setdefault(int(i), {})[name] = v
    opt_states: dict[str, dict[str, Any]] = {}
    for u, m in json.loads(meta["opt"]).items():
        state = {int(pid): {key: torch.from_numpy(tensors[f"opt/{u}/{pid}/{key}"].copy()) for key in keys}
                 for pid, keys in m["keys"].items()}
        opt_states[u] = {"state": state, "param_groups": m["param_groups"]}
    history = [RoundLog(**h) for h in json.loads(meta["history"])]
    tail = TailAverage(fed.rounds, fed.tail_rounds)
    tail.sum = {k[5:]: v for k, v in tensors.items() if k.startswith("tail/")}
    tail.count = int(meta.get("tail_count", "0"))
    return {
        "params": params, "server": server, "node_params": [nodes[i] for i in sorted(nodes)] if nodes else None,
        "opt_states": opt_states, "history": history, "comm": json.loads(meta["comm"]),
        "energy": json.loads(meta["energy"]), "tail": tail,
    }
