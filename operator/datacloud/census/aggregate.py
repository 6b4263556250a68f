"""From Node and Pod objects to a city's summary: compact projections, then pure sums.

Objects are projected as they arrive (one small record per node, one per live pod) so a mirror of a
city with 5,000 nodes and 50,000 pods stays small; `summarise` then adds them up. Quantities are held as
integers in thousandths of a unit (Kubernetes' "milli-value"), so sums are exact.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.quantity import milli

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_BYTE_RESOURCES = ("memory", "ephemeral-storage", "storage")
TERMINATED_PHASES = ("Succeeded", "Failed")
GPU_RESOURCE = "nvidia.com/gpu"
UNKNOWN_MODEL = "unknown"


def format_quantity(value_milli: int, resource: str) -> str:
    """The canonical way to write a milli-value: `1500m`, `96`, `512Gi` (bytes in binary units)."""
    if value_milli % 1000:
        return f"{value_milli}m"
    whole = value_milli // 1000
    if whole and (resource in _BYTE_RESOURCES or resource.startswith("hugepages-")):
        for suffix, factor in reversed(_BINARY.items()):
            if whole % factor == 0:
                return f"{whole // factor}{suffix}"
    return str(whole)


def is_extended(resource: str) -> bool:
    """Extended resources (devices such as `nvidia.com/gpu`) have a domain; core ones do not."""
    return "/" in resource and not resource.startswith(("kubernetes.io/", "requests."))


def model_label(resource: str) -> str:
    """The node label naming a device's model: `nvidia.com/gpu.product` (set by GPU feature discovery);
    the same `<resource>.product` convention for other extended resources."""
    return f"{resource}.product"


Quantities = tuple[tuple[str, int], ...]


def _quantities(raw: Mapping[str, Any] | None) -> Quantities:
    return tuple((sys.intern(k), milli(str(v))) for k, v in (raw or {}).items())


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the census needs of one Node."""

    name: str
    ready: bool
    cordoned: bool
    capacity: Quantities
    allocatable: Quantities
    labels: tuple[tuple[str, str], ...]

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.cordoned

    def label(self, key: str) -> str | None:
        return next((v for k, v in self.labels if k == key), None)


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What the census needs of one live (not terminated) Pod: where it runs and what it requests."""

    node: str
    requests: Quantities


def project_node(obj: Mapping[str, Any]) -> NodeFacts:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return NodeFacts(
        name=str(meta.get("name", "")),
        ready=ready,
        cordoned=bool(spec.get("unschedulable")),
        capacity=_quantities(status.get("capacity")),
        allocatable=_quantities(status.get("allocatable")),
        labels=tuple((sys.intern(k), sys.intern(str(v))) for k, v in (meta.get("labels") or {}).items()),
    )


def _add(into: dict[str, int], raw: Mapping[str, Any] | None) -> None:
    for k, v in (raw or {}).items():
        into[k] = into.get(k, 0) + milli(str(v))


def pod_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests of a pod as the scheduler counts them: the app containers plus sidecars
    (restartable init containers), or the largest one-off init container if that is more, plus the
    pod overhead. Pod-level `spec.resources.requests`, where set, wins for the resources it names."""
    apps: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(apps, (c.get("resources") or {}).get("requests"))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        requests = (c.get("resources") or {}).get("requests")
        if c.get("restartPolicy") == "Always":
            _add(sidecars, requests)
            candidate = dict(sidecars)
        else:
            candidate = dict(sidecars)
            _add(candidate, requests)
        for k, v in candidate.items():
            init_peak[k] = max(init_peak.get(k, 0), v)
    total = dict(apps)
    for k, v in sidecars.items():
        total[k] = total.get(k, 0) + v
    for k, v in init_peak.items():
        total[k] = max(total.get(k, 0), v)
    _add(total, spec.get("overhead"))
    for k, v in ((spec.get("resources") or {}).get("requests") or {}).items():
        total[k] = milli(str(v))
    return total


def project_pod(obj: Mapping[str, Any]) -> PodFacts | None:
    """None for a terminated pod: it no longer holds what it requested."""
    if (obj.get("status") or {}).get("phase") in TERMINATED_PHASES:
        return None
    spec = obj.get("spec") or {}
    requests = tuple((sys.intern(k), v) for k, v in pod_requests(spec).items() if v)
    return PodFacts(node=sys.intern(str(spec.get("nodeName") or "")), requests=requests)


