"""The live service (real store, real uvicorn on loopback) and the browser for the browser
tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.server import Live, live_service

CHROMIUM = Path("/usr/bin/chromium")
# The flags this machine needs: without the background-networking ones Chromium keeps trying
# (and failing) to reach Google's hosts through the closed network.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """Base URL and API key of the running service."""
    return live_service(tmp_path_factory, request)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright (one for all browser tests)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get update && apt-get install -y chromium` (scripts/test.sh does this when run "
            "as root). Playwright's own browser download is not used."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()
