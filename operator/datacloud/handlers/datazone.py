"""DataZone: one async daemon per zone runs the reconciler whenever something relevant changes.

What zones own (namespaces and children labelled managed-by: datacloud) is held in label-filtered watch
caches (`reconcile.datazone_cache`); DataZones, DRReplicas and DataCentres in kopf indices. A reconcile
therefore reads nothing from the API server in the common case and writes only what drifted. A zone is
woken by its own spec changing, any change to a namespace or child labelled with it (a deleted or edited
child is restored at once), DRReplicas labelled with it or living in its namespaces, and zones it
references or competes with appearing or going. It also resyncs every couple of minutes (which picks up
DataCentre role changes) and retries every ten seconds while it waits on something.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from .. import GROUP, VERSION
from ..adapters.kube import Kube
from ..builders.datazone_profile import LABEL_ZONE, ReplicaTargets
from ..metrics import zones as metrics
from ..reconcile import datazone, datazone_cache
from .lifecycle import DIFF_BASE_IN_MEMORY, forget_diff_base

DIFF_BASE_IN_MEMORY.add("DataZone")  # the zone daemon does the work; kopf's only other handler is on.delete

_wake: dict[str, asyncio.Event] = {}
_replica_zone: dict[str, str] = {}  # namespace/name of a DRReplica → zone label last seen
_WORKERS = int(os.environ.get("DATACLOUD_ZONE_WORKERS", "16"))
_executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="zone")
_kube: Kube | None = None
_kube_lock = threading.Lock()
# The kinds zone workers write; resolving them once up front spares each worker its own API discovery.
_KINDS = (
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
)


def zone_kube() -> Kube:
    """One client for all zone workers (thread-safe connection pool, one discovery), created on first use."""
    global _kube
    with _kube_lock:
        if _kube is None:
            kube = Kube.default(pool_size=_WORKERS + 4)
            for api_version, kind in _KINDS:
                kube.dynamic.resources.get(api_version=api_version, kind=kind)
            _kube = kube
        return _kube


_caches: datazone_cache.ZoneCaches | None = None
_loop: asyncio.AbstractEventLoop | None = None
_pending: set[str] = set()  # zones the caches saw change, not yet handed to the event loop
_pending_lock = threading.Lock()


def _changed(zone: str | None) -> None:
    """Called on a cache thread when something labelled with `zone` changed. Changes are handed to the event
    loop in batches: one wake-up of the loop per burst instead of one per object event."""
    if not zone or _loop is None:
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


@kopf.on.startup()
async def start_zone_caches(**_: Any) -> None:
    global _caches, _loop
    _loop = asyncio.get_running_loop()
    await _loop.run_in_executor(_executor, zone_kube)
    caches = datazone_cache.ZoneCaches(
        Kube.default, _changed, datazone.project_namespace, datazone.project_child
    )
    await _loop.run_in_executor(_executor, caches.start)
    _caches = caches


@kopf.on.cleanup()
async def stop_zone_caches(**_: Any) -> None:
    if _caches is not None:
        _caches.stop()


def poke(zone: str | None) -> None:
    event = _wake.get(zone or "")
    if event is not None:
        event.set()


# --- kopf indices of the datacloud kinds a zone depends on --------------------------------------
@kopf.index(GROUP, VERSION, datazone.PLURAL)
async def dz_zones(name: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any) -> dict[Any, Any]:
    claim = datazone.Claim(name, str(meta.get("creationTimestamp") or ""))
    keys: dict[Any, Any] = {("zone", name): name}
    for ns in spec.get("namespaces") or []:
        keys[("ns", ns)] = claim
    for peer in (spec.get("network") or {}).get("allowFrom") or []:
        keys[("peer", peer)] = name
    return keys


@kopf.index(GROUP, VERSION, "drreplicas")
async def dz_replicas(
    body: kopf.Body, namespace: str | None, labels: kopf.Labels, **_: Any
) -> dict[Any, Any]:
    replica = datazone.project_replica(body)
    keys: dict[Any, Any] = {("ns", namespace): replica}
    if labels.get(LABEL_ZONE):
        keys[("zone", labels[LABEL_ZONE])] = replica
    return keys


@kopf.index(GROUP, VERSION, "datacentres")
async def dz_centres(name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    return {name: str(spec.get("role", ""))}


# --- Wake-ups --------------------------------------------------------------------------------------
_reconciled: dict[str, Any] = {}  # zone → the generation its daemon last reconciled


def _spec_changed(name: str, body: kopf.Body) -> bool:
    """A generation the zone's daemon has not reconciled yet (before its first reconcile there is nothing to
    tell it: that reconcile reads the newest spec anyway)."""
    return name in _reconciled and body.get("metadata", {}).get("generation") != _reconciled[name]


def _zone_event_matters(event: kopf.RawEvent, name: str, body: kopf.Body, **_: Any) -> bool:
    """Zones appearing or going (others may wait on them) and spec changes. The zone's own status writes and
    kopf's finalizer patch need no handler: filtering them out here spares kopf most of a handler call on
    every such event."""
    return event.get("type") in ("ADDED", "DELETED", None) or _spec_changed(name, body)


@kopf.on.event(GROUP, VERSION, datazone.PLURAL, when=_zone_event_matters)
async def zone_changed(event: kopf.RawEvent, name: str, body: kopf.Body, **kwargs: Any) -> None:
    dz_zones: kopf.Index[Any, Any] = kwargs["dz_zones"]
    if _spec_changed(name, body):
        poke(name)
    if event.get("type") == "DELETED":
        forget_diff_base(str(body.get("metadata", {}).get("uid")))
    if event.get("type") in ("ADDED", "DELETED", None):
        for zone in dz_zones.get(("peer", name), []):
            poke(zone)
        for ns in (body.get("spec") or {}).get("namespaces") or []:
            for claim in dz_zones.get(("ns", ns), []):
                poke(claim.zone)


@kopf.on.event(GROUP, VERSION, "drreplicas")
async def replica_changed(
    event: kopf.RawEvent, name: str, namespace: str | None, labels: kopf.Labels, **kwargs: Any
) -> None:
    key = f"{namespace}/{name}"
    poke(_replica_zone.get(key))
    if event.get("type") == "DELETED":
        _replica_zone.pop(key, None)
    elif labels.get(LABEL_ZONE):
        _replica_zone[key] = labels[LABEL_ZONE]
    poke(labels.get(LABEL_ZONE))
    info = _caches.namespace(namespace or "") if _caches else None
    if info is not None:
        poke(info.labels.get(LABEL_ZONE))


# --- The zone daemon -------------------------------------------------------------------------------
def _observe(
    name: str,
    body: kopf.Body,
    status: Mapping[str, Any],
    ix: dict[str, kopf.Index[Any, Any]],
    caches: datazone_cache.ZoneCaches,
) -> datazone.Observed:
    """A snapshot of what the caches know about this zone, handed to a worker thread."""
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


@dataclass(frozen=True)
class _Written:
    """The status a zone's daemon last wrote, between the zone's resourceVersion before and after."""

    before: str
    after: str
    status: dict[str, Any]


_written: dict[str, _Written] = {}


def _older(version: str, than: str) -> bool:
    """Whether resourceVersion `version` precedes `than`. Versions of one resource compare as integers
    (KEP-5504, "comparable resource versions"); anything else is taken as not older."""
    if not (version.isdigit() and than.isdigit()) or version.startswith("0") or than.startswith("0"):
        return False
    return (len(version), version) < (len(than), than)


def _current_status(name: str, body: kopf.Body) -> dict[str, Any]:
    """The zone's status as it stands. kopf's body can still be one from before the daemon's last status
    patch (the patch's watch event is on its way, or kopf's own finalizer patch landed in between);
    reconciling from that older status would write the same status again and repeat its Events."""
    written = _written.get(name)
    if written is not None:
        version = str(body.get("metadata", {}).get("resourceVersion") or "")
        if version == written.before or _older(version, written.after):
            return written.status
        del _written[name]  # kopf has caught up: from here on its body is the truth
    return dict(body.get("status") or {})


def _snapshot(body: kopf.Body, status: Mapping[str, Any]) -> dict[str, Any]:
    """Plain copies of what the reconciler reads, detached from kopf's live body for the worker thread (only
    the metadata it uses: copying managedFields on every reconcile cost more than the rest)."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("name", "generation", "creationTimestamp", "resourceVersion")},
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": copy.deepcopy(dict(status)),
    }


