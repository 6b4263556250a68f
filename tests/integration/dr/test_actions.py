"""DR actions on the real stack: dry run, planned switchover and failback without loss, manual failover."""

from __future__ import annotations

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import (
    NAMESPACE,
    action,
    allow_app,
    app,
    can_write,
    finished,
    keys_at,
    replica,
    root,
    status,
)

pytestmark = pytest.mark.integration


def protected(cluster: Cluster, name: str) -> bool:
    return status(cluster, name).get("phase") == "Protected"


def test_dry_run_changes_nothing_and_states_the_plan(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    allow_app(dr_centres["fz-prod"], bucket)
    cleanup.append("dry")
    cluster.must_apply(replica("dry", bucket))
    wait_until(lambda: protected(cluster, "dry"), 60, what="Protected")
    before = status(cluster, "dry")
    action(cluster, "dry", "Failover", "fz-samecity-dr", "CHG-DRY-1", dry_run=True)
    s = wait_until(lambda: finished(cluster, "dry", "CHG-DRY-1"), 30, what="dry run recorded")
    assert s["action"]["result"] == "DryRun"
    assert s["action"]["plan"][0].startswith("Fencing")
    assert s["action"]["plan"][-1].startswith("Estimated data loss:")
    assert s["activeCentre"] == "fz-prod"
    assert s["fencingEpoch"] == before["fencingEpoch"]
    cm = cluster.kube.read("v1", "ConfigMap", "dry-endpoint", NAMESPACE)
    assert cm["data"]["centre"] == "fz-prod"
    assert can_write(app(dr_centres["fz-prod"]), bucket)
    reasons = [e["reason"] for e in cluster.events_for("dry")]
    assert "DryRun" in reasons


def test_switchover_and_failback_lose_nothing(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append("planned")
    cluster.must_apply(replica("planned", bucket))
    wait_until(lambda: protected(cluster, "planned"), 60, what="Protected")
    written = set()
    for i in range(30):
        app(prod).put_object(Bucket=bucket, Key=f"w/{i:03d}", Body=f"v{i}".encode())
        written.add(f"w/{i:03d}")

    action(cluster, "planned", "Switchover", "fz-samecity-dr", "CHG-SW-1")
    s = wait_until(lambda: finished(cluster, "planned", "CHG-SW-1"), 90, what="switchover done")
    assert s["action"]["result"] == "Succeeded"
    assert [st["name"] for st in s["action"]["steps"]] == [
        "Fencing",
        "FinalSync",
        "Promoting",
        "Publishing",
        "Reseeding",
        "Done",
    ]
    assert all(st["state"] == "Succeeded" for st in s["action"]["steps"])
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2
    near_keys = keys_at(near, bucket)
    assert written <= near_keys  # nothing lost
    assert not can_write(app(prod), bucket)  # the old active is fenced
    assert can_write(app(near), bucket)  # the new active takes writes
    cm = cluster.kube.read("v1", "ConfigMap", "planned-endpoint", NAMESPACE)
    assert (cm["data"]["centre"], cm["data"]["fencingEpoch"]) == ("fz-samecity-dr", "2")
    assert s["action"]["auditRecord"].startswith("xm-remote-dr/datacloud-audit/")

    # Writes at the new active flow back to the old one, which is now a target.
    app(near).put_object(Bucket=bucket, Key="after-switch", Body=b"new")
    wait_until(
        lambda: "after-switch" in keys_at(prod, bucket),
        30,
        what="reverse replication",
    )

    action(cluster, "planned", "Failback", "fz-prod", "CHG-FB-1")
    s = wait_until(lambda: finished(cluster, "planned", "CHG-FB-1"), 90, what="failback done")
    assert s["activeCentre"] == "fz-prod"
    assert s["fencingEpoch"] == 3
    prod_keys = keys_at(prod, bucket)
    assert written | {"after-switch"} <= prod_keys
    assert can_write(app(prod), bucket)
    assert not can_write(app(near), bucket)
    assert [h["requestId"] for h in s["history"][:2]] == ["CHG-FB-1", "CHG-SW-1"]
    audit = root(dr_centres["xm-remote-dr"]).list_objects_v2(
        Bucket="datacloud-audit", Prefix=f".datacloud/audit/{NAMESPACE}/planned/"
    )
    assert len(audit.get("Contents", [])) == 2


def test_the_same_request_id_is_not_carried_out_twice(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    allow_app(dr_centres["fz-prod"], bucket)
    cleanup.append("once")
    cluster.must_apply(replica("once", bucket))
    wait_until(lambda: protected(cluster, "once"), 60, what="Protected")
    action(cluster, "once", "Switchover", "fz-samecity-dr", "CHG-ONCE")
    wait_until(lambda: finished(cluster, "once", "CHG-ONCE"), 90)
    # Re-applying the same spec (e.g. from git) must not start a second switchover.
    cluster.must("-n", NAMESPACE, "annotate", "drreplica", "once", "touched=yes", "--overwrite")
    import time

    time.sleep(3)
    s = status(cluster, "once")
    assert s["fencingEpoch"] == 2
    assert len([h for h in s.get("history", []) if h["requestId"] == "CHG-ONCE"]) == 1
