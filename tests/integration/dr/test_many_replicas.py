"""More DRReplicas than any worker pool holds: every one is protected, and other kinds' work (a DataZone
created and deleted meanwhile) is not starved by them."""

from __future__ import annotations

import os
from typing import Any

import pytest

from datacloud import settings
from datacloud.adapters.kube import NotFound
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, replica, root
from tests.support.zones import delete_zone, ready, zone

pytestmark = pytest.mark.integration
MANY = 100  # six times the replica lane's workers, three times kopf's own executor


def test_many_replicas_are_all_protected_while_a_zone_comes_and_goes(
    cluster: Cluster, operator: dict[str, Any], dr_centres: dict[str, Centre]
) -> None:
    assert 3 * max(settings.current().replica_workers, settings.current().workers) < MANY
    tag = os.urandom(3).hex()
    names = [f"many-{tag}-{i:03d}" for i in range(MANY)]
    z = f"many-{tag}"
    source = root(dr_centres["fz-prod"])
    for n in names:
        source.create_bucket(Bucket=n)
    try:
        cluster.must_apply(*[replica(n, n) for n in names])
        # The zone is applied while the replicas are still being set up.
        cluster.must_apply(zone(z, [f"{z}-a"]))
        wait_until(lambda: ready(cluster, z), 120, 0.5, what=f"zone {z} Ready among {MANY} new replicas")
        delete_zone(cluster, z)
        wait_until(lambda: _gone(cluster, z), 120, 0.5, what=f"zone {z} deleted among {MANY} replicas")

        def phases() -> dict[str, int]:
            items = cluster.kube.list("drreplicas", NAMESPACE)
            counts: dict[str, int] = {}
            for item in items:
                if item["metadata"]["name"] in names:
                    phase = (item.get("status") or {}).get("phase") or "none"
                    counts[phase] = counts.get(phase, 0) + 1
            return counts

        wait_until(lambda: phases().get("Protected") == MANY, 300, 1, what=f"{MANY} replicas Protected")
    finally:
        cluster.kubectl("-n", NAMESPACE, "delete", "drreplica", *names, "--wait=false")
        delete_zone(cluster, z)
    # Deleting them all goes through too (no finalizer left waiting on a busy worker).
    wait_until(
        lambda: not [i for i in cluster.kube.list("drreplicas", NAMESPACE) if i["metadata"]["name"] in names],
        120,
        1,
        what=f"{MANY} replicas deleted",
    )


def _gone(cluster: Cluster, name: str) -> bool:
    try:
        cluster.get("datazones", name)
    except NotFound:
        return True
    return False
