"""The DRReplica roster: every replica's `ReplicaRuntime`, run on one fixed pool of workers.

Centre health changes wake every replica at once (an automatic failover must not wait for a replica's
next run); DataCentres and their Secrets are read through one cache shared by all replicas. Whether a
replica overlaps an older one is asked again only when the replicas changed (one was created, deleted or
given a new spec) or every `OVERLAP_RECHECK_S`: asking lists every replica, and a thousand replicas
asking on every run kept the workers queued on that list (idle, and during a mass failover).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube
from ..api.drreplica import DRReplicaSpec
from ..api.overlap import store_name
from ..failover.lease import LEASES
from ..failover.topology import copies
from ..metrics import dr as dr_metrics
from . import dr_events, dr_flows, dr_overlap
from .centres import HEALTH_CHANGES, CentreCache
from .drreplica import BUSY_S, FENCE_CHECK_S, Emit, ReplicaRuntime
from .runtime import Roster

log = logging.getLogger(__name__)
API_ERROR_RETRY_S = 5.0
FAILURE_RETRY_S = 10.0
# The fence checks between full runs (one policy read per fenced copy) of all replicas together stay
# within this many replicas a second: each replica every FENCE_CHECK_S while they are few, less often
# beyond (300 replicas checking every 20 s kept half a core busy; 1,000 would a third of one even with
# shared clients).
FENCE_CHECKS_PER_S = 2.5
OVERLAP_RECHECK_S = 300.0  # an overlap is looked for again at least this often, changes or not
# ... sooner by up to this share of it, at random: replicas created together do not all ask again in
# the same second (a thousand did, five minutes after they were applied, in the middle of a failover).
OVERLAP_RECHECK_SPREAD = 0.5
# A change is trusted to be in the shared list of replicas once the list could have been taken again.
OVERLAP_SETTLE_S = dr_overlap.LIST_EVERY_S + 1.0

Key = tuple[str, str]
_roster: Roster[Key, ReplicaRuntime] | None = None
_cache: CentreCache | None = None
_lock = threading.Lock()


def run(runtime: ReplicaRuntime, body: dict[str, Any]) -> float:
    try:
        return runtime.tick(body)
    except ApiException as e:
        log.warning(
            "API error while reconciling %s/%s: %s %s", runtime.namespace, runtime.name, e.status, e.reason
        )
        return API_ERROR_RETRY_S
    except Exception:
        # One replica's unexpected failure must not stop the others or crash-loop the operator.
        log.exception("reconcile of %s/%s failed; retrying", runtime.namespace, runtime.name)
        return FAILURE_RETRY_S


def drop(runtime: ReplicaRuntime, deleted: bool) -> None:
    runtime.close(deleted=deleted)


def roster() -> Roster[Key, ReplicaRuntime]:
    """The process's DRReplica roster, made on first use."""
    global _roster
    with _lock:
        if _roster is None:
            _roster = Roster("replica", settings.current().replica_workers, run, drop)
            HEALTH_CHANGES.subscribe(_roster.wake_all)
            dr_metrics.watch_leases(LEASES.failing)
            LEASES.on_refused = _wake_holder
            LEASES.on_changed = _reprobe_holder
        return _roster


def _wake_holder(holder: object) -> None:
    """A replica whose write lease the store refused: run it now (its centre's credentials may have
    been rotated; the run renews with them)."""
    if isinstance(holder, tuple) and len(holder) == 2 and _roster is not None:
        _roster.wake_within((str(holder[0]), str(holder[1])), 0.0)  # not `wake`: the spec did not change


def _reprobe_holder(holder: object) -> None:
    """Someone changed the policy of a replica's active copy: run it now, as a full run (fences written
    and every copy probed again), so status says at once whether the copy still takes writes."""
    if isinstance(holder, tuple) and len(holder) == 2 and _roster is not None:
        key = (str(holder[0]), str(holder[1]))
        runtime = _roster.state(key)
        if runtime is not None:
            runtime.resync_at = 0.0  # a full run is due (`ReplicaRuntime._full_run_due`)
        _roster.wake_within(key, 0.0)


