"""Synthetic longitudinal multi-user XR cohorts written to an xrdata store.

Public API::

    generate(config, store, workers=None, progress=False)   plan + generate + write a cohort; ground truth
                                                             under <store>/ground_truth/ (read_ground_truth)
    SynthConfig, config_from_preset(name, **overrides)       every knob; presets by name
    PRESETS                                                  quickstart, benchmark, benchmark_bursty, neuro,
                                                             industrial
    DEVICES                                                  device presets (headsets, glasses; EEG caps in
                                                             xrdata.synth.devices.ADDONS)
    read_ground_truth(store, table)                          a ground-truth table as a polars frame

Importing this package stays light (numpy, polars and the core only): the signal generators (which need
scipy) are imported by :func:`generate` when it runs.
"""

from __future__ import annotations

from xrdata.synth.devices import DEVICES
from xrdata.synth.generate import GenerateResult, generate, read_ground_truth
from xrdata.synth.presets import PRESETS, SynthConfig, config_from_preset

# ``generate`` is both a submodule and a function: importing the function here, after the submodule, keeps the
# package attribute the function (a later ``import xrdata.synth.generate`` does not rebind it).
__all__ = ["DEVICES", "PRESETS", "GenerateResult", "SynthConfig", "config_from_preset", "generate",
           "read_ground_truth"]
