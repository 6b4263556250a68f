"""Collecting one city's compute from its Kubernetes API.

`CityCollector` keeps a live mirror of the city's nodes and live pods (list once, then watch) for the
heartbeat; `collect_city` lists once and returns, for a census run that needs a single snapshot. Both end
in the same `CitySummary`. `baseline_facts` gathers the few small lists the baseline checks read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..adapters.kube import ApiError, Kube
from .aggregate import (
    TERMINATED_PHASES,
    CitySummary,
    NodeFacts,
    PodFacts,
    project_node,
    project_pod,
    summarise,
)
from .baseline import BaselineFacts, NetworkPolicyFacts
from .mirror import PAGE_SIZE, Mirror, wait_synced

NODES = "/api/v1/nodes"
PODS = "/api/v1/pods"
# Terminated pods are left out by the server, so they cost nothing to list or watch; a pod that
# terminates arrives as a DELETED event because it stops matching.
LIVE_PODS = ",".join(f"status.phase!={p}" for p in TERMINATED_PHASES)


def node_mirror(kube: Kube, page_size: int = PAGE_SIZE) -> Mirror[NodeFacts]:
    return Mirror(kube, NODES, project_node, page_size=page_size)


def pod_mirror(kube: Kube, page_size: int = PAGE_SIZE) -> Mirror[PodFacts]:
    return Mirror(kube, PODS, project_pod, field_selector=LIVE_PODS, page_size=page_size)


class CityCollector:
    """The live mirror of one city; `summary()` re-adds only when something changed."""

    def __init__(self, kube: Kube, name: str, page_size: int = PAGE_SIZE) -> None:
        self.kube = kube
        self.nodes = node_mirror(kube, page_size).start(f"city-{name}-nodes")
        self.pods = pod_mirror(kube, page_size).start(f"city-{name}-pods")
        self._cached: tuple[tuple[int, int], CitySummary] | None = None

    @property
    def mirrors(self) -> list[Mirror[Any]]:
        return [self.nodes, self.pods]

    def wait_synced(self, timeout_s: float) -> bool:
        return wait_synced(self.mirrors, timeout_s)

    @property
    def current(self) -> bool:
        """Both mirrors listed and their watches are open: the summary is what the city has now."""
        return all(m.healthy for m in self.mirrors)

    @property
    def error(self) -> ApiError | None:
        return next((m.error for m in self.mirrors if m.error is not None), None)

    def summary(self) -> CitySummary | None:
        if not all(m.synced.is_set() for m in self.mirrors):
            return None
        key = (self.nodes.revision, self.pods.revision)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, summarise(self.nodes.items(), self.pods.items()))
        return self._cached[1]

    def stop(self) -> None:
        for m in self.mirrors:
            m.stop()


def collect_city(kube: Kube, page_size: int = PAGE_SIZE) -> CitySummary:
    """One paginated pass over a city's nodes and live pods; ApiError when the city cannot be read."""
    nodes, pods = node_mirror(kube, page_size), pod_mirror(kube, page_size)
    nodes.sync_once()
    pods.sync_once()
    return summarise(nodes.items(), pods.items())


def _all(kube: Kube, path: str) -> Iterable[dict[str, Any]]:
    for page in kube.list_pages(path):
        yield from page.get("items") or []


def baseline_facts(
    kube: Kube, city_code: str, version: str, nodes: CitySummary | None, monitoring: Iterable[str]
) -> BaselineFacts:
    """What the baseline checks read: namespaces, NetworkPolicies, the monitoring namespaces'
    ConfigMap keys, ServiceMonitors (when the CRD exists) and the node labels from the summary."""
    namespaces = {
        str(ns["metadata"]["name"]): dict(ns["metadata"].get("labels") or {})
        for ns in _all(kube, "/api/v1/namespaces")
    }
    policies: dict[str, list[NetworkPolicyFacts]] = {}
    for p in _all(kube, "/apis/networking.k8s.io/v1/networkpolicies"):
        spec = p.get("spec") or {}
        selector = spec.get("podSelector") or {}
        policies.setdefault(str(p["metadata"]["namespace"]), []).append(
            NetworkPolicyFacts(
                name=str(p["metadata"]["name"]),
                selects_all=not selector.get("matchLabels") and not selector.get("matchExpressions"),
                policy_types=tuple(spec.get("policyTypes") or ["Ingress"]),
                ingress_rules=len(spec.get("ingress") or []),
                egress_rules=len(spec.get("egress") or []),
            )
        )
    config_keys: dict[str, set[str]] = {}
    for ns in monitoring:
        if ns in namespaces:
            config_keys[ns] = {
                k for cm in _all(kube, f"/api/v1/namespaces/{ns}/configmaps") for k in cm.get("data") or {}
            }
    try:
        monitors: int | None = sum(1 for _ in _all(kube, "/apis/monitoring.coreos.com/v1/servicemonitors"))
    except ApiError as e:
        if e.reason != "NotFound":
            raise
        monitors = None  # the Prometheus Operator's CRDs are not installed
    return BaselineFacts(
        city_code=city_code,
        kubernetes_version=version,
        namespaces=namespaces,
        network_policies=policies,
        config_keys=config_keys,
        service_monitors=monitors,
        node_labels=[dict(labels) for labels in (nodes.node_labels if nodes else ())],
    )