def centre_cache(kube: Kube) -> CentreCache:
    global _cache
    with _lock:
        if _cache is None:
            _cache = CentreCache(kube)
            HEALTH_CHANGES.subscribe(_cache.clear, first=True)
        return _cache


class OverlapCheck:
    """`dr_overlap.conflict` for one replica, remembered while nothing it depends on changed: the
    replica's generation and the roster's version (no replica created, deleted or respecified since a
    check taken after the list could hold that change)."""

    def __init__(self, population: Roster[Key, Any], clock: Any = time.monotonic) -> None:
        self.population = population
        self.clock = clock
        self._for: tuple[Any, int] | None = None
        self._checked_at = 0.0
        self._found: dr_overlap.Conflict | None = None
        self._recheck_s = OVERLAP_RECHECK_S

    def fresh(self, generation: Any) -> bool:
        now = self.clock()
        return (
            self._for == (generation, self.population.version)
            and self._checked_at - self.population.changed_at >= OVERLAP_SETTLE_S
            and now - self._checked_at < self._recheck_s
        )

    def __call__(self, kube: Kube, body: dict[str, Any], spec: DRReplicaSpec) -> dr_overlap.Conflict | None:
        generation = body["metadata"].get("generation")
        if self.fresh(generation):
            return self._found
        version, now = self.population.version, self.clock()
        self._found = overlap_conflict(kube, body, spec)
        self._for, self._checked_at = (generation, version), now
        self._recheck_s = OVERLAP_RECHECK_S * (1 - OVERLAP_RECHECK_SPREAD * random.random())
        return self._found


def overlap_conflict(kube: Kube, body: dict[str, Any], spec: DRReplicaSpec) -> dr_overlap.Conflict | None:
    """`dr_overlap.conflict`, comparing only with the replicas that share a bucket with this one, and
    comparing copies by the store their centres name."""
    store_of = centre_stores(kube)
    found = dr_overlap.within(spec, store_of)
    if found is not None:
        return found
    meta = body["metadata"]
    me = (meta.get("namespace"), str(meta["name"]))
    mine = frozenset((c.centre, c.bucket) for c in copies(spec))
    return dr_overlap.between(body, spec, dr_overlap.REPLICAS.sharing(kube, me, mine), store_of)


def centre_stores(kube: Kube) -> dr_overlap.StoreOf:
    """Centre name → its object store's endpoint (normalised), read through the centre cache; a
    centre that cannot be read counts as a store of its own (what its name alone says)."""
    cache = centre_cache(kube)

    def store_of(centre: str) -> str:
        try:
            endpoint = cache.get("datacentres", centre)["spec"]["objectStore"]["endpoint"]
        except Exception:  # missing, unreadable or malformed: the comparison by name still holds
            return dr_overlap.by_name(centre)
        return store_name(str(endpoint))

    return store_of


def fence_every(replicas: int) -> float:
    """Seconds between one replica's fence checks when the roster holds `replicas`."""
    return max(FENCE_CHECK_S, replicas / FENCE_CHECKS_PER_S)


def make(kube: Kube, key: Key, emit: Emit) -> ReplicaRuntime:
    namespace, name = key
    runtime = ReplicaRuntime(
        kube,
        namespace,
        name,
        emit,
        dr_events.receiver(),
        settings.current().image,
        centre_reader=centre_cache(kube),
        follower_hub=dr_flows.hub(),
        overlaps=OverlapCheck(roster()),
        fence_every=lambda: fence_every(roster().count()),
    )
    # An idle replica runs seldom (IDLE_S); a change arriving at one of its followers brings its next
    # run to within BUSY_S, so lag and RPO are reported as soon as there is any.
    runtime.followers.on_busy = lambda: roster().wake_within(key, BUSY_S)
    return runtime
