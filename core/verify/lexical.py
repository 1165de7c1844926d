"""Does the cited chunk support the sentence? A deterministic check, the same for every generator.

Method ``minilm-cosine+lexical+key-terms/v1``:
1. key terms: tokens that carry identity — numbers, NCT ids, drug/gene codes with digits or
   capitals (``mRNA-4157``, ``PD-L1``, ``BNT162b2``, ``44%``) — must all occur in a cited chunk;
   one missing term makes the sentence unsupported (this is what catches "mRNA-4157 targets PD-L1"
   cited to a passage that never mentions PD-L1, or an invented trial number);
2. semantic: the best cosine between the sentence and one sentence of the cited chunk, or the
   whole chunk for claims that combine its sentences (the same MiniLM as retrieval), which also
   yields the supporting quote and its offsets;
3. lexical: the share of the sentence's content words found in the cited chunk.
``score = max(cosine, 0.5 * cosine + 0.5 * lexical)``; supported when no key term is missing and
``score >= support_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.embedding import Embedder
from core.schemas import ScoredChunk
from core.verify.base import Support, Verdict
from core.verify.terms import content_words, is_abstention, missing_terms, sentence_windows

METHOD = "minilm-cosine+lexical+key-terms/v1"


class LexicalVerifier:
    """Checks sentences against cited chunks; embeddings of chunk sentences are cached."""

    def __init__(self, embedder: Embedder, threshold: float) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self._windows: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}

    @property
    def method(self) -> str:
        """``minilm-cosine+lexical+key-terms/v1``."""
        return METHOD

    def _chunk_windows(self, chunk: ScoredChunk) -> tuple[list[tuple[int, int]], np.ndarray]:
        self.prepare([chunk])
        return self._windows[chunk.chunk.chunk_id]

    def prepare(self, chunks: Sequence[ScoredChunk]) -> None:
        """Embed the windows of several chunks in one batch (faster than one by one)."""
        todo = [c for c in chunks if c.chunk.chunk_id not in self._windows]
        if not todo:
            return
        all_windows: list[tuple[str, list[tuple[int, int]]]] = []
        texts: list[str] = []
        for c in todo:
            text = c.chunk.text
            windows = sentence_windows(text)
            all_windows.append((c.chunk.chunk_id, windows))
            texts += [text[a:b] for a, b in windows]
        vecs = self.embedder.embed(texts)
        i = 0
        for cid, windows in all_windows:
            self._windows[cid] = (windows, vecs[i : i + len(windows)])
            i += len(windows)

    def check(self, sentence: str, cited: Sequence[ScoredChunk]) -> Support:
        """Verdict for ``sentence`` (citation markers already removed) against ``cited``."""
        if not cited:
            if is_abstention(sentence):
                return Support(
                    Verdict.SUPPORTED,
                    1.0,
                    "states insufficient evidence: no claim to support",
                    None,
                    0,
                    0,
                )
            return Support(Verdict.NOT_SUPPORTED, 0.0, "no citation", None, 0, 0)
        self.prepare(cited)
        svec = self.embedder.embed([sentence])[0]
        best: tuple[float, ScoredChunk, tuple[int, int]] | None = None
        for chunk in cited:
            windows, vecs = self._chunk_windows(chunk)
            sims = vecs @ svec
            j = int(np.argmax(sims))
            if best is None or float(sims[j]) > best[0]:
                best = (float(sims[j]), chunk, windows[j])
        assert best is not None
        cosine, chunk, (qs, qe) = best
        cited_text = " ".join(c.chunk.text for c in cited)
        missing = missing_terms(sentence, cited_text)
        words = content_words(sentence)
        lexical = len(words & content_words(cited_text)) / len(words) if words else 0.0
        score = max(cosine, 0.5 * cosine + 0.5 * lexical)
        score = float(min(max(score, 0.0), 1.0))
        if missing:
            reason = f"not in the cited passage: {', '.join(missing[:6])}"
            return Support(Verdict.NOT_SUPPORTED, score, reason, chunk.chunk.chunk_id, qs, qe)
        if score < self.threshold:
            reason = f"low support (cosine {cosine:.2f}, word overlap {lexical:.2f})"
            return Support(Verdict.NOT_SUPPORTED, score, reason, chunk.chunk.chunk_id, qs, qe)
        reason = f"supported (cosine {cosine:.2f}, word overlap {lexical:.2f})"
        return Support(Verdict.SUPPORTED, score, reason, chunk.chunk.chunk_id, qs, qe)
