"""The population: users with latent traits, cohorts/roles with task mixes and device distributions.

A user is a :class:`~xrdata.synth.types.UserTraits` (physiology and behaviour, :func:`sample_traits`) plus a
:class:`UserProfile` (:func:`sample_profile`): cohort/role, device (with an optional EEG cap), the tasks the
user does (users lack some tasks: REALISM F4), the user's label distribution per task (Dirichlet label skew:
F2), attendance (sessions per week drawn log-normally, enrolment week and churn: F1), the user's dropout
propensity and its trend over weeks (T2), the environment (lighting, room noise) and the held-out split.

Traits follow population norms and age: resting pupil shrinks ~0.035 mm/year (Winn et al. 1994), the alpha
peak slows and the aperiodic exponent flattens with age (Voytek et al. 2015), reaches slow with age; voice
f0 is bimodal (about 120 Hz / 210 Hz); left-handedness ~10 %; mains frequency by locale (50/60 Hz).

Everything a user gets is drawn from generators seeded by (seed, crc32(user_id), purpose) only
(:func:`user_rng`), never from a cohort-wide stream, so adding a user changes nobody else. Latents the signal
generators draw themselves (voice, EEG, body size, gesture styles) are keyed by :attr:`UserTraits.key`, which
holds the seed too.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xrdata.synth.devices import ADDONS, DEVICES, with_addon
from xrdata.synth.types import DevicePreset, UserTraits

if TYPE_CHECKING:
    from xrdata.synth.presets import SynthConfig

__all__ = [
    "COHORTS",
    "Cohort",
    "UserProfile",
    "crc",
    "sample_profile",
    "sample_traits",
    "session_seed",
    "user_id",
    "user_rng",
]

#: Purposes of the per-user random streams (the last key of their SeedSequence).
PURPOSE = {
    "traits": 100, "profile": 101, "schedule": 102, "labels": 103, "drift": 104, "dropout": 105, "qoe": 106,
    "split": 107, "session": 110, "session_dropout": 111, "session_qoe": 112,
}


def crc(text: str) -> int:
    """CRC-32 of a string, the stable key of ids in seeds."""
    return zlib.crc32(text.encode())


def session_seed(seed: int, user: str, session: str, index: int) -> np.random.SeedSequence:
    """The seed of one (user, session, stream/purpose): SeedSequence((seed, crc32(user), crc32(session), index))."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, crc(user), crc(session), int(index)])


def user_rng(seed: int, user: str, purpose: str) -> np.random.Generator:
    """A generator for one user and one purpose (see ``PURPOSE``), independent of every other user."""
    return np.random.default_rng(session_seed(seed, user, "", PURPOSE[purpose]))


def user_id(index: int) -> str:
    """User ids ``u0001``, ``u0002``... (1-based)."""
    return f"u{index:04d}"


@dataclass(frozen=True)
class Cohort:
    """A cohort / role: what its users do, on which devices, where and when."""

    name: str
    description: str
    tasks: Mapping[str, float]  # task -> share of session time when the user has the task
    devices: Mapping[str, float]  # device preset -> probability
    eeg_cap_prob: float = 0.0  # probability that a user wears an EEG cap add-on
    eeg_caps: Mapping[str, float] = field(default_factory=lambda: {"eeg_cap_32": 0.6, "eeg_cap_8": 0.4})
    age: tuple[float, float, float, float] = (32.0, 10.0, 18.0, 70.0)  # mean, sd, min, max (years)
    posture: Mapping[str, float] = field(default_factory=lambda: {"sitting": 0.7, "standing": 0.3})
    lux: tuple[float, float] = (300.0, 0.5)  # median lighting (lux), log-sd across users
    noise_dba: tuple[float, float] = (35.0, 50.0)  # range of the users' typical room noise
    hours: tuple[int, int] = (9, 17)  # local hours sessions start in
    line60_prob: float = 0.4  # share of users in 60 Hz mains countries
    sessions_scale: float = 1.0  # multiplies the configured sessions per week
    difficulty: tuple[float, float] = (0.2, 0.8)  # range of session difficulty
    task_keep: float = 0.75  # probability that a user of the cohort does each of its tasks (F4)


