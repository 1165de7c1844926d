"""``litrag service``: placeholder registration until the service package is built."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Nothing to add yet."""
    del app
