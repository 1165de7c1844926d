"""Request dependencies: the opened state, the answer engine, and the optional API key."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from core.errors import StoreError
from service.answer.engine import AnswerEngine
from service.app import State


def get_state(request: Request) -> State:
    """The application's opened resources."""
    state: State = request.app.state.litrag
    return state


StateDep = Annotated[State, Depends(get_state)]


def require_api_key(request: Request, state: StateDep) -> None:
    """401 unless the configured key is sent as Bearer token or X-API-Key (constant-time check)."""
    key = state.settings.service.api_key
    if key is None or not key.get_secret_value():
        return
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
        raise HTTPException(
            status_code=401,
            detail="missing or invalid API key",
            headers={"WWW-Authenticate": "Bearer"},
        )


def get_engine(state: StateDep) -> AnswerEngine:
    """The engine, or 503 when the store could not be opened."""
    if state.engine is None:
        raise StoreError(state.store_error or "the store is not open")
    return state.engine


EngineDep = Annotated[AnswerEngine, Depends(get_engine)]
AuthDep = Depends(require_api_key)
