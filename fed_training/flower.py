"""The trainer under Flower (1.41 Message API): the same client and strategy code as the in-process engine.

Nothing here re-implements training or averaging: the ClientApp runs
:func:`~xrdata.fed_training.local.local_train` and :func:`~xrdata.fed_training.aggregate.compress`, the strategy
runs :func:`~xrdata.fed_training.aggregate.modulewise_average` (or ``fedavg_deltas`` / ``dp_average``) and
:class:`~xrdata.fed_training.aggregate.ServerOptimizer`, and the round plan (availability, sampling, device
budgets, stragglers, client seeds) is drawn from the engine's own seeds, so with the same config a Flower run
trains the same clients for the same steps with the same seeds as :func:`~xrdata.fed_training.engine.run_federated`
(equal up to float rounding: the clients run in other processes, with their own torch thread count).

Pieces:

- :func:`make_client_app` -> ``flwr.clientapp.ClientApp`` with two handlers.
  ``query``: which client (user) this node is and how many training windows it holds; in the calibration
  round (``FedConfig.calibrate_heads``) also the class statistics of its features under the sent model.
  ``train``: loads the global ``ArrayRecord``, builds (once per process) the model described by the setup the
  server sends, runs the client function on this node's :class:`~xrdata.fed_training.data.ClientData`,
  compresses the delta per ``FedConfig.compression`` and replies with the compressed delta on the wire
  (float32, or int8 + one scale per tensor, or top-k values + int32 indices), the per-group weights and its
  metrics (``MetricRecord``). With ``optimizer_state="keep"`` the client's AdamW state stays in the node's
  ``Context.state`` (never sent).
- :class:`XRDataStrategy`, a ``flwr.serverapp.strategy.Strategy``: ``configure_train`` plans the round and sends
  each sampled client its steps and seed; ``aggregate_train`` decodes the replies into
  :class:`~xrdata.fed_training.aggregate.ClientUpdate` (sorted by client, the engine's order) and aggregates
  them. It keeps the engine's :class:`~xrdata.fed_training.engine.RoundLog` history, byte and energy accounting,
  deadline drops, client-level DP, tail averaging, safetensors checkpoints and, after the last round, the
  head-calibration round (:meth:`XRDataStrategy.calibrate`). Topologies other than ``centralized`` (D2D
  gossip) have no server to run a strategy on and stay with the in-process engine.
- :func:`run_flower`: Flower's Simulation Runtime (``flwr.simulation.run_simulation``, Ray backend: needs
  ``pip install "flwr[simulation]"``) in this process, one virtual SuperNode per client, Ray limited to this
  machine's cores; returns a :class:`~xrdata.fed_training.engine.FedResult` like the engine.
  ``xrdata train --engine flower`` uses it.

Messages (record keys; ``"config"`` and ``"arrays"`` as in Flower's own strategies):

====================  ===========================================================================================
server -> client       ``query``: ``{}``; calibration: ``"arrays"`` (the reported model) and ``"config"``
                       (``setup``, ``calibrate``, ``device``). ``train``: ``"arrays"`` (global parameters,
                       float32) and ``"config"`` (``setup``: JSON of the model, modalities, tasks and
                       DataConfig; ``steps``, ``seed``, ``batch-size``, ``lr``, ``weight-decay``,
                       ``train-groups``, ``prox-mu``, ``time-s``, ``keep-opt-state``, ``logit-adjust``,
                       ``compression``, ``topk-frac``, ``device``, ``server-round``)
client -> server       ``query``: ``"client"`` ConfigRecord ``{user, windows, device}``; calibration: also ``"stats"``
                       ArrayRecord (``<task>/<class>/n``, ``/sum``, ``/outer``: float64). ``train``: ``"delta"``
                       ArrayRecord (float32 delta / int8 codes / top-k values), ``"delta-scale"`` (int8: float32
                       scale per tensor) or ``"delta-index"`` (top-k: int32 flat indices), ``"weights"``
                       MetricRecord (group -> weight), ``"metrics"`` (steps, windows, loss, time-s, bytes-up,
                       rel-error), ``"update-metrics"`` (the update's own metrics) and ``"client"`` (user)
====================  ===========================================================================================

Real deployment (``flwr run``): the module-level ``app_client`` and ``app_server`` are the apps. A Flower App
project names them in its ``pyproject.toml``::

    [tool.flwr.app.components]
    serverapp = "xrdata.fed_training.flower:app_server"
    clientapp = "xrdata.fed_training.flower:app_client"

    [tool.flwr.app.config]
    store = "/data/xr-store"   # the server reads the task list here; a client reads its own partition
    preset = "quickstart"      # train preset (or config = "run.json", a load_config file)
    out = "xrdata-flower-run"  # the server writes federated.safetensors, history.json, tasks.json here
    min-nodes = 2              # clients the server waits for before round 1
    resume = false             # true: continue from the last checkpoint in out (optimizer_state "reset" only)

Each SuperNode holds one user's partition: ``flower-supernode --node-config "store='/data/xr-store'
user='u003'"`` (a node config ``store`` overrides the run config's; without ``user`` the node takes the
``partition-id``-th of the store's sorted users, which is what Flower's simulation gives). The client reads
only that user's windows (:func:`~xrdata.fed_training.data.load_client`, split ``train``); users without
training windows answer the query with 0 windows and are never sampled. Each node also reports its device
preset (node config ``device``, else its user's catalog rows), from which the server takes the client's device
profile (step budget, energy), as the in-process engine does. The server writes ``federated.safetensors``,
``history.json``, ``config.json``, ``tasks.json`` and checkpoints into ``out``; ``xrdata evaluate --run out``
evaluates it.

``tests/fed_training/test_flower_deployment.py`` runs this on loopback with Flower's Deployment Runtime (a
``flower-superlink``, one ``flower-supernode`` process per user, ``flwr run`` of such a project, stopped with
``flwr stop`` after round 1 and resumed with ``--run-config "resume=true"``): the run trains the same clients for
the same steps, with the same bytes and losses (up to float rounding), as ``xrdata train`` with the in-process
engine.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from xrdata.errors import ValidationError, XRDataError
from xrdata.fed_training.aggregate import (
    ClientUpdate,
    Compressed,
    ServerOptimizer,
    compress,
    fedavg_deltas,
    modulewise_average,
    payload_bytes,
)
from xrdata.fed_training.calibrate import check_calibration, class_stats
from xrdata.fed_training.config import (
    DataConfig,
    ModalitySpec,
    ModelConfig,
    TaskSpec,
    TrainConfig,
    group_of,
)
from xrdata.fed_training.data import ClientData
from xrdata.fed_training.engine import (
    FedResult,
    RoundLog,
    TailAverage,
    client_speeds,
    load_checkpoint,
    plan_round,
    round_rng,
    save_checkpoint,
)
from xrdata.fed_training.local import LocalResult, get_params, local_train
from xrdata.fed_training.privacy import dp_average, epsilon
from xrdata.fed_training.profiles import radio_energy_j
from xrdata.progress import progress_bar

__all__ = [
    "FlowerClientError",
    "XRDataStrategy",
    "app_client",
    "app_server",
    "decode_delta",
    "encode_delta",
    "make_client_app",
    "params_to_record",
    "record_to_params",
    "run_flower",
]

Params = dict[str, np.ndarray]


class FlowerClientError(XRDataError):
    """A ClientApp failed on a node; the message names the client and Flower's error reason."""


