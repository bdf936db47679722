"""The longitudinal schedule: sessions over weeks per user, task segments with labels and latent state.

For each user (:func:`plan_user`):

1. **Attendance** (REALISM F1): from the user's enrolment week until the study ends or the user churns, each
   week holds Poisson(sessions_per_week) planned sessions (the rate is log-normal across users, so samples per
   user are right-skewed), each attended with the user's attendance probability, on the cohort's days and
   hours. Session length is log-normal around the user's median. ``balanced=True`` gives every user the same
   schedule.
2. **Drift state** per session from :mod:`xrdata.synth.drift` (skill, calibration offset, IMU bias,
   lighting, room noise, concept share), **conditions** from :mod:`xrdata.synth.qoe` (latency, difficulty),
   **session-level dropout** (mic muted, EEG cap not worn) and the bursty-loss parameters per stream from
   :mod:`xrdata.synth.dropout`.
3. **Segments**: the session is filled with task segments drawn from the user's task mix (users lack some
   tasks: F4), each 15-45 s by default; the class of each segment is drawn from the user's class
   probabilities for that task (Dirichlet label skew: F2; :data:`LABELS` per task). The latent state follows
   the label (cognitive load -> ``load``, affect -> ``arousal``, activity -> ``activity``, rest -> eyes
   closed...), the difficulty, skill, frustration, and the user's concept (concept drift: T4). Gaze-selection
   segments get their target sequence (visual search, hesitations, aborts, repeats) from
   :func:`xrdata.synth.qoe.selection_trials`; gesture segments keep ``targets`` empty so that the eye follows
   the hand's own gesture schedule (:func:`xrdata.synth.hand.hand_gaze_targets`).
4. **Splits**: held-out users (``test_users``, drawn per user so adding users changes nobody's split) and,
   for the other users, the last ``future_week_frac`` of the study weeks (``future``); the rest is ``train``.

:func:`plan_cohort` plans every user of a config. Everything depends only on (seed, user id, session id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from xrdata.synth.devices import scaled_sensors
from xrdata.synth.drift import (
    AROUSAL_BY_LABEL,
    CONCEPT_KINDS,
    LOAD_BY_LABEL,
    ConceptDrift,
    SessionDrift,
    drifted_traits,
    plan_user_drift,
    sample_concept,
)
from xrdata.synth.dropout import plan_session_loss, session_level
from xrdata.synth.population import COHORTS, UserProfile, sample_profile, session_seed, user_id, user_rng
from xrdata.synth.population import PURPOSE as _PURPOSE
from xrdata.synth.qoe import rates, selection_trials, session_conditions
from xrdata.synth.types import Segment, SessionPlan

if TYPE_CHECKING:
    from xrdata.synth.presets import SynthConfig

__all__ = ["LABELS", "SELECTION_DIRECTIONS", "UserPlan", "plan_cohort", "plan_user", "user_ids"]

#: Label set per task (the classes a task head predicts). Gestures match xrdata.synth.hand.GESTURES,
#: commands xrdata.synth.audio.COMMANDS and selection directions xrdata.synth.eye.LABEL_DIRECTIONS.
LABELS: dict[str, tuple[str, ...]] = {
    "gesture": ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "pinch", "grab", "point", "wave",
                "thumbs_up", "clap"),
    "gaze_selection": ("center", "left", "right", "up", "down", "up_left", "up_right", "down_left", "down_right"),
    "activity": ("sitting", "standing", "walking"),
    "cognitive_load": ("low", "medium", "high"),
    "speech_command": ("select", "back", "open", "close", "next", "stop", "yes", "no", "menu", "undo", "home",
                       "cancel"),
    "affect": ("low", "neutral", "high"),
    "rest": ("eyes_open", "eyes_closed"),
}
#: Where the item of each gaze_selection class sits (yaw deg, positive = left; pitch deg, positive = up).
SELECTION_DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (20.0, 0.0), "right": (-20.0, 0.0), "up": (0.0, 12.0), "down": (0.0, -12.0), "center": (0.0, 0.0),
    "up_left": (14.0, 9.0), "up_right": (-14.0, 9.0), "down_left": (14.0, -9.0), "down_right": (-14.0, -9.0),
}
#: Load of a segment of each task at medium difficulty, for a novice (cognitive_load uses its label).
BASE_LOAD = {"gesture": 0.3, "gaze_selection": 0.35, "activity": 0.2, "speech_command": 0.3, "affect": 0.3,
             "rest": 0.1}
#: Cohorts whose users also talk outside speech tasks (share of segments).
TALK_PROB = {"classroom": 0.2, "factory": 0.15, "everyday": 0.3}
WEEKEND_COHORTS = ("gaming", "everyday")


@dataclass(frozen=True)
class UserPlan:
    """A user's profile, concept drift and planned sessions (with their drift rows)."""

    profile: UserProfile
    concept: ConceptDrift
    sessions: list[SessionPlan]
    drift: list[SessionDrift]


