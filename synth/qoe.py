"""Implicit quality-of-experience signals driven by system latency, difficulty and skill.

Model (XR_CONTEXT "model-inferred QoE" and "user-reported QoE"): every input the user makes (a dwell
selection, a gesture, a spoken command) is recognised late or not at all with a probability that grows with
the system latency (above ~50 ms interaction degrades), the task difficulty and falls with the user's skill
(:func:`rates`). The user reacts the way people do, and the reactions are in the signals:

- **gaze selection** (fully planned here, :func:`selection_trials`): visual search over distractors (more
  with difficulty, fewer with skill), *hesitation* (a re-check glance back to a distractor and a longer wait
  before committing), *aborted* dwells (looking away before the dwell completes, more with latency), and
  *repetition* (the dwell did not register: look off and dwell again). These are the segment's
  ``targets``, so the eye generator produces the extra saccades (gaze jitter: more re-fixations per trial),
  the head follows large shifts, and the hand reaches for targets dwelt on.
- **gestures and spoken commands** (:func:`input_events`): the generators perform the segment's gesture or
  command repeatedly; an input the recogniser missed makes the next one of the same class a *repeat*.
- **frustration**: the expected failure rate raises the arousal of the session's non-affect segments
  (pupil, voice, EMG), planned in :mod:`xrdata.synth.timeline`.
- **self-report** (:func:`likert`): at the end of some sessions a 1-5 rating falling with latency, difficulty,
  repeats and aborts.

Events: ``qoe/repeat``, ``qoe/abort``, ``qoe/hesitation`` (value = the task), ``qoe/likert`` (value "1".."5").
The per-session table (``ground_truth/qoe``) holds latency, difficulty, skill, the probabilities, counts and
rates, re-fixations per trial and the self-report.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["input_events", "likert", "rates", "selection_trials", "session_conditions"]

#: Ring of distractor targets around the centre (yaw, pitch half-axes, deg) and the UI depth (m).
RING = (18.0, 11.0)
DWELL_S = 0.6  # dwell time the UI needs to register a selection


def rates(latency_ms: float, difficulty: float, skill: float) -> dict[str, float]:
    """Per-input probabilities of a recogniser miss (-> repeat), an abort and a hesitation."""
    lat = 1.0 - math.exp(-max(0.0, latency_ms - 40.0) / 150.0)  # 0 below 40 ms, -> 1 for long delays
    fail = 0.03 + 0.2 * difficulty + 0.35 * lat - 0.1 * skill
    abort = 0.02 + 0.08 * difficulty + 0.3 * lat - 0.04 * skill
    hes = 0.05 + 0.35 * difficulty * (1.0 - 0.5 * skill) + 0.15 * lat
    return {"p_fail": float(np.clip(fail, 0.01, 0.8)), "p_abort": float(np.clip(abort, 0.005, 0.6)),
            "p_hesitate": float(np.clip(hes, 0.01, 0.8))}


def session_conditions(
    rng: np.random.Generator, base_latency_ms: float, difficulty_range: tuple[float, float], skill: float,
    degraded_prob: float,
) -> tuple[float, float]:
    """(latency_ms, difficulty) of a session: the platform latency with session jitter, sometimes degraded by
    network/offload (+80-250 ms); difficulty in the cohort's range, rising a little with skill (adaptive)."""
    u_deg, u_extra, z, u_diff = rng.uniform(), rng.uniform(80.0, 250.0), rng.standard_normal(), rng.uniform()
    latency = base_latency_ms * math.exp(0.25 * z) + (u_extra if u_deg < degraded_prob else 0.0)
    lo, hi = difficulty_range
    difficulty = float(np.clip(lo + (hi - lo) * u_diff + 0.1 * skill, 0.0, 1.0))
    return float(latency), difficulty


def _ring_point(rng: np.random.Generator, avoid: tuple[float, float]) -> tuple[float, float]:
    for _ in range(8):
        ang = rng.uniform(0.0, 2.0 * np.pi)
        y, p = RING[0] * math.cos(ang), RING[1] * math.sin(ang)
        if math.hypot(y - avoid[0], p - avoid[1]) > 8.0:
            return y, p
    return -avoid[0], -avoid[1]


