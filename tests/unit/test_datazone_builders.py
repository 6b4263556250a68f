"""Pure renderers of a zone's children, its profile and drift comparison."""

from __future__ import annotations

from typing import Any

from datacloud.api.datazone import DataZoneSpec
from datacloud.builders import datazone as build
from datacloud.builders.datazone_compare import foreign_hard_keys, in_line
from datacloud.builders.datazone_profile import ReplicaTargets, dr_gaps, profile_for

G = "datacloud.fujian.gov.cn"


def spec(**extra: Any) -> DataZoneSpec:
    return DataZoneSpec.model_validate(
        {
            "department": {"name": "省大数据管理局", "code": "FJ-DSJ"},
            "classification": "Core",
            "namespaces": ["a"],
            **extra,
        }
    )


def test_profiles() -> None:
    core = profile_for("Core")
    assert (core.pod_security, core.default_deny) == ("restricted", ("Ingress", "Egress"))
    assert core.dr_needs == (("Continuous", "SameCityDR"), ("Scheduled", "RemoteDR"))
    general = profile_for("General")
    assert (general.pod_security, general.default_deny, general.dr_needs) == (
        "baseline",
        ("Ingress",),
        (("Scheduled", "RemoteDR"),),
    )
    assert profile_for("General", egress_rules=1).default_deny == ("Ingress", "Egress")


def test_namespace_labels() -> None:
    ns = build.namespace("health", "zone-health", spec(), profile_for("Core"))
    labels = ns["metadata"]["labels"]
    assert labels[f"{G}/zone"] == "health"
    assert labels[f"{G}/department"] == "FJ-DSJ"
    assert labels[f"{G}/classification"] == "Core"
    assert labels[f"{G}/managed-by"] == "datacloud"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["annotations"][f"{G}/department-name"] == "省大数据管理局"
    assert "ownerReferences" not in ns["metadata"]


def test_network_policies_core_and_general() -> None:
    s = spec(
        network={"allowFrom": ["open-data", "health"], "egress": [{"cidr": "10.20.0.1/16", "ports": [443]}]}
    )
    deny, allow = build.network_policies("health", "a", s, profile_for("Core", 1))
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    zones = [
        r["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] for r in allow["spec"]["ingress"]
    ]
    assert zones == [["health"], ["open-data"]]  # a zone listing itself adds nothing
    egress = allow["spec"]["egress"]
    assert egress[-1] == {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert any(p["port"] == 53 for r in egress for p in r.get("ports", []))
    general = spec(classification="General")
    deny, allow = build.network_policies("g", "a", general, profile_for("General"))
    assert deny["spec"]["policyTypes"] == ["Ingress"]
    assert "egress" not in allow["spec"]
    assert allow["spec"]["policyTypes"] == ["Ingress"]


def test_children_skip_what_the_spec_leaves_empty() -> None:
    s = spec(access={"viewers": ["fj-audit", "fj-audit-2"]})
    kids = build.children("z", "a", s, profile_for("Core"), {})
    assert [(k["kind"], k["metadata"]["name"]) for k in kids] == [
        ("NetworkPolicy", "datacloud-default-deny"),
        ("NetworkPolicy", "datacloud-allow"),
        ("RoleBinding", "datacloud-zone-viewer"),
    ]
    kids = build.children(
        "z", "a", spec(limits={"default": {"cpu": "1"}}), profile_for("Core"), {"pods": "3"}
    )
    assert kids[0]["spec"] == {"hard": {"pods": "3"}}
    assert kids[1]["spec"]["limits"] == [{"type": "Container", "default": {"cpu": "1"}}]


def test_cluster_roles_aggregate_builtin_and_project_rules() -> None:
    roles = {r["metadata"]["name"]: r for r in build.cluster_roles()}
    assert set(roles) == {
        "datacloud-zone-admin",
        "datacloud-zone-editor",
        "datacloud-zone-viewer",
        "datacloud-zone-drreplicas-read",
        "datacloud-zone-drreplicas-write",
    }
    selectors = roles["datacloud-zone-viewer"]["aggregationRule"]["clusterRoleSelectors"]
    assert {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}} in selectors
    read_labels = roles["datacloud-zone-drreplicas-read"]["metadata"]["labels"]
    assert all(read_labels[f"{G}/aggregate-to-zone-{r}"] == "true" for r in ("admin", "editor", "viewer"))
    assert (
        f"{G}/aggregate-to-zone-viewer" not in roles["datacloud-zone-drreplicas-write"]["metadata"]["labels"]
    )


def test_in_line_ignores_server_defaults_but_not_edits() -> None:
    _, allow = build.network_policies("z", "a", spec(), profile_for("Core"))
    observed = {
        **allow,
        "metadata": {**allow["metadata"], "uid": "u", "labels": {**allow["metadata"]["labels"], "x": "y"}},
    }
    observed["spec"] = {**allow["spec"], "egress": [dict(r) for r in allow["spec"]["egress"]]}
    assert in_line(allow, observed)
    observed["spec"]["ingress"] = [{}]
    assert not in_line(allow, observed)
    assert not in_line(allow, None)
    quota = build.resource_quota("z", "a", {"requests.cpu": "1000m", "pods": "3"})
    assert in_line(quota, {**quota, "spec": {"hard": {"requests.cpu": "1", "pods": "3"}}})
    edited = {**quota, "spec": {"hard": {"requests.cpu": "1", "pods": "3", "secrets": "1"}}}
    assert not in_line(quota, edited)
    assert foreign_hard_keys(quota, edited) == ["secrets"]


def test_dr_gaps() -> None:
    roles = {"same": "SameCityDR", "remote": "RemoteDR"}
    ok = ReplicaTargets("dr/a", (("Continuous", "same"), ("Scheduled", "remote")))
    remote_only = ReplicaTargets("dr/b", (("Scheduled", "remote"),))
    unknown = ReplicaTargets("dr/c", (("Continuous", "nowhere"), ("Scheduled", "remote")))
    gaps = dr_gaps(profile_for("Important"), [ok, remote_only, unknown], roles)
    assert gaps["dr/a"] == []
    assert gaps["dr/b"] == ["a Continuous target on a SameCityDR centre"]
    assert "centre nowhere not found" in gaps["dr/c"][0]
    assert dr_gaps(profile_for("General"), [remote_only], roles) == {"dr/b": []}
