"""A labelled DEV set of report facet sections, and the facet contrast chosen on it.

    # 1. dump the facet sections of 12 report questions (all gates off), ~6 min on 2 cores
    cp -r .litrag /tmp/h12-store
    LITRAG_STORE__PATH=/tmp/h12-store nice -n 10 .venv/bin/python scripts/label_report_sections.py
    # 2. label docs/report-sections-dev.jsonl by hand -> docs/report-sections-dev-labels.jsonl
    #    (one line per section: question, section, has_evidence, reason)
    # 3. choose delta
    .venv/bin/python scripts/label_report_sections.py --choose

Step 1 runs every question in report mode in process (``TestClient(create_app())``) on the
bundled sample corpus with ``answer.section_floor``, ``answer.facet_contrast`` and the sentence
floor ``answer.min_relevance`` all at -1, so that every section shows its top sentences whatever
its scores. For each facet section (not the overview, not a trials facet, whose trial facts are
shown whatever the gates say) it writes the title, section query, the service's ``relevance``
(best sentence) and ``facet_contrast``, and the section's sentences with the titles, sections and
doc ids of the passages they cite.

Step 3 joins the dump with the labels (``has_evidence``: at least one sentence of the section is
genuinely about the facet, in the context of the question's topic; optional ``borderline``: the
labeller's call was close) and reports, with ``has_evidence`` as the positive class: ROC AUC of
relevance and of contrast; the relevance floor alone (0.40, chosen on BioASQ); contrast alone; and
the joint rule the service applies (relevance >= 0.40 AND contrast >= delta). delta = the cut (a
midpoint between observed contrasts, the lowest among equals) of best balanced accuracy of the
joint rule with recall(has_evidence) >= 0.90, rounded to the nearest 0.005 (down, if the nearest
would classify a section differently), with the numbers at the rounded value. A
leave-one-question-out estimate (delta chosen on the other questions, applied to the held-out
one), a bootstrap over questions, and the choice with the borderline sections left out or their
labels flipped show how far the dev numbers can be trusted. Output: stdout and
docs/report-sections-dev-choice.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DUMP = ROOT / "docs" / "report-sections-dev.jsonl"
LABELS = ROOT / "docs" / "report-sections-dev-labels.jsonl"
CHOICE = ROOT / "docs" / "report-sections-dev-choice.json"

FLOOR = 0.40  # answer.section_floor, chosen on BioASQ (docs/eval.md "Report section floor")
TARGET_RECALL = 0.90
COMPARE = (-0.01, 0.0, 0.02)  # BioASQ's delta, zero, the config default at the time of writing
BOOTSTRAP = 2000
SEED = 13

#: report questions on what the sample corpus covers, each mixing facets it has evidence on with
#: facets it has none on (the mRNA-beyond-COVID example report is the held-out test: not here)
QUESTIONS = [
    "What are the latest developments in personalized neoantigen mRNA cancer vaccines? Cover "
    "pancreatic cancer, hepatocellular carcinoma, combination with PD-1 inhibitors and "
    "orthopaedic surgery.",
    "What are the latest developments in mRNA therapies for inherited metabolic disorders? Cover "
    "propionic acidemia, methylmalonic acidemia, glycogen storage disease, dental caries and "
    "manufacturing cost.",
    "What are the latest developments in mRNA vaccines against respiratory viruses? Cover "
    "influenza, respiratory syncytial virus, older adults and veterinary use.",
    "What are the latest developments in mRNA immunotherapy for Epstein-Barr virus-related "
    "tumours? Cover nasopharyngeal carcinoma, lymphoma, T cell responses and pregnancy.",
    "What are the latest developments in lipid nanoparticle delivery of RNA? Cover glioblastoma, "
    "osteosarcoma, inhaled delivery, cold-chain storage and knee osteoarthritis.",
    "What are the latest developments in immune checkpoint inhibitors combined with cancer "
    "vaccines? Cover melanoma, non-small cell lung cancer, immune-related adverse events and "
    "paediatric patients.",
    "What are the latest developments in mRNA COVID-19 vaccination of immunocompromised "
    "patients? Cover kidney transplant recipients, chronic lymphocytic leukemia, booster doses "
    "and hair loss.",
    "What are the latest developments in mRNA-engineered cell therapies? Cover CAR T cells, "
    "myasthenia gravis, chronic granulomatous disease, hepatitis B and sports medicine.",
    "What are the latest developments in mRNA vaccines against chronic viral infections? Cover "
    "HIV, cytomegalovirus, Ebola, antibiotic resistance and regulatory approval.",
    "What are the latest developments in cancer vaccines for digestive system tumours? Cover "
    "gastric cancer, cholangiocarcinoma, esophageal cancer, dietary supplements and veterinary "
    "use.",
    "What are the latest developments in RNA-targeted therapies for rare genetic diseases? Cover "
    "Duchenne muscular dystrophy, spinal muscular atrophy, Huntington's disease, cystic fibrosis "
    "and cosmetic dermatology.",
    "What are the latest developments in mRNA expression signatures in breast cancer? Cover "
    "triple-negative breast cancer, lncRNA signatures, BRCA1, health economics and orthodontics.",
]


# -- step 1: dump ---------------------------------------------------------------------------------
def dump() -> int:
    os.environ["LITRAG_ANSWER__SECTION_FLOOR"] = "-1"
    os.environ["LITRAG_ANSWER__FACET_CONTRAST"] = "-1"
    os.environ["LITRAG_ANSWER__MIN_RELEVANCE"] = "-1"
    from fastapi.testclient import TestClient

    from core.config import Settings
    from service.answer.plan import OVERVIEW, is_trials_facet
    from service.app import create_app

    settings = Settings()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with TestClient(create_app(settings)) as client:
        for qi, question in enumerate(QUESTIONS, 1):
            resp = client.post("/v1/answer", json={"question": question, "mode": "report"})
            resp.raise_for_status()
            report = resp.json()
            cites = {c["n"]: c for c in report["citations"]}
            passages = {p["chunk_id"]: p for p in report["passages"]}
            core = next((s["query"] for s in report["sections"] if s["title"] == OVERVIEW), "")
            for sec in report["sections"]:
                if sec["title"] == OVERVIEW or is_trials_facet(sec["title"]):
                    continue
                sentences = []
                for s in report["verification"]["sentences"]:
                    if s["section"] != sec["title"]:
                        continue
                    cited = []
                    for n in s["citations"]:
                        c = cites[n]
                        p = passages.get(c["chunk_id"], {})
                        cited.append(
                            {
                                "n": n,
                                "doc_id": c["doc_id"],
                                "title": c["title"],
                                "section": p.get("section") or c.get("section"),
                                "chunk_id": c["chunk_id"],
                            }
                        )
                    sentences.append({"text": s["text"], "verdict": s["verdict"], "cited": cited})
                rows.append(
                    {
                        "q": qi,
                        "question": question,
                        "section": sec["title"],
                        "query": sec["query"],
                        "core": core,
                        "relevance": sec["relevance"],
                        "facet_contrast": sec["facet_contrast"],
                        "sentences": sentences,
                    }
                )
            print(f"{qi}/{len(QUESTIONS)} {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    DUMP.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} facet sections of {len(QUESTIONS)} questions -> {DUMP.relative_to(ROOT)}")
    return 0


# -- step 3: choose -------------------------------------------------------------------------------
Row = tuple[int, float, float, bool]  # question number, relevance, contrast, has_evidence


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _auc(pos: list[float], neg: list[float]) -> float:
    """P(score of a section with evidence > score of one without) + 0.5 P(tie)."""
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _rates(rows: list[Row], floor: float, delta: float) -> dict[str, float]:
    """Recall (sections with evidence kept), specificity (those without, emptied), balanced
    accuracy of "relevance >= floor AND contrast >= delta" (-inf turns a test off)."""
    kept = [rel >= floor and con >= delta for _, rel, con, _ in rows]
    pos = [k for k, r in zip(kept, rows, strict=True) if r[3]]
    neg = [not k for k, r in zip(kept, rows, strict=True) if not r[3]]
    recall = sum(pos) / len(pos) if pos else math.nan
    spec = sum(neg) / len(neg) if neg else math.nan
    return {
        "recall_evidence": round(recall, 4),
        "specificity_no_evidence": round(spec, 4),
        "balanced_accuracy": round((recall + spec) / 2, 4),
        "emptied_with_evidence": len(pos) - sum(pos),
        "kept_without_evidence": len(neg) - sum(neg),
    }


def _cuts(values: list[float]) -> list[float]:
    vals = sorted(set(values))
    mids = [(a + b) / 2 for a, b in itertools.pairwise(vals)]
    return [vals[0] - 1e-3, *mids, vals[-1] + 1e-3]


def _best(rows: list[Row], floor: float, target: float | None, on: str = "contrast") -> float:
    """The cut of best balanced accuracy (lowest among equals), with recall >= ``target``."""
    idx = 2 if on == "contrast" else 1
    best_cut, best_ba = -math.inf, -1.0
    for cut in _cuts([r[idx] for r in rows]):
        r = _rates(rows, floor, cut) if on == "contrast" else _rates(rows, cut, -math.inf)
        if target is not None and r["recall_evidence"] < target - 1e-9:
            continue
        if r["balanced_accuracy"] > best_ba + 1e-12:
            best_cut, best_ba = cut, r["balanced_accuracy"]
    return best_cut


def _round(x: float, rows: list[Row]) -> float:
    """``x`` to the nearest 0.005, or down to it if the nearest classifies a section differently
    (then to 4 places if that does too)."""

    def same(c: float) -> bool:
        return all((r[2] >= c) == (r[2] >= x) for r in rows)

    for c in (round(x * 200) / 200, math.floor(x * 200 + 1e-9) / 200):
        if same(c):
            return c
    return round(x, 4)


def _choice(rows: list[Row]) -> dict[str, Any]:
    cut = _best(rows, FLOOR, TARGET_RECALL)
    d = _round(cut, rows)
    return {"delta": d, "unrounded": round(cut, 4), **_rates(rows, FLOOR, d)}


def choose() -> int:
    dumped = {(r["question"], r["section"]): r for r in _read(DUMP)}
    labels = _read(LABELS)
    missing = [k for k in dumped if k not in {(lb["question"], lb["section"]) for lb in labels}]
    if missing:
        print(f"{len(missing)} dumped sections have no label, e.g. {missing[0]}", file=sys.stderr)
        return 1
    rows: list[Row] = []
    borderline: list[bool] = []
    for lb in labels:
        d = dumped[(lb["question"], lb["section"])]
        rows.append((d["q"], d["relevance"], d["facet_contrast"], bool(lb["has_evidence"])))
        borderline.append(bool(lb.get("borderline", False)))
    sensitivity = {
        "borderline_sections": sum(borderline),
        "borderline_left_out": _choice([r for r, b in zip(rows, borderline, strict=True) if not b]),
        "borderline_flipped": _choice(
            [(q, rel, con, y != b) for (q, rel, con, y), b in zip(rows, borderline, strict=True)]
        ),
    }
    n_pos = sum(r[3] for r in rows)
    rel_pos = [r[1] for r in rows if r[3]]
    rel_neg = [r[1] for r in rows if not r[3]]
    con_pos = [r[2] for r in rows if r[3]]
    con_neg = [r[2] for r in rows if not r[3]]

    joint_opt = _best(rows, FLOOR, TARGET_RECALL)
    delta = _round(joint_opt, rows)
    contrast_opt = _best(rows, -math.inf, TARGET_RECALL)
    contrast_free = _best(rows, -math.inf, None)
    joint_free = _best(rows, FLOOR, None)
    table: list[dict[str, Any]] = [
        {"rule": f"relevance >= {FLOOR:.2f} (floor alone)", **_rates(rows, FLOOR, -math.inf)},
        {
            "rule": f"contrast >= {contrast_opt:.4f} (contrast alone, best bal. acc. with recall "
            f">= {TARGET_RECALL})",
            **_rates(rows, -math.inf, contrast_opt),
        },
        {
            "rule": f"contrast >= {contrast_free:.4f} (contrast alone, best bal. acc.)",
            **_rates(rows, -math.inf, contrast_free),
        },
        *(
            {
                "rule": f"relevance >= {FLOOR:.2f} AND contrast >= {c:g} (comparison)",
                **_rates(rows, FLOOR, c),
            }
            for c in COMPARE
        ),
        {
            "rule": f"relevance >= {FLOOR:.2f} AND contrast >= {joint_free:.4f} (joint, best "
            "bal. acc.)",
            **_rates(rows, FLOOR, joint_free),
        },
        {
            "rule": f"relevance >= {FLOOR:.2f} AND contrast >= {joint_opt:.4f} (joint, best bal. "
            f"acc. with recall >= {TARGET_RECALL})",
            **_rates(rows, FLOOR, joint_opt),
        },
        {
            "rule": f"relevance >= {FLOOR:.2f} AND contrast >= {delta:g} (chosen: the above "
            "rounded to 0.005)",
            **_rates(rows, FLOOR, delta),
        },
    ]

    # leave one question out: delta chosen on the other questions, applied to the held-out one
    held: list[tuple[bool, bool]] = []
    per_q: dict[int, float] = {}
    for q in sorted({r[0] for r in rows}):
        train = [r for r in rows if r[0] != q]
        d_q = _round(_best(train, FLOOR, TARGET_RECALL), train)
        per_q[q] = d_q
        held += [(r[1] >= FLOOR and r[2] >= d_q, r[3]) for r in rows if r[0] == q]
    lo_pos = [k for k, y in held if y]
    lo_neg = [not k for k, y in held if not y]
    lo_recall = sum(lo_pos) / len(lo_pos)
    lo_spec = sum(lo_neg) / len(lo_neg)
    loqo: dict[str, Any] = {
        "deltas": per_q,
        "recall_evidence": round(lo_recall, 4),
        "specificity_no_evidence": round(lo_spec, 4),
        "balanced_accuracy": round((lo_recall + lo_spec) / 2, 4),
    }

    # bootstrap over questions: the chosen rule's rates and the contrast AUC
    rng = random.Random(SEED)
    qs = sorted({r[0] for r in rows})
    by_q = {q: [r for r in rows if r[0] == q] for q in qs}
    boots: dict[str, list[float]] = {"recall": [], "spec": [], "ba": [], "auc_contrast": []}
    for _ in range(BOOTSTRAP):
        sample = [r for q in rng.choices(qs, k=len(qs)) for r in by_q[q]]
        got = _rates(sample, FLOOR, delta)
        if math.isnan(got["balanced_accuracy"]):
            continue
        boots["recall"].append(got["recall_evidence"])
        boots["spec"].append(got["specificity_no_evidence"])
        boots["ba"].append(got["balanced_accuracy"])
        boots["auc_contrast"].append(
            _auc([r[2] for r in sample if r[3]], [r[2] for r in sample if not r[3]])
        )

    def ci(v: list[float]) -> list[float]:
        s = sorted(v)
        return [round(s[int(0.025 * len(s))], 4), round(s[int(0.975 * len(s)) - 1], 4)]

    out: dict[str, Any] = {
        "sections": len(rows),
        "questions": len(qs),
        "has_evidence": n_pos,
        "no_evidence": len(rows) - n_pos,
        "floor": FLOOR,
        "target_recall": TARGET_RECALL,
        "auc_relevance": round(_auc(rel_pos, rel_neg), 4),
        "auc_contrast": round(_auc(con_pos, con_neg), 4),
        "delta_unrounded": round(joint_opt, 4),
        "delta": delta,
        "table": table,
        "leave_one_question_out": loqo,
        "borderline_sensitivity": sensitivity,
        "bootstrap_over_questions_95ci": {k: ci(v) for k, v in boots.items()},
        "scores": [
            {"q": r[0], "relevance": r[1], "facet_contrast": r[2], "has_evidence": r[3]}
            for r in rows
        ],
    }
    CHOICE.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"{len(rows)} sections of {len(qs)} questions: {n_pos} with evidence, "
        f"{len(rows) - n_pos} without"
    )
    print(f"AUC relevance {out['auc_relevance']}, AUC contrast {out['auc_contrast']}")
    print("| rule | recall | spec. | bal. acc. | emptied w/ evidence | kept w/o evidence |")
    print("|---|---|---|---|---|---|")
    for t in table:
        print(
            f"| {t['rule']} | {t['recall_evidence']:.3f} | {t['specificity_no_evidence']:.3f} | "
            f"{t['balanced_accuracy']:.3f} | {t['emptied_with_evidence']} | "
            f"{t['kept_without_evidence']} |"
        )
    print(f"chosen delta {delta} (unrounded {joint_opt:.4f})")
    print(f"leave one question out: {loqo}")
    print(f"borderline labels: {sensitivity}")
    print(f"bootstrap 95% CI over questions: {out['bootstrap_over_questions_95ci']}")
    print(f"-> {CHOICE.relative_to(ROOT)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--choose", action="store_true", help="choose delta from the labels file")
    args = ap.parse_args()
    return choose() if args.choose else dump()


if __name__ == "__main__":
    sys.exit(main())
