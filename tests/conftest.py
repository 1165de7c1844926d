"""Shared fixtures: real data from ../shared/data (or $LITRAG_SHARED_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LITRAG_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real-data folder (corpus/, eval/)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set LITRAG_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def corpus(shared_data: Path) -> Path:
    """../shared/data/corpus."""
    return shared_data / "corpus"
