"""Ingest jobs of the service: uploads spooled to disk (spool), records kept on disk (records),
one worker thread running them in order (manager)."""

from __future__ import annotations

from service.jobs.manager import JobManager, JobResources
from service.jobs.records import JobFolder

__all__ = ["JobFolder", "JobManager", "JobResources"]
