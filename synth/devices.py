"""Device presets modelled on real headsets and glasses, and the EEG cap add-on.

Each :class:`~xrdata.synth.types.DevicePreset` lists the sensors a device records, keyed by stream name
(``"gaze"``, ``"hand"``, ``"head"``, ``"imu"``, ``"audio"``, ``"depth"``, ``"eeg"``), with the nominal rate
and the noise/resolution parameters the signal generators read through ``sensor.params.get(name, default)``:

- gaze (``xrdata.synth.eye``): ``precision_deg`` (RMS sample-to-sample of the combined ray),
  ``offset_drift_deg_per_h`` (growth of the calibration offset while worn), ``jitter_ms``, ``clock_ppm_sd``;
  ``accuracy_deg`` (residual offset right after a calibration) is read by :mod:`xrdata.synth.drift`.
- hand (``xrdata.synth.hand``): ``fingertip_error_m``, ``latency_ms``, ``fov_h_deg`` / ``fov_v_deg`` (tracking
  field of view), ``loss_rate_hz`` (tracking-loss bursts per second in good conditions).
- head (``xrdata.synth.head``): ``position_noise_m``, ``rotation_noise_deg``, ``jitter_ms``.
- imu (``xrdata.synth.head``): ``gyro_noise_density`` (rad/s/sqrt(Hz)), ``accel_noise_density``
  (m/s^2/sqrt(Hz)), ``gyro_bias_walk`` (rad/s/sqrt(s)), ``accel_bias_walk`` (m/s^2/sqrt(s)),
  ``voice_vibration_ms2`` (the wearer's voice in the accelerometer, m/s^2 RMS; no preset sets it: off);
  ``gyro_turn_on_bias`` (rad/s) and ``accel_turn_on_bias`` (m/s^2), the bias spread at power-on, and
  ``gyro_bias_instability`` (rad/s, datasheet figure, documentation only) are read by :mod:`xrdata.synth.drift`.
- audio (``xrdata.synth.audio``): ``dbspl_full_scale``, ``self_noise_dba``, ``speech_level_db``;
  ``channels_native`` (microphones of the array; one mono beam-formed channel is generated).
- depth (``xrdata.synth.depth``): ``kind`` (``"structured_light"`` or ``"tof"``), ``width``, ``height``,
  ``z_min_m``, ``z_max_m``, ``hfov_deg``; the frame rate is the sensor rate. (Quest Pro has no depth sensor:
  its depth comes from the stereo tracking cameras, modelled with the triangulation law of structured light.)
- eeg (``xrdata.synth.eeg``): ``channels`` (8/16/32/64), ``line_noise`` (1 = mains pickup on), ``line_noise_uv``,
  ``reference``.

Numbers come from vendor specifications and published evaluations where they exist (e.g. Varjo 200 Hz
research-grade gaze; Tobii-based Pico Neo 3 Pro Eye 90 Hz; Quest Pro ~72-90 Hz gaze with ~1.6 deg accuracy,
Wei et al. 2023; HoloLens 2 extended eye tracking 90 Hz; Quest hand tracking fingertip error ~1 cm and
~40 ms latency, Abdlkarim et al. 2023; MEMS IMU datasheets (BMI088 / ICM-4xxxx class: gyro 0.004-0.015
deg/s/sqrt(Hz), accel 70-230 ug/sqrt(Hz)); HoloLens 2 long-throw ToF 320x288 at 5 fps; Magic Leap 2 ToF
544x480; Apple LiDAR 256x192; Project Aria: ET cameras, 2 IMUs at 800-1000 Hz, 7 microphones, SLAM pose).
Where a vendor publishes nothing (e.g. Vision Pro raw gaze precision) the value is a plausible estimate and
marked "est." in the comment. ``compute_gflops`` is a rough sustained figure for the trainer's device budgets.

The EEG cap is an add-on (``eeg_cap_8`` / ``eeg_cap_16`` / ``eeg_cap_32`` / ``eeg_cap_64``) combined with any
headset by :func:`with_addon` (``"quest_pro+eeg_cap_32"``); :func:`get_device` parses such names.
"""

from __future__ import annotations

from collections.abc import Mapping

from xrdata.errors import ValidationError
from xrdata.synth.types import DevicePreset, SensorSpec

__all__ = ["ADDONS", "DEVICES", "STREAM_MODALITY", "get_device", "scaled_sensors", "with_addon"]

#: Stream name -> modality (schemas/<modality>.json).
STREAM_MODALITY: dict[str, str] = {
    "gaze": "gaze", "hand": "hand", "head": "motion", "imu": "motion", "audio": "audio", "depth": "depth",
    "eeg": "eeg",
}

