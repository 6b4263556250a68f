"""A fixed set of worker threads fed with batches of tasks through one bounded queue.

A full pass hands out one task per object. With a `ThreadPoolExecutor`, a bounding semaphore and a
done-callback, each task cost a Future, two Conditions and four lock hand-offs between threads, which
profiling showed as a quarter of the client's CPU for small objects. Here tasks go out in batches while
the workers are busy (the hand-off is paid once per batch) and one at a time while a worker waits for
work (so a slow listing never leaves a worker idle behind a half-filled batch).

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


class BatchWorkers:
    """`submit` tasks from one thread, `drain` to wait for all of them, `close` to end the threads.

    Tasks must not raise (wrap them): an exception escaping one ends its batch, not the worker.
    """

    def __init__(self, threads: int, *, name: str, batch: int = BATCH) -> None:
        self.batch_size = batch
        self._queue: queue.Queue[list[Task] | None] = queue.Queue(maxsize=threads * 2)
        self._pending: list[Task] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue `fn(*args)`; blocks while the queue is full (the bound on work taken ahead)."""
        self._pending.append((fn, args))
        # An empty queue means a worker may be waiting: send what there is rather than fill the batch.
        if len(self._pending) >= self.batch_size or self._queue.empty():
            self.flush()

    def flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
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
