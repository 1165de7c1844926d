"""Evaluation sets as one shape (docs, queries, qrels): BEIR folders, PubMedQA, BioASQ; and LitQA2.

Doc ids and qids are those of the source (BEIR ``_id``, PMIDs, BioASQ question ids), so run files
and qrels need no mapping.

- **BEIR** (SciFact, ...): ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``; the queries
  are those judged in that split.
- **PubMedQA-L**: the corpus is the abstract of each of the 1,000 questions (contexts joined);
  ``test`` is the 500 PMIDs of ``test_ground_truth.json``, ``train`` the other 500. Each question's
  one relevant document is its own abstract.
- **BioASQ** (Task 7b-11b golden sets): one document per PMID cited by a gold snippet, its text the
  distinct snippet texts (title snippets first, then by offset; titles are unknown). The files have
  no train/test split (each is a year's test batches), so ``test`` is every question; ``"7b"`` ...
  ``"11b"`` select one year's questions. The corpus is always built from every year, so one index
  serves each split.
- **LitQA2**: multiple-choice questions with source DOIs; the source PDFs are named by URL-encoded
  DOI (``10.1038%2Fs41467-023-39119-8.pdf``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.errors import ParseError
from eval.metrics import Qrels
from eval.trec import read_qrels_tsv

__all__ = [
    "EvalDoc",
    "EvalQuery",
    "EvalSet",
    "LitQA2Question",
    "doi_from_url",
    "holdout",
    "is_dev_query",
    "litqa2_with_pdfs",
    "load",
    "load_beir",
    "load_bioasq",
    "load_litqa2",
    "load_pubmedqa",
    "numbered_jsonl",
    "pdf_name_for_doi",
    "pdf_path_for_doi",
    "pubmedqa_answers",
    "shared_data_dir",
]

_REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class EvalDoc:
    """One document of an evaluation corpus."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class EvalQuery:
    """One evaluation query."""

    qid: str
    text: str


@dataclass(frozen=True, slots=True)
class EvalSet:
    """A retrieval evaluation set: every query in ``queries`` has judgments in ``qrels``."""

    name: str
    docs: list[EvalDoc]
    queries: list[EvalQuery]
    qrels: Qrels
    split: str


@dataclass(frozen=True, slots=True)
class LitQA2Question:
    """A LitQA2 multiple-choice question and where its answer is written."""

    qid: str
    question: str
    ideal: str
    distractors: tuple[str, ...]
    dois: tuple[str, ...]
    key_passage: str
    is_opensource: bool


