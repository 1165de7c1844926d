"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from core.errors import StoreError
from service.deps import AuthDep, MetricsDep, StateDep
from service.errors import error_responses
from service.guards import has_api_key
from service.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always 200 while the process runs."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: store reachable and model loaded",
    responses={503: {"description": "Not ready; the body says which check failed"}},
)
def readyz(request: Request, state: StateDep) -> JSONResponse:
    """200 when the store answers and the model is loaded, else 503 with the reason.

    The collection name and point count are shown only to callers with the API key (when one
    is configured): they describe the corpus.
    """
    checks: dict[str, str] = {
        "model": "ok" if state.embedder is not None else "not loaded",
        "llm": "configured" if state.llm is not None else "none (extractive answers)",
    }
    if state.store is None:
        checks["store"] = state.store_error or "not open"
    else:
        try:
            state.store.ping()
            checks["store"] = "ok"
            if has_api_key(state.settings.service, request.headers):
                checks["points"] = str(state.store.count())
                checks["collection"] = state.store.collection
        except StoreError as exc:
            checks["store"] = str(exc)
    ready = checks["model"] == "ok" and checks["store"] == "ok"
    return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, **checks})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    dependencies=[AuthDep],
    responses={
        200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}},
        **error_responses(401),
    },
    response_class=Response,
)
def metrics(metrics: MetricsDep) -> Response:
    """Requests by route and status with latency, answer sentences by verdict, store points,
    the embedding queue, and ingest jobs (by state, ended, documents and chunks stored, queue)."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