# ---------------------------------------------------------------------------------------------------------------
# Records: parameters and compressed deltas on the wire


def params_to_record(params: Mapping[str, np.ndarray]) -> ArrayRecord:
    """An ``ArrayRecord`` holding ``params`` under their own names (float32, any shapes)."""
    return ArrayRecord({k: Array(np.asarray(v, dtype=np.float32, order="C")) for k, v in params.items()})


def record_to_params(record: ArrayRecord) -> Params:
    """The ``name -> ndarray`` dict an ``ArrayRecord`` holds (arrays as stored, e.g. float32)."""
    return {k: a.numpy() for k, a in record.items()}


def encode_delta(delta: Mapping[str, np.ndarray], method: str = "none",
                 topk_frac: float = 0.1) -> tuple[dict[str, ArrayRecord], Compressed]:
    """The records a client sends for ``delta`` compressed by :func:`~xrdata.fed_training.aggregate.compress`,
    and compress's result (its ``nbytes`` is the accounted uplink size).

    ``none``: ``{"delta": float32}``. ``int8``: ``{"delta": int8 codes q, "delta-scale": float32 () scale s}``
    with ``q = rint(d_hat / s)``, ``s = max|d| / 127`` (compress's rule, so ``q * s`` is compress's
    reconstruction bit for bit). ``topk``: ``{"delta": float32 (k,) values, "delta-index": int32 (k,) flat
    indices}`` of compress's non-zero reconstructed entries. :func:`decode_delta` inverts it exactly.
    """
    packed = compress(delta, method, topk_frac=topk_frac)
    if method == "none":
        return {"delta": params_to_record(packed.delta)}, packed
    main: dict[str, Array] = {}
    side: dict[str, Array] = {}
    for k, d in delta.items():
        d_hat = packed.delta[k]
        if method == "int8":
            absmax = float(np.max(np.abs(np.asarray(d, np.float32)))) if np.size(d) else 0.0
            scale = np.float32(absmax / 127.0)
            q = np.rint(d_hat / scale) if scale > 0 else np.zeros(d_hat.shape)
            main[k] = Array(np.clip(q, -127, 127).astype(np.int8))
            side[k] = Array(np.array(scale, dtype=np.float32))
        else:
            idx = np.flatnonzero(d_hat).astype(np.int32)
            main[k] = Array(d_hat.ravel()[idx].astype(np.float32))
            side[k] = Array(idx)
    key = "delta-scale" if method == "int8" else "delta-index"
    return {"delta": ArrayRecord(main), key: ArrayRecord(side)}, packed


def decode_delta(content: RecordDict, shapes: Mapping[str, tuple[int, ...]]) -> Params:
    """The float32 delta the server reconstructs from a client's reply (``shapes``: the global parameters')."""
    main = content.array_records["delta"]
    out: Params = {}
    if "delta-scale" in content.array_records:
        scales = content.array_records["delta-scale"]
        for k, a in main.items():
            out[k] = a.numpy().astype(np.float32) * scales[k].numpy().astype(np.float32)[()]
    elif "delta-index" in content.array_records:
        index = content.array_records["delta-index"]
        for k, a in main.items():
            if k not in shapes:
                raise ValidationError(f"client delta has parameter {k!r} that the global model lacks")
            flat = np.zeros(int(np.prod(shapes[k])), np.float32)
            flat[index[k].numpy()] = a.numpy()
            out[k] = flat.reshape(shapes[k])
    else:
        out = {k: a.numpy().astype(np.float32, copy=False) for k, a in main.items()}
    return out


