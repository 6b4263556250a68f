"""Continuous replication: copy each change as it is announced, with a periodic listing as a safety net.

Changes come from bucket notifications (through an `EventReceiver`) or, for stores without them, from
a listing diff repeated every few seconds (poll mode). Either way a change only puts a key in the
pending set; a worker then asks the source about the key and copies or deletes it. A key whose copy
fails (the target is down, say) stays pending and is retried with backoff, so nothing is lost while a
centre is away. The periodic scan is the same listing diff, catching whatever a notification missed.

Lag is measured per object: from the moment the change was first known (the notification arrived, or
the object's Last-Modified when a scan found it, but not before this replicator started) to the moment
the target held it.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from .engine import KeyOutcome, Replicator, SyncOptions
from .errors import Unreachable, describe, error_code, is_permanent, is_transient
from .events import Change, EventReceiver
from .listing import iter_objects, merge_join, only_owned, prefetched
from .locations import Location
from .plan import Action, Step, plan, source_newer

log = logging.getLogger(__name__)

RECENT_LAGS = 256
# A key failing this many times in a row (or at once with a failure no retry can fix) is parked: named in
# the stats and logged once, then retried at the longest backoff until it succeeds or changes again.
PARK_AFTER = 5
MAX_PARKED_NAMED = 100
# Changes pending this long without a break are news to whoever reports the lag (`on_busy`). Told of every
# change that arrived with nothing pending, a hundred replicas receiving a write a second each ran every
# 2 s and wrote their status: a fifth of a core (the replica lane 14 %, kopf's loop 4.5 % for the watch
# events), which the notifications and copies waited behind (lag p99 1.1 s against 0.5 s without, 1,000
# replicas protected). A change copied sooner changes no lag worth reporting.
NEWS_AFTER_S = 1.0


@dataclass(frozen=True)
class ReplicationStats:
    """A snapshot for metrics. `current_lag_seconds` is the age of the oldest change not yet copied:
    the data a failover right now would lose, to compare with the target's RPO."""

    pending: int
    in_flight: int
    current_lag_seconds: float
    objects_copied: int
    bytes_copied: int
    objects_deleted: int
    failures: int  # attempts that failed; their keys stay pending
    changes_received: int  # from notifications, for this source bucket, prefix and shard
    changes_ignored: int  # notifications about other buckets, prefixes or shards
    lag_count: int
    lag_sum_seconds: float
    max_lag_seconds: float
    last_lag_seconds: float | None
    recent_lags: tuple[float, ...]
    scans: int
    last_scan_at: float | None  # POSIX time a scan last completed
    last_error: str | None
    parked: int = 0  # keys failing permanently, retried at the longest backoff
    parked_keys: tuple[tuple[str, str], ...] = ()  # (key, reason), the first MAX_PARKED_NAMED


class Driver(Protocol):
    """What runs many replicators on shared threads (the operator's follower hub) instead of their own:
    it calls `dispatch_once` and `scan_once` when asked to and runs copies on its pool."""

    def submit(self, work: Callable[[], None]) -> None: ...

    def dispatch_soon(self, replicator: ContinuousReplicator) -> None: ...

    def scan_soon(self, replicator: ContinuousReplicator) -> None: ...

    def forget(self, replicator: ContinuousReplicator) -> None: ...


@dataclass
class _Pending:
    first_seen: float  # POSIX time the change was first known
    attempts: int = 0
    not_before: float = 0.0  # monotonic time before which not to retry
    changed_while_in_flight: float | None = None
    rerun: bool = False  # going again because the key changed while a copy of it was in flight


@dataclass
class _Tally:
    objects_copied: int = 0
    bytes_copied: int = 0
    objects_deleted: int = 0
    failures: int = 0
    changes_received: int = 0
    changes_ignored: int = 0
    lag_count: int = 0
    lag_sum: float = 0.0
    lag_max: float = 0.0
    lag_last: float | None = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_LAGS))
    scans: int = 0
    last_scan_at: float | None = None
    last_error: str | None = None
    parked: dict[str, str] = field(default_factory=dict)  # key → reason


