"""Trial facts sentences and their field-by-field check, on real CT.gov records (API v2 JSON and
legacy XML) parsed and chunked by the real ingest code."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.chunking import chunk_document
from core.config import ChunkingSettings, IngestSettings
from core.schemas import Document, DocumentMeta, ScoredChunk
from core.verify import Verdict
from core.verify.fields import check_fields
from ingest.formats import parse_source
from ingest.parsers.base import Source
from service.answer.draft import DraftSentence
from service.answer.trial_facts import trial_sentence
from tests.conftest import SAMPLES, SHARED_DATA

LEGACY = SHARED_DATA / "corpus" / "ctgov-legacy-xml"


def _records(path: Path) -> list[list[ScoredChunk]]:
    """Each trial of ``path`` as its chunks (words counted as tokens: only boundaries move)."""
    out = []
    for doc in parse_source(Source(path.name, path.read_bytes()), IngestSettings()):
        assert isinstance(doc, Document), doc
        chunks = chunk_document(doc, ChunkingSettings(), lambda ts: [len(t.split()) for t in ts])
        meta = DocumentMeta.of(doc, len(chunks))
        out.append([ScoredChunk(chunk=c, doc=meta, score=1.0) for c in chunks])
    return out


def _cases() -> list[list[ScoredChunk]]:
    v2 = _records(SAMPLES / "ctgov" / "mrna-trials.json")
    legacy = sorted(LEGACY.glob("*.xml"))
    picked = random.Random(7).sample(legacy, min(40, len(legacy)))
    return v2 + [r for p in picked for r in _records(p)]


def _sentences() -> list[tuple[list[ScoredChunk], DraftSentence, list[ScoredChunk]]]:
    """(record, its facts sentence, the passages it cites) for each record that gives one."""
    out = []
    for record in _cases():
        made = trial_sentence(record[0], record)
        if made is not None:
            out.append((record, *made))
    return out


SENTENCES = _sentences()


def test_every_facts_sentence_is_supported_by_its_own_record() -> None:
    for record, sentence, cited in SENTENCES:
        assert sentence.text.startswith(record[0].doc.trial.nct_id + " is a")  # type: ignore[union-attr]
        assert {c.chunk.doc_id for c in cited} == {record[0].chunk.doc_id}
        support = check_fields(sentence.facts, cited)
        assert support.verdict is Verdict.SUPPORTED, (sentence.text, support.reason)
        # the quote is a span of a cited passage
        assert support.chunk_id in {c.chunk.chunk_id for c in cited}
    # both formats give sentences (120 v2 sample trials, 40 legacy records)
    assert len(SENTENCES) >= 140, len(SENTENCES)


@pytest.mark.parametrize(
    ("label", "wrong"),
    [("Overall status", "completed"), ("Phase", "phase 4"), ("Conditions", "Dental Caries")],
)
def test_a_wrong_value_is_contradicted(label: str, wrong: str) -> None:
    checked = 0
    for _, sentence, cited in SENTENCES:
        facts = [(lab, wrong if lab == label else v) for lab, v in sentence.facts]
        if facts == sentence.facts or any(
            lab == label and v.lower() == wrong.lower() for lab, v in sentence.facts
        ):
            continue
        support = check_fields(facts, cited)
        assert support.verdict is Verdict.CONTRADICTED, (facts, support.reason)
        assert wrong in support.reason
        checked += 1
    assert checked >= 50, checked


def test_a_value_no_cited_passage_has_is_not_supported() -> None:
    _, sentence, cited = SENTENCES[0]
    facts = [*sentence.facts, ("Enrollment", "12 participants")]
    without = [c for c in cited if "Enrollment:" not in c.chunk.text]
    assert check_fields(facts, without).verdict is Verdict.NOT_SUPPORTED
