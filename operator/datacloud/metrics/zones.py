"""DataZone metrics, set from each zone's status after every reconcile."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from prometheus_client import Gauge

from ..api.common import parse_quantity
from .registry import REGISTRY

CONDITIONS = ("Ready", "NamespacesSynced", "Isolated", "QuotaEnforced", "AccessSynced", "DRProtected")

zone_ready = Gauge(
    "datacloud_zone_ready",
    "1 when every child of the zone is in line (condition Ready), else 0.",
    ["zone", "classification"],
    registry=REGISTRY,
)
zone_condition = Gauge(
    "datacloud_zone_condition",
    "1 when the zone's condition is True, else 0.",
    ["zone", "condition"],
    registry=REGISTRY,
)
zone_dr_protected = Gauge(
    "datacloud_zone_dr_protected",
    "1 when the zone's DRReplicas meet its classification (condition DRProtected), else 0.",
    ["zone", "classification"],
    registry=REGISTRY,
)
zone_namespaces = Gauge("datacloud_zone_namespaces", "Namespaces the zone owns.", ["zone"], registry=REGISTRY)
zone_quota_hard = Gauge(
    "datacloud_zone_quota_hard",
    "Zone-wide hard limit per resource (cores, bytes or counts).",
    ["zone", "resource"],
    registry=REGISTRY,
)
zone_quota_used = Gauge(
    "datacloud_zone_quota_used",
    "Zone-wide usage per resource, summed over the zone's ResourceQuotas (cores, bytes or counts).",
    ["zone", "resource"],
    registry=REGISTRY,
)
_seen: dict[str, tuple[str, set[str]]] = {}  # zone → (classification, resources with series)


def observe_zone(name: str, classification: str, status: Mapping[str, Any]) -> None:
    previous = _seen.get(name)
    if previous and previous[0] != classification:
        _remove(zone_ready, name, previous[0])
        _remove(zone_dr_protected, name, previous[0])
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    zone_ready.labels(name, classification).set(1 if conditions.get("Ready") == "True" else 0)
    zone_dr_protected.labels(name, classification).set(1 if conditions.get("DRProtected") == "True" else 0)
    for cond in CONDITIONS:
        zone_condition.labels(name, cond).set(1 if conditions.get(cond) == "True" else 0)
    zone_namespaces.labels(name).set(len(status.get("namespaces") or []))
    quota = status.get("quota") or {}
    resources: set[str] = set()
    for gauge, values in (
        (zone_quota_hard, quota.get("hard") or {}),
        (zone_quota_used, quota.get("used") or {}),
    ):
        for resource, quantity in values.items():
            with contextlib.suppress(ValueError):
                gauge.labels(name, resource).set(parse_quantity(str(quantity)))
                resources.add(resource)
    for gone in (previous[1] if previous else set()) - resources:
        _remove(zone_quota_hard, name, gone)
        _remove(zone_quota_used, name, gone)
    _seen[name] = (classification, resources)


def forget_zone(name: str) -> None:
    classification, resources = _seen.pop(name, ("", set()))
    _remove(zone_ready, name, classification)
    _remove(zone_dr_protected, name, classification)
    for cond in CONDITIONS:
        _remove(zone_condition, name, cond)
    _remove(zone_namespaces, name)
    for resource in resources:
        _remove(zone_quota_hard, name, resource)
        _remove(zone_quota_used, name, resource)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
