"""One runtime for every kind: each kind's objects run on a lane, a fixed pool of worker threads.

kopf learns which objects exist (an async daemon per object costs a coroutine, not a thread) and tells the
kind's `Roster`; the roster keeps each object's state and asks its lane to run it. A lane runs an object
when it is due: at once when it is attached or woken (its spec changed, a centre's health changed), else
when the delay its last run returned has passed. Whatever waits is ordered by how long it has been due, so
one busy object cannot starve the others, and every lane has its own threads, so no kind can starve
another. Detaching (deletion, the operator pausing) never waits: the object's last work (closing what it
holds) is queued on the lane like any run.

The number of threads is the sum of the lanes' workers, whatever the number of objects.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..metrics import runtime as metrics

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
S = TypeVar("S")
FAILED_RUN_RETRY_S = 10.0  # after a run raised something its kind did not handle


@dataclass(frozen=True)
class LaneStats:
    """A snapshot for metrics and tests."""

    objects: int  # scheduled, running or closing
    due: int  # due now and waiting for a worker
    running: int
    oldest_due_seconds: float  # how long the longest-waiting due object has waited


class Lane(Generic[K]):
    """Runs `work(key)` for keys when they are due, on `workers` threads; `work` returns the seconds until
    the key is due again (None: only when woken). A key runs on one worker at a time; a wake while it runs
    makes it run again right after."""

    def __init__(self, name: str, workers: int, work: Callable[[K], float | None]) -> None:
        self.name = name
        self._work = work
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # key → monotonic time it is due (heap entries not matching are stale)
        self._running: set[K] = set()
        self._again: dict[K, float] = {}  # woken while running: when it is due again
        self._closing: dict[K, Callable[[], None]] = {}  # detached: the last work to run for the key
        self._seq = itertools.count()
        self._stopping = False
        self.workers = workers
        self._threads: list[threading.Thread] = []  # started with the first key (importing starts none)
        metrics.register_lane(name, workers, self.stats)

    # -- scheduling (any thread) -------------------------------------------------------------------
    def wake(self, key: K, delay: float = 0.0) -> None:
        """Make `key` due within `delay` seconds (an earlier due time is kept)."""
        with self._cond:
            if key in self._closing:
                return
            due = time.monotonic() + delay
            if key in self._running:  # due again after this run (a due time now would be lost with it)
                self._again[key] = min(due, self._again.get(key, due))
                return
            self._push(key, due)

    def wake_all(self) -> None:
        with self._cond:
            now = time.monotonic()
            for key in list(self._due) + list(self._running):
                if key not in self._closing:
                    if key in self._running:
                        self._again[key] = now
                    else:
                        self._push(key, now)

    def close(self, key: K, last: Callable[[], None]) -> None:
        """Stop running `key`: `last` runs on a worker once any run of the key in progress has ended."""
        with self._cond:
            self._closing[key] = last
            self._again.pop(key, None)
            self._due.pop(key, None)
            if key not in self._running:
                self._push_closing(key)

    def stats(self) -> LaneStats:
        now = time.monotonic()
        with self._cond:
            due = [t for k, t in self._due.items() if t <= now and k not in self._running]
            keys = set(self._due) | self._running | set(self._closing)
            return LaneStats(len(keys), len(due), len(self._running), max((now - t for t in due), default=0))

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- internals (caller holds _cond) ------------------------------------------------------------
    def _start(self) -> None:
        if self._threads or self._stopping:
            return
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _push(self, key: K, due: float) -> None:
        self._start()
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        self._cond.notify()

    def _push_closing(self, key: K) -> None:
        # Closing jumps the queue (due at time zero): deletion never waits behind ordinary runs.
        self._start()
        self._due[key] = 0.0
        heapq.heappush(self._heap, (0.0, next(self._seq), key))
        self._cond.notify()

    def _next(self) -> K | None:
        """The next due key, marked running; None when stopping. Waits until one is due."""
        while not self._stopping:
            now = time.monotonic()
            while self._heap:
                due, _, key = self._heap[0]
                if self._due.get(key) != due or key in self._running:
                    heapq.heappop(self._heap)  # stale: rescheduled, closed, or running (requeued after)
                    continue
                if due > now:
                    break
                heapq.heappop(self._heap)
                del self._due[key]
                self._running.add(key)
                return key
            self._cond.wait(min(60.0, self._heap[0][0] - now) if self._heap else 60.0)
        return None

    # -- workers -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                key = self._next()
                if key is None:
                    return
                last = self._closing.pop(key, None)
            delay: float | None = None
            try:
                if last is not None:
                    last()
                else:
                    delay = self._work(key)
            except Exception:
                # A bug in one object's run must not stop the lane: report it and try again later.
                log.exception("%s: run of %s failed", self.name, key)
                delay = FAILED_RUN_RETRY_S if last is None else None
            with self._cond:
                self._running.discard(key)
                if key in self._closing:
                    self._push_closing(key)
                    continue
                # The earlier of a wake while it ran (or an attach again while closing) and its own delay.
                times = [self._again.pop(key)] if key in self._again else []
                if delay is not None:
                    times.append(time.monotonic() + max(0.0, delay))
                if times:
                    self._push(key, min(times))


class Roster(Generic[K, S]):
    """The objects of one kind this operator works on, each with its live state, run on a lane.

    `attach(key, body, make)`: `make()` builds the object's state on its first run; `run(state, body)`
    does one reconcile from a private copy of the newest body and returns the seconds until the next
    (None: only when woken); `drop(state, deleted)` releases what the state holds once it is detached.
    """

    def __init__(
        self,
        name: str,
        workers: int,
        run: Callable[[S, dict[str, Any]], float | None],
        drop: Callable[[S, bool], None],
    ) -> None:
        self.name = name
        self._run, self._drop = run, drop
        self._bodies: dict[K, Callable[[], Mapping[str, Any]]] = {}
        self._makers: dict[K, Callable[[], S]] = {}
        self._states: dict[K, S] = {}
        self._lock = threading.Lock()
        self.lane: Lane[K] = Lane(name, workers, self._tick)
        # Bumped when an object is attached, detached or woken for a new spec: what one object's run
        # derived from all the others (an overlap between them, say) holds while this stays the same.
        self.version = 0
        self.changed_at = 0.0  # monotonic time of the last bump

    def attach(self, key: K, body: Callable[[], Mapping[str, Any]], make: Callable[[], S]) -> None:
        """Start running `key`; `body()` gives its newest body (kopf's live one)."""
        with self._lock:
            self._bodies[key] = body
            self._makers[key] = make
            self._changed()
        self.lane.wake(key)

    def detach(self, key: K, deleted: bool) -> None:
        with self._lock:
            self._bodies.pop(key, None)
            self._makers.pop(key, None)
            self._changed()
        self.lane.close(key, lambda: self._release(key, deleted))

    def wake(self, key: K) -> None:
        """Run `key` now: its spec changed."""
        if key in self._bodies:
            with self._lock:
                self._changed()
            self.lane.wake(key)

    def wake_within(self, key: K, delay: float) -> None:
        """Run `key` within `delay` seconds (something about it changed, not its spec)."""
        if key in self._bodies:
            self.lane.wake(key, delay)

    def _changed(self) -> None:  # caller holds _lock
        self.version += 1
        self.changed_at = time.monotonic()

    def wake_all(self) -> None:
        self.lane.wake_all()

    def count(self) -> int:
        return len(self._bodies)

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._bodies)

    def state(self, key: K) -> S | None:
        return self._states.get(key)

    def states(self) -> list[S]:
        return list(self._states.values())

    def _tick(self, key: K) -> float | None:
        with self._lock:
            source, make = self._bodies.get(key), self._makers.get(key)
        if source is None or make is None:
            return None
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = make()
        return self._run(state, snapshot(source()))

    def _release(self, key: K, deleted: bool) -> None:
        state = self._states.pop(key, None)
        if key in self._bodies:  # attached again (the operator resumed) before the close ran
            self.lane.wake(key)
            if state is not None:
                self._states[key] = state
            return
        if state is not None:
            self._drop(state, deleted)


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain deep copy of a body (kopf's live one changes under the worker otherwise), without
    `managedFields`, which no reconciler reads and which cost more to copy than the rest."""
    plain = dict(body)
    meta = plain.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        plain["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return copy.deepcopy(plain)