def selection_trials(
    rng: np.random.Generator, start_ns: int, stop_ns: int, target: tuple[float, float], *, latency_ms: float,
    difficulty: float, skill: float, depth_m: float = 1.5,
) -> tuple[tuple[tuple[int, float, float, float], ...], list[tuple[int, int, str, str]], dict[str, int]]:
    """Gaze targets of a gaze_selection segment, its QoE events and counts.

    Each trial: a visual search over distractors on a ring, optionally a hesitation (a re-check glance and a
    wait), optionally an aborted dwell (look away early), then the dwell on the selected ``target`` (yaw,
    pitch deg) for the dwell time plus the latency; a dwell that did not register is repeated.
    Returns (targets (t_ns, yaw, pitch, depth), events (t_ns, dur_ns, label, value), counts).
    """
    r = rates(latency_ms, difficulty, skill)
    lat_s = latency_ms * 1e-3
    a, b = start_ns * 1e-9, stop_ns * 1e-9
    t = a + 0.3
    targets: list[tuple[int, float, float, float]] = []
    events: list[tuple[int, int, str, str]] = []
    counts = {"trials": 0, "inputs": 0, "repeats": 0, "aborts": 0, "hesitations": 0, "glances": 0}
    jitter = (float(rng.normal(0.0, 0.4)), float(rng.normal(0.0, 0.4)))
    goal = (target[0] + jitter[0], target[1] + jitter[1])

    def look(at: float, yp: tuple[float, float], dwell: float) -> float:
        targets.append((round(at * 1e9), float(yp[0]), float(yp[1]), depth_m))
        counts["glances"] += 1
        return at + dwell

    while t < b - 1.2:
        counts["trials"] += 1
        n_search = 1 + int(rng.poisson(2.0 * difficulty * (1.0 - 0.5 * skill)))
        last = goal
        for _ in range(n_search):
            last = _ring_point(rng, goal)
            t = look(t, last, float(rng.lognormal(math.log(0.35), 0.3)))
        if rng.uniform() < r["p_hesitate"]:  # re-check a distractor and wait before committing
            h0 = t
            t = look(t, _ring_point(rng, goal), float(rng.lognormal(math.log(0.5), 0.35)) + 0.5 * lat_s)
            events.append((round(h0 * 1e9), round((t - h0) * 1e9), "qoe/hesitation", "gaze_selection"))
            counts["hesitations"] += 1
        if rng.uniform() < r["p_abort"]:  # start dwelling, give up before it registers, come back
            a0 = t
            t = look(t, goal, float(rng.uniform(0.2, 0.45)))
            t = look(t, _ring_point(rng, goal), float(rng.lognormal(math.log(0.4), 0.3)))
            events.append((round(a0 * 1e9), round((t - a0) * 1e9), "qoe/abort", "gaze_selection"))
            counts["aborts"] += 1
        attempts = 0
        while t < b - 0.8:
            attempts += 1
            counts["inputs"] += 1
            d0 = t
            t = look(t, goal, DWELL_S + lat_s + float(rng.lognormal(math.log(0.25), 0.4)))
            if attempts > 1:
                events.append((round(d0 * 1e9), round((t - d0) * 1e9), "qoe/repeat", "gaze_selection"))
                counts["repeats"] += 1
            if attempts >= 3 or rng.uniform() >= r["p_fail"]:
                break
            t = look(t, _ring_point(rng, goal), float(rng.lognormal(math.log(0.3), 0.3)))  # "did it work?"
        t += float(rng.uniform(0.3, 0.8))  # inter-trial interval
    targets = [x for x in targets if x[0] < stop_ns]
    events = [e for e in events if e[0] < stop_ns]
    return tuple(targets), events, counts


def input_events(
    rng: np.random.Generator, inputs: list[tuple[int, int, str, str]], p_fail: float,
) -> tuple[list[tuple[int, int, str, str]], dict[str, int]]:
    """Repeats among a segment's gestures / commands: ``inputs`` are (t_ns, dur_ns, task, class) in time
    order; an input the recogniser missed makes the next input of the same class a ``qoe/repeat``."""
    events: list[tuple[int, int, str, str]] = []
    failed: set[tuple[str, str]] = set()
    fails = 0
    for t_ns, dur_ns, task, cls in inputs:
        key = (task, cls)
        if key in failed:
            events.append((t_ns, dur_ns, "qoe/repeat", task))
            failed.discard(key)
        if rng.uniform() < p_fail:
            failed.add(key)
            fails += 1
    return events, {"inputs": len(inputs), "repeats": len(events), "fails": fails}


def likert(rng: np.random.Generator, latency_ms: float, difficulty: float, repeat_rate: float,
           abort_rate: float) -> int:
    """A 1-5 self-report: 4.4 minus latency, difficulty, repeat and abort penalties, plus rater noise."""
    q = (4.4 - 0.008 * max(0.0, latency_ms - 30.0) - 1.0 * difficulty - 2.5 * repeat_rate - 2.0 * abort_rate
         + float(rng.normal(0.0, 0.5)))
    return int(np.clip(round(q), 1, 5))


def qoe_row(meta: dict[str, Any]) -> dict[str, Any]:
    """Flatten a session's QoE bookkeeping into one ``ground_truth/qoe`` row."""
    return {k: meta[k] for k in sorted(meta)}
