"""Write leases: an active copy cut off from the operator stops accepting writes by itself, so a store
that comes back after a failover promoted another copy is never a second writer, not even for the
moment before the operator reaches it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from datacloud.devstack.objectstore import Centre, StackError
from datacloud.failover import fencing, lease
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, can_write, replica, root, status

pytestmark = pytest.mark.integration


def test_the_store_evaluates_the_lease_condition(dr_centres: dict[str, Centre], bucket: str) -> None:
    """versitygw evaluates a Deny's aws:EpochTime condition per request: open before, closed after."""
    centre = dr_centres["xm-remote-dr"]
    allow_app(centre, bucket)
    until = int(time.time()) + 3
    policy = json.loads(root(centre).get_bucket_policy(Bucket=bucket)["Policy"])
    policy["Statement"].append(fencing.lease_statement(bucket, "leased", "0123456789abcdef", until))
    root(centre).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    writer = app(centre)
    writer.put_object(Bucket=bucket, Key="leased/before", Body=b"1")  # the lease runs
    writer.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"1")  # another prefix: not covered
    wait_until(lambda: time.time() > until + 1, 10, what="the lease to run out")
    with pytest.raises(ClientError) as refused:
        writer.put_object(Bucket=bucket, Key="leased/after", Body=b"1")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    writer.put_object(Bucket=bucket, Key="elsewhere/y", Body=b"1")


def test_a_store_killed_while_active_comes_back_refusing_writes(
    cluster: Cluster,
    dr_centres: dict[str, Centre],
    operator: dict[str, Any],
    prod_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append("lease-return")
    cluster.must_apply(replica("lease-return", bucket, policy="Automatic"))
    wait_until(lambda: status(cluster, "lease-return").get("phase") == "Protected", 90, what="Protected")
    assert can_write(app(prod), bucket)

    prod.stop()
    wait_until(
        lambda: (
            (s := status(cluster, "lease-return")).get("activeCentre") == "fz-samecity-dr"
            and (s.get("action") or {}).get("finishedAt")
        ),
        90,
        what="automatic failover",
    )
    assert can_write(app(near), bucket)
    # The operator away, so nothing can fence the store when it returns: what protects it is what it
    # holds on its own disk.
    # (versitygw will not start while the webhook it notifies, the operator's receiver, is away: it
    # returns without notifications, then with them once the operator is back.)
    operator["process"].kill()
    webhook, prod.event_webhook = prod.event_webhook, None
    try:
        prod.restart()
        assert not can_write(app(prod), bucket)
        assert can_write(app(near), bucket)
    finally:
        prod.event_webhook = webhook
        operator["process"].start()
    wait_until(lambda: _restarted(prod), 60, what="production back with its notifications")
    wait_until(
        lambda: (
            status(cluster, "lease-return").get("writableCopies") == 1
            and not status(cluster, "lease-return").get("unfencedUnreachable")
        ),
        90,
        what="the returned copy fenced and measured",
    )
    assert not can_write(app(prod), bucket)


def _restarted(centre: Centre) -> bool:
    try:
        centre.restart()
    except StackError:  # the operator's receiver is not listening yet
        return False
    return True


def test_a_paused_replica_keeps_its_active_copy_writable(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    """Pausing stops replication, not the applications: the lease is still renewed."""
    prod = dr_centres["fz-prod"]
    allow_app(prod, bucket)
    cleanup.append("lease-paused")
    cluster.must_apply(replica("lease-paused", bucket))
    wait_until(lambda: status(cluster, "lease-paused").get("phase") == "Protected", 90, what="Protected")
    cluster.kube.custom.patch_namespaced_custom_object(
        "datacloud.fujian.gov.cn",
        "v1alpha1",
        NAMESPACE,
        "drreplicas",
        "lease-paused",
        {"spec": {"paused": True}},
    )
    wait_until(lambda: status(cluster, "lease-paused").get("phase") == "Paused", 30, what="Paused")
    # Longer than a lease: it has been renewed meanwhile.
    started = time.time()
    wait_until(lambda: time.time() - started > lease.LEASE_MIN_S + 2, 30, what="a lease's time")
    assert can_write(app(prod), bucket)


def test_deleting_a_replica_leaves_its_active_copy_open(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str
) -> None:
    prod = dr_centres["fz-prod"]
    allow_app(prod, bucket)
    cluster.must_apply(replica("lease-deleted", bucket))
    wait_until(lambda: status(cluster, "lease-deleted").get("phase") == "Protected", 90, what="Protected")
    assert "datacloud-lease-" in root(prod).get_bucket_policy(Bucket=bucket)["Policy"]
    cluster.kubectl("-n", NAMESPACE, "delete", "drreplica", "lease-deleted")
    wait_until(
        lambda: "datacloud-lease-" not in root(prod).get_bucket_policy(Bucket=bucket)["Policy"],
        30,
        what="the lease removed",
    )
    started = time.time()
    wait_until(lambda: time.time() - started > lease.LEASE_MIN_S + 2, 30, what="a lease's time")
    assert can_write(app(prod), bucket)
