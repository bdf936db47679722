"""Generate a synthetic cohort into an xrdata store, with its ground truth beside the data.

``generate(config, store, workers=J)`` plans every user (:mod:`xrdata.synth.timeline`), runs the signal
generators per session in the coupling order eye -> head -> hand -> audio -> eeg -> depth with one shared
:class:`~xrdata.synth.types.Context`, applies bursty dropout (:mod:`xrdata.synth.dropout`), adds the task
label events (``task/<task>``, value = class), the generators' events (blinks, saccades, fixations,
gestures, talk spurts...) and the QoE events (``qoe/repeat``, ``qoe/abort``, ``qoe/hesitation``,
``qoe/likert``), and commits each session with ``Store.write``.

Latent behaviour exists whether or not a device senses it: the eye, head and voice are always simulated
(their latent events drive the head turns, EEG blink artifacts, hand poses and QoE), but only the streams a
device has (and ``config.modalities`` keeps) are recorded, and only the events of recorded generators are
kept. A generator module that is not importable yet is skipped with a logged warning.

**Determinism.** Every random stream is seeded by ``SeedSequence((seed, crc32(user), crc32(session),
index))``: index 0-5 = the generators in order, 16 + k = the bursty loss of stream k, 7 = QoE outcomes;
planning uses per-user purposes (:data:`xrdata.synth.population.PURPOSE`); a generator's own per-user latents
are keyed by ``UserTraits.key`` (user id and seed). So the same seed gives identical bytes whatever the number
of workers, adding a user changes nobody else's data, and another seed gives other people.

**Parallelism.** Users are generated in worker processes (``concurrent.futures.ProcessPoolExecutor`` with the
``spawn`` start method; each worker opens the store itself, and the store's per-user lock makes concurrent
commits safe). ``engine="dask"`` runs one task per user on Dask (the active ``distributed`` client, else
Dask's local process scheduler: BLAS thread limits, which keep the EEG bytes independent of the core count,
do not hold from worker threads) and needs ``dask`` installed.

**Ground truth** (Parquet, one partition per user, readable with polars:
``read_ground_truth(store, "segments")`` or ``pl.scan_parquet(f"{store}/ground_truth/segments/",
hive_partitioning=True, hive_schema={"user": pl.String})``), under ``<store>/ground_truth/``:

- ``users``: cohort, device (+ add-ons), split, tasks, attendance, dropout propensity and trend, environment,
  concept-drift kind/p/w, label probabilities (JSON) and every latent trait.
- ``sessions``: calendar (study week, UTC anchor), split, duration, device, lighting, room noise, latency,
  difficulty, skill, session-level dropout (EEG worn, mic muted), tasks, recorded streams.
- ``segments``: the latent state per segment (task, label, load, arousal, activity, eyes closed, talking,
  reading, concept flag, number of gaze targets) with its time span.
- ``drift``: the drift schedule per session (calibration offset and recalibrations, IMU biases, skill and the
  drifted traits, lighting, room noise, concept share).
- ``dropout``: the injected bursty-loss runs (stream, cause ``burst``/``head_motion``, first sample, count,
  start/stop ns).
- ``availability``: one row per (session, stream name): status (``present``, ``absent_device``,
  ``disabled``, ``mic_muted``, ``eeg_not_worn``, ``generator_missing``), Gilbert-Elliott parameters, injected
  and realised missing fractions.
- ``qoe``: per session latency, difficulty, skill, failure/abort/hesitation probabilities, counts and rates of
  inputs, repeats, aborts, hesitations, glances per selection trial, the measured saccade rate during
  selection, and the Likert self-report (null when not asked).
- ``generator_truth``: each generator's truth dict as JSON (configured noise levels, offsets, spurts...).

``ground_truth/config.json`` records the configuration and seed.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from xrdata.errors import SessionExistsError, StoreError, ValidationError, require
from xrdata.model import EVENTS_SCHEMA, Recording, Stream
from xrdata.synth.buffers import release
from xrdata.synth.devices import STREAM_MODALITY
from xrdata.synth.population import session_seed
from xrdata.synth.presets import STREAMS, SynthConfig
from xrdata.synth.timeline import LABELS
from xrdata.synth.types import Context, ModalityOutput, SensorSpec, SessionPlan

if TYPE_CHECKING:
    from xrdata.store import Store
    from xrdata.synth.timeline import UserPlan

__all__ = ["ORDER", "TABLES", "GenerateResult", "generate", "generate_session", "read_ground_truth"]

log = logging.getLogger("xrdata.synth")

#: The generators in coupling order: (module, function, stream key of the sensor it reads).
ORDER: tuple[tuple[str, str, str], ...] = (
    ("eye", "generate_gaze", "gaze"),
    ("head", "generate_head", "head"),
    ("hand", "generate_hand", "hand"),
    ("audio", "generate_audio", "audio"),
    ("eeg", "generate_eeg", "eeg"),
    ("depth", "generate_depth", "depth"),
)
QOE_INDEX = 7
DROPOUT_INDEX = 16
#: Sensors used to simulate latent behaviour a device does not record (cheap rates; streams discarded).
LATENT: dict[str, SensorSpec] = {
    "gaze": SensorSpec("gaze", 30.0, {"precision_deg": 0.1}),
    "head": SensorSpec("motion", 30.0),
    "hand": SensorSpec("hand", 30.0),
    "audio": SensorSpec("audio", 16000.0),
}

_GROUND_TRUTH = "ground_truth"
S, F, INT, B = pl.String(), pl.Float64(), pl.Int64(), pl.Boolean()
LS = pl.List(pl.String())
_TRAITS = ("handedness", "resting_pupil_mm", "gaze_style", "saccade_eta", "saccade_c", "blink_rate_per_min",
           "alpha_peak_hz", "aperiodic_exponent", "eeg_amplitude_uv", "voice_f0_hz", "motor_speed", "tremor_hz",
           "tremor_amp_g", "learning_rate", "line_hz", "age_years")
#: Ground-truth tables and their columns (the ``user`` column comes from the hive partition).
TABLES: dict[str, dict[str, pl.DataType]] = {
    "users": {
        "cohort": S, "device": S, "device_base": S, "addons": LS, "split": S, "tasks": LS, "n_sessions": INT,
        "sessions_per_week": F, "enrol_week": F, "churn_week": F, "attendance": F, "session_minutes": F,
        "loss_propensity": F, "loss_trend_per_week": F, "lux_median": F, "noise_median_dba": F,
        "concept_kind": S, "concept_p_week": F, "concept_w_weeks": F, "label_probs": S,
        **{k: (S if k == "handedness" else F) for k in _TRAITS},
    },
    "sessions": {
        "session": S, "session_index": INT, "split": S, "study_week": F, "practice_weeks": F, "utc_anchor": S,
        "duration_s": F, "device": S, "lighting_lux": F, "room_noise_dba": F, "latency_ms": F, "difficulty": F,
        "skill": F, "eeg_worn": B, "mic_muted": B, "tasks": LS, "n_segments": INT, "streams": LS, "seed": INT,
    },
    "segments": {
        "session": S, "index": INT, "start_ns": INT, "stop_ns": INT, "task": S, "label": S, "load": F, "arousal": F,
        "activity": S, "eyes_closed": B, "talking": B, "reading": B, "concept": INT, "n_targets": INT,
    },
    "drift": {
        "session": S, "study_week": F, "practice_weeks": F, "skill": F, "hours_worn": F, "recalibrated": B,
        "gaze_offset_yaw_deg": F, "gaze_offset_pitch_deg": F, "gaze_offset_deg": F,
        "gyro_bias_x": F, "gyro_bias_y": F, "gyro_bias_z": F, "accel_bias_x": F, "accel_bias_y": F,
        "accel_bias_z": F, "lighting_lux": F, "room_noise_dba": F, "concept_kind": S, "concept_share": F,
        "motor_speed": F, "gaze_style": F,
    },
    "dropout": {
        "session": S, "stream": S, "cause": S, "first_sample": INT, "n_samples": INT, "start_ns": INT, "stop_ns": INT,
    },
    "availability": {
        "session": S, "stream": S, "modality": S, "status": S, "n_samples": INT, "loss_rate_target": F,
        "burst_s": F, "ge_p": F, "ge_r": F, "ge_step_samples": INT, "injected_frac": F, "event_frac": F,
        "missing_frac": F,
    },
    "qoe": {
        "session": S, "latency_ms": F, "difficulty": F, "skill": F, "p_fail": F, "p_abort": F, "p_hesitate": F,
        "trials": INT, "inputs": INT, "repeats": INT, "aborts": INT, "hesitations": INT, "glances": INT,
        "repeat_rate": F, "abort_rate": F, "hesitation_rate": F, "glances_per_trial": F, "saccade_rate_selection": F,
        "likert": INT,
    },
    "generator_truth": {"session": S, "generator": S, "truth_json": S},
}


# ------------------------------------------------------------------------------------------------------------
# generators


_MISSING_LOGGED: set[str] = set()


def _generator(module: str, func: str) -> Callable[..., ModalityOutput] | None:
    """The generator function, or None (logged once per process) when its module does not exist yet."""
    name = f"xrdata.synth.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        if name not in _MISSING_LOGGED:
            _MISSING_LOGGED.add(name)
            log.warning("%s is not available: skipping the %s generator (no %s stream)", name, module, module)
        return None
    fn: Callable[..., ModalityOutput] = getattr(mod, func)
    return fn


def _rng(seed: int, user: str, session: str, index: int) -> np.random.Generator:
    return np.random.default_rng(session_seed(seed, user, session, index))


@dataclass
class SessionResult:
    """One generated session: the recording to write and its ground-truth rows (table -> rows)."""

    recording: Recording
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    missing_generators: list[str] = field(default_factory=list)
    context: Context | None = None  # the latent events shared by the generators (blinks, speech, overlap...)


def _needed(plan: SessionPlan) -> dict[str, bool]:
    rec = plan.device.sensors
    tasks = {s.task for s in plan.segments}
    return {
        "eye": True,  # gaze shifts drive the head, blinks the EEG: always simulated
        "head": True,  # the head pose places the hands and depth camera
        "hand": "hand" in rec or "depth" in rec or "gesture" in tasks,
        "audio": True,  # talk spurts drive the EEG's EMG and the QoE of commands (cheap when not recorded)
        "eeg": "eeg" in rec,
        "depth": "depth" in rec,
    }


def generate_session(plan: SessionPlan, seed: int, *, likert_prob: float = 0.5) -> SessionResult:
    """Generate one planned session: streams, events, dropout, and its ground-truth rows."""
    from xrdata.synth import audio, dropout, qoe

    uid, sid = plan.user.user_id, plan.session_id
    sensors = plan.device.sensors
    ctx = Context()
    needed = _needed(plan)
    streams: dict[str, Stream] = {}
    events: list[tuple[int, int, str, str]] = []
    truth_rows: list[dict[str, Any]] = []
    outputs: dict[str, ModalityOutput] = {}
    missing: list[str] = []
    rngs = {module: _rng(seed, uid, sid, index) for index, (module, _, _) in enumerate(ORDER)}
    # the voice is planned first (with the audio's random stream, which goes on to the audio generator): the
    # audio renders it, the head's IMU can feel it, the EEG sees its EMG
    audio.plan_speech(plan, rngs["audio"], ctx)
    for module, func, key in ORDER:
        if not needed[module]:
            continue
        fn = _generator(module, func)
        if fn is None:
            missing.append(module)
            continue
        recorded = key in sensors
        spec = sensors[key] if recorded else LATENT.get(key, SensorSpec(STREAM_MODALITY[key], 30.0))
        gen_plan = plan if recorded or module != "audio" else replace(plan, mic_muted=True)
        out = fn(gen_plan, spec, rngs[module], ctx)
        outputs[module] = out
        kept = [s for s in out.streams if s.name in sensors]
        for s in kept:
            streams[s.name] = s
        if kept:
            events += out.events
            truth_rows.append({"session": sid, "generator": module, "truth_json": _json(out.truth)})

    # bursty loss per recorded stream
    losses = dropout.session_plan_losses(plan)
    runs: list[dict[str, Any]] = []
    avail: list[dict[str, Any]] = []
    from xrdata.validation import sample_validity

    for k, name in enumerate(STREAMS):
        row: dict[str, Any] = {"session": sid, "stream": name, "modality": STREAM_MODALITY[name]}
        s = streams.get(name)
        if s is None:
            gen = "head" if name == "imu" else next(m for m, _, key in ORDER if key == name)
            row["status"] = (
                "absent_device" if name not in plan.meta.get("device_sensors", sensors)
                else "disabled" if name not in sensors
                else "generator_missing" if gen in missing
                else "mic_muted" if name == "audio" and plan.mic_muted
                else "eeg_not_worn" if name == "eeg" and not plan.eeg_worn
                else "not_generated")
            avail.append(row)
            continue
        loss = losses.get(name)
        if loss is not None and loss.loss_rate > 0:
            _, rr, summary = dropout.inject(_rng(seed, uid, sid, DROPOUT_INDEX + k), s, loss, ctx, key=name)
            runs += [{"session": sid, **r} for r in rr]
            row.update(summary)
        valid = sample_validity(s.modality, s.channels, s.data)
        row.update(status="present", n_samples=s.n_samples,
                   missing_frac=float(1.0 - valid.mean()) if s.n_samples else None)
        avail.append(row)

    # labels, QoE
    label_events = [(seg.start_ns, seg.stop_ns - seg.start_ns, f"task/{seg.task}", seg.label) for seg in plan.segments]
    qrng = _rng(seed, uid, sid, QOE_INDEX)
    qmeta = dict(plan.meta.get("qoe", {}))
    qoe_events = [tuple(e) for e in plan.meta.get("qoe_events", [])]
    inputs = _inputs(plan, outputs)
    rep_events, rep_counts = qoe.input_events(qrng, inputs, float(qmeta.get("p_fail", 0.0)))
    qoe_events += rep_events
    n_inputs = int(qmeta.get("inputs", 0)) + rep_counts["inputs"]
    n_rep = int(qmeta.get("repeats", 0)) + rep_counts["repeats"]
    trials = int(qmeta.get("trials", 0))
    u_likert = qrng.uniform()
    q_row: dict[str, Any] = {
        "session": sid, "latency_ms": plan.latency_ms, "difficulty": plan.difficulty,
        "skill": float(plan.meta.get("skill", 0.0)),
        **{k: float(qmeta.get(k, 0.0)) for k in ("p_fail", "p_abort", "p_hesitate")},
        "trials": trials, "inputs": n_inputs, "repeats": n_rep, "aborts": int(qmeta.get("aborts", 0)),
        "hesitations": int(qmeta.get("hesitations", 0)), "glances": int(qmeta.get("glances", 0)),
        "repeat_rate": n_rep / n_inputs if n_inputs else None,
        "abort_rate": int(qmeta.get("aborts", 0)) / trials if trials else None,
        "hesitation_rate": int(qmeta.get("hesitations", 0)) / trials if trials else None,
        "glances_per_trial": int(qmeta.get("glances", 0)) / trials if trials else None,
        "saccade_rate_selection": _saccade_rate(plan, outputs, "gaze" in streams),
        "likert": None,
    }
    if u_likert < likert_prob:
        score = qoe.likert(qrng, plan.latency_ms, plan.difficulty, q_row["repeat_rate"] or 0.0,
                           q_row["abort_rate"] or 0.0)
        q_row["likert"] = score
        qoe_events.append((plan.duration_ns, 0, "qoe/likert", str(score)))

    all_events = label_events + events + qoe_events
    ev = pl.DataFrame(
        {"time_ns": [int(e[0]) for e in all_events], "duration_ns": [max(0, int(e[1])) for e in all_events],
         "label": [str(e[2]) for e in all_events], "value": [str(e[3]) for e in all_events]},
        schema=EVENTS_SCHEMA,
    )
    tasks = sorted({seg.task for seg in plan.segments})
    meta = plan.meta
    rec_meta = {
        "device": {"name": plan.device.name, "kind": plan.device.kind, "addons": list(plan.device.addons)},
        "utc_anchor": meta.get("utc_anchor"), "tasks": tasks, "split": meta.get("split", "train"),
        "role": meta.get("cohort", ""), "study_week": float(meta.get("study_week", plan.week)),
        "synthetic": True, "generator": "xrdata.synth",
    }
    recording = Recording(uid, sid, streams, ev, {k: v for k, v in rec_meta.items() if v is not None})
    rows = {
        "availability": avail, "dropout": runs, "qoe": [q_row], "generator_truth": truth_rows,
        "segments": [{
            "session": sid, "index": i, "start_ns": s.start_ns, "stop_ns": s.stop_ns, "task": s.task,
            "label": s.label, "load": s.load, "arousal": s.arousal, "activity": s.activity,
            "eyes_closed": s.eyes_closed, "talking": s.talking, "reading": s.reading, "concept": s.concept,
            "n_targets": len(s.targets)} for i, s in enumerate(plan.segments)],
        "sessions": [{
            "session": sid, "session_index": int(meta.get("session_index", 0)), "split": meta.get("split", "train"),
            "study_week": float(meta.get("study_week", plan.week)), "practice_weeks": plan.week,
            "utc_anchor": meta.get("utc_anchor"), "duration_s": plan.duration_s, "device": plan.device.name,
            "lighting_lux": plan.lighting_lux, "room_noise_dba": plan.room_noise_dba,
            "latency_ms": plan.latency_ms, "difficulty": plan.difficulty, "skill": float(meta.get("skill", 0.0)),
            "eeg_worn": bool(plan.eeg_worn and "eeg" in sensors), "mic_muted": plan.mic_muted, "tasks": tasks,
            "n_segments": len(plan.segments), "streams": sorted(streams), "seed": int(seed)}],
    }
    return SessionResult(recording, rows, missing, ctx)


def _inputs(plan: SessionPlan, outputs: dict[str, ModalityOutput]) -> list[tuple[int, int, str, str]]:
    """Gestures and spoken commands the user made in their task segments, in time order."""
    out: list[tuple[int, int, str, str]] = []
    segs = [s for s in plan.segments if s.task in ("gesture", "speech_command")]
    if not segs:
        return out
    for module, label, task in (("hand", "gesture", "gesture"), ("audio", "utterance", "speech_command")):
        o = outputs.get(module)
        if o is None:
            continue
        for t, d, lab, val in o.events:
            if lab != label:
                continue
            if any(s.task == task and s.start_ns <= t < s.stop_ns and s.label == val for s in segs):
                out.append((int(t), int(d), task, str(val)))
    out.sort()
    return out


def _saccade_rate(plan: SessionPlan, outputs: dict[str, ModalityOutput], recorded: bool) -> float | None:
    """Saccades per second during gaze_selection segments (gaze jitter / re-fixations), from the eye events."""
    sel = [(s.start_ns, s.stop_ns) for s in plan.segments if s.task == "gaze_selection"]
    eye = outputs.get("eye")
    if not sel or eye is None or not recorded:
        return None
    total = sum(b - a for a, b in sel) * 1e-9
    n = sum(1 for t, _, lab, _ in eye.events if lab == "saccade" and any(a <= t < b for a, b in sel))
    return n / total if total > 0 else None


def _json(truth: dict[str, Any]) -> str:
    def conv(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return v.tolist() if v.size <= 2000 else {"array_shape": list(v.shape), "dtype": str(v.dtype)}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v] if len(v) <= 2000 else {"length": len(v)}
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v if isinstance(v, str | int | float | bool | type(None)) else str(v)

    return json.dumps(conv(truth), sort_keys=True, allow_nan=False, default=str)


# ------------------------------------------------------------------------------------------------------------
# users


def _user_rows(up: UserPlan) -> dict[str, list[dict[str, Any]]]:
    p, c, tr = up.profile, up.concept, up.profile.traits
    users = [{
        "cohort": p.cohort, "device": p.device.name, "device_base": p.device.name.split("+")[0],
        "addons": list(p.device.addons), "split": p.split, "tasks": list(p.tasks), "n_sessions": len(up.sessions),
        "sessions_per_week": p.sessions_per_week, "enrol_week": p.enrol_week,
        "churn_week": p.churn_week if math.isfinite(p.churn_week) else None, "attendance": p.attendance,
        "session_minutes": p.session_minutes, "loss_propensity": p.loss_propensity,
        "loss_trend_per_week": p.loss_trend_per_week, "lux_median": p.lux_median,
        "noise_median_dba": p.noise_median_dba, "concept_kind": c.kind,
        "concept_p_week": c.p_week if c.kind else None, "concept_w_weeks": c.w_weeks if c.kind else None,
        "label_probs": json.dumps({k: list(v) for k, v in p.label_probs.items()}),
        **{k: getattr(tr, k) for k in _TRAITS},
    }]
    drift = []
    for plan, d in zip(up.sessions, up.drift, strict=True):
        drift.append({
            "session": plan.session_id, "study_week": d.study_week, "practice_weeks": d.practice_weeks,
            "skill": d.skill, "hours_worn": d.hours_worn, "recalibrated": d.recalibrated,
            "gaze_offset_yaw_deg": d.gaze_offset_deg[0], "gaze_offset_pitch_deg": d.gaze_offset_deg[1],
            "gaze_offset_deg": float(math.hypot(*d.gaze_offset_deg)),
            **{f"gyro_bias_{a}": v for a, v in zip("xyz", d.gyro_bias, strict=True)},
            **{f"accel_bias_{a}": v for a, v in zip("xyz", d.accel_bias, strict=True)},
            "lighting_lux": d.lighting_lux, "room_noise_dba": d.room_noise_dba, "concept_kind": c.kind,
            "concept_share": d.concept_share, "motor_speed": plan.user.motor_speed,
            "gaze_style": plan.user.gaze_style,
        })
    return {"users": users, "drift": drift}


def _frame(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = TABLES[table]
    cols = {name: [r.get(name) for r in rows] for name in schema}
    return pl.DataFrame(cols, schema=schema)


def _write_truth(url: str, uid: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    from xrdata._fs import Backend

    b = Backend(url)
    for table in TABLES:
        buf = io.BytesIO()
        _frame(table, tables.get(table, [])).write_parquet(buf, compression="zstd", statistics=False)
        b.write_atomic(f"{_GROUND_TRUTH}/{table}/user={uid}/part-0.parquet", buf.getvalue())


def _generate_user(config: SynthConfig, uid: str, url: str, if_exists: str) -> dict[str, Any]:
    """Plan, generate and write one user (runs in a worker process); returns a summary."""
    from xrdata.store import open_store
    from xrdata.synth.timeline import plan_user

    t0 = time.perf_counter()
    store = open_store(url, "a")
    up = plan_user(config, config.seed, uid)
    existing = set(store.sessions(uid)) if uid in store.users() else set()
    if existing and if_exists == "skip":
        return {"user": uid, "sessions": 0, "skipped": True, "streams": 0, "seconds": 0.0, "missing": [],
                "wall_s": time.perf_counter() - t0}
    if existing and if_exists == "overwrite":
        for s in sorted(existing):
            store.delete(uid, s)
    elif existing:
        raise SessionExistsError(
            f"user {uid} already has sessions in {url}; pass if_exists='overwrite' (or 'skip') to generate()")
    tables = _user_rows(up)
    missing: set[str] = set()
    n_streams = 0
    for plan in up.sessions:
        res = generate_session(plan, config.seed, likert_prob=config.likert_prob)
        store.write(res.recording)
        n_streams += len(res.recording.streams)
        missing.update(res.missing_generators)
        for table, rows in res.rows.items():
            tables.setdefault(table, []).extend(rows)
        # freed before the next session is generated: one session in memory at a time, and its pages are reused
        # (first-touching a 10-minute session's 1.8 GB of depth frames costs ~2 CPU s without transparent huge pages)
        del res
    _write_truth(url, uid, tables)
    return {"user": uid, "sessions": len(up.sessions), "skipped": False, "streams": n_streams,
            "seconds": float(sum(p.duration_s for p in up.sessions)), "missing": sorted(missing),
            "wall_s": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------------------
# public


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote."""

    store: str  # store URL
    ground_truth: str  # URL of the ground-truth folder
    users: list[str]
    sessions: int
    streams: int
    seconds: float  # total session time generated (s)
    wall_s: float  # wall-clock time of the whole run (s)
    missing_generators: list[str]  # generator modules that were not available (their streams are absent)
    tables: tuple[str, ...] = tuple(TABLES)


