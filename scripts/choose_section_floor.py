"""Choose the report's section floor on labelled data (BioASQ golden sets), never by hand.

    nice -n 10 .venv/bin/python scripts/choose_section_floor.py

A report section says "No retrieved evidence on <facet>." when the best relevance of its candidate
sentences (``service.answer.extractive.relevance``: 0.75 cosine + 0.25 rare-word overlap) is below
``answer.section_floor``. This script simulates the two situations that floor must tell apart:

* case A, evidence present: the question's own gold snippet sentences (positives) together with
  8 hard negatives;
* case B, no evidence: the 8 hard negatives alone.

Hard negatives are sentences from the gold snippets of *other* sampled questions of the same split,
the 8 nearest to the question by cosine, from questions sharing no gold document (nor the same
wording) with it: topically near, off the facet. Sentences come from ``core.chunking.
split_sentences`` on each snippet, with the source's "[n]" markers removed as the service does,
kept when 40-600 characters long. BioASQ snippets carry no document title, so every candidate is
scored as the sentence text alone (no "header: " prefix), for positives and negatives alike.
``relevance`` normalises the rare-word overlap over its candidate set, so each case is scored with
its own candidates. The embedder is the service's configured one (``load_embedder``).

TRAIN = a fixed-seed sample of Task 7b-9b questions, DEV = one of Task 10b-11b (questions whose
wording also occurs in 7b-9b are left out of DEV). Floors are chosen on TRAIN only: the one with the
best balanced accuracy, the highest one that keeps recall on case A >= 0.95, and the best balanced
accuracy among floors keeping that recall (a section with evidence wrongly emptied is the worse
error). The recommended floor is the last rounded down to 0.01; all are reported on TRAIN and DEV
with ROC AUC, DEV with bootstrap 95 % intervals.

Second experiment, the facet contrast (key ``facet_contrast``). A report's facet section queries
"<facet> <core>" while every passage was retrieved for the core topic, so an absolute floor passes
off-facet sections. The rule: for the top-3 candidates by ``relevance(section query, ·)``, the mean
of cos(section query, s) - cos(core, s); the section has evidence when it is >= delta. The BioASQ
analog: facet = the question's 2 content words (tokens ``[a-z0-9][a-z0-9-]+`` of the lower-cased
question, not in the relevance's stop words) of highest IDF over all questions of the split (ties:
first in the question), core = the question with every occurrence of those two words removed,
section query = the full question. Same questions, same case A / case B candidates; delta is chosen
on TRAIN by the same policy (best balanced accuracy keeping recall A >= 0.95, rounded down to
0.005), and the joint rule (relevance floor AND contrast >= delta) is reported too.
Writes ``docs/section-floor.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.chunking import split_sentences
from core.config import get_settings
from core.embedding import CachedEmbedder, load_embedder
from core.verify.terms import SOURCE_REFS
from service.answer.extractive import _STOP as STOP_WORDS
from service.answer.extractive import relevance

ROOT = Path(__file__).resolve().parent.parent
Vector = npt.NDArray[np.float32]
Scores = npt.NDArray[np.float64]

DATA = ROOT.parent / "shared" / "data" / "eval" / "bioasq"
TRAIN_TASKS, DEV_TASKS = ("7", "8", "9"), ("10", "11")
MIN_CHARS, MAX_CHARS = 40, 600
TARGET_RECALL = 0.95
# facet contrast: a question's facet is its FACET_WORDS rarest content words; the rule averages
# the contrast over the TOP_K most relevant candidates
FACET_WORDS, TOP_K = 2, 3
WORD = re.compile(r"[a-z0-9][a-z0-9\-]+")  # service.answer.extractive's tokens
WORD_ANY_CASE = re.compile(r"[a-z0-9][a-z0-9\-]+", re.IGNORECASE)


@dataclass
class Question:
    qid: str
    body: str
    docs: frozenset[str]
    positives: list[str]


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _sentences(text: str) -> list[str]:
    out = []
    for a, b in split_sentences(text):
        s = SOURCE_REFS.sub("", text[a:b]).strip()
        if MIN_CHARS <= len(s) <= MAX_CHARS:
            out.append(s)
    return out


def _files(tasks: tuple[str, ...]) -> list[Path]:
    return [f for t in tasks for f in sorted((DATA / f"Task{t}BGoldenEnriched").glob("*.json"))]


def _load(files: list[Path]) -> list[Question]:
    seen: set[str] = set()
    out = []
    for f in files:
        for q in json.loads(f.read_text(encoding="utf-8"))["questions"]:
            if q["id"] in seen:
                continue
            seen.add(q["id"])
            sents = [s for sn in q.get("snippets", []) for s in _sentences(sn["text"])]
            docs = frozenset(d.rstrip("/").rsplit("/", 1)[-1] for d in q.get("documents", []))
            docs |= {sn["document"].rstrip("/").rsplit("/", 1)[-1] for sn in q.get("snippets", [])}
            out.append(Question(q["id"], q["body"].strip(), docs, list(dict.fromkeys(sents))))
    return out


def _sample(qs: list[Question], n: int, cap: int, rng: random.Random) -> list[Question]:
    usable = [q for q in qs if q.positives]
    picked = rng.sample(usable, min(n, len(usable)))
    for q in picked:
        if len(q.positives) > cap:
            q.positives = rng.sample(q.positives, cap)
    return picked


def _auc(a: Scores, b: Scores) -> float:
    """P(score_A > score_B) + 0.5 P(tie): the ROC AUC of "A passes, B fails"."""
    diff = a[:, None] - b[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def _at(a: Scores, b: Scores, floor: float) -> dict[str, float]:
    recall = float((a >= floor).mean())  # sections with evidence that are kept
    spec = float((b < floor).mean())  # sections without evidence that say so
    return {
        "floor": round(floor, 4),
        "recall_evidence": round(recall, 4),
        "specificity_no_evidence": round(spec, 4),
        "balanced_accuracy": round((recall + spec) / 2, 4),
    }


def _best_ba_floor(a: Scores, b: Scores, highest: float = np.inf) -> float:
    """The floor (a midpoint between observed scores, at most ``highest``) of best balanced
    accuracy."""
    vals = np.unique(np.concatenate([a, b]))
    cuts = np.concatenate([[vals[0] - 1e-3], (vals[1:] + vals[:-1]) / 2, [vals[-1] + 1e-3]])
    cuts = np.append(cuts[cuts <= highest], min(highest, cuts[-1]))
    ba = [(float((a >= c).mean()) + float((b < c).mean())) / 2 for c in cuts]
    best = max(ba)
    # among equally good cuts, the lowest (it keeps the most sections with evidence)
    return float(cuts[next(i for i, v in enumerate(ba) if v == best)])


def _recall_floor(a: Scores, target: float) -> float:
    """The highest floor that keeps at least ``target`` of case A."""
    srt = np.sort(a)
    misses = int(np.floor((1 - target) * len(srt) + 1e-9))
    return float(srt[misses])


def _bootstrap(a: Scores, b: Scores, floor: float, n: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    keys = ("recall_evidence", "specificity_no_evidence", "balanced_accuracy", "auc")
    res: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(n):
        idx = rng.integers(0, len(a), len(a))  # resample questions: A and B are paired
        m = _at(a[idx], b[idx], floor)
        for k in keys[:3]:
            res[k].append(m[k])
        res["auc"].append(_auc(a[idx], b[idx]))
    return {
        k: [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]
        for k, v in res.items()
    }


def _summary(x: Scores) -> dict[str, float]:
    qs = np.percentile(x, [5, 25, 50, 75, 95])
    return {
        "mean": round(float(x.mean()), 4),
        **{f"p{p}": round(float(v), 4) for p, v in zip((5, 25, 50, 75, 95), qs, strict=True)},
    }


def _score_split(
    qs: list[Question], emb: CachedEmbedder, qvec: dict[str, Vector], n_neg: int
) -> dict[str, Any]:
    pool: list[tuple[int, str]] = [(i, s) for i, q in enumerate(qs) for s in q.positives]
    pool_vecs = emb.embed([s for _, s in pool])
    owner = np.array([i for i, _ in pool])
    rows = []
    negatives: list[list[str]] = []
    for i, q in enumerate(qs):
        blocked = {
            j
            for j, o in enumerate(qs)
            if j == i or (o.docs & q.docs) or _norm(o.body) == _norm(q.body)
        }
        own = set(q.positives)
        cos = pool_vecs @ qvec[q.qid]
        negs: list[str] = []
        for k in np.argsort(-cos, kind="stable"):
            s = pool[int(k)][1]
            if int(owner[k]) in blocked or s in own or s in negs:
                continue
            negs.append(s)
            if len(negs) == n_neg:
                break
        negatives.append(negs)
        rel_a, _ = relevance(q.body, [*q.positives, *negs], emb)
        rel_b, _ = relevance(q.body, negs, emb)
        top = int(np.argmax(rel_a))
        rows.append(
            {
                "id": q.qid,
                "n_pos": len(q.positives),
                "n_neg": len(negs),
                "A": round(float(rel_a.max()), 4),
                "B": round(float(rel_b.max()), 4),
                "A_best_is_positive": top < len(q.positives),
                "B_best": negs[int(np.argmax(rel_b))],  # to audit the "no evidence" labels
            }
        )
    a = np.array([r["A"] for r in rows], dtype=np.float64)
    b = np.array([r["B"] for r in rows], dtype=np.float64)
    return {"rows": rows, "A": a, "B": b, "negatives": negatives}


def _content_words(text: str) -> list[str]:
    return list(dict.fromkeys(w for w in WORD.findall(text.lower()) if w not in STOP_WORDS))


def _idf(qs: list[Question]) -> dict[str, float]:
    """log(N / df) of each content word over the questions ``qs`` (df: questions containing it)."""
    df: dict[str, int] = {}
    for q in qs:
        for w in _content_words(q.body):
            df[w] = df.get(w, 0) + 1
    return {w: float(np.log(len(qs) / n)) for w, n in df.items()}


def _facet_core(body: str, idf: dict[str, float]) -> tuple[list[str], str]:
    """(the FACET_WORDS content words of highest IDF, the question without them)."""
    words = _content_words(body)
    order = sorted(range(len(words)), key=lambda k: (-idf[words[k]], k))
    facet = [words[k] for k in order[:FACET_WORDS]]
    core = WORD_ANY_CASE.sub(lambda m: "" if m.group().lower() in facet else m.group(), body)
    return facet, re.sub(r"\s+", " ", core).strip()


def _contrast(question: str, core: str, contexts: list[str], emb: CachedEmbedder) -> float:
    """Mean of cos(question, s) - cos(core, s) over the TOP_K contexts by relevance(question)."""
    rel, sv = relevance(question, contexts, emb)
    top = np.argsort(-rel, kind="stable")[:TOP_K]
    qv, cv = emb.embed([question, core])
    return float(np.mean(sv[top] @ qv - sv[top] @ cv))


def _contrast_split(
    qs: list[Question], split: dict[str, Any], idf: dict[str, float], emb: CachedEmbedder
) -> dict[str, Any]:
    rows = []
    for q, negs, base in zip(qs, split["negatives"], split["rows"], strict=True):
        facet, core = _facet_core(q.body, idf)
        rows.append(
            {
                "id": q.qid,
                "facet": facet,
                "core": core,
                "core_has_content_word": bool(_content_words(core)),
                "A": round(_contrast(q.body, core, [*q.positives, *negs], emb), 4),
                "B": round(_contrast(q.body, core, negs, emb), 4),
                "A_relevance": base["A"],
                "B_relevance": base["B"],
            }
        )
    a = np.array([r["A"] for r in rows], dtype=np.float64)
    b = np.array([r["B"] for r in rows], dtype=np.float64)
    return {"rows": rows, "A": a, "B": b}


def _joint(
    split: dict[str, Any], con: dict[str, Any], floor: float, delta: float
) -> dict[str, Any]:
    """Evidence iff best relevance >= floor AND contrast >= delta."""
    keep_a = (split["A"] >= floor) & (con["A"] >= delta)
    keep_b = (split["B"] >= floor) & (con["B"] >= delta)
    recall, spec = float(keep_a.mean()), float((~keep_b).mean())
    return {
        "floor": floor,
        "delta": delta,
        "recall_evidence": round(recall, 4),
        "specificity_no_evidence": round(spec, 4),
        "balanced_accuracy": round((recall + spec) / 2, 4),
    }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train", type=int, default=300, help="TRAIN questions (Task 7b-9b)")
    ap.add_argument("--dev", type=int, default=300, help="DEV questions (Task 10b-11b)")
    ap.add_argument("--max-positives", type=int, default=8, help="Gold sentences per question")
    ap.add_argument("--negatives", type=int, default=8, help="Hard negatives per question")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "section-floor.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rng = random.Random(args.seed)

    train_files, dev_files = _files(TRAIN_TASKS), _files(DEV_TASKS)
    train_all, dev_all = _load(train_files), _load(dev_files)
    train_bodies = {_norm(q.body) for q in train_all}
    train_ids = {q.qid for q in train_all}
    dev_all = [q for q in dev_all if _norm(q.body) not in train_bodies and q.qid not in train_ids]
    train = _sample(train_all, args.train, args.max_positives, rng)
    dev = _sample(dev_all, args.dev, args.max_positives, rng)

    settings = get_settings().embedding
    emb = CachedEmbedder(load_embedder(settings))
    texts = list(
        dict.fromkeys([q.body for q in train + dev] + [s for q in train + dev for s in q.positives])
    )
    print(f"embedding {len(texts)} distinct texts with {emb.name} ...", flush=True)
    t1 = time.perf_counter()
    for k in range(0, len(texts), 256):
        emb.embed(texts[k : k + 256])
        rate = min(k + 256, len(texts)) / (time.perf_counter() - t1)
        print(f"  {min(k + 256, len(texts))}/{len(texts)} ({rate:.0f}/s)", flush=True)
    qvec = {q.qid: emb.embed([q.body])[0] for q in train + dev}

    tr = _score_split(train, emb, qvec, args.negatives)
    dv = _score_split(dev, emb, qvec, args.negatives)
    ba_floor = _best_ba_floor(tr["A"], tr["B"])
    rec_floor = _recall_floor(tr["A"], TARGET_RECALL)
    # best balanced accuracy among the floors that keep >= 95 % of TRAIN sections with evidence
    constrained = _best_ba_floor(tr["A"], tr["B"], rec_floor)
    chosen = float(np.floor(constrained * 100) / 100)

    # Second experiment: the facet contrast, on the same questions and candidate sets.
    idf_train, idf_dev = _idf(train_all), _idf(dev_all)
    cores = [_facet_core(q.body, idf_train)[1] for q in train]
    cores += [_facet_core(q.body, idf_dev)[1] for q in dev]
    emb.embed(list(dict.fromkeys(cores)))
    ctr = _contrast_split(train, tr, idf_train, emb)
    cdv = _contrast_split(dev, dv, idf_dev, emb)
    c_ba = _best_ba_floor(ctr["A"], ctr["B"])
    c_rec = _recall_floor(ctr["A"], TARGET_RECALL)
    c_constrained = _best_ba_floor(ctr["A"], ctr["B"], c_rec)
    delta = float(np.floor(c_constrained * 200) / 200)  # rounded down to 0.005

    def c_block(con: dict[str, Any], split: dict[str, Any]) -> dict[str, Any]:
        a, b = con["A"], con["B"]
        rows = con["rows"]
        content = np.array([r["core_has_content_word"] for r in rows])
        return {
            "questions": len(rows),
            "core_without_content_word": int((~content).sum()),
            "auc": round(_auc(a, b), 4),
            "auc_core_with_content_word": round(_auc(a[content], b[content]), 4),
            "A_scores": _summary(a),
            "B_scores": _summary(b),
            "at_best_balanced_accuracy_delta": _at(a, b, c_ba),
            "at_highest_recall_0.95_delta": _at(a, b, c_rec),
            "at_chosen_delta": _at(a, b, delta),
            "joint_with_chosen_floor": _joint(split, con, chosen, delta),
            "curve": [_at(a, b, d / 200) for d in range(-10, 31)],
        }

    facet_contrast: dict[str, Any] = {
        "rule": "section query q, core c, candidates s (context 'header: sentence'; here the "
        "sentence alone): contrast = mean over the top-3 s by relevance(q, candidates) of "
        "cos(q, s) - cos(c, s); evidence iff contrast >= delta",
        "bioasq_analog": "facet = the question's 2 content words (tokens [a-z0-9][a-z0-9-]+ of "
        "the lower-cased question, not service.answer.extractive stop words) of highest IDF "
        "(log N/df) over all questions of the split, ties to the earlier word; core = the "
        "question with every occurrence of them removed; section query = the full question",
        "idf_questions": {"train": len(train_all), "dev": len(dev_all)},
        "deltas_chosen_on_train": {
            "best_balanced_accuracy": round(c_ba, 4),
            "highest_with_recall_0.95": round(c_rec, 4),
            "best_balanced_accuracy_with_recall_0.95": round(c_constrained, 4),
            "chosen": delta,
            "why": "same policy as the floor: best TRAIN balanced accuracy among the deltas "
            "keeping >= 95 % of TRAIN sections with evidence, rounded down to 0.005",
        },
        "train": c_block(ctr, tr),
        "dev": c_block(cdv, dv),
        "dev_bootstrap_95ci_at_chosen_delta": _bootstrap(
            cdv["A"], cdv["B"], delta, args.bootstrap, args.seed
        ),
        "scores": {"train": ctr["rows"], "dev": cdv["rows"]},
    }

    def block(split: dict[str, Any]) -> dict[str, Any]:
        a, b = split["A"], split["B"]
        rows = split["rows"]
        return {
            "questions": len(rows),
            "positive_sentences": int(sum(r["n_pos"] for r in rows)),
            "negatives_per_question": min(r["n_neg"] for r in rows),
            "auc": round(_auc(a, b), 4),
            "A_best_sentence_is_positive": round(
                float(np.mean([r["A_best_is_positive"] for r in rows])), 4
            ),
            "A_scores": _summary(a),
            "B_scores": _summary(b),
            "at_best_balanced_accuracy_floor": _at(a, b, ba_floor),
            "at_highest_recall_0.95_floor": _at(a, b, rec_floor),
            "at_chosen_floor": _at(a, b, chosen),
            "curve": [_at(a, b, f / 100) for f in range(30, 61)],
        }

    result: dict[str, Any] = {
        "command": "nice -n 10 .venv/bin/python scripts/choose_section_floor.py",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "embedder": {"name": emb.name, "model": settings.model, "dim": emb.dim},
        "relevance": "service.answer.extractive.relevance: 0.75 cosine + 0.25 rare-word overlap; "
        "contexts are the sentence text alone (BioASQ snippets carry no title)",
        "data": {
            "train_tasks": "7b-9b",
            "dev_tasks": "10b-11b",
            "files": [
                {
                    "path": str(f.relative_to(DATA.parent.parent.parent)),
                    "bytes": f.stat().st_size,
                    "sha256": _sha(f),
                }
                for f in train_files + dev_files
            ],
            "train_questions_available": len(train_all),
            "dev_questions_available_after_dedup": len(dev_all),
        },
        "floors_chosen_on_train": {
            "best_balanced_accuracy": round(ba_floor, 4),
            "highest_with_recall_0.95": round(rec_floor, 4),
            "best_balanced_accuracy_with_recall_0.95": round(constrained, 4),
            "chosen": chosen,
            "why": "best TRAIN balanced accuracy among the floors keeping >= 95 % of TRAIN "
            "sections with evidence, rounded down to 0.01: emptying a section that has evidence "
            "is worse than keeping an off-topic one",
        },
        "train": block(tr),
        "dev": block(dv),
        "dev_bootstrap_95ci_at_chosen_floor": _bootstrap(
            dv["A"], dv["B"], chosen, args.bootstrap, args.seed
        ),
        "seconds": round(time.perf_counter() - t0, 1),
        "scores": {"train": tr["rows"], "dev": dv["rows"]},
        "facet_contrast": facet_contrast,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for name in ("train", "dev"):
        b = result[name]
        print(name, "AUC", b["auc"], "| best-BA", b["at_best_balanced_accuracy_floor"])
        print(
            name, "recall-0.95", b["at_highest_recall_0.95_floor"], "| chosen", b["at_chosen_floor"]
        )
    print("floors", result["floors_chosen_on_train"])
    for name in ("train", "dev"):
        b = facet_contrast[name]
        print(name, "contrast AUC", b["auc"], "| chosen", b["at_chosen_delta"])
        print(name, "joint", b["joint_with_chosen_floor"])
    print("deltas", facet_contrast["deltas_chosen_on_train"])
    print("wrote", args.out)


if __name__ == "__main__":
    main()
