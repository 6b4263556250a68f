"""The provincial baseline: each built-in check on facts, scoring, and profiles from ConfigMaps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from datacloud.census.baseline import (
    CENTRE_LABEL,
    CITY_LABEL,
    DEFAULT_PROFILE,
    PSA_ENFORCE,
    ZONE_LABEL,
    BaselineFacts,
    NetworkPolicyFacts,
    ProfileError,
    choose_profile,
    evaluate,
    parse_profile,
)

DENY = NetworkPolicyFacts("default-deny", True, ("Ingress",), 0, 0)


def good() -> BaselineFacts:
    """A city that passes every check of the built-in profile."""
    enforced = {PSA_ENFORCE: "restricted"}
    return BaselineFacts(
        city_code="350200",
        kubernetes_version="v1.34.4",
        namespaces={"kube-system": {}, "default": enforced, "monitoring": {PSA_ENFORCE: "baseline"},
                    "zone-a": {**enforced, ZONE_LABEL: "a"}},
        network_policies={"zone-a": [DENY]},
        config_keys={"monitoring": {"prometheus.yml"}},
        node_labels=[{CITY_LABEL: "350200", CENTRE_LABEL: "xm-1"}] * 3,
    )  # fmt: skip


def failed_ids(facts: BaselineFacts) -> list[str]:
    return [f.id for f in evaluate(DEFAULT_PROFILE, facts).failed]


def test_a_conforming_city_passes_everything() -> None:
    result = evaluate(DEFAULT_PROFILE, good())
    assert result.compliant
    assert result.score == 100
    assert len(result.findings) == 6


@pytest.mark.parametrize("version", ["v1.30.2", "v1.36.0", "garbage"])
def test_version_outside_the_range_fails(version: str) -> None:
    assert failed_ids(replace(good(), kubernetes_version=version)) == ["FJ-K8S-001"]


def test_workload_namespace_without_enforced_pod_security_fails() -> None:
    facts = good()
    facts.namespaces["payments"] = {PSA_ENFORCE: "privileged"}
    facts.namespaces["web"] = {"pod-security.kubernetes.io/warn": "restricted"}
    result = evaluate(DEFAULT_PROFILE, facts)
    assert [f.id for f in result.failed] == ["FJ-PSA-001"]
    assert "payments, web" in result.failed[0].message
    assert result.score == 83  # 5 of 6


def test_zone_namespace_needs_a_default_deny_policy() -> None:
    facts = good()
    facts.namespaces["zone-b"] = {PSA_ENFORCE: "restricted", ZONE_LABEL: "b"}
    facts.network_policies["zone-b"] = [
        NetworkPolicyFacts("allow-web", True, ("Ingress",), 1, 0),  # allows something: not a deny
        NetworkPolicyFacts("deny-some", False, ("Ingress",), 0, 0),  # selects only some pods
        NetworkPolicyFacts("deny-egress", True, ("Egress",), 0, 0),  # the wrong direction
    ]
    assert failed_ids(facts) == ["FJ-NET-001"]
    facts.network_policies["zone-b"].append(DENY)
    assert failed_ids(facts) == []


def test_monitoring_namespace_and_scrape_configuration() -> None:
    facts = good()
    del facts.namespaces["monitoring"]
    assert failed_ids(replace(facts, config_keys={})) == ["FJ-MON-001", "FJ-MON-002"]
    assert failed_ids(replace(good(), config_keys={"monitoring": {"other"}})) == ["FJ-MON-002"]
    assert failed_ids(replace(good(), config_keys={}, service_monitors=2)) == []


def test_nodes_must_carry_city_and_centre_labels_of_this_city() -> None:
    facts = replace(good(), node_labels=[{CITY_LABEL: "350200"}, {CITY_LABEL: "350100", CENTRE_LABEL: "x"}])
    result = evaluate(DEFAULT_PROFILE, facts)
    assert [f.id for f in result.failed] == ["FJ-NODE-001"]
    assert "1 of 2 node(s) lack" in result.failed[0].message
    assert "other than 350200" in result.failed[0].message


PROFILE = """
profile: fujian-provincial
version: v2
checks:
  - id: FJ-K8S-001
    check: kubernetes-version
    severity: critical
    description: Newer versions only.
    params: {min: "1.35", max: "1.36"}
  - id: FJ-MON-001
    check: monitoring-namespace
    severity: low
    params: {namespace: observability}
"""


def test_a_configmap_profile_replaces_the_built_in_one() -> None:
    profile = choose_profile("fujian-provincial", "v2", PROFILE)
    assert [c.id for c in profile.checks] == ["FJ-K8S-001", "FJ-MON-001"]
    assert profile.monitoring_namespaces() == {"observability"}
    result = evaluate(profile, good())
    assert [(f.id, f.severity) for f in result.failed] == [("FJ-K8S-001", "critical"), ("FJ-MON-001", "low")]
    assert result.score == 0


def test_the_requested_version_must_exist() -> None:
    with pytest.raises(ProfileError, match="built-in profile is fujian-provincial v1, not the requested"):
        choose_profile("fujian-provincial", "v2", None)
    with pytest.raises(ProfileError, match="ConfigMap is fujian-provincial v2"):
        choose_profile("fujian-provincial", "v1", PROFILE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checks: [", "not valid YAML"),
        ("- a list", "must be a mapping"),
        ("profile: p\nversion: 1\nchecks: []", "version: must look like v1"),
        ("profile: p\nversion: v1\nchecks: []", "checks: a non-empty list"),
        ("profile: p\nversion: v1\nchecks: [{id: X, check: rm-rf, severity: low}]", "not one of"),
        ("profile: p\nversion: v1\nchecks: [{id: X, check: node-labels, severity: urgent}]", "severity"),
        ("profile: p\nversion: v1\nchecks: [{check: node-labels, severity: low}]", r"checks\[0\]\.id"),
        (
            "profile: p\nversion: v1\nchecks: [{id: X, check: node-labels, severity: low, params: [1]}]",
            "params",
        ),
        (
            "profile: p\nversion: v1\nchecks: [{id: X, check: node-labels, severity: low},"
            " {id: X, check: scrape-config, severity: low}]",
            "appears twice",
        ),
    ],
)
def test_malformed_profiles_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile(text)
