"""A DRReplica whose source bucket does not exist: no endpoint is published for it and no RPO is called
compliant, since nothing was replicated or measured; once the bucket exists, both follow. A source bucket
deleted after its endpoint was published leaves the endpoint ConfigMap in place, marked stale, and
EndpointPublished False saying so; the mark goes when the bucket is back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datacloud.builders.dr import STALE
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, replica, root, status
from tests.support.metrics import metric

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


def test_a_source_deleted_after_publication_leaves_its_endpoint_marked_stale(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    name = "gone"
    cleanup.append(name)
    prod = dr_centres["fz-prod"]
    allow_app(prod, bucket)
    doc = replica(name, bucket)
    cluster.must_apply(doc)
    wait_until(
        lambda: conditions(cluster, name).get("EndpointPublished", {}).get("status") == "True",
        60,
        what="the endpoint published",
    )
    root(prod).delete_bucket(Bucket=bucket)  # empty: nothing of the application's goes with it
    # A full run looks for the buckets (at least every five minutes); a spec change starts one at once.
    doc["spec"]["targets"][0]["rpoTarget"] = "11s"
    cluster.must_apply(doc)

    def stale() -> tuple[dict[str, Any], dict[str, Any]] | None:
        cm = endpoint_configmap(cluster, name) or {}
        published = conditions(cluster, name).get("EndpointPublished", {})
        marked = STALE in (cm.get("metadata", {}).get("annotations") or {})
        return (cm, published) if marked and published.get("reason") == "SourceBucketMissing" else None

    cm, published = wait_until(stale, 60, what="the endpoint marked stale")
    why = cm["metadata"]["annotations"][STALE]
    assert f"bucket {bucket} does not exist in fz-prod" in why
    assert cm["data"]["bucket"] == bucket  # kept: what applications hold still says where the data was
    assert published["status"] == "False"
    assert f"{name}-endpoint" in published["message"]
    assert "marked stale" in published["message"]
    assert status(cluster, name)["endpoint"]["stale"] == why

    # The bucket is back: published afresh, the mark gone from the ConfigMap and the status.
    allow_app(prod, bucket)

    def current() -> dict[str, Any] | None:
        cm = endpoint_configmap(cluster, name) or {}
        fresh = STALE not in (cm.get("metadata", {}).get("annotations") or {})
        ok = conditions(cluster, name).get("EndpointPublished", {}).get("status") == "True"
        return cm if fresh and ok else None

    wait_until(current, 60, what="the endpoint published again without the stale mark")
    assert "stale" not in status(cluster, name)["endpoint"]


def single_writer(cluster: Cluster, name: str) -> str:
    return str(conditions(cluster, name).get("SingleWriter", {}).get("reason") or "")


def test_a_deny_added_by_hand_to_the_active_copy_is_reported_before_the_next_full_run(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str], operator: dict[str, Any]
) -> None:
    """An SRE's Deny on every PUT stops the active copy taking writes. The lease renewal (11 s lease at
    this replica's `downFor: 2s`) sees the changed policy and the replica probes again at once: within the
    deadline here, where the periodic full run is four to five minutes away. Status, metric and (through
    the metric) the alert say it; taking the Deny away brings `Fenced` back."""
    name = "frozen"
    cleanup.append(name)
    prod = dr_centres["fz-prod"]
    allow_app(prod, bucket)
    cluster.must_apply(replica(name, bucket))
    wait_until(lambda: single_writer(cluster, name) == "Fenced", 60, what="the copy probed writable")
    refuses = "datacloud_dr_active_copy_refuses_writes"
    wait_until(lambda: metric(operator["metrics"], refuses, replica=name) == 0, 30, what="the gauge at 0")

    admin = root(prod)
    before = admin.get_bucket_policy(Bucket=bucket)["Policy"]
    policy = json.loads(before)
    deny = {
        "Sid": "sre-freeze",
        "Effect": "Deny",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"],
    }
    admin.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({**policy, "Statement": [*policy["Statement"], deny]})
    )
    wait_until(lambda: single_writer(cluster, name) == "NoWritableCopy", 45, what="the refusal reported")
    wait_until(lambda: metric(operator["metrics"], refuses, replica=name) == 1, 30, what="the gauge at 1")
    assert "sre-freeze" in admin.get_bucket_policy(Bucket=bucket)["Policy"]  # kept by every renewal

    current = json.loads(admin.get_bucket_policy(Bucket=bucket)["Policy"])
    kept = [s for s in current["Statement"] if s.get("Sid") != "sre-freeze"]
    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**current, "Statement": kept}))
    wait_until(lambda: single_writer(cluster, name) == "Fenced", 45, what="writable again")
    wait_until(
        lambda: metric(operator["metrics"], refuses, replica=name) == 0, 30, what="the gauge at 0 again"
    )