def _url(store: Store | str | os.PathLike[str]) -> str:
    url = getattr(store, "url", None)
    return str(url) if url is not None else os.fspath(store)  # type: ignore[arg-type]


def generate(
    config: SynthConfig, store: Store | str | os.PathLike[str], *, workers: int | None = None,
    progress: bool = False, engine: str = "processes", if_exists: str = "error",
    users: Sequence[str] | None = None,
) -> GenerateResult:
    """Generate the cohort of ``config`` into ``store`` (a :class:`~xrdata.Store` or a store URL/path).

    Args:
        workers: worker processes (default: CPU count, at most the number of users); 1 runs in-process.
        progress: show a progress bar over sessions (tqdm).
        engine: ``"processes"`` (default) or ``"dask"`` (one task per user on the active ``distributed``
            client, else on Dask's local process scheduler; needs ``dask``).
        if_exists: what to do with a user that already has sessions: ``"error"``, ``"skip"`` or
            ``"overwrite"``.
        users: generate only these user ids (default: ``u0001`` .. ``config.users``).

    Returns a :class:`GenerateResult`; the ground truth is under ``<store>/ground_truth/``
    (:func:`read_ground_truth`).
    """
    from xrdata.store import open_store
    from xrdata.synth.timeline import user_ids

    if not isinstance(config, SynthConfig):
        raise ValidationError(f"generate() takes a SynthConfig, got {type(config).__name__}")
    if if_exists not in ("error", "skip", "overwrite"):
        raise ValidationError(f"if_exists must be 'error', 'skip' or 'overwrite', got {if_exists!r}")
    if getattr(store, "mode", "a") == "r":
        raise StoreError(f"store {_url(store)} is open read-only (mode='r'); open it with mode='a' to generate")
    t0 = time.perf_counter()
    url = _url(store)
    open_store(url, "a")  # create it once here, before workers race to
    todo = list(users) if users is not None else user_ids(config)
    from xrdata._fs import Backend

    Backend(url).write_atomic(f"{_GROUND_TRUTH}/config.json", json.dumps(
        {"config": config.to_dict(), "seed": config.seed, "tables": {t: list(c) for t, c in TABLES.items()},
         "labels": {t: list(c) for t, c in LABELS.items()}},
        indent=1).encode())  # keys in the config's order: the planner draws from mappings (cohorts...) in order
    summaries = _run(config, todo, url, workers, progress, engine, if_exists)
    summaries.sort(key=lambda s: s["user"])
    missing = sorted({m for s in summaries for m in s["missing"]})
    return GenerateResult(
        store=url, ground_truth=f"{url.rstrip('/')}/{_GROUND_TRUTH}", users=[s["user"] for s in summaries],
        sessions=sum(s["sessions"] for s in summaries), streams=sum(s["streams"] for s in summaries),
        seconds=sum(s["seconds"] for s in summaries), wall_s=time.perf_counter() - t0, missing_generators=missing,
    )


