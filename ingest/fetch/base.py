"""Shared by every source: the job (client, manifest, settings), its counts, storing a document."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from core.config import FetchSettings
from core.errors import LitragError
from ingest.fetch.http import PoliteClient, RetryPolicy
from ingest.fetch.manifest import Manifest, Record, Run, Status, now_iso, sha256, write_atomic

log = logging.getLogger(__name__)

#: Identifiers become file names: only these shapes are accepted from a response.
_SAFE_ID = re.compile(r"^(PMC\d{1,12}|\d{1,12}|NCT\d{8})$")


class SourceError(LitragError):
    """A source answered, but with an error (E-utilities ``<ERROR>``, an unreadable page)."""


@dataclass(slots=True)
class FetchStats:
    """What one run did."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("fetched", "updated", "unchanged", "skipped", "failed"), 0
        )
    )
    listed: int = 0  # ids or studies the search returned this run
    resumed: bool = False
    finished: bool = False  # False: interrupted or cut by --max; the next run resumes
    written: list[Path] = field(default_factory=list)  # files new or changed in this run
    warnings: list[str] = field(default_factory=list)
    problems: list[Record] = field(default_factory=list)  # skipped and failed records


@dataclass(slots=True)
class Job:
    """One ``litrag fetch`` invocation: settings, the polite client, the manifest, the counts."""

    settings: FetchSettings
    client: PoliteClient
    manifest: Manifest
    stats: FetchStats = field(default_factory=FetchStats)
    on_record: Callable[[Record], None] | None = None

    @property
    def out_dir(self) -> Path:
        """Where documents are written."""
        return self.manifest.out_dir

    def store(
        self,
        run: Run,
        source: str,
        doc_id: str,
        file_name: str,
        data: bytes,
        version: str | None,
        *,
        record_unchanged: bool,
    ) -> Status:
        """Write ``data`` unless the same bytes are already there; record what happened.

        ``record_unchanged`` also writes a manifest line for an unchanged document (E-utilities
        runs resume by them); a listing that is re-read in full (CT.gov) leaves them out.
        """
        digest = sha256(data)
        path = self.out_dir / file_name
        previous = self.manifest.have(source, doc_id)
        status: Status
        if previous and previous.sha256 == digest and path.is_file():
            status = "unchanged"
        else:
            write_atomic(path, data)
            self.stats.written.append(path)
            status = "updated" if previous else "fetched"
        if status != "unchanged" or record_unchanged:
            self._record(
                Record(source, doc_id, status, run.run, now_iso(), version, digest, file_name)
            )
        else:
            self.stats.counts[status] += 1
        return status

    def skip(self, run: Run, source: str, doc_id: str, reason: str, *, failed: bool) -> None:
        """Record a document that was not written, and why."""
        status: Status = "failed" if failed else "skipped"
        self._record(Record(source, doc_id, status, run.run, now_iso(), reason=reason))

    def _record(self, record: Record) -> None:
        self.manifest.add(record)
        self.stats.counts[record.status] += 1
        if record.status in ("skipped", "failed"):
            self.stats.problems.append(record)
        if self.on_record:
            self.on_record(record)


def make_client(settings: FetchSettings) -> PoliteClient:
    """The polite client for NCBI and ClinicalTrials.gov with the configured rates and retries."""
    contact = f"; mailto:{settings.email}" if settings.email else ""
    return PoliteClient(
        rates={"ncbi": settings.ncbi_rate(), "ctgov": settings.ctgov_requests_per_second},
        policy=RetryPolicy(
            settings.retries, settings.backoff_s, settings.max_backoff_s, settings.max_retry_after_s
        ),
        timeout_s=settings.timeout_s,
        user_agent=f"litrag-fetch/0.1 ({settings.tool}{contact})",
    )


def safe_id(value: str, what: str) -> str:
    """``value`` if it is an identifier fit for a file name, else :class:`SourceError`."""
    value = value.strip()
    if not _SAFE_ID.match(value):
        raise SourceError(f"unexpected {what} {value[:40]!r} in the response")
    return value


def parse_since(text: str) -> date:
    """A ``--since`` date: YYYY-MM-DD or YYYY/MM/DD."""
    for sep in ("-", "/"):
        parts = text.strip().split(sep)
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            try:
                return date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError as exc:
                raise ValueError(f"invalid date {text!r}: {exc}") from None
    raise ValueError(f"invalid date {text!r}: expected YYYY-MM-DD")


def incremental_since(last_started: str, since: date | None) -> date:
    """Where an incremental run's listing starts: the day before the last finished run began
    (NCBI dates are whole days in US Eastern time), or ``since`` if that is later."""
    day = date.fromisoformat(last_started[:10]) - timedelta(days=1)
    return max(day, since) if since else day


__all__ = [
    "FetchStats",
    "Job",
    "SourceError",
    "incremental_since",
    "make_client",
    "parse_since",
    "safe_id",
]
