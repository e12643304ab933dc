"""Dynamic micro-batching: concurrent requests share one model call, off the event loop.

Each ``encode`` call queues its texts and waits. One collector task takes what is queued, waits
at most ``max_wait`` for more (or until ``max_batch`` texts), then runs a single ``Embedder.encode``
on a worker thread. While that runs, new requests queue up and form the next batch, so under load
batches grow on their own and a lone request pays at most ``max_wait`` of extra latency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.embedding import Embedder, Vectors


@dataclass
class _Request:
    texts: Sequence[str]
    future: asyncio.Future[Vectors]


@dataclass
class BatchStats:
    batches: int = 0
    texts: int = 0
    largest: int = 0


class MicroBatcher:
    def __init__(self, embedder: Embedder, *, max_batch: int = 64, max_wait: float = 0.002) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Future[Vectors]] = set()  # failed by close() rather than left hanging
        # One model call at a time: the model already uses every core for one batch.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    @property
    def model_name(self) -> str:
        return self.embedder.model_name

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    async def encode(self, texts: Sequence[str]) -> Vectors:
        """Vectors for ``texts`` (one row each), batched with whatever else is waiting."""
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._collect(self._queue))
        request = _Request(texts, loop.create_future())
        self._waiting.add(request.future)
        request.future.add_done_callback(self._waiting.discard)
        self._queue.put_nowait(request)
        return await request.future

    async def encode_one(self, text: str) -> Vectors:
        """One text's vector (a 1-D array)."""
        vectors = await self.encode([text])
        return np.asarray(vectors[0], dtype=np.float32)

    async def _collect(self, queue: asyncio.Queue[_Request]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            size = len(batch[0].texts)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    request = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                batch.append(request)
                size += len(request.texts)
            # Whatever else is already queued joins too (no waiting): it would only wait longer.
            while size < self.max_batch and not queue.empty():
                request = queue.get_nowait()
                batch.append(request)
                size += len(request.texts)
            await self._run(loop, batch)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        texts = [t for request in batch for t in request.texts]
        try:
            vectors = await loop.run_in_executor(self._executor, self.embedder.encode, texts)
        except Exception as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        self.stats.batches += 1
        self.stats.texts += len(texts)
        self.stats.largest = max(self.stats.largest, len(texts))
        start = 0
        for request in batch:
            end = start + len(request.texts)
            if not request.future.done():  # a caller that gave up (cancelled) is simply skipped
                request.future.set_result(vectors[start:end])
            start = end

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for future in list(self._waiting):
            if not future.done():
                future.set_exception(RuntimeError("the embedding batcher was closed"))
        self._executor.shutdown(wait=False, cancel_futures=True)
