"""Running the replication flows of one DRReplica: continuous followers in the operator, scheduled Jobs.

Continuous flows run as `ContinuousReplicator`s inside the operator, all driven by one `FollowerHub`: a
fixed pool of copy workers, scan workers and one dispatcher shared by every follower of every replica,
so threads do not grow with the number of replicas. Scheduled flows become Kubernetes Jobs at their cron
times, inside their transfer window.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from croniter import croniter

from .. import settings
from ..api.common import parse_quantity
from ..failover.topology import Flow
from ..replication.continuous import ContinuousReplicator, ReplicationStats
from ..replication.engine import SyncOptions
from ..replication.errors import RetryPolicy
from ..replication.events import Change, EventReceiver, Sink
from ..replication.locations import Location
from .centres import Centre
from .runtime import Lane

log = logging.getLogger(__name__)
FOLLOW_CONCURRENCY = 4
# A follower retries a failed key itself (it stays pending, with backoff), so each request needs only a
# short retry of its own. The engine's default (8 attempts, up to 10 s apart) kept workers sleeping for
# tens of seconds on a dead source, and stopping the follower at a failover waited for them.
FOLLOW_RETRY = RetryPolicy(attempts=3, initial=0.2, maximum=1.0)
# With notifications a scan is only the safety net for a lost one: every 5 minutes, as the replicator's
# own default. A thousand followers scanning every minute listed two buckets 33 times a second.
NOTIFIED_SCAN_S = 300.0
POLL_SCAN_S = 2.0


class BucketRouter:
    """Hands a store's notifications only to the followers of the buckets they name. Registered with the
    receiver once per token, instead of every follower of the store: with a thousand followers of one
    store, each notification went through a thousand sinks, each discarding it but one."""

    def __init__(self, receiver: EventReceiver) -> None:
        self.receiver = receiver
        self._lock = threading.Lock()
        self._sinks: dict[str, dict[str, list[Sink]]] = {}  # token → source bucket → sinks

    def for_bucket(self, bucket: str) -> EventReceiver:
        """What a follower of `bucket` registers with, in place of the receiver itself."""
        return cast(EventReceiver, _BucketRegistration(self, bucket))

    def register(self, token: str, bucket: str, sink: Sink) -> None:
        with self._lock:
            buckets = self._sinks.get(token)
            if buckets is None:
                buckets = self._sinks[token] = {}
                self.receiver.register(token, functools.partial(self._route, token))
            buckets.setdefault(bucket, []).append(sink)

    def unregister(self, token: str, bucket: str, sink: Sink) -> None:
        with self._lock:
            sinks = self._sinks.get(token, {}).get(bucket, [])
            if sink in sinks:
                sinks.remove(sink)
            if not sinks:
                self._sinks.get(token, {}).pop(bucket, None)

    def _route(self, token: str, changes: list[Change]) -> None:
        by_bucket: dict[str, list[Change]] = {}
        for change in changes:
            by_bucket.setdefault(change.bucket, []).append(change)
        with self._lock:
            buckets = self._sinks.get(token, {})
            deliveries = [(list(buckets.get(b, [])), found) for b, found in by_bucket.items()]
        for sinks, found in deliveries:
            for sink in sinks:
                sink(found)


class _BucketRegistration:
    """The receiver as one follower sees it: registering routes by the follower's source bucket."""

    def __init__(self, router: BucketRouter, bucket: str) -> None:
        self.router, self.bucket = router, bucket

    def register(self, token: str, sink: Sink) -> None:
        self.router.register(token, self.bucket, sink)

    def unregister(self, token: str, sink: Sink) -> None:
        self.router.unregister(token, self.bucket, sink)


class FollowerHub:
    """Runs every continuous follower of the operator on shared threads: copies on a fixed pool, scans
    and dispatching on lanes (`reconcile.runtime`), each follower when it has something to do."""

    def __init__(self, copy_workers: int | None = None, scan_workers: int | None = None) -> None:
        copy_workers = copy_workers or settings.current().follow_workers
        scan_workers = scan_workers or settings.current().scan_workers
        self.routers: dict[int, BucketRouter] = {}
        self._lock = threading.Lock()
        self.copies = ThreadPoolExecutor(copy_workers, thread_name_prefix="follow-copy")
        self.dispatch: Lane[ContinuousReplicator] = Lane("follow-dispatch", 1, lambda f: f.dispatch_once())
        self.scans: Lane[ContinuousReplicator] = Lane("follow-scan", scan_workers, lambda f: f.scan_once())

    def submit(self, work: Callable[[], None]) -> None:
        self.copies.submit(work)

    def dispatch_soon(self, replicator: ContinuousReplicator) -> None:
        self.dispatch.wake(replicator)

    def scan_soon(self, replicator: ContinuousReplicator) -> None:
        self.scans.wake(replicator)

    def forget(self, replicator: ContinuousReplicator) -> None:
        self.dispatch.close(replicator, _nothing)
        self.scans.close(replicator, _nothing)

    def router(self, receiver: EventReceiver) -> BucketRouter:
        with self._lock:
            found = self.routers.get(id(receiver))
            if found is None:
                found = self.routers[id(receiver)] = BucketRouter(receiver)
            return found


def _nothing() -> None:
    pass


_hub: FollowerHub | None = None
_hub_lock = threading.Lock()