@dataclass(frozen=True)
class NodeCounts:
    total: int = 0
    ready: int = 0
    schedulable: int = 0
    cordoned: int = 0

    @property
    def not_ready(self) -> int:
        return self.total - self.ready


@dataclass(frozen=True)
class AcceleratorTotals:
    """Devices of one extended resource and model, counted in whole devices."""

    resource: str
    model: str
    capacity: int = 0
    allocatable: int = 0
    requested: int = 0


@dataclass(frozen=True)
class CitySummary:
    """One city's compute, as its API shows it. Resource maps are milli-values by resource name."""

    nodes: NodeCounts
    capacity: dict[str, int]
    allocatable: dict[str, int]
    schedulable: dict[str, int]  # allocatable of nodes that are Ready and not cordoned
    requested: dict[str, int]  # requests of every live pod, scheduled or not
    accelerators: tuple[AcceleratorTotals, ...]
    pods: int  # live pods
    unscheduled_pods: int
    node_labels: tuple[tuple[tuple[str, str], ...], ...] = field(default=(), repr=False)

    def resources_wire(self) -> dict[str, dict[str, str]]:
        def fmt(values: dict[str, int]) -> dict[str, str]:
            return {k: format_quantity(v, k) for k, v in sorted(values.items())}

        return {
            "capacity": fmt(self.capacity),
            "allocatable": fmt(self.allocatable),
            "schedulable": fmt(self.schedulable),
            "requested": fmt(self.requested),
        }

    def accelerators_wire(self) -> list[dict[str, Any]]:
        return [
            {"resource": a.resource, "model": a.model, "capacity": a.capacity,
             "allocatable": a.allocatable, "requested": a.requested}
            for a in self.accelerators
        ]  # fmt: skip

    def nodes_wire(self) -> dict[str, int]:
        n = self.nodes
        return {"total": n.total, "ready": n.ready, "schedulable": n.schedulable, "cordoned": n.cordoned}


def _plus(into: dict[str, int], values: Quantities) -> None:
    for k, v in values:
        into[k] = into.get(k, 0) + v


def summarise(nodes: Iterable[NodeFacts], pods: Iterable[PodFacts]) -> CitySummary:
    """Add up a city's nodes and live pods. Devices requested count towards the model of the node the
    pod is bound to; pods not yet bound count in `requested` but in no model."""
    total = ready = schedulable = cordoned = 0
    capacity: dict[str, int] = {}
    allocatable: dict[str, int] = {}
    usable: dict[str, int] = {}
    node_model: dict[str, dict[str, str]] = {}  # node → extended resource → model
    devices: dict[tuple[str, str], list[int]] = {}  # (resource, model) → [capacity, allocatable, requested]
    labels = []
    for n in nodes:
        total += 1
        ready += n.ready
        cordoned += n.cordoned
        _plus(capacity, n.capacity)
        _plus(allocatable, n.allocatable)
        if n.schedulable:
            schedulable += 1
            _plus(usable, n.allocatable)
        labels.append(n.labels)
        models: dict[str, str] = {}
        for res, value in n.capacity:
            if is_extended(res):
                models[res] = n.label(model_label(res)) or UNKNOWN_MODEL
                devices.setdefault((res, models[res]), [0, 0, 0])[0] += value // 1000
        for res, value in n.allocatable:
            if is_extended(res):
                model = models.setdefault(res, n.label(model_label(res)) or UNKNOWN_MODEL)
                devices.setdefault((res, model), [0, 0, 0])[1] += value // 1000
        if models:
            node_model[n.name] = models
    requested: dict[str, int] = {}
    live = unscheduled = 0
    for p in pods:
        live += 1
        unscheduled += not p.node
        _plus(requested, p.requests)
        models = node_model.get(p.node, {})
        for res, value in p.requests:
            if res in models:
                devices[(res, models[res])][2] += value // 1000
    accelerators = tuple(
        AcceleratorTotals(res, model, *counts) for (res, model), counts in sorted(devices.items())
    )
    return CitySummary(
        NodeCounts(total, ready, schedulable, cordoned),
        capacity,
        allocatable,
        usable,
        requested,
        accelerators,
        live,
        unscheduled,
        tuple(labels),
    )
