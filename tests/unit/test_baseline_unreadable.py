"""A baseline-profile ConfigMap the API server will not give the operator (403 from a narrowed Role, a
5xx) leaves BaselineCompliant Unknown with reason ProfileUnreadable naming the ConfigMap and the answer,
with one Warning Event per new message: before, the ApiException left the heartbeat with a traceback and
the city's status unwritten on every beat."""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from datacloud.adapters.kube import Kube
from datacloud.census.aggregate import summarise
from datacloud.reconcile import citydatacloud
from datacloud.reconcile.citydatacloud import CityLink, Contact, heartbeat

BODY = {
    "metadata": {"name": "putian", "generation": 2},
    "spec": {
        "cityCode": "350300",
        "displayName": {"zh": "莆田", "en": "Putian"},
        "cluster": {"kubeconfigSecretRef": {"name": "kc", "namespace": "datacloud-system"}},
        "baseline": {"configMap": "baseline-profile"},
    },
}


class Collector:
    current, error = True, None

    def wait_synced(self, timeout_s: float) -> bool:
        return True

    def summary(self) -> Any:
        return summarise([], [])


class Link(CityLink):
    def collect(self) -> Any:
        return Collector()


class Provincial:
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        raise ApiException(status=self.status, reason=self.reason)

    def list(self, plural: str) -> list[dict[str, Any]]:
        return []


@pytest.mark.parametrize(("status", "reason"), [(403, "Forbidden"), (500, "Internal Server Error")])
def test_an_unreadable_profile_leaves_the_checks_unknown_naming_the_configmap(
    monkeypatch: pytest.MonkeyPatch, status: int, reason: str
) -> None:
    monkeypatch.setattr(
        citydatacloud, "_contact", lambda *a, **k: (Contact(True, "HeartbeatSucceeded", "ok"), "v1.34.4")
    )
    kube = cast(Kube, Provincial(status, reason))
    report = heartbeat(kube, BODY, Link("putian"))
    conds = {c["type"]: c for c in report.status["conditions"]}
    compliant = conds["BaselineCompliant"]
    assert (compliant["status"], compliant["reason"]) == ("Unknown", "ProfileUnreadable")
    assert compliant["message"].endswith(f"/baseline-profile could not be read: {status} {reason}")
    assert conds["Available"]["status"] == "True"  # the city itself was reached
    warned = [e for e in report.events if e.reason == "BaselineProfileUnreadable"]
    assert [e.message for e in warned] == [compliant["message"]]

    # The next beat, the same refusal: the condition stays, no second Event.
    again = heartbeat(kube, {**BODY, "status": report.status}, Link("putian"))
    assert not [e for e in again.events if e.reason == "BaselineProfileUnreadable"]
    assert {c["type"]: c for c in again.status["conditions"]}["BaselineCompliant"] == compliant
