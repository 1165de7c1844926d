"""Answer and citation evaluation against a running ``litrag serve`` (over HTTP: eval never
imports the service).

Each question is posted to ``/v1/answer`` and the JSON is checked:

- **fabricated citations** (must be 0): a citation whose ``chunk_id`` is not among the returned
  ``passages``, whose ``doc_id`` differs from that passage's, or whose ``url`` is not
  :func:`core.ids.source_url` of the cited passage's identifiers.
- **fabricated URLs** (must be 0): a source or passage whose ``url`` / ``urls`` are not built from
  its own identifiers, or a URL in the answer text that is neither a source's or passage's URL
  nor quoted from a retrieved passage's text.
- **citation support rate**: kept sentences with ``supported=true`` over kept sentences (the
  method is the service's ``verification.method``); for LLM answers also the rate of the first
  generation attempt (``verification.attempts[0]``: supported over verified sentences, before the
  one regeneration of failing sentences), so one run shows before and after side by side.
- **source recall**: the question's source document is among ``sources`` (LitQA2 by DOI,
  PubMedQA by PMID); **retrieval recall**: among ``passages``.
- **answer accuracy**, only when the service answers with an LLM (``generator == "llm"``): the
  question is asked again with the choices (LitQA2: the ideal answer, the distractors and
  "Insufficient information", shuffled with a per-question seed) or "yes, no or maybe"
  (PubMedQA) appended, and the letter / word the answer starts with is parsed — from the
  response and from its first attempt's answer (accuracy before regeneration).

Every response is also written, whole, to ``responses.jsonl`` (for judging verdicts by hand).

The documents must be ingested first (see docs/eval.md): the LitQA2 source PDFs
(``litrag ingest ../shared/data/corpus/pdf``), the PubMedQA abstracts as MEDLINE XML
(``litrag eval export pubmedqa --out DIR`` then ``litrag ingest DIR``).
"""

from __future__ import annotations

import json
import random
import re
import string
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from rich.console import Console

from core.ids import all_urls, source_url
from core.schemas import Identifiers
from eval.datasets import (
    litqa2_with_pdfs,
    load_litqa2,
    load_pubmedqa,
    pubmedqa_answers,
    shared_data_dir,
)

__all__ = [
    "AnswerEvalOptions",
    "Item",
    "answers_markdown",
    "check_response",
    "export_pubmedqa_medline",
    "litqa2_items",
    "parse_choice",
    "parse_yes_no_maybe",
    "pubmedqa_items",
    "run_answer_eval",
]

Dataset = Literal["litqa2", "pubmedqa"]
INSUFFICIENT = "Insufficient information to answer this question"
_URL = re.compile(r"https?://[^\s)\]>\"']+")


@dataclass(frozen=True, slots=True)
class AnswerEvalOptions:
    """What to ask and where."""

    dataset: Dataset
    url: str = "http://127.0.0.1:8000"
    limit: int | None = None
    split: str = "test"
    api_key: str | None = None
    generator: Literal["auto", "extractive", "llm"] = "auto"
    timeout_s: float = 300.0
    only_with_pdf: bool = True


@dataclass(frozen=True, slots=True)
class Item:
    """One question, where its answer comes from, and (for accuracy) its choices."""

    qid: str
    question: str
    doi: str | None = None
    pmid: str | None = None
    choices: tuple[str, ...] = ()
    correct: str = ""  # LitQA2: the correct letter; PubMedQA: yes / no / maybe


# --- questions -------------------------------------------------------------------------------


def litqa2_items(only_with_pdf: bool = True, data_dir: Path | None = None) -> list[Item]:
    """LitQA2 questions (by default those whose source PDF is in corpus/pdf)."""
    root = data_dir or shared_data_dir()
    litqa = root / "eval" / "litqa2"
    questions = (
        litqa2_with_pdfs(litqa, root / "corpus" / "pdf") if only_with_pdf else load_litqa2(litqa)
    )
    items: list[Item] = []
    for q in questions:
        choices = [q.ideal, *q.distractors, INSUFFICIENT]
        random.Random(q.qid).shuffle(choices)
        letter = string.ascii_uppercase[choices.index(q.ideal)]
        items.append(
            Item(
                qid=q.qid,
                question=q.question,
                doi=q.dois[0].lower() if q.dois else None,
                choices=tuple(choices),
                correct=letter,
            )
        )
    return items


