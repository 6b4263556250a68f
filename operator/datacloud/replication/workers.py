"""A fixed set of worker threads fed with batches of tasks through one bounded queue.

A full pass hands out one task per object. With a `ThreadPoolExecutor`, a bounding semaphore and a
done-callback, each task cost a Future, two Conditions and four lock hand-offs between threads, which
profiling showed as a quarter of the client's CPU for small objects. Here tasks go out in batches while
the workers are busy (the hand-off is paid once per batch) and one at a time while a worker waits for
work (so a slow listing never leaves a worker idle behind a half-filled batch).

A batch is also closed once the work it holds reaches `batch_weight` (a copy's weight is its size): a
large copy takes long enough that its hand-off costs nothing beside it, and eight of them queued behind
one worker would run one after the other while other workers sat idle (twenty 64 MiB copies went out as
batches of 1, 3, 8 and 8, so four workers of sixteen did all of them and two ended alone).

Memory stays bounded: at most `threads × 2` batches wait in the queue, each of `batch` tasks, and a
task holds only its key; the bytes of a copy live in the worker that runs it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Task = tuple[Callable[..., None], tuple[Any, ...]]
BATCH = 8
BATCH_WEIGHT = 1024 * 1024  # bytes of copying per batch, beyond which the batch goes out at once


class BatchWorkers:
    """`submit` tasks from one thread, `drain` to wait for all of them, `close` to end the threads.

    Tasks must not raise (wrap them): an exception escaping one ends its batch, not the worker.
    """

    def __init__(
        self, threads: int, *, name: str, batch: int = BATCH, batch_weight: int = BATCH_WEIGHT
    ) -> None:
        self.batch_size = batch
        self.batch_weight = batch_weight
        self._queue: queue.Queue[list[Task] | None] = queue.Queue(maxsize=threads * 2)
        self._pending: list[Task] = []
        self._pending_weight = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., None], *args: Any, weight: int = 0) -> None:
        """Queue `fn(*args)`; blocks while the queue is full (the bound on work taken ahead). `weight`:
        how much work the task is (bytes to copy); a batch that reaches `batch_weight` goes out."""
        self._pending.append((fn, args))
        self._pending_weight += weight
        # An empty queue means a worker may be waiting: send what there is rather than fill the batch.
        if (
            len(self._pending) >= self.batch_size
            or self._pending_weight >= self.batch_weight
            or self._queue.empty()
        ):
            self.flush()

    def flush(self) -> None:
        if self._pending:
            batch, self._pending, self._pending_weight = self._pending, [], 0
            self._queue.put(batch)

    def drain(self) -> None:
        """Wait until every task submitted so far has run."""
        self.flush()
        self._queue.join()

    def close(self) -> None:
        """Run what is queued, then end the threads."""
        self.flush()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                for fn, args in batch:
                    fn(*args)
            finally:
                self._queue.task_done()
