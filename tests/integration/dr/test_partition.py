"""A partition, not a dead process: the production centre runs in a network namespace of its own, reached
over a veth pair; the link is cut and healed while its server keeps running with its data."""

from __future__ import annotations

import pytest

from datacloud.devstack.netns import Link
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, can_write, listing, root, status
from tests.support.partition import replica_on_partitioned_prod

pytestmark = pytest.mark.integration


def test_cut_off_production_fails_over_and_is_fenced_when_the_link_heals(
    cluster: Cluster,
    dr_centres: dict[str, Centre],
    partitioned_prod: tuple[Link, Centre],
    bucket: str,
    cleanup: list[str],
) -> None:
    link, prod = partitioned_prod
    near = dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    for i in range(10):
        app(prod).put_object(Bucket=bucket, Key=f"before/{i}", Body=b"x")
    cleanup.append("partition")
    cluster.must_apply(replica_on_partitioned_prod("partition", NAMESPACE, bucket, "10s"))
    wait_until(lambda: status(cluster, "partition").get("phase") == "Protected", 90, what="Protected")
    wait_until(lambda: {f"before/{i}" for i in range(10)} <= listing(root(near), bucket), 30)

    link.cut()
    assert prod.alive()  # the server runs on, with its data: only the network is gone
    s = wait_until(
        lambda: (st := status(cluster, "partition")).get("action", {}).get("finishedAt") and st,
        120,
        what="automatic failover across the partition",
    )
    assert s["activeCentre"] == "fz-samecity-dr"
    assert (
        cluster.kube.read("v1", "ConfigMap", "partition-endpoint", NAMESPACE)["data"]["centre"]
        == "fz-samecity-dr"
    )
    # The next reconcile after the failover records the unreachable copy as still to be fenced.
    wait_until(
        lambda: "part-prod" in status(cluster, "partition").get("unfencedUnreachable", []),
        30,
        what="the cut-off copy listed as to be fenced",
    )
    assert can_write(app(near), bucket)

    link.heal()
    # As soon as it answers again, the old production copy is fenced: never a second writer.
    wait_until(lambda: not can_write(app(prod), bucket), 90, what="fenced after the link healed")
    wait_until(
        lambda: not status(cluster, "partition").get("unfencedUnreachable"), 60, what="nothing left unfenced"
    )
    assert status(cluster, "partition")["writableCopies"] == 1
    app(near).put_object(Bucket=bucket, Key="after-heal", Body=b"1")
    wait_until(
        lambda: "after-heal" in listing(root(prod), bucket), 60, what="new active feeds the healed centre"
    )
