"""DataZone values a user writes as Kubernetes takes them: quota numbers unquoted (`pods: 10`, as a
ResourceQuota takes them) and access groups in any script (RBAC takes any string as a Group subject).
The same rules are the CRD's (tests/integration/test_datazone_input.py applies them to the API server)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from datacloud.api import quantity
from datacloud.api.datazone import DataZoneSpec
from datacloud.builders import datazone as build


def spec(**extra: Any) -> DataZoneSpec:
    return DataZoneSpec.model_validate(
        {"department": {"name": "省大数据管理局"}, "classification": "Core", "namespaces": ["a"], **extra}
    )


def test_unquoted_whole_numbers_are_quantities() -> None:
    s = spec(
        quota={"hard": {"pods": 10, "requests.cpu": 4, "requests.memory": "8Gi"}}, limits={"max": {"cpu": 2}}
    )
    assert s.quota.hard == {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"}
    assert build.resource_quota("z", "a", s.quota.hard)["spec"]["hard"]["pods"] == "10"
    limit_range = build.limit_range("z", "a", s.limits)
    assert limit_range is not None
    assert limit_range["spec"]["limits"][0]["max"] == {"cpu": "2"}


@pytest.mark.parametrize("value", [True, False, -1, 1.5])
def test_booleans_negatives_and_bare_fractions_are_not_quantities(value: object) -> None:
    with pytest.raises(ValidationError, match=r"quota\.hard\.pods"):
        spec(quota={"hard": {"pods": value}})


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_any_whole_number_means_the_same_as_its_text(n: int) -> None:
    assert spec(quota={"hard": {"pods": n}}).quota.hard["pods"] == str(n)
    assert quantity.milli(str(n)) == n * 1000


# --- access groups -------------------------------------------------------------------------------------


def _admitted(group: str) -> bool:
    """What a Group must be: 1 to 128 characters, no control or bidirectional override character, no
    space at either end, no system: group but system:authenticated."""
    bad = {*range(0x20), 0x7F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
    return (
        0 < len(group) <= 128
        and not any(ord(c) in bad for c in group)
        and group.strip() == group
        and (not group.startswith("system:") or group == "system:authenticated")
    )


@pytest.mark.parametrize(
    "group",
    ["省大数据管理局-管理员", "福州市 数据 编辑", "Domain Users", "oidc:https://idp.fj.gov.cn/g/1", "👩‍💻"],
)
def test_groups_in_any_script_are_bound_as_written(group: str) -> None:
    s = spec(access={"admins": [group], "viewers": ["system:authenticated"]})
    admin, viewer = build.role_bindings("z", "a", s.access)
    assert admin["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]
    assert viewer["subjects"][0]["name"] == "system:authenticated"


@given(st.text(max_size=140))
def test_a_group_is_admitted_exactly_when_it_can_be_bound_as_meant(group: str) -> None:
    if not _admitted(group):
        with pytest.raises(ValidationError, match=r"access\.editors\.0"):
            spec(access={"editors": [group]})
        return
    s = spec(access={"editors": [group]})
    (binding,) = build.role_bindings("z", "a", s.access)
    assert binding["subjects"][0]["name"] == group


@pytest.mark.parametrize(
    ("group", "said"),
    [
        (" fj-admins", "must not begin or end with a space"),
        ("fj-admins\u3000", "must not begin or end with a space"),
        ("fj\tadmins", "should match pattern"),
        ("fj\u202eadmins", "should match pattern"),
        ("system:masters", "must not be a system: group"),
        ("", "at least 1 character"),
    ],
)
def test_groups_that_would_bind_nothing_or_everything_are_refused(group: str, said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        spec(access={"admins": [group]})


def test_allow_from_names_only_what_a_zone_can_be_named() -> None:
    """A longer name matched no zone and made the API server refuse the zone's whole allow policy (its own
    namespaces then could not reach each other); it is refused naming the field."""
    assert spec(network={"allowFrom": ["z" * 63]}).network.allow_from == ["z" * 63]
    with pytest.raises(ValidationError, match=r"network\.allowFrom\.0"):
        spec(network={"allowFrom": ["z" * 64]})


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"quota": {"hard": {"cpuz": "4"}}}, '"cpuz" is not a quota resource'),
        ({"quota": {"hard": {"limits.storage": "4"}}}, '"limits.storage" is not a quota resource'),
        ({"limits": {"max": {"requests.cpu": "4"}}}, '"requests.cpu" is not a container resource'),
        ({"limits": {"defaultRequest": {"cpu": "2"}, "default": {"cpu": "1500m"}}}, "defaultRequest[cpu] 2"),
        ({"limits": {"default": {"memory": "1Gi"}, "max": {"memory": "1000Mi"}}}, "default[memory] 1Gi"),
        # The API server takes default from max when it is unset: a GPU's request must then equal max.
        (
            {"limits": {"defaultRequest": {"nvidia.com/gpu": "1"}, "max": {"nvidia.com/gpu": "2"}}},
            "must equal",
        ),
        (
            {"limits": {"defaultRequest": {"hugepages-2Mi": "2Mi"}, "default": {"hugepages-2Mi": "4Mi"}}},
            "equal",
        ),
    ],
)
def test_quota_names_and_limit_orders_the_api_server_refuses_are_refused(
    change: dict[str, Any], said: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(said)):
        spec(**change)


@pytest.mark.parametrize(
    "change",
    [
        {"quota": {"hard": {"count/deployments.apps": "4", "requests.hugepages-1Gi": "2Gi", "pods": 10}}},
        {"limits": {"defaultRequest": {"cpu": "1000m"}, "default": {"cpu": 1}, "max": {"cpu": "1"}}},
        {"limits": {"defaultRequest": {"nvidia.com/gpu": 1}, "max": {"nvidia.com/gpu": "1"}}},
        {
            "limits": {
                "defaultRequest": {"example.kubernetes.io/x": "1"},
                "default": {"example.kubernetes.io/x": 2},
            }
        },
    ],
)
def test_names_and_orders_the_api_server_takes_are_taken(change: dict[str, Any]) -> None:
    spec(**change)