def shared_data_dir() -> Path:
    """``$LITRAG_SHARED_DATA``, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("LITRAG_SHARED_DATA", _REPO.parent / "shared" / "data"))


def numbered_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each non-blank line; a bad line is a ParseError naming it."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ParseError(str(path), f"invalid JSON: {exc.msg}", f"line {lineno}") from None
            if not isinstance(record, dict):
                raise ParseError(str(path), "expected a JSON object", f"line {lineno}")
            yield lineno, record


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    return (record for _, record in numbered_jsonl(path))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ParseError(str(path), f"invalid JSON: {exc.msg}") from None


# --- BEIR ------------------------------------------------------------------------------------


def load_beir(dir: Path, split: str = "test") -> EvalSet:
    """A BEIR folder; the queries are those with judgments in ``qrels/{split}.tsv``."""
    qrels_path = dir / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (dir / "qrels").glob("*.tsv"))
        raise ValueError(f"{dir.name} has no split {split!r}; splits: {have}")
    qrels = read_qrels_tsv(qrels_path)
    docs = [
        EvalDoc(str(r["_id"]), str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _read_jsonl(dir / "corpus.jsonl")
    ]
    queries = [
        EvalQuery(str(r["_id"]), str(r["text"]))
        for r in _read_jsonl(dir / "queries.jsonl")
        if str(r["_id"]) in qrels
    ]
    missing = qrels.keys() - {q.qid for q in queries}
    if missing:
        raise ParseError(
            str(qrels_path), f"judged queries not in queries.jsonl: {sorted(missing)[:5]}"
        )
    return EvalSet(name=dir.name, docs=docs, queries=queries, qrels=qrels, split=split)


# --- PubMedQA --------------------------------------------------------------------------------


def _pubmedqa_records(dir: Path) -> dict[str, dict[str, Any]]:
    data = _read_json(dir / "ori_pqal.json")
    if not isinstance(data, dict):
        raise ParseError(str(dir / "ori_pqal.json"), "expected an object keyed by PMID")
    return {str(pmid): record for pmid, record in data.items()}


def load_pubmedqa(dir: Path, split: str = "test") -> EvalSet:
    """PubMedQA-L: corpus = all 1,000 abstracts; ``test`` / ``train`` = 500 questions each."""
    if split not in ("test", "train"):
        raise ValueError(f"pubmedqa has splits 'test' and 'train', not {split!r}")
    records = _pubmedqa_records(dir)
    truth = _read_json(dir / "test_ground_truth.json")
    if not isinstance(truth, dict):
        raise ParseError(str(dir / "test_ground_truth.json"), "expected an object keyed by PMID")
    test_ids = {str(pmid) for pmid in truth}
    unknown = test_ids - records.keys()
    if unknown:
        raise ParseError(
            str(dir / "test_ground_truth.json"), f"unknown PMIDs {sorted(unknown)[:5]}"
        )
    docs = [
        EvalDoc(pmid, "", "\n".join(str(c) for c in record["CONTEXTS"]))
        for pmid, record in records.items()
    ]
    queries = [
        EvalQuery(pmid, str(record["QUESTION"]))
        for pmid, record in records.items()
        if (pmid in test_ids) == (split == "test")
    ]
    qrels: Qrels = {q.qid: {q.qid: 1} for q in queries}
    return EvalSet(name="pubmedqa", docs=docs, queries=queries, qrels=qrels, split=split)


def pubmedqa_answers(dir: Path) -> dict[str, str]:
    """PMID -> ``final_decision`` (``yes`` / ``no`` / ``maybe``) for all 1,000 questions."""
    return {pmid: str(r["final_decision"]) for pmid, r in _pubmedqa_records(dir).items()}


# --- BioASQ ----------------------------------------------------------------------------------

_TASK_DIR = re.compile(r"Task(\d+)BGoldenEnriched", re.IGNORECASE)
_SECTION_ORDER = {"title": 0, "abstract": 1}
# Some snippets keep PubMed markup (``<br><b>METHODS</b>:``, ``<AbstractText Label="...">``);
# only those tag names are removed, so a bare ``p < 0.05`` stays.
_MARKUP = re.compile(
    r"</?(?:b|i|u|br|em|strong|sub|sup|p|AbstractText)(?:\s[^<>]*)?/?>", re.IGNORECASE
)


def _pmid(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _bioasq_files(dir: Path) -> list[tuple[str, Path]]:
    """(task such as "7b", file) for every golden file, in task then file order."""
    found: list[tuple[int, str, Path]] = []
    for path in dir.rglob("*_golden.json"):
        match = _TASK_DIR.fullmatch(path.parent.name)
        if match:
            found.append((int(match.group(1)), path.name, path))
    if not found:
        raise ValueError(f"no Task*BGoldenEnriched/*_golden.json under {dir}")
    return [(f"{n}b", path) for n, _, path in sorted(found)]


def _snippet_doc(pmid: str, snippets: set[tuple[int, int, str]]) -> EvalDoc:
    """Distinct snippet texts in (section, offset) order, dropping those inside a longer one."""
    texts: list[str] = []
    for _, _, text in sorted(snippets):
        if text not in texts:
            texts.append(text)
    kept = [t for t in texts if not any(t != other and t in other for other in texts)]
    return EvalDoc(pmid, "", "\n".join(kept))


def load_bioasq(dir: Path, split: str = "test") -> EvalSet:
    """BioASQ golden sets; ``test`` = every question, ``"7b"`` ... ``"11b"`` = one year's.

    A question's qrels are its gold PMIDs that have a document (a gold snippet) in the corpus; a
    question left with none would be dropped (none is in the Task 7b-11b files).
    """
    files = _bioasq_files(dir)
    tasks = sorted({task for task, _ in files}, key=lambda t: int(t[:-1]))
    if split != "test" and split not in tasks:
        raise ValueError(f"bioasq splits: 'test' (all) or one of {tasks}, not {split!r}")
    snippets: dict[str, set[tuple[int, int, str]]] = {}
    questions: list[tuple[str, str, list[str]]] = []
    for task, path in files:
        data = _read_json(path)
        for q in data["questions"]:
            for s in q.get("snippets", []):
                text = " ".join(_MARKUP.sub(" ", str(s["text"])).split())
                if text:
                    section = _SECTION_ORDER.get(str(s.get("beginSection")), 2)
                    offset = int(s.get("offsetInBeginSection", 0))
                    snippets.setdefault(_pmid(s["document"]), set()).add((section, offset, text))
            if split in ("test", task):
                gold = [_pmid(str(u)) for u in q.get("documents", [])]
                questions.append((str(q["id"]), str(q["body"]).strip(), gold))
    docs = [
        _snippet_doc(pmid, snippets[pmid]) for pmid in sorted(snippets, key=lambda p: (len(p), p))
    ]
    queries: list[EvalQuery] = []
    qrels: Qrels = {}
    for qid, body, gold in questions:
        judged = {pmid: 1 for pmid in gold if pmid in snippets}
        if judged:
            if qid in qrels:
                raise ParseError(str(dir), f"question id {qid} appears twice")
            queries.append(EvalQuery(qid, body))
            qrels[qid] = judged
    return EvalSet(name="bioasq", docs=docs, queries=queries, qrels=qrels, split=split)


# --- LitQA2 ----------------------------------------------------------------------------------

_DOI_URL = re.compile(r"^(?:https?://)?(?:dx\.)?doi\.org/", re.IGNORECASE)


def doi_from_url(url: str) -> str:
    """``https://doi.org/10.1/x`` (or ``http://dx.doi.org/...``) -> ``10.1/x``."""
    return _DOI_URL.sub("", url.strip())