def pubmedqa_items(split: str = "test", data_dir: Path | None = None) -> list[Item]:
    """PubMedQA-L questions of ``split`` with their PMID and yes/no/maybe answer."""
    folder = (data_dir or shared_data_dir()) / "eval" / "pubmedqa"
    eval_set = load_pubmedqa(folder, split)
    truth = pubmedqa_answers(folder)
    return [
        Item(qid=q.qid, question=q.text, pmid=q.qid, correct=truth[q.qid]) for q in eval_set.queries
    ]


def export_pubmedqa_medline(out_dir: Path, data_dir: Path | None = None) -> tuple[Path, int]:
    """The 1,000 PubMedQA-L abstracts (contexts with their labels, MeSH terms, year) as MEDLINE
    XML, so that ``litrag ingest`` stores them as ``pmid:<PMID>`` documents with PubMed URLs.

    PubMedQA gives no titles and leaves out each abstract's conclusion (the long answer); the
    export keeps exactly the PubMedQA-L contexts.
    """
    folder = (data_dir or shared_data_dir()) / "eval" / "pubmedqa"
    data = json.loads((folder / "ori_pqal.json").read_text(encoding="utf-8"))
    root = ET.Element("PubmedArticleSet")
    for pmid, record in data.items():
        article_el = ET.SubElement(root, "PubmedArticle")
        citation = ET.SubElement(article_el, "MedlineCitation", Status="MEDLINE", Owner="NLM")
        ET.SubElement(citation, "PMID", Version="1").text = str(pmid)
        article = ET.SubElement(citation, "Article", PubModel="Print")
        journal = ET.SubElement(article, "Journal")
        issue = ET.SubElement(journal, "JournalIssue", CitedMedium="Print")
        pub_date = ET.SubElement(issue, "PubDate")
        if record.get("YEAR"):
            ET.SubElement(pub_date, "Year").text = str(record["YEAR"])
        ET.SubElement(article, "ArticleTitle").text = ""
        abstract = ET.SubElement(article, "Abstract")
        labels = record.get("LABELS") or []
        for i, text in enumerate(record["CONTEXTS"]):
            el = ET.SubElement(abstract, "AbstractText")
            if i < len(labels) and labels[i]:
                el.set("Label", str(labels[i]))
            el.text = str(text)
        meshes = record.get("MESHES") or []
        if meshes:
            mesh_list = ET.SubElement(citation, "MeshHeadingList")
            for term in meshes:
                heading = ET.SubElement(mesh_list, "MeshHeading")
                ET.SubElement(heading, "DescriptorName").text = str(term)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "pubmedqa-abstracts.xml"
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path, len(data)


# --- parsing answers -------------------------------------------------------------------------


def parse_choice(answer: str, n_choices: int) -> str | None:
    """The option letter an answer commits to: ``(B)`` anywhere, ``B.`` / ``B)`` / ``B:`` at the
    start, or ``answer is B``; None when none is found (a leading "A lot ..." is no answer)."""
    letters = string.ascii_uppercase[:n_choices]
    text = answer.strip().lstrip("*#> ").strip()
    for pattern in (
        rf"^\(([{letters}])\)",
        rf"^([{letters}])(?:[.:)]|$)",
        rf"\(([{letters}])\)",
        rf"answer(?: is)?:?\s*\**\(?([{letters}])\b",
        rf"\boption\s+\(?([{letters}])\b",
    ):
        m = re.search(pattern, text, flags=re.IGNORECASE if "answer" in pattern else 0)
        if m:
            return m.group(1).upper()
    return None


def parse_yes_no_maybe(answer: str) -> str | None:
    """The first of yes / no / maybe in the answer (case-insensitive), else None."""
    m = re.search(r"\b(yes|no|maybe)\b", answer, flags=re.IGNORECASE)
    return m.group(1).lower() if m else None


