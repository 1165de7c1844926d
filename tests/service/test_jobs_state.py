"""The service's State around ingest jobs: the store is never reopened once it is closed (a real
Edge store and the real embedding model), and a jobs folder that cannot be written at start
leaves searches up (a real uvicorn on a copy of the session store)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.errors import StoreError
from core.jobs import JobSummary
from core.sparse import SparseEncoder
from service.jobs import JobFolder
from service.state import State
from tests.service.conftest import base_settings
from tests.service.test_jobs import AUTH, search, serve_copy


def test_the_store_is_not_reopened_after_close(tmp_path: Path, embedder: Any) -> None:
    """A job or upload asking for the store during shutdown gets a StoreError, not a store that
    is opened again and never closed (its lock held until the process ends)."""
    state = State(settings=base_settings(tmp_path / "store"))
    state.embedder = embedder
    state.sparse = SparseEncoder(state.settings.sparse)
    assert state.ensure_store() is state.store  # created: the first upload does this
    state.close()
    with pytest.raises(StoreError, match="stopping"):
        state.ensure_store()
    with pytest.raises(StoreError, match="stopping"):
        state.job_resources()
    assert state.store is None
    other = State(settings=base_settings(tmp_path / "store"))  # the lock is free
    other.embedder, other.sparse = embedder, state.sparse
    try:
        assert other.ensure_store() is not None
    finally:
        other.close()


def test_a_jobs_folder_that_cannot_be_written_leaves_searches_up(
    store_path: Path, tmp_path: Path
) -> None:
    """Saving a recovered record fails at start (here its temporary file's name is taken by a
    folder, as a read-only or full disk fails it): uploads answer why, searches go on (before,
    the service did not start)."""
    folder = JobFolder(tmp_path / "jobs")
    job_id = "20261130T000000000000-aaaaaa"
    folder.save(JobSummary(id=job_id, state="running", created_at=datetime.now(UTC), attempts=1))
    (folder.records / f"{job_id}.json.tmp").mkdir()
    with serve_copy(store_path, tmp_path / "store", jobs_dir=str(folder.root)) as live:
        hits = search(live.url, "hypertension")
        assert hits.status_code == 200, hits.text
        up = httpx.post(
            f"{live.url}/v1/documents", files=[("files", ("a.xml", b"<a/>"))], headers=AUTH
        )
        assert up.status_code == 503, up.text
        assert "ingest jobs unavailable" in up.json()["error"]["message"]