def user_ids(config: SynthConfig) -> list[str]:
    """``u0001`` ... for ``config.users`` users."""
    return [user_id(i + 1) for i in range(config.users)]


def _schedule(rng: np.random.Generator, profile: UserProfile, config: SynthConfig) -> list[tuple[float, float]]:
    """Sorted (study week, minutes) of the user's sessions."""
    weeks = float(config.weeks)
    days = 7 if profile.cohort in WEEKEND_COHORTS else 5
    out: list[tuple[float, float]] = []
    carry = 0.0
    for w in range(math.ceil(weeks)):
        if config.balanced:
            carry += config.sessions_per_week
            k = int(carry + 1e-9)
            carry -= k
            keep = np.ones(k, dtype=bool)
        else:
            k = int(rng.poisson(profile.sessions_per_week))
            keep = rng.uniform(size=k) < profile.attendance
        day = np.sort(rng.choice(days, size=min(k, days), replace=False)) if k else np.zeros(0, dtype=int)
        day = np.concatenate([day, rng.integers(0, days, max(0, k - days))]).astype(float)
        hour = rng.uniform(profile.hours[0], profile.hours[1], k)
        minutes = np.exp(config.session_minutes_sigma * rng.standard_normal(k)) * profile.session_minutes
        if config.balanced:
            minutes[:] = config.session_minutes
        for j in range(k):
            t = w + (day[j] + hour[j] / 24.0) / 7.0
            if keep[j] and profile.enrol_week <= t < min(weeks, profile.churn_week):
                out.append((t, float(max(minutes[j], 1 / 3))))
    if not out:  # everybody enrolled attends at least once
        t = min(profile.enrol_week + (profile.hours[0] / 24.0) / 7.0, weeks * 0.999)
        out.append((t, float(profile.session_minutes)))
    out.sort()
    return out