def _reconcile_and_write(
    name: str, body: dict[str, Any], obs: datazone.Observed
) -> tuple[datazone.ZoneReport, _Written | None]:
    kube = zone_kube()
    report = datazone.reconcile(kube, body, obs)
    old = body.get("status") or {}
    if not any(old.get(k) != v for k, v in report.status.items()):
        return report, None
    out = kube.patch_status(datazone.PLURAL, name, report.status)
    before = str(body["metadata"].get("resourceVersion") or "")
    return report, _Written(before, str(out["metadata"]["resourceVersion"]), dict(out.get("status") or {}))


async def _until_cached(
    created: list[tuple[str, str, str]],
    caches: datazone_cache.ZoneCaches,
    wake: asyncio.Event,
    stopped: kopf.DaemonStopped,
) -> None:
    """Wait (briefly) until the caches show what the last reconcile created, so the next reconcile does
    not try to create it again from a cache that is behind. The caches poke `wake` as the objects arrive;
    the pokes are handed on (`wake` is left set) so the next reconcile still follows them."""
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


async def _poke_when_stopped(stopped: kopf.DaemonStopped, wake: asyncio.Event) -> None:
    """One waiter for the daemon's life (kopf's stop flag costs a task per wait)."""
    await stopped.wait()
    wake.set()


