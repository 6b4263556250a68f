"""DRProtected: a zone's DRReplicas (labelled with it, or living in its namespaces) must meet its
classification, judged from their targets' modes and the roles of the targets' DataCentres."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import Cluster, wait_until
from tests.support.metrics import metric
from tests.support.zones import G, cond, delete_zone, ready, status, uid, zone

pytestmark = pytest.mark.integration


def centre(name: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/v1alpha1",
        "kind": "DataCentre",
        "metadata": {"name": name},
        "spec": {
            "city": "350100",
            "role": role,
            "objectStore": {
                "endpoint": "http://127.0.0.1:9",
                "credentialsSecretRef": {"name": f"{name}-absent", "namespace": "datacloud-system"},
            },
            "probe": {"interval": "60s"},
        },
    }


def target(name: str, centre_: str, mode: str) -> dict[str, Any]:
    out = {"name": name, "centre": centre_, "bucket": "records", "mode": mode}
    out.update({"rpoTarget": "30s"} if mode == "Continuous" else {"schedule": "0 2 * * *"})
    return out


def replica(
    name: str, ns: str, source: str, targets: list[dict[str, Any]], zone_: str | None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/v1alpha1",
        "kind": "DRReplica",
        "metadata": {"name": name, "namespace": ns, "labels": {f"{G}/zone": zone_} if zone_ else {}},
        "spec": {
            "source": {"centre": source, "bucket": "records"},
            "activeCentre": source,
            "targets": targets,
            "paused": True,  # only its spec matters here; the DRReplica reconciler should leave it be
        },
    }


def dr(cluster: Cluster, z: str) -> tuple[str, str, str]:
    c = cond(cluster, z, "DRProtected")
    return c.get("status", ""), c.get("reason", ""), c.get("message", "")


def test_dr_protection_follows_replicas(cluster: Cluster, operator: dict[str, Any]) -> None:
    u = uid()
    prod, same, remote = f"prod-{u}", f"same-{u}", f"remote-{u}"
    cluster.must_apply(centre(prod, "Production"), centre(same, "SameCityDR"), centre(remote, "RemoteDR"))
    cluster.must_apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "datacloud-dr"}})
    core, general = f"dz-dr-core-{u}", f"dz-dr-gen-{u}"
    cluster.must_apply(zone(core, [f"{core}-a"]), zone(general, [f"{general}-a"], "General"))
    wait_until(lambda: ready(cluster, core) and ready(cluster, general), 60, what="zones Ready")
    assert dr(cluster, core)[:2] == ("False", "NoDRReplicas")

    # Core: a remote scheduled copy alone is not enough.
    name = f"rec-{u}"
    cluster.must_apply(replica(name, "datacloud-dr", prod, [target("remote", remote, "Scheduled")], core))
    wait_until(lambda: dr(cluster, core)[1] == "RequirementNotMet", 60, what="requirement not met")
    assert "lacks a Continuous target on a SameCityDR centre" in dr(cluster, core)[2]
    assert f"datacloud-dr/{name}" in dr(cluster, core)[2]

    # A Continuous target on a centre whose role is RemoteDR does not count as same-city.
    # (its own bucket: two targets sharing one bucket and prefix are refused at admission)
    wrong = [
        target("remote", remote, "Scheduled"),
        {**target("near", remote, "Continuous"), "bucket": "near"},
    ]
    cluster.must_apply(replica(name, "datacloud-dr", prod, wrong, core))
    wait_until(lambda: len(cluster.get("drreplicas", name, "datacloud-dr")["spec"]["targets"]) == 2, 10)
    wait_until(lambda: dr(cluster, core)[1] == "RequirementNotMet", 60, what="still not met")

    both = [target("remote", remote, "Scheduled"), target("near", same, "Continuous")]
    cluster.must_apply(replica(name, "datacloud-dr", prod, both, core))
    wait_until(lambda: dr(cluster, core)[0] == "True", 60, what="DR protected")
    assert status(cluster, core)["drReplicas"] == [f"datacloud-dr/{name}"]
    assert any(e["reason"] == "DRRequirementMet" for e in cluster.events_for(core))
    assert wait_until(
        lambda: metric(operator["metrics"], "datacloud_zone_dr_protected", zone=core) == 1.0, 30
    )

    # General: a replica living in the zone's namespace counts without a label; a remote schedule suffices.
    cluster.must_apply(
        replica("catalogue", f"{general}-a", prod, [target("remote", remote, "Scheduled")], None)
    )
    wait_until(lambda: dr(cluster, general)[0] == "True", 60, what="general DR protected")

    # Removing the replica takes the protection away again.
    cluster.kubectl("delete", "drreplica", name, "-n", "datacloud-dr")
    wait_until(lambda: dr(cluster, core)[1] == "NoDRReplicas", 60, what="no replicas")
    assert wait_until(
        lambda: metric(operator["metrics"], "datacloud_zone_dr_protected", zone=core) == 0.0, 30
    )

    for z in (core, general):
        delete_zone(cluster, z)
    for c in (prod, same, remote):
        cluster.kubectl("delete", "datacentre", c, "--wait=false")