def _choice(rng: np.random.Generator, weights: dict[str, float], exclude: str | None) -> str:
    keys = [k for k in weights if k != exclude] or list(weights)
    p = np.array([weights[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _segments(
    rng: np.random.Generator, profile: UserProfile, plan_info: dict[str, Any], duration_s: float,
    config: SynthConfig, concept: ConceptDrift, share: float, qrng: np.random.Generator,
) -> tuple[tuple[Segment, ...], list[tuple[int, int, str, str]], dict[str, int]]:
    skill, difficulty, latency = plan_info["skill"], plan_info["difficulty"], plan_info["latency_ms"]
    p_fail = rates(latency, difficulty, skill)["p_fail"]
    posture = _choice(rng, dict(profile.posture), None)
    lo, hi = config.segment_seconds
    seg_lo, seg_hi = min(lo, duration_s), min(hi, duration_s)
    concept_task = CONCEPT_KINDS.get(concept.kind, "")
    base_arousal = 0.45 if profile.cohort == "gaming" else 0.3
    talk_p = TALK_PROB.get(profile.cohort, 0.08)
    segments: list[Segment] = []
    events: list[tuple[int, int, str, str]] = []
    counts = {"trials": 0, "inputs": 0, "repeats": 0, "aborts": 0, "hesitations": 0, "glances": 0}
    t, prev = 0.0, None
    while t < duration_s - 1e-6:
        task = _choice(rng, dict(profile.task_weights), prev) if profile.task_weights else "rest"
        length = float(rng.uniform(seg_lo, seg_hi))
        if duration_s - (t + length) < 0.5 * seg_lo:
            length = duration_s - t
        classes = LABELS[task]
        label = classes[int(rng.choice(len(classes), p=np.asarray(profile.label_probs[task])))]
        new = int(task == concept_task and rng.uniform() < share)
        noise = rng.normal(0.0, 1.0, 3)
        talk_u = rng.uniform()
        a, b = round(t * 1e9), round(min(t + length, duration_s) * 1e9)
        if task == "cognitive_load":
            load = LOAD_BY_LABEL[new][label] + 0.04 * noise[0] - 0.05 * skill
        else:
            load = BASE_LOAD[task] + 0.25 * (difficulty - 0.5) - 0.1 * skill + 0.04 * noise[0]
            load = min(load, 0.65)
        if task == "affect":
            arousal = AROUSAL_BY_LABEL[new][label] + 0.04 * noise[1]
        else:
            arousal = min(base_arousal + 0.3 * p_fail + 0.05 * noise[1], 0.75)
        activity = label if task == "activity" else "sitting" if task in ("rest", "cognitive_load") else posture
        targets: tuple[tuple[int, float, float, float], ...] = ()
        if task == "gaze_selection":
            yaw, pitch = SELECTION_DIRECTIONS[label]
            if new:  # the mirrored layout: the item sits on the other side
                yaw = -yaw
            targets, ev, c = selection_trials(qrng, a, b, (yaw, pitch), latency_ms=latency, difficulty=difficulty,
                                              skill=skill)
            events += ev
            for k, v in c.items():
                counts[k] += v
        segments.append(Segment(
            start_ns=a, stop_ns=b, task=task, label=label,
            load=float(np.clip(load, 0.02, 0.98)), arousal=float(np.clip(arousal, 0.02, 0.98)),
            activity=activity, eyes_closed=task == "rest" and label == "eyes_closed",
            talking=task in ("speech_command", "affect")
            or (task not in ("rest", "cognitive_load") and talk_u < talk_p),
            reading=task == "cognitive_load", targets=targets, concept=new,
        ))
        t += length
        prev = task
    return tuple(segments), events, counts


def _anchor(start_date: str, study_week: float) -> str:
    start = datetime.fromisoformat(start_date)
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    return (start + timedelta(seconds=round(study_week * 7 * 86400))).isoformat()


def plan_user(config: SynthConfig, seed: int | None, uid: str) -> UserPlan:
    """Profile, concept drift and every session of user ``uid`` (depends only on seed and uid)."""
    seed = config.seed if seed is None else int(seed)
    profile = sample_profile(seed, uid, config)
    drng = user_rng(seed, uid, "drift")
    concept = sample_concept(drng, profile.tasks, config)
    schedule = _schedule(user_rng(seed, uid, "schedule"), profile, config)
    weeks = np.array([s[0] for s in schedule])
    durations = np.array([s[1] * 60.0 for s in schedule])
    drift = plan_user_drift(drng, profile, weeks, durations, concept, config)
    device = scaled_sensors(profile.device, audio_rate_hz=config.audio_rate_hz, depth_fps=config.depth_fps,
                            depth_max_width=config.depth_max_width, streams=tuple(config.modalities))
    cohort = COHORTS[profile.cohort]
    future_from = config.weeks * (1.0 - config.future_week_frac)
    sessions: list[SessionPlan] = []
    for k, ((t, _), dur, d) in enumerate(zip(schedule, durations, drift, strict=True)):
        sid = f"s{k + 1:03d}"
        srng = np.random.default_rng(session_seed(seed, uid, sid, _PURPOSE["session"]))
        qrng = np.random.default_rng(session_seed(seed, uid, sid, _PURPOSE["session_qoe"]))
        xrng = np.random.default_rng(session_seed(seed, uid, sid, _PURPOSE["session_dropout"]))
        latency, difficulty = session_conditions(qrng, profile.device.latency_ms, cohort.difficulty, d.skill,
                                                 config.degraded_latency_prob)
        info: dict[str, Any] = {"skill": d.skill, "difficulty": difficulty, "latency_ms": latency}
        segments, qoe_events, counts = _segments(srng, profile, info, float(dur), config, concept,
                                                 d.concept_share, qrng)
        eeg_worn, mic_muted = session_level(xrng, "eeg" in device.sensors, config)
        losses = plan_session_loss(xrng, profile, tuple(device.sensors), t, d.lighting_lux, config)
        split = ("test_users" if profile.split == "test_users" else "future" if t >= future_from else "train")
        meta: dict[str, Any] = {
            "cohort": profile.cohort, "split": split, "session_index": k + 1, "study_week": t,
            "utc_anchor": _anchor(config.start_date, t), "skill": d.skill, "recalibrated": d.recalibrated,
            "hours_worn": d.hours_worn, "concept_kind": concept.kind, "concept_share": d.concept_share,
            "device_full": profile.device.name, "device_sensors": sorted(profile.device.sensors),
            "dropout": {s: v.as_dict() for s, v in losses.items()},
            "qoe": {**rates(latency, difficulty, d.skill), **counts},
            "qoe_events": qoe_events, "seed": seed,
        }
        sessions.append(SessionPlan(
            user=drifted_traits(profile.traits, d.skill), device=device, session_id=sid, week=d.practice_weeks,
            duration_s=float(dur), segments=segments, lighting_lux=d.lighting_lux,
            room_noise_dba=d.room_noise_dba, latency_ms=latency, difficulty=difficulty,
            gaze_offset_deg=d.gaze_offset_deg, imu_gyro_bias=d.gyro_bias, imu_accel_bias=d.accel_bias,
            eeg_worn=eeg_worn, mic_muted=mic_muted and "audio" in device.sensors, meta=meta,
        ))
    return UserPlan(profile=profile, concept=concept, sessions=sessions, drift=drift)


def plan_cohort(config: SynthConfig, seed: int | None = None) -> list[SessionPlan]:
    """Every session of every user of ``config`` (users in id order, sessions in time order)."""
    return [p for uid in user_ids(config) for p in plan_user(config, seed, uid).sessions]
