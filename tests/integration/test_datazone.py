"""DataZone against the real API server, controller manager and operator: children, drift, updates, delete."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datacloud.adapters.kube import NotFound
from datacloud.api.admission import FINALIZER
from tests.support.cluster import Cluster, wait_until
from tests.support.metrics import metric
from tests.support.zones import G, cond, delete_zone, read, ready, status, uid, zone

pytestmark = pytest.mark.integration


def netpol(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    return read(cluster, "NetworkPolicy", name, ns, "networking.k8s.io/v1")


def rolebinding(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    return read(cluster, "RoleBinding", name, ns, "rbac.authorization.k8s.io/v1")


def can(cluster: Cluster, group: str, verb: str, resource: str, ns: str) -> bool:
    out = cluster.kubectl(
        "auth", "can-i", verb, resource, "-n", ns, "--as", f"user-{group}", "--as-group", group
    )
    return out.stdout.strip() == "yes"


def test_core_zone_children_are_created_and_enforced(cluster: Cluster, operator: dict[str, Any]) -> None:
    z, peer = f"dz-core-{uid()}", f"dz-peer-{uid()}"
    a, b = f"{z}-a", f"{z}-b"
    cluster.must_apply(zone(peer, [f"{peer}-ns"], "General"))
    cluster.must_apply(
        zone(
            z,
            [a, b],
            quota={"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "10"}},
            limits={
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "default": {"cpu": "1", "memory": "1Gi"},
            },
            network={"allowFrom": [peer], "egress": [{"cidr": "10.20.0.0/16", "ports": [443]}]},
            access={"admins": [f"{z}-admins"], "viewers": [f"{z}-audit"]},
        )
    )
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")

    for ns in (a, b):
        labels = read(cluster, "Namespace", ns)["metadata"]["labels"]  # type: ignore[index]
        assert labels[f"{G}/zone"] == z
        assert labels[f"{G}/department"] == "FJ-WJW"
        assert labels[f"{G}/classification"] == "Core"
        assert labels[f"{G}/managed-by"] == "datacloud"
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        limits = read(cluster, "LimitRange", "datacloud-zone-limits", ns)["spec"]["limits"][0]  # type: ignore[index]
        assert limits["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}
        deny = netpol(cluster, ns, "datacloud-default-deny")["spec"]  # type: ignore[index]
        assert deny["policyTypes"] == ["Ingress", "Egress"]
        assert not deny.get("ingress")
        assert not deny.get("egress")
        allow = netpol(cluster, ns, "datacloud-allow")["spec"]  # type: ignore[index]
        peers = [
            rule["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] for rule in allow["ingress"]
        ]
        assert peers == [[z], [peer]]
        cidrs = [t["ipBlock"]["cidr"] for rule in allow["egress"] for t in rule["to"] if "ipBlock" in t]
        assert cidrs == ["10.20.0.0/16"]
        assert any(
            p["port"] == 53 and p["protocol"] == "UDP"
            for rule in allow["egress"]
            for p in rule.get("ports", [])
        )
        admin = rolebinding(cluster, ns, "datacloud-zone-admin")
        assert admin
        assert admin["roleRef"]["name"] == "datacloud-zone-admin"
        assert [s["name"] for s in admin["subjects"]] == [f"{z}-admins"]
        assert rolebinding(cluster, ns, "datacloud-zone-editor") is None  # no editor groups, no binding

    # The ResourceQuotas split the zone limit: their hard limits sum to the zone's.
    hards = [read(cluster, "ResourceQuota", "datacloud-zone-quota", ns)["spec"]["hard"] for ns in (a, b)]  # type: ignore[index]
    assert sorted(int(h["pods"]) for h in hards) == [5, 5]
    assert sum(float(h["requests.cpu"]) for h in hards) == 4.0

    # The aggregated ClusterRoles really grant what they say (filled by the controller manager).
    wait_until(lambda: can(cluster, f"{z}-audit", "list", "pods", a), 60, what="viewer can list pods")
    assert can(cluster, f"{z}-audit", "list", "drreplicas", a)
    assert not can(cluster, f"{z}-audit", "create", "pods", a)
    assert not can(cluster, f"{z}-audit", "list", "pods", "default")
    wait_until(lambda: can(cluster, f"{z}-admins", "create", "drreplicas", b), 60, what="admin can create")
    assert can(cluster, f"{z}-admins", "create", "pods", b)

    # Pod Security is enforced by the real admission plugin.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": a},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    refused = cluster.apply(pod)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr

    s = status(cluster, z)
    assert s["phase"] == "Ready"
    assert s["namespaces"] == sorted([a, b])
    assert s["profile"] == {
        "podSecurity": "restricted",
        "defaultDeny": ["Ingress", "Egress"],
        "drRequirement": (
            "a Continuous target on a SameCityDR centre and a Scheduled target on a RemoteDR centre"
        ),
    }
    assert s["quota"]["hard"] == {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"}
    wait_until(
        lambda: status(cluster, z)["quota"].get("used", {}).get("pods") == "0", 60, what="usage from quota"
    )
    for type_ in ("Isolated", "QuotaEnforced", "AccessSynced", "NamespacesSynced"):
        assert cond(cluster, z, type_)["status"] == "True", type_
    assert (cond(cluster, z, "DRProtected")["status"], cond(cluster, z, "DRProtected")["reason"]) == (
        "False",
        "NoDRReplicas",
    )
    assert wait_until(lambda: metric(operator["metrics"], "datacloud_zone_ready", zone=z) == 1.0, 30)
    assert (
        metric(operator["metrics"], "datacloud_zone_quota_hard", zone=z, resource="requests.memory")
        == 8 * 2**30
    )

    delete_zone(cluster, z)
    delete_zone(cluster, peer)


def test_drift_is_repaired(cluster: Cluster, operator: dict[str, Any]) -> None:
    z = f"dz-drift-{uid()}"
    ns = f"{z}-a"
    cluster.must_apply(zone(z, [ns], quota={"hard": {"pods": "7"}}, access={"editors": ["fj-editors"]}))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")

    cluster.must("delete", "networkpolicy", "datacloud-default-deny", "-n", ns)
    cluster.must("delete", "rolebinding", "datacloud-zone-editor", "-n", ns)
    cluster.must(
        "patch",
        "resourcequota",
        "datacloud-zone-quota",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"hard": {"pods": "1000", "secrets": "3"}}}),
    )
    cluster.must("label", "namespace", ns, "--overwrite", "pod-security.kubernetes.io/enforce=privileged")
    cluster.must(
        "patch",
        "networkpolicy",
        "datacloud-allow",
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"ingress": [{}]}}),
    )  # allow everything in

    def repaired() -> bool:
        deny, allow = netpol(cluster, ns, "datacloud-default-deny"), netpol(cluster, ns, "datacloud-allow")
        quota = read(cluster, "ResourceQuota", "datacloud-zone-quota", ns)
        labels = read(cluster, "Namespace", ns)["metadata"]["labels"]  # type: ignore[index]
        return bool(
            deny
            and allow
            and allow["spec"]["ingress"][0].get("from")
            and rolebinding(cluster, ns, "datacloud-zone-editor")
            and quota
            and quota["spec"]["hard"] == {"pods": "7"}
            and labels["pod-security.kubernetes.io/enforce"] == "restricted"
        )

    wait_until(repaired, 60, what="children restored")
    assert any(e["reason"] == "DriftRepaired" for e in cluster.events_for(z))

    # A deleted namespace comes back once the controller manager has finished deleting it.
    old_uid = read(cluster, "Namespace", ns)["metadata"]["uid"]  # type: ignore[index]
    cluster.must("delete", "namespace", ns, "--wait=false")

    def recreated() -> bool:
        now = read(cluster, "Namespace", ns)
        return bool(
            now and now["metadata"]["uid"] != old_uid and netpol(cluster, ns, "datacloud-default-deny")
        )

    wait_until(recreated, 120, what="namespace recreated with its children")
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready again")
    delete_zone(cluster, z)


def test_zone_quota_holds_across_namespaces(cluster: Cluster, operator: dict[str, Any]) -> None:
    """Pods count against the zone's limit whichever namespace they land in, and headroom follows usage."""
    z = f"dz-quota-{uid()}"
    a, b = f"{z}-a", f"{z}-b"
    cluster.must_apply(zone(z, [a, b], "General", quota={"hard": {"pods": "6"}}))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")

    def pod(ns: str, i: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }

    def hard_sum() -> int:
        return sum(
            int(read(cluster, "ResourceQuota", "datacloud-zone-quota", n)["spec"]["hard"]["pods"])
            for n in (a, b)
        )  # type: ignore[index]

    created = {a: 0, b: 0}
    for i in range(10):  # namespace a keeps asking; the zone moves room to it as it fills
        if cluster.apply(pod(a, i)).returncode == 0:
            created[a] += 1
        assert hard_sum() == 6
        wait_until(
            lambda: status(cluster, z)["quota"]["used"].get("pods") == str(created[a]), 30, what="usage"
        )
        wait_until(
            lambda: cond(cluster, z, "QuotaEnforced").get("reason") == "QuotaInPlace", 30, what="settled"
        )
    # Equal split would have stopped a at 3; following usage it got room from b, never more than the zone's.
    assert created[a] == 5, created
    assert cluster.apply(pod(b, 0)).returncode == 0  # b always keeps a share of the headroom
    assert cluster.apply(pod(b, 1)).returncode != 0
    assert cluster.apply(pod(a, 99)).returncode != 0
    wait_until(lambda: status(cluster, z)["quota"]["used"].get("pods") == "6", 30, what="usage 6")
    assert hard_sum() == 6

    # Lowering the zone limit below usage: nothing more anywhere, and the zone says so.
    cluster.must_apply(zone(z, [a, b], "General", quota={"hard": {"pods": "4"}}))
    wait_until(lambda: cond(cluster, z, "QuotaEnforced").get("reason") == "OverQuota", 30, what="OverQuota")
    assert hard_sum() == 4
    assert cluster.apply(pod(b, 2)).returncode != 0
    delete_zone(cluster, z)


