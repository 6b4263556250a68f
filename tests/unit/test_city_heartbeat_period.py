"""A city admitted with a heartbeat period below the CRD's floor (before the rule existed) is not run back
to back: the operator waits at least the floor between heartbeats."""

from __future__ import annotations

from typing import Any, cast

from datacloud.adapters.kube import Kube, NotFound
from datacloud.api.citydatacloud import PERIOD_MIN_S
from datacloud.reconcile.citydatacloud import CityLink, heartbeat


class NoSecret:
    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        raise NotFound(f"Secret {namespace}/{name} not found")

    def list(self, plural: str) -> list[dict[str, Any]]:
        return []


def city(period: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "putian", "generation": 1},
        "spec": {
            "cityCode": "350300",
            "displayName": {"zh": "莆田", "en": "Putian"},
            "cluster": {"kubeconfigSecretRef": {"name": "kc", "namespace": "datacloud-system"}},
            "heartbeat": {"period": period, "grace": "5s"},
        },
    }


def test_a_period_below_the_floor_is_run_at_the_floor() -> None:
    for period in ("0s", "1ms", "0.5s"):
        report = heartbeat(cast(Kube, NoSecret()), city(period), CityLink("putian"))
        assert report.period_s == PERIOD_MIN_S, period
        assert report.status["conditions"][0]["reason"] == "SecretNotFound"  # the heartbeat itself ran
    assert heartbeat(cast(Kube, NoSecret()), city("3s"), CityLink("putian")).period_s == 3.0
