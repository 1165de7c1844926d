"""Method ``minilm-nli-crossencoder/v2``: a 3-way cross-encoder reads the sentence and each cited
passage together and gives P(support), P(contradict), P(not enough information).

The model (MiniLM-L6 fine-tuned on labelled claim-evidence pairs by ``litrag eval train-verifier``,
int8 ONNX, ~23 MB) ships in ``core/verify/model`` with ``verifier.json``: the data hashes, the
command that reproduces it and the P(support) threshold chosen on the dev splits. It runs with
onnxruntime and the model's own ``tokenizer.json``; no network, no torch at answer time.

A sentence that a cited chunk contains word for word (an extractive answer's quote) is supported
without asking the model. Otherwise, for a sentence citing several chunks: **supported** when one
cited chunk supports it
(P(support) >= threshold); else **contradicted** when one cited chunk contradicts it more than it
leaves it open; else **not supported**. The quote is the sentence of the deciding chunk that shares
the most content words with the sentence. With ``key_terms`` (on when the dev numbers chose it:
``verifier.json``), a supported sentence whose numbers or codes are absent from the cited chunks is
downgraded to not supported.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.chunking import split_sentences
from core.errors import ConfigError
from core.schemas import ScoredChunk
from core.verify.base import Support, Verdict
from core.verify.terms import (
    SOURCE_REFS,
    content_words,
    is_abstention,
    missing_terms,
    sentence_windows,
)

__all__ = [
    "MANIFEST",
    "MODEL_DIR",
    "MODEL_FILE",
    "NliVerifier",
    "PairScorer",
    "decide",
    "quoted_span",
]

MODEL_DIR = Path(__file__).resolve().parent / "model"
MANIFEST = "verifier.json"
MODEL_FILE = "model.onnx"
Probs = npt.NDArray[np.float32]
_SUP, _CON, _NEI = 0, 1, 2


def decide(probs: Sequence[float] | Probs, threshold: float, margin: bool = False) -> Verdict:
    """One pair's verdict from its (support, contradict, nei) probabilities; with ``margin``,
    support must also outweigh contradiction."""
    if probs[_SUP] >= threshold and (not margin or probs[_SUP] > probs[_CON]):
        return Verdict.SUPPORTED
    return Verdict.CONTRADICTED if probs[_CON] > probs[_NEI] else Verdict.NOT_SUPPORTED


class PairScorer:
    """The ONNX cross-encoder: (claim, evidence) pairs → label probabilities."""

    def __init__(self, model_dir: Path = MODEL_DIR, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest_path = model_dir / MANIFEST
        if not (model_dir / MODEL_FILE).is_file() or not manifest_path.is_file():
            raise ConfigError(
                f"verifier model not found in {model_dir} (expected {MODEL_FILE} and {MANIFEST}); "
                "train one with `litrag eval train-verifier --out DIR`"
            )
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.method: str = str(self.manifest["method"])
            self.threshold: float = float(self.manifest["support_threshold"])
            self.max_length = int(self.manifest["max_length"])
            tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            tok.enable_truncation(self.max_length, strategy="longest_first")
            self._tok = tok
            opts = ort.SessionOptions()
            # two threads per request: more only oversubscribes the cores under concurrent load
            opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
            opts.inter_op_num_threads = 1
            # idle intra-op threads must sleep, not spin: under concurrent load spinning tripled
            # the CPU an embedding cost (docs/benchmarks.md, "Query latency and concurrency")
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(
                str(model_dir / MODEL_FILE), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime and tokenizers raise types of their own
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"verifier model in {model_dir} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        self._inputs = {i.name for i in self._session.get_inputs()}

    def score(self, pairs: Sequence[tuple[str, str]]) -> Probs:
        """Probabilities (support, contradict, nei), one row per pair.

        One pair per run, never padded: the int8 model quantises activations per tensor at run
        time, so padding (and so the other pairs of a batch) would shift a pair's probabilities
        and a sentence's verdict would depend on its neighbours.
        """
        out = np.zeros((len(pairs), 3), dtype=np.float32)
        for i, enc in enumerate(self._tok.encode_batch(list(pairs))):
            feed = {
                "input_ids": np.array([enc.ids], dtype=np.int64),
                "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
            }
            logits = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
            z = logits[0][0] - logits[0][0].max()
            e = np.exp(z)
            out[i] = e / e.sum()
        return out


_LOAD_LOCK = threading.Lock()


def load_scorer(model_dir: Path = MODEL_DIR) -> PairScorer:
    """One scorer per model folder per process (the ONNX session is the expensive part); loaded
    once even when the first requests arrive together."""
    with _LOAD_LOCK:
        return _load(model_dir.resolve())


@lru_cache(maxsize=4)
def _load(model_dir: Path) -> PairScorer:
    return PairScorer(model_dir)


def best_quote(sentence: str, text: str) -> tuple[int, int]:
    """Span of the sentence of ``text`` that shares the most content words with ``sentence``."""
    words = content_words(sentence)
    best, span = -1.0, (0, len(text))
    for a, b in sentence_windows(text):
        found = content_words(text[a:b])
        if not found:
            continue
        score = len(words & found) / math.sqrt(len(found))
        if score > best:
            best, span = score, (a, b)
    return span


_QUOTE_MIN_WORDS = 4


def _norm_sentence(text: str) -> str:
    return " ".join(SOURCE_REFS.sub("", text).split()).rstrip(".!?;: ").lower()


def quoted_span(sentence: str, text: str) -> tuple[int, int] | None:
    """The span of the sentence of ``text`` that *is* ``sentence`` (case, spacing, end
    punctuation and the source's "[n]" markers aside), for sentences of at least four words;
    None otherwise. A whole passage sentence, never a piece of one: "aspirin reduced stroke"
    inside "We tested whether aspirin reduced stroke" is no quote, nor is "by 4" in "by 45%"."""
    want = _norm_sentence(sentence)
    if len(want.split()) < _QUOTE_MIN_WORDS:
        return None
    for a, b in split_sentences(text):
        if _norm_sentence(text[a:b]) == want:
            return a, b
    return None


class NliVerifier:
    """Verdicts from the cross-encoder; pair probabilities are cached for the verifier's life."""

    def __init__(
        self,
        scorer: PairScorer,
        *,
        threshold: float | None = None,
        key_terms: bool | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.scorer = scorer
        self.threshold = scorer.threshold if threshold is None else threshold
        # the operating point chosen on dev (verifier.json) unless the settings say otherwise
        self.key_terms = (
            bool(scorer.manifest.get("key_terms", False)) if key_terms is None else key_terms
        )
        self.margin = bool(scorer.manifest.get("margin", False))
        self._cache: OrderedDict[tuple[str, str], Probs] = OrderedDict()
        self._cache_size = cache_size

    @property
    def method(self) -> str:
        """``minilm-nli-crossencoder/v2`` (``+key-terms`` when the identity check is on)."""
        return self.scorer.method + ("+key-terms" if self.key_terms else "")

    def prepare(self, chunks: Sequence[ScoredChunk]) -> None:
        """Nothing to pre-compute per chunk: pairs are scored in ``score_pairs``."""

    def score_pairs(self, items: Sequence[tuple[str, ScoredChunk]]) -> list[Probs]:
        """Probabilities of (sentence, chunk) pairs; those not cached are scored in one batch."""
        keys = [(s, c.chunk.chunk_id) for s, c in items]
        found = {k: self._cache[k] for k in keys if k in self._cache}
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            texts = {c.chunk.chunk_id: c.chunk.text for _, c in items}
            probs = self.scorer.score([(s, texts[cid]) for s, cid in todo])
            for k, p in zip(todo, probs, strict=True):
                found[k] = self._cache[k] = p
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return [found[k] for k in keys]

    def check(self, sentence: str, cited: Sequence[ScoredChunk]) -> Support:
        """Verdict for ``sentence`` (citation markers already removed) against ``cited``."""
        return self.check_all([(sentence, cited)])[0]

    def check_all(self, items: Sequence[tuple[str, Sequence[ScoredChunk]]]) -> list[Support]:
        """Verdicts for several sentences, their pairs scored in one batch (quotes need none)."""
        quotes = [self._quote(s, cited) for s, cited in items]
        self.score_pairs(
            [
                (s, c)
                for (s, cited), q in zip(items, quotes, strict=True)
                if q is None
                for c in cited
            ]
        )
        return [q or self._verdict(s, cited) for (s, cited), q in zip(items, quotes, strict=True)]

    @staticmethod
    def _quote(sentence: str, cited: Sequence[ScoredChunk]) -> Support | None:
        """Supported without the model when a cited chunk has the sentence word for word."""
        for c in cited:
            span = quoted_span(sentence, c.chunk.text)
            if span is not None:
                reason = "supported (quoted word for word from the cited passage)"
                return Support(Verdict.SUPPORTED, 1.0, reason, c.chunk.chunk_id, *span)
        return None

    def _verdict(self, sentence: str, cited: Sequence[ScoredChunk]) -> Support:
        if not cited:
            if is_abstention(sentence):
                reason = "states insufficient evidence: no claim to support"
                return Support(Verdict.SUPPORTED, 1.0, reason, None, 0, 0)
            return Support(Verdict.NOT_SUPPORTED, 0.0, "no citation", None, 0, 0)
        probs = self.score_pairs([(sentence, c) for c in cited])
        verdicts = [decide(p, self.threshold, self.margin) for p in probs]
        if Verdict.SUPPORTED in verdicts:
            pick = max(
                (i for i, v in enumerate(verdicts) if v is Verdict.SUPPORTED),
                key=lambda i: float(probs[i][_SUP]),
            )
            verdict = Verdict.SUPPORTED
        elif Verdict.CONTRADICTED in verdicts:
            pick = max(
                (i for i, v in enumerate(verdicts) if v is Verdict.CONTRADICTED),
                key=lambda i: float(probs[i][_CON]),
            )
            verdict = Verdict.CONTRADICTED
        else:
            pick, verdict = int(np.argmax([p[_SUP] for p in probs])), Verdict.NOT_SUPPORTED
        chunk = cited[pick]
        p = probs[pick]
        qs, qe = best_quote(sentence, chunk.chunk.text)
        detail = f"P(support) {p[_SUP]:.2f}, P(contradict) {p[_CON]:.2f}"
        if verdict is Verdict.SUPPORTED and self.key_terms:
            missing = missing_terms(sentence, " ".join(c.chunk.text for c in cited))
            if missing:
                reason = f"not in the cited passage: {', '.join(missing[:6])} ({detail})"
                return Support(
                    Verdict.NOT_SUPPORTED, float(p[_SUP]), reason, chunk.chunk.chunk_id, qs, qe
                )
        reason = {
            Verdict.SUPPORTED: f"supported ({detail})",
            Verdict.CONTRADICTED: f"contradicted by the cited passage ({detail})",
            Verdict.NOT_SUPPORTED: f"the cited passage does not state this ({detail})",
        }[verdict]
        return Support(verdict, float(p[_SUP]), reason, chunk.chunk.chunk_id, qs, qe)
