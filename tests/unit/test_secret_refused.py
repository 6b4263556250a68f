"""A Secret the API server will not give the operator (403: the chart lets it read Secrets in its own
namespace only, and a centre's or a city's reference may name any namespace) is a condition naming the
Secret and the cause, never a traceback on every probe or heartbeat with no status."""

from __future__ import annotations

from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from datacloud.adapters.kube import Kube
from datacloud.reconcile import datacentre
from datacloud.reconcile.citydatacloud import CityLink, heartbeat


class Refusing:
    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        raise ApiException(status=403, reason="Forbidden")

    def list(self, plural: str) -> list[dict[str, Any]]:
        return []


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_centre_whose_secret_is_refused_says_so_and_is_not_probed() -> None:
    body = {
        "metadata": {"name": "dc", "generation": 1},
        "spec": {
            "city": "350100",
            "role": "Production",
            "objectStore": {
                "endpoint": "http://127.0.0.1:9",
                "credentialsSecretRef": {"name": "s3", "namespace": "team-a"},
            },
        },
    }
    report = datacentre.probe_once(cast(Kube, Refusing()), body)
    probing = conditions(report.status)["Probing"]
    assert (probing["status"], probing["reason"]) == ("False", "SecretUnreadable")
    assert "credentials Secret team-a/s3 could not be read: 403 Forbidden" in probing["message"]
    assert "put it there" in probing["message"]
    assert conditions(report.status)["Ready"]["status"] == "Unknown"
    assert report.warnings == [("SecretUnreadable", probing["message"])]


def test_a_city_whose_kubeconfig_secret_is_refused_is_unavailable_naming_it() -> None:
    body = {
        "metadata": {"name": "putian", "generation": 1},
        "spec": {
            "cityCode": "350300",
            "displayName": {"zh": "莆田", "en": "Putian"},
            "cluster": {"kubeconfigSecretRef": {"name": "kc", "namespace": "team-a"}},
        },
    }
    report = heartbeat(cast(Kube, Refusing()), body, CityLink("putian"))
    available = conditions(report.status)["Available"]
    assert (available["status"], available["reason"]) == ("False", "SecretUnreadable")
    assert "kubeconfig Secret team-a/kc could not be read: 403 Forbidden" in available["message"]
    assert report.status["phase"] == "Unavailable"


def test_the_census_names_a_city_whose_secret_is_refused() -> None:
    from datacloud.api.citydatacloud import CityDataCloudSpec
    from datacloud.reconcile import census

    spec = CityDataCloudSpec.model_validate(
        {
            "cityCode": "350300",
            "displayName": {"zh": "莆田", "en": "Putian"},
            "cluster": {"kubeconfigSecretRef": {"name": "kc", "namespace": "team-a"}},
        }
    )
    target = census._city_target(cast(Kube, Refusing()), "putian", spec)
    assert target.kube is None
    assert target.problem is not None
    assert target.problem.startswith("SecretUnreadable: kubeconfig Secret team-a/kc could not be read: 403")
