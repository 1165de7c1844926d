"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from core.errors import StoreError
from service.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always 200 while the process runs."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: store reachable and model loaded")
def readyz(state: StateDep) -> JSONResponse:
    """200 when the store answers and the model is loaded, else 503 with the reason."""
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
            checks["points"] = str(state.store.count())
            checks["collection"] = state.store.collection
        except StoreError as exc:
            checks["store"] = str(exc)
    ready = checks["model"] == "ok" and checks["store"] == "ok"
    return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, **checks})