def _number(record: Mapping[str, Any], key: str) -> float:
    """A numeric value of a received record, or a ValidationError naming the key."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"message record entry {key!r} must be a number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------------------------
# Client side


@dataclass(frozen=True)
class Setup:
    """What a client needs to build the model and read its data; sent as JSON in every train message."""

    model: ModelConfig
    modalities: tuple[ModalitySpec, ...]
    model_tasks: tuple[TaskSpec, ...]  # the model's heads
    tasks: tuple[TaskSpec, ...]  # the tasks the loss uses (usually the same)
    data: DataConfig

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Setup:
        raw = json.loads(text)

        def tasks(items: list[dict[str, Any]]) -> tuple[TaskSpec, ...]:
            return tuple(TaskSpec(t["name"], tuple(t["classes"])) for t in items)

        data = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["data"].items()}
        return cls(
            ModelConfig(**raw["model"]),
            tuple(ModalitySpec(m["name"], m["kind"], m["steps"], tuple(m["shape"]), m["patch"])
                  for m in raw["modalities"]),
            tasks(raw["model_tasks"]), tasks(raw["tasks"]), DataConfig(**data),
        )


#: Per-process objects of the ClientApp (the model, the clients' windows). A Ray actor serves many virtual
#: SuperNodes one after another, so they share one model object as the in-process engine's clients do.
_PROCESS_CACHE: dict[tuple[str, ...], Any] = {}


def _cached(key: tuple[str, ...], make: Callable[[], Any]) -> Any:
    if key not in _PROCESS_CACHE:
        _PROCESS_CACHE[key] = make()
    return _PROCESS_CACHE[key]


def _model_for(setup_json: str) -> tuple[Any, Setup]:
    """The M3T the setup describes and the setup itself, built once per process."""
    from xrdata.fed_training.model import M3T

    def build() -> tuple[Any, Setup]:
        s = Setup.from_json(setup_json)
        return M3T(s.model, s.modalities, s.model_tasks), s

    out: tuple[Any, Setup] = _cached(("model", setup_json), build)
    return out


@dataclass(frozen=True)
class _Source:
    """Where a ClientApp finds its node's windows. Small, since Flower pickles the app with every message."""

    names: tuple[str, ...] = ()  # client ids: partition-id i -> names[i] (simulation)
    ref: Any = None  # Ray ObjectRef of {user: ClientData} (in-process simulation)
    store: str | None = None  # a store URL: each node loads its own user's partition

    def user(self, context: Context) -> str:
        user = context.node_config.get("user")
        if isinstance(user, str) and user:
            return user
        names = self.names or tuple(self._store_users(context))
        pid = context.node_config.get("partition-id")
        if not isinstance(pid, int) or not 0 <= pid < len(names):
            raise ValidationError(f"node config has neither a 'user' nor a 'partition-id' in [0, {len(names)})")
        return names[pid]

    def _store_url(self, context: Context) -> str:
        url = context.node_config.get("store") or self.store or context.run_config.get("store")
        if not isinstance(url, str) or not url:
            raise ValidationError("this ClientApp has no data: give a node config or run config 'store'")
        return url

    def _store_users(self, context: Context) -> list[str]:
        from xrdata.store import open_store

        url = self._store_url(context)
        users: list[str] = _cached(("users", url), lambda: sorted(open_store(url, "r").users()))
        return users

    def device(self, context: Context, user: str) -> str:
        """The node's device preset (node config ``device``, else the one of most of the user's catalog rows in
        its store; "" when unknown): the server's device profile of this client (budget, energy)."""
        given = context.node_config.get("device")
        if isinstance(given, str) and given:
            return given
        if self.ref is not None:
            return ""
        from xrdata.fed_training.data import user_devices
        from xrdata.store import open_store

        url = self._store_url(context)
        found: str = _cached(("device", url, user), lambda: user_devices(
            open_store(url, "r").catalog([user]).select("user", "device").collect()).get(user, ""))
        return found

    def data(self, context: Context, user: str, setup_json: str | None) -> ClientData:
        if self.ref is not None:
            import ray

            clients: Mapping[str, ClientData] = _cached(("ref", self.ref.hex()), lambda: ray.get(self.ref))
            return clients[user]
        url = self._store_url(context)

        def load() -> ClientData:
            from xrdata.fed_training.data import discover_tasks, load_client
            from xrdata.store import open_store

            st = open_store(url, "r")
            if setup_json is not None:
                s = Setup.from_json(setup_json)
                data_cfg, tasks, mods = s.data, list(s.tasks), list(s.modalities)
            else:  # a query before any train message: the store's own task list and the default inputs
                from xrdata.fed_training.config import MODALITIES

                data_cfg = DataConfig()
                tasks, mods = discover_tasks(st, data_cfg), [MODALITIES[m] for m in data_cfg.modalities]
            full = load_client(st, user, data_cfg, tasks, mods)
            return full.subset(np.flatnonzero(full.split == "train"))

        data: ClientData = _cached(("store", url, user, setup_json or ""), load)
        return data


def _save_opt_state(state: RecordDict, opt: Mapping[str, Any]) -> None:
    arrays: dict[str, Array] = {}
    meta: dict[str, Any] = {"param_groups": opt["param_groups"], "keys": {}}
    for pid, entry in opt["state"].items():
        for key, val in entry.items():
            arrays[f"{pid}/{key}"] = Array(np.asarray(val.detach().cpu().numpy(), order="C"))  # 0-d "step" stays 0-d
            meta["keys"].setdefault(str(pid), []).append(key)
    state["xrdata.opt"] = ArrayRecord(arrays)
    state["xrdata.opt-meta"] = ConfigRecord({"json": json.dumps(meta)})


