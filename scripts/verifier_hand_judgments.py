"""Judge the verifier's verdicts on LLM sentences by hand.

    python scripts/verifier_hand_judgments.py sample RUN_DIR... --out FILE [--n 50]
    python scripts/verifier_hand_judgments.py score FILE

``sample`` reads the ``responses.jsonl`` of ``litrag eval answers`` runs and writes one JSON line
per LLM sentence (in run, question and sentence order, the first ``--n``): the sentence, the
verifier's verdict and reason, and the full text of every passage it cites — the final answer's
sentences and the first attempt's failing sentences that the regeneration replaced; sentences
that cite no passage are left out (their verdict is a rule, not the verifier's). A person
then reads each sentence against its passages and sets ``hand`` to "supported" or
"not_supported" (with a ``note``). ``score`` compares ``hand`` with the verdicts: agreement,
precision of "supported" (of the sentences the verifier passed, how many a reader finds
supported) and of "not supported".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _passage_texts(resp: dict[str, Any], chunk_ids: list[str]) -> list[dict[str, Any]]:
    by_id = {p["chunk_id"]: p for p in resp.get("passages", [])}
    return [
        {"rank": by_id[c]["rank"], "chunk_id": c, "text": by_id[c]["text"]}
        for c in chunk_ids
        if c in by_id
    ]


def sentences_of(qid: str, kind: str, resp: dict[str, Any]) -> list[dict[str, Any]]:
    """The response's verified sentences, then the failing sentences of a replaced attempt 1."""
    if resp.get("generator") != "llm":
        return []
    v = resp["verification"]
    cites = {c["n"]: c["chunk_id"] for c in resp.get("citations", [])}
    out = []
    attempts = v.get("attempts") or []
    used = next((a["attempt"] for a in attempts if a.get("used")), 1)
    for s in v["sentences"]:
        out.append(
            {
                "qid": qid,
                "kind": kind,
                "attempt": used,
                "sentence": s["text"],
                "verdict": s["verdict"],
                "reason": s["reason"],
                "passages": _passage_texts(resp, [cites[n] for n in s["citations"] if n in cites]),
            }
        )
    if used == 2:
        ranked = {p["rank"]: p["chunk_id"] for p in resp.get("passages", [])}
        for f in attempts[0]["failing"]:
            out.append(
                {
                    "qid": qid,
                    "kind": kind,
                    "attempt": 1,
                    "sentence": f["text"],
                    "verdict": f["verdict"],
                    "reason": f["reason"],
                    "passages": _passage_texts(resp, [ranked[r] for r in f["passages"]]),
                }
            )
    return out


def sample(runs: list[Path], n: int) -> list[dict[str, Any]]:
    """The first ``n`` LLM sentences of the runs' responses (duplicates once)."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for run in runs:
        for line in (run / "responses.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            for s in sentences_of(str(r["qid"]), r["kind"], r["response"]):
                key = (s["qid"], s["kind"], s["sentence"])
                # a sentence citing nothing is "not supported" by rule, not by the verifier
                if s["passages"] and key not in seen:
                    seen.add(key)
                    rows.append({"run": run.name, **s, "hand": None, "note": ""})
    return rows[:n]


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Agreement of the verdicts with the hand judgments (contradicted counts as not supported)."""
    judged = [r for r in rows if r.get("hand") in ("supported", "not_supported")]

    def says(r: dict[str, Any]) -> str:
        return "supported" if r["verdict"] == "supported" else "not_supported"

    agree = sum(says(r) == r["hand"] for r in judged)
    passed = [r for r in judged if says(r) == "supported"]
    failed = [r for r in judged if says(r) == "not_supported"]
    return {
        "judged": len(judged),
        "agreement": agree / len(judged) if judged else None,
        "verifier_supported": len(passed),
        "precision_supported": (
            sum(r["hand"] == "supported" for r in passed) / len(passed) if passed else None
        ),
        "verifier_not_supported": len(failed),
        "precision_not_supported": (
            sum(r["hand"] == "not_supported" for r in failed) / len(failed) if failed else None
        ),
        "hand_supported": sum(r["hand"] == "supported" for r in judged),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("sample")
    a.add_argument("runs", nargs="+", type=Path)
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--n", type=int, default=50)
    b = sub.add_parser("score")
    b.add_argument("file", type=Path)
    args = ap.parse_args()
    if args.cmd == "sample":
        rows = sample(args.runs, args.n)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {len(rows)} sentences to {args.out}")
    else:
        lines = args.file.read_text(encoding="utf-8").splitlines()
        print(json.dumps(score([json.loads(x) for x in lines]), indent=2))


if __name__ == "__main__":
    main()