def hub() -> FollowerHub:
    """The operator's one follower hub, made on first use."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = FollowerHub()
        return _hub


@dataclass(frozen=True)
class FollowKey:
    """What identifies a running follower: if any of it changes, the follower is restarted."""

    target: str
    src: str
    dst: str
    delete: str
    bandwidth: int | None


def location(centre: Centre, bucket: str, prefix: str) -> Location:
    return Location(centre.endpoint, bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/")


def options(flow: Flow) -> SyncOptions:
    mirror = flow.spec is None or flow.spec.delete_policy == "Mirror"
    bandwidth = flow.spec.bandwidth_limit if flow.spec else None
    return SyncOptions(
        delete="mirror" if mirror else "retain",
        concurrency=FOLLOW_CONCURRENCY,
        bandwidth=int(parse_quantity(bandwidth)) if bandwidth else None,
        retry=FOLLOW_RETRY,
    )


class Followers:
    """The continuous followers of one replica, started and stopped to match the wanted flows."""

    def __init__(
        self,
        receiver: EventReceiver | None,
        tokens: Callable[[str], str | None],
        driver: FollowerHub | None = None,
    ) -> None:
        self.receiver = receiver
        self.tokens = tokens  # centre name → its notification token, if it sends notifications
        self.driver = driver  # None: each follower runs its own threads (as `datacloud sync --follow`)
        self.on_busy: Callable[[], None] | None = None  # a follower has newly something pending
        self.running: dict[str, tuple[FollowKey, ContinuousReplicator]] = {}

    def key(self, flow: Flow) -> FollowKey:
        opts = options(flow)
        return FollowKey(
            flow.target,
            f"{flow.src.centre}/{flow.src.bucket}/{flow.src.prefix}",
            f"{flow.dst.centre}/{flow.dst.bucket}/{flow.dst.prefix}",
            opts.delete,
            opts.bandwidth,
        )

    def match(self, wanted: list[Flow], centres: dict[str, Centre]) -> None:
        """Start followers for wanted flows, restart changed ones, stop the rest."""
        keep: set[str] = set()
        for flow in wanted:
            if flow.src.centre not in centres or flow.dst.centre not in centres:
                continue
            key = self.key(flow)
            keep.add(flow.target)
            current = self.running.get(flow.target)
            if current and current[0] == key:
                continue
            if current:
                self.stop(flow.target)
            self.running[flow.target] = (key, self._start(flow, centres))
        for target in set(self.running) - keep:
            self.stop(target)

    def _start(self, flow: Flow, centres: dict[str, Centre]) -> ContinuousReplicator:
        src = location(centres[flow.src.centre], flow.src.bucket, flow.src.prefix)
        dst = location(centres[flow.dst.centre], flow.dst.bucket, flow.dst.prefix)
        token = self.tokens(flow.src.centre) if self.receiver else None
        log.info("following %s → %s (%s)", src, dst, "notifications" if token else "polling")
        if token and self.receiver:
            receiver = self.receiver
            if self.driver is not None:
                receiver = self.driver.router(receiver).for_bucket(src.bucket)
            follower = ContinuousReplicator(
                src,
                dst,
                options(flow),
                receiver=receiver,
                token=token,
                scan_interval=NOTIFIED_SCAN_S,
                driver=self.driver,
                on_busy=self.on_busy,
            )
        else:
            follower = ContinuousReplicator(
                src, dst, options(flow), poll_interval=POLL_SCAN_S, driver=self.driver, on_busy=self.on_busy
            )
        return follower.start()

    def stats(self, target: str) -> ReplicationStats | None:
        running = self.running.get(target)
        return running[1].stats() if running else None

    def caught_up(self, target: str, timeout: float) -> bool:
        running = self.running.get(target)
        return bool(running and running[1].wait_caught_up(timeout))

    def stop(self, target: str) -> None:
        running = self.running.pop(target, None)
        if running:
            running[1].stop(timeout=10.0)

    def stop_all(self) -> None:
        for target in list(self.running):
            self.stop(target)


def in_window(window: Any, now: datetime) -> bool:
    """Whether `now` (operator local time) is inside a daily HH:MM–HH:MM window; no window is always."""
    if window is None:
        return True
    start = time.fromisoformat(window.start)
    end = time.fromisoformat(window.end)
    current = now.astimezone().time()
    if start <= end:
        return start <= current < end
    return current >= start or current < end  # spans midnight


def due_runs(schedule: str, last: datetime, now: datetime) -> list[datetime]:
    """Cron times after `last` up to `now` (at most 1,000, oldest first)."""
    if next_run(schedule, last) > now:
        return []  # nearly every run: answered from the firings remembered for the schedule
    it = croniter(schedule, last)
    out: list[datetime] = []
    while len(out) < 1000:
        nxt = it.get_next(datetime)
        if nxt > now:
            break
        out.append(nxt)
    return out


# Two consecutive firings of each schedule: for any time between them (the first included) the next
# firing is the second. Every replica asks at every run for the firing after its last run and after now;
# parsing the schedule anew each time was a sixth of the replica workers' CPU in a mass failover (py-spy).
_between: dict[tuple[str, Any], tuple[datetime, datetime]] = {}
SCHEDULES_KEPT = 4096  # distinct schedules remembered; forgotten all at once beyond that


def next_run(schedule: str, after: datetime) -> datetime:
    """The schedule's first firing strictly after `after`."""
    key = (schedule, after.tzinfo)  # naive and aware times do not compare
    known = _between.get(key)
    if known is not None and known[0] <= after < known[1]:
        return known[1]
    nxt: datetime = croniter(schedule, after).get_next(datetime)
    previous: datetime = croniter(schedule, nxt).get_prev(datetime)
    if previous <= after:  # no firing in between: croniter agrees with itself (not a given with R or H)
        if len(_between) >= SCHEDULES_KEPT:
            _between.clear()
        _between[key] = (previous, nxt)
    return nxt


def epoch_now() -> datetime:
    return datetime.now(UTC)


def seconds_between(a: datetime, b: datetime) -> float:
    return (b - a) / timedelta(seconds=1)
