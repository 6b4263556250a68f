"""The dev stack's city clusters: one real API server per CityDataCloud sample, holding a generated fleet of
nodes and pods and set up to the provincial baseline, so every city is Available, compliant and counted by
the census from the first minute.

Each city is a kube-apiserver on the stack's etcd under its own prefix, about 290 MB resident (ten took
2.9 GB, measured with `ps` after `datacloud dev up`); the operator reaches it through the kubeconfig
Secret the sample names, with the admin client certificate.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..census.baseline import CENTRE_LABEL, PSA_ENFORCE, ZONE_LABEL
from .controlplane import ApiServer, ControlPlane
from .fleet import Fleet, Writer, create_fleet, embedded_kubeconfig, make_fleet

# Nodes and pods per city, roughly by the size of the city's cloud; cities not listed get the default.
FLEET_SIZES = {"350100": (24, 160), "350200": (20, 140), "350500": (16, 100)}
DEFAULT_SIZE = (8, 40)
STARTING_AT_ONCE = 3  # API servers started together: each needs a core for a few seconds


@dataclass
class LiveCity:
    name: str  # the CityDataCloud's
    code: str
    server: ApiServer
    fleet: Fleet
    secret: dict[str, Any]  # the kubeconfig Secret the CityDataCloud refers to


def make_compliant(server: ApiServer, fleet: Fleet) -> None:
    """What the provincial baseline asks of a city: Pod Security on every workload namespace, a monitoring
    namespace with a scrape configuration, and a default-deny policy in each zone namespace."""
    w = Writer(server)
    for ns in ("monitoring", "zone-a"):
        labels = {PSA_ENFORCE: "restricted", **({ZONE_LABEL: "a"} if ns == "zone-a" else {})}
        w.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns, "labels": labels}})  # fmt: skip
    enforce = {"metadata": {"labels": {PSA_ENFORCE: "baseline"}}}
    for ns in ("default", fleet.namespace):
        w.request("PATCH", f"/api/v1/namespaces/{ns}", enforce, "application/merge-patch+json")
    w.ensure("/api/v1/namespaces/monitoring/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prometheus"},
        "data": {"prometheus.yml": "scrape_configs: []\n"}})  # fmt: skip
    w.ensure("/apis/networking.k8s.io/v1/namespaces/zone-a/networkpolicies", deny_policy())


def deny_policy() -> dict[str, Any]:
    """A zone namespace's default-deny ingress policy."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}  # fmt: skip


def city_fleet(doc: dict[str, Any]) -> Fleet:
    """A fleet for one CityDataCloud sample, its nodes labelled with the centres the city names."""
    code = doc["spec"]["cityCode"]
    nodes, pods = FLEET_SIZES.get(code, DEFAULT_SIZE)
    fleet = make_fleet(code, nodes, pods)
    centres = doc["spec"].get("centres") or [f"{doc['metadata']['name']}-dc"]
    for i, node in enumerate(fleet.nodes):
        if CENTRE_LABEL in node.labels:
            node.labels[CENTRE_LABEL] = centres[i % len(centres)]
    return fleet


def kubeconfig_secret(doc: dict[str, Any], server: ApiServer) -> dict[str, Any]:
    ref = doc["spec"]["cluster"]["kubeconfigSecretRef"]
    text = embedded_kubeconfig(server)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ref["name"], "namespace": ref["namespace"]},
        "type": "Opaque",
        "data": {ref.get("key", "kubeconfig"): base64.b64encode(text.encode()).decode()},
    }


def start_city(plane: ControlPlane, doc: dict[str, Any]) -> LiveCity:
    name = doc["metadata"]["name"]
    server = plane.add_apiserver(f"city-{name}")
    fleet = city_fleet(doc)
    create_fleet(server, fleet)
    make_compliant(server, fleet)
    return LiveCity(name, doc["spec"]["cityCode"], server, fleet, kubeconfig_secret(doc, server))


def start_cities(plane: ControlPlane, docs: Sequence[dict[str, Any]]) -> list[LiveCity]:
    """Start a city for each CityDataCloud document, a few at a time; in the order given."""
    with ThreadPoolExecutor(STARTING_AT_ONCE) as pool:
        return list(pool.map(lambda d: start_city(plane, d), docs))
