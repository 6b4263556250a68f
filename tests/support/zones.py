"""What the DataZone tests share: a zone manifest, its status and conditions, deletion, a metric read."""

from __future__ import annotations

import os
from typing import Any

from datacloud.adapters.kube import NotFound
from tests.support.cluster import Cluster

G = "datacloud.fujian.gov.cn"


def uid() -> str:
    return os.urandom(3).hex()


def zone(name: str, namespaces: list[str], classification: str = "Core", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/v1alpha1",
        "kind": "DataZone",
        "metadata": {"name": name},
        "spec": {
            "department": {"name": "省卫生健康委员会", "code": "FJ-WJW"},
            "classification": classification,
            "namespaces": namespaces,
            **spec,
        },
    }


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.get("datazones", name).get("status") or {}


def cond(cluster: Cluster, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(cluster, name).get("conditions") or [] if c["type"] == type_), {})


def ready(cluster: Cluster, name: str) -> bool:
    s = status(cluster, name)
    gen = cluster.get("datazones", name)["metadata"]["generation"]
    return s.get("observedGeneration") == gen and cond(cluster, name, "Ready").get("status") == "True"


def read(
    cluster: Cluster, kind: str, name: str, ns: str | None = None, api: str = "v1"
) -> dict[str, Any] | None:
    try:
        return cluster.kube.read(api, kind, name, ns)
    except NotFound:
        return None


def delete_zone(cluster: Cluster, name: str) -> None:
    cluster.kubectl("delete", "datazone", name, "--wait=false")
