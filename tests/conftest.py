"""Shared pytest configuration: hypothesis profiles and the real-recording fixtures.

``ci`` (selected when the CI environment variable is set) is deterministic so a CI failure reproduces;
``dev`` is the default locally. Real recordings are read in place from ``XRDATA_FIXTURES`` (default
``../shared/fixtures`` next to the checkout); tests that need them skip when they are absent, except under
CI, where their absence is a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50)
settings.register_profile("dev", deadline=None, max_examples=30)
settings.register_profile("deep", deadline=None, max_examples=400)  # bug hunts: --hypothesis-profile=deep
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parents[1]


def _fixtures_path() -> Path:
    return Path(os.environ.get("XRDATA_FIXTURES", ROOT.parent / "shared" / "fixtures")).resolve()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder of real recordings; skips (or fails under CI) when it is missing."""
    path = _fixtures_path()
    if not (path / "REFERENCE.json").is_file():
        message = f"real-recording fixtures not found at {path} (set XRDATA_FIXTURES to their folder)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def reference(fixtures_dir: Path) -> dict[str, Any]:
    """REFERENCE.json: what the reference readers returned for each fixture."""
    ref: dict[str, Any] = json.loads((fixtures_dir / "REFERENCE.json").read_text())
    return ref
