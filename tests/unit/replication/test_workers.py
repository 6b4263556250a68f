"""The batching worker pool of a full pass: every task runs once, a lone task is never held back."""

from __future__ import annotations

import threading
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.replication.workers import BatchWorkers


@settings(max_examples=40, deadline=None)
@given(
    tasks=st.integers(min_value=0, max_value=300),
    threads=st.integers(min_value=1, max_value=6),
    batch=st.integers(min_value=1, max_value=20),
    drains=st.sets(st.integers(min_value=0, max_value=300), max_size=4),
)
def test_every_task_runs_exactly_once_by_each_drain(
    tasks: int, threads: int, batch: int, drains: set[int]
) -> None:
    ran: Counter[int] = Counter()
    lock = threading.Lock()

    def task(n: int) -> None:
        with lock:
            ran[n] += 1

    workers = BatchWorkers(threads, name="test", batch=batch)
    try:
        for n in range(tasks):
            workers.submit(task, n)
            if n in drains:
                workers.drain()
                assert set(ran) == set(range(n + 1))  # everything submitted so far has run
        workers.drain()
    finally:
        workers.close()
    assert ran == Counter(range(tasks))
    assert all(count == 1 for count in ran.values())


def test_a_lone_task_runs_without_waiting_for_its_batch_to_fill() -> None:
    """A slow listing may hand out one copy and then nothing for a while: it must start at once."""
    started = threading.Event()
    workers = BatchWorkers(2, name="test", batch=8)
    try:
        workers.submit(started.set)
        assert started.wait(30), "the task waited for seven more to fill its batch"
    finally:
        workers.close()


def test_close_runs_what_is_queued_and_ends_the_threads() -> None:
    ran: list[int] = []
    workers = BatchWorkers(3, name="test-close", batch=4)
    for n in range(10):
        workers.submit(ran.append, n)
    workers.close()
    assert sorted(ran) == list(range(10))
    assert not [t for t in threading.enumerate() if t.name.startswith("test-close-")]


def test_submitting_blocks_while_the_queue_is_full() -> None:
    """Work taken ahead of the workers is bounded (threads × 2 batches), whatever the bucket's size."""
    release = threading.Event()
    workers = BatchWorkers(1, name="test", batch=1)
    submitted = threading.Event()

    def feed() -> None:
        for _ in range(10):
            workers.submit(release.wait)
        submitted.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        assert not submitted.wait(0.5)  # one running, two queued: the fourth submit waits
    finally:
        release.set()
        feeder.join()
        workers.close()
    assert submitted.is_set()


def test_large_copies_go_to_separate_workers_not_one_batch() -> None:
    """Copies whose weight fills a batch are handed out one each: queued as one batch, three 64 MiB
    copies would run one after the other in one worker while the others had nothing to do.

    Every worker is first kept busy, so the queue holds the first large task when the next two are
    submitted (the moment a batch is filled rather than sent at once); the three then wait for each
    other at a barrier, which they reach only if they run at the same time.
    """
    threads = 3
    gate = threading.Event()
    busy = threading.Semaphore(0)
    barrier = threading.Barrier(threads, timeout=20)
    met: list[bool] = []

    def hold() -> None:
        busy.release()
        gate.wait()

    def large() -> None:
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)

    workers = BatchWorkers(threads, name="test", batch=8, batch_weight=1024 * 1024)
    try:
        for _ in range(threads):
            workers.submit(hold)
            assert busy.acquire(timeout=30)  # taken by a worker before the next is submitted
        for _ in range(threads):
            workers.submit(large, weight=64 * 1024 * 1024)
        gate.set()
        workers.drain()
    finally:
        gate.set()
        workers.close()
    assert met == [True] * threads, "the large copies were queued behind each other in one batch"
