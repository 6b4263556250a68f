"""DataZone bad input: what the schema can catch is refused by the API server; the rest becomes a condition
with a reason and an Event, and nothing that is not the zone's is touched."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from datacloud.reconcile import datazone
from tests.support.cluster import Cluster, wait_until
from tests.support.zones import G, cond, delete_zone, read, ready, status, uid, zone

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"quota": {"hard": {"requests.cpu": "4 cores"}}}, "spec.quota.hard[requests.cpu]"),
        ({"quota": {"hard": {"requests.memory": "1.5.3Gi"}}}, "must be a non-negative quantity"),
        ({"limits": {"default": {"cpu": "-1"}}}, "spec.limits.default[cpu]"),
        (
            {"access": {"admins": ["system:masters"]}},
            "must not be a system: group other than system:authenticated",
        ),
        ({"access": {"viewers": ["system:unauthenticated"]}}, "spec.access.viewers[0]"),
        ({"access": {"editors": [" fj-editors"]}}, "must not begin or end with a space"),
        ({"access": {"editors": ["fj\teditors"]}}, "spec.access.editors[0]"),
        ({"access": {"editors": ["fj\u202eeditors"]}}, "spec.access.editors[0]"),
        # A whole number may go unquoted (as in a ResourceQuota); a negative one, a boolean, a bare
        # fraction may not.
        ({"quota": {"hard": {"pods": -1}}}, "spec.quota.hard[pods]"),
        ({"quota": {"hard": {"pods": True}}}, "spec.quota.hard.pods"),
        ({"quota": {"hard": {"requests.cpu": 0.5}}}, "spec.quota.hard.requests.cpu"),
        ({"access": {"admins": ["a", "a"]}}, "Duplicate value"),
        ({"network": {"egress": [{"cidr": "not-a-cidr"}]}}, "must be a CIDR block"),
        ({"network": {"egress": [{"cidr": "10.0.0.0/8", "ports": [0]}]}}, "spec.network.egress[0].ports[0]"),
        ({"network": {"allowFrom": ["Bad_Zone"]}}, "spec.network.allowFrom[0]"),
        ({"network": {"allowFrom": ["z" * 64]}}, "spec.network.allowFrom[0]"),
        ({"namespaces": ["a", "a"]}, "Duplicate value"),
        # Exponents the API server cannot finish a request with (it times out on 1e999999999).
        ({"quota": {"hard": {"pods": "1e999999999"}}}, "exponent of at most two digits"),
        ({"limits": {"max": {"memory": "0.1e-100"}}}, "spec.limits.max[memory]"),
        # Names a ResourceQuota or LimitRange would refuse, and limits out of order, named with the field.
        (
            {"quota": {"hard": {"cpuz": "4"}}},
            'spec.quota.hard: Invalid value: "object": "cpuz" is not a quota',
        ),
        ({"quota": {"hard": {"request.cpu": "4"}}}, '"request.cpu" is not a quota resource'),
        ({"limits": {"default": {"pods": "1"}}}, 'spec.limits.default: Invalid value: "object": "pods"'),
        (
            {"limits": {"defaultRequest": {"cpu": "2"}, "default": {"cpu": "1"}}},
            'spec.limits: Invalid value: "object": defaultRequest[cpu] must not exceed default[cpu]',
        ),
        (
            {"limits": {"default": {"memory": "2Gi"}, "max": {"memory": "1Gi"}}},
            "default[memory] must not exceed",
        ),
        ({"limits": {"defaultRequest": {"cpu": "1e3"}, "max": {"cpu": 999}}}, "defaultRequest[cpu] must not"),
        (
            {"limits": {"defaultRequest": {"nvidia.com/gpu": "1"}, "default": {"nvidia.com/gpu": "2"}}},
            "defaultRequest[nvidia.com/gpu] must equal default (or max when default is not set)",
        ),
    ],
    ids=lambda v: str(v)[:60],
)
def test_schema_refuses_malformed_zone(cluster: Cluster, change: dict[str, Any], expect: str) -> None:
    doc = zone(f"dz-bad-{uid()}", ["dz-bad-ns"])
    doc["spec"].update(change)
    done = cluster.apply(doc)
    assert done.returncode != 0
    assert expect in done.stderr, done.stderr


def test_existing_namespace_is_not_taken_over(cluster: Cluster, operator: dict[str, Any]) -> None:
    z = f"dz-own-{uid()}"
    ns = f"{z}-theirs"
    cluster.must_apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"team": "x"}}}
    )
    mine = f"{z}-mine"
    cluster.must_apply(zone(z, [ns, mine], quota={"hard": {"pods": "5"}}, access={"editors": ["fj-editors"]}))
    wait_until(
        lambda: cond(cluster, z, "NamespacesSynced").get("reason") == "NamespaceExists", 60, what="conflict"
    )
    c = cond(cluster, z, "NamespacesSynced")
    assert c["status"] == "False"
    assert ns in c["message"]
    assert "not taken over" in c["message"]
    assert status(cluster, z)["conflicts"][0]["namespace"] == ns
    assert status(cluster, z)["phase"] == "Conflict"
    assert cond(cluster, z, "Ready")["status"] == "False"
    assert any(e["reason"] == "NamespaceExists" for e in cluster.events_for(z))
    # The zone's own namespace has every child (so the checks below would see them were they made)...
    wait_until(lambda: read(cluster, "ResourceQuota", "datacloud-zone-quota", mine), 60, what="quota in mine")
    assert read(cluster, "NetworkPolicy", "datacloud-default-deny", mine, "networking.k8s.io/v1")
    assert read(cluster, "RoleBinding", "datacloud-zone-editor", mine, "rbac.authorization.k8s.io/v1")
    assert "pod-security.kubernetes.io/enforce" in read(cluster, "Namespace", mine)["metadata"]["labels"]  # type: ignore[index]
    assert status(cluster, z)["namespaces"] == [mine]
    # ...and the existing one is untouched: its labels as they were, no policy, quota, limits or binding.
    labels = read(cluster, "Namespace", ns)["metadata"]["labels"]  # type: ignore[index]
    assert labels == {"team": "x", "kubernetes.io/metadata.name": ns}
    assert cluster.kube.read_all("networking.k8s.io/v1", "NetworkPolicy", ns) == []
    assert cluster.kube.read_all("v1", "ResourceQuota", ns) == []
    assert cluster.kube.read_all("v1", "LimitRange", ns) == []
    assert cluster.kube.read_all("rbac.authorization.k8s.io/v1", "RoleBinding", ns) == []

    # Deleting the zone deletes only what it owns.
    assert cluster.kubectl("delete", "datazone", z, "--timeout=120s").returncode == 0
    assert read(cluster, "Namespace", ns) is not None
    assert read(cluster, "Namespace", mine) is None
    cluster.must("delete", "namespace", ns, "--wait=false")


def test_namespace_listed_by_two_zones(cluster: Cluster, operator: dict[str, Any]) -> None:
    first, second = f"dz-first-{uid()}", f"dz-second-{uid()}"
    shared = f"{first}-shared"
    cluster.must_apply(zone(first, [shared]))
    wait_until(lambda: ready(cluster, first), 60, what="first Ready")
    cluster.must_apply(zone(second, [shared, f"{second}-own"], "General"))
    wait_until(
        lambda: cond(cluster, second, "NamespacesSynced").get("reason") == "OwnedByOtherZone",
        60,
        what="conflict",
    )
    msg = cond(cluster, second, "NamespacesSynced")["message"]
    assert shared in msg
    assert first in msg
    labels = read(cluster, "Namespace", shared)["metadata"]["labels"]  # type: ignore[index]
    assert labels[f"{G}/zone"] == first
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # still the first zone's profile
    assert ready(cluster, first)

    # Two zones created together for one new namespace: exactly one gets it, the other reports it.
    x, y = f"dz-race-{uid()}", f"dz-race-{uid()}"
    contested = f"{x}-contested"
    cluster.must_apply(zone(x, [contested]), zone(y, [contested]))

    def one_winner() -> bool:
        owners = [z for z in (x, y) if contested in (status(cluster, z).get("namespaces") or [])]
        losers = [z for z in (x, y) if cond(cluster, z, "NamespacesSynced").get("status") == "False"]
        return len(owners) == 1 and len(losers) == 1 and owners != losers

    wait_until(one_winner, 60, what="one owner, one conflict")
    owner = next(z for z in (x, y) if contested in (status(cluster, z).get("namespaces") or []))
    assert read(cluster, "Namespace", contested)["metadata"]["labels"][f"{G}/zone"] == owner  # type: ignore[index]
    for z in (first, second, x, y):
        delete_zone(cluster, z)


def test_reference_to_missing_zone(cluster: Cluster, operator: dict[str, Any]) -> None:
    z, missing = f"dz-ref-{uid()}", f"dz-later-{uid()}"
    cluster.must_apply(zone(z, [f"{z}-a"], network={"allowFrom": [missing]}))
    wait_until(
        lambda: cond(cluster, z, "Ready").get("reason") == "UnknownZoneReference", 60, what="unknown ref"
    )
    assert missing in cond(cluster, z, "Ready")["message"]
    assert cond(cluster, z, "Isolated")["status"] == "True"  # the zone itself is still isolated
    assert any(e["reason"] == "UnknownZoneReference" for e in cluster.events_for(z))
    # Once the zone exists, the reference resolves without touching the first zone.
    cluster.must_apply(zone(missing, [f"{missing}-a"], "General"))
    wait_until(lambda: ready(cluster, z), 60, what="Ready once the peer exists")
    delete_zone(cluster, z)
    delete_zone(cluster, missing)


ZONE_AS_WRITTEN = """
apiVersion: datacloud.fujian.gov.cn/v1alpha1
kind: DataZone
metadata: {name: NAME}
spec:
  department: {name: 福建省大数据管理局, code: FJ-DSJ}
  classification: General
  namespaces: [NAME-a]
  quota:
    hard: {pods: 10, requests.cpu: 4, requests.memory: 8Gi}
  limits:
    max: {cpu: 2}
  access:
    admins: [福建省大数据管理局-管理员]
    viewers: [Domain Users, system:authenticated]