S = SensorSpec


def _gaze(rate: float, precision: float, accuracy: float, drift_h: float = 0.4) -> SensorSpec:
    return S("gaze", rate, {"precision_deg": precision, "accuracy_deg": accuracy,
                            "offset_drift_deg_per_h": drift_h, "clock_ppm_sd": 20.0})


def _hand(rate: float, err_m: float, latency_ms: float, fov: tuple[float, float] = (140.0, 110.0),
          loss_hz: float = 0.12) -> SensorSpec:
    return S("hand", rate, {"fingertip_error_m": err_m, "latency_ms": latency_ms, "fov_h_deg": fov[0],
                            "fov_v_deg": fov[1], "loss_rate_hz": loss_hz})


def _head(rate: float, pos_m: float = 0.0003, rot_deg: float = 0.005) -> SensorSpec:
    return S("motion", rate, {"position_noise_m": pos_m, "rotation_noise_deg": rot_deg, "jitter_ms": 0.2})


def _imu(rate: float, gyro_nd: float, accel_nd: float, gyro_walk: float = 2e-5, accel_walk: float = 2e-4,
         gyro_bi: float = 8e-5) -> SensorSpec:
    return S("motion", rate, {
        "gyro_noise_density": gyro_nd, "accel_noise_density": accel_nd, "gyro_bias_walk": gyro_walk,
        "accel_bias_walk": accel_walk, "gyro_bias_instability": gyro_bi,
        "gyro_turn_on_bias": 2e-3, "accel_turn_on_bias": 0.03,
    })


def _audio(rate: float, mics: int, self_noise: float = 33.0, full_scale: float = 120.0) -> SensorSpec:
    return S("audio", rate, {"dbspl_full_scale": full_scale, "self_noise_dba": self_noise,
                             "speech_level_db": 70.0, "channels_native": float(mics)})


def _depth(rate: float, kind: str, width: int, height: int, z_min: float, z_max: float,
           hfov: float) -> SensorSpec:
    return S("depth", rate, {"kind": kind, "width": float(width), "height": float(height), "z_min_m": z_min,
                             "z_max_m": z_max, "hfov_deg": hfov})


