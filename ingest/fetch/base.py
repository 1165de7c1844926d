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
from ingest.fetch.compact import maybe_compact
from ingest.fetch.gone import gone_ids, last_file, move_to_gone, unpruned
from ingest.fetch.http import PoliteClient, RetryPolicy
from ingest.fetch.manifest import (
    STATUSES,
    Manifest,
    ManifestError,
    Record,
    Run,
    Status,
    now_iso,
    sha256,
    write_atomic,
)

log = logging.getLogger(__name__)

#: Identifiers become file names: only these shapes are accepted from a response.
_SAFE_ID = re.compile(r"^(PMC\d{1,12}|\d{1,12}|NCT\d{8})$", re.ASCII)


class SourceError(LitragError):
    """A source answered, but with an error (E-utilities ``<ERROR>``, an unreadable page)."""


@dataclass(slots=True)
class FetchStats:
    """What one run did."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    listed: int = 0  # ids or studies the search returned this run
    search: str = ""  # what was listed: "complete listing", "changed since 2024-05-01", …
    resumed: bool = False
    finished: bool = False  # False: interrupted or cut by --max; the next run resumes
    compacted: tuple[int, int] | None = None  # manifest lines before and after compaction
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
    prune: bool = False  # move the files of gone documents into OUT_DIR/.gone/

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
        runs resume by them); a listing that is re-read in full (CT.gov) leaves them out, except
        the first time this query lists the document (so the query owns it: see ``gone``).
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
        owned = self.manifest.owns(run.scope, doc_id)
        if status != "unchanged" or record_unchanged or not owned:
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

    def finish(self, run: Run, listing: set[str] | None) -> None:
        """End ``run``: with the query's complete ``listing`` (doc ids), mark what it lacks gone
        (and move the files with ``prune``); record ``done``; compact the manifest if it grew."""
        if listing is not None:
            self._mark_gone(run, listing)
        elif self.prune:
            self.stats.warnings.append(
                "--prune: this run did not list the query completely; nothing was marked gone"
            )
        self.manifest.finish(run, self.stats.counts)
        self.stats.finished = True
        try:
            self.stats.compacted = maybe_compact(self.manifest)
        except ManifestError as exc:  # the old manifest is intact: compact next time
            self.stats.warnings.append(str(exc))

    def _mark_gone(self, run: Run, listing: set[str]) -> None:
        ids = gone_ids(self.manifest, run, listing)
        if ids and not listing:
            self.stats.warnings.append(
                f"the complete listing is empty: the {len(ids)} documents of this query are not "
                "marked gone (an empty answer is likelier an error than every record withdrawn)"
            )
            return
        for doc_id in ids:
            have = last_file(self.manifest, run.source, doc_id)
            reason = "no longer listed by the query"
            self._gone(run, doc_id, have, reason)
        if self.prune:  # also documents marked gone by an earlier run without --prune
            for record in unpruned(self.manifest, run):
                self._gone(run, record.id, record, record.reason or "no longer listed")

    def _gone(self, run: Run, doc_id: str, have: Record | None, reason: str) -> None:
        file = have.file if have else None
        if self.prune and file:
            moved = move_to_gone(self.out_dir, file)
            reason += f"; file moved to {moved}" if moved else f"; file {file} was missing"
            file = moved
        version, digest = (have.version, have.sha256) if have else (None, None)
        self._record(
            Record(run.source, doc_id, "gone", run.run, now_iso(), version, digest, file, reason)
        )

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
    (NCBI and CT.gov dates are whole days in US Eastern time), or ``since`` if that is later."""
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
