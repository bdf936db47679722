"""The types every part of the synthesizer shares: devices, users, session plans, generator I/O.

A session is generated from a :class:`SessionPlan` (who, on which device, when, doing what: the task
:class:`Segment` s that carry the labels and the latent state). Generators turn a plan into streams, in the
order eye -> head -> hand -> audio -> eeg -> depth, passing the latent events they create (blinks, saccades,
talk spurts...) to the later ones through a :class:`Context`, so that modalities are coupled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xrdata.model import Stream

#: Tasks a segment can belong to; each has its own label set (see xrdata.synth.timeline).
TASKS: tuple[str, ...] = (
    "gesture", "gaze_selection", "activity", "cognitive_load", "speech_command", "affect", "rest",
)


@dataclass(frozen=True)
class SensorSpec:
    """One sensor of a device: its modality, nominal rate (Hz) and noise/resolution parameters."""

    modality: str  # "gaze" | "hand" | "audio" | "depth" | "motion" | "eeg"
    rate_hz: float
    params: Mapping[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class DevicePreset:
    """A headset, glasses or add-on; ``sensors`` is keyed by stream name ("gaze", "hand", "head", "imu",
    "audio", "depth", "eeg")."""

    name: str
    kind: str  # "VR/MR" | "MR" | "AR" | "glasses" | "add-on"
    sensors: Mapping[str, SensorSpec]
    compute_gflops: float = 10.0  # sustained on-device compute, for the trainer's device budgets
    memory_gb: float = 8.0  # device RAM available to apps (trainer's storage/memory budgets)
    battery_wh: float = 20.0  # battery capacity, Wh (0 = tethered / mains powered)
    latency_ms: float = 30.0  # typical input-to-feedback latency of the platform (QoE model, xrdata.synth.qoe)
    addons: tuple[str, ...] = ()  # names of add-ons merged into this preset (e.g. "eeg_cap_32")


@dataclass(frozen=True)
class UserTraits:
    """Latent per-user traits; stable across sessions unless drift changes them."""

    user_id: str
    handedness: str = "right"  # "left" | "right"
    resting_pupil_mm: float = 4.0  # mm, 2.5-7
    gaze_style: float = 1.0  # scales fixation durations
    saccade_eta: float = 600.0  # deg/s, main-sequence asymptote
    saccade_c: float = 6.0  # deg, main-sequence constant
    blink_rate_per_min: float = 15.0  # neutral-task blink rate
    alpha_peak_hz: float = 10.0
    aperiodic_exponent: float = 1.5
    eeg_amplitude_uv: float = 15.0  # broadband RMS, uV
    voice_f0_hz: float = 140.0
    motor_speed: float = 1.0  # scales reach/gesture durations (higher = faster)
    tremor_hz: float = 9.0
    tremor_amp_g: float = 0.005
    learning_rate: float = 0.1  # per week, skill learning curve
    line_hz: float = 50.0  # mains frequency of the user's locale
    age_years: float = 30.0  # drives resting pupil, alpha peak, aperiodic exponent, motor speed (population.py)
    cohort: str = ""  # cohort / role the user belongs to (population.COHORTS), "" when unknown
    seed: int = 0  # the cohort's master seed (SynthConfig.seed), part of :attr:`key`

    @property
    def key(self) -> str:
        """What seeds this person's latents drawn outside :func:`~xrdata.synth.population.sample_traits` (voice,
        EEG, body and hand size, gesture and head styles): the user id and the cohort seed, so another seed gives
        other people under the same ids. Seed 0 keys by the bare id, so seed-0 cohorts keep their bytes."""
        return self.user_id if self.seed == 0 else f"{self.user_id}@{self.seed}"


@dataclass(frozen=True)
class Segment:
    """A stretch ``[start_ns, stop_ns)`` of one task, with its label and latent state."""

    start_ns: int
    stop_ns: int
    task: str  # one of TASKS
    label: str  # the class of ``task`` in this segment, e.g. "swipe_left", "high"
    load: float = 0.3  # cognitive load 0..1
    arousal: float = 0.3  # 0..1
    activity: str = "sitting"  # "sitting" | "standing" | "walking" | ...
    eyes_closed: bool = False
    talking: bool = False
    reading: bool = False
    # Targets gaze and hands go to: (time_ns, yaw_deg, pitch_deg, depth_m), head-centred, sorted by time.
    targets: tuple[tuple[int, float, float, float], ...] = ()
    concept: int = 0  # 1 when the segment follows the user's new concept (concept drift, xrdata.synth.drift)


@dataclass(frozen=True)
class SessionPlan:
    """Everything needed to generate one session; the session clock starts at 0 ns."""

    user: UserTraits
    device: DevicePreset
    session_id: str
    week: float  # weeks since the user's first session
    duration_s: float
    segments: tuple[Segment, ...]
    lighting_lux: float = 300.0
    room_noise_dba: float = 40.0
    latency_ms: float = 20.0  # system latency, drives implicit QoE signals
    difficulty: float = 0.5
    gaze_offset_deg: tuple[float, float] = (0.0, 0.0)  # calibration offset at session start (yaw, pitch)
    imu_gyro_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # rad/s at session start
    imu_accel_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # m/s^2 at session start
    eeg_worn: bool = True
    mic_muted: bool = False
    # Orchestrator bookkeeping (split, calendar anchor, dropout and QoE plans, drift state); generators ignore it.
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def duration_ns(self) -> int:
        return round(self.duration_s * 1e9)

    def segment_at(self, t_ns: np.ndarray) -> np.ndarray:
        """Index of the segment holding each time (-1 outside every segment)."""
        starts = np.array([s.start_ns for s in self.segments], dtype=np.int64)
        stops = np.array([s.stop_ns for s in self.segments], dtype=np.int64)
        idx = np.searchsorted(starts, t_ns, side="right") - 1
        ok = (idx >= 0) & (t_ns < stops[np.clip(idx, 0, None)]) if len(starts) else np.zeros(t_ns.shape, bool)
        return np.where(ok, idx, -1)


def _intervals() -> np.ndarray:
    return np.empty((0, 2), dtype=np.int64)


@dataclass
class Context:
    """Latent events created by earlier generators and read by later ones (all times int64 ns)."""

    blinks: np.ndarray = field(default_factory=_intervals)  # (K, 2) [start, stop)
    saccades: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))  # (K, 4) start, stop, amp deg, vpeak deg/s
    gaze_shifts: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))  # (K, 3) time, d_yaw deg, d_pitch deg
    # the head movements those gaze shifts recruit, head.head_recruitment(gaze_shifts) (K, 4), set with them by
    # the eye generator (None: not computed yet)
    head_steps: np.ndarray | None = None
    speech: np.ndarray = field(default_factory=_intervals)  # the user's talk spurts
    muscle: np.ndarray = field(default_factory=_intervals)  # jaw/face EMG intervals
    voice: Any = None  # the session's speech plan (xrdata.synth.audio.SpeechPlan), None until planned
    hand_overlap: np.ndarray = field(default_factory=_intervals)
    hands_out_of_view: np.ndarray = field(default_factory=_intervals)
    head_time_ns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    head_yaw_pitch_deg: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    hand_time_ns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    palm_head_m: np.ndarray = field(default_factory=lambda: np.empty((0, 2, 3)))  # true palm centres in the head
    # frame (x right, y up, -z forward; m), (N, 2, 3) at hand_time_ns, left then right hand


@dataclass
class ModalityOutput:
    """What a generator returns: streams valid against the schemas, events, and ground truth."""

    streams: list[Stream]
    events: list[tuple[int, int, str, str]] = field(default_factory=list)  # (time_ns, duration_ns, label, value)
    truth: dict[str, Any] = field(default_factory=dict)


#: A research-grade all-sensor device used by :func:`example_plan` (the presets live in xrdata.synth.devices).
EXAMPLE_DEVICE = DevicePreset(
    name="example_all_sensors",
    kind="MR",
    sensors={
        "gaze": SensorSpec("gaze", 200.0, {"precision_deg": 0.06}),
        "head": SensorSpec("motion", 90.0),
        "imu": SensorSpec("motion", 1000.0, {"gyro_noise_density": 0.003, "accel_noise_density": 0.02}),
        "hand": SensorSpec("hand", 60.0, {"fingertip_error_m": 0.01}),
        "audio": SensorSpec("audio", 16000.0),
        "depth": SensorSpec("depth", 30.0, {"kind": "structured_light", "width": 256, "height": 192}),
        "eeg": SensorSpec("eeg", 500.0, {"channels": 32}),
    },
)


def example_plan(
    duration_s: float = 60.0, tasks: tuple[tuple[str, str], ...] = (("rest", "eyes_open"),), *,
    user: UserTraits | None = None, device: DevicePreset = EXAMPLE_DEVICE, **overrides: Any,
) -> SessionPlan:
    """A small plan for tests: the session split evenly into one segment per ``(task, label)``.

    ``overrides`` set SessionPlan fields (e.g. ``lighting_lux=50``). Segment latent state follows the label:
    cognitive_load "high" -> load 0.9, "low" -> 0.1; rest "eyes_closed" -> eyes closed; speech/affect -> talking.
    """
    n = max(1, len(tasks))
    edges = np.linspace(0, round(duration_s * 1e9), n + 1).astype(np.int64)
    segments = []
    for (task, label), a, b in zip(tasks, edges[:-1], edges[1:], strict=True):
        segments.append(Segment(
            int(a), int(b), task, label,
            load={"high": 0.9, "low": 0.1}.get(label, 0.3) if task == "cognitive_load" else 0.3,
            arousal={"high": 0.9, "low": 0.1}.get(label, 0.3) if task == "affect" else 0.3,
            eyes_closed=task == "rest" and label == "eyes_closed",
            talking=task in ("speech_command", "affect"),
            reading=task == "cognitive_load",
        ))
    return SessionPlan(user=user or UserTraits("example"), device=device, session_id="example", week=0.0,
                       duration_s=duration_s, segments=tuple(segments), **overrides)