#: Devices by preset name. Keys are stable identifiers (lower case, no spaces).
DEVICES: dict[str, DevicePreset] = {
    # Meta Quest 3: no eye tracking; IR structured-light depth projector; hands 60 Hz (30 in low power).
    "quest_3": DevicePreset("quest_3", "VR/MR", {
        "head": _head(90.0),
        "imu": _imu(1000.0, 1.2e-4, 1.6e-3),
        "hand": _hand(60.0, 0.009, 38.0, (150.0, 120.0)),
        "audio": _audio(48000.0, 3),
        "depth": _depth(30.0, "structured_light", 320, 240, 0.5, 3.5, 70.0),  # Depth API ~ 320 px class
    }, compute_gflops=2500.0, memory_gb=8.0, battery_wh=19.4, latency_ms=35.0),
    # Meta Quest Pro: eye tracking ~72-90 Hz, accuracy ~1.6 deg (Wei et al. 2023); depth from stereo cameras,
    # modelled with the triangulation (structured-light) noise law.
    "quest_pro": DevicePreset("quest_pro", "MR", {
        "gaze": _gaze(90.0, 0.25, 1.6),
        "head": _head(90.0),
        "imu": _imu(1000.0, 1.2e-4, 1.6e-3),
        "hand": _hand(60.0, 0.011, 40.0, (140.0, 110.0)),
        "audio": _audio(48000.0, 3),
        "depth": _depth(30.0, "structured_light", 256, 192, 0.5, 3.5, 80.0),
    }, compute_gflops=1200.0, memory_gb=12.0, battery_wh=20.0, latency_ms=38.0),
    # Apple Vision Pro: LiDAR (dToF) 256x192 class, eye tracking (precision est.), hands 90 Hz.
    "vision_pro": DevicePreset("vision_pro", "MR", {
        "gaze": _gaze(90.0, 0.1, 0.8),
        "head": _head(90.0, 0.0002, 0.003),
        "imu": _imu(1000.0, 7e-5, 1.0e-3, gyro_bi=5e-5),
        "hand": _hand(90.0, 0.008, 25.0, (160.0, 120.0)),
        "audio": _audio(48000.0, 6, self_noise=30.0),
        "depth": _depth(30.0, "tof", 256, 192, 0.3, 5.0, 60.0),
    }, compute_gflops=3600.0, memory_gb=16.0, battery_wh=35.9, latency_ms=22.0),
    # Microsoft HoloLens 2: extended eye tracking 90 Hz (30 Hz default), hand tracking 45 Hz with a narrower
    # field of view, long-throw ToF 320x288 at 5 fps (Research Mode; AHAT short-throw 512x512 at 45 fps).
    "hololens_2": DevicePreset("hololens_2", "AR", {
        "gaze": _gaze(90.0, 0.3, 1.0, drift_h=0.6),
        "head": _head(60.0, 0.0005, 0.008),
        "imu": _imu(1000.0, 1.5e-4, 2.0e-3, gyro_walk=3e-5, accel_walk=3e-4),
        "hand": _hand(45.0, 0.015, 50.0, (100.0, 80.0), loss_hz=0.2),
        "audio": _audio(48000.0, 5),
        "depth": _depth(5.0, "tof", 320, 288, 0.5, 3.86, 75.0),
    }, compute_gflops=500.0, memory_gb=4.0, battery_wh=16.5, latency_ms=55.0),
    # Magic Leap 2: eye tracking 120 Hz (est. precision), ToF depth 544x480 (5-60 fps), hands 60 Hz.
    "magic_leap_2": DevicePreset("magic_leap_2", "AR", {
        "gaze": _gaze(120.0, 0.2, 1.0, drift_h=0.5),
        "head": _head(60.0, 0.0004, 0.006),
        "imu": _imu(1000.0, 1.2e-4, 1.5e-3),
        "hand": _hand(60.0, 0.012, 45.0, (110.0, 90.0), loss_hz=0.18),
        "audio": _audio(48000.0, 4),
        "depth": _depth(30.0, "tof", 544, 480, 0.3, 3.86, 75.0),
    }, compute_gflops=1500.0, memory_gb=16.0, battery_wh=25.0, latency_ms=45.0),
    # HTC Vive XR Elite: no built-in eye tracking, ToF depth sensor, hands 60 Hz.
    "vive_xr_elite": DevicePreset("vive_xr_elite", "VR/MR", {
        "head": _head(90.0),
        "imu": _imu(1000.0, 1.4e-4, 1.8e-3),
        "hand": _hand(60.0, 0.014, 45.0, (140.0, 110.0), loss_hz=0.15),
        "audio": _audio(48000.0, 2),
        "depth": _depth(30.0, "tof", 240, 180, 0.3, 3.86, 70.0),
    }, compute_gflops=1200.0, memory_gb=12.0, battery_wh=12.0, latency_ms=40.0),
    # Varjo XR-4: 200 Hz research-grade eye tracking (precision ~0.05 deg), Ultraleap hands 90 Hz, LiDAR;
    # tethered to a workstation.
    "varjo_xr4": DevicePreset("varjo_xr4", "VR/MR", {
        "gaze": _gaze(200.0, 0.06, 0.5, drift_h=0.3),
        "head": _head(90.0, 0.0002, 0.003),
        "imu": _imu(1000.0, 1.0e-4, 1.2e-3),
        "hand": _hand(90.0, 0.01, 30.0, (160.0, 130.0)),
        "audio": _audio(48000.0, 2, self_noise=30.0),
        "depth": _depth(30.0, "tof", 256, 192, 0.3, 5.0, 65.0),
    }, compute_gflops=20000.0, memory_gb=64.0, battery_wh=0.0, latency_ms=20.0),
    # Pico Neo 3 Pro Eye: Tobii eye tracking 90 Hz (precision ~0.1 deg), camera hand tracking of modest quality,
    # no depth sensor.
    "pico_neo3_pro_eye": DevicePreset("pico_neo3_pro_eye", "VR", {
        "gaze": _gaze(90.0, 0.1, 0.8, drift_h=0.4),
        "head": _head(72.0, 0.0004, 0.006),
        "imu": _imu(1000.0, 1.4e-4, 1.8e-3),
        "hand": _hand(30.0, 0.014, 60.0, (120.0, 90.0), loss_hz=0.25),
        "audio": _audio(48000.0, 2),
    }, compute_gflops=1200.0, memory_gb=6.0, battery_wh=20.3, latency_ms=45.0),
    # Project Aria-class research glasses: eye-tracking cameras, SLAM head pose, IMUs at 800-1000 Hz,
    # 7-microphone array; no hand tracking, no depth sensor, no display.
    "aria_glasses": DevicePreset("aria_glasses", "glasses", {
        "gaze": _gaze(90.0, 0.2, 1.5, drift_h=1.0),
        "head": _head(30.0, 0.001, 0.02),
        "imu": _imu(1000.0, 1.7e-4, 1.8e-3, gyro_walk=3e-5, accel_walk=3e-4),
        "audio": _audio(48000.0, 7),
    }, compute_gflops=100.0, memory_gb=4.0, battery_wh=2.5, latency_ms=120.0),
    # Camera + audio smart glasses (Ray-Ban Meta class): a 500 Hz IMU, a 5-mic array; no gaze, hands, pose or
    # depth; assistant round trips go through the phone / cloud (high latency).
    "smart_glasses": DevicePreset("smart_glasses", "glasses", {
        "imu": _imu(500.0, 2.4e-4, 2.3e-3, gyro_walk=4e-5, accel_walk=4e-4, gyro_bi=1.5e-4),
        "audio": _audio(16000.0, 5, self_noise=35.0),
    }, compute_gflops=50.0, memory_gb=2.0, battery_wh=0.6, latency_ms=250.0),
}


