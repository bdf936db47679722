"""Readers of real recordings -> :class:`xrdata.Recording`.

One thin ``read_<format>(path, *, user_id=..., session_id=None, ...)`` per format over the format's
reference library (pyxdf, mne, soundfile, opencv ...), and :func:`read` that picks the reader by suffix or
content. Every reader raises only :class:`xrdata.errors.LoaderError` (naming the file) on bad input. The
libraries are imported inside the readers, so importing this package stays light.
"""

from __future__ import annotations

from xrdata.loaders._registry import READERS, ReaderInfo, default_session_id, read, resolve
from xrdata.loaders.aria import (
    read_aria_eye_gaze,
    read_aria_hand_tracking,
    read_aria_mps,
    read_aria_online_calibration,
    read_aria_speech,
    read_aria_trajectory,
)
from xrdata.loaders.audio import read_audio
from xrdata.loaders.bids import export_bids, iter_bids, read_bids
from xrdata.loaders.depth import read_depth
from xrdata.loaders.eeg import read_bdf, read_brainvision, read_edf, read_eeglab, read_fif
from xrdata.loaders.ingest import ingest
from xrdata.loaders.pupil import read_pupil_cloud, read_pupil_core, read_pupil_neon
from xrdata.loaders.tabular import available_mappings, read_table
from xrdata.loaders.xdf import read_xdf

__all__ = [
    "READERS",
    "ReaderInfo",
    "available_mappings",
    "default_session_id",
    "export_bids",
    "ingest",
    "iter_bids",
    "read",
    "read_aria_eye_gaze",
    "read_aria_hand_tracking",
    "read_aria_mps",
    "read_aria_online_calibration",
    "read_aria_speech",
    "read_aria_trajectory",
    "read_audio",
    "read_bdf",
    "read_bids",
    "read_brainvision",
    "read_depth",
    "read_edf",
    "read_eeglab",
    "read_fif",
    "read_pupil_cloud",
    "read_pupil_core",
    "read_pupil_neon",
    "read_table",
    "read_xdf",
    "resolve",
]
