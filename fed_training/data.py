"""Client datasets of the federated trainer: one user's partition -> fixed-shape windows (:class:`ClientData`).

Every client is one user. :func:`load_client` reads only that user's partition (its catalog rows, its sessions,
its ground-truth partition) and turns it into windows with :func:`xrdata.windows`, one fixed number of steps
per model input (``MODALITIES[m].steps``: 40 gaze, 20 head, 50 IMU, 20 hand, 250 EEG, 8000 audio, 2 depth per
2 s window). The store streams are mean-pooled onto the step grid (nearest sample when the device is slower
than the grid; hand joints and depth frames always take the sample nearest the step centre, see ``_METHODS``),
then mapped onto the model's feature layout by fixed unit conversions (never statistics pooled across clients),
with NaN -> 0 after the step mask is recorded:

=========  ===============================================================================================
gaze       (40, 25): the canonical gaze channels without ``norm_x``, ``norm_y``, ``confidence``, in schema
           order (left / right / combined origin xyz + unit direction xyz, left / right pupil, left / right
           openness, left / right / combined valid). Origins: metres minus their window mean, x 10
           (decimetres); pupil diameters minus the session's median diameter of that eye, mm / 0.5
           (baseline-corrected pupillometry: load and arousal dilate the pupil by tenths of a millimetre
           while resting diameters differ by millimetres between people and lighting; the median of the
           client's own session, so nothing is pooled across clients; a live deployment would use a running
           median from the session start); directions: x and y (lateral and vertical: the sine of
           the angle off straight ahead) x 10, so a target 6 deg off-axis is 1 and not 0.1 (with Adam a
           small input learns proportionally slower), z as it is; openness and valid flags (mean-pooled:
           the share of valid samples in the step) as they are.
head       (20, 7): ``head_px, head_py, head_pz, head_qx, head_qy, head_qz, head_qw`` in the window's
           heading frame: rotated about the vertical (+Y) axis by minus the window's mean head yaw, so the
           direction the user faces in the room (random per session) carries no information and "forward",
           "left" and "down" mean the same in every window. x and z (horizontal): metres minus their window
           mean (translation within the window); y (up): metres above the floor minus 1.4, x 5 (seated eyes
           near -1, standing near +1), kept absolute because head height tells sitting from standing in
           stage/floor reference spaces (as raw metres, 1.1-1.7 for every window, federated models misread
           seated users as standing). Quaternions sign-flipped to ``qw >= 0`` (q
           and -q are the same rotation), qx/qy/qz x 10 (a 6 deg turn is about 0.5).
imu        (50, 6): ``accel_x..z`` / 9.81 (g, gravity included), ``gyro_x..z`` rad/s.
hand       (20, 158): per hand (left then right) the 26 joint positions (joint-major, xyz) minus the window
           mean of that hand's **wrist** (the palm where the wrist is never tracked in the window), x 10
           (decimetres), rotated into the window's heading frame like the head (a swipe to the user's left
           is the same vector whichever way the user faces; world frame in a window without head pose);
           then the left and right confidence (mean over joints; when the source has no confidence
           channel, 1 where the hand is tracked). An untracked hand in a tracked step is 0.
eeg        (250, 8): the sites Fp1 Fp2 Fz C3 C4 Pz O1 O2, picked by channel name (case-insensitive), volts
           -> microvolts / 20; a site the cap lacks is 0; a cap with none of them is absent.
audio      (8000,): the first channel, full scale [-1, 1], mean-pooled to 4 kHz.
depth      (2, 24, 32): the frame nearest each step centre in metres (uint16 millimetre frames / 1000),
           area-downsampled (``cv2.INTER_AREA`` weights) over the valid pixels only (0 and NaN pixels are
           invalid; an output pixel without a valid source pixel is 0).
=========  ===============================================================================================

A step is *present* when :func:`xrdata.windows` found a valid sample in it and at least one of the channels
used above is finite. A modality the user lacks (or whose channels cannot be mapped) is zeros with present all
False, so every client has the same keys. Audio, EEG and depth are kept as float16, in memory and in the cache
(half the bytes; rounding error <= 2**-11 of the value: 2.4e-5 full scale at a speech level of 0.05, under the
16-bit PCM step; 0.01 uV at 20 uV of EEG; 4 mm at 10 m of depth); everything else is float32.
:func:`to_tensors` returns float32.

Labels: a window gets the class of ``Window.labels[task]`` (the ``task/<task>`` event with the largest
overlap) only when that event covers at least ``DataConfig.min_label_overlap`` of the window, else -1.
Classes outside the task's class list are -1 too. The regression task ``qoe`` is the session's ``qoe/likert``
self-report (1..5, the last one when there are several), the same for every window of the session; NaN where
the session has none.

Splits: in a synthetic store (ground truth present for the user) the ground truth's split of each session; a
session the ground truth does not list (recorded later) is ``test_users`` for a held-out user, else
``future``. Otherwise a deterministic rule: the user is ``test_users`` when
``sha256("xrdata.fed_training/split/<user>")`` read as a fraction of 2**256 is below 0.15; else the last
``floor(0.2 n + 0.5)`` of its n sessions ordered by start (``utc_anchor``; sessions without one last, by id) are
``future`` and the rest ``train``.

Cache: with ``DataConfig.cache`` and a local store, each client is kept as
``<store>/.xrdata/cache/fed/<key>/<user>.npz`` (uncompressed, written atomically), where ``key`` hashes
everything that shapes the content (window and hop, label overlap, the modality specs, the task list and
:data:`CACHE_VERSION`). The file records a fingerprint of the user's catalog rows and ground-truth splits; a
changed partition (a session added, deleted, or rewritten with other samples) rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xrdata._fs import Backend
from xrdata.errors import NotFoundError, ValidationError
from xrdata.fed_training.config import MODALITIES, DataConfig, ModalitySpec, TaskSpec
from xrdata.ground_truth import read_config, read_table
from xrdata.model import check_id
from xrdata.store import Store, open_store
from xrdata.windowing import Method, Window, windows

if TYPE_CHECKING:
    import torch

__all__ = [
    "CACHE_VERSION", "EEG_SITES", "GAZE_CHANNELS", "SPLITS", "ClientData", "cache_dir", "concat",
    "discover_tasks", "load_client", "load_clients", "to_tensors", "user_devices",
]

log = logging.getLogger("xrdata.fed_training")

#: Bumped whenever the features change, so that old cache files are never read back.
CACHE_VERSION = 5
SPLITS = ("train", "future", "test_users")
#: The 25 gaze features, in order (the canonical gaze channels without norm_x, norm_y and confidence).
GAZE_CHANNELS: tuple[str, ...] = (
    *(f"{eye}_{kind}_{axis}" for eye in ("left", "right", "combined") for kind in ("origin", "dir")
      for axis in "xyz"),
    "left_pupil_diameter", "right_pupil_diameter", "left_openness", "right_openness",
    "left_valid", "right_valid", "combined_valid",
)
_GAZE_FLAGS = frozenset({"left_valid", "right_valid", "combined_valid"})
HEAD_CHANNELS = ("head_px", "head_py", "head_pz", "head_qx", "head_qy", "head_qz", "head_qw")
IMU_CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")
#: The EEG sites of the model input (10-20 names), in order.
EEG_SITES = ("Fp1", "Fp2", "Fz", "C3", "C4", "Pz", "O1", "O2")
_HAND_WRIST, _HAND_PALM = 1, 0  # joint indices of the hand schema's joint axis
_HAND_JOINTS = 26
_STANDARD_G = 9.81  # m/s^2 per g
_DECIMETRES = 10.0  # m -> dm for hand joints and eye origins (offsets of a few cm to a few dm)
_PUPIL_MM = 0.5  # pupil diameter minus its session median, mm / 0.5 (task-evoked dilation ~0.1-0.6 mm)
_GAZE_DIR_XY = 10.0  # gaze direction x/y components (sin of the off-axis angle; targets within ~0.05-0.5) x 10
_QUAT_XYZ = 10.0  # heading-frame head quaternion x/y/z (sin of half the angle; head turns of a few degrees) x 10
_HEAD_Y0, _HEAD_Y = 1.4, 5.0  # head height above the floor: (y - 1.4 m) x 5, seated eyes ~ -1, standing ~ +1
_EEG_SCALE = 1e6 / 20.0  # V -> uV / 20 (typical EEG +-20 uV -> +-1)
_F16_MAX = 65504.0
_HALF = frozenset({"audio", "eeg", "depth"})  # modalities kept as float16
_TEST_USER_FRAC = 0.15
_FUTURE_FRAC = 0.2
_CHUNK = 256  # windows converted at once (bounds the float32 full-resolution depth held in memory)
_CACHE_DIR = ".xrdata/cache/fed"
#: Resampling per stream (default "auto": mean-pooled, nearest sample when the device is slower than the grid).
#: Depth takes the frame nearest each step centre (a mean of frames from a moving head is a blur, and pooling
#: every pixel costs 3-5x more); hand joints too: tracked joints are already filtered, 10 Hz nearest keeps the
#: gesture dynamics (< 5 Hz) at a third of the cost of pooling 468 values per sample.
_METHODS: dict[str, Method] = {"depth": "nearest", "hand": "nearest"}


# --- the client dataset ---------------------------------------------------------------------------------


@dataclass(eq=False)
class ClientData:
    """The windows of one client (N windows).

    Attributes:
        user: the client's user id (``"pooled"`` for a concatenation of several users).
        x: modality -> ``(N, steps, *shape)`` float32 (audio, EEG, depth float16); 0 where missing.
        present: modality -> ``(N, steps)`` bool, True where the step holds real samples.
        y: task -> ``(N,)`` int64 class index (-1 = unlabelled), or float32 for regression (NaN = unlabelled).
        session: ``(N,)`` str session id of each window.
        start_ns: ``(N,)`` int64 window start on its session's clock (ns).
        split: ``(N,)`` str, ``"train"``, ``"future"`` or ``"test_users"``.
    """

    user: str
    x: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    session: np.ndarray
    start_ns: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return int(self.session.shape[0])

    def __repr__(self) -> str:
        mods = ", ".join(f"{m}: {int(p.any(axis=1).sum())}" for m, p in self.present.items())
        return f"ClientData(user={self.user!r}, windows={len(self)}, present={{{mods}}}, tasks={list(self.y)})"

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = [*self.x.values(), *self.present.values(), *self.y.values(), self.session, self.start_ns,
                  self.split]
        return int(sum(a.nbytes for a in arrays))

    def subset(self, idx: np.ndarray | Sequence[int]) -> ClientData:
        """The windows ``idx`` (int indices in any order, repeats allowed, or an ``(N,)`` bool mask), copied."""
        sel = np.asarray(idx)
        if sel.dtype == bool:
            if sel.shape != (len(self),):
                raise ValidationError(f"subset: a bool mask must have shape ({len(self)},), got {sel.shape}")
            sel = np.flatnonzero(sel)
        elif sel.size == 0:
            sel = sel.astype(np.int64)
        elif sel.dtype.kind not in "iu" or sel.ndim != 1:
            raise ValidationError(f"subset: idx must be 1-D int indices or a bool mask, got {sel.dtype} {sel.shape}")
        return ClientData(
            self.user,
            {m: a[sel] for m, a in self.x.items()},
            {m: a[sel] for m, a in self.present.items()},
            {t: a[sel] for t, a in self.y.items()},
            self.session[sel], self.start_ns[sel], self.split[sel],
        )

    @classmethod
    def concat(cls, parts: Sequence[ClientData], user: str | None = None) -> ClientData:
        """The windows of ``parts`` one after the other (centralized pooling). ``user`` defaults to the parts'
        common user, else ``"pooled"``. Every part must have the same modalities, shapes and tasks."""
        parts = list(parts)
        if not parts:
            raise ValidationError("concat needs at least one ClientData")
        first = parts[0]
        for p in parts[1:]:
            if list(p.x) != list(first.x) or list(p.y) != list(first.y):
                raise ValidationError(
                    f"concat: client {p.user!r} has modalities {list(p.x)} / tasks {list(p.y)}, but client "
                    f"{first.user!r} has {list(first.x)} / {list(first.y)}"
                )
            for m, a in p.x.items():
                if a.shape[1:] != first.x[m].shape[1:]:
                    raise ValidationError(
                        f"concat: modality {m!r} has shape {a.shape[1:]} in client {p.user!r} but "
                        f"{first.x[m].shape[1:]} in client {first.user!r}"
                    )
        if user is None:
            users = {p.user for p in parts}
            user = users.pop() if len(users) == 1 else "pooled"
        return ClientData(
            user,
            {m: np.concatenate([p.x[m] for p in parts]) for m in first.x},
            {m: np.concatenate([p.present[m] for p in parts]) for m in first.present},
            {t: np.concatenate([p.y[t] for p in parts]) for t in first.y},
            np.concatenate([p.session for p in parts]),
            np.concatenate([p.start_ns for p in parts]),
            np.concatenate([p.split for p in parts]),
        )

    def batches(
        self, batch_size: int, rng: np.random.Generator, shuffle: bool = True, drop_last: bool = False
    ) -> Iterator[ClientData]:
        """One epoch in batches of ``batch_size`` windows: every window exactly once (the last batch may be
        smaller unless ``drop_last``). With ``shuffle`` the order is ``rng.permutation``; the indices of a
        batch are sorted (faster gathers; the order inside a batch does not matter to a mean loss)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValidationError(f"batch_size must be a positive int, got {batch_size!r}")
        n = len(self)
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, int(batch_size)):
            idx = order[start : start + batch_size]
            yield self.subset(np.sort(idx) if shuffle else idx)