def _load_opt_state(state: RecordDict) -> dict[str, Any] | None:
    if "xrdata.opt" not in state.array_records:
        return None
    import torch

    arrays = state.array_records["xrdata.opt"]
    meta = json.loads(str(state.config_records["xrdata.opt-meta"]["json"]))
    st = {int(pid): {key: torch.from_numpy(arrays[f"{pid}/{key}"].numpy().copy()) for key in keys}
          for pid, keys in meta["keys"].items()}
    return {"state": st, "param_groups": meta["param_groups"]}


class _Client:
    """The ClientApp's handlers (a plain object so that Flower can pickle the app to its Ray actors)."""

    def __init__(self, source: _Source, local_fn: Callable[..., LocalResult]) -> None:
        self.source = source
        self.local_fn = local_fn

    def query(self, msg: Message, context: Context) -> Message:
        """Who the node is (and how many windows it has); with ``calibrate`` in the config, also the class
        statistics of its features under the sent model (:func:`~xrdata.fed_training.calibrate.class_stats`)."""
        user = self.source.user(context)
        conf = msg.content.config_records["config"] if "config" in msg.content else ConfigRecord()
        setup = conf.get("setup")
        data = self.source.data(context, user, setup if isinstance(setup, str) else None)
        content = RecordDict({"client": ConfigRecord({"user": user, "windows": len(data),
                                                      "device": self.source.device(context, user)})})
        if conf.get("calibrate") and isinstance(setup, str):
            model, spec = _model_for(setup)
            stats = class_stats(model, record_to_params(msg.content.array_records["arrays"]), data,
                                list(spec.tasks), device=str(conf.get("device", "cpu")))
            content["stats"] = ArrayRecord({f"{t}/{c}/{part}": Array(np.asarray(v)) for t, classes in stats.items()
                                            for c, (n, s1, s2) in classes.items()
                                            for part, v in (("n", [n]), ("sum", s1), ("outer", s2))})
        return Message(content, reply_to=msg)

    def train(self, msg: Message, context: Context) -> Message:
        conf = msg.content.config_records["config"]
        setup_json = str(conf["setup"])
        user = self.source.user(context)
        model, setup = _model_for(setup_json)
        data = self.source.data(context, user, setup_json)
        params = record_to_params(msg.content.array_records["arrays"])
        keep = bool(conf["keep-opt-state"])
        time_s = _number(conf, "time-s")
        groups = conf.get("train-groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValidationError(f"train message 'train-groups' must be a list of group names, got {groups!r}")
        res = self.local_fn(
            model, params, data, list(setup.tasks), steps=int(_number(conf, "steps")),
            batch_size=int(_number(conf, "batch-size")), lr=_number(conf, "lr"), seed=int(_number(conf, "seed")),
            weight_decay=_number(conf, "weight-decay"), train_groups=tuple(groups), prox_mu=_number(conf, "prox-mu"),
            time_s=time_s if time_s > 0 else None, opt_state=_load_opt_state(context.state) if keep else None,
            keep_opt_state=keep, logit_adjust=bool(conf.get("logit-adjust", False)),
            decorr=_number(conf, "decorr"),
            modality_drop=_number(conf, "modality-drop"), device=str(conf["device"]),
        )
        if keep and res.opt_state is not None:
            _save_opt_state(context.state, res.opt_state)
        records, packed = encode_delta(res.update.delta, str(conf["compression"]),
                                       _number(conf, "topk-frac"))
        content = RecordDict({
            **records,
            "weights": MetricRecord({g: float(w) for g, w in res.update.weights.items()}),
            "metrics": MetricRecord({"steps": int(res.steps), "windows": int(res.windows), "loss": float(res.loss),
                                     "time-s": float(res.time_s), "bytes-up": int(packed.nbytes),
                                     "rel-error": float(packed.rel_error)}),
            "update-metrics": MetricRecord({k: float(v) for k, v in res.update.metrics.items()}),
            "client": ConfigRecord({"user": user}),
        })
        return Message(content, reply_to=msg)


def make_client_app(clients: Sequence[str] | None = None, *, ref: Any = None, store: str | None = None,
                    local_fn: Callable[..., LocalResult] = local_train) -> ClientApp:
    """The ClientApp (handlers ``query`` and ``train``; see the module docstring).

    Args:
        clients: sorted client ids; the node with ``partition-id`` i is ``clients[i]`` (Flower's simulation).
            Without it a node is its node config's ``user``, else the ``partition-id``-th user of its store.
        ref: a Ray ``ObjectRef`` of ``{user: ClientData}`` (:func:`run_flower` puts the windows in Ray's object
            store once; each actor process maps them without a copy).
        store: else each node loads its own user's ``train`` windows from this store URL (a node config or run
            config ``store`` wins).
        local_fn: the client function, :func:`~xrdata.fed_training.local.local_train` by default (same
            signature; a no-op one measures the engine alone). It must be importable or picklable.
    """
    client = _Client(_Source(tuple(clients or ()), ref, store), local_fn)
    app = ClientApp()
    app.query()(client.query)
    app.train()(client.train)
    return app


# ---------------------------------------------------------------------------------------------------------------
# Server side


class XRDataStrategy(Strategy):
    """The trainer's server under Flower: plans rounds like the engine, aggregates with the engine's functions.

    ``node_of`` maps every client id to its Flower node id (from the ``query`` round). The strategy holds the
    run's state (global parameters, server optimizer, history, accounting) and reports it with
    :meth:`result`. Flower's round ``r`` is the trainer's round ``first_round + r - 1`` (resume).
    """

    def __init__(self, cfg: TrainConfig, params: Mapping[str, np.ndarray], node_of: Mapping[str, int],
                 setup: Setup, *, devices: Mapping[str, str] | None = None,
                 checkpoint_dir: str | Path | None = None, resume: bool = False,
                 on_round: Callable[[int, dict[str, np.ndarray]], dict[str, float]] | None = None,
                 on_updates: Callable[[int, list[ClientUpdate]], None] | None = None,
                 progress: bool = False, tolerate_failures: bool = False) -> None:
        fed = cfg.fed
        check_calibration(fed)
        if fed.topology != "centralized":
            raise ValidationError(f"the Flower engine runs topology='centralized' only (got {fed.topology!r}); "
                                  "semi/decentralized D2D topologies run in the in-process engine")
        self.cfg = cfg
        self.names = sorted(node_of)
        if not self.names:
            raise ValidationError("XRDataStrategy needs at least one client node")
        self.node_of = dict(node_of)
        self.setup_json = setup.to_json()
        self.params: Params = {k: np.asarray(v, np.float32) for k, v in params.items()}
        self.shapes = {k: v.shape for k, v in self.params.items()}
        self.server = ServerOptimizer(fed.server_opt, lr=fed.server_lr, betas=fed.server_betas, tau=fed.server_tau)
        self.profiles, self.speed = client_speeds(fed, self.names, devices)
        self.history: list[RoundLog] = []
        self.tail = TailAverage(fed.rounds, fed.tail_rounds)
        self.comm = {u: {"up": 0, "down": 0, "d2d": 0, "rounds": 0} for u in self.names}
        self.energy = {u: 0.0 for u in self.names}
        self.on_round, self.on_updates, self.tolerate_failures = on_round, on_updates, tolerate_failures
        self.ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.first_round = 1
        if resume:
            if self.ckpt is None:
                raise ValidationError("resume=True needs a checkpoint_dir")
            if fed.optimizer_state == "keep":
                raise ValidationError("resume under Flower needs optimizer_state='reset': the clients' AdamW "
                                      "states live on the nodes, not in the server's checkpoint")
            state = load_checkpoint(self.ckpt, cfg)
            if state is not None:
                self.params, self.server, self.history = state["params"], state["server"], state["history"]
                self.tail = state["tail"]
                self.comm, self.energy = state["comm"], state["energy"]
                self.first_round = len(self.history) + 1
        self.model_bytes = payload_bytes(self.params)
        self.calibrated: Params | None = None
        self.calibration: dict[str, Any] | None = None
        self._plan: dict[str, Any] = {}
        self._t0 = 0.0
        self._bar: Any = None
        if progress:
            self._bar = progress_bar(total=fed.rounds, initial=self.first_round - 1,
                                     desc="federated rounds (flower)", unit="round")

    @property
    def rounds_left(self) -> int:
        return max(0, self.cfg.fed.rounds - self.first_round + 1)

    def summary(self) -> None:
        fed = self.cfg.fed
        logging.getLogger("flwr").info(
            "XRDataStrategy: %d clients, %d per round, availability %.2f, %s%s, server %s, compression %s",
            len(self.names), fed.clients_per_round, fed.availability, "module-wise " if fed.modulewise else "",
            "DP average" if fed.dp_clip > 0 else "average", fed.server_opt, fed.compression)

    # -- training ---------------------------------------------------------------------------------------------

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        """Sample the round's clients as the engine does and send each its budget and seed with ``arrays``."""
        self._t0 = time.perf_counter()
        fed = self.cfg.fed
        rnd = self.first_round + server_round - 1
        plan = plan_round(fed, self.names, self.speed, rnd)
        self._plan = {"round": rnd, "reachable": plan.reachable, "chosen": plan.chosen, "slowdown": plan.slowdown}
        messages = []
        for u in plan.chosen:
            conf = ConfigRecord({
                **dict(config), "server-round": rnd, "setup": self.setup_json, "steps": plan.steps[u],
                "seed": plan.seeds[u], "batch-size": fed.batch_size, "lr": fed.lr,
                "weight-decay": fed.weight_decay, "train-groups": list(fed.train_groups), "prox-mu": fed.prox_mu,
                "time-s": float(fed.local_time_s or 0.0), "keep-opt-state": fed.optimizer_state == "keep",
                "logit-adjust": fed.logit_adjust, "decorr": fed.decorr, "modality-drop": fed.modality_drop,
                "compression": fed.compression,
                "topk-frac": fed.topk_frac, "device": self.cfg.device,
            })
            content = RecordDict({"arrays": arrays, "config": conf})
            messages.append(Message(content, dst_node_id=self.node_of[u], message_type=MessageType.TRAIN,
                                    group_id=str(rnd)))
        return messages

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Decode the replies, account for them like the engine, aggregate and step the server optimizer."""
        fed = self.cfg.fed
        plan = self._plan
        rnd = plan["round"]
        log = RoundLog(rnd, [], [], plan["reachable"], float("nan"), 0, 0, 0, {}, 0.0, 0.0, 0.0, {}, {})
        by_user: dict[str, RecordDict] = {}
        user_of_node = {n: u for u, n in self.node_of.items()}
        for msg in replies:
            user = user_of_node.get(msg.metadata.src_node_id, f"node-{msg.metadata.src_node_id}")
            if msg.has_error():
                if not self.tolerate_failures:
                    raise FlowerClientError(f"client {user!r} failed in round {rnd}: {msg.error.reason}")
                logging.getLogger("flwr").warning("client %s failed in round %d: %s", user, rnd, msg.error.reason)
                log.dropped.append(user)
                continue
            by_user[user] = msg.content
        missing = sorted(set(plan["chosen"]) - set(by_user) - set(log.dropped))
        log.dropped.extend(missing)  # no reply before Flower's timeout: lost like a straggler's work
        updates: list[ClientUpdate] = []
        losses, errors, times = [], [], []
        for u in sorted(by_user):  # the engine's order (sorted client ids), so float sums match
            content = by_user[u]
            m = content.metric_records["metrics"]
            up, down, steps = int(_number(m, "bytes-up")), self.model_bytes, int(_number(m, "steps"))
            prof = self.profiles[u]
            compute_s = steps * fed.step_time_s / (self.speed[u] * plan["slowdown"][u])
            radio_s = 8 * up / (prof.uplink_mbps * 1e6) + 8 * down / (prof.downlink_mbps * 1e6)
            self.energy[u] += compute_s * prof.power_w + radio_energy_j(up, down, prof)
            self.comm[u]["down"] += down
            log.bytes_down += down
            if fed.deadline_s is not None and compute_s + radio_s > fed.deadline_s:
                log.dropped.append(u)
                continue
            self.comm[u]["up"] += up
            self.comm[u]["rounds"] += 1
            log.participants.append(u)
            log.local_steps[u] = steps
            log.local_time_s[u] = round(_number(m, "time-s"), 6)
            times.append(compute_s + radio_s)
            losses.append(_number(m, "loss"))
            errors.append(_number(m, "rel-error"))
            delta = decode_delta(content, self.shapes)
            for name, arr in delta.items():
                g = group_of(name)
                log.bytes_up_by_group[g] = log.bytes_up_by_group.get(g, 0) + arr.size * 4
            w_rec, m_rec = content.metric_records["weights"], content.metric_records["update-metrics"]
            weights = {g: _number(w_rec, g) for g in w_rec}
            metrics = {k: _number(m_rec, k) for k in m_rec}
            updates.append(ClientUpdate(u, delta, weights, metrics))
            log.bytes_up += up
        if updates:
            if self.on_updates is not None:
                self.on_updates(rnd, updates)
            if fed.dp_clip > 0:
                delta = dp_average([x.delta for x in updates], fed.dp_clip, fed.dp_noise, round_rng(fed.seed, rnd, 1))
            elif fed.modulewise:
                delta, _ = modulewise_average(updates)
            else:
                delta = fedavg_deltas(updates)
            self.params = self.server.step(self.params, delta)
        log.loss = float(np.mean(losses)) if losses else float("nan")
        log.participants = sorted(log.participants)
        log.dropped = sorted(log.dropped)
        log.compression_error = float(np.mean(errors)) if errors else 0.0
        log.sim_time_s = float(max(times)) if times else 0.0
        self.history.append(log)
        metrics_out = MetricRecord({"clients": len(log.participants), "bytes-up": log.bytes_up})
        if losses:
            metrics_out["loss"] = log.loss
        return (params_to_record(self.params) if updates else None), metrics_out

    def evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """``Strategy.start``'s ``evaluate_fn``: closes the round (validation callback, wall time, checkpoint)."""
        if server_round == 0 or not self.history:
            return None
        fed = self.cfg.fed
        log = self.history[-1]
        rnd = log.round
        if self.on_round is not None and fed.eval_every and (rnd % fed.eval_every == 0 or rnd == fed.rounds):
            log.metrics = self.on_round(rnd, self.params)
        log.wall_s = time.perf_counter() - self._t0
        self.tail.add(rnd, self.params)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{log.loss:.3f}", clients=len(log.participants))
        if self.ckpt is not None and (rnd % max(1, fed.checkpoint_every) == 0 or rnd == fed.rounds):
            save_checkpoint(self.ckpt, rnd, self.cfg, self.params, self.server, None, {}, self.history, self.comm,
                            self.energy, self.tail)
        return MetricRecord({k: float(v) for k, v in log.metrics.items()}) if log.metrics else None

    # -- no federated evaluation: the trainer evaluates the global model centrally (evaluate.py) ----------------

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return []

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return None

    def calibrate(self, grid: Grid, timeout_s: float = 600.0) -> None:
        """The head-calibration round (``fed.calibrate_heads``): every client node returns the class statistics
        of its features under the reported model; the server calibrates the heads as the engine does."""
        from xrdata.fed_training.calibrate import ClassStats, apply_calibration

        params = self.tail.model(self.params)
        conf = {"setup": self.setup_json, "calibrate": True, "device": self.cfg.device}
        messages = [Message(RecordDict({"arrays": params_to_record(params), "config": ConfigRecord(conf)}),
                            dst_node_id=self.node_of[u], message_type=MessageType.QUERY) for u in self.names]
        uploads: dict[str, ClassStats] = {}
        for msg in grid.send_and_receive(messages, timeout=timeout_s):
            user = str(msg.content.config_records["client"]["user"]) if not msg.has_error() else None
            if user is None or "stats" not in msg.content:
                reason = msg.error.reason if msg.has_error() else "no statistics in the reply"
                if not self.tolerate_failures:
                    raise FlowerClientError(f"node {msg.metadata.src_node_id} failed the calibration round: {reason}")
                continue
            parts: dict[tuple[str, int], dict[str, np.ndarray]] = {}
            for key, arr in msg.content.array_records["stats"].items():
                task, c, part = key.rsplit("/", 2)
                parts.setdefault((task, int(c)), {})[part] = arr.numpy()
            stats: ClassStats = {}
            for (name, cls), v in parts.items():
                stats.setdefault(name, {})[cls] = (float(v["n"][0]), v["sum"], v["outer"])
            uploads[user] = stats
        model, setup = _model_for(self.setup_json)
        self.calibrated, self.calibration = apply_calibration(self.cfg.fed, model, params, uploads, list(setup.tasks),
                                                              self.comm, self.model_bytes, self.cfg.device)

    def result(self) -> FedResult:
        """The run as the engine reports it."""
        fed = self.cfg.fed
        if self._bar is not None:
            self._bar.close()
        eps = None
        if fed.dp_clip > 0 and fed.rounds > 0:
            eps = epsilon(fed.dp_noise, min(1.0, fed.clients_per_round / len(self.names)), fed.rounds, fed.dp_delta)
        params = self.calibrated if self.calibrated is not None else self.tail.model(self.params)
        return FedResult(params, self.history, self.comm, self.energy, eps, None, self.calibration)


def discover_clients(grid: Grid, min_nodes: int, timeout_s: float = 600.0) -> tuple[dict[str, int], dict[str, str]]:
    """Wait for ``min_nodes`` nodes, ask each which client it is (``query``). Returns client id -> node id of the
    nodes that hold training windows, and client id -> the device preset the node reported (where known)."""
    t0 = time.perf_counter()
    nodes: list[int] = []
    while len(nodes) < min_nodes:
        if time.perf_counter() - t0 > timeout_s:
            raise FlowerClientError(f"only {len(nodes)} of {min_nodes} Flower nodes connected in {timeout_s:.0f} s")
        time.sleep(0.05)
        nodes = list(grid.get_node_ids())
    messages = [Message(RecordDict({"config": ConfigRecord()}), dst_node_id=n, message_type=MessageType.QUERY)
                for n in nodes]
    node_of: dict[str, int] = {}
    devices: dict[str, str] = {}
    for msg in grid.send_and_receive(messages, timeout=timeout_s):
        if msg.has_error():
            raise FlowerClientError(f"node {msg.metadata.src_node_id} failed the query: {msg.error.reason}")
        rec = msg.content.config_records["client"]
        user = str(rec["user"])
        if user in node_of:
            raise ValidationError(f"two Flower nodes claim to be client {user!r}")
        if _number(rec, "windows") > 0:
            node_of[user] = msg.metadata.src_node_id
            if rec.get("device"):
                devices[user] = str(rec["device"])
    return node_of, devices


# ---------------------------------------------------------------------------------------------------------------
# In-process simulation


class _QuietFlower(logging.Filter):
    """Drops Flower's INFO chatter and the deprecation notice of ``run_simulation`` (the in-process API)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "DEPRECATED FEATURE" not in str(record.msg) + str(
            record.args)


@contextmanager
def _flower_logging(verbose: bool) -> Iterator[None]:
    logger = logging.getLogger("flwr")
    quiet = None if verbose else _QuietFlower()
    if quiet is not None:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        if quiet is not None:
            logger.removeFilter(quiet)


def _ray_init(num_cpus: int, num_gpus: int, verbose: bool) -> None:
    import ray

    if ray.is_initialized():
        return
    # As Flower's RayBackend would (it skips its own init when Ray is up): actors see this sys.path.
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    with warnings.catch_warnings():
        # Ray 2.5x announces a future change of CUDA_VISIBLE_DEVICES handling for num_gpus=0 actors
        warnings.filterwarnings("ignore", message=".*accelerator visible devices.*", category=FutureWarning)
        # address="local": always a private Ray instance, never a cluster another process started here
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=verbose,
                 logging_level=logging.WARNING if verbose else logging.ERROR,
                 runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})


def run_flower(
    cfg: TrainConfig,
    model: Any,
    clients: Mapping[str, ClientData],
    tasks: Sequence[TaskSpec],
    *,
    devices: Mapping[str, str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    on_round: Callable[[int, dict[str, np.ndarray]], dict[str, float]] | None = None,
    progress: bool = False,
    local_fn: Callable[..., LocalResult] = local_train,
    on_updates: Callable[[int, list[ClientUpdate]], None] | None = None,
    num_cpus: int | None = None,
    client_cpus: float = 1.0,
    verbose: bool = False,
) -> FedResult:
    """:func:`~xrdata.fed_training.engine.run_federated` under Flower's Simulation Runtime, in this process.

    One virtual SuperNode per client (``partition-id`` i = ``sorted(clients)[i]``); the clients' windows go
    into Ray's object store once. Ray gets ``num_cpus`` cores (default: all of this machine's) and runs
    ``num_cpus / client_cpus`` ClientApp actors; with ``cfg.device`` CUDA each actor gets an equal share of the
    GPUs. Same arguments and result as the engine (``topology="centralized"`` only; ``node_params`` is None),
    plus:

    Args:
        on_updates: called with (round, the decoded client updates) before aggregation (tests, audits).
        num_cpus: cores Ray may use.
        client_cpus: cores reserved per ClientApp actor.
        verbose: show Flower's INFO log and the actors' output.
    """
    import torch

    from xrdata.fed_training.model import M3T

    fed = cfg.fed
    names = sorted(clients)
    if not names:
        raise ValidationError("run_flower needs at least one client with training windows")
    empty = [u for u in names if len(clients[u]) == 0]
    if empty:
        raise ValidationError(f"clients {empty} have no training windows; leave them out")
    if fed.rounds < 0 or fed.clients_per_round < 1 or not 0 < fed.availability <= 1:
        raise ValidationError("FedConfig: rounds >= 0, clients_per_round >= 1 and 0 < availability <= 1 are needed")
    if fed.topology != "centralized":
        raise ValidationError(f"run_flower runs topology='centralized' only (got {fed.topology!r})")
    if not isinstance(model, M3T):
        raise ValidationError(f"run_flower needs an M3T model (the clients rebuild it), got {type(model).__name__}")
    if client_cpus <= 0:
        raise ValidationError(f"client_cpus must be > 0, got {client_cpus}")
    try:
        import ray
        from flwr.simulation import run_simulation
    except ImportError as exc:
        from xrdata.errors import MissingDependencyError

        raise MissingDependencyError('the Flower engine needs Ray: pip install "flwr[simulation]" '
                                     '(or xrdata[flower])') from exc

    cpus = int(num_cpus or os.cpu_count() or 1)
    gpus = torch.cuda.device_count() if str(cfg.device).startswith("cuda") else 0
    actors = max(1, int(cpus // client_cpus))
    setup = Setup(model.cfg, tuple(model.modalities), tuple(model.tasks), tuple(tasks), cfg.data)
    params = get_params(model)
    holder: dict[str, XRDataStrategy] = {}

    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        node_of, _ = discover_clients(grid, len(names))
        strategy = XRDataStrategy(cfg, params, node_of, setup, devices=devices, checkpoint_dir=checkpoint_dir,
                                  resume=resume, on_round=on_round, on_updates=on_updates, progress=progress)
        holder["strategy"] = strategy
        if strategy.rounds_left:
            strategy.start(grid, params_to_record(strategy.params), num_rounds=strategy.rounds_left,
                           evaluate_fn=strategy.evaluate)
        if cfg.fed.calibrate_heads:
            strategy.calibrate(grid)

    with _flower_logging(verbose), warnings.catch_warnings():
        # Ray's driver leaves the Popen objects and /dev/null handles of the processes it started to the
        # garbage collector; collect them in here (ray.shutdown ran at the end of the simulation), so that their
        # ResourceWarnings do not surface later in the caller's code.
        warnings.simplefilter("ignore", ResourceWarning)
        _ray_init(cpus, gpus, verbose)
        ref = ray.put({u: clients[u] for u in names})
        client_app = make_client_app(names, ref=ref, local_fn=local_fn)
        backend = {"client_resources": {"num_cpus": client_cpus, "num_gpus": gpus / actors if gpus else 0.0}}
        try:
            run_simulation(server_app, client_app, num_supernodes=len(names),
                           backend_config=backend, verbose_logging=verbose)  # type: ignore[arg-type]
        finally:
            del ref, client_app
            gc.collect()
    if "strategy" not in holder:
        raise FlowerClientError("the Flower ServerApp ended before the strategy started (see Flower's log)")
    return holder["strategy"].result()


# ---------------------------------------------------------------------------------------------------------------
# Deployment: the apps `flwr run` loads (see the module docstring)


app_client = make_client_app()
app_server = ServerApp()


@app_server.main()
def _deployed_server(grid: Grid, context: Context) -> None:
    """Read the run config, find the clients, train, write the global model and the history."""
    from safetensors.numpy import save_file

    from xrdata.fed_training.config import MODALITIES, config_from_preset, load_config
    from xrdata.fed_training.data import discover_tasks
    from xrdata.fed_training.train import build_model
    from xrdata.store import open_store

    rc = context.run_config
    store = str(rc.get("store", ""))
    if not store:
        raise ValidationError("run config 'store' is required (the server reads the task list there)")
    cfg = load_config(str(rc["config"])) if rc.get("config") else config_from_preset(str(rc.get("preset",
                                                                                               "quickstart")))
    tasks = discover_tasks(open_store(store, "r"), cfg.data)
    mods = [MODALITIES[m] for m in cfg.data.modalities]
    model = build_model(cfg, (mods, tasks))
    out = Path(str(rc.get("out", "xrdata-flower-run")))
    node_of, devices = discover_clients(grid, int(_number({"min-nodes": 2, **rc}, "min-nodes")))
    strategy = XRDataStrategy(cfg, get_params(model), node_of, Setup(model.cfg, tuple(mods), tuple(tasks),
                                                                        tuple(tasks), cfg.data),
                              devices=devices, checkpoint_dir=out / "checkpoints" / "federated",
                              resume=bool(rc.get("resume", False)), tolerate_failures=True)
    if strategy.rounds_left:
        strategy.start(grid, params_to_record(strategy.params), num_rounds=strategy.rounds_left,
                       evaluate_fn=strategy.evaluate)
    if cfg.fed.calibrate_heads:
        strategy.calibrate(grid)
    res = strategy.result()
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in res.params.items()}, str(out / "federated.safetensors"),
              metadata={"store": store, "format": "xrdata-fed-model-1", "engine": "flower"})
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    (out / "tasks.json").write_text(json.dumps([{"name": t.name, "classes": list(t.classes)} for t in tasks]))
    (out / "history.json").write_text(json.dumps({
        "summary": res.summary(), "rounds": [dataclasses.asdict(r) for r in res.history], "comm": res.comm,
        "energy_j": res.energy_j}, indent=1, default=float))
