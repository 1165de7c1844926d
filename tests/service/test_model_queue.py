"""The model queue and the vector cache with a recording model: which texts share a model call,
in which order the lanes are served, what a failing text or a closed queue does. The model's
first call can be held (an Event), so what is queued meanwhile is known without any timing."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from core.embedding import Matrix
from core.errors import EmbeddingError
from service.model_queue import EmbeddingQueue, VectorCache, batch_invariant

DIM = 8


def vector(text: str) -> Matrix:
    """A unit vector determined by the text alone."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class RecordingModel:
    """Vectors from :func:`vector` (plus the batch size when ``batch_dependent``, like an int8
    model whose activation scale is the batch's); records every call's texts; can hold its first
    call until released; raises on the text ``boom``."""

    name, dim, max_seq_length = "recording", DIM, 128

    def __init__(self, *, batch_dependent: bool = False, hold_first: bool = False) -> None:
        self.batch_dependent = batch_dependent
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def embed(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(list(texts))
        self.entered.set()
        self.release.wait()
        if "boom" in texts:
            raise EmbeddingError("the model cannot embed 'boom'")
        out = np.stack([vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)
        if self.batch_dependent:
            out[:, 0] += 0.01 * len(texts)
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


@pytest.fixture
def held() -> Iterator[tuple[RecordingModel, EmbeddingQueue]]:
    """A merging queue whose model is busy with a first bulk call (``warm-up``) until released."""
    model = RecordingModel(hold_first=True)
    queue = EmbeddingQueue(model, window_ms=0, max_batch=32, merge=True)
    first = queue.submit(["warm-up"], "bulk")
    model.entered.wait()
    yield model, queue
    model.release.set()
    first.result()
    queue.close()


def test_the_probe_tells_a_batch_dependent_model_from_an_invariant_one() -> None:
    assert batch_invariant(RecordingModel())
    assert not batch_invariant(RecordingModel(batch_dependent=True))


def test_auto_embeds_texts_alone_for_a_batch_dependent_model() -> None:
    model = RecordingModel(batch_dependent=True)
    queue = EmbeddingQueue(model)
    model.calls.clear()  # the probe's calls
    texts = ["one text", "another", "a third one"]
    try:
        assert not queue.merge
        out = queue.lane("bulk").embed(texts)
    finally:
        queue.close()
    assert sorted(model.calls) == [["a third one"], ["another"], ["one text"]]
    # each row is the text's vector alone, whatever else was embedded
    alone = np.stack([model.embed([t])[0] for t in texts])
    assert np.array_equal(out, alone)


def test_queries_queued_while_the_model_is_busy_share_one_call(
    held: tuple[RecordingModel, EmbeddingQueue],
) -> None:
    model, queue = held
    queries = [f"query {i}" for i in range(8)]
    futures = [queue.submit([q], "query") for q in queries]
    assert queue.pending() == 8
    model.release.set()
    results = [f.result() for f in futures]
    assert model.calls[1:] == [queries]  # one call for all eight
    for q, row in zip(queries, results, strict=True):
        assert np.array_equal(row, vector(q)[None, :])


def test_queries_go_before_bulk_texts_and_bulk_jobs_are_sliced(
    held: tuple[RecordingModel, EmbeddingQueue],
) -> None:
    model, queue = held
    queue.max_batch = 4
    sentences = [f"sentence {'x' * i}" for i in range(10)]
    bulk = queue.submit(sentences, "bulk")
    q1 = queue.submit(["first query"], "query")
    q2 = queue.submit(["second query"], "query")
    model.release.set()
    out = bulk.result()
    q1.result(), q2.result()
    # the queries first, then the answer's sentences four at a time, by length
    assert model.calls[1] == ["first query", "second query"]
    assert model.calls[2:] == [sentences[0:4], sentences[4:8], sentences[8:10]]
    assert np.array_equal(out, np.stack([vector(s) for s in sentences]))


def test_a_bulk_slice_runs_between_query_batches(
    held: tuple[RecordingModel, EmbeddingQueue],
) -> None:
    model, queue = held
    queue.max_batch = 2
    bulk = queue.submit(["s1", "s2", "s3", "s4"], "bulk")
    queries = [queue.submit([f"q{i}"], "query") for i in range(4)]
    model.release.set()
    bulk.result()
    for f in queries:
        f.result()
    assert model.calls[1:] == [["q0", "q1"], ["s1", "s2"], ["q2", "q3"], ["s3", "s4"]]


def test_one_clients_many_texts_do_not_hold_up_the_next_query(
    held: tuple[RecordingModel, EmbeddingQueue],
) -> None:
    model, queue = held
    queue.max_batch = 3
    claims = queue.submit([f"claim {i}" for i in range(7)], "query")
    query = queue.submit(["a search"], "query")
    model.release.set()
    query.result(), claims.result()
    assert model.calls[1] == ["claim 0", "claim 1", "claim 2"]
    assert "a search" in model.calls[2]


def test_a_failing_text_fails_only_its_own_call(
    held: tuple[RecordingModel, EmbeddingQueue],
) -> None:
    model, queue = held
    good = queue.submit(["a good query"], "query")
    bad = queue.submit(["boom"], "query")
    other = queue.submit(["another good one"], "query")
    model.release.set()
    with pytest.raises(EmbeddingError, match="boom"):
        bad.result()
    assert np.array_equal(good.result(), vector("a good query")[None, :])
    assert np.array_equal(other.result(), vector("another good one")[None, :])


def test_closing_fails_what_is_queued_and_refuses_more(
    held: tuple[RecordingModel, EmbeddingQueue],
) -> None:
    model, queue = held
    queued = queue.submit(["never embedded"], "bulk")
    closer = threading.Thread(target=queue.close)
    closer.start()
    with pytest.raises(EmbeddingError, match="stopped"):
        queued.result()
    model.release.set()  # the call in progress ends; the model thread then stops
    closer.join()
    with pytest.raises(EmbeddingError, match="closed"):
        queue.lane("query").embed(["too late"])
    assert queue.lane("query").embed([]).shape == (0, DIM)


def test_the_cache_serves_repeated_texts_without_the_model() -> None:
    model = RecordingModel()
    cache = VectorCache(capacity=3)
    cached = cache.wrap(model)
    first = cached.embed(["a", "b", "a"])
    assert model.calls == [["a", "b"]]
    again = cached.embed(["b", "c"])
    assert model.calls[-1] == ["c"]
    assert np.array_equal(first[1], again[0])
    cached.embed(["d"])  # over capacity: "a", the least recently used, is dropped
    cached.embed(["a"])
    assert model.calls[-1] == ["a"]
    assert len(cache) == 3
    assert VectorCache(capacity=0).wrap(model) is model


def test_a_window_holds_the_first_query_until_the_batch_is_full() -> None:
    model = RecordingModel()
    # a window far longer than the test: only a full batch ends it
    queue = EmbeddingQueue(model, window_ms=600_000, max_batch=2, merge=True)
    try:
        first = queue.submit(["first query"], "query")
        second = queue.submit(["second query"], "query")
        first.result(), second.result()
    finally:
        queue.close()
    assert model.calls == [["first query", "second query"]]
