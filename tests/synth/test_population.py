"""Devices, population traits and user profiles (REALISM E1/E8/E10/G1/G2/H3/H5 priors, F4)."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest

from xrdata.errors import ValidationError
from xrdata.synth import DEVICES, stats
from xrdata.synth.devices import ADDONS, STREAM_MODALITY, get_device, scaled_sensors, with_addon
from xrdata.synth.population import COHORTS, TASK_NEEDS, sample_profile, sample_traits, user_id
from xrdata.synth.presets import SynthConfig
from xrdata.synth.timeline import LABELS

#: Where each stream's parameters are read (generator module, plus drift.py for calibration/bias priors).
READERS = {"gaze": ("eye", "drift"), "hand": ("hand",), "head": ("head",), "imu": ("head", "drift"),
           "audio": ("audio",), "depth": ("depth",), "eeg": ("eeg",)}
DOCUMENTARY = {"gyro_bias_instability", "channels_native", "reference"}  # datasheet values kept for reference


def test_device_presets_cover_the_market() -> None:
    expected = {"quest_3", "quest_pro", "vision_pro", "hololens_2", "magic_leap_2", "vive_xr_elite", "varjo_xr4",
                "pico_neo3_pro_eye", "aria_glasses", "smart_glasses"}
    assert expected <= set(DEVICES)
    assert "gaze" not in DEVICES["quest_3"].sensors and "gaze" not in DEVICES["vive_xr_elite"].sensors
    aria = DEVICES["aria_glasses"].sensors
    assert {"gaze", "imu", "audio"} <= set(aria) and "hand" not in aria and "depth" not in aria
    assert set(DEVICES["smart_glasses"].sensors) == {"imu", "audio"}
    for name, dev in DEVICES.items():
        assert dev.name == name and dev.compute_gflops > 0 and "eeg" not in dev.sensors
        for key, spec in dev.sensors.items():
            assert spec.modality == STREAM_MODALITY[key], (name, key)


@pytest.mark.parametrize("stream", sorted(READERS))
def test_sensor_parameters_are_the_ones_the_generators_read(stream: str) -> None:
    names = {k for d in [*DEVICES.values(), *ADDONS.values()] for s, spec in d.sensors.items() if s == stream
             for k in spec.params}
    sources = []
    for mod in READERS[stream]:
        spec = importlib.util.find_spec(f"xrdata.synth.{mod}")
        if spec is None or spec.origin is None:
            pytest.skip(f"xrdata.synth.{mod} not written yet")
        sources.append(Path(spec.origin).read_text())
    text = "\n".join(sources)
    unread = [n for n in names - DOCUMENTARY if not re.search(rf"[\"']{n}[\"']", text)]
    assert not unread, f"{stream}: parameters no generator reads: {unread}"


def test_rates_and_noise_levels_are_plausible() -> None:
    for dev in DEVICES.values():
        s = dev.sensors
        if "gaze" in s:
            assert 30 <= s["gaze"].rate_hz <= 250 and 0.03 <= float(s["gaze"].params["precision_deg"]) <= 0.5
        if "hand" in s:
            assert 30 <= s["hand"].rate_hz <= 90
            assert 0.007 <= float(s["hand"].params["fingertip_error_m"]) <= 0.02
        if "head" in s:
            assert 30 <= s["head"].rate_hz <= 120
        if "imu" in s:
            assert 400 <= s["imu"].rate_hz <= 1000
            assert 3e-5 <= float(s["imu"].params["gyro_noise_density"]) <= 5e-4
        if "audio" in s:
            assert 16000 <= s["audio"].rate_hz <= 48000
        if "depth" in s:
            assert s["depth"].params["kind"] in ("structured_light", "tof")
    # E10: research-grade vs consumer eye trackers; H5: consumer hand tracking ~1 cm
    assert float(DEVICES["varjo_xr4"].sensors["gaze"].params["precision_deg"]) <= 0.06
    assert float(DEVICES["quest_pro"].sensors["gaze"].params["precision_deg"]) > 0.1
    for name in ("quest_3", "quest_pro"):
        assert 0.007 <= float(DEVICES[name].sensors["hand"].params["fingertip_error_m"]) <= 0.015


def test_eeg_cap_addon_combines_with_any_headset() -> None:
    dev = get_device("quest_pro+eeg_cap_32")
    assert dev.name == "quest_pro+eeg_cap_32" and dev.addons == ("eeg_cap_32",)
    assert dev.sensors["eeg"].params["channels"] == 32 and "gaze" in dev.sensors
    assert {int(a.sensors["eeg"].params["channels"]) for a in ADDONS.values()} == {8, 16, 32, 64}
    assert with_addon(DEVICES["quest_3"], "eeg_cap_8").sensors["eeg"].rate_hz == 250
    with pytest.raises(ValidationError, match="unknown add-on"):
        get_device("quest_3+helmet")
    with pytest.raises(ValidationError, match="unknown device"):
        get_device("gameboy")


def test_scaled_sensors_caps_cost() -> None:
    dev = scaled_sensors(DEVICES["magic_leap_2"], audio_rate_hz=16000, depth_fps=5, depth_max_width=136,
                         streams=("gaze", "depth", "audio"))
    assert set(dev.sensors) == {"gaze", "depth", "audio"}
    assert dev.sensors["audio"].rate_hz == 16000 and dev.sensors["depth"].rate_hz == 5
    assert dev.sensors["depth"].params["width"] == 136 and dev.sensors["depth"].params["height"] == 120
    assert dev.sensors["gaze"] is DEVICES["magic_leap_2"].sensors["gaze"]


@pytest.mark.parametrize("cohort", sorted(COHORTS))
def test_traits_within_physiological_ranges(cohort: str) -> None:
    rng = np.random.default_rng(3)
    traits = [sample_traits(rng, f"u{i:04d}", cohort) for i in range(300)]
    arr = {f.name: np.array([getattr(t, f.name) for t in traits]) for f in dataclasses.fields(traits[0])
           if f.type in ("float", float)}
    assert np.all((arr["resting_pupil_mm"] >= 2.5) & (arr["resting_pupil_mm"] <= 7.0))  # E8
    vp10 = arr["saccade_eta"] * (1 - np.exp(-10 / arr["saccade_c"]))
    assert np.all((vp10 >= 290) & (vp10 <= 550))  # E1
    assert np.all((arr["saccade_eta"] >= 400) & (arr["saccade_eta"] <= 750))
    assert np.all((arr["saccade_c"] >= 4) & (arr["saccade_c"] <= 15))
    assert np.all((arr["blink_rate_per_min"] >= 8) & (arr["blink_rate_per_min"] <= 21))  # E6 neutral
    assert np.all((arr["alpha_peak_hz"] >= 8) & (arr["alpha_peak_hz"] <= 13))  # G2
    assert np.all((arr["aperiodic_exponent"] >= 0.8) & (arr["aperiodic_exponent"] <= 2.2))  # G1
    assert np.all((arr["eeg_amplitude_uv"] >= 5) & (arr["eeg_amplitude_uv"] <= 50))  # G5
    assert np.all((arr["tremor_hz"] >= 6) & (arr["tremor_hz"] <= 12))  # H3
    assert np.all((arr["tremor_amp_g"] >= 0.0015) & (arr["tremor_amp_g"] <= 0.035))
    assert set(arr["line_hz"]) <= {50.0, 60.0}
    left = np.mean([t.handedness == "left" for t in traits])
    assert 0.04 < left < 0.18
    f0 = arr["voice_f0_hz"]
    assert np.mean(f0 < 165) == pytest.approx(0.5, abs=0.1)  # bimodal voices
    assert all(t.cohort == cohort for t in traits)


def test_age_shapes_the_traits() -> None:
    rng = np.random.default_rng(0)
    old = [sample_traits(rng, "u", "clinic") for _ in range(300)]
    young = [sample_traits(rng, "u", "classroom") for _ in range(300)]
    assert np.mean([t.age_years for t in old]) > np.mean([t.age_years for t in young]) + 25
    for name, sign in (("resting_pupil_mm", -1), ("aperiodic_exponent", -1), ("motor_speed", -1)):
        diff = np.mean([getattr(t, name) for t in old]) - np.mean([getattr(t, name) for t in young])
        assert diff * sign > 0, name


def test_user_ids_and_profiles() -> None:
    assert user_id(1) == "u0001" and user_id(123) == "u0123"
    cfg = SynthConfig(users=60, cohorts={c: 1.0 for c in COHORTS})
    profiles = [sample_profile(0, user_id(i + 1), cfg) for i in range(60)]
    for p in profiles:
        assert p.tasks and abs(sum(p.task_weights.values()) - 1) < 1e-9
        for t in p.tasks:  # every task leaves an imprint the device records
            assert t == "rest" or any(s in p.device.sensors for s in TASK_NEEDS[t]), (p.device.name, t)
        assert set(p.label_probs) == set(LABELS)
        for t, q in p.label_probs.items():
            assert len(q) == len(LABELS[t]) and math.isclose(sum(q), 1.0)
        assert p.split in ("train", "test_users")
    assert {p.cohort for p in profiles} == set(COHORTS)
    assert any("+eeg_cap" in p.device.name for p in profiles)
    # loss propensity differs by user (T2)
    assert stats.coefficient_of_variation(np.array([p.loss_propensity for p in profiles])) > 0.3


def test_f4_users_lack_tasks_and_cooccurrence_is_reported() -> None:
    cfg = SynthConfig(users=80, cohorts={"clinic": 1, "classroom": 1, "factory": 1, "gaming": 1})
    profiles = [sample_profile(0, user_id(i + 1), cfg) for i in range(80)]
    lacking = np.mean([len(p.tasks) < len(COHORTS[p.cohort].tasks) for p in profiles])
    assert lacking > 0.3
    tasks = list(LABELS)
    co = stats.task_cooccurrence([list(p.tasks) for p in profiles], tasks)
    assert (co == co.T).all() and (np.diag(co) >= co).all()
    assert np.diag(co).sum() == sum(len(p.tasks) for p in profiles)
    full = [sample_profile(0, user_id(i + 1), dataclasses.replace(cfg, all_tasks=True)) for i in range(20)]
    assert all(len(p.tasks) == len([t for t in COHORTS[p.cohort].tasks
                                     if any(s in p.device.sensors for s in TASK_NEEDS[t])]) for p in full)


def test_profiles_do_not_depend_on_other_users_or_the_cohort_size() -> None:
    a = SynthConfig(users=5)
    b = SynthConfig(users=500)
    for i in range(1, 6):
        assert sample_profile(4, user_id(i), a) == sample_profile(4, user_id(i), b)
    assert sample_profile(4, "u0001", a) != sample_profile(5, "u0001", a)
