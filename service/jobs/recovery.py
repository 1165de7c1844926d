"""What the job worker does at start with the records a previous process left behind.

- queued, or running when the process died: queued again; the rerun repairs the store (the
  pipeline skips what is stored as it is and rewrites the rest);
- running during each of its ``MAX_ATTEMPTS`` runs (e.g. a file that exhausts memory): failed
  with that reason instead of taking the service down at every restart (files kept);
- asked to cancel (``DELETE /v1/jobs/{id}``) but not stopped yet when the process died:
  cancelled, never run again;
- ended (succeeded, failed, cancelled): left as it is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from core.jobs import JobSummary

log = logging.getLogger("litrag.service")

#: Runs a job gets when the service keeps dying during it: after that it is failed at start.
MAX_ATTEMPTS = 3


def recover(job: JobSummary) -> JobSummary:
    """The record ``job`` as this start leaves it (``queued``: it runs again)."""
    if job.state not in ("queued", "running"):
        return job
    if job.cancel_requested_at is not None:
        log.warning("job %s was being cancelled when the service stopped: cancelled", job.id)
        return job.model_copy(
            update={"state": "cancelled", "phase": "", "finished_at": datetime.now(UTC)}
        )
    if job.state == "running" and job.attempts >= MAX_ATTEMPTS:
        job = job.model_copy(
            update={
                "state": "failed",
                "phase": "",
                "finished_at": datetime.now(UTC),
                "error": f"the service stopped during each of this job's {job.attempts} "
                "runs; it is not run again (its files are kept for a rerun by hand)",
            }
        )
        log.error("job %s: %s", job.id, job.error)
        return job
    if job.state == "running":
        log.warning("job %s was running when the service stopped: running it again", job.id)
    return job.model_copy(update={"state": "queued", "phase": ""})
