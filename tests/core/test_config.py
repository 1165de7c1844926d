"""Settings: nested LITRAG_ variables, .env, and clear errors for unknown or invalid values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import Settings


def test_nested_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITRAG_STORE__BACKEND", "qdrant")
    monkeypatch.setenv("LITRAG_STORE__URL", "http://qdrant:6333")
    monkeypatch.setenv("LITRAG_CHUNKING__MAX_TOKENS", "150")
    s = Settings()
    assert s.store.backend == "qdrant" and s.store.url == "http://qdrant:6333"
    assert s.chunking.max_tokens == 150 and s.chunking.overlap_tokens == 32


def test_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LITRAG_STORE__PATH=/data/litrag\n")
    assert Settings().store.path == Path("/data/litrag")


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITRAG_STORE__BACKEND", "chroma")
    with pytest.raises(ValidationError, match="backend"):
        Settings()
    monkeypatch.delenv("LITRAG_STORE__BACKEND")
    with pytest.raises(ValidationError, match="extra"):
        Settings.model_validate({"store": {"colection": "typo"}})
