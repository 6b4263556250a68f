"""What a CityDataCloud names against what exists: its centres (CentresResolved) and its city code
(CityCodeUnique). Each problem is named in the condition and posted once as an Event; a listing that
fails leaves both Unknown, never True."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from datacloud.adapters.kube import Kube, NotFound
from datacloud.census.federation import centres_verdict, city_owners, code_verdict
from datacloud.reconcile.citydatacloud import CityLink, heartbeat


def centre(name: str, city: str | None = "350100") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"city": city, "role": "Production"} if city else {}}


def cdc(
    name: str, code: str = "350100", centres: list[str] | None = None, at: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 2, "creationTimestamp": at},
        "spec": {
            "cityCode": code,
            "displayName": {"zh": "福州", "en": "Fuzhou"},
            "centres": centres or [],
            "cluster": {"kubeconfigSecretRef": {"name": "kc", "namespace": "datacloud-system"}},
        },
    }


class Province:
    """The provincial API as a heartbeat reads it: no kubeconfig Secret (the city is not reached; the
    placement is judged all the same), the DataCentres and CityDataClouds given."""

    def __init__(
        self, centres: list[dict[str, Any]], cities: list[dict[str, Any]], fail: bool = False
    ) -> None:
        self.items = {"datacentres": centres, "citydataclouds": cities}
        self.fail = fail

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        raise NotFound(f"Secret {namespace}/{name} not found")

    def list(self, plural: str) -> list[dict[str, Any]]:
        if self.fail:
            raise ApiException(status=503, reason="Service Unavailable")
        return self.items[plural]


def beat(kube: Province, body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    report = heartbeat(cast(Kube, kube), body, CityLink(body["metadata"]["name"]))
    body["status"] = report.status
    return {c["type"]: c for c in report.status["conditions"]}, [(e.type, e.reason) for e in report.events]


def test_missing_invalid_and_foreign_centres_are_each_named() -> None:
    fuzhou = cdc("fuzhou", centres=["fz-prod", "gone", "xm-dr", "broken"])
    kube = Province([centre("fz-prod"), centre("xm-dr", "350200"), centre("broken", None)], [fuzhou])
    conds, events = beat(kube, fuzhou)
    c = conds["CentresResolved"]
    assert (c["status"], c["reason"]) == ("False", "CentreNotFound")
    assert "DataCentre gone does not exist" in c["message"]
    assert "DataCentre xm-dr stands in 350200 (Xiamen), not in 350100 (Fuzhou)" in c["message"]
    assert "DataCentre broken has an invalid spec" in c["message"]
    assert "fz-prod" not in c["message"]
    assert c["observedGeneration"] == 2
    assert ("Warning", "CentreNotFound") in events
    # The same finding again posts nothing; the fix posts one Normal Event and makes it True.
    assert ("Warning", "CentreNotFound") not in beat(kube, fuzhou)[1]
    kube.items["datacentres"] += [centre("gone"), centre("broken")]
    fuzhou["spec"]["centres"] = ["fz-prod", "gone", "broken"]
    conds, events = beat(kube, fuzhou)
    assert (conds["CentresResolved"]["status"], conds["CentresResolved"]["reason"]) == ("True", "Resolved")
    assert ("Normal", "CentresResolved") in events


def test_a_second_cloud_for_one_city_is_named_and_the_first_is_not_touched() -> None:
    first = cdc("xiamen", "350200", at="2026-01-01T00:00:00Z")
    second = cdc("xiamen-2", "350200", at="2026-02-01T00:00:00Z")
    kube = Province([], [second, first])
    conds, events = beat(kube, second)
    c = conds["CityCodeUnique"]
    assert (c["status"], c["reason"]) == ("False", "CityCodeTaken")
    assert "CityDataCloud xiamen, created earlier, is 350200 (Xiamen)" in c["message"]
    assert ("Warning", "CityCodeTaken") in events
    assert beat(kube, first)[0]["CityCodeUnique"]["status"] == "True"
    assert beat(kube, first)[0]["CentresResolved"]["reason"] == "NoCentres"


def test_a_listing_that_fails_is_unknown_not_true() -> None:
    fuzhou = cdc("fuzhou", centres=["fz-prod"])
    conds, events = beat(Province([], [], fail=True), fuzhou)
    for type_ in ("CentresResolved", "CityCodeUnique"):
        assert (conds[type_]["status"], conds[type_]["reason"]) == ("Unknown", "NotChecked")
    assert not [e for e in events if e[1] in ("CentreNotFound", "CityCodeTaken")]


names = st.sampled_from(["dc1", "dc2", "dc3", "dc4"])


@given(
    st.lists(names, unique=True),
    st.dictionaries(names, st.none() | st.sampled_from(["350100", "350200", "359999"])),
)
def test_the_verdict_is_true_exactly_when_every_listed_centre_stands_in_the_city(
    listed: list[str], centres: dict[str, str | None]
) -> None:
    v = centres_verdict("350100", listed, centres)
    assert v.status == all(centres.get(c) == "350100" for c in listed)
    for c in listed:
        assert (c in v.message) == (centres.get(c) != "350100" or v.status is True)


@given(st.lists(st.tuples(names, st.sampled_from(["350100", "350200"]), st.integers(0, 3), st.booleans())))
def test_exactly_one_owner_per_code_the_oldest_alive(rows: list[tuple[str, str, int, bool]]) -> None:
    bodies = [
        {
            "metadata": {
                "name": n,
                "creationTimestamp": f"2026-01-0{t + 1}T00:00:00Z",
                **({"deletionTimestamp": "x"} if gone else {}),
            },
            "spec": {"cityCode": code},
        }
        for n, code, t, gone in rows
    ]
    owners = city_owners(bodies)
    alive = [b for b in bodies if "deletionTimestamp" not in b["metadata"]]
    assert set(owners) == {b["spec"]["cityCode"] for b in alive}
    for code, owner in owners.items():
        same = [b for b in alive if b["spec"]["cityCode"] == code]
        oldest = min((b["metadata"]["creationTimestamp"], b["metadata"]["name"]) for b in same)
        assert owner == oldest[1]
        assert code_verdict(owner, code, owners).status is True


def test_the_census_counts_one_cloud_per_city_and_says_which_it_left_out() -> None:
    from datacloud.api.census import ComputeCensusSpec
    from datacloud.reconcile import census

    kube = Province(
        [],
        [
            cdc("xiamen-2", "350200", at="2026-02-01T00:00:00Z"),
            cdc("xiamen", "350200", at="2026-01-01T00:00:00Z"),
            cdc("fuzhou", "350100"),
        ],
    )
    kube.items["datazones"] = []
    scope = census.observe(cast(Kube, kube), ComputeCensusSpec.model_validate({"schedule": "@daily"}))
    assert sorted(c.name for c in scope.cities) == ["fuzhou", "xiamen"]
    assert any(p.startswith("city xiamen-2: CityDataCloud xiamen, created earlier") for p in scope.problems)
