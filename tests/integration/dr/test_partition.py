"""A partition, not a dead process: the production centre runs in a network namespace of its own, reached
over a veth pair; the link is cut and healed while its server keeps running with its data."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.devstack.stack import OPERATOR_NAMESPACE, centre_secret
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import APP_KEY, APP_SECRET, NAMESPACE, allow_app, app, can_write, root, status

pytestmark = pytest.mark.integration
HOST_SIDE, CENTRE_SIDE = "10.252.7.1", "10.252.7.2"  # a test host of our own, inside this machine


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Link:
    """A network namespace joined to the host by a veth pair that can be cut and healed."""

    def __init__(self) -> None:
        tag = os.urandom(2).hex()
        self.netns, self.host_if, self.ns_if = f"dcpart{tag}", f"vdh{tag}", f"vdn{tag}"

    def __enter__(self) -> Link:
        ip("netns", "add", self.netns)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        ip("link", "set", self.ns_if, "netns", self.netns)
        ip("addr", "add", f"{HOST_SIDE}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("netns", "exec", self.netns, "ip", "addr", "add", f"{CENTRE_SIDE}/30", "dev", self.ns_if)
        ip("netns", "exec", self.netns, "ip", "link", "set", self.ns_if, "up")
        ip("netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        return self

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")
        ip("addr", "replace", f"{HOST_SIDE}/30", "dev", self.host_if)

    def __exit__(self, *_: object) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10, check=False)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=10, check=False)


@pytest.fixture
def partitioned_prod(
    cluster: Cluster, dr_centres: dict[str, Centre], tmp_path: Path
) -> Iterator[tuple[Link, Centre]]:
    with Link() as link:
        centre = Centre("part-prod", tmp_path / "part-prod", netns=link.netns, host=CENTRE_SIDE).start()
        try:
            centre.add_user(APP_KEY, APP_SECRET)
            centre.add_probe_user()
            cluster.must_apply(centre_secret(centre, OPERATOR_NAMESPACE))
            cluster.must_apply(
                {
                    "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
                    "kind": "DataCentre",
                    "metadata": {"name": "part-prod"},
                    "spec": {
                        "city": "350100",
                        "role": "Production",
                        "objectStore": {
                            "endpoint": centre.endpoint,
                            "credentialsSecretRef": {
                                "name": "centre-part-prod",
                                "namespace": OPERATOR_NAMESPACE,
                            },
                        },
                    },
                }
            )
            yield link, centre
        finally:
            cluster.kubectl("delete", "datacentre", "part-prod", "--wait=false")
            centre.stop()


def keys(client: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


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
    cluster.must_apply(
        {
            "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
            "kind": "DRReplica",
            "metadata": {"name": "partition", "namespace": NAMESPACE},
            "spec": {
                "source": {"centre": "part-prod", "bucket": bucket},
                "activeCentre": "part-prod",
                "targets": [
                    {
                        "name": "same-city",
                        "centre": "fz-samecity-dr",
                        "bucket": bucket,
                        "mode": "Continuous",
                        "rpoTarget": "10s",
                    }
                ],
                "failover": {"policy": "Automatic"},
            },
        }
    )
    wait_until(lambda: status(cluster, "partition").get("phase") == "Protected", 90, what="Protected")
    wait_until(lambda: {f"before/{i}" for i in range(10)} <= keys(root(near), bucket), 30)

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
        lambda: "after-heal" in keys(root(prod), bucket), 60, what="new active feeds the healed centre"
    )
