"""A baseline profile from a ConfigMap is YAML a person writes: whatever its check parameters hold, the
profile is either refused with the parameter named (BaselineCompliant Unknown/ProfileInvalid) or
evaluates without raising (a raise stopped the city's heartbeat: no status at all)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from datacloud.census.baseline import (
    CHECKS,
    BaselineFacts,
    NetworkPolicyFacts,
    ProfileError,
    evaluate,
    parse_profile,
)

FACTS = BaselineFacts(
    city_code="350100",
    kubernetes_version="v1.34.2",
    namespaces={"kube-system": {}, "zone-a": {"datacloud.fujian.gov.cn/zone": "a"}, "monitoring": {}},
    network_policies={"zone-a": [NetworkPolicyFacts("deny", True, ("Ingress",), 0, 0)]},
    config_keys={"monitoring": {"prometheus.yml"}},
    node_labels=[{"datacloud.fujian.gov.cn/city": "350100", "datacloud.fujian.gov.cn/centre": "fz"}],
)


def profile(kind: str, params: Any) -> str:
    check = {"id": "X-1", "check": kind, "severity": "high", "params": params}
    return yaml.safe_dump({"profile": "p", "version": "v1", "checks": [check]}, allow_unicode=True)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("profile: p\nversion: v1\nchecks: [{id: K, check: kubernetes-version, severity: high, "
         "params: {min: 1.30, max: '1.35'}}]", 'checks[0].params.min: must be a quoted version'),
        ("profile: p\nversion: v1\nchecks: [{id: P, check: pod-security-enforced, severity: high, "
         "params: {exclude: kube-system}}]", "checks[0].params.exclude: must be a list of text"),
        ("profile: p\nversion: v1\nchecks: [{id: P, check: pod-security-enforced, severity: high, "
         "params: {exlude: [kube-system]}}]", "params.exlude: not a parameter of pod-security-enforced"),
        ("profile: p\nversion: v1\nchecks: [{id: Z, check: zone-default-deny, severity: high, "
         "params: {directions: [ingress]}}]", "checks[0].params.directions: must list Ingress, Egress"),
        ("profile: p\nversion: v1\nchecks: [{id: N, check: node-labels, severity: low, params: {labels: 5}}]",
         "checks[0].params.labels: must be a list of text"),
    ],
)  # fmt: skip
def test_parameters_a_check_cannot_use_are_named(text: str, said: str) -> None:
    with pytest.raises(ProfileError) as e:
        parse_profile(text)
    assert said in str(e.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@given(
    st.sampled_from(sorted(CHECKS)),
    st.dictionaries(
        st.sampled_from(
            [
                "min",
                "max",
                "exclude",
                "levels",
                "zoneLabel",
                "directions",
                "namespace",
                "configMapKeys",
                "labels",
                "cityLabel",
            ]
        ),
        json_values,
        max_size=3,
    ),
)
def test_any_parameters_are_refused_or_evaluated(kind: str, params: dict[str, Any]) -> None:
    try:
        p = parse_profile(profile(kind, params))
    except ProfileError:
        return
    (finding,) = evaluate(p, FACTS).findings
    assert isinstance(finding.passed, bool)
    assert finding.message


def test_the_built_in_profile_passes_its_own_parameter_rules() -> None:
    from datacloud.census.baseline import DEFAULT_PROFILE

    checks = [
        {
            "id": c.id,
            "check": c.check,
            "severity": c.severity,
            "description": c.description,
            "params": dict(c.params),
        }
        for c in DEFAULT_PROFILE.checks
    ]
    again = parse_profile(yaml.safe_dump({"profile": "fujian-provincial", "version": "v1", "checks": checks}))
    assert again.checks == DEFAULT_PROFILE.checks
