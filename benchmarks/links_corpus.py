"""Trial ↔ paper links on a corpus: parse everything (no embedding), resolve the mentions against
the documents present, count, and list mentions for a hand check.

    .venv/bin/python benchmarks/links_corpus.py ../shared/data/corpus [--out links.json] \
        [--sample 20]

Links are resolved with the store's own rule (``core.store.links.link_between``) over the parsed
documents' metadata, as ``litrag ingest`` would store them, so the counts are those a store built
from the corpus holds. Printed: documents by type, documents that state a link (by source and
relation), links that resolve (trials with >= 1 paper, papers with >= 1 trial, by the source of
the mention), what BACKGROUND references would add, and ``--sample`` mentions (every resolved
link first, then spread over the sources) with the text around each, for checking by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from core.config import IngestSettings
from core.schemas import Document, DocumentMeta, LinkMention, SourceType
from core.store.links import is_trial, link_between
from ingest.discover import Skipped, discover
from ingest.formats import parse_source
from ingest.parsers.base import RecordFailure

_AROUND = 160


def parse_all(root: Path) -> tuple[dict[str, Document], Counter[str]]:
    """Every document of ``root`` by id (the first of a repeated id) and the failures by kind."""
    docs: dict[str, Document] = {}
    problems: Counter[str] = Counter()
    limits = IngestSettings()
    for item in discover([root], limits):
        if isinstance(item, RecordFailure | Skipped):
            problems[type(item).__name__] += 1
            continue
        try:
            for result in parse_source(item, limits):
                if isinstance(result, RecordFailure):
                    problems["record failure"] += 1
                elif result.doc_id not in docs:
                    docs[result.doc_id] = result
                else:
                    problems["repeated id"] += 1
        except Exception as exc:  # a bad file is counted, the rest still measured
            problems[f"parse error ({type(exc).__name__})"] += 1
    return docs, problems


def context(doc: Document, mention: LinkMention) -> str:
    """The text around a mention in its document (reference citations for a trial's PMID)."""
    if mention.kind in ("pmid", "doi"):
        for ref in doc.references:
            if ref.pmid == mention.value or mention.value in ref.text.lower():
                return ref.text[:300]
        return ""
    texts = [doc.text(), *(r.text for r in doc.references)]
    for text in texts:
        at = text.upper().find(mention.value)
        if at < 0:
            at = text.upper().find(mention.value.replace("NCT", "NCT "))
        if at >= 0:
            return " ".join(text[max(0, at - _AROUND) : at + len(mention.value) + 60].split())
    return "(not in the indexed text: " + mention.where + ")"


def measure(docs: dict[str, Document], sample: int, seed: int) -> dict[str, Any]:
    """The counts and the hand-check sample (see the module docstring)."""
    metas = {i: DocumentMeta.of(d, 0) for i, d in docs.items()}
    trials_by_nct = {m.identifiers.nct_id: m for m in metas.values() if is_trial(m)}
    papers_by: dict[tuple[str, str], list[DocumentMeta]] = defaultdict(list)
    for m in metas.values():
        if not is_trial(m):
            for kind in ("pmid", "doi"):
                value = getattr(m.identifiers, kind)
                if value:
                    papers_by[(kind, value)].append(m)
    by_type = Counter(d.source_type.value for d in docs.values())
    mention_sources: Counter[str] = Counter()
    mention_relations: Counter[str] = Counter()
    stating: Counter[str] = Counter()
    for d in docs.values():
        if d.links:
            stating[d.source_type.value] += 1
        for x in d.links:
            mention_sources[x.source] += 1
            mention_relations[f"{x.source} {x.relation}"] += 1

    # candidate pairs from both sides, judged by the store's rule
    pairs: set[tuple[str, str]] = set()
    background_hits = 0
    for m in metas.values():
        for x in docs[m.doc_id].links:
            if is_trial(m) and x.kind in ("pmid", "doi"):
                hit = papers_by.get((x.kind, x.value), [])
                if x.relation == "BACKGROUND":
                    background_hits += len(hit)
                pairs.update((p.doc_id, m.doc_id) for p in hit)
            elif not is_trial(m) and x.kind == "nct" and x.value in trials_by_nct:
                pairs.add((m.doc_id, trials_by_nct[x.value].doc_id))
    links = []
    for paper_id, trial_id in sorted(pairs):
        link = link_between(metas[paper_id], metas[trial_id])
        if link is not None:
            links.append((paper_id, trial_id, link))
    by_source: Counter[str] = Counter()
    for paper_id, trial_id, link in links:
        for side in link.stated_by:
            doc = docs[paper_id] if side == "paper" else docs[trial_id]
            want = docs[trial_id].identifiers.nct_id if side == "paper" else None
            for x in doc.links:
                if (side == "paper" and x.value == want) or (
                    side == "trial" and x.value in (link.identifiers.pmid, link.identifiers.doi)
                ):
                    by_source[x.source] += 1
                    break

    # hand-check sample: resolved links first, then mentions spread over the sources
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = [
        {
            "resolved": True,
            "paper": paper_id,
            "trial": trial_id,
            "stated_by": link.stated_by,
            "relation": link.paper_relation or link.trial_relation,
            "where": link.where,
            "context": next(
                (
                    context(docs[paper_id], x)
                    for x in docs[paper_id].links
                    if x.value == docs[trial_id].identifiers.nct_id
                ),
                "",
            ),
        }
        for paper_id, trial_id, link in links
    ][:sample]
    pools: dict[str, list[tuple[Document, LinkMention]]] = defaultdict(list)
    for d in docs.values():
        for x in d.links:
            if x.relation != "BACKGROUND":
                pools[x.source].append((d, x))
    for pool in pools.values():
        rng.shuffle(pool)
    while len(chosen) < sample and any(pools.values()):
        for source in sorted(pools):
            if pools[source] and len(chosen) < sample:
                d, x = pools[source].pop()
                chosen.append(
                    {
                        "resolved": False,
                        "doc": d.doc_id,
                        "title": d.title[:120],
                        "mention": f"{x.kind} {x.value}",
                        "relation": x.relation,
                        "source": x.source,
                        "where": x.where,
                        "context": context(d, x),
                    }
                )
    papers_linked = {p for p, _, _ in links}
    trials_linked = {t for _, t, _ in links}
    return {
        "documents": dict(by_type),
        "documents_stating_links": dict(stating),
        "mentions_by_source": dict(mention_sources),
        "mentions_by_source_relation": dict(sorted(mention_relations.items())),
        "mentioned_trials_in_corpus": sum(
            1
            for d in docs.values()
            for x in d.links
            if x.kind == "nct" and x.value in trials_by_nct
        ),
        "links": len(links),
        "trials_with_linked_paper": len(trials_linked),
        "papers_with_linked_trial": len(papers_linked),
        "links_by_mention_source": dict(by_source),
        "background_references_that_would_resolve": background_hits,
        "trials": by_type.get(SourceType.TRIAL.value, 0),
        "sample": chosen,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--out", type=Path, help="write the numbers and the sample as JSON")
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    t0 = time.perf_counter()
    docs, problems = parse_all(args.corpus)
    result = measure(docs, args.sample, args.seed)
    result["parse_problems"] = dict(problems)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
