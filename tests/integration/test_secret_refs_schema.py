"""Where a DataCentre or CityDataCloud names a Secret's key, and a DataCentre its S3 region, against the
real API server for generated values: the schema (CEL), the operator's model and the component that will
take the value agree. A key is admitted exactly when the API server admits it as a Secret's data key (a
key it refuses can never be in the Secret); a region exactly when botocore takes it (the lean client sent
what botocore refuses, and the store answered AuthorizationHeaderMalformed). Server-side dry runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from datacloud.api.citydatacloud import CityDataCloudSpec
from datacloud.api.datacentre import DataCentreSpec
from datacloud.api.s3names import is_region
from tests.support.cluster import Cluster, refusal
from tests.support.zones import G

pytestmark = pytest.mark.integration
EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SECRET = {"name": "keys", "namespace": "datacloud-system"}
keys = st.one_of(
    st.sampled_from(["kubeconfig", ".kube", "..kube", ".", "..", "a..b", "-", "kube config", "配置", "a/b"]),
    st.text(alphabet="aZ9-_./ 华:", min_size=1, max_size=12),
)
regions = st.one_of(
    st.sampled_from(["us-east-1", "cn-fujian-1", "fj.prod", "cn/fj", "cn_fj", "华东", "-x", "x-", "350100"]),
    st.text(alphabet="aZ9-_./ 华", min_size=1, max_size=12),
)


def centre(object_store: dict[str, Any]) -> dict[str, Any]:
    return {
        "city": "350100",
        "role": "SameCityDR",
        "objectStore": {"endpoint": "http://127.0.0.1:7070", "credentialsSecretRef": SECRET, **object_store},
    }


def city(key: str) -> dict[str, Any]:
    return {
        "cityCode": "350200",
        "displayName": {"zh": "厦门", "en": "Xiamen"},
        "cluster": {"kubeconfigSecretRef": {**SECRET, "key": key}},
    }


def schema_says(cluster: Cluster, plural: str, kind: str, spec: dict[str, Any]) -> str | None:
    doc = {"apiVersion": f"{G}/v1alpha1", "kind": kind, "metadata": {"name": "refs-probe"}, "spec": spec}
    return refusal(
        lambda: cluster.kube.custom.create_cluster_custom_object(G, "v1alpha1", plural, doc, dry_run="All")
    )


def model_admits(model: Any, spec: dict[str, Any]) -> bool:
    try:
        model.model_validate(spec)
    except ValidationError:
        return False
    return True


def secret_takes(cluster: Cluster, key: str) -> bool:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"}, "stringData": {key: "v"}}
    return (
        refusal(lambda: cluster.kube.core.create_namespaced_secret("default", secret, dry_run="All")) is None
    )


@EXAMPLES
@given(key=keys)
def test_a_secret_key_is_admitted_as_a_secret_admits_it(cluster: Cluster, key: str) -> None:
    expected = secret_takes(cluster, key)
    for field, plural, kind, model, spec in [
        ("spec.objectStore.credentialsSecretRef.accessKeyIdKey", "datacentres", "DataCentre", DataCentreSpec,
         centre({"credentialsSecretRef": {**SECRET, "accessKeyIdKey": key}})),
        ("spec.objectStore.credentialsSecretRef.secretAccessKeyKey", "datacentres", "DataCentre",
         DataCentreSpec, centre({"credentialsSecretRef": {**SECRET, "secretAccessKeyKey": key}})),
        ("spec.cluster.kubeconfigSecretRef.key", "citydataclouds", "CityDataCloud", CityDataCloudSpec,
         city(key)),
    ]:  # fmt: skip
        said = schema_says(cluster, plural, kind, spec)
        assert (said is None) == expected == model_admits(model, spec), (field, said)
        if said is not None:
            assert f"{field}: Invalid value" in said, said
            assert "must be a Secret data key" in said, said


@EXAMPLES
@given(region=regions)
def test_a_region_is_admitted_as_botocore_takes_it(cluster: Cluster, region: str) -> None:
    spec = centre({"region": region})
    said = schema_says(cluster, "datacentres", "DataCentre", spec)
    assert (said is None) == is_region(region) == model_admits(DataCentreSpec, spec), said
    if said is not None:
        assert "spec.objectStore.region: Invalid value" in said, said
        assert "must be a region name" in said, said