def _eeg_cap(channels: int, rate: float) -> DevicePreset:
    return DevicePreset(f"eeg_cap_{channels}", "add-on", {
        "eeg": S("eeg", rate, {"channels": float(channels), "line_noise": 1.0, "line_noise_uv": 4.0,
                               "reference": "linked_mastoids"}),
    }, compute_gflops=0.0, memory_gb=0.0, battery_wh=5.0, latency_ms=0.0)


#: Add-ons that can be combined with any headset (research EEG caps / headbands, 8-64 channels).
ADDONS: dict[str, DevicePreset] = {
    "eeg_cap_8": _eeg_cap(8, 250.0),  # dry headband class
    "eeg_cap_16": _eeg_cap(16, 250.0),
    "eeg_cap_32": _eeg_cap(32, 500.0),  # gel cap, actiCAP-like layout
    "eeg_cap_64": _eeg_cap(64, 500.0),
}


def with_addon(device: DevicePreset, addon: DevicePreset | str) -> DevicePreset:
    """``device`` with the sensors of ``addon`` added (an add-on never replaces a sensor the device has)."""
    add = ADDONS[addon] if isinstance(addon, str) else addon
    sensors: dict[str, SensorSpec] = dict(device.sensors)
    for key, spec in add.sensors.items():
        sensors.setdefault(key, spec)
    return DevicePreset(
        f"{device.name}+{add.name}", device.kind, sensors, compute_gflops=device.compute_gflops,
        memory_gb=device.memory_gb, battery_wh=device.battery_wh, latency_ms=device.latency_ms,
        addons=(*device.addons, add.name),
    )


def get_device(name: str) -> DevicePreset:
    """A preset by name; ``"<device>+<addon>"`` combines a device with add-ons (e.g. ``quest_pro+eeg_cap_32``)."""
    base, *adds = name.split("+")
    if base not in DEVICES:
        raise ValidationError(f"unknown device preset {base!r}; known: {', '.join(sorted(DEVICES))}")
    dev = DEVICES[base]
    for a in adds:
        if a not in ADDONS:
            raise ValidationError(f"unknown add-on {a!r}; known: {', '.join(sorted(ADDONS))}")
        dev = with_addon(dev, a)
    return dev


def scaled_sensors(
    device: DevicePreset, *, audio_rate_hz: float | None = None, depth_fps: float | None = None,
    depth_max_width: int | None = None, streams: tuple[str, ...] | None = None,
) -> DevicePreset:
    """``device`` with the synthesizer's cost knobs applied: audio resampled to ``audio_rate_hz``, depth frame
    rate capped at ``depth_fps`` and width at ``depth_max_width`` (aspect kept), and only ``streams`` kept."""
    sensors: dict[str, SensorSpec] = {}
    for key, spec in device.sensors.items():
        if streams is not None and key not in streams:
            continue
        params: Mapping[str, float | str] = spec.params
        rate = spec.rate_hz
        if key == "audio" and audio_rate_hz is not None:
            rate = float(audio_rate_hz)
        if key == "depth":
            if depth_fps is not None:
                rate = min(rate, float(depth_fps))
            w, h = float(params.get("width", 256)), float(params.get("height", 192))
            if depth_max_width is not None and w > depth_max_width:
                k = depth_max_width / w
                params = {**params, "width": float(round(w * k)), "height": float(round(h * k))}
        sensors[key] = SensorSpec(spec.modality, rate, params) if (rate, params) != (spec.rate_hz, spec.params) \
            else spec
    return DevicePreset(device.name, device.kind, sensors, compute_gflops=device.compute_gflops,
                        memory_gb=device.memory_gb, battery_wh=device.battery_wh, latency_ms=device.latency_ms,
                        addons=device.addons)
