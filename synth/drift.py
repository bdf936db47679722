"""Drift over weeks: sensor calibration, behaviour (learning curves), environment and concept drift.

Mechanisms (REALISM T4, T5, T7):

- **Calibration drift** (:func:`plan_user_drift`): the eye tracker is calibrated at the first session and
  then at a session start with probability ``config.recalibration_prob`` (always when the offset has grown
  past 2.5 deg: the user notices and recalibrates). A calibration leaves a residual offset of about the
  device's ``accuracy_deg``; afterwards the headset slips: the offset grows along the residual's direction by
  the device's ``offset_drift_deg_per_h`` x hours worn plus a small jump at every re-donning, so its
  magnitude grows between recalibrations and resets at each one. ``plan.gaze_offset_deg`` is the offset at
  the session start; the eye generator keeps growing it within the session at the same rate.
- **IMU bias** random walk: the gyro/accel biases start at a turn-on bias (``gyro_turn_on_bias``,
  ``accel_turn_on_bias``) and walk with ``gyro_bias_walk`` / ``accel_bias_walk`` x sqrt(operating time), so
  the spread of the change between two sessions grows with sqrt(dt) (T7); the head generator continues the
  walk within the session.
- **Behaviour drift / learning curves**: skill = 1 - exp(-learning_rate x weeks of practice)
  (``traits.learning_rate``). Skill makes users faster (``motor_speed`` up to +25 %, shorter search
  fixations), lowers the load of routine tasks, and lowers recognizer failures, aborts and hesitations
  (:mod:`xrdata.synth.qoe`).
- **Environment drift**: each user's lighting follows a per-user trend over weeks (seasons, moving desks) with
  session-to-session variation and occasional dim sessions; room noise drifts by a per-user dB/week slope.
  Lighting drives pupil size (eye), tracking loss of cameras (dropout) and depth noise; noise drives the
  audio SNR.
- **Concept drift** for a share ``config.drift_fraction`` of users on the sigmoid schedule of river's
  ConceptDriftStream: a segment follows the new concept with probability 1 / (1 + exp(-4 (t - p) / w)),
  ``t`` in weeks since the study start. Kinds (the mapping from label to its imprint changes):
  ``selection_layout`` (the UI is mirrored: the item labelled "left" now sits on the right, so gaze and
  reaches for a label flip side), ``load_mapping`` (a task labelled "low"/"medium" load now loads the user
  like the next level: pupil, saccades, theta/alpha shift for the same label) and ``arousal_mapping`` (the
  user's arousal for each affect label rises: voice, pupil, EMG shift for the same label).

Schedules are returned as plain rows and saved by :mod:`xrdata.synth.generate` in
``ground_truth/drift`` and ``ground_truth/users``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from xrdata.synth.types import DevicePreset, UserTraits

if TYPE_CHECKING:
    from xrdata.synth.population import UserProfile
    from xrdata.synth.presets import SynthConfig

__all__ = [
    "CONCEPT_KINDS",
    "ConceptDrift",
    "SessionDrift",
    "drifted_traits",
    "plan_user_drift",
    "sample_concept",
    "sigmoid_share",
    "skill_at",
]

#: Concept-drift kinds and the task whose label-to-imprint mapping they change.
CONCEPT_KINDS: dict[str, str] = {
    "selection_layout": "gaze_selection",
    "load_mapping": "cognitive_load",
    "arousal_mapping": "affect",
}
#: Latent value per label before / after the concept change.
LOAD_BY_LABEL = ({"low": 0.15, "medium": 0.5, "high": 0.85}, {"low": 0.5, "medium": 0.8, "high": 0.9})
AROUSAL_BY_LABEL = ({"low": 0.15, "neutral": 0.45, "high": 0.85}, {"low": 0.45, "neutral": 0.75, "high": 0.9})
#: Recalibrate anyway when the gaze offset exceeds this (deg).
RECALIBRATE_ABOVE_DEG = 2.5


def sigmoid_share(t: np.ndarray | float, p: float, w: float) -> np.ndarray:
    """Share of new-concept samples at time ``t``: 1 / (1 + exp(-4 (t - p) / w)) (river ConceptDriftStream)."""
    x = -4.0 * (np.asarray(t, dtype=np.float64) - p) / max(w, 1e-9)
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(x, -50, 50))))


def skill_at(weeks_practice: float, learning_rate: float) -> float:
    """Learning curve: 1 - exp(-learning_rate x weeks of practice), 0 for a novice, -> 1 with practice."""
    return float(1.0 - math.exp(-max(0.0, learning_rate) * max(0.0, weeks_practice)))


def drifted_traits(traits: UserTraits, skill: float) -> UserTraits:
    """The user's traits at a given skill: faster movements, slightly shorter search fixations."""
    return replace(traits, motor_speed=float(traits.motor_speed * (1.0 + 0.25 * skill)),
                   gaze_style=float(traits.gaze_style * (1.0 - 0.08 * skill)))


@dataclass(frozen=True)
class ConceptDrift:
    """A user's concept drift: ``kind`` ("" = none), sigmoid centre ``p_week`` and width ``w_weeks``."""

    kind: str = ""
    p_week: float = math.inf
    w_weeks: float = 1.0

    def share(self, t_week: float | np.ndarray) -> np.ndarray:
        if not self.kind:
            return np.zeros(np.shape(t_week))
        return sigmoid_share(t_week, self.p_week, self.w_weeks)


