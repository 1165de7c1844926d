"""The verifier the settings ask for."""

from __future__ import annotations

from core.config import AnswerSettings
from core.embedding import Embedder
from core.verify.base import Verifier
from core.verify.lexical import LexicalVerifier
from core.verify.nli import MODEL_DIR, NliVerifier, load_scorer


def make_verifier(settings: AnswerSettings, embedder: Embedder) -> Verifier:
    """``nli`` (default) or ``v1``; a missing or broken model folder is a ``ConfigError``."""
    if settings.verifier == "v1":
        return LexicalVerifier(embedder, settings.support_threshold)
    scorer = load_scorer(settings.verifier_model or MODEL_DIR)
    return NliVerifier(
        scorer, threshold=settings.verifier_threshold, key_terms=settings.verifier_key_terms
    )
