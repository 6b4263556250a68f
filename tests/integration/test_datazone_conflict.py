"""A DataZone whose only namespace is someone else's is in Conflict: none of its conditions claims quota or
access work it could not do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import Cluster, wait_until
from tests.support.zones import cond, delete_zone, status, uid, zone

pytestmark = pytest.mark.integration


def test_zone_in_conflict_enforces_and_binds_nothing(cluster: Cluster, operator: dict[str, Any]) -> None:
    z = f"dz-only-{uid()}"
    ns = f"{z}-theirs"
    cluster.must_apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    doc = zone(z, [ns], "Important")
    doc["spec"]["quota"] = {"hard": {"requests.cpu": "8", "pods": "20"}}
    doc["spec"]["access"] = {"admins": ["fj-admins"], "viewers": ["fj-audit"]}
    cluster.must_apply(doc)
    try:
        wait_until(lambda: status(cluster, z).get("phase") == "Conflict", 60, what="phase Conflict")
        for type_ in ("QuotaEnforced", "AccessSynced", "Isolated", "Ready"):
            c = cond(cluster, z, type_)
            assert c.get("status") == "False", (type_, c)
        quota, access = cond(cluster, z, "QuotaEnforced"), cond(cluster, z, "AccessSynced")
        assert quota["reason"] == access["reason"] == "NoNamespaces"
        assert "NamespaceExists" in quota["message"]
        assert ns in quota["message"]
        assert ns in access["message"]
        # and indeed nothing was made in the namespace it does not own
        assert cluster.kube.read_all("v1", "ResourceQuota", ns) == []
        assert cluster.kube.read_all("rbac.authorization.k8s.io/v1", "RoleBinding", ns) == []
    finally:
        delete_zone(cluster, z)
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