def _choices_prompt(item: Item) -> str:
    options = "\n".join(f"({string.ascii_uppercase[i]}) {c}" for i, c in enumerate(item.choices))
    return (
        f"{item.question}\n\nOptions:\n{options}\n\n"
        "Start the answer with the letter of the single correct option, e.g. '(A)', then explain."
    )


def _yes_no_prompt(item: Item) -> str:
    return f"{item.question}\n\nStart the answer with yes, no or maybe, then explain."


# --- checking one response -------------------------------------------------------------------


def _ids(raw: Any) -> Identifiers:
    return Identifiers.model_validate(raw or {})


def check_response(resp: Mapping[str, Any], item: Item | None = None) -> dict[str, Any]:
    """Citation, URL and source checks of one ``/v1/answer`` response."""
    passages = {str(p["chunk_id"]): p for p in resp.get("passages", [])}
    problems: list[str] = []
    fabricated = 0
    for c in resp.get("citations", []):
        p = passages.get(str(c["chunk_id"]))
        if p is None:
            fabricated += 1
            problems.append(f"[{c['n']}] cites chunk {c['chunk_id']} that was not retrieved")
            continue
        expected = source_url(_ids(p.get("identifiers")))
        if c.get("doc_id") != p.get("doc_id") or c.get("url") != expected:
            fabricated += 1
            problems.append(f"[{c['n']}] url {c.get('url')!r} != {expected!r} of its passage")
    fabricated_urls = 0
    known: set[str] = set()
    for kind, entries in (("source", resp.get("sources", [])), ("passage", passages.values())):
        for s in entries:
            ids = _ids(s.get("identifiers"))
            allowed = set(all_urls(ids).values())
            urls = [s.get("url"), *(s.get("urls") or {}).values()]
            if s.get("url") != source_url(ids) or any(u not in allowed for u in urls if u):
                fabricated_urls += 1
                problems.append(f"{kind} {s.get('doc_id')}: url not built from its identifiers")
            known |= {u for u in urls if u}
    # A URL in the answer is fine when it is a source's, or quoted from a retrieved passage (an
    # extractive answer may copy a sentence that names a data portal); otherwise it was made up.
    passage_text = "\n".join(str(p.get("text", "")) for p in passages.values())
    for u in _URL.findall(str(resp.get("answer", ""))):
        url = u.rstrip(".,;:")
        if url not in known and url not in passage_text:
            fabricated_urls += 1
            problems.append(f"answer text has url {url} of no source or passage")
    verification = resp.get("verification") or {}
    kept = [s for s in verification.get("sentences", []) if s.get("kept", True)]
    supported = sum(1 for s in kept if s.get("supported"))
    attempts = verification.get("attempts") or []
    # before regeneration: the first attempt; without attempts (extractive) the response itself
    first_n = int(attempts[0]["sentences"]) if attempts else len(kept)
    first_supported = int(attempts[0]["supported"]) if attempts else supported
    out: dict[str, Any] = {
        "generator": resp.get("generator"),
        "degraded": bool(resp.get("degraded", False)),
        "method": verification.get("method"),
        "n_citations": len(resp.get("citations", [])),
        "n_sources": len(resp.get("sources", [])),
        "n_passages": len(passages),
        "fabricated_citations": fabricated,
        "fabricated_urls": fabricated_urls,
        "kept_sentences": len(kept),
        "supported_sentences": supported,
        "contradicted_sentences": sum(1 for s in kept if s.get("verdict") == "contradicted"),
        "attempts": len(attempts),
        "regenerated": any(a.get("attempt") == 2 and a.get("used") for a in attempts),
        "llm_requests": sum(int(a.get("llm_requests", 0)) for a in attempts),
        "first_attempt_sentences": first_n,
        "first_attempt_supported": first_supported,
        # per sentence, so two runs (e.g. two verification methods) can be compared
        "verdicts": [
            {"text": s.get("text", ""), "verdict": _verdict(s)}
            for s in verification.get("sentences", [])
        ],
        "problems": problems,
    }
    if item is not None:
        out["source_found"] = _has_source(resp.get("sources", []), item)
        out["source_retrieved"] = _has_source(passages.values(), item)
    return out


