"""Shared pytest configuration: hypothesis profiles.

``ci`` (selected when the CI environment variable is set) is deterministic so a CI failure reproduces;
``dev`` is the default locally.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
