"""Write leases: an active copy accepts writes only until a time the operator keeps moving forward.

A fence can only be written to a store that answers. A store that died (or was cut off) while active,
and comes back after a failover promoted another copy, would come back with the policy it had — open —
and be a second writer until the operator fenced it again. So the active copy is never simply open: its
statement is a Deny that takes effect at `until` (`aws:EpochTime`, the store's own clock), and the
operator renews it when what is left of it falls below RENEW_MARGIN_S (plus a spread). A copy the
operator cannot reach stops accepting writes by itself within one lease, and a store that was dead
returns refusing them.

The other half of the bargain is on the failover side: an unplanned failover that cannot fence the old
active copy promotes the new one only after every lease the operator may have sent to the old copy has
run out (plus `SKEW_S` for the clocks of operator and store). The bound is exact within one process:
an expiry is recorded before it is sent, and forgotten again only when the request provably never left
(connection refused or not established). A process that just started does not know what its predecessor
sent, so it assumes a lease renewed at the moment it started.

Cost: one policy write per bucket holding active copies every `length - RENEW_MARGIN_S` seconds (the
first renewal after a grant up to a random spread earlier; the leases of every copy on a bucket are
renewed in one write), through the lean S3 client; the policy is read first (`fencing.renew_many`,
READ_EVERY). docs/dr.md derives LEASE_MIN_S from the measured cost.
"""

from __future__ import annotations

import heapq
import http.client
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from ..adapters import s3, s3_wire
from . import fencing

log = logging.getLogger(__name__)
SKEW_S = 1.0  # how far the clocks of the operator and a store may differ (NTP keeps them far closer)
RENEW_TIMEOUT_S = 2.0  # to connect, and to wait for each answer
RETRY_S = 1.0  # a renewal that failed is tried again this soon
# A renewal starts while at least this much is left of the lease: room for an attempt that times out, the
# retry RETRY_S later (landing at once on a store that answers again), and the clocks' skew.
RENEW_MARGIN_S = RENEW_TIMEOUT_S + RETRY_S + SKEW_S
# A lease's first renewal starts up to this much earlier, at random, so buckets granted together (a mass
# failover) do not renew in step; later ones start when RENEW_MARGIN_S is left: the buckets' phases are
# already apart, and an early start would only renew more often (a spread at every renewal cost a tenth
# of the renewals).
SPREAD_MAX_S = 4.0
# The shortest lease: 1,000 buckets renewed every LEASE_MIN_S - RENEW_MARGIN_S seconds cost about 3 % of
# a core (3.5 % measured in the operator), and an unreachable copy's lease ends soon enough after a kill
# for the failover's RTO (the arithmetic, with the measured cost: docs/dr.md).
LEASE_MIN_S = 11.0
LEASE_MAX_S = 300.0
# Every ROUND_S the renewals due before the next round are started (up to that much early, so the margin
# is all there when a renewal starts), each store's one after another on one of RENEWERS threads, so a
# store that answers slowly holds up only its own. Started one by one as they came due, on three threads
# side by side, the same renewals cost 0.43 ms of CPU each against 0.25 ms so (1,000 idle replicas,
# per-thread CPU): thread hand-overs and the GIL passed around.
ROUND_S = 0.5
RENEWERS = 3  # stores renewed at once
# A bucket whose renewals the store refuses is logged at its first failure, then at most this often
# (a WARNING every RETRY_S per bucket filled the log), and once more when a renewal lands again.
WARN_EVERY_S = 60.0
# A store answering that the bucket does not exist: no copy there can take writes, so nothing is lost by
# asking less often (the replica says SourceBucketMissing; the renewal lands once the bucket is made).
NO_BUCKET_RETRY_S = 10.0


def length_s(down_for_s: float) -> float:
    """A replica's lease: as long as the active centre must be Down before an automatic failover (so
    the lease has usually run out by then and costs the failover nothing), within the bounds."""
    return min(LEASE_MAX_S, max(LEASE_MIN_S, down_for_s))


Place = tuple[s3.S3Endpoint, str]  # a store and a bucket on it


@dataclass(frozen=True)
class Held:
    """The active copy one owner holds a lease on."""

    endpoint: s3.S3Endpoint
    bucket: str
    prefix: str
    principal: str | None  # the probe account, whose Allow is written with the lease
    length_s: float
    holder: Hashable = None  # who holds it (a replica's key): told when the store refuses its renewals


