"""A DRReplica whose source bucket does not exist: no endpoint is published for it and no RPO is called
compliant, since nothing was replicated or measured; once the bucket exists, both follow."""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, replica, status

pytestmark = pytest.mark.integration


def conditions(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status(cluster, name).get("conditions") or []}


def endpoint_configmap(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        return cluster.kube.read("v1", "ConfigMap", f"{name}-endpoint", NAMESPACE)
    except LookupError:
        return None


def test_missing_source_publishes_nothing_and_claims_no_rpo(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    name = "nosource"
    cleanup.append(name)
    cluster.must_apply(replica(name, bucket))

    def withheld() -> dict[str, dict[str, Any]] | None:
        conds = conditions(cluster, name)
        refs = conds.get("ReferencesValid", {})
        return conds if refs.get("reason") == "SourceBucketMissing" and "RPOCompliant" in conds else None

    conds = wait_until(withheld, 60, what="the missing source reported")
    assert bucket in conds["ReferencesValid"]["message"]
    published = conds.get("EndpointPublished") or {}
    assert published.get("status") == "False", published
    assert published["reason"] == "SourceBucketMissing"
    assert conds["RPOCompliant"]["status"] != "True", conds["RPOCompliant"]
    assert conds["Ready"]["status"] == "False"
    s = status(cluster, name)
    assert "endpoint" not in s
    assert all("rpoCompliant" not in t for t in s.get("targets") or []), s.get("targets")
    assert endpoint_configmap(cluster, name) is None

    # The bucket appears: the continuous target's lag is measured and the endpoint is published. (The
    # scheduled target stays unmeasured until its first full sync, so RPOCompliant stays Unknown.)
    allow_app(dr_centres["fz-prod"], bucket)

    seen: list[dict[str, Any]] = []

    def published_and_measured() -> dict[str, Any] | None:
        s = status(cluster, name)
        seen[:] = [s]
        conds = {c["type"]: c for c in s.get("conditions") or []}
        near = next((t for t in s.get("targets") or [] if t["name"] == "same-city"), {})
        ok = conds.get("EndpointPublished", {}).get("status") == "True" and near.get("rpoCompliant") is True
        return s if ok else None

    try:
        s = wait_until(published_and_measured, 60, what="endpoint published and the same-city lag measured")
    except pytest.fail.Exception:
        raise AssertionError(f"last status: {seen}") from None
    conds = {c["type"]: c for c in s["conditions"]}
    assert (conds["RPOCompliant"]["status"], conds["RPOCompliant"]["reason"]) == ("Unknown", "NotMeasured")
    assert "remote" in conds["RPOCompliant"]["message"]
    cm = endpoint_configmap(cluster, name)
    assert cm is not None
    assert cm["data"]["bucket"] == bucket
