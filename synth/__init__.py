"""Synthetic longitudinal multi-user XR cohorts written to an xrdata store."""
