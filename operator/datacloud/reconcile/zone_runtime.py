"""The DataZone runtime: what a zone's async kopf daemon runs, and what wakes it.

What zones own (namespaces and children labelled managed-by: datacloud) is held in label-filtered watch
caches (`datazone_cache`); DataZones, DRReplicas and DataCentres in kopf indices, handed in as `ix`. A
reconcile therefore reads nothing from the API server in the common case and writes only what drifted;
it runs on a fixed pool of DATACLOUD_ZONE_WORKERS threads (`pool()`, sized when the runtime starts). A
zone is woken (`poke`) by its own spec changing, any change to a namespace or child labelled with it,
DRReplicas labelled with it or living in its namespaces, and zones it references or competes with
appearing or going. It also resyncs every couple of minutes and
retries every ten seconds while it waits on something.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube
from ..api.datazone import DataZoneStatus
from ..builders.datazone_profile import LABEL_ZONE, ReplicaTargets
from ..builders.written import InvalidStatus, WrittenStatus
from ..metrics import zones as metrics
from . import datazone, datazone_cache
from .status_refusal import refused

log = logging.getLogger(__name__)
# The kinds zone workers write; resolving them once up front spares each worker its own API discovery.
_KINDS = (
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
)
Emit = Callable[[str, str, str], None]


class Stopped(Protocol):
    """kopf's daemon stop flag, as far as the zone loop uses it."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Any: ...


_kube: Kube | None = None
_kube_lock = threading.Lock()
_pool: tuple[ThreadPoolExecutor, int] | None = None  # the zone threads and their number


def pool() -> ThreadPoolExecutor:
    """The zone threads, sized from the settings when first needed (the runtime's start), not at import."""
    return _sized_pool()[0]


def _sized_pool() -> tuple[ThreadPoolExecutor, int]:
    global _pool
    with _kube_lock:
        if _pool is None:
            workers = settings.current().zone_workers
            _pool = (ThreadPoolExecutor(workers, thread_name_prefix="zone"), workers)
        return _pool


def zone_kube() -> Kube:
    """One client for all zone workers (thread-safe connection pool, one discovery), created on first use."""
    global _kube
    workers = _sized_pool()[1]
    with _kube_lock:
        if _kube is None:
            kube = Kube.default(pool_size=workers + 4)
            for api_version, kind in _KINDS:
                kube.dynamic.resources.get(api_version=api_version, kind=kind)
            _kube = kube
        return _kube


# --- Wake-ups ------------------------------------------------------------------------------------
_wake: dict[str, asyncio.Event] = {}
caches: datazone_cache.ZoneCaches | None = None
_loop: asyncio.AbstractEventLoop | None = None
_pending: set[str] = set()  # zones the caches saw change, not yet handed to the event loop
_pending_lock = threading.Lock()
# While a zone reconciles, what the caches see change for it is held (not a wake-up): most of it is the
# echo of the reconcile's own writes, which the daemon can tell only once the writes have answered.
_busy: set[str] = set()
_held: dict[str, list[datazone_cache.Change | None]] = {}
reconciled: dict[str, Any] = {}  # zone → the generation its daemon last reconciled


def poke(zone: str | None) -> None:
    event = _wake.get(zone or "")
    if event is not None:
        event.set()


def _changed(zone: str | None, change: datazone_cache.Change | None) -> None:
    """Called on a cache thread when something labelled with `zone` changed. Changes are handed to the event
    loop in batches: one wake-up of the loop per burst instead of one per object event."""
    if not zone or _loop is None:
        return
    with _pending_lock:
        if zone in _busy:
            _held.setdefault(zone, []).append(change)
            return
    if change is not None and usage_reported(zone, change):
        return
    with _pending_lock:
        first = not _pending
        _pending.add(zone)
    if first:
        _loop.call_soon_threadsafe(_poke_pending)


def _poke_pending() -> None:
    with _pending_lock:
        zones = list(_pending)
        _pending.clear()
    for zone in zones:
        poke(zone)


async def start() -> None:
    """Start the watch caches (on kopf's event loop, before any zone daemon runs)."""
    global caches, _loop
    _loop = asyncio.get_running_loop()
    await _loop.run_in_executor(pool(), zone_kube)
    started = datazone_cache.ZoneCaches(
        Kube.default,
        _changed,
        datazone.project_namespace,
        datazone.project_child,
    )
    await _loop.run_in_executor(pool(), started.start)
    caches = started