def _dask_client() -> Any:
    """The active ``distributed`` client, or None (also when ``distributed`` is not installed)."""
    try:
        from distributed import get_client
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


def _run(config: SynthConfig, todo: list[str], url: str, workers: int | None, progress: bool, engine: str,
         if_exists: str) -> list[dict[str, Any]]:
    from xrdata.progress import progress_bar

    bar = progress_bar(total=len(todo), desc="synth", unit="user", enabled=progress)
    out: list[dict[str, Any]] = []
    try:
        if engine == "dask":
            dask = require("dask", "synth")
            tasks = [dask.delayed(_generate_user)(config, uid, url, if_exists) for uid in todo]  # type: ignore[attr-defined]
            # local processes (module docstring; the generators also hold the GIL most of the time), but an
            # in-memory store exists only in this process
            local = "sync" if url.startswith("memory://") else "processes"
            out = list(dask.compute(*tasks, scheduler=None if _dask_client() else local))  # type: ignore[attr-defined]
            bar.update(len(todo))
            return out
        if engine != "processes":
            raise ValidationError(f"engine must be 'processes' or 'dask', got {engine!r}")
        n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        if url.startswith("memory://"):
            n = 1  # an in-memory store exists only in this process: worker processes would not see it
        if n == 1:
            for uid in todo:
                out.append(_generate_user(config, uid, url, if_exists))
                bar.update(1)
                bar.set_postfix(sessions=sum(s["sessions"] for s in out))
            return out
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")  # polars and zarr hold threads: never fork them
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            futures = [pool.submit(_generate_user, config, uid, url, if_exists) for uid in todo]
            try:
                for fut in as_completed(futures):
                    out.append(fut.result())
                    bar.update(1)
                    bar.set_postfix(sessions=sum(s["sessions"] for s in out))
            except BaseException:
                for f in futures:  # do not start users that are still queued
                    f.cancel()
                raise
        return out
    finally:
        bar.close()
        release()  # the sessions' buffers generated in this process (workers=1, Dask's local schedulers)


def read_ground_truth(store: Store | str | os.PathLike[str], table: str,
                      users: Sequence[str] | None = None) -> pl.DataFrame:
    """One ground-truth table of a synthetic store as a polars frame (``user`` first), see :data:`TABLES`."""
    from xrdata.ground_truth import read_table

    if table not in TABLES:
        raise ValidationError(f"unknown ground-truth table {table!r}; known: {', '.join(TABLES)}")
    schema = {"user": pl.String(), **TABLES[table]}
    df = read_table(store, table, users)
    if df is None or df.height == 0:
        return pl.DataFrame(schema=schema)
    return df.select(list(schema)).cast(schema)  # type: ignore[arg-type]
