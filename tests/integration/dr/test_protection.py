"""DRReplica protection on the real stack: continuous copy, status, endpoint publication, fencing."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, replica, root, status

pytestmark = pytest.mark.integration


def keys(client: Any, bucket: str) -> set[str]:
    """Keys in the bucket; empty while it does not exist yet (the operator creates target buckets)."""
    try:
        out = client.list_objects_v2(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] == "NoSuchBucket":
            return set()
        raise
    return {o["Key"] for o in out.get("Contents", [])}


def test_continuous_target_follows_and_status_explains_itself(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    writer = app(prod)
    writer.put_object(Bucket=bucket, Key="before/1.json", Body=b'{"n": 1}', ContentType="application/json")
    cleanup.append("protect")
    cluster.must_apply(replica("protect", bucket))

    wait_until(lambda: "before/1.json" in keys(root(near), bucket), 60, what="initial copy")
    for i in range(5):
        writer.put_object(Bucket=bucket, Key=f"live/{i}", Body=b"x" * i)
    wait_until(lambda: {f"live/{i}" for i in range(5)} <= keys(root(near), bucket), 30, what="live copies")
    copied = root(near).head_object(Bucket=bucket, Key="before/1.json")
    assert copied["ContentType"] == "application/json"

    def protected() -> dict[str, Any] | None:
        s = status(cluster, "protect")
        return s if s.get("phase") == "Protected" else None

    s = wait_until(protected, 60, what="phase Protected")
    assert s["activeCentre"] == "fz-prod"
    assert s["fencingEpoch"] == 1
    assert s["writableCopies"] == 1
    near_status = next(t for t in s["targets"] if t["name"] == "same-city")
    assert near_status["rpoCompliant"] is True
    assert near_status["lagSeconds"] < 10
    conds = {c["type"]: c for c in s["conditions"]}
    assert conds["ReferencesValid"]["status"] == "True"
    assert conds["SingleWriter"]["status"] == "True"
    remote = next(t for t in s["targets"] if t["name"] == "remote")
    assert remote["nextSyncTime"].endswith("02:00:00+00:00")

    cm = cluster.kube.read("v1", "ConfigMap", "protect-endpoint", NAMESPACE)
    assert cm["data"]["centre"] == "fz-prod"
    assert cm["data"]["endpoint"] == prod.endpoint
    assert cm["data"]["bucket"] == bucket
    svc = cluster.kube.read("v1", "Service", "protect-endpoint", NAMESPACE)
    assert svc["spec"]["type"] == "ExternalName"
    assert svc["spec"]["externalName"] == "127.0.0.1"

    # The copy in the same-city centre is fenced: the application account cannot write there.
    allow_app(near, bucket)  # even with an Allow of its own, the operator's Deny wins
    wait_until(lambda: status(cluster, "protect").get("writableCopies") == 1, 20)

    def refused() -> bool:
        try:
            app(near).put_object(Bucket=bucket, Key="second-writer", Body=b"no")
        except ClientError as e:
            return e.response["Error"]["Code"] == "AccessDenied"
        return False

    wait_until(refused, 30, what="write to a non-active copy refused")


def test_missing_centre_is_a_condition(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    doc = replica("nocentre", bucket)
    doc["spec"]["targets"][1]["centre"] = "sanming-dc"
    cleanup.append("nocentre")
    cluster.must_apply(doc)

    def refs() -> dict[str, Any] | None:
        for c in status(cluster, "nocentre").get("conditions", []):
            if c["type"] == "ReferencesValid" and c["status"] == "False":
                return c
        return None

    cond = wait_until(refs, 60, what="ReferencesValid False")
    assert cond["reason"] == "CentreNotFound"
    assert "sanming-dc" in cond["message"]


def test_role_mismatch_is_explained(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    doc = replica("mismatch", bucket)
    doc["spec"]["targets"][0]["centre"] = "xm-remote-dr"  # a Continuous target on the remote centre
    doc["spec"]["targets"][1]["centre"] = "fz-samecity-dr"
    cleanup.append("mismatch")
    cluster.must_apply(doc)

    def refs() -> dict[str, Any] | None:
        for c in status(cluster, "mismatch").get("conditions", []):
            if c["type"] == "ReferencesValid" and c["reason"] == "RoleMismatch":
                return c
        return None

    cond = wait_until(refs, 60, what="RoleMismatch")
    assert "Continuous targets belong on a SameCityDR centre" in cond["message"]


def test_a_replica_created_while_its_target_centre_is_away_is_protected_soon_after_it_returns(
    cluster: Cluster, dr_centres: dict[str, Centre], near_restored: Centre, bucket: str, cleanup: list[str]
) -> None:
    """Its follower's first scans fail (no target bucket, no store): they are tried again within seconds,
    not at the five-minute safety-net interval."""
    prod, near = dr_centres["fz-prod"], near_restored
    allow_app(prod, bucket)
    app(prod).put_object(Bucket=bucket, Key="written-while-away", Body=b"1")
    near.stop()
    wait_until(
        lambda: (cluster.get("datacentres", "fz-samecity-dr").get("status") or {}).get("health") == "Down",
        30,
        what="fz-samecity-dr Down",
    )
    cleanup.append("away")
    cluster.must_apply(replica("away", bucket))
    wait_until(lambda: status(cluster, "away").get("phase"), 30, what="a status while the target is away")
    assert status(cluster, "away")["phase"] != "Protected"
    near.restart()
    wait_until(
        lambda: "written-while-away" in keys(root(near), bucket), 45, what="the copy once the centre is back"
    )
    wait_until(lambda: status(cluster, "away").get("phase") == "Protected", 45, what="Protected")