def usage_reported(zone: str, change: datazone_cache.Change) -> bool:
    """Whether a change is only a quota's usage (the quota controller counting) moving to figures the
    zone's status already reports for that namespace: nothing the zone does or says can change. A thousand
    new zones each ran one more reconcile, finding nothing to do, when the quota controller first counted
    their empty namespaces. Anything else, or any doubt, is a change."""
    last = written.get(zone)
    if change.usage is None or last is None:
        return False
    try:
        quota = last.status.get("quota") or {}
        hard = set(quota.get("hard") or {})
        entries = [e for e in quota.get("namespaces") or [] if e.get("namespace") == change.namespace]
        if not entries or not hard:
            return False
        reported = entries[0].get("used") or {}
        return all(reported.get(r) == q for r, q in change.usage.items() if r in hard)
    except (AttributeError, TypeError, RuntimeError):  # RuntimeError: a dict changed while read
        return False


def explained(
    zone: str, held: list[datazone_cache.Change | None], own: Mapping[tuple[str, str, str], str]
) -> bool:
    """Whether everything held while the zone reconciled is known to it: the echo of one of its own writes
    (`own`: (kind, namespace, name) → the resourceVersion the write produced) or usage it already
    reports. A relist's finding (None) or anything else needs another reconcile."""
    return all(
        c is not None and (own.get((c.kind, c.namespace, c.name)) == c.version or usage_reported(zone, c))
        for c in held
    )


def stop() -> None:
    if caches is not None:
        caches.stop()


# --- What a reconcile sees ---------------------------------------------------------------------------
def observe(
    name: str, body: Mapping[str, Any], status: Mapping[str, Any], ix: Mapping[str, Any]
) -> datazone.Observed:
    """A snapshot of what the caches and indices know about this zone, handed to a worker thread."""
    assert caches is not None
    spec = body.get("spec") or {}
    obs = datazone.Observed()
    for ns in set(spec.get("namespaces") or []) | set(status.get("namespaces") or []):
        info = caches.namespace(ns)
        if info is not None:
            obs.namespaces[ns] = info
    for info in caches.zone_namespaces(name):
        obs.namespaces[info.name] = info
    for ns in obs.namespaces:
        obs.children[ns] = caches.children_of(ns)
    for ns in spec.get("namespaces") or []:
        obs.claims[ns] = list(ix["dz_zones"].get(("ns", ns), []))
    for peer in (spec.get("network") or {}).get("allowFrom") or []:
        if ("zone", peer) in ix["dz_zones"]:
            obs.zones.add(peer)
    replicas: dict[str, ReplicaTargets] = {}
    for replica in ix["dz_replicas"].get(("zone", name), []):
        replicas[replica.name] = replica
    for ns, info in obs.namespaces.items():
        if info.labels.get(LABEL_ZONE) == name:
            for replica in ix["dz_replicas"].get(("ns", ns), []):
                replicas[replica.name] = replica
    obs.replicas = sorted(replicas.values(), key=lambda r: r.name)
    for replica in obs.replicas:
        for _, centre in replica.targets:
            for role in ix["dz_centres"].get(centre, []):
                obs.centre_roles[centre] = role
    return obs


# What each zone's daemon last wrote (`builders.written`): kopf's body can still be one from before the
# daemon's last status patch (the patch's watch event is on its way, or kopf's own finalizer patch landed in
# between); reconciling from that older status would write the same status again and repeat its Events.
written: dict[str, WrittenStatus] = {}


