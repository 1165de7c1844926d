"""Fusion of ranked hit lists: reciprocal rank fusion and min-max weighted scores.

One implementation for the stores' hybrid queries (chunk hits) and for eval's document runs.
Hits are ``(id, score)`` pairs; every ordering is best first with ties broken by id, so fused
rankings are reproducible whatever order the hits came in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Hit = tuple[str, float]

#: Scores this close (relative) are one tie when ranking for fusion: Edge and a server score in
#: float32, qdrant-client's local mode partly in float64, so equal scores differ in the last bits.
TIE_RTOL = 1e-5

#: Weighted fusion rounds fused scores to this many decimals before ordering, so scores that differ
#: only in float noise between backends tie and fall back to the point id (as tie_ranks does).
WEIGHTED_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class Fusion:
    """How a hybrid query combines its dense and sparse hits.

    ``rrf``: reciprocal rank fusion ``sum 1 / (k + rank)`` (rank-based, no tuning needed).
    ``weighted``: each list's scores min-max normalised over its top ``depth`` hits, then
    ``dense_weight * dense + (1 - dense_weight) * sparse`` (a hit missing from a list scores 0
    there). Scores carry more information than ranks; the weight must be tuned on training data.
    """

    method: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "weighted"):
            raise ValueError(f"fusion method is 'rrf' or 'weighted', not {self.method!r}")
        if self.rrf_k < 1:
            raise ValueError(f"rrf_k must be at least 1, got {self.rrf_k}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be in [0, 1], got {self.dense_weight}")


def best_first(hits: Iterable[Hit]) -> list[Hit]:
    """``hits`` ordered by score, highest first; equal scores by id."""
    return sorted(hits, key=lambda h: (-h[1], h[0]))


def fusion_fetch(depth: int) -> int:
    """Hits to ask each fused sub-query for, so that a tie group across ``depth`` is seen whole."""
    return depth + max(8, depth // 4)


def tie_ranks(hits: Iterable[Hit], depth: int) -> dict[str, int]:
    """0-based ranks of the best ``depth`` hits; equal scores share a rank.

    Qdrant's own RRF ranks tied hits by internal offsets, which differ between Edge, a server and
    qdrant-client's local mode (and with insertion order): BM25 scores tie often (same term
    counts, same length), so the fused ranking would too. Here tied hits get the rank of the
    first of them, and a tie group crossing ``depth`` is kept whole.
    """
    ranks: dict[str, int] = {}
    rank, prev = 0, 0.0
    for pos, (pid, score) in enumerate(best_first(hits)):
        if pos == 0 or abs(prev - score) > TIE_RTOL * max(abs(prev), abs(score)):
            if pos >= depth:
                break
            rank = pos
        ranks[pid] = rank
        prev = score
    return ranks


def rrf_fuse(rankings: Sequence[Mapping[str, int]], k: int, limit: int) -> list[Hit]:
    """Reciprocal rank fusion, ``sum 1 / (k + rank)``; the best ``limit``, best first."""
    fused: dict[str, float] = {}
    for ranks in rankings:
        for pid, rank in ranks.items():
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return best_first(fused.items())[:limit]


def minmax_sum(
    results: Sequence[Iterable[Hit]], weights: Sequence[float], depth: int | None = None
) -> dict[str, float]:
    """Weighted sum of each list's min-max normalised scores (missing from a list: 0 there).

    Each list is cut to its best ``depth`` hits (all when None) before normalising; a list whose
    scores are all equal normalises to 1.
    """
    fused: dict[str, float] = {}
    for hits, weight in zip(results, weights, strict=True):
        top = best_first(hits)[:depth]
        if not top:
            continue
        hi, lo = top[0][1], top[-1][1]
        span = hi - lo
        for pid, score in top:
            norm = (score - lo) / span if span > 0 else 1.0
            fused[pid] = fused.get(pid, 0.0) + weight * norm
    return fused


def weighted_fuse(
    results: Sequence[Iterable[Hit]], weights: Sequence[float], depth: int, limit: int
) -> list[Hit]:
    """:func:`minmax_sum` rounded to :data:`WEIGHTED_DECIMALS`; the best ``limit``, best first."""
    fused = minmax_sum(results, weights, depth)
    return best_first((pid, round(v, WEIGHTED_DECIMALS)) for pid, v in fused.items())[:limit]


def fuse(
    dense: Sequence[Hit], sparse: Sequence[Hit], fusion: Fusion, depth: int, limit: int
) -> list[Hit]:
    """Dense and sparse hits fused as ``fusion`` says (a store's hybrid query)."""
    if fusion.method == "rrf":
        return rrf_fuse([tie_ranks(dense, depth), tie_ranks(sparse, depth)], fusion.rrf_k, limit)
    w = fusion.dense_weight
    return weighted_fuse([dense, sparse], [w, 1.0 - w], depth, limit)
