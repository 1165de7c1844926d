"""Request dependencies: the opened state, the answer engine, the API key check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.errors import StoreError
from service.answer.engine import AnswerEngine
from service.guards import check_api_key
from service.metrics import Metrics
from service.state import State


def get_state(request: Request) -> State:
    """The application's opened resources."""
    state: State = request.app.state.litrag
    return state


StateDep = Annotated[State, Depends(get_state)]


def get_metrics(request: Request) -> Metrics:
    """The application's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def require_api_key(request: Request, state: StateDep) -> None:
    """401 unless the configured key is sent (see ``service.guards.check_api_key``)."""
    check_api_key(state.settings.service, request.headers)


def get_engine(state: StateDep) -> AnswerEngine:
    """The engine, or 503 when the store could not be opened."""
    return engine_of(state)


def engine_of(state: State) -> AnswerEngine:
    """The engine, or StoreError (503) saying why the store is not open."""
    if state.engine is None:
        raise StoreError(state.store_error or "the store is not open")
    return state.engine


EngineDep = Annotated[AnswerEngine, Depends(get_engine)]
AuthDep = Depends(require_api_key)