def snapshot(body: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """Plain copies of what the reconciler reads, detached from kopf's live body for the worker thread (only
    the metadata it uses: copying managedFields on every reconcile cost more than the rest)."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("name", "generation", "creationTimestamp", "resourceVersion")},
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": copy.deepcopy(dict(status)),
    }


def reconcile_and_write(
    name: str,
    body: dict[str, Any],
    obs: datazone.Observed,
    last: WrittenStatus,
    own: dict[tuple[str, str, str], str] | None = None,
) -> tuple[datazone.ZoneReport, tuple[dict[str, Any], str] | None]:
    """Reconcile, and write the status if it changed: (the report, (the patch written, the resourceVersion
    it produced) or None). `last` is only read here (the worker thread); the daemon records the write.
    Each object written goes into `own` and to the caches (its watch event is then known as an echo)."""

    written_now = {} if own is None else own

    def wrote(namespace: str, kind: str, obj: str, version: str) -> None:
        written_now[(kind, namespace, obj)] = version
        if caches is not None:
            caches.expect(namespace, kind, obj, version)

    kube = zone_kube()
    report = datazone.reconcile(kube, body, obs, wrote)
    old = body.get("status") or {}
    if not any(old.get(k) != v for k, v in report.status.items()):
        return report, None
    patch = last.checked(report.status)
    out = kube.patch_status(datazone.PLURAL, name, patch)
    return report, (patch, str(out["metadata"]["resourceVersion"]))


# --- The loop a zone's daemon runs -----------------------------------------------------------------------
async def _until_cached(created: list[tuple[str, str, str]], wake: asyncio.Event, stopped: Stopped) -> None:
    """Wait (briefly) until the caches show what the last reconcile created, so the next reconcile does
    not try to create it again from a cache that is behind. The caches poke `wake` as the objects arrive;
    the pokes are handed on (`wake` is left set) so the next reconcile still follows them."""
    assert caches is not None
    deadline = time.monotonic() + 5.0
    poked = False
    while not stopped:
        created = [c for c in created if not caches.has(*c)]
        remaining = deadline - time.monotonic()
        if not created or remaining <= 0:
            break
        poked = poked or wake.is_set()
        wake.clear()
        await _sleep(wake, min(remaining, 0.5))
    if poked:
        wake.set()


async def _sleep(wake: asyncio.Event, timeout: float) -> None:
    """Until poked (the daemon's stop also pokes) or `timeout` seconds pass."""
    try:
        async with asyncio.timeout(timeout):
            await wake.wait()
    except TimeoutError:
        pass


async def _poke_when_stopped(stopped: Stopped, wake: asyncio.Event) -> None:
    """One waiter for the daemon's life (kopf's stop flag costs a task per wait)."""
    await stopped.wait()
    wake.set()


async def run(
    name: str, body: Mapping[str, Any], stopped: Stopped, ix: Mapping[str, Any], emit: Emit
) -> None:
    """Reconcile the zone whenever poked, until its daemon is stopped or the zone is being deleted."""
    wake = _wake.setdefault(name, asyncio.Event())
    loop = asyncio.get_running_loop()
    failures = 0
    last_measured: tuple[str, dict[str, Any]] | None = None
    stop_watch = asyncio.create_task(_poke_when_stopped(stopped, wake))
    last = written.setdefault(name, WrittenStatus.start(body, DataZoneStatus))
    try:
        while not stopped and not body.get("metadata", {}).get("deletionTimestamp"):
            wake.clear()
            if caches is None:  # the caches start before any daemon; this only guards a failed start
                await _sleep(wake, 5.0)
                continue
            reconciled[name] = body.get("metadata", {}).get("generation")
            status = last.current(body)
            obs = observe(name, body, status, ix)
            plain = snapshot(body, status)
            own: dict[tuple[str, str, str], str] = {}
            with _pending_lock:
                _busy.add(name)
            try:
                report, wrote = await loop.run_in_executor(
                    pool(), reconcile_and_write, name, plain, obs, last, own
                )
            except (ApiException, InvalidStatus) as e:
                if _release(name):
                    wake.set()
                failures += 1
                if isinstance(e, InvalidStatus):
                    refused(log, emit, f"zone {name}", e)
                else:
                    log.warning("zone %s: API error %s %s; retrying", name, e.status, e.reason)
                    if failures == 1:  # once per streak: the object says why it makes no progress
                        emit("Warning", "ReconcileFailed", datazone.api_error(e))
                await _sleep(wake, min(60.0, 2.0**failures))
                continue
            failures = 0
            if wrote is not None:
                last.wrote(*wrote)
            if not explained(name, _release(name), own):
                wake.set()  # something other than this reconcile's own writes changed meanwhile
            for kind, reason, message in report.events:
                emit(kind, reason, message)
            measured = (str((body.get("spec") or {}).get("classification", "")), report.status)
            if measured != last_measured:  # the metrics follow from these alone
                metrics.observe_zone(name, *measured)
                last_measured = measured
            await _until_cached(report.created, wake, stopped)
            await _sleep(wake, report.requeue_after)
            await asyncio.sleep(0.2)  # let a burst of child events settle into one reconcile
    finally:
        stop_watch.cancel()
        _release(name)
        if _wake.get(name) is wake:
            del _wake[name]
            written.pop(name, None)
            reconciled.pop(name, None)


def _release(name: str) -> list[datazone_cache.Change | None]:
    """The zone's reconcile is over: changes reach it as wake-ups again; what was held meanwhile."""
    with _pending_lock:
        _busy.discard(name)
        return _held.pop(name, [])


async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """Blocking API calls of a zone handler, on the zone pool (never on kopf's own executor)."""
    return await asyncio.get_running_loop().run_in_executor(pool(), fn, *args)


def delete(name: str, namespaces: list[str]) -> list[str]:
    """Delete the zone's namespaces; the ones still going (empty when all are gone)."""
    remaining = datazone.delete_zone(zone_kube(), name, namespaces)
    if not remaining:
        metrics.forget_zone(name)
    return remaining
