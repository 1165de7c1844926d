"""``litrag serve`` refuses a bad configuration with exit 2 and the setting's error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from core.config import get_settings
from service.cli import register


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_serve_with_a_bad_setting_exits_2(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("LITRAG_SERVICE__PORT", "not-a-port")
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """litrag (test root)."""

    register(root)
    res = CliRunner().invoke(root, ["serve"])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "configuration error" in out and "service.port" in out and "int_parsing" in out
