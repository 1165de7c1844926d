"""What the job worker has done since the service started, for ``/metrics``: jobs ended by final
state, and documents and chunks its jobs stored (counted as each job progresses, so a long job
moves the counters while it runs)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from core.jobs import JobCounts, JobState


@dataclass(frozen=True)
class JobStats:
    """A snapshot of the job queue and its counters."""

    queued: int
    running: int
    queue_limit: int
    #: jobs that ended since the service started, by final state
    ended: dict[str, int] = field(default_factory=dict)
    #: documents stored by jobs since the service started, by source type
    documents: dict[str, int] = field(default_factory=dict)
    chunks: int = 0


class JobTally:
    """Thread-safe counters: jobs ended by state, documents and chunks stored by jobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ended: Counter[str] = Counter()
        self._documents: Counter[str] = Counter()
        self._chunks = 0
        # the most the running job has reported so far (already counted): reports come from
        # two pipeline threads and may arrive out of order
        self._run_documents: Counter[str] = Counter()
        self._run_chunks = 0

    def ended(self, state: JobState) -> None:
        """One more job ended in ``state``."""
        with self._lock:
            self._ended[state] += 1

    def run_started(self) -> None:
        """A job (or its rerun) starts: its counts start from zero."""
        with self._lock:
            self._run_documents = Counter()
            self._run_chunks = 0

    def progress(self, counts: JobCounts) -> None:
        """The running job's counters now: add what is new since its last report."""
        with self._lock:
            for source_type, n in counts.documents.items():
                new = n - self._run_documents[source_type]
                if new > 0:
                    self._documents[source_type] += new
                    self._run_documents[source_type] = n
            if counts.chunks > self._run_chunks:
                self._chunks += counts.chunks - self._run_chunks
                self._run_chunks = counts.chunks

    def snapshot(self, queued: int, running: int, queue_limit: int) -> JobStats:
        """The counters with the queue's current state."""
        with self._lock:
            return JobStats(
                queued=queued,
                running=running,
                queue_limit=queue_limit,
                ended=dict(self._ended),
                documents=dict(self._documents),
                chunks=self._chunks,
            )


def progress_of(counts: JobCounts) -> int:
    """How far a run's counters are (each only grows during a run): of two snapshots of one run,
    the later one is at least as far."""
    return (
        counts.stored_documents
        + counts.chunks
        + counts.unchanged
        + counts.duplicates
        + counts.failures
        + counts.skipped_files
        + counts.relinked
    )