def test_classification_change_tightens_and_loosens_in_place(
    cluster: Cluster, operator: dict[str, Any]
) -> None:
    z = f"dz-class-{uid()}"
    ns = f"{z}-a"
    cluster.must_apply(zone(z, [ns], "General"))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")
    uid_before = read(cluster, "Namespace", ns)["metadata"]["uid"]  # type: ignore[index]
    assert netpol(cluster, ns, "datacloud-default-deny")["spec"]["policyTypes"] == ["Ingress"]  # type: ignore[index]

    cluster.must_apply(zone(z, [ns], "Core"))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready as Core")
    labels = read(cluster, "Namespace", ns)["metadata"]["labels"]  # type: ignore[index]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels[f"{G}/classification"] == "Core"
    assert netpol(cluster, ns, "datacloud-default-deny")["spec"]["policyTypes"] == ["Ingress", "Egress"]  # type: ignore[index]
    assert status(cluster, z)["profile"]["podSecurity"] == "restricted"

    cluster.must_apply(zone(z, [ns], "General"))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready as General")
    labels = read(cluster, "Namespace", ns)["metadata"]["labels"]  # type: ignore[index]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    allow = netpol(cluster, ns, "datacloud-allow")["spec"]  # type: ignore[index]
    assert allow["policyTypes"] == ["Ingress"]
    assert "egress" not in allow
    assert read(cluster, "Namespace", ns)["metadata"]["uid"] == uid_before  # type: ignore[index]
    delete_zone(cluster, z)