class ContinuousReplicator:
    """Keeps `target` following `source`. `start()` runs it in background threads; `stop()` ends it.

    With `receiver` and `token`, it listens to notifications posted to `receiver.url(token)` and scans
    every `scan_interval` seconds. Without a receiver it polls: a scan every `poll_interval` seconds.
    """

    def __init__(
        self,
        source: Location,
        target: Location,
        options: SyncOptions | None = None,
        *,
        receiver: EventReceiver | None = None,
        token: str | None = None,
        scan_interval: float = 300.0,
        poll_interval: float = 5.0,
        retry_delay: float = 1.0,
        max_retry_delay: float = 60.0,
        max_pending: int = 10_000,
        on_lag: Callable[[str, float], None] | None = None,
        driver: Driver | None = None,
        on_busy: Callable[[], None] | None = None,
    ) -> None:
        if (receiver is None) != (token is None):
            raise ValueError("give both an event receiver and its token, or neither (poll mode)")
        self.replicator = Replicator(source, target, options)
        self.options = self.replicator.options
        self.source = source
        self.receiver = receiver
        self.token = token
        self.interval = scan_interval if receiver is not None else poll_interval
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_pending = max_pending
        self.on_lag = on_lag
        # Told when changes have been pending for NEWS_AFTER_S without a break, and when the first scan
        # has finished (the lag is known from then on): whoever reports this follower's lag (its
        # replica, which runs seldom while idle) looks again soon, instead of polling while idle.
        self.on_busy = on_busy
        self._news = False
        self._busy_since: float | None = None  # monotonic time since when changes have been pending
        self._told = False  # on_busy was called in this busy spell
        self._pending: dict[str, _Pending] = {}
        self._in_flight: set[str] = set()
        # Pairs (source ETag, target ETag) known to be in sync: spares a HEAD per scan for objects
        # whose ETags differ only because they were uploaded in different parts.
        self._confirmed: dict[str, tuple[str, str]] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._scan_now = threading.Event()
        self._scan_failures = 0  # scans failed in a row
        self._tally = _Tally()
        self._started_at = time.time()
        self.driver = driver
        self._workers = (
            None
            if driver is not None
            else ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="dc-follow")
        )
        self._threads: list[threading.Thread] = []
        self._swept = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> ContinuousReplicator:
        self._started_at = time.time()
        if self.receiver is not None and self.token is not None:
            self.receiver.register(self.token, self.notify)
        if self.driver is not None:
            self.driver.scan_soon(self)
            return self
        for name, target in (("dc-dispatch", self._dispatch_loop), ("dc-scan", self._scan_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.receiver is not None and self.token is not None:
            self.receiver.unregister(self.token, self.notify)
        self._stop.set()
        self._scan_now.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
        if self.driver is not None:
            self.driver.forget(self)
            with self._cond:  # copies already started on the shared pool finish; queued ones do not start
                deadline = time.monotonic() + timeout
                while self._in_flight and time.monotonic() < deadline:
                    self._cond.wait(0.1)
        self.replicator.close()

    def request_scan(self) -> None:
        """Scan now instead of at the next interval (e.g. before a planned switchover)."""
        self._scan_now.set()
        if self.driver is not None:
            self.driver.scan_soon(self)

    def wait_caught_up(self, timeout: float) -> bool:
        """True once a scan has completed and no change is pending; False if `timeout` passes first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while time.monotonic() < deadline:
                if self._tally.scans > 0 and not self._pending and not self._in_flight:
                    return True
                self._cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        return False

    # -- intake ------------------------------------------------------------------------------------

    def notify(self, changes: list[Change]) -> None:
        """Sink for the event receiver: queue the changes that concern this source bucket and shard."""
        now = time.time()
        with self._cond:
            for change in changes:
                relative = self._relative(change)
                if relative is None or not self.options.shard.owns(relative):
                    self._tally.changes_ignored += 1
                    continue
                self._tally.changes_received += 1
                self._confirmed.pop(relative, None)
                self._enqueue(relative, now, fresh=True)
            self._cond.notify_all()
        self._poke()

    def _poke(self) -> None:
        """Driven: ask for a dispatch (the threads of an undriven replicator wake on `_cond` instead);
        tell `on_busy` when there is news."""
        if self.driver is not None:
            self.driver.dispatch_soon(self)
        self._tell()

    def _tell(self) -> float | None:
        """Call `on_busy` if there is news: the first scan done, or changes pending for NEWS_AFTER_S
        without a break (once per such spell). The seconds until the current spell would be news, for
        the caller's timer; None when there is nothing to wait for."""
        with self._cond:
            left = None
            if not self._told and self._busy_since is not None and self._pending:
                left = self._busy_since + NEWS_AFTER_S - time.monotonic()
                if left <= 0:
                    self._told, self._news, left = True, True, None
            news, self._news = self._news, False
        if news and self.on_busy is not None:
            self.on_busy()
        return left

    def _relative(self, change: Change) -> str | None:
        if change.bucket != self.source.bucket or not change.key.startswith(self.source.prefix):
            return None
        return change.key[len(self.source.prefix) :]

    def _enqueue(self, key: str, seen: float, fresh: bool = False) -> None:
        """Caller holds `_cond`. `fresh`: a notification of a new change, worth trying at once even
        during a backoff (a scan finding the key still out of line is not: it would undo the backoff)."""
        entry = self._pending.get(key)
        if entry is None:
            if not self._pending:  # a busy spell begins
                self._busy_since, self._told = time.monotonic(), False
            self._pending[key] = _Pending(first_seen=seen)
        elif key in self._in_flight:
            # The worker may already have read the old version: go again when it finishes.
            if entry.changed_while_in_flight is None:
                entry.changed_while_in_flight = seen
        else:
            entry.first_seen = min(entry.first_seen, seen)
            if fresh:
                entry.not_before = 0.0

    # -- scanning ----------------------------------------------------------------------------------

    def _scan_loop(self) -> None:
        while not self._stop.is_set():
            delay = self.scan_once()
            if delay is None:
                break
            self._scan_now.wait(delay)
            self._scan_now.clear()

    def scan_once(self) -> float | None:
        """One scan (the first sweeps stale uploads first); the seconds until the next, None once stopped."""
        if self._stop.is_set():
            return None
        self._scan_now.clear()
        if not self._swept:
            self._swept = True
            try:
                self.replicator.sweep_stale_uploads(datetime.now(UTC))
            except Exception as exc:
                self._note_error(f"sweeping stale uploads: {describe(exc)}")
        try:
            self._scan()
        except Exception as exc:
            self._note_error(f"scan: {describe(exc)}")
            # Tried again soon, backing off to the interval: at the interval alone, a replica created
            # while its target centre was away (no target bucket yet) waited five minutes for the scan
            # that makes it Protected.
            self._scan_failures += 1
            return min(self.interval, self.retry_delay * float(2 ** min(self._scan_failures, 16)))
        self._scan_failures = 0
        return self.interval

    def _scan(self) -> None:
        rep, opts = self.replicator, self.options
        halt = self._stop
        listings = [
            prefetched(
                only_owned(
                    iter_objects(
                        side.objects,
                        side.bucket,
                        side.prefix,
                        where=side.where,
                        page_size=opts.page_size,
                        retry=opts.retry,
                    ),
                    opts.shard.owns,
                ),
                stop=halt,
            )
            for side in (rep.source, rep.target)
        ]
        floor = self._started_at
        for action in plan(merge_join(listings[0], listings[1]), opts.delete):
            if halt.is_set():
                return
            if action.step in (Step.SKIP, Step.KEEP):
                continue
            if self._known_in_sync(action):
                continue
            seen = time.time()
            if action.source is not None and action.source.modified:
                seen = min(seen, max(floor, action.source.modified))
            self._wait_for_room()
            with self._cond:
                self._enqueue(action.key, seen)
                self._cond.notify_all()
            self._poke()
        with self._cond:
            self._news = self._news or not self._tally.scans
            self._tally.scans += 1
            self._tally.last_scan_at = time.time()
            self._cond.notify_all()
        self._poke()

    def _known_in_sync(self, action: Action) -> bool:
        if action.step is not Step.CHECK or action.source is None or action.target is None:
            return False
        if source_newer(action.source, action.target):
            return False  # changed since the copy, perhaps only its metadata: ask both sides
        return self._confirmed.get(action.key) == (action.source.etag, action.target.etag)

    def _wait_for_room(self) -> None:
        """Backpressure: a scan that finds a huge backlog waits for the workers instead of queueing it all."""
        with self._cond:
            while len(self._pending) >= self.max_pending and not self._stop.is_set():
                self._cond.wait(0.5)

    # -- copying -----------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            self._tell()  # a spell becomes news without any change: looked at every wake (≤ 0.5 s)
            with self._cond:
                ready = self._take_ready()
                if not ready:
                    self._cond.wait(self._next_wake(time.monotonic()))
                    continue
            for key in ready:
                assert self._workers is not None
                self._workers.submit(self._work, key)

    def _take_ready(self) -> list[str]:
        """Caller holds `_cond`: the keys to copy now (as many as there is room for), marked in flight."""
        now = time.monotonic()
        free = self.options.concurrency * 2 - len(self._in_flight)
        ready = [
            key
            for key, entry in self._pending.items()
            if key not in self._in_flight and entry.not_before <= now
        ][: max(0, free)]
        self._in_flight.update(ready)
        return ready

    def dispatch_once(self) -> float | None:
        """Driven: hand the ready keys to the driver's pool; the seconds until a backoff ends or the
        current busy spell becomes news, or None to wait for the next change or finished copy (each of
        which asks for a dispatch)."""
        if self._stop.is_set() or self.driver is None:
            return None
        with self._cond:
            ready = self._take_ready()
            now = time.monotonic()
            waits = [e.not_before - now for k, e in self._pending.items() if k not in self._in_flight]
        for key in ready:
            self.driver.submit(functools.partial(self._work, key))
        later = [w for w in waits if w > 0]
        news_in = self._tell()  # the driver's timer makes a long spell news without another change
        if news_in is not None:
            later.append(news_in)
        return min(later) if later else None

    def _next_wake(self, now: float) -> float:
        """Caller holds `_cond`: sleep until the earliest backoff ends, but never long."""
        waits = [e.not_before - now for k, e in self._pending.items() if k not in self._in_flight]
        return max(0.01, min([0.5, *waits]))

    def _work(self, key: str) -> None:
        if self._stop.is_set():  # queued on a shared pool before the stop: not started
            with self._cond:
                self._in_flight.discard(key)
                self._cond.notify_all()
            return
        try:
            outcome = self.replicator.sync_key(key)
        except Exception as exc:
            self._failed(key, exc)
        else:
            self._done(key, outcome)

    def _done(self, key: str, outcome: KeyOutcome) -> None:
        now = time.time()
        lag: float | None = None
        with self._cond:
            self._in_flight.discard(key)
            entry = self._pending.get(key)
            if entry is not None and entry.changed_while_in_flight is not None:
                entry.first_seen, entry.changed_while_in_flight = entry.changed_while_in_flight, None
                entry.attempts, entry.not_before, entry.rerun = 0, 0.0, True
            elif entry is not None:
                del self._pending[key]
                # A rerun that finds the copy in line was delivered by the copy in flight when the change
                # came (duplicate notifications do this): its lag counts too.
                delivered = ("copied", "deleted") + (("in-sync", "absent") if entry.rerun else ())
                if outcome.status in delivered:
                    lag = max(0.0, now - entry.first_seen)
            if self._tally.parked.pop(key, None) is not None:
                log.info("replicating %s succeeded again; no longer parked", key)
            if outcome.status in ("copied", "in-sync") and outcome.target_etag:
                self._confirmed[key] = (outcome.source_etag, outcome.target_etag)
            elif outcome.status in ("deleted", "absent"):
                self._confirmed.pop(key, None)
            tally = self._tally
            if outcome.status == "copied":
                tally.objects_copied += 1
                tally.bytes_copied += outcome.size
            elif outcome.status == "deleted":
                tally.objects_deleted += 1
            if lag is not None:
                tally.lag_count += 1
                tally.lag_sum += lag
                tally.lag_max = max(tally.lag_max, lag)
                tally.lag_last = lag
                tally.recent.append(lag)
            self._cond.notify_all()
        self._poke()
        if lag is not None and self.on_lag is not None:
            self.on_lag(key, lag)

    def _failed(self, key: str, exc: Exception) -> None:
        """Back off and retry; a key that keeps failing, or fails in a way no retry can fix, is parked:
        reported once (log, `parked` in the stats), retried at the longest backoff, never in a loop."""
        reason = describe(exc)
        message = f"{key}: {reason}"
        hopeless = is_permanent(exc) or not is_transient(exc)
        # A store out of reach is not this key's fault: every key waits for it, and the lag says so.
        about_the_key = not (isinstance(exc, Unreachable) or (is_transient(exc) and not error_code(exc)))
        newly_parked = False
        with self._cond:
            self._in_flight.discard(key)
            entry = self._pending.get(key)
            if entry is not None:
                entry.attempts += 1
                parked = about_the_key and (hopeless or entry.attempts >= PARK_AFTER)
                if parked:
                    newly_parked = key not in self._tally.parked
                    self._tally.parked[key] = reason
                    delay = self.max_retry_delay
                else:
                    delay = min(self.max_retry_delay, self.retry_delay * 2 ** min(entry.attempts, 16))
                entry.not_before = time.monotonic() + random.uniform(delay / 2, delay)
                entry.changed_while_in_flight = None
            self._tally.failures += 1
            self._tally.last_error = message
            self._cond.notify_all()
        if newly_parked:
            log.warning(
                "replicating %s keeps failing (%s); parked: retried every %.0fs or on its next change",
                key,
                reason,
                self.max_retry_delay,
            )
        elif key not in self._tally.parked:
            log.warning("replicating %s failed, will retry: %s", key, reason)
        self._poke()

    def _note_error(self, message: str) -> None:
        log.warning("%s", message)
        with self._cond:
            self._tally.last_error = message

    # -- reporting ---------------------------------------------------------------------------------

    def stats(self) -> ReplicationStats:
        now = time.time()
        with self._cond:
            t = self._tally
            oldest = min((e.first_seen for e in self._pending.values()), default=now)
            return ReplicationStats(
                pending=len(self._pending),
                in_flight=len(self._in_flight),
                current_lag_seconds=max(0.0, now - oldest),
                objects_copied=t.objects_copied,
                bytes_copied=t.bytes_copied,
                objects_deleted=t.objects_deleted,
                failures=t.failures,
                changes_received=t.changes_received,
                changes_ignored=t.changes_ignored,
                lag_count=t.lag_count,
                lag_sum_seconds=t.lag_sum,
                max_lag_seconds=t.lag_max,
                last_lag_seconds=t.lag_last,
                recent_lags=tuple(t.recent),
                scans=t.scans,
                last_scan_at=t.last_scan_at,
                last_error=t.last_error,
                parked=len(t.parked),
                parked_keys=tuple(list(t.parked.items())[:MAX_PARKED_NAMED]),
            )
