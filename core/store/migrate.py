"""Copy a collection from the embedded Qdrant Edge store to a Qdrant server (or ``:memory:``)
without re-embedding, then check the copy: equal point counts, and for sampled points equal
payloads, equal vectors and the same dense nearest neighbours on both stores.

Store specs (command line): ``edge:PATH[#COLLECTION]`` where PATH is the store folder
(``store.path``, holding ``edge/``), its ``edge/`` folder or one collection folder; and
``URL[#COLLECTION]`` where URL is ``http(s)://host:port`` or ``:memory:``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import ConfigError, StoreError
from core.schemas import ScoredChunk
from core.store.base import RawPoint, StoreMeta, VectorStore
from core.store.edge import META_FILE, EdgeStore

#: Sampled points checked after a copy.
N_SAMPLES = 5
#: Nearest neighbours compared per sampled point.
N_NEIGHBOURS = 5
#: Scores closer than this count as a tie (Edge scores are float32).
SCORE_EPS = 1e-4
VECTOR_EPS = 1e-5


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Where a collection lives, as given on the command line."""

    backend: Literal["edge", "qdrant"]
    location: str  # a folder (edge) or a URL / ':memory:' (qdrant)
    collection: str | None = None

    def __str__(self) -> str:
        base = f"edge:{self.location}" if self.backend == "edge" else self.location
        return f"{base}#{self.collection}" if self.collection else base


def parse_spec(text: str, *, option: str = "store") -> StoreSpec:
    """``edge:PATH[#COLLECTION]`` or ``URL[#COLLECTION]``; ConfigError when it is neither."""
    base, sep, collection = text.strip().rpartition("#") if "#" in text else (text, "", "")
    base = base.strip()
    if sep and not collection.strip():
        raise ConfigError(f"{option} {text!r}: empty collection name after '#'")
    name = collection.strip() or None
    if base.startswith("edge:"):
        path = base[len("edge:") :]
        if not path:
            raise ConfigError(f"{option} {text!r}: 'edge:' needs a folder, e.g. edge:.litrag")
        return StoreSpec("edge", path, name)
    if base == ":memory:" or base.startswith(("http://", "https://")):
        if base != ":memory:" and len(base.split("://", 1)[1].strip("/")) == 0:
            raise ConfigError(f"{option} {text!r}: the URL has no host")
        return StoreSpec("qdrant", base, name)
    raise ConfigError(
        f"{option} {text!r} is not a store: use edge:PATH[#COLLECTION] for the embedded store, "
        "or http(s)://HOST:PORT[#COLLECTION] / :memory: for qdrant-client"
    )


# -- the embedded side --------------------------------------------------------------------------
def edge_collections(root: Path) -> list[str]:
    """Collections (folders with litrag metadata) under an Edge root folder."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / META_FILE).is_file())


def edge_root(path: Path) -> Path:
    """The Edge root folder of ``path``: a store folder's ``edge/``, else ``path`` itself."""
    return path / "edge" if (path / "edge").is_dir() else path


def resolve_edge(path: Path, collection: str | None) -> tuple[Path, str]:
    """The Edge root folder and collection name that ``edge:PATH[#COLLECTION]`` stands for."""
    if collection is None and (path / META_FILE).is_file():
        return path.parent, path.name  # PATH is one collection's folder
    root = edge_root(path)
    names = edge_collections(root)
    if not path.is_dir():
        raise ConfigError(f"no Edge store at {path}: no such folder")
    if collection is not None:
        if collection not in names:
            known = f"; collections there: {', '.join(names)}" if names else ""
            raise ConfigError(f"no collection {collection!r} in {root}{known}")
        return root, collection
    if not names:
        raise ConfigError(f"no collection in {root} (nothing ingested there?)")
    if len(names) > 1:
        raise ConfigError(
            f"{root} holds {len(names)} collections ({', '.join(names)}): "
            f"name one, e.g. edge:{path}#{names[0]}"
        )
    return root, names[0]


def read_edge_meta(root: Path, collection: str) -> StoreMeta:
    """The :class:`StoreMeta` recorded by an Edge collection."""
    meta_file = root / collection / META_FILE
    try:
        return StoreMeta.model_validate_json(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"unreadable store metadata {meta_file}: {exc}") from exc


def open_edge(spec: StoreSpec) -> EdgeStore:
    """Open an existing Edge collection with the settings it was built with."""
    root, name = resolve_edge(Path(spec.location), spec.collection)
    return EdgeStore(root, name, read_edge_meta(root, name), create=False)


# -- copy ---------------------------------------------------------------------------------------
def sample_positions(n: int, k: int = N_SAMPLES) -> list[int]:
    """First, last and evenly spread middle positions of ``n`` points (at most ``k``)."""
    if n <= 0:
        return []
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@dataclass(slots=True)
class CopyResult:
    """How many points were copied, how long it took, and the sampled source points."""

    copied: int
    seconds: float
    samples: list[tuple[int, RawPoint]]


