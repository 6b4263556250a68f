"""The hard case for fencing: production cut off from the operator but not from an application running
beside it in the same centre. The operator cannot fence what it cannot reach; the write lease makes the
cut-off copy refuse writes by itself before the same-city copy is promoted, and what it accepted until
then is kept as divergent when the link heals."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from datacloud.api.reserved import QUARANTINE_BUCKET
from datacloud.devstack.netns import Link, enter
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, listing, root, status
from tests.support.partition import replica_on_partitioned_prod

pytestmark = pytest.mark.integration


class LocalApp(threading.Thread):
    """An application inside production's network namespace, writing to its own centre throughout."""

    def __init__(self, link: Link, centre: Centre, bucket: str) -> None:
        super().__init__(daemon=True)
        self.link, self.centre, self.bucket = link, centre, bucket
        self.stop = threading.Event()
        self.acked: dict[str, str] = {}
        self.failed_over = threading.Event()
        self.tried_after_failover = 0
        self.accepted_after_failover: list[str] = []

    def run(self) -> None:
        enter(self.link.netns)
        seq = 0
        while not self.stop.is_set():
            seq += 1
            key = f"local/{seq:05d}"
            body = os.urandom(32)
            after = self.failed_over.is_set()
            self.tried_after_failover += after
            try:
                app(self.centre).put_object(Bucket=self.bucket, Key=key, Body=body)
            except (BotoCoreError, ClientError):
                self.stop.wait(0.1)
                continue
            self.acked[key] = hashlib.md5(body, usedforsecurity=False).hexdigest()
            if after:
                self.accepted_after_failover.append(key)
            self.stop.wait(0.1)


def test_a_cut_off_production_stops_its_local_writers_before_the_failover(
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
    cleanup.append("partition-writers")
    cluster.must_apply(replica_on_partitioned_prod("partition-writers", NAMESPACE, bucket, "30s"))
    wait_until(lambda: status(cluster, "partition-writers").get("phase") == "Protected", 90, what="Protected")
    local = LocalApp(link, prod, bucket)
    local.start()
    try:
        wait_until(lambda: len(local.acked) >= 5, 30, what="the local application writing")
        link.cut()
        wait_until(
            lambda: status(cluster, "partition-writers").get("activeCentre") == "fz-samecity-dr",
            120,
            what="automatic failover across the partition",
        )
        local.failed_over.set()
        # From the promotion on, production refuses its local application (it can still reach it).
        wait_until(lambda: local.tried_after_failover >= 5, 30, what="writes tried after the failover")
        assert local.accepted_after_failover == []
        assert app(near).put_object(Bucket=bucket, Key="at-the-new-active", Body=b"1")
    finally:
        local.stop.set()
        local.join(10)
    link.heal()
    wait_until(
        lambda: all(
            d.get("state") != "Pending" for d in status(cluster, "partition-writers").get("divergence") or []
        ),
        120,
        what="the divergence check",
    )
    # Every write the local application was told succeeded is at the new active or kept.
    held = {
        o["Key"]: o["ETag"].strip('"') for o in root(near).list_objects_v2(Bucket=bucket).get("Contents", [])
    }
    kept = {}
    for o in (
        root(prod)
        .list_objects_v2(Bucket=QUARANTINE_BUCKET, Prefix=f"{NAMESPACE}/partition-writers/")
        .get("Contents", [])
    ):
        parts = o["Key"].split("/", 3)  # namespace/replica/e<epoch>/key, beside e<epoch>.manifest.json
        if len(parts) == 4:
            kept[parts[3]] = o["ETag"].strip('"')
    lost = [k for k, digest in local.acked.items() if held.get(k) != digest and kept.get(k) != digest]
    assert lost == []
    assert listing(root(near), bucket) >= {"at-the-new-active"}
