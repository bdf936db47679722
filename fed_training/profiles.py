"""Device profiles for the XR metrics: compute speed, power, radio, storage budget per class of device.

The constants are estimates, stated with where they come from, so the energy and on-device time figures
are reproducible and can be replaced by measurements on real devices:

- ``speed``: training/inference throughput relative to one core of the machine the trainer runs on (x86
  server core = 1.0). XR2-class headsets run PyTorch-mobile-style float workloads on their big CPU cores at
  roughly half of a server core; the AR headsets' older SoCs (Snapdragon 850 in HoloLens 2, a 2019 AMD
  Zen 2 APU in Magic Leap 2) a third; glasses-class SoCs (AR1 Gen 1) about a tenth.
- ``power_w``: average system power while computing, from battery energy / rated active runtime in the
  manufacturers' specifications (Quest 3: 19.4 Wh, ~2.2 h -> 8.8 W; HoloLens 2: 16.5 Wh, 2-3 h -> 6.6 W;
  Vision Pro external battery 35.9 Wh, ~2 h -> 18 W; Ray-Ban Meta-class glasses: ~0.6 Wh, ~4 h -> 0.15 W
  average, compute bursts ~1 W used here).
- Radio: Wi-Fi power model of Huang et al., "A Close Examination of Performance and Power Characteristics of
  4G LTE Networks", MobiSys 2012, Table 4: uplink power ``alpha_u * throughput + beta`` with
  alpha_u = 283.17 mW/Mbps, downlink alpha_d = 137.01 mW/Mbps, beta = 132.86 mW; the throughput is the
  profile's ``uplink_mbps`` / ``downlink_mbps``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "DeviceProfile", "profile_for", "radio_energy_j"]

WIFI_ALPHA_UP_W_PER_MBPS = 0.28317
WIFI_ALPHA_DOWN_W_PER_MBPS = 0.13701
WIFI_BETA_W = 0.13286


@dataclass(frozen=True)
class DeviceProfile:
    """One class of device (see the module docstring for the constants' sources)."""

    name: str
    speed: float  # compute throughput relative to one host core
    power_w: float  # system power while computing (W)
    uplink_mbps: float  # sustained Wi-Fi uplink (Mbit/s)
    downlink_mbps: float  # sustained Wi-Fi downlink (Mbit/s)
    battery_wh: float  # battery energy (Wh), for "% of battery" figures


PROFILES: dict[str, DeviceProfile] = {
    "tethered_headset": DeviceProfile("tethered_headset", 1.0, 18.0, 100.0, 200.0, 35.9),  # Vision Pro, Varjo
    "standalone_headset": DeviceProfile("standalone_headset", 0.5, 8.8, 50.0, 100.0, 19.4),  # Quest, Pico, Vive
    "ar_headset": DeviceProfile("ar_headset", 0.33, 6.6, 30.0, 60.0, 16.5),  # HoloLens 2, Magic Leap 2
    "glasses": DeviceProfile("glasses", 0.1, 1.0, 10.0, 20.0, 0.6),  # smart glasses, Aria-class
}

_BY_DEVICE = {
    "vision_pro": "tethered_headset", "varjo_xr4": "tethered_headset", "galaxy_xr": "standalone_headset",
    "quest_3": "standalone_headset", "quest_pro": "standalone_headset", "vive_xr_elite": "standalone_headset",
    "pico_neo3_pro_eye": "standalone_headset", "pico_4": "standalone_headset",
    "hololens_2": "ar_headset", "magic_leap_2": "ar_headset",
    "smart_glasses": "glasses", "aria_glasses": "glasses", "aria": "glasses",
}


def profile_for(device: str | None) -> DeviceProfile:
    """The profile of a device preset name (``quest_pro+eeg_cap_32`` -> its base device; unknown ->
    standalone headset, the most common class)."""
    base = (device or "").split("+")[0]
    for key, prof in _BY_DEVICE.items():
        if base.startswith(key):
            return PROFILES[prof]
    if "glass" in base:
        return PROFILES["glasses"]
    return PROFILES["standalone_headset"]


def radio_energy_j(bytes_up: float, bytes_down: float, profile: DeviceProfile) -> float:
    """Wi-Fi energy (J) to send ``bytes_up`` and receive ``bytes_down`` at the profile's throughputs."""
    t_up = bytes_up * 8 / (profile.uplink_mbps * 1e6)
    t_down = bytes_down * 8 / (profile.downlink_mbps * 1e6)
    p_up = WIFI_ALPHA_UP_W_PER_MBPS * profile.uplink_mbps + WIFI_BETA_W
    p_down = WIFI_ALPHA_DOWN_W_PER_MBPS * profile.downlink_mbps + WIFI_BETA_W
    return t_up * p_up + t_down * p_down
