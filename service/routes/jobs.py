"""Uploads and ingest jobs: ``POST /v1/documents`` spools files and queues a job that ingests them
while the service answers; ``GET /v1/jobs/{id}`` follows it, ``GET /v1/jobs`` lists recent ones,
``DELETE /v1/jobs/{id}`` cancels it."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from core.errors import LitragError
from core.jobs import Job, JobList
from service.deps import AuthDep, StateDep
from service.errors import ClientClosed, error_responses
from service.jobs import JobManager
from service.jobs.spool import not_stored, receive_upload
from service.state import State


class _SharedPathRoute(APIRoute):
    """A route whose ``405`` lists every method served at its path in ``Allow``: Starlette lists
    only the route's own, and GET and DELETE ``/v1/jobs/{job_id}`` are two routes."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            methods = {
                m
                for r in router.routes
                if isinstance(r, APIRoute) and r.path == self.path
                for m in r.methods or ()
            }
            allow = ", ".join(sorted(methods | self.methods))
            raise StarletteHTTPException(405, headers={"Allow": allow})
        await super().handle(scope, receive, send)


router = APIRouter(
    prefix="/v1", tags=["ingest jobs"], dependencies=[AuthDep], route_class=_SharedPathRoute
)

UPLOAD_PATH = "/v1/documents"

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "additionalProperties": False,
                    "properties": {
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary"},
                            "description": "One part per file (any field name; each part needs a "
                            "filename, folders in it are kept): JATS/NLM XML, PDF, "
                            "ClinicalTrials.gov JSON/XML, MEDLINE XML, .gz, .tar(.gz), .zip",
                        }
                    },
                },
                "encoding": {"files": {"contentType": "application/octet-stream"}},
            }
        },
    }
}

_JOB_EXAMPLE = {
    "id": "20261130T071500123456-1a2b3c",
    "state": "queued",
    "created_at": "2026-11-30T07:15:00Z",
    "files": [{"name": "trials/NCT04267848.json", "bytes": 368930}],
    "total_bytes": 368930,
    "counts": {"documents": {}, "chunks": 0, "failures": 0, "stored_documents": 0},
    "entries_total": 0,
    "attempts": 0,
    "position": 0,
}


def _jobs(state: State) -> JobManager:
    if state.jobs is None:
        raise LitragError(state.jobs_error or "ingest jobs are not available")
    return state.jobs


@router.post(
    "/documents",
    summary="Upload files and start an ingest job",
    status_code=202,
    response_model=Job,
    openapi_extra=_UPLOAD_BODY,
    responses={
        202: {
            "description": "The files are spooled and the job queued (Location: its URL)",
            "content": {"application/json": {"example": _JOB_EXAMPLE}},
            "links": {
                "GetJob": {
                    "operationId": "get_job",
                    "parameters": {"job_id": "$response.body#/id"},
                    "description": "The job this upload started",
                },
                "CancelJob": {
                    "operationId": "cancel_job",
                    "parameters": {"job_id": "$response.body#/id"},
                    "description": "Cancel the job this upload started",
                },
            },
        },
        **error_responses(401, 413, 422, 429),
        400: {
            "model": error_responses(400)[400]["model"],
            "description": "Multipart body unreadable or cut short (invalid_multipart)",
        },
        415: {
            "model": error_responses(415)[415]["model"],
            "description": "Body sent as something other than multipart/form-data",
        },
        503: {
            "model": error_responses(503)[503]["model"],
            "description": "Store or ingest jobs unavailable, or the upload could not be written "
            "to the jobs folder: disk full, not writable (upload_not_stored; no job, nothing "
            "kept)",
        },
    },
)
async def upload(request: Request, state: StateDep) -> JSONResponse:
    """Spool the uploaded files (every format ``litrag ingest`` reads; archives are read as
    archives) and queue an ingest job for them; answers once the whole upload is on disk.

    One job runs at a time (later ones wait, at most ``service.max_queued_jobs``); searches
    and answers go on meanwhile and see each document once it is written. The job survives a
    client that disconnects after this answer; an upload cut short queues nothing. Limits:
    ``service.max_upload_bytes`` per request, ``max_upload_file_bytes`` per file,
    ``max_upload_files`` files (413). When the service has no collection yet, the first upload
    creates it.
    """
    jobs = _jobs(state)
    jobs.check_room()
    await run_in_threadpool(state.ensure_store)
    try:
        folder = await run_in_threadpool(jobs.folder.incoming_folder)
    except OSError as exc:
        raise not_stored(exc) from exc
    try:
        files = await receive_upload(request, folder, state.settings.service)
    except ClientDisconnect as exc:
        raise ClientClosed("the client closed the connection before the upload ended") from exc
    try:
        job = jobs.submit(folder, files)
    except BaseException as exc:
        await run_in_threadpool(shutil.rmtree, folder, True)
        if isinstance(exc, OSError):
            raise not_stored(exc) from exc
        raise
    body = jobs.get(job.id)
    return JSONResponse(
        status_code=202,
        content=body.model_dump(mode="json"),
        headers={"Location": f"/v1/jobs/{job.id}"},
    )


