"""How long ``litrag check`` takes on a long report: a ~5,000-word report built from real text,
checked against the configured store in this process (models loaded first, not timed), and
optionally end to end with the ``litrag check`` command.

    LITRAG_STORE__PATH=/path/to/store .venv/bin/python benchmarks/check_report.py \
        [--words 5000] [--seed 13] [--out report.md] [--cli]

The report is built deterministically (``--seed``) from:

* sentences of the **stored** documents themselves (read from the store, 8-60 words): 60 %;
  a sentence quoted word for word is supported without the model, so these measure retrieval;
* sentences of **other** real abstracts (SciFact ``corpus.jsonl`` from ``../shared/data/eval``),
  mostly not in the store: 25 %;
* stored sentences **altered**: "was" → "was not", "were" → "were not", "increased" ↔
  "decreased", "higher" ↔ "lower", "more" ↔ "less" (the first that applies): 15 %;

in paragraphs of five sentences under a heading every four paragraphs, each section opening with
a question (skipped), and a reference list of ten identifiers (five NCT numbers of stored trials,
five PMIDs of SciFact abstracts) that paragraphs cite as ``[n]``.

Prints the words, claims, verdicts, references found, the stage timings and the wall time of the
check, and the load average before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from core.chunking import split_sentences
from core.config import get_settings
from core.verify import make_verifier
from service.check.checker import ReportChecker
from service.state import State

SHARED = Path(
    os.environ.get("LITRAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
SCIFACT = SHARED / "eval" / "scifact" / "corpus.jsonl"
SWAPS = [
    (r"\bwas\b", "was not"),
    (r"\bwere\b", "were not"),
    (r"\bincreased\b", "decreased"),
    (r"\bdecreased\b", "increased"),
    (r"\bhigher\b", "lower"),
    (r"\blower\b", "higher"),
    (r"\bmore\b", "less"),
]


def sentences(text: str) -> list[str]:
    """Sentences of 8-60 words without line breaks."""
    out = []
    for a, b in split_sentences(text):
        s = " ".join(text[a:b].split())
        if 8 <= len(s.split()) <= 60 and s[-1] in ".!":
            out.append(s)
    return out


def altered(sentence: str) -> str | None:
    """The sentence with its first applicable swap, or None."""
    for pattern, repl in SWAPS:
        if re.search(pattern, sentence):
            return re.sub(pattern, repl, sentence, count=1)
    return None


def build_report(
    stored: list[str], other: list[str], refs: list[str], words: int, seed: int
) -> tuple[str, dict[str, str]]:
    """A Markdown report of at least ``words`` words (see the module docstring), and the origin
    of each sentence (stored, other, altered)."""
    rng = random.Random(seed)
    origin: dict[str, str] = {}
    alterable = [s for s in stored if altered(s)]
    body: list[str] = ["# A long report assembled from real text", ""]
    n_words, para, section = 0, 0, 0
    while n_words < words:
        if para % 4 == 0:
            section += 1
            body += [f"## Section {section}", "", "What does the literature say here?", ""]
        picked = []
        for _ in range(5):
            r = rng.random()
            if r < 0.60:
                s, kind = rng.choice(stored), "stored"
            elif r < 0.85:
                s, kind = rng.choice(other), "other"
            else:
                s, kind = altered(rng.choice(alterable)) or "", "altered"
            origin.setdefault(s, kind)
            picked.append(s)
        cite = rng.randrange(len(refs))
        picked[-1] = picked[-1][:-1] + f" [{cite + 1}]."
        body += [" ".join(picked), ""]
        n_words += sum(len(s.split()) for s in picked)
        para += 1
    body += ["## References", ""]
    body += [f"{i}. {ref}" for i, ref in enumerate(refs, 1)]
    return "\n".join(body) + "\n", origin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--words", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=Path("/tmp/litrag-check-report.md"))
    ap.add_argument("--cli", action="store_true", help="also time `litrag check` end to end")
    args = ap.parse_args()

    settings = get_settings()
    state = State(settings=settings)
    state.open()
    try:
        if state.engine is None:
            sys.exit(f"store unavailable: {state.store_error}")
        store = state.engine.retriever.store
        stored: list[str] = []
        ncts: list[str] = []
        for point in store.iter_points():
            payload = point.payload or {}
            stored += sentences(payload["chunk"]["text"])
            nct = payload.get("nct_id")
            if nct and nct not in ncts and payload.get("ordinal") == 0:
                ncts.append(nct)
        stored = sorted(set(stored))
        other: list[str] = []
        pmids: list[str] = []
        with SCIFACT.open() as f:
            for line in f:
                doc = json.loads(line)
                other += sentences(doc["text"])
                pmids.append(str(doc["_id"]))
                if len(other) > 4000:
                    break
        rng = random.Random(args.seed)
        refs = [f"ClinicalTrials.gov {n}" for n in rng.sample(sorted(ncts), 5)]
        refs += [f"PMID: {p}" for p in rng.sample(pmids, 5)]
        report, origin = build_report(stored, other, refs, args.words, args.seed)
        args.out.write_text(report)
        words = len(re.findall(r"\S+", report))

        checker = ReportChecker(
            state.engine.retriever, make_verifier(settings.answer, state.engine.embedder)
        )
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        result = checker.check(report).result
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
    finally:
        state.close()
    s = result.summary
    print(f"report: {args.out} ({words} words, {len(report)} characters)")
    print(
        f"claims {s.claims}: supported {s.supported}, contradicted {s.contradicted}, "
        f"no_evidence {s.no_evidence}; skipped {s.skipped}; references {s.references_found} of "
        f"{s.references} found; claims whose cited record does not support them "
        f"{s.cited_not_supporting}"
    )
    table: dict[str, dict[str, int]] = {}
    for c in result.claims:
        kind = origin.get(re.sub(r" \[\d+\]\.$", ".", c.text), "split differently")
        table.setdefault(kind, {}).setdefault(c.verdict, 0)
        table[kind][c.verdict] += 1
    for kind, counts in sorted(table.items()):
        print(f"  {kind} sentences: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    for c in result.claims:
        if c.verdict == "contradicted":
            print(f"  contradicted: {c.text[:160]}")
    print("timings (ms): " + ", ".join(f"{k} {v:,.0f}" for k, v in result.timings.items()))
    print(f"check wall time: {wall:.1f} s (models already loaded)")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.cli:
        litrag = Path(sys.executable).with_name("litrag")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(litrag), "check", str(args.out), "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        print(
            f"litrag check end to end: {time.perf_counter() - t0:.1f} s, exit {proc.returncode} "
            f"(process start + model load + check)"
        )


if __name__ == "__main__":
    main()
