"""Chunking on real documents with the real tokenizer: bounds, offsets, sections, stable ids."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from core.chunking import Span, chunk_document, pack_spans, split_sentences
from core.config import ChunkingSettings
from core.ids import chunk_id
from core.schemas import Document, Section, SourceType


def _doc(sections: list[Section], doc_id: str = "pmc:PMC1") -> Document:
    return Document(
        doc_id=doc_id, source_type=SourceType.ARTICLE, title="A title", sections=sections
    )


def test_sentence_split_keeps_abbreviations_and_decimals() -> None:
    text = (
        "Vaccines were given (e.g. mRNA-1273) to 30 adults. Titers rose 2.5-fold vs. placebo, "
        "as shown by Smith et al. in Fig. 2. Was it durable? Yes."
    )
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == [
        "Vaccines were given (e.g. mRNA-1273) to 30 adults.",
        "Titers rose 2.5-fold vs. placebo, as shown by Smith et al. in Fig. 2.",
        "Was it durable?",
        "Yes.",
    ]


def test_paragraph_breaks_split_sentences() -> None:
    text = "First paragraph without period\n\nSecond one."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "First paragraph without period",
        "Second one.",
    ]


def test_pack_overlap_and_tail_merge() -> None:
    spans = [Span(i * 10, i * 10 + 9, 10) for i in range(10)]
    s = ChunkingSettings(max_tokens=32, overlap_tokens=10, min_tokens=0)
    windows = pack_spans(spans, s)
    # 3 sentences per window, 1 sentence overlap: starts at 0, 2, 4, 6, 8
    assert [w[0] for w in windows] == [0, 20, 40, 60, 80]
    assert all(w[2] <= 32 for w in windows)
    assert windows[-1][1] == 99


def test_real_jats_article_chunks_are_bounded_exact_and_stable(embedder, corpus: Path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from core.embedding import resolve_model_path
    from ingest.parsers.base import Source
    from ingest.parsers.jats import parse_jats

    path = corpus / "jats" / "plos" / "journal.pbio.0020334.xml"
    (doc,) = list(parse_jats(Source(str(path), path.read_bytes())))
    settings = ChunkingSettings()
    chunks = chunk_document(doc, settings, embedder.count_tokens)
    text = doc.text()
    # an independent count: the model folder's own tokenizer, special tokens included
    model_tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_path("all-MiniLM-L6-v2")))
    assert len(chunks) > 10
    for i, c in enumerate(chunks):
        assert c.ordinal == i
        assert c.chunk_id == chunk_id(doc.doc_id, i)
        assert text[c.char_start : c.char_end] == c.text  # offsets are exact
        assert c.header.startswith(doc.title[:20])
        # nothing is truncated by the model: header + text + specials fit 256 tokens
        real = len(model_tokenizer(c.embed_text)["input_ids"])
        assert real <= embedder.max_seq_length, (i, real)
    # chunks never cross sections: each chunk's text lies inside one section of its path
    paths = {s.path for s in doc.sections}
    assert all(c.section_path in paths for c in chunks)
    # deterministic: the same input gives the same chunks
    assert chunk_document(doc, settings, embedder.count_tokens) == chunks


def test_overlong_sentence_is_split_not_truncated(embedder) -> None:  # type: ignore[no-untyped-def]
    long_sentence = " ".join(["immunogenicity"] * 400) + "."
    doc = _doc([Section(path=("Results",), text=long_sentence)])
    chunks = chunk_document(doc, ChunkingSettings(max_tokens=100), embedder.count_tokens)
    assert len(chunks) >= 4
    assert all(c.n_tokens <= 100 + 40 for c in chunks)
    covered = "".join(c.text.replace(" ", "") for c in chunks)
    assert covered.count("immunogenicity") >= 400


@pytest.mark.parametrize("overlap", [0, 32])
def test_overlap_setting_changes_coverage(embedder, overlap: int) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(
        f"Sentence number {i} describes a finding about mRNA vaccines." for i in range(80)
    )
    doc = _doc([Section(path=("Body",), text=text)])
    chunks = chunk_document(doc, ChunkingSettings(overlap_tokens=overlap), embedder.count_tokens)
    overlaps = [a.char_end > b.char_start for a, b in itertools.pairwise(chunks)]
    assert all(overlaps) if overlap else not any(overlaps)
