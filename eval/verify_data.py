"""Labelled claim-evidence pairs (``shared/data/eval/verify``) and the training set built from them.

A pair is ``(claim, evidence, label)`` with label ``support``, ``contradict`` or ``nei``
(AttributionBench's ``not_support`` is read as ``nei``: it does not say which of the two it is).

Training data (train splits only) is the pairs as given plus two kinds of variation, so that the
model sees evidence shaped like litrag's chunks (a few hundred words, the relevant sentence among
others) and cannot learn the label from the evidence's length (the data README's caveat: ``nei``
evidence is shorter in Check-COVID and SciFact-abstract):

- **windows** (SciFact): the rationale sentences with 0-4 neighbouring sentences of their own
  abstract, keeping the label; and ``nei`` windows of sentences of a cited abstract that are not
  rationales.
- **padding**: any pair's evidence with unrelated sentences of *another claim's* evidence before or
  after it, for every label alike (a passage that supports a claim still supports it when other
  sentences surround it).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.chunking import split_sentences
from core.errors import ConfigError, ParseError
from eval.datasets import numbered_jsonl, shared_data_dir

__all__ = [
    "LABELS",
    "Pair",
    "augment",
    "file_sha256",
    "load_pairs",
    "resolve_dataset",
]

#: Model output order; also the order of the confusion matrix.
LABELS: tuple[str, ...] = ("support", "contradict", "nei")
_ALIASES = {"not_support": "nei", "refutes": "contradict", "supports": "support"}


@dataclass(frozen=True, slots=True)
class Pair:
    """One labelled claim-evidence pair."""

    id: str
    claim: str
    evidence: str
    label: str  # one of LABELS

    @property
    def group(self) -> str:
        """The claim's id (pairs of one claim share it): ``scifact-train-12-...`` → ``...-12``."""
        parts = self.id.split("-")
        return "-".join(parts[:3]) if self.id.startswith("scifact") else self.id.rsplit("_", 1)[0]


def verify_dir() -> Path:
    """Folder of the labelled pairs."""
    return shared_data_dir() / "eval" / "verify"


def resolve_dataset(name_or_path: str, split: str | None = None) -> Path:
    """``scifact.dev``, ``scifact`` + split, or a path to a JSONL file of labelled pairs."""
    path = Path(name_or_path)
    if path.suffix == ".jsonl" or path.exists():
        if not path.is_file():
            raise ParseError(str(path), "no such file of labelled pairs")
        return path
    name = name_or_path if "." in name_or_path or split is None else f"{name_or_path}.{split}"
    found = verify_dir() / f"{name}.jsonl"
    if not found.is_file():
        known = sorted(p.stem for p in verify_dir().glob("*.jsonl"))
        raise ConfigError(f"unknown verifier dataset {name!r}; known: {', '.join(known)}")
    return found


def load_pairs(path: Path) -> list[Pair]:
    """Read a JSONL file of pairs; a bad line is an error naming the file, line and field."""
    pairs: list[Pair] = []
    for n, row in numbered_jsonl(path):
        for key in ("claim", "evidence", "label"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ParseError(
                    str(path), f"field {key!r} missing or not a non-empty string", f"line {n}"
                )
        label = _ALIASES.get(row["label"].lower(), row["label"].lower())
        if label not in LABELS:
            raise ParseError(
                str(path), f"label {row['label']!r} is not one of {LABELS}", f"line {n}"
            )
        pairs.append(
            Pair(str(row.get("id", f"{path.stem}:{n}")), row["claim"], row["evidence"], label)
        )
    if not pairs:
        raise ParseError(str(path), "no labelled pairs")
    return pairs


def file_sha256(path: Path) -> str:
    """Hash of a data file, recorded with the model it trained."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sentences(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in split_sentences(text) if text[a:b].strip()]


def _squash(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


def _windows(
    abstracts: dict[str, str], sentence_pairs: Sequence[Pair], rng: random.Random
) -> Iterator[Pair]:
    """Rationales within 0-4 neighbours of their abstract; non-rationale ``nei`` windows."""
    rationale_keys: dict[str, set[str]] = {}
    for p in sentence_pairs:
        if p.label != "nei":
            key = "-".join(p.id.split("-")[:4])
            rationale_keys.setdefault(key, set()).update(_squash(s) for s in _sentences(p.evidence))
    for p in sentence_pairs:
        key = "-".join(p.id.split("-")[:4])
        abstract = abstracts.get(key)
        if abstract is None:
            continue
        sents = _sentences(abstract)
        if len(sents) < 3:
            continue
        rationale = rationale_keys.get(key, set())
        if p.label == "nei":
            others = [i for i, s in enumerate(sents) if _squash(s) not in rationale]
            if not others:
                continue
            start = rng.choice(others)
            span = [
                i for i in range(start, min(len(sents), start + rng.randint(2, 5))) if i in others
            ]
            yield Pair(p.id + "#win", p.claim, " ".join(sents[i] for i in span), "nei")
            continue
        wanted = {_squash(e) for e in _sentences(p.evidence)}
        hits = [i for i, s in enumerate(sents) if _squash(s) in wanted]
        if len({_squash(sents[i]) for i in hits}) < len(wanted):
            continue  # a rationale the abstract splits differently: the window could lose it
        lo = max(0, min(hits) - rng.randint(0, 2))
        hi = min(len(sents), max(hits) + 1 + rng.randint(0, 2))
        yield Pair(p.id + "#win", p.claim, " ".join(sents[lo:hi]), p.label)


def _padded(pairs: Sequence[Pair], rng: random.Random, share: float) -> Iterator[Pair]:
    """Evidence surrounded by sentences of other claims' evidence, for every label alike."""
    pool = [s for p in pairs for s in _sentences(p.evidence)]
    by_group: dict[str, set[str]] = {}
    for p in pairs:
        by_group.setdefault(p.group, set()).add(p.evidence)
    for p in pairs:
        # nei evidence is shorter in the sources: padded twice as often, so length tells nothing
        if rng.random() >= (min(1.0, 2 * share) if p.label == "nei" else share):
            continue
        own = by_group[p.group]
        filler = [s for s in rng.sample(pool, min(len(pool), 8)) if not any(s in e for e in own)]
        before = filler[: rng.randint(0, 3)]
        after = filler[len(before) : len(before) + rng.randint(1, 3)]
        yield Pair(p.id + "#pad", p.claim, " ".join([*before, p.evidence, *after]), p.label)


def augment(
    files: Sequence[Path], *, seed: int = 13, pad_share: float = 0.35
) -> tuple[list[Pair], dict[str, int]]:
    """The training pairs of ``files`` (train splits) plus windows and padding; counts by kind."""
    rng = random.Random(seed)
    base: list[Pair] = []
    abstracts: dict[str, str] = {}
    sentence_level: list[Pair] = []
    for f in files:
        pairs = load_pairs(f)
        base += pairs
        if f.name.startswith("scifact_abstract"):
            for p in pairs:
                abstracts["-".join(p.id.split("-")[:4])] = p.evidence
        elif f.name.startswith("scifact"):
            sentence_level += pairs
    windows = list(_windows(abstracts, sentence_level, rng))
    padded = list(_padded(base, rng, pad_share))
    counts = {"given": len(base), "windows": len(windows), "padded": len(padded)}
    out = base + windows + padded
    rng.shuffle(out)
    return out, counts