def _verdict(sentence: Mapping[str, Any]) -> str:
    """The sentence's verdict; responses of v1-era services only say ``supported``."""
    verdict = sentence.get("verdict")
    if isinstance(verdict, str):
        return verdict
    return "supported" if sentence.get("supported") else "not_supported"


def compare_verdicts(this: Path, other: Path) -> dict[str, Any]:
    """Sentences of the same questions in two runs' ``per_question.json``, matched by question and
    sentence text: how many kept their verdict and how each changed (``v1 -> v2`` counts)."""

    def load(path: Path) -> dict[tuple[str, str], str]:
        folder = path if path.is_dir() else path.parent
        rows = json.loads((folder / "per_question.json").read_text(encoding="utf-8"))
        return {
            (str(r["qid"]), v["text"]): v["verdict"] for r in rows for v in r.get("verdicts", [])
        }

    a, b = load(this), load(other)
    common = sorted(set(a) & set(b))
    changes: dict[str, int] = {}
    for key in common:
        if a[key] != b[key]:
            name = f"{b[key]} -> {a[key]}"
            changes[name] = changes.get(name, 0) + 1
    return {
        "compared_sentences": len(common),
        "changed": sum(changes.values()),
        "changes": changes,
        "only_in_this": len(set(a) - set(b)),
        "only_in_other": len(set(b) - set(a)),
    }


def _has_source(entries: Any, item: Item) -> bool:
    for e in entries:
        ids = _ids(e.get("identifiers"))
        if item.doi and ids.doi and ids.doi.lower() == item.doi.lower():
            return True
        if item.pmid and ids.pmid == item.pmid:
            return True
    return False


# --- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Totals:
    questions: int = 0
    errors: int = 0
    fabricated_citations: int = 0
    fabricated_urls: int = 0
    citations: int = 0
    kept: int = 0
    supported: int = 0
    contradicted: int = 0
    first_sentences: int = 0
    first_supported: int = 0
    regenerated: int = 0
    llm_requests: int = 0
    correct_first: int = 0
    source_found: int = 0
    source_retrieved: int = 0
    answered_with_citation: int = 0
    llm: int = 0
    accuracy_asked: int = 0
    correct: int = 0
    unsure: int = 0
    unparsed: int = 0
    methods: set[str] = field(default_factory=set)
    generators: dict[str, int] = field(default_factory=dict)


def _post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/answer", json=body)
    if r.status_code >= 400:
        raise httpx.HTTPStatusError(
            f"{r.status_code}: {r.text[:300]}", request=r.request, response=r
        )
    data = r.json()
    if not isinstance(data, dict):
        raise ValueError("answer response is not a JSON object")
    return data


