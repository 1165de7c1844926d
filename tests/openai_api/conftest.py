"""The live service (real store, real uvicorn on loopback) for the OpenAI client tests."""

from __future__ import annotations

import pytest

from tests.web.server import Live, live_service


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """Base URL and API key of the running service."""
    return live_service(tmp_path_factory, request)
