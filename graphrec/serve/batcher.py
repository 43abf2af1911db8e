"""Micro-batching: concurrent requests scored as one batch, answered one by one."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from graphrec.serve.engine import Answer, Engine, Prepared


@dataclass
class _Job:
    prepared: Prepared
    engine: Engine
    future: asyncio.Future


class MicroBatcher:
    """Gathers requests for up to ``max_wait_ms`` (or ``max_batch`` of them), scores
    them with one forward pass and one product, and answers each.

    A request that arrives alone is answered at once; requests that arrive
    together, or while a batch is being scored, wait up to ``max_wait_ms`` for
    company. Every request is scored by the engine it was checked with, so a reload
    swaps engines between batches: requests already queued finish on the old
    model, none fail. The model runs in one worker thread (torch releases the
    interpreter lock), the event loop keeps serving meanwhile.

    Args:
        max_batch (int): the most requests in one batch. (default: ``64``)
        max_wait_ms (float): how long the first request of a batch waits for
            others. (default: ``2``)
    """

    def __init__(self, max_batch: int = 64, max_wait_ms: float = 2.0) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphrec-model")
        self.batches = 0
        self.batched_requests = 0

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, prepared: Prepared, engine: Engine) -> Answer:
        if self._queue is None:
            raise RuntimeError("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(prepared, engine, future))
        return await future

    async def close(self) -> None:
        """Answer everything queued, then stop."""
        if self._queue is not None:
            await self._queue.put(None)
            await self._worker
            self._queue = None
        self._pool.shutdown(wait=True)

    def _drain(self, jobs: list[_Job]) -> bool:
        """Take what is queued now (up to ``max_batch``); ``True`` once the stop is seen."""
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return False
            if job is None:
                return True
            jobs.append(job)
        return False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            jobs = [first]
            stopping = self._drain(jobs)
            if len(jobs) == 1 and not stopping:
                await asyncio.sleep(0)  # requests arriving with this one
                stopping = self._drain(jobs)
            # a lone request is answered at once; with company, wait for more a little
            deadline = time.perf_counter() + (self.max_wait if len(jobs) > 1 else 0.0)
            while len(jobs) < self.max_batch and not stopping:
                timeout = deadline - time.perf_counter()
                try:
                    job = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            # one batch per engine: requests checked before a reload finish on the old one
            for engine in dict.fromkeys(j.engine for j in jobs):
                group = [j for j in jobs if j.engine is engine]
                try:
                    answers = await loop.run_in_executor(
                        self._pool, engine.answer, [j.prepared for j in group]
                    )
                except Exception as e:  # the model failed: every request of the batch says so
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(e)
                    continue
                for j, answer in zip(group, answers, strict=True):
                    if not j.future.done():
                        j.future.set_result(answer)
                self.batches += 1
                self.batched_requests += len(group)
