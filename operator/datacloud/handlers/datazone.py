"""DataZone: an async daemon per zone runs `reconcile.zone_runtime`; indices and events wake it."""

from __future__ import annotations

from typing import Any

import kopf

from .. import GROUP, VERSION
from ..builders.datazone_profile import LABEL_ZONE
from ..reconcile import datazone, zone_runtime
from .lifecycle import DIFF_BASE_IN_MEMORY, forget_diff_base
from .roster import emitter

DIFF_BASE_IN_MEMORY.add("DataZone")  # the zone daemon does the work; kopf's only other handler is on.delete

_replica_zone: dict[str, str] = {}  # namespace/name of a DRReplica → zone label last seen


@kopf.on.startup()
async def start_zone_caches(**_: Any) -> None:
    await zone_runtime.start()


@kopf.on.cleanup()
async def stop_zone_caches(**_: Any) -> None:
    zone_runtime.stop()


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
def _spec_changed(name: str, body: kopf.Body) -> bool:
    """A generation the zone's daemon has not reconciled yet (before its first reconcile there is nothing to
    tell it: that reconcile reads the newest spec anyway)."""
    seen = zone_runtime.reconciled
    return name in seen and body.get("metadata", {}).get("generation") != seen[name]


def _zone_event_matters(event: kopf.RawEvent, name: str, body: kopf.Body, **kwargs: Any) -> bool:
    """Spec changes, zones going, and zones appearing that others wait on (a zone naming it in allowFrom,
    another zone listing one of its namespaces). The zone's own status writes, kopf's finalizer patch and a
    zone nobody waits on need no handler: filtering them out here spares kopf a handler call (and its log
    line) on every such event."""
    kind = event.get("type")
    if kind == "DELETED" or _spec_changed(name, body):
        return True
    if kind not in ("ADDED", None):
        return False
    dz_zones: kopf.Index[Any, Any] = kwargs["dz_zones"]
    if ("peer", name) in dz_zones:
        return True
    namespaces = (body.get("spec") or {}).get("namespaces") or []
    return any(claim.zone != name for ns in namespaces for claim in dz_zones.get(("ns", ns), []))


@kopf.on.event(GROUP, VERSION, datazone.PLURAL, when=_zone_event_matters)
async def zone_changed(event: kopf.RawEvent, name: str, body: kopf.Body, **kwargs: Any) -> None:
    dz_zones: kopf.Index[Any, Any] = kwargs["dz_zones"]
    if _spec_changed(name, body):
        zone_runtime.poke(name)
    if event.get("type") == "DELETED":
        forget_diff_base(str(body.get("metadata", {}).get("uid")))
    if event.get("type") in ("ADDED", "DELETED", None):
        for zone in dz_zones.get(("peer", name), []):
            zone_runtime.poke(zone)
        for ns in (body.get("spec") or {}).get("namespaces") or []:
            for claim in dz_zones.get(("ns", ns), []):
                zone_runtime.poke(claim.zone)


@kopf.on.event(GROUP, VERSION, "drreplicas")
async def replica_changed(
    event: kopf.RawEvent, name: str, namespace: str | None, labels: kopf.Labels, **kwargs: Any
) -> None:
    key = f"{namespace}/{name}"
    zone_runtime.poke(_replica_zone.get(key))
    if event.get("type") == "DELETED":
        _replica_zone.pop(key, None)
    elif labels.get(LABEL_ZONE):
        _replica_zone[key] = labels[LABEL_ZONE]
    zone_runtime.poke(labels.get(LABEL_ZONE))
    caches = zone_runtime.caches
    info = caches.namespace(namespace or "") if caches else None
    if info is not None:
        zone_runtime.poke(info.labels.get(LABEL_ZONE))


# --- The zone daemon and deletion ------------------------------------------------------------------------
@kopf.daemon(GROUP, VERSION, datazone.PLURAL, cancellation_timeout=30.0)
async def zone_daemon(
    name: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    indices = {k: v for k, v in kwargs.items() if k.startswith("dz_")}
    await zone_runtime.run(name, body, stopped, indices, emitter(body, logger))


@kopf.on.delete(GROUP, VERSION, datazone.PLURAL)
async def zone_deleted(name: str, status: kopf.Status, logger: kopf.Logger, **_: Any) -> None:
    namespaces = list(status.get("namespaces") or [])
    remaining = await zone_runtime.run_blocking(zone_runtime.delete, name, namespaces)
    if remaining:
        raise kopf.TemporaryError(f"waiting for namespace(s) {', '.join(remaining)} to go", delay=3)
    logger.info("zone %s deleted with its namespaces", name)