def sample_concept(rng: np.random.Generator, tasks: tuple[str, ...], config: SynthConfig) -> ConceptDrift:
    """Whether a user drifts (probability ``config.drift_fraction``), how, and when (p in the middle 60 % of
    the study, w in ``config.drift_width_weeks``). A user without any affected task does not drift."""
    u, k, pu, wu = rng.uniform(size=4)
    kinds = [kind for kind, task in CONCEPT_KINDS.items() if task in tasks]
    if u >= config.drift_fraction or not kinds:
        return ConceptDrift()
    lo, hi = config.drift_width_weeks
    return ConceptDrift(kind=kinds[int(k * len(kinds))], p_week=float(config.weeks * (0.35 + 0.4 * pu)),
                        w_weeks=float(lo + (hi - lo) * wu))


@dataclass(frozen=True)
class SessionDrift:
    """Drift state at the start of one session (one row of ``ground_truth/drift``)."""

    study_week: float  # weeks since the study start
    practice_weeks: float  # weeks since the user's first session
    skill: float
    hours_worn: float  # cumulative hours worn before this session
    recalibrated: bool
    gaze_offset_deg: tuple[float, float]
    gyro_bias: tuple[float, float, float]
    accel_bias: tuple[float, float, float]
    lighting_lux: float
    room_noise_dba: float
    concept_share: float


def _param(device: DevicePreset, stream: str, name: str, default: float) -> float:
    spec = device.sensors.get(stream)
    return float(spec.params.get(name, default)) if spec is not None else default


def plan_user_drift(
    rng: np.random.Generator, profile: UserProfile, study_weeks: np.ndarray, durations_s: np.ndarray,
    concept: ConceptDrift, config: SynthConfig,
) -> list[SessionDrift]:
    """The drift state at the start of each of a user's sessions (times in study weeks, sorted)."""
    dev = profile.device
    n = len(study_weeks)
    acc = _param(dev, "gaze", "accuracy_deg", 1.0)
    grow_h = _param(dev, "gaze", "offset_drift_deg_per_h", 0.5)
    g_on = _param(dev, "imu", "gyro_turn_on_bias", 2e-3)
    a_on = _param(dev, "imu", "accel_turn_on_bias", 0.03)
    g_walk = _param(dev, "imu", "gyro_bias_walk", 2e-5)
    a_walk = _param(dev, "imu", "accel_bias_walk", 2e-4)
    # every draw happens whatever the config, so switching a knob changes only what it controls
    recal_u = rng.uniform(size=n)
    residual = rng.normal(0.0, acc * 0.35, (n, 2))
    don = rng.exponential(0.15, n)  # re-donning slip (deg)
    gyro0, accel0 = rng.normal(0.0, g_on, 3), rng.normal(0.0, a_on, 3)
    g_steps, a_steps = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    lux_slope, noise_slope = rng.normal(0.0, 0.08), rng.normal(0.0, 0.8)
    lux_u, lux_dim, noise_u = rng.normal(0.0, 0.35, n), rng.uniform(size=n), rng.normal(0.0, 3.0, n)

    out: list[SessionDrift] = []
    first = float(study_weeks[0]) if n else 0.0
    hours = 0.0
    offset = np.zeros(2)
    direction = np.array([1.0, 0.0])
    gyro, accel = gyro0.copy(), accel0.copy()
    for i in range(n):
        t = float(study_weeks[i])
        recal = i == 0 or recal_u[i] < config.recalibration_prob
        if not recal:
            grown = offset + direction * don[i]
            if float(np.linalg.norm(grown)) > RECALIBRATE_ABOVE_DEG:
                recal = True
            else:
                offset = grown
        if recal:
            offset = residual[i].copy()
            norm = float(np.linalg.norm(offset))
            direction = offset / norm if norm > 1e-9 else np.array([1.0, 0.0])
        if i > 0:  # bias random walk over the operating time of the previous session
            dt = float(durations_s[i - 1])
            gyro = gyro + g_walk * math.sqrt(dt) * g_steps[i]
            accel = accel + a_walk * math.sqrt(dt) * a_steps[i]
        practice = t - first
        skill = skill_at(practice, profile.traits.learning_rate) if config.learning else 0.0
        env = config.environment_drift
        lux = profile.lux_median * math.exp((lux_slope * t if env else 0.0) + lux_u[i])
        if lux_dim[i] < 0.1:
            lux *= 0.25  # a dim session (evening, lights off)
        noise = profile.noise_median_dba + (noise_slope * t if env else 0.0) + noise_u[i]
        out.append(SessionDrift(
            study_week=t, practice_weeks=practice, skill=skill, hours_worn=hours, recalibrated=bool(recal),
            gaze_offset_deg=(float(offset[0]), float(offset[1])),
            gyro_bias=(float(gyro[0]), float(gyro[1]), float(gyro[2])),
            accel_bias=(float(accel[0]), float(accel[1]), float(accel[2])),
            lighting_lux=float(np.clip(lux, 5.0, 30000.0)), room_noise_dba=float(np.clip(noise, 30.0, 65.0)),
            concept_share=float(concept.share(t)),
        ))
        # the offset keeps growing while the session runs (the eye generator grows it at the same rate)
        dur_h = float(durations_s[i]) / 3600.0
        offset = offset + direction * grow_h * dur_h
        hours += dur_h
    return out
