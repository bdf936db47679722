"""The synthesizer's configuration (:class:`SynthConfig`, every knob with its default) and named presets.

Presets:

- ``quickstart``: 6 users x 2 weeks of short sessions (generation + write well under a minute on 2 cores).
- ``benchmark``: the standard federated benchmark for the trainer: 40 users of all cohorts x 6 weeks, all six
  tasks, held-out users and future weeks; ``benchmark_bursty`` is the same cohort with ~30 % bursty
  (Gilbert-Elliott) loss on every stream.
- ``neuro``: EEG-heavy: lab and clinic cohorts, an EEG cap on most users, cognitive load, affect and rests.
- ``industrial``: the factory role on HoloLens 2 / Magic Leap 2 (and camera+audio glasses): gestures,
  activity, voice commands in noisy rooms.

``config_from_preset("benchmark", users=10, seed=3)`` returns a copy with overrides; unknown names raise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xrdata.errors import ValidationError

__all__ = ["PRESETS", "STREAMS", "SynthConfig", "config_from_preset"]

#: Every stream name a device can have.
STREAMS: tuple[str, ...] = ("gaze", "head", "imu", "hand", "audio", "eeg", "depth")


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of a synthetic cohort. Times are in weeks / minutes / seconds as named."""

    preset: str = "custom"  # name of the preset this config came from (recorded in the ground truth)
    # --- population and schedule
    users: int = 6  # number of users, ids u0001..uNNNN
    weeks: float = 2.0  # study length in weeks
    seed: int = 0  # master seed: same seed -> identical bytes, whatever the number of workers
    cohorts: Mapping[str, float] = field(default_factory=lambda: {  # cohort -> share of users
        "clinic": 0.25, "classroom": 0.25, "factory": 0.25, "gaming": 0.25})
    devices: Mapping[str, float] | None = None  # device preset -> probability; None = each cohort's own mix
    eeg_cap_prob: float | None = None  # share of users with an EEG cap; None = each cohort's own rate
    tasks: tuple[str, ...] | None = None  # restrict (or extend) the tasks; None = each cohort's task mix
    all_tasks: bool = False  # True: every user does every task of the cohort (no missing tasks, F4 off)
    sessions_per_week: float = 2.0  # mean sessions per user and week
    sessions_sigma: float = 0.7  # log-sd of sessions per week across users (skewed sizes, F1)
    enrol_spread: float = 0.25  # users enrol uniformly over the first enrol_spread x weeks
    churn_per_week: float = 0.05  # hazard of a user leaving the study, per week
    balanced: bool = False  # True: equal sessions for every user, no churn (F1 off)
    session_minutes: float = 4.0  # median session length (minutes)
    session_minutes_sigma: float = 0.25  # log-sd of session lengths (per user and per session)
    segment_seconds: tuple[float, float] = (15.0, 45.0)  # range of task segment lengths (s)
    dirichlet_alpha: float = 0.5  # label skew: per-user class probabilities ~ Dirichlet(alpha) (F2)
    # --- held-out splits
    test_user_frac: float = 0.15  # share of users held out entirely ("test_users")
    future_week_frac: float = 0.2  # the last share of weeks of training users is "future"
    # --- streams and cost
    modalities: tuple[str, ...] = STREAMS  # streams to record (a device records those it has)
    audio_rate_hz: float | None = 16000.0  # record the voice channel at this rate; None = device native
    depth_fps: float | None = 5.0  # cap the depth frame rate; None = device native
    depth_max_width: int | None = 256  # cap the depth width (height keeps the aspect); None = native
    # --- dropout (xrdata.synth.dropout)
    dropout_scale: float = 1.0  # multiplies every stream's bursty-loss rate; 0 = no bursty loss
    bursty_loss: float | None = None  # set every stream's mean bursty-loss rate (e.g. 0.3); None = per stream
    dropout_user_sigma: float = 0.6  # log-sd of the per-user loss propensity (T2)
    dropout_session_sigma: float = 0.4  # log-sd of the per-session loss factor (T2)
    dropout_trend_sd: float = 0.15  # sd of the per-user log change of loss per week (T2)
    mic_muted_prob: float = 0.08  # share of sessions with the microphone muted (session-level dropout)
    eeg_off_prob: float = 0.1  # share of EEG-cap sessions with the cap not worn (session-level dropout)
    # --- drift (xrdata.synth.drift)
    drift_fraction: float = 0.25  # share of users with concept drift (sigmoid schedule, T4)
    drift_width_weeks: tuple[float, float] = (0.3, 1.5)  # range of the sigmoid width w (weeks)
    recalibration_prob: float = 0.3  # probability of an eye-tracker recalibration at a session start
    learning: bool = True  # skill learning curves over weeks (faster, fewer errors)
    environment_drift: bool = True  # lighting and room noise drift over weeks
    # --- experience (xrdata.synth.qoe)
    degraded_latency_prob: float = 0.1  # share of sessions with a degraded (network/offload) latency
    likert_prob: float = 0.5  # share of sessions ending with a 1-5 self-report
    # --- calendar
    start_date: str = "2025-03-03"  # Monday of the first study week (sessions get UTC anchors from it)

    def __post_init__(self) -> None:
        if not isinstance(self.users, int) or self.users < 1:
            raise ValidationError(f"SynthConfig.users must be a positive integer, got {self.users!r}")
        if not self.weeks > 0:
            raise ValidationError(f"SynthConfig.weeks must be positive, got {self.weeks!r}")
        if not (self.dirichlet_alpha > 0):
            raise ValidationError(f"SynthConfig.dirichlet_alpha must be > 0, got {self.dirichlet_alpha!r}")
        unknown = [m for m in self.modalities if m not in STREAMS]
        if unknown:
            raise ValidationError(f"SynthConfig.modalities: unknown streams {unknown}; use some of {STREAMS}")
        if self.bursty_loss is not None and not 0 <= self.bursty_loss < 1:
            raise ValidationError(f"SynthConfig.bursty_loss must be in [0, 1), got {self.bursty_loss!r}")
        for name in ("test_user_frac", "future_week_frac", "drift_fraction", "recalibration_prob",
                     "mic_muted_prob", "eeg_off_prob", "degraded_latency_prob", "likert_prob"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValidationError(f"SynthConfig.{name} must be in [0, 1], got {v!r}")
        from xrdata.synth.population import COHORTS  # light: numpy + the presets of devices

        bad = [c for c in self.cohorts if c not in COHORTS]
        if bad or not self.cohorts or not math.isfinite(sum(self.cohorts.values())):
            raise ValidationError(f"SynthConfig.cohorts: unknown {bad}; known: {', '.join(sorted(COHORTS))}")
        if self.devices:
            from xrdata.synth.devices import DEVICES

            bad = [d for d in self.devices if d not in DEVICES]
            if bad:
                raise ValidationError(f"SynthConfig.devices: unknown {bad}; known: {', '.join(sorted(DEVICES))}")
        if self.tasks is not None:
            from xrdata.synth.timeline import LABELS

            bad = [t for t in self.tasks if t not in LABELS]
            if bad:
                raise ValidationError(f"SynthConfig.tasks: unknown {bad}; known: {', '.join(LABELS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (recorded in the ground truth)."""
        out = dataclasses.asdict(self)
        return {k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
                for k, v in out.items()}


ALL_COHORTS = {"clinic": 0.2, "classroom": 0.2, "factory": 0.2, "gaming": 0.2, "lab": 0.1, "everyday": 0.1}

#: Named configurations.
PRESETS: dict[str, SynthConfig] = {
    "quickstart": SynthConfig(
        preset="quickstart", users=6, weeks=2.0, sessions_per_week=1.5, session_minutes=0.75,
        segment_seconds=(8.0, 16.0), depth_fps=5.0, depth_max_width=160, test_user_frac=0.2,
    ),
    "benchmark": SynthConfig(
        preset="benchmark", users=40, weeks=6.0, cohorts=ALL_COHORTS, sessions_per_week=2.0, session_minutes=3.0,
        segment_seconds=(15.0, 40.0), depth_fps=2.0, depth_max_width=128, drift_fraction=0.25,
        test_user_frac=0.15, future_week_frac=0.2,
    ),
    "benchmark_bursty": SynthConfig(
        preset="benchmark_bursty", users=40, weeks=6.0, cohorts=ALL_COHORTS, sessions_per_week=2.0,
        session_minutes=3.0, segment_seconds=(15.0, 40.0), depth_fps=2.0, depth_max_width=128, bursty_loss=0.3,
        test_user_frac=0.15, future_week_frac=0.2,
    ),
    "neuro": SynthConfig(
        preset="neuro", users=24, weeks=4.0, cohorts={"lab": 0.7, "clinic": 0.3}, eeg_cap_prob=0.9,
        tasks=("cognitive_load", "affect", "rest", "gaze_selection"), sessions_per_week=1.5, session_minutes=5.0,
        segment_seconds=(20.0, 60.0), modalities=("gaze", "head", "imu", "audio", "eeg"), eeg_off_prob=0.05,
    ),
    "industrial": SynthConfig(
        preset="industrial", users=24, weeks=4.0, cohorts={"factory": 1.0},
        devices={"hololens_2": 0.5, "magic_leap_2": 0.4, "smart_glasses": 0.1},
        tasks=("gesture", "activity", "speech_command", "gaze_selection"), sessions_per_week=3.0,
        session_minutes=3.0, segment_seconds=(15.0, 40.0), depth_fps=2.0, depth_max_width=128,
    ),
}


def config_from_preset(name: str, **overrides: Any) -> SynthConfig:
    """The preset ``name`` with ``overrides`` (any :class:`SynthConfig` field, e.g. ``users=10, seed=3``)."""
    if name not in PRESETS:
        raise ValidationError(f"unknown synth preset {name!r}; known: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(SynthConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValidationError(f"unknown SynthConfig field(s) {bad}; known: {', '.join(sorted(fields))}")
    overrides = {k: v for k, v in overrides.items() if v is not None or k in _NULLABLE}
    return dataclasses.replace(PRESETS[name], **overrides)


_NULLABLE = {"devices", "eeg_cap_prob", "tasks", "bursty_loss", "audio_rate_hz", "depth_fps", "depth_max_width"}
