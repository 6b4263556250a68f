"""A zone's quota names and container limits against the real API server, for generated values: the
DataZone schema, the operator's model and the API server's own ResourceQuota and LimitRange validation
agree. Whatever the schema admits, the children built from it are accepted (names with a `/` excepted:
they are left to the API server's qualified-name grammar, and a refusal becomes a condition); whatever
they would refuse, the schema refuses with the field named. All requests are server-side dry runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from datacloud.api import resources
from datacloud.api.datazone import DataZoneSpec
from datacloud.builders import datazone as build
from tests.support.cluster import Cluster, refusal
from tests.support.zones import G, zone

pytestmark = pytest.mark.integration
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_TYPOS = ["cpuz", "request.cpu", "limits.pods", "Pods", "storage", "limits.storage", "count", "hugepages-"]
_NAME_CHARS = st.text(alphabet="abcdegilmnoprstuv.-/2M", min_size=1, max_size=24)
quota_names = st.one_of(
    st.sampled_from([*resources.QUOTA_NAMES, *_TYPOS, "requests.hugepages-2Mi", "count/deployments.apps"]),
    _NAME_CHARS,
)
container_names = st.one_of(
    st.sampled_from([*resources.CONTAINER_NAMES, "hugepages-2Mi", "nvidia.com/gpu", "pods", "requests.cpu"]),
    _NAME_CHARS,
)
amounts = st.sampled_from(["0", "1", "2", "500m", "1500m", "1Gi", "1024Mi", "2Gi", "1e3", "999"])


def schema_admits(cluster: Cluster, spec: dict[str, Any]) -> tuple[bool, str]:
    doc = zone("dz-resources-probe", ["dz-resources-probe"], **spec)
    said = refusal(
        lambda: cluster.kube.custom.create_cluster_custom_object(
            G, "v1alpha1", "datazones", doc, dry_run="All"
        )
    )
    return said is None, said or ""


def model_admits(spec: dict[str, Any]) -> bool:
    try:
        DataZoneSpec.model_validate(zone("z", ["z"], **spec)["spec"])
    except ValidationError:
        return False
    return True


def core_admits(cluster: Cluster, obj: dict[str, Any]) -> bool:
    create = (
        cluster.kube.core.create_namespaced_resource_quota
        if obj["kind"] == "ResourceQuota"
        else cluster.kube.core.create_namespaced_limit_range
    )
    return refusal(lambda: create("default", obj, dry_run="All")) is None


@EXAMPLES
@given(name=quota_names)
def test_a_quota_name_is_admitted_as_a_resource_quota_admits_it(cluster: Cluster, name: str) -> None:
    spec = {"quota": {"hard": {name: "1"}}}
    admitted, said = schema_admits(cluster, spec)
    assert admitted == model_admits(spec), said
    quota = build.resource_quota("z", "default", {name: "1"})
    if "/" not in name:  # a qualified name is left to the API server's grammar (a refusal: a condition)
        assert admitted == core_admits(cluster, quota), said
    if not admitted:
        assert f'spec.quota.hard: Invalid value: "object": "{name}" is not a quota resource' in said


@EXAMPLES
@given(
    name=container_names,
    values=st.fixed_dictionaries(
        {}, optional={"defaultRequest": amounts, "default": amounts, "max": amounts}
    ),
)
def test_container_limits_are_admitted_as_a_limit_range_admits_them(
    cluster: Cluster, name: str, values: dict[str, str]
) -> None:
    spec = {"limits": {side: {name: value} for side, value in values.items()}}
    admitted, said = schema_admits(cluster, spec)
    assert admitted == model_admits(spec), said
    if not values:
        return
    limits = DataZoneSpec.model_validate(zone("z", ["z"])["spec"]).limits.model_copy(
        update={
            "default_request": spec["limits"].get("defaultRequest", {}),
            "default": spec["limits"].get("default", {}),
            "max": spec["limits"].get("max", {}),
        }
    )
    limit_range = build.limit_range("z", "default", limits)
    assert limit_range is not None
    if "/" not in name:
        assert admitted == core_admits(cluster, limit_range), (said, limit_range["spec"])
    if not admitted:
        assert "spec.limits" in said
