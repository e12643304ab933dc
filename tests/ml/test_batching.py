from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from ml.batching import MicroBatcher
from ml.embedding import Embedder, Vectors


class FakeEmbedder:
    """Deterministic vectors from the text; records each model call; can be slowed, gated or failed."""

    model_name = "fake"
    dimension = 8

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[list[str]] = []
        self.fail: Exception | None = None
        self.gate: threading.Event | None = None
        self.started = threading.Event()

    @staticmethod
    def vector(text: str) -> Vectors:
        rng = np.random.default_rng(sum(ord(c) * (i + 1) for i, c in enumerate(text)))
        v = rng.standard_normal(8).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=10), "test never opened the gate"
        if self.delay:
            time.sleep(self.delay)  # a blocking model call, as the real one is
        if self.fail is not None:
            raise self.fail
        return np.vstack([self.vector(t) for t in texts])


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
async def batcher(fake: FakeEmbedder) -> AsyncIterator[MicroBatcher]:
    batcher = MicroBatcher(fake, max_wait=0.02)
    yield batcher
    if fake.gate is not None:
        fake.gate.set()
    await batcher.close()


async def wait_until(condition: threading.Event) -> None:
    for _ in range(500):
        if condition.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_concurrent_callers_share_model_calls_and_each_gets_its_own_vectors(embedder: Embedder) -> None:
    batcher = MicroBatcher(embedder, max_wait=0.01)
    topics = ["bike lanes", "tree planting", "library hours", "school meals", "night buses", "public toilets"]
    texts = [f"{topic} for district {n}" for n, topic in enumerate(topics * 2)]
    try:
        # Six callers with one text each, two with three texts each.
        results = await asyncio.gather(
            *(batcher.encode_one(t) for t in texts[:6]), batcher.encode(texts[6:9]), batcher.encode(texts[9:])
        )
    finally:
        await batcher.close()
    assert batcher.stats.batches < 8  # eight requests
    assert batcher.stats.texts == len(texts)
    expected = embedder.encode(texts)
    for vector, row in zip(results[:6], expected[:6], strict=True):
        assert vector.shape == (embedder.dimension,)
        np.testing.assert_allclose(vector, row, atol=1e-5)
    np.testing.assert_allclose(results[6], expected[6:9], atol=1e-5)
    np.testing.assert_allclose(results[7], expected[9:], atol=1e-5)
    assert batcher.model_name == embedder.model_name
    assert batcher.dimension == embedder.dimension


async def test_one_model_call_serves_everyone_waiting(batcher: MicroBatcher, fake: FakeEmbedder) -> None:
    texts = [f"text {n}" for n in range(10)]
    results = await asyncio.gather(*(batcher.encode_one(t) for t in texts))
    assert len(fake.calls) == 1
    assert sorted(fake.calls[0]) == sorted(texts)
    assert batcher.stats.batches == 1
    assert batcher.stats.largest == 10
    for text, vector in zip(texts, results, strict=True):
        np.testing.assert_array_equal(vector, FakeEmbedder.vector(text))


async def test_batches_stop_growing_at_max_batch(fake: FakeEmbedder) -> None:
    batcher = MicroBatcher(fake, max_batch=4, max_wait=0.02)
    try:
        await asyncio.gather(*(batcher.encode_one(f"text {n}") for n in range(10)))
    finally:
        await batcher.close()
    assert [len(call) for call in fake.calls] == [4, 4, 2]
    assert batcher.stats.largest == 4


async def test_no_texts_give_an_empty_matrix_without_a_model_call(
    batcher: MicroBatcher, fake: FakeEmbedder
) -> None:
    vectors = await batcher.encode([])
    assert vectors.shape == (0, fake.dimension)
    assert vectors.dtype == np.float32
    assert fake.calls == []


async def test_a_model_error_reaches_every_waiting_caller(batcher: MicroBatcher, fake: FakeEmbedder) -> None:
    fake.fail = RuntimeError("model exploded")
    results = await asyncio.gather(
        *(batcher.encode_one(f"text {n}") for n in range(5)), return_exceptions=True
    )
    assert len(fake.calls) == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "model exploded" for r in results), results
    # The batcher survives the failure: the next request is served.
    fake.fail = None
    vector = await asyncio.wait_for(batcher.encode_one("after"), 5)
    np.testing.assert_array_equal(vector, FakeEmbedder.vector("after"))


async def test_a_cancelled_caller_does_not_break_the_others(
    batcher: MicroBatcher, fake: FakeEmbedder
) -> None:
    fake.gate = threading.Event()
    tasks = [asyncio.create_task(batcher.encode_one(f"text {n}")) for n in range(4)]
    await wait_until(fake.started)  # the batch is in the model now
    queued = asyncio.create_task(batcher.encode_one("queued then cancelled"))
    behind = asyncio.create_task(batcher.encode_one("behind"))
    await asyncio.sleep(0.01)
    tasks[1].cancel()
    queued.cancel()
    fake.gate.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks, queued, behind, return_exceptions=True), 5)
    assert isinstance(done[1], asyncio.CancelledError)
    assert isinstance(done[4], asyncio.CancelledError)
    for n in (0, 2, 3):
        np.testing.assert_array_equal(done[n], FakeEmbedder.vector(f"text {n}"))
    np.testing.assert_array_equal(done[5], FakeEmbedder.vector("behind"))
    np.testing.assert_array_equal(await batcher.encode_one("later"), FakeEmbedder.vector("later"))


async def test_encoding_never_blocks_the_event_loop() -> None:
    slow = FakeEmbedder(delay=0.4)
    batcher = MicroBatcher(slow)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        vectors = await batcher.encode([f"text {n}" for n in range(500)])
        elapsed = time.monotonic() - started
    finally:
        ticking.cancel()
        await batcher.close()
    assert vectors.shape == (500, slow.dimension)
    assert elapsed >= 0.4
    assert ticks >= 15, f"the loop ticked {ticks} times in {elapsed:.2f}s"


async def test_close_fails_waiting_callers_instead_of_leaving_them_hanging(fake: FakeEmbedder) -> None:
    batcher = MicroBatcher(fake, max_wait=0.02)
    fake.gate = threading.Event()
    in_model = asyncio.create_task(batcher.encode_one("in the model"))
    await wait_until(fake.started)
    queued = asyncio.create_task(batcher.encode_one("queued"))
    await asyncio.sleep(0.01)
    await batcher.close()
    fake.gate.set()
    for task in (in_model, queued):
        with pytest.raises(RuntimeError, match="closed"):
            await asyncio.wait_for(task, 2)