def concat(parts: Sequence[ClientData], user: str | None = None) -> ClientData:
    """:meth:`ClientData.concat` as a function."""
    return ClientData.concat(parts, user)


def to_tensors(
    batch: ClientData, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(x, present, y)`` torch tensors on ``device``: x float32 ``(B, steps, *shape)``, present bool
    ``(B, steps)``, y int64 ``(B,)`` (classification) or float32 ``(B,)`` (regression). On the CPU, tensors of
    arrays that need no conversion share memory with ``batch``."""
    import torch

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    x = {m: tensor(a).to(device=device, dtype=torch.float32) for m, a in batch.x.items()}
    present = {m: tensor(a).to(device=device) for m, a in batch.present.items()}
    y = {t: tensor(a).to(device=device) for t, a in batch.y.items()}
    return x, present, y


# --- task discovery -------------------------------------------------------------------------------------


def user_devices(catalog: pl.DataFrame) -> dict[str, str]:
    """Each user's device (the ``device`` of most of its catalog rows; ties: the first name in sort order)
    from catalog rows with ``user`` and ``device`` columns; users without a recorded device are left out."""
    counts = (catalog.filter(pl.col("device").is_not_null()).group_by("user", "device").len()
              .sort(["user", "len", "device"], descending=[False, True, False]))
    first = counts.unique("user", keep="first", maintain_order=True)
    return {r["user"]: r["device"] for r in first.iter_rows(named=True)}


def discover_tasks(store: Store | str | os.PathLike[str], cfg: DataConfig) -> list[TaskSpec]:
    """The task heads of a store: every ``task/<name>`` label plus the regression task ``qoe`` when a session
    holds a ``qoe/likert`` self-report.

    Task names come from the catalog (one list per session). The classes of a task the store's ground truth
    lists (a synthetic store's ``labels``: the generator's class lists, the same in every store) are taken
    from there, in that order; other tasks get
    the sorted distinct values of their events, read only from the sessions that have the task. Finding
    ``qoe`` reads session events until the first self-report. ``cfg.tasks`` (when not None) selects and orders
    the tasks; a known task or ``qoe`` named there is kept even when the store lacks it. Default order:
    classification tasks by name, then ``qoe``.

    Raises:
        ValidationError: ``cfg.tasks`` names a task twice, or a task that is neither known nor in the store.
    """
    st = _as_store(store)
    cat = (
        st.catalog()
        .filter(pl.col("complete"))
        .select("user", "session", "tasks")
        .unique(["user", "session"])
        .sort("user", "session")
        .collect()
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for user, session, names in cat.iter_rows():
        for name in names or []:
            found.setdefault(name, []).append((user, session))
    sessions = list(zip(cat["user"].to_list(), cat["session"].to_list(), strict=True))
    if cfg.tasks is None:
        wanted = [*sorted(n for n in found if n != "qoe"), "qoe"]
    else:
        if isinstance(cfg.tasks, str):
            raise ValidationError(f"DataConfig.tasks must be a sequence of task names, not a string ({cfg.tasks!r})")
        wanted = list(cfg.tasks)
        dup = sorted({t for t in wanted if wanted.count(t) > 1})
        if dup:
            raise ValidationError(f"DataConfig.tasks names task(s) {dup} more than once")
    truth = read_config(st) or {}
    known: dict[str, list[str]] = truth.get("labels") or {}
    out: list[TaskSpec] = []
    for name in wanted:
        if name == "qoe":
            if cfg.tasks is not None or _has_likert(st, sessions):
                out.append(TaskSpec("qoe"))
        elif name in known:
            out.append(TaskSpec(name, tuple(known[name])))
        else:
            values = _task_values(st, name, found.get(name, []))
            if not values:
                raise ValidationError(
                    f"DataConfig.tasks names task {name!r}, but no session of store {st.url} has a task/{name} "
                    f"event and it is not a known task; the store has {sorted(found)}, known: "
                    f"{', '.join(known)}, qoe"
                )
            out.append(TaskSpec(name, tuple(sorted(values))))
    return out


def _session_events(st: Store, user: str, session: str) -> pl.DataFrame:
    return st.read(user, session, streams=[]).events


def _has_likert(st: Store, sessions: Iterable[tuple[str, str]]) -> bool:
    return any(
        (_session_events(st, u, s)["label"] == "qoe/likert").any() for u, s in sessions
    )


def _task_values(st: Store, name: str, sessions: Iterable[tuple[str, str]]) -> set[str]:
    values: set[str] = set()
    for u, s in sessions:
        ev = _session_events(st, u, s)
        values.update(ev.filter(pl.col("label") == f"task/{name}")["value"].to_list())
    return values


# --- loading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """How one stream of one session is stored (what the feature mapping needs)."""

    stream: str
    shape: tuple[int, ...]
    channels: tuple[str, ...]
    dtype: str


def load_client(
    store: Store | str | os.PathLike[str], user: str, cfg: DataConfig, tasks: Sequence[TaskSpec],
    modalities: Sequence[ModalitySpec] | None = None,
) -> ClientData:
    """The windows of ``user`` (see the module docstring), read from the cache when it is up to date.

    Args:
        store: an open store or a store URL (opened read-only).
        user: the client; no other user's data is read.
        cfg: window length and hop (s), modalities, label overlap, cache.
        tasks: the task heads (usually :func:`discover_tasks`); ``y`` has one entry per task, in this order.
        modalities: the model inputs (default ``MODALITIES[m]`` for ``m`` in ``cfg.modalities``). A spec may
            change ``steps`` (and the depth frame size), not the feature layout.

    Returns:
        :class:`ClientData` of N windows (sessions in id order, windows in time order).
    """
    st = _as_store(store)
    check_id(user, "user id")
    specs = _modality_specs(cfg, modalities)
    task_list = _check_tasks(tasks)
    if user not in st.users():
        raise NotFoundError(f"no user {user!r} in store {st.url}")
    rows = (
        st.catalog([user])
        .filter(pl.col("complete"))
        .select("session", "stream", "modality", "n_samples", "start_ns", "stop_ns", "nominal_rate_hz",
                "sample_shape", "channels", "dtype", "utc_anchor")
        .collect()
        .sort("session", "stream")
    )
    truth = _truth_splits(st, user)
    path = _cache_file(st, cfg, specs, task_list, user) if cfg.cache else None
    fingerprint = _fingerprint(rows, truth)
    if path is not None:
        cached = _read_cache(path, fingerprint, user, specs, task_list)
        if cached is not None:
            return cached
    data = _build(st, user, cfg, specs, task_list, rows, truth)
    if path is not None:
        _write_cache(path, data, fingerprint, specs)
    return data


def load_clients(
    store: Store | str | os.PathLike[str], users: Sequence[str], cfg: DataConfig, tasks: Sequence[TaskSpec],
    workers: int = 1, progress: bool = False, modalities: Sequence[ModalitySpec] | None = None,
) -> dict[str, ClientData]:
    """:func:`load_client` for every user of ``users``, in ``workers`` processes (spawned; 1 = in this
    process). The result, in the order of ``users``, is the same whatever the number of workers."""
    from xrdata.progress import progress_bar

    if isinstance(users, str):
        raise ValidationError(f"users must be a list of user ids, not a string ({users!r})")
    st = _as_store(store)
    todo = list(users)
    if len(set(todo)) != len(todo):
        raise ValidationError(f"users lists a user twice: {sorted({u for u in todo if todo.count(u) > 1})}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValidationError(f"workers must be a positive int, got {workers!r}")
    _modality_specs(cfg, modalities)  # fail here, not in a worker
    task_list = _check_tasks(tasks)
    n = min(workers, len(todo))
    if Backend(st.url).memory:
        n = 1  # an in-memory store exists only in this process
    out: dict[str, ClientData] = {}
    bar = progress_bar(total=len(todo), desc="load", unit="user", enabled=progress)
    try:
        if n <= 1:
            for u in todo:
                out[u] = load_client(st, u, cfg, task_list, modalities)
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")  # polars and zarr hold threads: never fork them
            with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                futures = {pool.submit(_load_in_worker, st.url, u, cfg, task_list, modalities): u for u in todo}
                try:
                    for fut in as_completed(futures):
                        out[futures[fut]] = fut.result()
                        bar.update(1)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        bar.close()
    return {u: out[u] for u in todo}


def _load_in_worker(
    url: str, user: str, cfg: DataConfig, tasks: list[TaskSpec], modalities: Sequence[ModalitySpec] | None
) -> ClientData:
    return load_client(open_store(url, "r"), user, cfg, tasks, modalities)


def _as_store(store: Store | str | os.PathLike[str]) -> Store:
    if isinstance(store, Store):
        return store
    if isinstance(store, str | os.PathLike):
        return open_store(store, "r")
    raise ValidationError(f"store must be a Store or a store URL, got {type(store).__name__}")


def _modality_specs(cfg: DataConfig, modalities: Sequence[ModalitySpec] | None) -> dict[str, ModalitySpec]:
    if modalities is None:
        unknown = [m for m in cfg.modalities if m not in MODALITIES]
        if unknown:
            raise ValidationError(
                f"DataConfig.modalities names unknown modality(ies) {unknown}; known: {', '.join(MODALITIES)}"
            )
        chosen = [MODALITIES[m] for m in cfg.modalities]
    else:
        chosen = list(modalities)
    specs: dict[str, ModalitySpec] = {}
    for spec in chosen:
        if not isinstance(spec, ModalitySpec):
            raise ValidationError(f"modalities must hold ModalitySpec objects, got {type(spec).__name__}")
        base = MODALITIES.get(spec.name)
        if base is None:
            raise ValidationError(f"modality {spec.name!r} has no feature mapping; known: {', '.join(MODALITIES)}")
        if spec.name in specs:
            raise ValidationError(f"modality {spec.name!r} is listed twice")
        if spec.steps < 1:
            raise ValidationError(f"modality {spec.name!r}: steps must be positive, got {spec.steps}")
        ok_shape = (len(spec.shape) == 2 and min(spec.shape) >= 1) if spec.name == "depth" else spec.shape == base.shape
        if not ok_shape:
            raise ValidationError(
                f"modality {spec.name!r}: shape {spec.shape} does not match its feature layout {base.shape}"
            )
        specs[spec.name] = spec
    return specs


def _check_tasks(tasks: Sequence[TaskSpec]) -> list[TaskSpec]:
    out = list(tasks)
    names = [t.name for t in out if isinstance(t, TaskSpec)]
    if len(names) != len(out):
        raise ValidationError("tasks must hold TaskSpec objects (see discover_tasks)")
    if len(set(names)) != len(names):
        raise ValidationError(f"tasks names a task twice: {names}")
    return out


def _build(
    st: Store, user: str, cfg: DataConfig, specs: dict[str, ModalitySpec], tasks: list[TaskSpec],
    rows: pl.DataFrame, truth: dict[str, str],
) -> ClientData:
    """Window, map and label the user's sessions (no cache)."""
    length_ns = round(cfg.window_s * 1e9)
    splits = _splits(user, rows, truth)
    # Per session: the usable streams among the modalities. Sessions whose streams agree in shape, channels and
    # dtype are windowed together; windows() needs one sample shape per stream across the sessions it sees.
    per_session: dict[str, dict[str, _Source]] = {}
    shapes: dict[str, set[tuple[int, ...]]] = {}
    for r in rows.filter(pl.col("stream").is_in(list(specs))).iter_rows(named=True):
        src = _Source(r["stream"], tuple(r["sample_shape"]), tuple(r["channels"]), r["dtype"])
        shapes.setdefault(src.stream, set()).add(src.shape)
        if (r["n_samples"] or 0) > 0 and _usable(src):
            per_session.setdefault(r["session"], {})[src.stream] = src
    groups: dict[tuple[_Source, ...], list[str]] = {}
    for session in sorted(per_session):
        groups.setdefault(tuple(per_session[session][s] for s in sorted(per_session[session])), []).append(session)
    conflict = any(len(v) > 1 for v in shapes.values())

    chunks: list[dict[str, Any]] = []
    events: dict[str, _SessionLabels] = {}
    for sources, sessions in groups.items():
        view: Store = _SessionSubset(st, user, sessions) if conflict else st
        streams = [s.stream for s in sources]
        it = windows(
            view, user, length_s=cfg.window_s, hop_s=cfg.hop_s, streams=streams,
            steps={s: specs[s].steps for s in streams}, sessions=sessions,
            method={s: _METHODS.get(s, "auto") for s in streams},
        )
        by_stream = {s.stream: s for s in sources}
        pupil = {s: _pupil_medians(st, user, s, by_stream["gaze"]) for s in sessions} if "gaze" in by_stream else {}
        for block in _take(it, _CHUNK):
            for session in {w.session for w in block} - set(events):
                events[session] = _SessionLabels(_session_events(st, user, session))
            chunks.append(_convert(block, specs, by_stream, tasks, events, length_ns, cfg.min_label_overlap,
                                   pupil))
    return _assemble(user, chunks, specs, tasks, splits)


def _pupil_medians(st: Store, user: str, session: str, src: _Source) -> np.ndarray:
    """(2,) median left and right pupil diameters (mm) of the session's gaze stream over its finite samples
    (NaN for an eye without any, or without the channel)."""
    cols = _index(src.channels, ("left_pupil_diameter", "right_pupil_diameter"))
    if all(c is None for c in cols):
        return np.full(2, np.nan)
    data = st.read(user, session, streams=[src.stream]).streams[src.stream].data
    out = np.full(2, np.nan)
    for k, c in enumerate(cols):
        if c is not None:
            v = np.asarray(data[:, c], dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size:
                out[k] = float(np.median(v))
    return out


def _take(it: Iterator[Window], n: int) -> Iterator[list[Window]]:
    block: list[Window] = []
    for w in it:
        block.append(w)
        if len(block) == n:
            yield block
            block = []
    if block:
        yield block


class _SessionSubset(Store):
    """``base`` as seen by :func:`xrdata.windows` when ``user`` has only the sessions ``keep``.

    windows() checks that a stream has one sample shape across every session of the user, even those it does
    not walk; a user whose sessions differ (another EEG cap, another depth size) is windowed one group of
    sessions at a time through this view. Shares ``base``'s open handles; reads nothing of other users.
    """

    def __init__(self, base: Store, user: str, keep: Sequence[str]) -> None:  # no super().__init__: a view
        self.__dict__.update(base.__dict__)
        self._view_user = user
        self._view_keep = frozenset(keep)

    def sessions(self, user: str, *, include_incomplete: bool = False) -> list[str]:
        out = super().sessions(user, include_incomplete=include_incomplete)
        return [s for s in out if s in self._view_keep] if user == self._view_user else out

    def catalog(self, users: Sequence[str] | None = None) -> pl.LazyFrame:
        keep = sorted(self._view_keep)
        return super().catalog(users).filter((pl.col("user") != self._view_user) | pl.col("session").is_in(keep))


# --- features -------------------------------------------------------------------------------------------


def _index(channels: Sequence[str], names: Sequence[str], *, fold: bool = False) -> list[int | None]:
    """Position of each of ``names`` in ``channels`` (None when absent)."""
    key = (lambda c: c.lower()) if fold else (lambda c: c)
    where = {key(c): i for i, c in reversed(list(enumerate(channels)))}  # first occurrence wins
    return [where.get(key(n)) for n in names]


def _usable(src: _Source) -> bool:
    """True when the stream can be mapped onto its modality's features."""
    name, shape, ch = src.stream, src.shape, src.channels
    if name == "gaze":
        return len(shape) == 1 and any(i is not None for i in _index(ch, GAZE_CHANNELS))
    if name == "head":
        return len(shape) == 1 and any(i is not None for i in _index(ch, HEAD_CHANNELS))
    if name == "imu":
        return len(shape) == 1 and any(i is not None for i in _index(ch, IMU_CHANNELS))
    if name == "hand":
        return shape[:2] == (2, _HAND_JOINTS) and len(shape) == 3 and None not in _index(ch, ("px", "py", "pz"))
    if name == "eeg":
        return len(shape) == 1 and any(i is not None for i in _index(ch, EEG_SITES, fold=True))
    if name == "audio":
        return len(shape) == 1 and shape[0] >= 1
    if name == "depth":
        return len(shape) == 2 and min(shape) >= 1
    return False


def _pick(data: np.ndarray, idx: Sequence[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """``data[..., idx]`` with NaN columns where idx is None; and which columns exist."""
    have = np.array([i is not None for i in idx])
    cols = np.array([0 if i is None else i for i in idx], dtype=np.int64)
    out = data[..., cols]
    out[..., ~have] = np.nan
    return out, have


def _window_mean(v: np.ndarray) -> np.ndarray:
    """``(W, S, ...)`` -> ``(W, 1, ...)`` mean over the finite steps (NaN where none), without warnings."""
    ok = np.isfinite(v)
    total = np.where(ok, v, 0.0).sum(axis=1, keepdims=True)
    count = ok.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _window_heading(head: np.ndarray) -> np.ndarray:
    """``(W, S, 7)`` head pose samples (``HEAD_CHANNELS`` order, NaN where missing) -> ``(W,)`` the circular
    mean yaw (rad, about +Y; 0 = facing -Z) of each window; 0 where a window has no head pose."""
    qx, qy, qz, qw = (head[..., i].astype(np.float64) for i in range(3, 7))
    yaw = np.arctan2(2 * (qw * qy + qx * qz), 1 - 2 * (qx * qx + qy * qy))  # (W, S)
    ok = np.isfinite(yaw)
    sin, cos = np.where(ok, np.sin(yaw), 0.0).sum(axis=1), np.where(ok, np.cos(yaw), 0.0).sum(axis=1)
    return np.where(ok.any(axis=1), np.arctan2(sin, cos), 0.0)


def _yaw_rotate(xz: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """``(W, ..., 2)`` horizontal (x, z) vectors rotated about +Y by ``-heading`` ``(W,)``: into the frame of a
    head that faces -Z."""
    c = np.cos(heading).reshape(-1, *([1] * (xz.ndim - 2))).astype(np.float32)
    s = np.sin(heading).reshape(-1, *([1] * (xz.ndim - 2))).astype(np.float32)
    x, z = xz[..., 0], xz[..., 1]
    return np.stack([c * x - s * z, s * x + c * z], axis=-1)


def _any_finite(v: np.ndarray) -> np.ndarray:
    """``(W, S, ...)`` -> ``(W, S)``: some value of the step is finite."""
    return np.isfinite(v).reshape(v.shape[0], v.shape[1], -1).any(axis=2)


def _features(
    name: str, data: np.ndarray, mask: np.ndarray, src: _Source, spec: ModalitySpec, heading: np.ndarray,
    pupil_base: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Map ``(W, S, *sample_shape)`` windowed samples (NaN where missing) onto ``(W, S, *spec.shape)``
    features (NaN not yet zeroed) and the ``(W, S)`` present mask; ``heading`` ``(W,)`` rad: each window's
    mean head yaw (0 without head pose), for the heading frame of head and hands; ``pupil_base`` ``(W, 2)`` mm:
    the left and right pupil diameter medians of each window's session (NaN where unknown)."""
    if name == "gaze":
        v, _ = _pick(data, _index(src.channels, GAZE_CHANNELS))
        origin = [i for i, c in enumerate(GAZE_CHANNELS) if "_origin_" in c]
        v[..., origin] = (v[..., origin] - _window_mean(v[..., origin])) * _DECIMETRES
        pupil = [i for i, c in enumerate(GAZE_CHANNELS) if c.endswith("pupil_diameter")]
        v[..., pupil] = (v[..., pupil] - pupil_base[:, None, :]) / _PUPIL_MM
        v[..., [i for i, c in enumerate(GAZE_CHANNELS) if "_dir_" in c and c[-1] in "xy"]] *= _GAZE_DIR_XY
        signal = [i for i, c in enumerate(GAZE_CHANNELS) if c not in _GAZE_FLAGS]
        return v, mask & _any_finite(v[..., signal])
    if name == "head":
        v, _ = _pick(data, _index(src.channels, HEAD_CHANNELS))
        v[..., [0, 2]] = _yaw_rotate(v[..., [0, 2]] - _window_mean(v[..., [0, 2]]), heading)
        # q' = a * q (Hamilton product) with a = (0, ay, 0, aw), the rotation by -heading about +Y
        ay, aw = (f(heading / 2)[:, None].astype(np.float32) for f in (lambda h: -np.sin(h), np.cos))
        qx, qy, qz, qw = (v[..., i].copy() for i in range(3, 7))
        v[..., 3:7] = np.stack([aw * qx + ay * qz, aw * qy + ay * qw, aw * qz - ay * qx, aw * qw - ay * qy], -1)
        flip = np.where(v[..., 6:7] < 0, -1.0, 1.0).astype(np.float32)
        v[..., 3:7] *= flip
        v[..., 3:6] *= _QUAT_XYZ
        v[..., 1] = (v[..., 1] - _HEAD_Y0) * _HEAD_Y
        return v, mask & _any_finite(v)
    if name == "imu":
        v, _ = _pick(data, _index(src.channels, IMU_CHANNELS))
        v[..., :3] /= _STANDARD_G
        return v, mask & _any_finite(v)
    if name == "hand":
        pos, _ = _pick(data, _index(src.channels, ("px", "py", "pz")))  # (W, S, 2, 26, 3)
        ref = _window_mean(pos[:, :, :, _HAND_WRIST, :])  # (W, 1, 2, 3)
        palm = _window_mean(pos[:, :, :, _HAND_PALM, :])
        ref = np.where(np.isfinite(ref), ref, palm)
        rel = (pos - ref[:, :, :, None, :]) * _DECIMETRES
        rel[..., [0, 2]] = _yaw_rotate(rel[..., [0, 2]], heading)
        tracked = np.isfinite(pos).any(axis=(3, 4))  # (W, S, 2)
        (ci,) = _index(src.channels, ("confidence",))
        if ci is None:
            conf = tracked.astype(np.float32)
        else:
            c = data[..., ci]  # (W, S, 2, 26)
            ok = np.isfinite(c)
            with np.errstate(invalid="ignore", divide="ignore"):
                conf = np.where(ok, c, 0.0).sum(axis=3) / ok.sum(axis=3)
        w, s = pos.shape[:2]
        feats = np.concatenate([rel.reshape(w, s, 2 * _HAND_JOINTS * 3), conf.astype(np.float32)], axis=2)
        return feats.astype(np.float32, copy=False), mask & tracked.any(axis=2)
    if name == "eeg":
        v, _ = _pick(data, _index(src.channels, EEG_SITES, fold=True))
        v *= _EEG_SCALE
        return v, mask & _any_finite(v)
    if name == "audio":
        v = data[..., 0]
        return v, mask & np.isfinite(v)
    if name == "depth":
        frames = data if src.dtype.startswith("float") else data * np.float32(1e-3)  # uint16 mm -> m
        return _area_resize(frames, spec.shape), mask
    raise ValidationError(f"modality {name!r} has no feature mapping")


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float32 area weights: row j averages source pixels ``[j s, (j + 1) s)``, ``s = n_in /
    n_out``, each by the share of the interval it covers (cv2's ``INTER_AREA`` when shrinking)."""
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    x = np.arange(n_in)[None, :]
    cover = np.clip(np.minimum(x + 1, lo + scale) - np.maximum(x, lo), 0.0, None)
    weights: np.ndarray = (cover / cover.sum(axis=1, keepdims=True)).astype(np.float32)
    return weights


def _area_resize(frames: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """``(W, S, H, Wd)`` frames (NaN = invalid pixel) -> ``(W, S, *size)``: the area average of the valid
    pixels under each output pixel, NaN where there is none.

    Area averaging is separable: ``Ry @ frame @ Rx.T`` with :func:`_area_weights`, applied to value x validity
    and to validity. When shrinking this is ``cv2.resize(..., interpolation=cv2.INTER_AREA)`` (the tests check
    it against OpenCV), as one batched matrix product instead of a cv2 call per frame, and without OpenCV.
    """
    w, s, h, wd = frames.shape
    out_h, out_w = int(size[0]), int(size[1])
    flat = frames.reshape(w * s, h, wd)
    if (h, wd) == (out_h, out_w):
        return flat.reshape(w, s, out_h, out_w).astype(np.float32, copy=True)
    valid = np.isfinite(flat)
    ry, rx = _area_weights(h, out_h), _area_weights(wd, out_w).T
    num = ry @ (np.where(valid, flat, 0.0).astype(np.float32) @ rx)  # (N, out_h, out_w)
    den = ry @ (valid.astype(np.float32) @ rx)
    with np.errstate(invalid="ignore", divide="ignore"):
        resized = np.where(den > 1e-6, num / den, np.nan)
    return resized.reshape(w, s, out_h, out_w).astype(np.float32, copy=False)


class _SessionLabels:
    """The label events of one session: task events as arrays, and the last Likert self-report."""

    def __init__(self, ev: pl.DataFrame) -> None:
        task = ev.filter(pl.col("label").str.starts_with("task/"))
        self.tasks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for (label,), part in task.group_by(["label"], maintain_order=True):
            t = part["time_ns"].to_numpy()
            self.tasks[str(label)[len("task/"):]] = (t, t + part["duration_ns"].to_numpy())
        likert = ev.filter(pl.col("label") == "qoe/likert")["value"].to_list()
        self.likert = _number(likert[-1]) if likert else math.nan

    def best_overlap(self, task: str, starts: np.ndarray, length_ns: int) -> np.ndarray:
        """``(W,)`` ns of the largest overlap of a ``task/<task>`` event with each window."""
        if task not in self.tasks:
            return np.zeros(starts.shape[0], dtype=np.int64)
        t, end = self.tasks[task]
        stops = starts + length_ns
        amount = np.minimum(end[None, :], stops[:, None]) - np.maximum(t[None, :], starts[:, None])
        return np.maximum(amount, 0).max(axis=1)


def _number(value: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _convert(
    block: list[Window], specs: dict[str, ModalitySpec], sources: dict[str, _Source], tasks: list[TaskSpec],
    events: dict[str, _SessionLabels], length_ns: int, min_overlap: float, pupil_base: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Features, masks and labels of a block of windows of one session group (``pupil_base``: session ->
    (2,) left/right median pupil diameter, mm)."""
    n = len(block)
    base = np.stack([pupil_base.get(w.session, np.full(2, np.nan)) for w in block]).astype(np.float32)
    x: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    head = np.stack([w.data["head"] for w in block]) if "head" in sources else None
    heading = np.zeros(n) if head is None else _window_heading(
        _pick(head, _index(sources["head"].channels, HEAD_CHANNELS))[0])
    for name, src in sources.items():
        data = head if name == "head" and head is not None else np.stack([w.data[name] for w in block])
        mask = np.stack([w.mask[name] for w in block])
        with np.errstate(invalid="ignore"):
            feats, ok = _features(name, data, mask, src, specs[name], heading, base)
        feats = np.where(np.isfinite(feats) & ok.reshape(*ok.shape, *([1] * (feats.ndim - 2))), feats, 0.0)
        if name in _HALF:
            x[name] = np.clip(feats, -_F16_MAX, _F16_MAX).astype(np.float16)
        else:
            x[name] = feats.astype(np.float32, copy=False)
        present[name] = ok
    session = np.array([w.session for w in block])
    start = np.array([w.start_ns for w in block], dtype=np.int64)
    y: dict[str, np.ndarray] = {}
    for task in tasks:
        if task.regression:
            y[task.name] = np.array([events[w.session].likert for w in block], dtype=np.float32)
            continue
        index = {c: i for i, c in enumerate(task.classes)}
        labels = np.array([index.get(w.labels.get(task.name, ""), -1) for w in block], dtype=np.int64)
        for s in set(session.tolist()):
            rows = np.flatnonzero(session == s)
            amount = events[s].best_overlap(task.name, start[rows], length_ns)
            labels[rows[amount < min_overlap * length_ns]] = -1
        y[task.name] = labels
    return {"n": n, "x": x, "present": present, "y": y, "session": session, "start_ns": start}


def _assemble(
    user: str, chunks: list[dict[str, Any]], specs: dict[str, ModalitySpec], tasks: list[TaskSpec],
    splits: dict[str, str],
) -> ClientData:
    """One ClientData from the converted blocks, windows ordered by (session, start)."""
    session = np.concatenate([c["session"] for c in chunks]) if chunks else np.array([], dtype=str)
    start = np.concatenate([c["start_ns"] for c in chunks]) if chunks else np.array([], dtype=np.int64)
    n = session.shape[0]
    order = np.lexsort((start, session))
    dest = np.empty(n, dtype=np.int64)
    dest[order] = np.arange(n)
    x = {
        m: np.zeros((n, spec.steps, *spec.shape), dtype=np.float16 if m in _HALF else np.float32)
        for m, spec in specs.items()
    }
    present = {m: np.zeros((n, spec.steps), dtype=bool) for m, spec in specs.items()}
    y = {t.name: (np.full(n, np.nan, dtype=np.float32) if t.regression else np.full(n, -1, dtype=np.int64))
         for t in tasks}
    at = 0
    for c in chunks:
        where = dest[at : at + c["n"]]
        for m, a in c["x"].items():
            x[m][where] = a
            present[m][where] = c["present"][m]
        for t, a in c["y"].items():
            y[t][where] = a
        at += c["n"]
    session = session[order]
    split = np.array([splits[s] for s in session.tolist()]) if n else np.array([], dtype=str)
    return ClientData(user, x, present, y, session, start[order], split)


# --- splits ---------------------------------------------------------------------------------------------


def _truth_splits(st: Store, user: str) -> dict[str, str]:
    """Session -> split from the ground truth of a synthetic store ({} when there is none for ``user``)."""
    try:
        df = read_table(st, "sessions", users=[user])
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        log.warning("ground truth of user %s in %s is unreadable (%s): using the default split rule", user,
                    st.url, exc)
        return {}
    if df is None or df.height == 0 or "split" not in df.columns:
        return {}
    return dict(zip(df["session"].to_list(), df["split"].to_list(), strict=True))


def _is_test_user(user: str) -> bool:
    digest = hashlib.sha256(f"xrdata.fed_training/split/{user}".encode()).digest()
    return int.from_bytes(digest, "big") < _TEST_USER_FRAC * 2**256


def _anchor(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _splits(user: str, rows: pl.DataFrame, truth: dict[str, str]) -> dict[str, str]:
    """Session -> split for every session of the user's catalog rows (see the module docstring)."""
    sessions = sorted(set(rows["session"].to_list()))
    if truth:
        held_out = all(v == "test_users" for v in truth.values())
        return {s: truth.get(s, "test_users" if held_out else "future") for s in sessions}
    if _is_test_user(user):
        return dict.fromkeys(sessions, "test_users")
    anchors: dict[str, float | None] = {}
    for s, a in zip(rows["session"].to_list(), rows["utc_anchor"].to_list(), strict=True):
        if anchors.get(s) is None:
            anchors[s] = _anchor(a)
    order = sorted(sessions, key=lambda s: (anchors[s] is None, anchors[s] or 0.0, s))
    n_future = math.floor(_FUTURE_FRAC * len(order) + 0.5)
    future = set(order[len(order) - n_future :]) if n_future else set()
    return {s: "future" if s in future else "train" for s in sessions}


# --- cache ----------------------------------------------------------------------------------------------


def cache_dir(store: Store | str | os.PathLike[str], cfg: DataConfig, tasks: Sequence[TaskSpec],
              modalities: Sequence[ModalitySpec] | None = None) -> Path | None:
    """The folder of the cache files of this configuration, or None for a non-local store."""
    st = _as_store(store)
    return _cache_root(st, cfg, _modality_specs(cfg, modalities), _check_tasks(tasks))


def _cache_root(st: Store, cfg: DataConfig, specs: dict[str, ModalitySpec], tasks: list[TaskSpec]) -> Path | None:
    b = Backend(st.url)
    if not b.local:
        return None
    key = {
        "version": CACHE_VERSION, "window_s": cfg.window_s, "hop_s": cfg.hop_s,
        "min_label_overlap": cfg.min_label_overlap,
        # the token size (patch) is the model's business: it does not change the windows
        "modalities": [[s.name, s.kind, s.steps, list(s.shape)] for s in specs.values()],
        "tasks": [[t.name, list(t.classes)] for t in tasks],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(b.root) / _CACHE_DIR / digest


def _cache_file(
    st: Store, cfg: DataConfig, specs: dict[str, ModalitySpec], tasks: list[TaskSpec], user: str
) -> Path | None:
    root = _cache_root(st, cfg, specs, tasks)
    return None if root is None else root / f"{user}.npz"


def _fingerprint(rows: pl.DataFrame, truth: dict[str, str]) -> str:
    """A hash of what the user's windows are made of: its catalog rows and its ground-truth splits."""
    payload = {"rows": rows.sort("session", "stream").rows(), "truth": sorted(truth.items())}
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def _write_cache(path: Path, data: ClientData, fingerprint: str, specs: dict[str, ModalitySpec]) -> None:
    """Write ``data`` atomically (a temporary file renamed over the target); modalities the client never has
    are not stored (they are zeros)."""
    arrays: dict[str, np.ndarray] = {"session": data.session, "start_ns": data.start_ns, "split": data.split}
    stored = []
    for m in specs:
        if data.present[m].any():
            arrays[f"x.{m}"] = data.x[m]
            arrays[f"present.{m}"] = data.present[m]
            stored.append(m)
    for t, a in data.y.items():
        arrays[f"y.{t}"] = a
    meta = {"version": CACHE_VERSION, "user": data.user, "fingerprint": fingerprint, "stored": stored,
            "tasks": list(data.y)}
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the fed cache file %s (%s); continuing without it", path, exc)
        tmp.unlink(missing_ok=True)


def _read_cache(
    path: Path, fingerprint: str, user: str, specs: dict[str, ModalitySpec], tasks: list[TaskSpec]
) -> ClientData | None:
    """The cached client, or None when the file is missing, stale or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("fingerprint") != fingerprint or meta.get("user") != user or \
                    meta.get("version") != CACHE_VERSION or meta.get("tasks") != [t.name for t in tasks]:
                return None
            session, start, split = z["session"], z["start_ns"], z["split"]
            n = session.shape[0]
            x: dict[str, np.ndarray] = {}
            present: dict[str, np.ndarray] = {}
            for m, spec in specs.items():
                if m in meta["stored"]:
                    x[m], present[m] = z[f"x.{m}"], z[f"present.{m}"]
                else:
                    x[m] = np.zeros((n, spec.steps, *spec.shape), dtype=np.float16 if m in _HALF else np.float32)
                    present[m] = np.zeros((n, spec.steps), dtype=bool)
                if x[m].shape != (n, spec.steps, *spec.shape) or present[m].shape != (n, spec.steps):
                    return None
            y = {t.name: z[f"y.{t.name}"] for t in tasks}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable fed cache file %s (%s)", path, exc)
        return None
    return ClientData(user, x, present, y, session, start, split)

