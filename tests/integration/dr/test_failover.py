"""Unplanned failover on the real stack: the production centre's server is killed mid-writes."""

from __future__ import annotations

import time

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import (
    NAMESPACE,
    SteadyWriter,
    action,
    allow_app,
    app,
    can_write,
    finished,
    listing,
    replica,
    root,
    status,
)

pytestmark = pytest.mark.integration


def test_automatic_failover_keeps_what_was_acknowledged_and_failback_loses_nothing(
    cluster: Cluster, dr_centres: dict[str, Centre], prod_restored: Centre, bucket: str, cleanup: list[str]
) -> None:
    prod, near = prod_restored, dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append("auto")
    cluster.must_apply(replica("auto", bucket, policy="Automatic"))
    wait_until(lambda: status(cluster, "auto").get("phase") == "Protected", 60, what="Protected")

    with SteadyWriter(prod, bucket) as writer:
        time.sleep(13)  # longer than the 10s RPO, so some writes are old enough to be owed
        killed_at = time.time()
        prod.stop()
        s = wait_until(
            lambda: (st := status(cluster, "auto")).get("action", {}).get("finishedAt") and st,
            90,
            what="automatic failover finished",
        )
    assert s["action"]["type"] == "Failover"
    assert s["action"]["requestedBy"].startswith("datacloud-operator")
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["phase"] == "FailedOver"
    cm = cluster.kube.read("v1", "ConfigMap", "auto-endpoint", NAMESPACE)
    assert cm["data"]["centre"] == "fz-samecity-dr"
    assert cm["data"]["endpoint"] == near.endpoint
    fencing = next(st for st in s["action"]["steps"] if st["name"] == "Fencing")
    assert "unreachable" in fencing["message"]

    rpo = 10.0
    old_enough = {k for k, t in writer.acked.items() if t < killed_at - rpo}
    at_near = listing(root(near), bucket)
    assert old_enough, "the writer acknowledged nothing before the kill"
    assert old_enough <= at_near, f"lost: {sorted(old_enough - at_near)[:5]}"
    assert can_write(app(near), bucket)  # writes resume at the new active

    # The old production centre comes back: it is fenced at the new epoch and becomes a target.
    prod.restart()
    wait_until(lambda: not can_write(app(prod), bucket), 60, what="returned centre fenced")
    app(near).put_object(Bucket=bucket, Key="written-at-near", Body=b"1")
    wait_until(lambda: "written-at-near" in listing(root(prod), bucket), 60, what="new active → old")

    action(cluster, "auto", "Failback", "fz-prod", "CHG-HOME-1")
    s = wait_until(lambda: finished(cluster, "auto", "CHG-HOME-1"), 120, what="failback")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-prod"
    assert listing(root(near), bucket) <= listing(root(prod), bucket)  # zero loss on the way home
    assert can_write(app(prod), bucket)
    assert not can_write(app(near), bucket)
