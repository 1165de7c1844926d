"""Reading back what a fetch wrote: manifest events and parsed documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.config import IngestSettings
from ingest.fetch.manifest import MANIFEST_NAME
from ingest.formats import parse_source
from ingest.parsers.base import Source


def events(out: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The manifest's events (of one kind)."""
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    found = [json.loads(line) for line in lines if line.strip()]
    return [e for e in found if kind is None or e["type"] == kind]


def records(out: Path) -> dict[str, dict[str, Any]]:
    """The last record event of each document id."""
    return {e["id"]: e for e in events(out, "record")}


def doc_ids(path: Path) -> list[str]:
    """The document ids litrag's parsers read from one fetched file."""
    results = list(parse_source(Source(str(path), path.read_bytes()), IngestSettings()))
    return [r.doc_id for r in results]  # type: ignore[union-attr]