@kopf.daemon(GROUP, VERSION, datazone.PLURAL, cancellation_timeout=30.0)
async def zone_daemon(
    name: str, body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **kwargs: Any
) -> None:
    wake = _wake.setdefault(name, asyncio.Event())
    loop = asyncio.get_running_loop()
    ix = {k: v for k, v in kwargs.items() if k.startswith("dz_")}
    failures = 0
    last_measured: tuple[str, dict[str, Any]] | None = None
    stop_watch = asyncio.create_task(_poke_when_stopped(stopped, wake))
    try:
        while not stopped and not body.get("metadata", {}).get("deletionTimestamp"):
            wake.clear()
            if _caches is None:  # the caches start before any daemon; this only guards a failed start
                await _sleep(wake, 5.0)
                continue
            _reconciled[name] = body.get("metadata", {}).get("generation")
            status = _current_status(name, body)
            obs = _observe(name, body, status, ix, _caches)
            plain = _snapshot(body, status)
            try:
                done = await loop.run_in_executor(_executor, _reconcile_and_write, name, plain, obs)
            except ApiException as e:
                failures += 1
                logger.warning("zone %s: API error %s %s; retrying", name, e.status, e.reason)
                await _sleep(wake, min(60.0, 2.0**failures))
                continue
            failures = 0
            report, written = done
            if written is not None:
                _written[name] = written
            for kind, reason, message in report.events:
                kopf.event(body, type=kind, reason=reason, message=message)
            measured = (str(body.spec.get("classification", "")), report.status)
            if measured != last_measured:  # the metrics follow from these alone
                metrics.observe_zone(name, *measured)
                last_measured = measured
            await _until_cached(report.created, _caches, wake, stopped)
            await _sleep(wake, report.requeue_after)
            await asyncio.sleep(0.2)  # let a burst of child events settle into one reconcile
    finally:
        stop_watch.cancel()
        if _wake.get(name) is wake:
            del _wake[name]
            _written.pop(name, None)
            _reconciled.pop(name, None)


@kopf.on.delete(GROUP, VERSION, datazone.PLURAL)
def zone_deleted(name: str, status: kopf.Status, logger: kopf.Logger, **_: Any) -> None:
    remaining = datazone.delete_zone(zone_kube(), name, list(status.get("namespaces") or []))
    if remaining:
        raise kopf.TemporaryError(f"waiting for namespace(s) {', '.join(remaining)} to go", delay=3)
    metrics.forget_zone(name)
    logger.info("zone %s deleted with its namespaces", name)