def test_removed_namespace_is_kept_while_it_holds_data(cluster: Cluster, operator: dict[str, Any]) -> None:
    z = f"dz-rm-{uid()}"
    a, b = f"{z}-a", f"{z}-b"
    cluster.must_apply(zone(z, [a, b], "General", quota={"hard": {"pods": "4"}}))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")
    cluster.must_apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "records", "namespace": b},
            "data": {"k": "v"},
        }
    )

    cluster.must_apply(zone(z, [a], "General", quota={"hard": {"pods": "4"}}))
    wait_until(lambda: status(cluster, z).get("retained"), 60, what="b retained")
    s = status(cluster, z)
    assert s["retained"][0]["namespace"] == b
    assert "1 ConfigMap" in s["retained"][0]["message"]
    synced = cond(cluster, z, "NamespacesSynced")
    assert (synced["status"], synced["reason"]) == ("False", "NamespaceRetained")
    assert b in synced["message"]
    assert read(cluster, "ConfigMap", "records", b) is not None
    # Still governed while it is kept: it keeps a share of the zone quota.
    assert read(cluster, "ResourceQuota", "datacloud-zone-quota", b) is not None

    cluster.must("delete", "configmap", "records", "-n", b)
    wait_until(lambda: read(cluster, "Namespace", b) is None, 120, what="b deleted once empty")
    wait_until(lambda: ready(cluster, z) and status(cluster, z)["namespaces"] == [a], 60, what="zone Ready")
    assert int(read(cluster, "ResourceQuota", "datacloud-zone-quota", a)["spec"]["hard"]["pods"]) == 4  # type: ignore[index]
    delete_zone(cluster, z)