@router.get(
    "/jobs/{job_id}",
    operation_id="get_job",
    summary="An ingest job: state, counts and report lines",
    response_model=Job,
    responses=error_responses(401, 404, 503),
)
def get_job(
    job_id: str,
    state: StateDep,
    entries_from: Annotated[
        int, Query(ge=0, description="First report line to return (pages of 1,000)")
    ] = 0,
) -> Job:
    """The job's state (queued, running, succeeded, failed, cancelled), the counters of ``litrag
    ingest``'s summary and its report lines (failures, duplicates, skips, replacements) from
    ``entries_from`` on, as ``litrag ingest --report`` writes them."""
    return _jobs(state).get(job_id, entries_from)


@router.get(
    "/jobs",
    summary="Recent ingest jobs",
    response_model=JobList,
    responses=error_responses(401, 503),
)
def list_jobs(
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most jobs listed")] = 20,
) -> JobList:
    """Queued, running and finished jobs, newest first (finished ones: the last
    ``service.jobs_history``), without their report lines."""
    return JobList(jobs=_jobs(state).recent(limit))


@router.delete(
    "/jobs/{job_id}",
    operation_id="cancel_job",
    summary="Cancel an ingest job",
    response_model=Job,
    responses={
        200: {
            "description": "The job is cancelled: it was queued (it never ran; its files are "
            "deleted), or it was cancelled before (DELETE again answers the same)"
        },
        202: {
            "model": Job,
            "description": "The job is running: it is asked to stop (cancel_requested_at) and "
            "stops at its next embedding call; follow GET /v1/jobs/{id} until state is "
            "cancelled",
        },
        **error_responses(401, 404, 409, 503),
    },
)
def cancel_job(job_id: str, state: StateDep) -> JSONResponse:
    """Cancel an ingest job. A queued job leaves the queue at once and never runs: ``200``,
    state ``cancelled``. A running job is asked to stop: ``202``, still ``running`` with
    ``cancel_requested_at`` set (``200`` if it has already stopped); it ends at its next
    embedding call as ``cancelled``, its ``counts`` saying what it stored until then, its
    spooled files deleted. A job already past its last embedding call (writing its last batch,
    building the index) is not stopped: it ends ``succeeded``.

    The store is left as a crash would leave it: the documents written so far stay, searchable,
    and nothing is rolled back. Uploading the same files again repairs and finishes it: what is
    stored as it is is skipped, the rest written. A cancelled job never runs again, not even
    after a restart. A job that has already succeeded or failed cannot be cancelled: ``409
    job_already_ended``.
    """
    job = _jobs(state).cancel(job_id)
    return JSONResponse(
        status_code=202 if job.state == "running" else 200,
        content=job.model_dump(mode="json"),
    )