def _accuracy(
    client: httpx.Client, item: Item, dataset: Dataset, base: dict[str, Any]
) -> dict[str, Any]:
    prompt = _choices_prompt(item) if dataset == "litqa2" else _yes_no_prompt(item)
    resp = _post(client, {**base, "question": prompt})
    answer = str(resp.get("answer", ""))
    attempts = (resp.get("verification") or {}).get("attempts") or []
    first = str(attempts[0].get("answer", "")) if attempts else answer

    def predict(text: str) -> str | None:
        if dataset == "litqa2":
            return parse_choice(text, len(item.choices))
        return parse_yes_no_maybe(text)

    pred, pred_first = predict(answer), predict(first)
    unsure = (
        dataset == "litqa2" and pred is not None and item.choices[ord(pred) - 65] == INSUFFICIENT
    )
    return {
        "prediction": pred,
        "correct_answer": item.correct,
        "correct": pred == item.correct,
        "unsure": unsure,
        "prediction_first_attempt": pred_first,
        "correct_first_attempt": pred_first == item.correct,
        "regenerated": len(attempts) > 1,
        "generator": resp.get("generator"),
        "answer_head": answer[:300],
        "response": resp,
    }


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def run_answer_eval(
    options: AnswerEvalOptions,
    *,
    out_dir: Path | None = None,
    console: Console | None = None,
    client: httpx.Client | None = None,
) -> tuple[dict[str, Any], Path]:
    """Ask every question, check each response, write ``summary.json``, ``summary.md``,
    ``per_question.json`` and ``responses.jsonl`` (after every question); returns the summary and
    the folder."""
    from eval.runner import git_commit, make_progress

    console = console or Console(stderr=True)
    if options.dataset == "litqa2":
        items = litqa2_items(options.only_with_pdf)
    else:
        items = pubmedqa_items(options.split)
    if options.limit:
        items = items[: options.limit]
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    own_client = client is None
    http = client or httpx.Client(base_url=options.url, timeout=options.timeout_s, headers=headers)
    t = _Totals()
    rows: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    base: dict[str, Any] = {"generator": options.generator}
    out = out_dir or (
        Path("artifacts")
        / "eval"
        / f"answers-{options.dataset}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    )
    out.mkdir(parents=True, exist_ok=True)

    def write() -> dict[str, Any]:
        """The summary of the questions asked so far, written with the rows and responses
        (after every question, so a run stopped early keeps what it measured)."""
        answered = t.questions - t.errors
        summary: dict[str, Any] = {
            "manifest": {
                "dataset": options.dataset,
                "split": options.split if options.dataset == "pubmedqa" else "public",
                "url": options.url,
                "generator_requested": options.generator,
                "only_with_pdf": options.only_with_pdf if options.dataset == "litqa2" else None,
                "limit": options.limit,
                "git_commit": git_commit(),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - t0, 1),
            },
            "questions": t.questions,
            "errors": t.errors,
            "generators": t.generators,
            "verification_methods": sorted(t.methods),
            "fabricated_citations": t.fabricated_citations,
            "fabricated_urls": t.fabricated_urls,
            "citations": t.citations,
            "answers_with_citations": t.answered_with_citation,
            "kept_sentences": t.kept,
            "supported_sentences": t.supported,
            "contradicted_sentences": t.contradicted,
            "citation_support_rate": _rate(t.supported, t.kept),
            "first_attempt_sentences": t.first_sentences,
            "first_attempt_supported": t.first_supported,
            "first_attempt_support_rate": _rate(t.first_supported, t.first_sentences),
            "regenerated_answers": t.regenerated,
            "llm_requests": t.llm_requests,
            "accuracy_first_attempt": _rate(t.correct_first, t.accuracy_asked),
            "source_recall": _rate(t.source_found, answered),
            "retrieval_recall": _rate(t.source_retrieved, answered),
            "accuracy": _rate(t.correct, t.accuracy_asked),
            "accuracy_questions": t.accuracy_asked,
            "unsure": t.unsure,
            "unparsed": t.unparsed,
        }
        if options.dataset == "litqa2" and t.accuracy_asked:
            sure = t.accuracy_asked - t.unsure
            summary["precision"] = _rate(t.correct, sure)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (out / "per_question.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        (out / "summary.md").write_text(answers_markdown(summary), encoding="utf-8")
        with (out / "responses.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in responses)
        return summary

    t0 = time.perf_counter()
    try:
        try:
            http.get("/healthz").raise_for_status()
        except httpx.HTTPError as exc:
            raise OSError(
                f"no litrag service at {options.url} ({exc}); start it with `litrag serve`"
            ) from exc
        with make_progress(console) as progress:
            task = progress.add_task(f"{options.dataset} questions", total=len(items), info="")
            for item in items:
                row: dict[str, Any] = {"qid": item.qid, "question": item.question}
                t.questions += 1
                try:
                    resp = _post(http, {**base, "question": item.question})
                    check = check_response(resp, item)
                    row.update(check)
                    responses.append({"qid": item.qid, "kind": "answer", "response": resp})
                    if check["generator"] == "llm":
                        acc = _accuracy(http, item, options.dataset, base)
                        responses.append(
                            {"qid": item.qid, "kind": "accuracy", "response": acc.pop("response")}
                        )
                        row["accuracy"] = acc
                except (httpx.HTTPError, ValueError) as exc:
                    t.errors += 1
                    row["error"] = str(exc)[:500]
                    rows.append(row)
                    write()
                    progress.advance(task)
                    continue
                _add(t, row)
                rows.append(row)
                write()
                progress.update(
                    task,
                    advance=1,
                    info=f"fabricated {t.fabricated_citations + t.fabricated_urls} · "
                    f"source recall {t.source_found}/{t.questions - t.errors}",
                )
    finally:
        if own_client:
            http.close()

    return write(), out


def _add(t: _Totals, row: Mapping[str, Any]) -> None:
    t.fabricated_citations += int(row["fabricated_citations"])
    t.fabricated_urls += int(row["fabricated_urls"])
    t.citations += int(row["n_citations"])
    t.answered_with_citation += int(row["n_citations"] > 0)
    t.kept += int(row["kept_sentences"])
    t.contradicted += int(row.get("contradicted_sentences", 0))
    t.supported += int(row["supported_sentences"])
    t.first_sentences += int(row.get("first_attempt_sentences", row["kept_sentences"]))
    t.first_supported += int(row.get("first_attempt_supported", row["supported_sentences"]))
    t.regenerated += int(bool(row.get("regenerated")))
    t.llm_requests += int(row.get("llm_requests", 0))
    t.source_found += int(bool(row.get("source_found")))
    t.source_retrieved += int(bool(row.get("source_retrieved")))
    if row.get("method"):
        t.methods.add(str(row["method"]))
    gen = str(row.get("generator"))
    t.generators[gen] = t.generators.get(gen, 0) + 1
    acc = row.get("accuracy")
    if acc is not None:
        t.accuracy_asked += 1
        t.correct += int(bool(acc["correct"]))
        t.unsure += int(bool(acc["unsure"]))
        t.unparsed += int(acc["prediction"] is None)
        t.correct_first += int(bool(acc.get("correct_first_attempt", acc["correct"])))


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * float(v):.1f}%"


def answers_markdown(summary: Mapping[str, Any]) -> str:
    """A short markdown report of an answer evaluation."""
    m = summary["manifest"]
    lines = [
        f"# Answers: {m['dataset']} ({summary['questions']} questions, {m['date']})",
        "",
        f"- service: {m['url']}, generators used: {summary['generators']}, "
        f"verification: {', '.join(summary['verification_methods']) or 'n/a'}",
        f"- errors: {summary['errors']}",
        "",
        "| check | value |",
        "|---|---:|",
        f"| fabricated citations (must be 0) | {summary['fabricated_citations']} |",
        f"| fabricated URLs (must be 0) | {summary['fabricated_urls']} |",
        f"| citations | {summary['citations']} |",
        f"| answers with ≥ 1 citation | {summary['answers_with_citations']} |",
        f"| citation support rate (kept sentences) | {_pct(summary['citation_support_rate'])} "
        f"({summary['supported_sentences']}/{summary['kept_sentences']}) |",
        f"| source recall (in sources[]) | {_pct(summary['source_recall'])} |",
        f"| retrieval recall (in passages[]) | {_pct(summary['retrieval_recall'])} |",
        f"| answer accuracy (LLM only) | {_pct(summary['accuracy'])} "
        f"(n={summary['accuracy_questions']}) |",
    ]
    if summary.get("first_attempt_sentences"):
        at = next(i for i, x in enumerate(lines) if "citation support rate" in x) + 1
        lines[at:at] = [
            f"| support rate before regeneration (first attempt, verified sentences) | "
            f"{_pct(summary['first_attempt_support_rate'])} "
            f"({summary['first_attempt_supported']}/{summary['first_attempt_sentences']}) |",
            f"| answers regenerated (one extra LLM request each) | "
            f"{summary['regenerated_answers']} |",
        ]
        lines.append(
            f"| answer accuracy before regeneration | {_pct(summary['accuracy_first_attempt'])} |"
        )
    if "precision" in summary:
        lines.append(f"| precision (excluding 'insufficient') | {_pct(summary['precision'])} |")
    return "\n".join(lines) + "\n"