def copy_points(
    source: VectorStore,
    target: VectorStore,
    *,
    batch: int,
    expected: int,
    on_progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy every point of ``source`` into ``target`` in batches (vectors as stored)."""
    wanted = set(sample_positions(expected))
    samples: list[tuple[int, RawPoint]] = []
    pending: list[RawPoint] = []
    copied = 0
    last: tuple[int, RawPoint] | None = None
    t0 = time.perf_counter()
    for pos, point in enumerate(source.iter_points(batch)):
        if pos in wanted:
            samples.append((pos, point))
        last = (pos, point)
        pending.append(point)
        if len(pending) >= batch:
            target.upsert_raw(pending)
            copied += len(pending)
            pending = []
            if on_progress:
                on_progress(copied)
    if pending:
        target.upsert_raw(pending)
        copied += len(pending)
        if on_progress:
            on_progress(copied)
    if last is not None and all(p != last[0] for p, _ in samples):
        samples.append(last)  # the source grew or shrank since it was counted: check the last
    target.optimize()
    return CopyResult(copied, time.perf_counter() - t0, samples)


# -- verification -------------------------------------------------------------------------------
@dataclass(slots=True)
class SampleCheck:
    """What was compared for one sampled point."""

    position: int
    point_id: str
    payload_equal: bool
    vectors_equal: bool
    neighbours_equal: bool
    source_neighbours: list[str] = field(default_factory=list)
    target_neighbours: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.payload_equal and self.vectors_equal and self.neighbours_equal


@dataclass(slots=True)
class Verification:
    """Counts on both stores and the sampled point checks."""

    source_count: int
    target_count: int
    samples: list[SampleCheck]

    @property
    def counts_equal(self) -> bool:
        return self.source_count == self.target_count

    @property
    def ok(self) -> bool:
        return self.counts_equal and all(s.ok for s in self.samples)


def _ranked(hits: Iterable[tuple[str, float]]) -> list[tuple[float, str]]:
    return sorted(((score, cid) for cid, score in hits), key=lambda x: (-x[0], x[1]))


def _pairs(hits: Iterable[ScoredChunk]) -> list[tuple[str, float]]:
    return [(h.chunk.chunk_id, h.score) for h in hits]


def same_neighbours(
    a: list[tuple[str, float]],
    b: list[tuple[str, float]],
    k: int = N_NEIGHBOURS,
    eps: float = SCORE_EPS,
) -> bool:
    """The same top-``k`` ``(id, score)`` on both, allowing only reorderings among equal scores.

    Rank by rank the scores agree; a point in both top-``k`` has the same score on both; a point
    in only one of them ties with the ``k``-th score (a tie across the cut). Both lists should
    hold more than ``k`` hits.
    """
    ra, rb = _ranked(a)[:k], _ranked(b)[:k]
    if len(ra) != len(rb):
        return False
    if any(abs(sa - sb) > eps for (sa, _), (sb, _) in zip(ra, rb, strict=True)):
        return False
    score_a, score_b = {c: s for s, c in ra}, {c: s for s, c in rb}
    for cid in score_a.keys() & score_b.keys():
        if abs(score_a[cid] - score_b[cid]) > eps:
            return False
    cut_a, cut_b = ra[-1][0] if ra else 0.0, rb[-1][0] if rb else 0.0
    only_a = (score_a[c] for c in score_a.keys() - score_b.keys())
    only_b = (score_b[c] for c in score_b.keys() - score_a.keys())
    return all(abs(s - cut_b) <= eps for s in only_a) and all(abs(s - cut_a) <= eps for s in only_b)


def _vectors_equal(a: RawPoint, b: RawPoint) -> bool:
    if len(a.dense) != len(b.dense):
        return False
    if any(abs(x - y) > VECTOR_EPS for x, y in zip(a.dense, b.dense, strict=True)):
        return False
    sa = dict(zip(a.sparse.indices, a.sparse.values, strict=True))
    sb = dict(zip(b.sparse.indices, b.sparse.values, strict=True))
    return sa.keys() == sb.keys() and all(abs(sa[i] - sb[i]) <= VECTOR_EPS for i in sa)


def verify(
    source: VectorStore, target: VectorStore, samples: list[tuple[int, RawPoint]]
) -> Verification:
    """Compare counts, and payloads, vectors and dense nearest neighbours of ``samples``."""
    checks: list[SampleCheck] = []
    for pos, src in samples:
        problems: list[str] = []
        got = target.retrieve_raw([src.point_id])
        stored = source.retrieve_raw([src.point_id])
        src_now = stored[0] if stored else src
        if not got:
            checks.append(
                SampleCheck(pos, src.point_id, False, False, False, problems=["missing in target"])
            )
            continue
        tgt = got[0]
        payload_equal = tgt.payload == src_now.payload
        if not payload_equal:
            keys = sorted(
                k
                for k in src_now.payload.keys() | tgt.payload.keys()
                if src_now.payload.get(k) != tgt.payload.get(k)
            )
            problems.append(f"payload differs in {', '.join(keys)}")
        vectors_equal = _vectors_equal(src_now, tgt)
        if not vectors_equal:
            problems.append("vectors differ")
        # Ask for more than N_NEIGHBOURS so that ties across the cut are recognised.
        a = _pairs(source.query(dense=src_now.dense, sparse=None, limit=N_NEIGHBOURS * 2))
        b = _pairs(target.query(dense=src_now.dense, sparse=None, limit=N_NEIGHBOURS * 2))
        neighbours_equal = same_neighbours(a, b)
        ids_a = [cid for _, cid in _ranked(a)[:N_NEIGHBOURS]]
        ids_b = [cid for _, cid in _ranked(b)[:N_NEIGHBOURS]]
        if not neighbours_equal:
            problems.append(f"nearest neighbours differ: {ids_a} != {ids_b}")
        checks.append(
            SampleCheck(
                pos,
                src.point_id,
                payload_equal,
                vectors_equal,
                neighbours_equal,
                ids_a,
                ids_b,
                problems,
            )
        )
    return Verification(source.count(), target.count(), checks)