#: Cohorts / roles. Task weights are time shares (renormalised over the tasks a user has).
COHORTS: dict[str, Cohort] = {
    "clinic": Cohort(
        "clinic", "rehabilitation and assessment sessions in a clinic (older adults, seated)",
        tasks={"cognitive_load": 0.25, "affect": 0.2, "gaze_selection": 0.2, "speech_command": 0.1,
               "activity": 0.1, "rest": 0.15},
        devices={"vision_pro": 0.25, "quest_pro": 0.25, "pico_neo3_pro_eye": 0.25, "varjo_xr4": 0.1,
                 "hololens_2": 0.15},
        eeg_cap_prob=0.3, age=(58.0, 12.0, 30.0, 85.0), posture={"sitting": 0.85, "standing": 0.15},
        lux=(500.0, 0.3), noise_dba=(33.0, 45.0), hours=(8, 17), difficulty=(0.1, 0.6),
    ),
    "classroom": Cohort(
        "classroom", "students in lessons: reading, selection and spoken answers in a busy room",
        tasks={"cognitive_load": 0.3, "gaze_selection": 0.25, "speech_command": 0.15, "gesture": 0.15,
               "affect": 0.15},
        devices={"quest_3": 0.4, "pico_neo3_pro_eye": 0.3, "quest_pro": 0.2, "aria_glasses": 0.1},
        eeg_cap_prob=0.1, eeg_caps={"eeg_cap_8": 1.0}, age=(17.0, 3.0, 12.0, 26.0),
        posture={"sitting": 0.9, "standing": 0.1}, lux=(400.0, 0.35), noise_dba=(45.0, 62.0), hours=(8, 15),
        difficulty=(0.3, 0.9),
    ),
    "factory": Cohort(
        "factory", "assembly and maintenance workers with AR guidance: gestures, walking, voice in noise",
        tasks={"gesture": 0.3, "activity": 0.3, "speech_command": 0.2, "gaze_selection": 0.2},
        devices={"hololens_2": 0.45, "magic_leap_2": 0.35, "smart_glasses": 0.2},
        eeg_cap_prob=0.0, age=(38.0, 10.0, 19.0, 64.0), posture={"standing": 0.7, "walking": 0.3},
        lux=(600.0, 0.6), noise_dba=(52.0, 65.0), hours=(6, 20), difficulty=(0.3, 0.8), sessions_scale=1.3,
    ),
    "gaming": Cohort(
        "gaming", "consumers at home: games and apps in the evening, dim rooms, expressive",
        tasks={"gesture": 0.3, "gaze_selection": 0.2, "activity": 0.2, "affect": 0.2, "speech_command": 0.1},
        devices={"quest_3": 0.45, "quest_pro": 0.2, "vive_xr_elite": 0.15, "vision_pro": 0.15,
                 "pico_neo3_pro_eye": 0.05},
        eeg_cap_prob=0.0, age=(27.0, 8.0, 14.0, 60.0), posture={"standing": 0.6, "sitting": 0.4},
        lux=(120.0, 0.7), noise_dba=(30.0, 48.0), hours=(17, 23), difficulty=(0.3, 0.95),
    ),
    "lab": Cohort(
        "lab", "neuroscience lab studies: EEG cap on, cognitive load and affect paradigms, eyes-closed rests",
        tasks={"cognitive_load": 0.4, "affect": 0.25, "rest": 0.2, "gaze_selection": 0.15},
        devices={"varjo_xr4": 0.4, "vision_pro": 0.2, "quest_pro": 0.2, "pico_neo3_pro_eye": 0.2},
        eeg_cap_prob=0.9, eeg_caps={"eeg_cap_32": 0.6, "eeg_cap_64": 0.25, "eeg_cap_16": 0.15},
        age=(26.0, 6.0, 18.0, 45.0), posture={"sitting": 1.0}, lux=(250.0, 0.3), noise_dba=(30.0, 40.0),
        hours=(9, 18), difficulty=(0.2, 0.9), task_keep=0.9,
    ),
    "everyday": Cohort(
        "everyday", "all-day glasses wearers: walking, talking, voice assistant, glancing at things",
        tasks={"activity": 0.35, "speech_command": 0.25, "affect": 0.2, "gaze_selection": 0.2},
        devices={"aria_glasses": 0.6, "smart_glasses": 0.4},
        eeg_cap_prob=0.0, age=(34.0, 11.0, 18.0, 75.0), posture={"standing": 0.5, "walking": 0.3, "sitting": 0.2},
        lux=(800.0, 1.0), noise_dba=(38.0, 62.0), hours=(7, 22), difficulty=(0.1, 0.6),
    ),
}

#: Modalities a task needs at least one of, so its label can leave an imprint the device records.
TASK_NEEDS: dict[str, tuple[str, ...]] = {
    "gesture": ("hand", "depth"),
    "gaze_selection": ("gaze", "head", "hand"),
    "activity": ("imu", "head"),
    "cognitive_load": ("gaze", "eeg"),
    "speech_command": ("audio",),
    "affect": ("audio", "gaze", "eeg"),
    "rest": ("eeg", "gaze"),
}


