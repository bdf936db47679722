"""Readers of real recordings (XDF, EEG files, audio, depth, Pupil Labs, Aria, Unity/OpenXR logs) -> Recording."""