class Leases:
    """The leases this process holds and renews, and the latest expiry it may have sent for each owner."""

    def __init__(self, clock: Callable[[], float] = time.time, background: bool = True) -> None:
        self.clock = clock
        self.background = background  # renewed by a thread of its own (tests call `renew` themselves)
        self.started = clock()
        self._lock = threading.Lock()
        self._held: dict[str, Held] = {}
        # The owners holding a lease on each bucket: a renewal touches only its bucket's owners (scanning
        # every lease per renewal cost a tenth of a core at 1,000 buckets renewed every few seconds).
        self._owners_at: dict[Place, set[str]] = {}
        self._renew_at: dict[str, float] = {}
        # When each owner's lease is renewed, as a heap: finding the due ones costs what is due, not a
        # scan of every lease (a scan every half second was 0.7 % of a core at 1,000 buckets). An entry
        # whose time is not the owner's `_renew_at` is stale and skipped.
        self._queue: list[tuple[float, str]] = []
        self._sent: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()  # the renewer ends (tests; the operator's renews for good)
        self._random = random.Random()
        # Until when a store counts as unreachable (a connection to it failed): its other buckets are not
        # tried meanwhile, so a store that times out does not hold the renewers for a timeout per bucket.
        self._unreachable: dict[s3.S3Endpoint, float] = {}
        # Buckets whose store answered a renewal with a refusal or an error, since their last renewal that
        # landed: (attempts in a row, when last logged, the last answer). An unreachable store is not
        # counted: its centre is Down, which has alerts of its own.
        self._failing: dict[Place, tuple[int, float, str]] = {}
        # Told the holders of a bucket's leases when its store refuses a renewal, so that they look at
        # their centre again at once (rotated credentials: `follow`), not at their next timer.
        self.on_refused: Callable[[Hashable], None] = lambda holder: None
        # Told the holders when the statements no replica wrote change on their bucket (an SRE's Deny
        # on every PUT, say): whether the active copy still takes writes was probed before that change,
        # so the holder probes again now rather than at its next full run, minutes later. The renewals
        # read the policy anyway; this costs nothing more.
        self.on_changed: Callable[[Hashable], None] = lambda holder: None
        self._foreign: dict[Place, str] = {}

    # -- the replica's side --------------------------------------------------------------------------
    def grant(self, owner: str, held: Held) -> int:
        """Hold (and from now on renew) the lease of an active copy; the expiry to write with it now."""
        with self._lock:
            self._forget(owner)
            self._held[owner] = held
            self._owners_at.setdefault(place_of(held), set()).add(owner)
            until = self._next(owner, held, first=True)
            if self._thread is None and self.background:
                self._thread = threading.Thread(target=self._run, name="write-leases", daemon=True)
                self._thread.start()
        return until

    def release(self, owner: str, length: float) -> float:
        """Stop renewing the owner's lease; the Unix time until which its copy may still accept writes
        (with `length`, the lease a predecessor process may have written, for a process just started)."""
        with self._lock:
            held = self._forget(owner)
            self._renew_at.pop(owner, None)
        if held is not None:
            with fencing.lock(held.endpoint, held.bucket):
                pass  # a renewal in flight has recorded what it sends; none starts for this owner now
        with self._lock:
            return max(float(self._sent.get(owner, 0)), self.started + length)

    def stop(self) -> None:
        """End the background renewer (after the renewals it started)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(10)

    def holds(self, owner: str) -> bool:
        with self._lock:
            return owner in self._held

    def follow(self, owner: str, endpoint: s3.S3Endpoint) -> None:
        """The lease's store is now reached through `endpoint` (its credentials were rotated): renewals
        use it from the next one, which is due at once."""
        with self._lock:
            held = self._held.get(owner)
            if held is None or held.endpoint == endpoint:
                return
            failed = self._failing.get(place_of(held))
            self._forget(owner)
            moved = replace(held, endpoint=endpoint)
            self._held[owner] = moved
            self._owners_at.setdefault(place_of(moved), set()).add(owner)
            if failed is not None:  # its refusals so far, so that the renewal that lands says so
                self._failing.setdefault(place_of(moved), failed)
            self._schedule(owner, self.clock())

    def failing(self) -> int:
        """Buckets whose store refuses (or fails) the renewal of leases held there: their active copies
        refuse writes once those leases end (`datacloud_write_lease_renewals_failing`)."""
        with self._lock:
            return sum(
                1
                for place, (_, _, answer) in self._failing.items()
                if place in self._owners_at and answer != "NoSuchBucket"  # SourceBucketMissing says it
            )

    def _forget(self, owner: str) -> Held | None:  # caller holds _lock
        held = self._held.pop(owner, None)
        if held is not None:
            owners = self._owners_at.get(place_of(held), set())
            owners.discard(owner)
            if not owners:
                self._owners_at.pop(place_of(held), None)
                self._failing.pop(place_of(held), None)
                self._foreign.pop(place_of(held), None)
        return held

    # -- renewal -------------------------------------------------------------------------------------
    def _next(self, owner: str, held: Held, first: bool = False) -> int:  # caller holds _lock
        now = self.clock()
        until = math.ceil(now + held.length_s)
        self._sent[owner] = max(self._sent.get(owner, 0), until)
        self._schedule(owner, renew_at(now, held.length_s, self._random.random() if first else 0.0))
        return until

    def _schedule(self, owner: str, at: float) -> None:  # caller holds _lock
        self._renew_at[owner] = at
        heapq.heappush(self._queue, (at, owner))

    def due(self, within: float = 0.0) -> dict[Place, list[str]]:
        """Buckets with a lease due for renewal (within `within` seconds), and the owners holding one
        there. Each owner found due is looked at again RETRY_S later unless its renewal reschedules it
        (a renewal that never ran does not lose the lease its place in the queue)."""
        now = self.clock()
        with self._lock:
            due: set[Place] = set()
            while self._queue and self._queue[0][0] <= now + within:
                at, owner = heapq.heappop(self._queue)
                held = self._held.get(owner)
                if held is None or self._renew_at.get(owner) != at:
                    continue  # released, or rescheduled since
                due.add(place_of(held))
                self._schedule(owner, now + RETRY_S)
            return {place: sorted(self._owners_at[place]) for place in due}

    def renew(self, endpoint: s3.S3Endpoint, bucket: str) -> None:
        """Every lease held on one bucket, renewed in one read-modify-write."""
        before: dict[str, int] = {}

        def wanted() -> dict[str, list[dict[str, Any]]]:
            # Under the bucket's lock: an owner released meanwhile is left alone (its fence may follow).
            out = {}
            with self._lock:
                for owner in sorted(self._owners_at.get((endpoint, bucket), ())):
                    held = self._held[owner]
                    before[owner] = self._sent.get(owner, 0)
                    until = self._next(owner, held)
                    out[owner] = fencing.desired(bucket, held.prefix, owner, None, held.principal, until)
            return out

        with self._lock:
            if self._unreachable.get(endpoint, 0.0) > self.clock():
                for owner in self._owners_at.get((endpoint, bucket), set()):
                    self._schedule(owner, self.clock() + RETRY_S)
                return
        try:
            fencing.renew_many(
                endpoint, bucket, wanted, wire(endpoint), lambda *read: self._seen(endpoint, bucket, *read)
            )
            with self._lock:
                self._unreachable.pop(endpoint, None)
                failed = self._failing.pop((endpoint, bucket), None)
            if failed is not None:
                log.info("write leases on %s renewed again after %d failed attempt(s)", bucket, failed[0])
        except s3_wire.NotSent:
            # No request reached the store: what was recorded for this attempt was never sent.
            with self._lock:
                self._sent.update(before)
                self._unreachable[endpoint] = self.clock() + RETRY_S
            self._retry_soon(before)
            log.debug("write leases on %s not renewed: the store is unreachable", bucket)
        except (OSError, http.client.HTTPException, ClientError, ValueError) as e:
            # Sent, or maybe sent: the expiries stay recorded (a failover waits for them).
            missing = _code(e) == "NoSuchBucket"
            self._retry_soon(before, NO_BUCKET_RETRY_S if missing else RETRY_S)
            self._failed(endpoint, bucket, _code(e) or type(e).__name__, missing)
        except Exception:
            # Anything else (a bug, a store answering nonsense) must not end the renewals: with the
            # renewer gone every active copy would stop taking writes one lease later. Logged with its
            # traceback and retried like a failed request; the expiries stay recorded.
            self._retry_soon(before)
            if self._failed(endpoint, bucket, "unexpected error", False):
                log.exception("write leases on %s not renewed: unexpected error", bucket)

    def _seen(
        self, endpoint: s3.S3Endpoint, bucket: str, policy: str | None, last: str | None, known: bool
    ) -> None:
        """A policy read before a renewal: its holders are told when others' statements changed since
        this process last wrote or read it (the replica's run that probed the copy wrote it first), or,
        when that is not known (a failed write), since the previous renewal's read."""
        if known and policy == last:
            return  # the policy as this process wrote it (the usual case): nothing to compare
        now = fencing.foreign(policy)
        with self._lock:
            before = fencing.foreign(last) if known else self._foreign.get((endpoint, bucket))
            self._foreign[(endpoint, bucket)] = now
            changed = before is not None and before != now
            holders = self._holders(endpoint, bucket) if changed else set()
        for holder in holders:
            self.on_changed(holder)

    def _holders(self, endpoint: s3.S3Endpoint, bucket: str) -> set[Hashable]:  # caller holds _lock
        owners = self._owners_at.get((endpoint, bucket), set())
        return {self._held[o].holder for o in owners if o in self._held and self._held[o].holder is not None}

    def _failed(self, endpoint: s3.S3Endpoint, bucket: str, answer: str, missing: bool) -> bool:
        """Count a refused renewal and log it: at the first attempt, when the answer changes, and then at
        most every WARN_EVERY_S, with the attempts so far. True when it was logged."""
        now = time.monotonic()
        with self._lock:
            attempts, logged, before = self._failing.get((endpoint, bucket), (0, 0.0, ""))
            attempts += 1
            due = attempts == 1 or answer != before or now - logged >= WARN_EVERY_S
            self._failing[(endpoint, bucket)] = (attempts, now if due else logged, answer)
        if not missing:
            with self._lock:
                holders = self._holders(endpoint, bucket)
            for holder in holders:
                self.on_refused(holder)
        if not due:
            return False
        if missing:
            log.warning(
                "write leases on %s not renewed: the bucket does not exist (%d attempt(s); asked again every "
                "%.0fs)",
                bucket, attempts, NO_BUCKET_RETRY_S,
            )  # fmt: skip
        else:
            log.warning(
                "write leases on %s not renewed: %s (%d attempt(s) in a row); its active copy refuses "
                "writes once the lease ends",
                bucket, answer, attempts,
            )  # fmt: skip
        return True

    def _retry_soon(self, owners: dict[str, int], after: float = RETRY_S) -> None:
        with self._lock:
            for owner in owners:
                if owner in self._held:
                    self._schedule(owner, self.clock() + after)

    def _run(self) -> None:
        busy: set[s3.S3Endpoint] = set()  # stores whose renewals are running: not handed out meanwhile
        busy_lock = threading.Lock()
        warned = 0.0

        def renew_store(endpoint: s3.S3Endpoint, buckets: list[str]) -> None:
            try:
                started = self.clock()
                for bucket in buckets:
                    self.renew(endpoint, bucket)
                took = self.clock() - started
                if took > RENEW_TIMEOUT_S:
                    # The last of these leases were renewed with less than their margin left, perhaps
                    # after they ended: their copies refused writes for a while (never two writers, but
                    # an outage). Longer leases (failover.downFor) or fewer buckets per store are the
                    # remedy.
                    log.warning("renewing the write leases of %d buckets took %.1fs", len(buckets), took)
            finally:
                with busy_lock:
                    busy.discard(endpoint)

        with ThreadPoolExecutor(RENEWERS, thread_name_prefix="write-lease") as pool:
            while not self._stopped.wait(ROUND_S):
                try:
                    by_store: dict[s3.S3Endpoint, list[str]] = {}
                    for endpoint, bucket in self.due(ROUND_S):
                        by_store.setdefault(endpoint, []).append(bucket)
                    with busy_lock:
                        # A store still renewing its last batch keeps it: its owners come round again
                        # RETRY_S later (`due`).
                        started = {e: b for e, b in by_store.items() if e not in busy}
                        busy.update(started)
                    for endpoint, buckets in started.items():
                        pool.submit(renew_store, endpoint, buckets)
                except Exception:
                    log.exception("write-lease round failed; the next one starts in half a second")
                    continue
                if len(started) < len(by_store) and time.monotonic() - warned > 10:
                    warned = time.monotonic()
                    log.warning("write-lease renewals of %d stores are behind", len(by_store) - len(started))


def _code(error: BaseException) -> str:
    """The S3 error code of a refused request ("" for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "")
    return ""


def place_of(held: Held) -> Place:
    return (held.endpoint, held.bucket)


def renew_at(now: float, length: float, draw: float) -> float:
    """When a lease sent at `now` is renewed: when RENEW_MARGIN_S is left of it (half of it, for a
    lease shorter than twice the margin, which LEASE_MIN_S rules out), moved earlier by `draw` (0 to 1)
    of a spread of at most SPREAD_MAX_S and half of what is left before the margin. A grant draws at
    random, so that buckets granted together drift apart instead of renewing in one burst; a renewal
    draws 0 (its bucket keeps its place)."""
    before_margin = max(length - RENEW_MARGIN_S, length / 2)
    spread = min(SPREAD_MAX_S, before_margin / 2)
    return now + before_margin - spread * draw


_wires: dict[s3.S3Endpoint, s3_wire.WireClient] = {}
_wires_lock = threading.Lock()


def wire(endpoint: s3.S3Endpoint) -> s3_wire.WireClient:
    """The renewers' lean client of one store: one kept-alive connection per renewer thread."""
    with _wires_lock:
        found = _wires.get(endpoint)
        if found is None:
            found = _wires[endpoint] = s3_wire.WireClient(
                endpoint, connect_timeout=RENEW_TIMEOUT_S, read_timeout=RENEW_TIMEOUT_S
            )
        return found


LEASES = Leases()