def _choice(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    p = np.array([max(0.0, float(weights[k])) for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _lognormal(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(np.clip(median * math.exp(sigma * rng.standard_normal()), lo, hi))


def sample_traits(rng: np.random.Generator, user_id: str, cohort: str | Cohort = "gaming", seed: int = 0) -> UserTraits:
    """Latent traits of one user of ``cohort`` (physiology by age, behaviour, voice, locale); ``seed`` is the
    cohort's master seed, kept in the traits (:attr:`UserTraits.key`)."""
    c = COHORTS[cohort] if isinstance(cohort, str) else cohort
    mean, sd, lo, hi = c.age
    age = float(np.clip(rng.normal(mean, sd), lo, hi))
    # resting pupil at ~300 lux: ~4.9 mm at 20 years, ~3.5 mm at 60 (E8 asks 2.5-7 mm per user)
    pupil = float(np.clip(5.6 - 0.035 * age + rng.normal(0.0, 0.45), 2.6, 6.8))
    # main sequence: keep Vp(10 deg) = eta (1 - exp(-10 / c)) inside 330-520 deg/s (E1)
    c_deg = float(np.clip(rng.normal(6.5, 1.0), 4.5, 10.0))
    sat = 1.0 - math.exp(-10.0 / c_deg)
    eta = float(np.clip(rng.normal(590.0, 55.0), max(450.0, 330.0 / sat), min(720.0, 520.0 / sat)))
    female = rng.uniform() < 0.5
    f0 = float(np.clip(rng.normal(210.0, 20.0) if female else rng.normal(120.0, 15.0), 85.0, 260.0))
    slow = 1.0 - 0.004 * max(0.0, age - 30.0)
    return UserTraits(
        user_id=user_id,
        handedness="left" if rng.uniform() < 0.1 else "right",
        resting_pupil_mm=pupil,
        gaze_style=_lognormal(rng, 1.0, 0.12, 0.8, 1.25),
        saccade_eta=eta,
        saccade_c=c_deg,
        blink_rate_per_min=_lognormal(rng, 14.0, 0.22, 8.5, 20.5),
        alpha_peak_hz=float(np.clip(10.3 - 0.015 * max(0.0, age - 30.0) + rng.normal(0.0, 0.8), 8.2, 12.5)),
        aperiodic_exponent=float(np.clip(1.75 - 0.008 * (age - 20.0) + rng.normal(0.0, 0.15), 0.9, 2.1)),
        eeg_amplitude_uv=_lognormal(rng, 16.0 * (1.0 - 0.003 * max(0.0, age - 30.0)), 0.25, 8.0, 40.0),
        voice_f0_hz=f0,
        motor_speed=_lognormal(rng, slow, 0.12, 0.7, 1.35),
        tremor_hz=float(np.clip(rng.normal(9.5, 0.8) - 0.01 * (age - 30.0), 7.0, 11.5)),
        tremor_amp_g=_lognormal(rng, 0.006 * (1.0 + 0.01 * max(0.0, age - 40.0)), 0.4, 0.002, 0.03),
        learning_rate=_lognormal(rng, 0.25 * max(0.5, 1.3 - 0.01 * (age - 20.0)), 0.5, 0.03, 1.0),
        line_hz=60.0 if rng.uniform() < c.line60_prob else 50.0,
        age_years=age,
        cohort=c.name,
        seed=seed,
    )


@dataclass(frozen=True)
class UserProfile:
    """Everything about a user that stays fixed across sessions (drift is applied per session later)."""

    traits: UserTraits
    cohort: str
    device: DevicePreset
    tasks: tuple[str, ...]  # tasks the user does (a subset of the cohort's)
    task_weights: Mapping[str, float]  # time share per task, summing to 1
    label_probs: Mapping[str, tuple[float, ...]]  # per task: class probabilities (Dirichlet label skew)
    posture: Mapping[str, float]  # activity during non-activity tasks
    sessions_per_week: float
    enrol_week: float  # first week the user attends
    churn_week: float  # the user stops attending after this week (inf = stays)
    attendance: float  # probability of attending a scheduled session
    session_minutes: float  # the user's median session length
    loss_propensity: float  # multiplies every stream's dropout rate (per user, T2)
    loss_trend_per_week: float  # log change per week of the dropout rate (T2: rates change over time)
    lux_median: float
    noise_median_dba: float
    hours: tuple[int, int]
    difficulty: tuple[float, float]
    split: str  # "train" or "test_users" (held-out users)


def _device_for(rng: np.random.Generator, cohort: Cohort, config: SynthConfig) -> DevicePreset:
    weights = dict(config.devices) if config.devices else dict(cohort.devices)
    device = DEVICES[_choice(rng, weights)]
    cap_prob = cohort.eeg_cap_prob if config.eeg_cap_prob is None else config.eeg_cap_prob
    u, cap = rng.uniform(), _choice(rng, cohort.eeg_caps)  # always drawn, so the stream stays aligned
    if u < cap_prob and device.kind != "glasses":
        device = with_addon(device, ADDONS[cap])
    return device


def _has_any(device: DevicePreset, streams: tuple[str, ...], enabled: tuple[str, ...]) -> bool:
    return any(s in device.sensors and s in enabled for s in streams)


def sample_profile(seed: int, uid: str, config: SynthConfig) -> UserProfile:
    """The profile of user ``uid``: cohort, device, tasks, label skew, attendance, dropout propensity, split."""
    from xrdata.synth.timeline import LABELS

    rng = user_rng(seed, uid, "profile")
    cohort = COHORTS[_choice(rng, config.cohorts)]
    traits = sample_traits(user_rng(seed, uid, "traits"), uid, cohort, seed)
    device = _device_for(rng, cohort, config)
    enabled = tuple(config.modalities)

    # tasks: each of the cohort's tasks with probability task_keep (F4), restricted to tasks the device can
    # imprint and to config.tasks; at least two tasks (the most weighted ones) when possible.
    pool = {t: w for t, w in cohort.tasks.items()
            if (config.tasks is None or t in config.tasks) and _has_any(device, TASK_NEEDS[t], enabled)}
    if config.tasks is not None:  # a requested task the cohort lacks still gets a small share
        for t in config.tasks:
            if t not in pool and _has_any(device, TASK_NEEDS[t], enabled):
                pool[t] = 0.1
    keep_p = 1.0 if config.all_tasks else cohort.task_keep
    draws = rng.uniform(size=len(pool))
    tasks = [t for t, u in zip(pool, draws, strict=True) if u < keep_p]
    for t in sorted(pool, key=lambda k: -pool[k]):
        if len(tasks) >= min(2, len(pool)):
            break
        if t not in tasks:
            tasks.append(t)
    tasks = [t for t in pool if t in tasks]  # cohort order
    if not tasks:  # the device can imprint none of the requested tasks: the user only rests
        tasks, pool = ["rest"], {"rest": 1.0}
    total = sum(pool[t] for t in tasks) or 1.0
    weights = {t: pool[t] / total for t in tasks}

    # label skew: class probabilities per task ~ Dirichlet(alpha * 1) (Hsu et al. 2019)
    lrng = user_rng(seed, uid, "labels")
    label_probs: dict[str, tuple[float, ...]] = {}
    for t, classes in LABELS.items():
        alpha = np.full(len(classes), float(config.dirichlet_alpha))
        q = lrng.dirichlet(alpha) if np.isfinite(alpha).all() and alpha[0] < 1e6 else np.full(len(classes),
                                                                                             1 / len(classes))
        q = np.maximum(q, 1e-12)
        label_probs[t] = tuple(float(x) for x in q / q.sum())

    # attendance: sessions per week log-normal across users (skewed samples per user, F1), enrolment, churn
    srng = user_rng(seed, uid, "schedule")
    if config.balanced:
        spw, enrol, churn, attend, minutes = config.sessions_per_week, 0.0, math.inf, 1.0, config.session_minutes
        srng.standard_normal(5)
    else:
        spw = config.sessions_per_week * cohort.sessions_scale * math.exp(
            config.sessions_sigma * srng.standard_normal() - config.sessions_sigma**2 / 2)
        spw = float(np.clip(spw, 0.3, 14.0))
        enrol = float(srng.uniform(0.0, config.enrol_spread * config.weeks))
        hazard = config.churn_per_week
        churn = enrol + float(srng.exponential(1.0 / hazard)) if hazard > 0 else math.inf
        attend = float(np.clip(srng.beta(8.0, 2.0), 0.4, 1.0))
        minutes = _lognormal(srng, config.session_minutes, config.session_minutes_sigma,
                             0.25 * config.session_minutes, 4.0 * config.session_minutes)

    drng = user_rng(seed, uid, "dropout")
    propensity = float(math.exp(config.dropout_user_sigma * drng.standard_normal()
                                - config.dropout_user_sigma**2 / 2))
    trend = float(drng.normal(0.0, config.dropout_trend_sd))
    erng = user_rng(seed, uid, "drift")
    lux = _lognormal(erng, cohort.lux[0], cohort.lux[1], 20.0, 20000.0)
    noise = float(erng.uniform(*cohort.noise_dba))

    split_u = float(user_rng(seed, uid, "split").uniform())
    return UserProfile(
        traits=traits, cohort=cohort.name, device=device, tasks=tuple(tasks), task_weights=weights,
        label_probs=label_probs, posture=dict(cohort.posture), sessions_per_week=spw, enrol_week=enrol,
        churn_week=churn, attendance=attend, session_minutes=minutes, loss_propensity=propensity,
        loss_trend_per_week=trend, lux_median=lux, noise_median_dba=noise, hours=cohort.hours,
        difficulty=cohort.difficulty, split="test_users" if split_u < config.test_user_frac else "train",
    )
