"""The embedder a job runs with: it refuses to start another call once the job must stop (it was
cancelled, or the service is stopping), so the runner ends at its next embedding call with what it
has written so far, as a crash would leave it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.embedding import Embedder, Matrix, WrappedEmbedder
from core.errors import EmbeddingError


class StoppableEmbedder(WrappedEmbedder):
    """``inner``, unless ``stop`` gives a reason: then EmbeddingError with that reason."""

    def __init__(self, inner: Embedder, stop: Callable[[], str | None]) -> None:
        super().__init__(inner)
        self._stop = stop

    def embed(self, texts: Sequence[str]) -> Matrix:
        if reason := self._stop():
            raise EmbeddingError(reason)
        return self._inner.embed(texts)
