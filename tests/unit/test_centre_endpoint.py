"""A centre's endpoint the operator cannot use — a port that is not one, a user and password, a query —
is refused by the schema (tests/integration/test_admission.py) and, admitted before those rules, makes
the centre Invalid with the field named: no probe that raises on every interval, no credential shown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.datacentre import DataCentreSpec
from datacloud.reconcile import datacentre


class Kube:
    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        return {"accessKeyId": "AK", "secretAccessKey": "SK"}


def body(endpoint: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "dc", "generation": 3},
        "spec": {
            "city": "350100",
            "role": "Production",
            "objectStore": {"endpoint": endpoint, "credentialsSecretRef": {"name": "s", "namespace": "n"}},
            "probe": {"interval": "1s", "timeout": "100ms"},
        },
    }


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [
        ("http://127.0.0.1:abc", "port from 1 to 65535"),
        ("http://127.0.0.1:99999", "port from 1 to 65535"),
        ("http://127.0.0.1:0", "port from 1 to 65535"),
        ("http://127.0.0.1:", "port from 1 to 65535"),
        ("http://[::1", "must be a URL"),
        ("http://:7070", "must name a host"),
        ("http://key:hunter2@127.0.0.1:7070", "must not carry a user or password"),
        ("http://127.0.0.1:7070?x=1", "query or fragment"),
        # boto3 puts a path before the bucket and the lean client addresses the root: two places.
        ("http://例子.中国:9000/s3", "must not have a path"),
        ("http://127.0.0.1:7070//", "must not have a path"),
    ],
)
def test_an_unusable_endpoint_makes_the_centre_invalid_naming_the_field(endpoint: str, said: str) -> None:
    report = datacentre.probe_once(Kube(), body(endpoint))  # type: ignore[arg-type]
    assert report.status["phase"] == "Invalid"
    (ready,) = [c for c in report.status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "objectStore.endpoint" in ready["message"]
    assert said in ready["message"]
    assert "hunter2" not in str(report.status) + str(report.warnings)
    assert report.warnings == [("InvalidSpec", ready["message"])]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:7070",
        "https://oss.fz-prod.fj.gov.cn",
        "http://[::1]:080/",
        "http://例子.中国:9000",
    ],
)
def test_usable_endpoints_stay_admitted(endpoint: str) -> None:
    DataCentreSpec.model_validate(body(endpoint)["spec"])


@given(st.text(max_size=40))
def test_any_endpoint_text_is_either_admitted_with_a_port_the_probe_can_use_or_refused(text: str) -> None:
    """Whatever the model admits, the probe's own URL parsing accepts (it raised on the rest)."""
    from urllib.parse import urlsplit

    for endpoint in (text, f"http://{text}", f"http://h:{text}"):
        try:
            DataCentreSpec.model_validate(body(endpoint)["spec"])
        except ValueError:
            continue
        parts = urlsplit(endpoint)
        assert parts.hostname
        assert parts.port is None or 1 <= parts.port <= 65535
        assert "@" not in parts.netloc
        assert parts.path in ("", "/")


@pytest.mark.parametrize(
    ("url", "said"),
    [("http://u:hunter2@prom:9090", "must not carry a user or password"), ("http://prom:abc", "port")],
)
def test_a_census_prometheus_url_follows_the_same_rules(url: str, said: str) -> None:
    """Its URL is quoted in UtilisationMeasured when Prometheus does not answer."""
    from pydantic import ValidationError

    from datacloud.api.census import ComputeCensusSpec

    with pytest.raises(ValidationError, match=said):
        ComputeCensusSpec.model_validate({"schedule": "@daily", "prometheusUrl": url})
    assert ComputeCensusSpec.model_validate({"schedule": "@daily", "prometheusUrl": "http://prom:9090/p"})
