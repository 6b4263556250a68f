"""CityDataCloud against three further real API servers acting as city clusters, heartbeated by the real
operator process: summaries checked against figures computed from the generated fleet, a city going
down and coming back, each kind of bad kubeconfig, baseline compliance and its Events."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datacloud.api.common import parse_quantity
from datacloud.census.baseline import PSA_ENFORCE, ZONE_LABEL
from datacloud.devstack.cities import deny_policy, make_compliant
from datacloud.devstack.controlplane import ApiServer
from datacloud.devstack.pki import LocalCA
from datacloud.devstack.process import free_port
from datacloud.devstack.stack import OPERATOR_NAMESPACE
from tests.support.cluster import Cluster, wait_until
from tests.support.fleet import Fleet, Writer, create_fleet, embedded_kubeconfig, make_fleet
from tests.support.metrics import metric

pytestmark = pytest.mark.integration

SUFFIX = os.urandom(2).hex()
PERIOD, GRACE = "1s", "4s"


@dataclass
class City:
    name: str  # of the CityDataCloud and of its API server
    code: str
    port: int
    server: ApiServer
    fleet: Fleet


def kubeconfig_secret(name: str, text: str, key: str = "kubeconfig") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "data": {key: base64.b64encode(text.encode()).decode()},
    }


def citydatacloud(name: str, code: str, secret: str, **baseline: str) -> dict[str, Any]:
    return {
        "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
        "kind": "CityDataCloud",
        "metadata": {"name": name},
        "spec": {
            "cityCode": code,
            "displayName": {"zh": "测试", "en": name},
            "cluster": {"kubeconfigSecretRef": {"name": secret, "namespace": OPERATOR_NAMESPACE}},
            "baseline": {"profile": "fujian-provincial", "version": "v1", **baseline},
            "heartbeat": {"period": PERIOD, "grace": GRACE},
        },
    }


@pytest.fixture(scope="module")
def cities(cluster: Cluster, operator: dict[str, Any]) -> Iterator[dict[str, City]]:
    """Three city clusters with fleets; Xiamen conforms to the baseline, the others do not."""
    plane = cluster.stack.control_plane
    out: dict[str, City] = {}
    specs = [
        ("xiamen", "350200", 30, 240, 0),
        ("quanzhou", "350500", 20, 120, 3),
        ("pingtan", "350128", 6, 30, 0),
    ]
    try:
        for short, code, nodes, pods, unlabelled in specs:
            name, port = f"city-{short}-{SUFFIX}", free_port()
            server = plane.add_apiserver(name, port=port)
            fleet = make_fleet(code, nodes, pods, unlabelled=unlabelled)
            create_fleet(server, fleet)
            if short == "xiamen":
                make_compliant(server, fleet)
            out[short] = City(name, code, port, server, fleet)
            cluster.must_apply(kubeconfig_secret(f"{name}-kubeconfig", embedded_kubeconfig(server)))
            cluster.must_apply(citydatacloud(name, code, f"{name}-kubeconfig"))
        yield out
    finally:
        for city in out.values():
            cluster.kubectl("delete", "citydatacloud", city.name, "--wait=false")
            plane.stop_apiserver(city.name)


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.get("citydataclouds", name).get("status") or {})


def cond(cluster: Cluster, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(cluster, name).get("conditions") or [] if c["type"] == type_), {})


def summarised(cluster: Cluster, city: City) -> dict[str, Any] | None:
    s = status(cluster, city.name)
    want = city.fleet.expected()
    nodes_ok = s.get("nodes") == want["nodes"] and (s.get("pods") or {}).get("live") == want["live_pods"]
    return s if nodes_ok and s.get("compliance") else None


def test_each_city_is_summarised_from_its_own_api(cluster: Cluster, cities: dict[str, City]) -> None:
    for city in cities.values():
        s = wait_until(lambda c=city: summarised(cluster, c), 60, what=f"summary of {city.name}")
        want = city.fleet.expected()
        res = s["resources"]
        q = parse_quantity
        assert q(res["capacity"]["cpu"]) == want["cpu_capacity"]
        assert q(res["allocatable"]["cpu"]) == want["cpu_allocatable"]
        assert q(res["schedulable"]["cpu"]) == want["cpu_schedulable"]
        assert q(res["capacity"]["memory"]) == want["memory_capacity"]
        assert q(res["allocatable"]["memory"]) == want["memory_allocatable"]
        assert q(res["requested"]["cpu"]) == want["cpu_requested"]
        assert q(res["requested"]["memory"]) == want["memory_requested"]
        assert q(res["requested"]["nvidia.com/gpu"]) == want["gpu_requested"]
        gpus = {a["model"]: a for a in s["accelerators"] if a["resource"] == "nvidia.com/gpu"}
        assert {
            m: {k: a[k] for k in ("capacity", "allocatable", "requested")} for m, a in gpus.items()
        } == want["gpus"]
        assert len(gpus) == 2
        fpga = [a for a in s["accelerators"] if a["resource"] == "example.com/fpga"]
        assert [(a["model"], a["capacity"]) for a in fpga] == [("unknown", want["fpga_capacity"])]
        assert s["kubernetesVersion"].startswith("v1.34")
        assert s["phase"] == "Available"
        for type_ in ("Available", "CensusFresh"):
            assert cond(cluster, city.name, type_)["status"] == "True"


def test_baseline_compliance_and_metrics(
    cluster: Cluster, operator: dict[str, Any], cities: dict[str, City]
) -> None:
    xiamen, quanzhou = cities["xiamen"], cities["quanzhou"]
    for city in (xiamen, quanzhou):
        wait_until(lambda c=city: summarised(cluster, c), 60, what=f"summary of {city.name}")
    good = status(cluster, xiamen.name)["compliance"]
    assert (good["score"], good["failedChecks"], good["profile"], good["version"]) == (
        100,
        [],
        "fujian-provincial",
        "v1",
    )
    assert cond(cluster, xiamen.name, "BaselineCompliant")["status"] == "True"
    bad = status(cluster, quanzhou.name)["compliance"]
    assert {f["id"] for f in bad["failedChecks"]} == {"FJ-PSA-001", "FJ-MON-001", "FJ-MON-002", "FJ-NODE-001"}
    assert bad["score"] == 33
    assert (bad["passed"], bad["total"]) == (2, 6)
    node_check = next(f for f in bad["failedChecks"] if f["id"] == "FJ-NODE-001")
    assert node_check["severity"] == "medium"
    assert "3 of 20 node(s)" in node_check["message"]
    compliant = cond(cluster, quanzhou.name, "BaselineCompliant")
    assert (compliant["status"], compliant["reason"]) == ("False", "ChecksFailed")
    reasons = {e["reason"] for e in cluster.events_for(quanzhou.name)}
    assert {"CityAvailable", "BaselineNoncompliant"} <= reasons

    url, want = operator["metrics"], quanzhou.fleet.expected()
    wait_until(
        lambda: metric(url, "datacloud_city_available", city=quanzhou.name) == 1.0, 20, what="available"
    )
    assert (
        metric(url, "datacloud_city_nodes", city=quanzhou.name, state="cordoned") == want["nodes"]["cordoned"]
    )
    assert metric(url, "datacloud_city_nodes", city=quanzhou.name, state="not_ready") == (
        want["nodes"]["total"] - want["nodes"]["ready"]
    )
    cpu = metric(url, "datacloud_city_resource", city=quanzhou.name, resource="cpu", kind="requested")
    assert cpu == want["cpu_requested"]
    assert metric(url, "datacloud_city_baseline_score_percent", city=quanzhou.name) == 33
    assert metric(url, "datacloud_city_baseline_failed_checks", city=quanzhou.name, severity="high") == 1
    model = "NVIDIA-L40S"
    assert (
        metric(url, "datacloud_city_accelerators", city=quanzhou.name, model=model, kind="capacity")
        == (want["gpus"][model]["capacity"])
    )
    age = metric(url, "datacloud_city_heartbeat_age_seconds", city=quanzhou.name)
    assert age is not None
    assert 0 <= age < 60


def test_changes_in_a_city_reach_its_status(cluster: Cluster, cities: dict[str, City]) -> None:
    city = cities["pingtan"]
    wait_until(lambda: summarised(cluster, city), 60, what="first summary")
    w = Writer(city.server)
    w.request(
        "PATCH", "/api/v1/nodes/node-0", {"spec": {"unschedulable": True}}, "application/merge-patch+json"
    )
    live = [p for p in city.fleet.pods if not p.terminated]
    w.request("PATCH", f"/api/v1/namespaces/{city.fleet.namespace}/pods/{live[0].name}/status",
              {"status": {"phase": "Succeeded"}}, "application/merge-patch+json")  # fmt: skip
    want = city.fleet.expected()
    cordoned = want["nodes"]["cordoned"] + (0 if city.fleet.nodes[0].cordoned else 1)

    def updated() -> bool:
        s = status(cluster, city.name)
        return (s.get("nodes") or {}).get("cordoned") == cordoned and s["pods"]["live"] == want[
            "live_pods"
        ] - 1

    wait_until(updated, 30, what="status follows the city")
    requested = parse_quantity(status(cluster, city.name)["resources"]["requested"]["cpu"])
    assert requested == want["cpu_requested"] - live[0].millicores / 1000


def test_city_goes_down_and_comes_back(cluster: Cluster, cities: dict[str, City]) -> None:
    city, others = cities["pingtan"], [cities["xiamen"], cities["quanzhou"]]
    plane = cluster.stack.control_plane
    wait_until(lambda: cond(cluster, city.name, "Available").get("status") == "True", 60, what="available")
    before = {c.name: cond(cluster, c.name, "Available")["lastTransitionTime"] for c in others}
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def observe() -> None:  # from before the stop, since stopping the server itself takes a while
        while not done.is_set():
            c = cond(cluster, city.name, "Available")
            seen.append((c.get("status", ""), c.get("reason", "")))
            time.sleep(0.2)

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    plane.stop_apiserver(city.name)
    try:
        wait_until(lambda: seen and seen[-1][0] == "False", 60, what="city unavailable")
    finally:
        done.set()
        watcher.join()
    assert ("True", "HeartbeatMissed") in seen  # the grace period held it Available at first
    assert cond(cluster, city.name, "Available")["reason"] == "Unreachable"
    assert status(cluster, city.name)["phase"] == "Unavailable"
    wait_until(
        lambda: cond(cluster, city.name, "CensusFresh").get("reason") == "Stale", 30, what="stale census"
    )
    for other in others:  # the others did not blink
        assert cond(cluster, other.name, "Available")["status"] == "True"
        assert cond(cluster, other.name, "Available")["lastTransitionTime"] == before[other.name]

    city.server = plane.add_apiserver(city.name, port=city.port)
    wait_until(
        lambda: cond(cluster, city.name, "Available").get("status") == "True", 60, what="available again"
    )
    wait_until(
        lambda: cond(cluster, city.name, "CensusFresh").get("status") == "True", 30, what="fresh again"
    )
    reasons = [e["reason"] for e in cluster.events_for(city.name)]
    assert "CityUnavailable" in reasons
    assert "CityAvailable" in reasons


def test_compliance_change_posts_events(cluster: Cluster, cities: dict[str, City]) -> None:
    city = cities["xiamen"]
    wait_until(
        lambda: cond(cluster, city.name, "BaselineCompliant").get("status") == "True", 60, what="compliant"
    )
    w = Writer(city.server)
    w.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "zone-b", "labels": {ZONE_LABEL: "b", PSA_ENFORCE: "restricted"}}})  # fmt: skip
    wait_until(
        lambda: cond(cluster, city.name, "BaselineCompliant").get("status") == "False", 30, what="violation"
    )
    failed = status(cluster, city.name)["compliance"]["failedChecks"]
    assert [(f["id"], f["severity"]) for f in failed] == [("FJ-NET-001", "high")]
    assert "zone-b" in failed[0]["message"]
    w.ensure("/apis/networking.k8s.io/v1/namespaces/zone-b/networkpolicies", deny_policy())
    wait_until(
        lambda: cond(cluster, city.name, "BaselineCompliant").get("status") == "True", 30, what="compliant"
    )
    reasons = [e["reason"] for e in cluster.events_for(city.name)]
    assert "BaselineNoncompliant" in reasons
    assert "BaselineCompliant" in reasons


def test_profile_from_a_configmap(cluster: Cluster, cities: dict[str, City]) -> None:
    city = cities["xiamen"]
    name = f"cdc-profile-{SUFFIX}"
    profile = ("profile: fujian-provincial\nversion: v9\nchecks:\n"
               "  - {id: FJ-MON-009, check: monitoring-namespace, severity: low,"
               " params: {namespace: obs}}\n")  # fmt: skip
    cluster.must_apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": f"baseline-{SUFFIX}", "namespace": OPERATOR_NAMESPACE},
                        "data": {"profile.yaml": profile}})  # fmt: skip
    cluster.must_apply(citydatacloud(name, city.code, f"{city.name}-kubeconfig", version="v9",
                                     configMap=f"baseline-{SUFFIX}"))  # fmt: skip
    missing = f"cdc-noprofile-{SUFFIX}"
    cluster.must_apply(citydatacloud(missing, city.code, f"{city.name}-kubeconfig", configMap="absent"))
    try:
        wait_until(
            lambda: (status(cluster, name).get("compliance") or {}).get("version") == "v9", 60, what="v9"
        )
        c = status(cluster, name)["compliance"]
        assert (c["score"], [f["id"] for f in c["failedChecks"]]) == (0, ["FJ-MON-009"])
        got = wait_until(lambda: cond(cluster, missing, "BaselineCompliant").get("reason"), 60, what="reason")
        assert got == "ProfileInvalid"
        assert (
            "ConfigMap datacloud-system/absent not found"
            in cond(cluster, missing, "BaselineCompliant")["message"]
        )
        assert cond(cluster, missing, "Available")["status"] == "True"  # a bad profile is not an outage
    finally:
        cluster.kubectl("delete", "citydatacloud", name, missing, "--wait=false")


def test_bad_kubeconfigs_give_clear_reasons_and_leak_nothing(
    cluster: Cluster, operator: dict[str, Any], cities: dict[str, City], tmp_path: Path
) -> None:
    city = cities["xiamen"]
    plane = cluster.stack.control_plane
    marker = f"leak-marker-token-{SUFFIX}-0123456789"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    expired = plane.pki.issue(f"expired-{SUFFIX}", "datacloud-operator", org="system:masters",
                              not_before=past, valid=dt.timedelta(days=1))  # fmt: skip
    stranger = LocalCA(tmp_path / "other-ca")
    foreign = stranger.issue("foreign", "datacloud-operator", org="system:masters")
    cases = {
        "SecretNotFound": None,
        "KubeconfigInvalid": f"apiVersion: v1\nusers: [{{name: u, user: {{token: {marker}}}}}\nclusters: [",
        "CertificateInvalid": embedded_kubeconfig(city.server, ca=stranger.cert_path.read_bytes()),
        "Unauthorized": embedded_kubeconfig(
            city.server, cert=expired.cert.read_bytes(), key=expired.key.read_bytes()
        ),
        "Unauthorized-foreign": embedded_kubeconfig(
            city.server, cert=foreign.cert.read_bytes(), key=foreign.key.read_bytes()
        ),
    }
    secrets_text = [expired.key.read_text(), foreign.key.read_text(), marker]
    names = {}
    for reason, text in cases.items():
        name = f"cdc-{reason.lower()}-{SUFFIX}"
        names[reason] = name
        if text is not None:
            cluster.must_apply(kubeconfig_secret(f"{name}-kc", text))
        cluster.must_apply(citydatacloud(name, city.code, f"{name}-kc"))
    before = {c.name: cond(cluster, c.name, "Available").get("lastTransitionTime") for c in cities.values()}
    try:
        for reason, name in names.items():
            want = reason.split("-")[0]
            got = wait_until(
                lambda n=name: (
                    (c := cond(cluster, n, "Available")).get("status") == "False" and c.get("reason")
                ),
                60, what=f"{reason} condition",
            )  # fmt: skip
            assert got == want, cond(cluster, name, "Available")
            assert status(cluster, name)["phase"] == "Unavailable"
            assert "CityUnavailable" in {e["reason"] for e in cluster.events_for(name)}
        assert "not found" in cond(cluster, names["SecretNotFound"], "Available")["message"]
        assert "not valid YAML" in cond(cluster, names["KubeconfigInvalid"], "Available")["message"]
        # The good cities carried on.
        for c in cities.values():
            if c.name != cities["pingtan"].name:  # pingtan may have been restarted by another test
                assert cond(cluster, c.name, "Available")["status"] == "True"
                assert cond(cluster, c.name, "Available")["lastTransitionTime"] == before[c.name]
        everything = json.dumps([cluster.get("citydataclouds", n) for n in names.values()])
        everything += json.dumps([cluster.events_for(n) for n in names.values()])
        everything += operator["log"].read_text()
        for secret in secrets_text:
            body = secret.strip().splitlines()[1] if secret.startswith("-----") else secret
            assert body not in everything
        # Fixing the Secret brings the city in.
        cluster.must_apply(
            kubeconfig_secret(f"{names['KubeconfigInvalid']}-kc", embedded_kubeconfig(city.server))
        )
        wait_until(
            lambda: cond(cluster, names["KubeconfigInvalid"], "Available").get("status") == "True",
            60,
            what="fixed",
        )
    finally:
        cluster.kubectl("delete", "citydatacloud", *names.values(), "--wait=false")


def test_deleted_city_series_are_dropped(
    cluster: Cluster, operator: dict[str, Any], cities: dict[str, City]
) -> None:
    city = cities["xiamen"]
    name = f"cdc-gone-{SUFFIX}"
    cluster.must_apply(citydatacloud(name, city.code, f"{city.name}-kubeconfig"))
    url = operator["metrics"]
    wait_until(
        lambda: metric(url, "datacloud_city_nodes", city=name, state="total") is not None, 60, what="series"
    )
    assert cluster.kubectl("delete", "citydatacloud", name).returncode == 0
    wait_until(lambda: metric(url, "datacloud_city_available", city=name) is None, 30, what="series dropped")
    assert metric(url, "datacloud_city_nodes", city=name, state="total") is None


def test_a_binary_value_beside_the_kubeconfig_does_not_stop_the_city(
    cluster: Cluster, operator: dict[str, Any], cities: dict[str, City]
) -> None:
    """A kubeconfig Secret that also holds a binary file (a .p12 bundle): every read of it raised
    UnicodeDecodeError, so the city's heartbeat failed in the log only and its status stood still. Binary
    in the kubeconfig key itself is KubeconfigInvalid."""
    city = cities["xiamen"]
    name, broken = f"cdc-binary-{SUFFIX}", f"cdc-binarykc-{SUFFIX}"
    blob = base64.b64encode(b"\xff\xfe\x00PKCS12\x80\x81").decode()
    good = kubeconfig_secret(f"{name}-kc", embedded_kubeconfig(city.server))
    good["data"]["bundle.p12"] = blob
    cluster.must_apply(good, {**kubeconfig_secret(f"{broken}-kc", ""), "data": {"kubeconfig": blob}})
    cluster.must_apply(
        citydatacloud(name, city.code, f"{name}-kc"), citydatacloud(broken, city.code, f"{broken}-kc")
    )
    try:
        wait_until(lambda: cond(cluster, name, "Available").get("status") == "True", 60, what="Available")
        got = wait_until(lambda: cond(cluster, broken, "Available").get("reason"), 60, what="a reason")
        assert got == "KubeconfigInvalid", cond(cluster, broken, "Available")
    finally:
        cluster.kubectl("delete", "citydatacloud", name, broken, "--wait=false")


def test_what_a_city_names_is_checked_against_what_exists(cluster: Cluster, operator: dict[str, Any]) -> None:
    """spec.centres naming a centre that does not exist and one in another city, and a second cloud
    with the same city code: each named in a condition and an Event, even with the city unreachable."""
    centre = f"dc-xm-{SUFFIX}"
    first, second = f"sanming-{SUFFIX}", f"sanming-again-{SUFFIX}"
    cluster.must_apply(
        {
            "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
            "kind": "DataCentre",
            "metadata": {"name": centre},
            "spec": {
                "city": "350200",
                "role": "Compute",
                "objectStore": {
                    "endpoint": "http://127.0.0.1:9",
                    "credentialsSecretRef": {"name": "none", "namespace": OPERATOR_NAMESPACE},
                },
            },
        }
    )
    doc = citydatacloud(first, "350400", "no-such-secret")
    doc["spec"]["centres"] = [centre, f"gone-{SUFFIX}"]
    cluster.must_apply(doc)
    try:
        wait_until(lambda: cond(cluster, first, "CentresResolved").get("status") == "False", 60, what="False")
        c = cond(cluster, first, "CentresResolved")
        assert c["reason"] == "CentreNotFound"
        assert f"DataCentre gone-{SUFFIX} does not exist" in c["message"]
        assert f"DataCentre {centre} stands in 350200 (Xiamen), not in 350400 (Sanming)" in c["message"]
        wait_until(
            lambda: any(e["reason"] == "CentreNotFound" for e in cluster.events_for(first)), 30, what="Event"
        )
        time.sleep(1.1)  # a later creation time
        cluster.must_apply(citydatacloud(second, "350400", "no-such-secret"))
        wait_until(lambda: cond(cluster, second, "CityCodeUnique").get("status") == "False", 60, what="taken")
        taken = cond(cluster, second, "CityCodeUnique")
        assert taken["reason"] == "CityCodeTaken"
        assert "created earlier, is 350400 (Sanming)" in taken["message"]
        assert cond(cluster, second, "CentresResolved")["reason"] == "NoCentres"
    finally:
        for name in (first, second):
            cluster.kubectl("delete", "citydatacloud", name, "--wait=false")
        cluster.kubectl("delete", "datacentre", centre, "--wait=false")