def test_delete_removes_namespaces(cluster: Cluster, operator: dict[str, Any]) -> None:
    z = f"dz-del-{uid()}"
    a, b = f"{z}-a", f"{z}-b"
    cluster.must_apply(zone(z, [a, b], "Important", access={"viewers": ["fj-audit"]}))
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")
    cluster.must_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": a}})
    assert cluster.kubectl("delete", "datazone", z, "--timeout=150s").returncode == 0
    assert read(cluster, "Namespace", a) is None
    assert read(cluster, "Namespace", b) is None
    with pytest.raises(NotFound):
        cluster.get("datazones", z)
    assert wait_until(lambda: metric(operator["metrics"], "datacloud_zone_ready", zone=z) is None, 30)


def finalizer_writers(obj: dict[str, Any]) -> list[str]:
    """Field managers that wrote metadata.finalizers (what admission adds at creation is nobody's write)."""
    return [
        m["manager"]
        for m in obj["metadata"].get("managedFields") or []
        if "f:finalizers" in (m.get("fieldsV1") or {}).get("f:metadata", {})
    ]


def test_zone_is_created_with_the_finalizer_and_kopf_restores_a_removed_one(
    cluster: Cluster, operator: dict[str, Any]
) -> None:
    z = f"dz-fin-{uid()}"
    create = cluster.kube.custom.create_cluster_custom_object
    # The policy appends to finalizers a user set, and adds none twice (dry runs: nothing to clean up).
    held = {**zone(z, [f"{z}-a"]), "metadata": {"name": z, "finalizers": ["example.org/hold"]}}
    assert create(G, "v1alpha1", "datazones", held, dry_run="All")["metadata"]["finalizers"] == [
        "example.org/hold",
        FINALIZER,
    ]
    ours = {**zone(z, [f"{z}-a"]), "metadata": {"name": z, "finalizers": [FINALIZER]}}
    assert create(G, "v1alpha1", "datazones", ours, dry_run="All")["metadata"]["finalizers"] == [FINALIZER]

    created = create(G, "v1alpha1", "datazones", zone(z, [f"{z}-a"]))
    assert created["metadata"]["finalizers"] == [FINALIZER]
    wait_until(lambda: ready(cluster, z), 60, what="zone Ready")
    assert finalizer_writers(cluster.get("datazones", z)) == []  # the operator never patched it in

    # Where the policy is absent (or failed), kopf adds the finalizer itself.
    removed = cluster.kubectl(
        "patch", "datazone", z, "--type=json", "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]'
    )
    assert removed.returncode == 0, removed.stderr
    wait_until(
        lambda: cluster.get("datazones", z)["metadata"].get("finalizers") == [FINALIZER],
        30,
        what="finalizer restored by kopf",
    )
    assert finalizer_writers(cluster.get("datazones", z)) != []
    delete_zone(cluster, z)
