"""City data cloud metrics, set from CityDataCloud status."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Gauge

from ..api.common import parse_quantity
from .registry import REGISTRY

NODE_STATES = ("total", "ready", "not_ready", "schedulable", "cordoned")
RESOURCE_KINDS = ("capacity", "allocatable", "schedulable", "requested")

city_available = Gauge(
    "datacloud_city_available",
    "1 when the city's Kubernetes API answered within the grace period, else 0.",
    ["city", "code"],
    registry=REGISTRY,
)
city_nodes = Gauge(
    "datacloud_city_nodes",
    "Nodes of the city cluster by state (total, ready, not_ready, schedulable, cordoned).",
    ["city", "state"],
    registry=REGISTRY,
)
city_resource = Gauge(
    "datacloud_city_resource",
    "Resources of the city cluster in base units (cores, bytes, devices) by kind "
    "(capacity, allocatable, schedulable, requested).",
    ["city", "resource", "kind"],
    registry=REGISTRY,
)
city_accelerators = Gauge(
    "datacloud_city_accelerators",
    "Accelerator devices of the city cluster by resource, model and kind.",
    ["city", "resource", "model", "kind"],
    registry=REGISTRY,
)
city_baseline_score = Gauge(
    "datacloud_city_baseline_score_percent",
    "Percentage of provincial baseline checks the city passes.",
    ["city", "profile", "version"],
    registry=REGISTRY,
)
city_baseline_failed = Gauge(
    "datacloud_city_baseline_failed_checks",
    "Baseline checks the city fails, by severity.",
    ["city", "severity"],
    registry=REGISTRY,
)
city_heartbeat_time = Gauge(
    "datacloud_city_last_heartbeat_timestamp_seconds",
    "Unix time of the last successful heartbeat.",
    ["city"],
    registry=REGISTRY,
)
city_heartbeat_age = Gauge(
    "datacloud_city_heartbeat_age_seconds",
    "Seconds since the last successful heartbeat, computed at scrape time.",
    ["city"],
    registry=REGISTRY,
)

# The label values each city has exported, so a vanished series can be dropped.
_exported: dict[str, dict[Gauge, set[tuple[str, ...]]]] = {}


def _set(
    gauge: Gauge, labels: tuple[str, ...], value: float, seen: dict[Gauge, set[tuple[str, ...]]]
) -> None:
    gauge.labels(*labels).set(value)
    seen.setdefault(gauge, set()).add(labels)


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _quantity(text: object) -> float:
    try:
        return parse_quantity(str(text))
    except ValueError:
        return 0.0


def observe_city(name: str, code: str, status: Mapping[str, Any]) -> None:
    """Set the city's series from its status; series it no longer has are dropped."""
    seen: dict[Gauge, set[tuple[str, ...]]] = {}
    available = next((c for c in status.get("conditions") or [] if c.get("type") == "Available"), None)
    _set(city_available, (name, code), 1.0 if available and available.get("status") == "True" else 0.0, seen)
    nodes = status.get("nodes") or {}
    if nodes:
        counts = {**nodes, "not_ready": int(nodes.get("total", 0)) - int(nodes.get("ready", 0))}
        for state in NODE_STATES:
            _set(city_nodes, (name, state), float(counts.get(state, 0)), seen)
    resources = status.get("resources") or {}
    for kind in RESOURCE_KINDS:
        for resource, value in (resources.get(kind) or {}).items():
            _set(city_resource, (name, resource, kind), _quantity(value), seen)
    for acc in status.get("accelerators") or []:
        for kind in ("capacity", "allocatable", "requested"):
            labels = (name, str(acc.get("resource")), str(acc.get("model")), kind)
            _set(city_accelerators, labels, float(acc.get(kind) or 0), seen)
    compliance = status.get("compliance") or {}
    if compliance.get("score") is not None:
        profile = (name, str(compliance.get("profile")), str(compliance.get("version")))
        _set(city_baseline_score, profile, float(compliance["score"]), seen)
        failed = [str(f.get("severity")) for f in compliance.get("failedChecks") or []]
        for severity in ("critical", "high", "medium", "low"):
            _set(city_baseline_failed, (name, severity), float(failed.count(severity)), seen)
    beat = _timestamp(status.get("lastHeartbeatTime"))
    if beat is not None:
        _set(city_heartbeat_time, (name,), beat, seen)
        city_heartbeat_age.labels(name).set_function(lambda: max(0.0, time.time() - beat))
        seen.setdefault(city_heartbeat_age, set()).add((name,))
    _drop(_exported.get(name, {}), seen)
    _exported[name] = seen


def _drop(before: dict[Gauge, set[tuple[str, ...]]], now: dict[Gauge, set[tuple[str, ...]]]) -> None:
    for gauge, labelsets in before.items():
        for labels in labelsets - now.get(gauge, set()):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)


def forget_city(name: str) -> None:
    _drop(_exported.pop(name, {}), {})
