"""A spec change that moves a replica's source to another bucket: the new bucket is protected, and the old
one, no longer a copy of the replica, is left taking writes as before the replica, not refusing them once
its last write lease ran out."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.failover import fencing
from datacloud.failover.lease import LEASE_MIN_S, SKEW_S
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import allow_app, app, can_write, event_count, patch, replica, root, status

pytestmark = pytest.mark.integration


def test_a_source_moved_to_another_bucket_leaves_the_old_one_open(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    name = "moved"
    cleanup.append(name)
    prod = dr_centres["fz-prod"]
    old, new = bucket, f"{bucket}-new"
    allow_app(prod, old)
    allow_app(prod, new)
    doc = replica(name, old)
    doc["spec"]["targets"] = doc["spec"]["targets"][:1]
    cluster.must_apply(doc)
    wait_until(
        lambda: status(cluster, name).get("phase") == "Protected", 90, what="protected on the old bucket"
    )
    assert can_write(app(prod), old)

    patch(cluster, name, {"source": {"centre": "fz-prod", "bucket": new, "prefix": ""}})
    wait_until(
        lambda: (
            status(cluster, name).get("endpoint", {}).get("bucket") == new
            and status(cluster, name).get("phase") == "Protected"
        ),
        90,
        what="protected on the new bucket",
    )
    # Past any lease the operator sent the old bucket: it still takes the application's writes.
    time.sleep(LEASE_MIN_S + SKEW_S)
    assert can_write(app(prod), old)
    assert event_count(cluster, name, "OldActiveCopyReleased") >= 1
    policy = json.loads(root(prod).get_bucket_policy(Bucket=old)["Policy"])
    sids = [s["Sid"] for s in policy["Statement"]]
    assert sids == ["app"], sids  # the application's own statement kept, the operator's gone
    # The new source is under the lease now.
    new_policy = json.loads(root(prod).get_bucket_policy(Bucket=new)["Policy"])
    assert any(s["Sid"].startswith(fencing.LEASE_SID_PREFIX) for s in new_policy["Statement"])


def test_a_source_moved_while_no_operator_ran_leaves_the_old_one_open(
    cluster: Cluster, operator: dict[str, Any], dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    """The same move made while the operator was stopped: the process that starts never saw the old spec,
    and finds the old copy from what status says was published last."""
    name = "moved-stopped"
    cleanup.append(name)
    prod = dr_centres["fz-prod"]
    old, new = bucket, f"{bucket}-new"
    allow_app(prod, old)
    allow_app(prod, new)
    doc = replica(name, old)
    doc["spec"]["targets"] = doc["spec"]["targets"][:1]
    cluster.must_apply(doc)
    wait_until(
        lambda: status(cluster, name).get("phase") == "Protected", 90, what="protected on the old bucket"
    )
    assert status(cluster, name)["endpoint"]["copyName"] == "source"

    operator["process"].kill()
    try:
        patch(cluster, name, {"source": {"centre": "fz-prod", "bucket": new, "prefix": ""}})
    finally:
        operator["process"].start()
    wait_until(
        lambda: (
            status(cluster, name).get("endpoint", {}).get("bucket") == new
            and status(cluster, name).get("phase") == "Protected"
        ),
        90,
        what="protected on the new bucket",
    )
    time.sleep(LEASE_MIN_S + SKEW_S)
    assert can_write(app(prod), old)
    assert event_count(cluster, name, "OldActiveCopyReleased") == 1
    policy = json.loads(root(prod).get_bucket_policy(Bucket=old)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["app"]