def pdf_name_for_doi(doi: str) -> str:
    """The corpus file name of a DOI's PDF: the URL-encoded DOI plus ``.pdf``."""
    return quote(doi, safe="") + ".pdf"


def pdf_path_for_doi(doi: str, pdf_dir: Path) -> Path | None:
    """The PDF of ``doi`` in ``pdf_dir``, matched case-insensitively as DOIs are; else None."""
    exact = pdf_dir / pdf_name_for_doi(doi)
    if exact.is_file():
        return exact
    wanted = pdf_name_for_doi(doi).lower()
    for path in pdf_dir.glob("*.pdf"):
        if path.name.lower() == wanted:
            return path
    return None


def load_litqa2(dir: Path) -> list[LitQA2Question]:
    """Every question of ``litqa-v2-public.jsonl`` (``dir`` may also be that file)."""
    path = dir if dir.is_file() else dir / "litqa-v2-public.jsonl"
    return [
        LitQA2Question(
            qid=str(r["id"]),
            question=str(r["question"]),
            ideal=str(r["ideal"]),
            distractors=tuple(str(d) for d in r.get("distractors", [])),
            dois=tuple(doi_from_url(str(s)) for s in r.get("sources", [])),
            key_passage=str(r.get("key-passage") or ""),
            is_opensource=bool(r.get("is_opensource", False)),
        )
        for r in _read_jsonl(path)
    ]


def litqa2_with_pdfs(litqa_dir: Path, pdf_dir: Path) -> list[LitQA2Question]:
    """The LitQA2 questions with at least one source PDF in ``pdf_dir``."""
    names = {p.name.lower() for p in pdf_dir.glob("*.pdf")}
    return [
        q
        for q in load_litqa2(litqa_dir)
        if any(pdf_name_for_doi(doi).lower() in names for doi in q.dois)
    ]


# --- dispatch --------------------------------------------------------------------------------


DEV_FRACTION = 0.2


def is_dev_query(qid: str, fraction: float = DEV_FRACTION) -> bool:
    """Whether ``qid`` belongs to the held-out dev part of a training split (stable hash)."""
    digest = hashlib.sha256(f"litrag-dev:{qid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def holdout(eval_set: EvalSet, part: str) -> EvalSet:
    """The ``fit`` (80 %) or ``dev`` (20 %) queries of a set, by a stable hash of the query id.

    Model selection (fine-tuning epochs, fusion weights) uses ``<split>-dev`` after training on
    ``<split>-fit``, so no choice is made by looking at the split that is reported.
    """
    if part not in ("fit", "dev"):
        raise ValueError(f"holdout part is 'fit' or 'dev', not {part!r}")
    keep = [q for q in eval_set.queries if is_dev_query(q.qid) == (part == "dev")]
    return EvalSet(
        name=eval_set.name,
        docs=eval_set.docs,
        queries=keep,
        qrels={q.qid: eval_set.qrels[q.qid] for q in keep},
        split=f"{eval_set.split}-{part}",
    )


def load(name_or_dir: str | Path, split: str = "test") -> EvalSet:
    """A set by name (``scifact``, ``pubmedqa``, ``bioasq``: under ``shared_data_dir()/eval``) or
    by folder (a BEIR folder with ``corpus.jsonl``, a PubMedQA or a BioASQ folder).

    ``<split>-fit`` / ``<split>-dev`` (e.g. ``train-dev``) are the two parts of :func:`holdout`.
    """
    base, _, part = split.rpartition("-")
    if base and part in ("fit", "dev"):
        return holdout(load(name_or_dir, base), part)
    path = Path(name_or_dir)
    if not path.is_dir() and isinstance(name_or_dir, str) and "/" not in name_or_dir:
        path = shared_data_dir() / "eval" / name_or_dir
    if not path.is_dir():
        raise ValueError(f"no evaluation set {str(name_or_dir)!r} (looked in {path})")
    if (path / "corpus.jsonl").is_file():
        return load_beir(path, split)
    if (path / "ori_pqal.json").is_file():
        return load_pubmedqa(path, split)
    if any(path.glob("Task*BGoldenEnriched")):
        return load_bioasq(path, split)
    raise ValueError(f"{path} is not a BEIR, PubMedQA or BioASQ folder")
