"""Mass failover: the production centre dies under many replicas with `failover.policy: Automatic`; every
one of them fails over, each fenced and published, and no write acknowledged before the kill is lost
(writes stop first and the followers catch up, so everything acknowledged is within the RPO)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, listing, replica, root

pytestmark = pytest.mark.integration
MANY = 40  # more than the replica lane's workers


def test_every_automatic_replica_fails_over_when_production_dies(
    cluster: Cluster, dr_centres: dict[str, Centre], prod_restored: Centre, cleanup: list[str]
) -> None:
    prod, near = prod_restored, dr_centres["fz-samecity-dr"]
    tag = os.urandom(3).hex()
    names = [f"mass-{tag}-{i:02d}" for i in range(MANY)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: (allow_app(prod, n), allow_app(near, n)), names))
    cleanup.extend(names)
    cluster.must_apply(*[replica(n, n, policy="Automatic") for n in names])

    def phases() -> dict[str, str]:
        items = cluster.kube.list("drreplicas", NAMESPACE)
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}

    wait_until(lambda: all(phases().get(n) == "Protected" for n in names), 120, 1, what="all Protected")
    acked: dict[str, set[str]] = {n: set() for n in names}
    for n in names:
        client = app(prod)
        for j in range(3):
            key = f"acked/{j}"
            client.put_object(Bucket=n, Key=key, Body=key.encode())
            acked[n].add(key)
    wait_until(
        lambda: all(acked[n] <= listing(root(near), n) for n in names), 60, 1, what="followers caught up"
    )
    prod.stop()
    wait_until(lambda: all(phases().get(n) == "FailedOver" for n in names), 180, 1, what="all FailedOver")
    for n in names:
        body: dict[str, Any] = cluster.get("drreplicas", n, NAMESPACE)
        s = body["status"]
        assert s["activeCentre"] == "fz-samecity-dr", n
        assert s["action"]["requestedBy"].startswith("datacloud-operator"), n
        assert s["fencingEpoch"] == 2, n
        cm = cluster.kube.read("v1", "ConfigMap", f"{n}-endpoint", NAMESPACE)
        assert cm["data"]["centre"] == "fz-samecity-dr", n
        assert acked[n] <= listing(root(near), n), f"{n} lost acknowledged writes"