"""


def test_zone_as_a_user_writes_it_unquoted_numbers_and_chinese_groups(
    cluster: Cluster, operator: dict[str, Any]
) -> None:
    """`pods: 10` unquoted, as a ResourceQuota takes it, and a department's group in Chinese, as RBAC
    takes any string: admitted, rendered into the quota and the bindings, the zone Ready."""
    z = f"dz-written-{uid()}"
    ns = f"{z}-a"
    done = cluster.kubectl("apply", "-f", "-", stdin=ZONE_AS_WRITTEN.replace("NAME", z))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: ready(cluster, z), 60, what="Ready")
    quota = read(cluster, "ResourceQuota", "datacloud-zone-quota", ns)
    assert quota is not None
    assert quota["spec"]["hard"] == {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"}
    limits = read(cluster, "LimitRange", "datacloud-zone-limits", ns)
    assert limits is not None
    assert limits["spec"]["limits"][0]["max"] == {"cpu": "2"}
    rbac = "rbac.authorization.k8s.io/v1"
    admin = read(cluster, "RoleBinding", "datacloud-zone-admin", ns, rbac)
    viewer = read(cluster, "RoleBinding", "datacloud-zone-viewer", ns, rbac)
    assert admin is not None
    assert viewer is not None
    assert [s["name"] for s in admin["subjects"]] == ["福建省大数据管理局-管理员"]
    assert [s["name"] for s in viewer["subjects"]] == ["Domain Users", "system:authenticated"]
    assert status(cluster, z)["quota"]["hard"]["pods"] == "10"
    # The group's rights are real: the API server's authorizer grants a member of it what the role gives.
    can = cluster.kubectl("auth", "can-i", "create", "deployments", "-n", ns, "--as", "u",
                          "--as-group", "福建省大数据管理局-管理员")  # fmt: skip
    assert can.stdout.strip() == "yes", can.stdout + can.stderr
    delete_zone(cluster, z)


def test_values_the_api_server_refuses_become_conditions(cluster: Cluster, operator: dict[str, Any]) -> None:
    """Qualified resource names are left to the API server's own grammar (the schema judges names without
    a `/` only): the ResourceQuota/LimitRange validation refuses them, the zone says which and why, and the
    rest of the zone is still kept."""
    z = f"dz-refused-{uid()}"
    ns = f"{z}-a"
    cluster.must_apply(zone(z, [ns], quota={"hard": {"a/b/c": "4"}}, limits={"default": {"x/y/z": "1"}}))
    wait_until(
        lambda: cond(cluster, z, "QuotaEnforced").get("status") == "False", 60, what="QuotaEnforced False"
    )
    c = cond(cluster, z, "QuotaEnforced")
    assert c["reason"] in ("ResourceQuotaRejected", "LimitRangeRejected")
    assert "a/b/c" in c["message"]
    assert "LimitRange" in c["message"]
    assert cond(cluster, z, "Ready")["status"] == "False"
    assert cond(cluster, z, "Isolated")["status"] == "True"
    assert read(cluster, "NetworkPolicy", "datacloud-default-deny", ns, "networking.k8s.io/v1")
    # Fixing the spec clears it.
    cluster.must_apply(zone(z, [ns], quota={"hard": {"cpu": "4"}}, limits={"default": {"cpu": "1"}}))
    wait_until(lambda: ready(cluster, z), 60, what="Ready after the fix")
    delete_zone(cluster, z)


def refuse_namespace(cluster: Cluster, policy: str, operation: str, expression: str, message: str) -> None:
    """A ValidatingAdmissionPolicy (and its binding) refusing the namespace `operation` where `expression`
    is false, with `message`; the caller deletes both when done."""
    vap = "admissionregistration.k8s.io/v1"
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": [operation], "resources": ["namespaces"]}
    cluster.must_apply(
        {
            "apiVersion": vap,
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [rule]},
                "validations": [{"expression": expression, "message": message}],
            },
        },
        {
            "apiVersion": vap,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": ["Deny"]},
        },
    )


def test_namespace_the_api_server_refuses_to_create_becomes_a_condition(
    cluster: Cluster, operator: dict[str, Any]
) -> None:
    """An admission policy refusing one listed namespace: the zone says so (NamespaceRejected, the policy's
    message quoted), keeps its other namespace, and takes the refused one once the policy is gone."""
    z = f"dz-vap-{uid()}"
    refused, fine = f"{z}-refused", f"{z}-fine"
    policy = f"deny-{z}"
    refuse_namespace(cluster, policy, "CREATE", f"object.metadata.name != '{refused}'", "refused by the test")
    # The policy takes effect once the API server has loaded it.
    probe = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": refused}})
    wait_until(
        lambda: cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=probe).returncode != 0,
        30,
        what="the policy in force",
    )
    try:
        cluster.must_apply(zone(z, [refused, fine], "General"))
        wait_until(
            lambda: cond(cluster, z, "NamespacesSynced").get("reason") == "NamespaceRejected",
            60,
            what="NamespaceRejected",
        )
        c = cond(cluster, z, "NamespacesSynced")
        assert c["status"] == "False"
        assert refused in c["message"]
        assert "refused by the test" in c["message"]
        assert cond(cluster, z, "Ready")["status"] == "False"
        assert status(cluster, z)["namespaces"] == [fine]
        assert any(e["reason"] == "NamespaceRejected" for e in cluster.events_for(z))
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy)
    wait_until(lambda: ready(cluster, z), 90, what="Ready once the policy is gone")
    assert status(cluster, z)["namespaces"] == sorted([fine, refused])
    delete_zone(cluster, z)


def test_a_zone_name_too_long_for_a_label_is_deleted_without_a_selector(cluster: Cluster) -> None:
    """A zone admitted before the name rule (64+ characters) labels nothing; deleting it must not ask the API
    server for a label selector it refuses (that kept the finalizer forever), and still deletes the
    namespaces its status records."""
    name = "z" * 64
    ns = f"dz-long-{uid()}"
    cluster.must_apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    assert datazone.owned_namespaces(cluster.kube, name, [ns]) == [ns]
    datazone.delete_zone(cluster.kube, name, [ns])
    wait_until(lambda: read(cluster, "Namespace", ns) is None, 60, what="namespace gone")


def test_an_api_error_that_stops_a_reconcile_is_an_event(cluster: Cluster, operator: dict[str, Any]) -> None:
    """A namespace the zone releases (no longer listed, empty) whose deletion an admission policy refuses:
    the reconcile stops on the 403, which only the operator log said; now a Warning ReconcileFailed Event
    on the zone quotes the server, and the zone goes on once the policy is gone."""
    z = f"dz-stop-{uid()}"
    keep, release = f"{z}-keep", f"{z}-release"
    cluster.must_apply(zone(z, [keep, release], "General"))
    wait_until(lambda: ready(cluster, z), 60, what="Ready")
    policy = f"nodelete-{z}"
    refuse_namespace(cluster, policy, "DELETE", f"oldObject.metadata.name != '{release}'", "kept by the test")
    wait_until(
        lambda: cluster.kubectl("delete", "namespace", release, "--dry-run=server").returncode != 0,
        30,
        what="the policy in force",
    )
    try:
        cluster.must_apply(zone(z, [keep], "General"))
        events = wait_until(
            lambda: [e for e in cluster.events_for(z) if e["reason"] == "ReconcileFailed"], 60, what="Event"
        )
        assert events[0]["type"] == "Warning"
        assert "kept by the test" in events[0]["message"]
        assert read(cluster, "Namespace", release) is not None
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy)
    wait_until(lambda: read(cluster, "Namespace", release) is None, 120, what="released once allowed")
    delete_zone(cluster, z)
