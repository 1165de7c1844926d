"""One exception hierarchy for the whole project; entry points map it to exit codes / HTTP codes."""

from __future__ import annotations


class LitragError(Exception):
    """Base of every error litrag raises on purpose."""


class ConfigError(LitragError):
    """Invalid or inconsistent configuration (exit code 2 at the CLI)."""


class ParseError(LitragError):
    """A whole input could not be parsed. ``path`` names the file (and archive member)."""

    def __init__(self, path: str, reason: str, record: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.record = record
        where = f"{path} [{record}]" if record else path
        super().__init__(f"{where}: {reason}")


class StoreError(LitragError):
    """The vector store failed (unreachable, timeout, rejected a write)."""


class StoreLockedError(StoreError):
    """An embedded store is already opened by another process."""


class StoreMismatchError(StoreError):
    """A collection was built with another embedding model or chunking settings."""


class EmbeddingError(LitragError):
    """The embedding model could not be loaded or used."""
