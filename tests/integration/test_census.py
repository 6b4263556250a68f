"""ComputeCensus end to end: two city API servers with generated fleets, a real versitygw centre with
objects in it, a DataZone committing quota, and a real Prometheus scraping the real operator. The
operator runs the census when `datacloud census run` asks; the figures in the CSV, the status and the
metrics are checked against numbers computed here from the generated fleets; the HTML opens in headless
Chromium without console errors. Bad input: an unknown city, malformed quantities, an unreachable
Prometheus."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest

from datacloud.api.census import ComputeCensusSpec
from datacloud.devstack.controlplane import ApiServer
from datacloud.devstack.objectstore import Centre
from datacloud.devstack.prometheus import Prometheus
from datacloud.devstack.stack import OPERATOR_NAMESPACE
from datacloud.reconcile import census as census_reconcile
from tests.integration.census_browser import chromium, open_page
from tests.support.cluster import Cluster, wait_until
from tests.support.fleet import (
    Fleet,
    FleetPod,
    Writer,
    create_fleet,
    create_pod,
    embedded_kubeconfig,
    make_fleet,
)

pytestmark = pytest.mark.integration

SUFFIX = os.urandom(2).hex()
GROUP = "datacloud.fujian.gov.cn"
CENSUS = f"census-{SUFFIX}"
BUCKET = f"census-{SUFFIX}"


def queries(prom: Prometheus) -> dict[str, str]:
    """Real series of the real Prometheus process (it scrapes itself), each placed on one Xiamen fleet
    node: its CPU use varies, its file-descriptor limit is constant."""
    me = f'instance="127.0.0.1:{prom.port}"'
    place = '"node", "{node}", "", ""), "city", "350200", "", "")'
    return {
        "cpu": "label_replace(label_replace(sum by (instance) "
        f"(rate(process_cpu_seconds_total{{{me}}}[10s])), " + place.format(node="node-0"),
        "memory": f"label_replace(label_replace(max by (instance) (process_max_fds{{{me}}}), "
        + place.format(node="node-1"),
    }


@dataclass
class City:
    name: str
    code: str
    server: ApiServer
    fleet: Fleet


def _cli(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datacloud", "census", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _city_docs(name: str, code: str, server: ApiServer) -> list[dict[str, Any]]:
    secret = f"{name}-kubeconfig"
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": OPERATOR_NAMESPACE},
            "data": {"kubeconfig": base64.b64encode(embedded_kubeconfig(server).encode()).decode()},
        },
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "CityDataCloud",
            "metadata": {"name": name},
            "spec": {
                "cityCode": code,
                "displayName": {"zh": "测试" + code[-3:], "en": name},
                "cluster": {"kubeconfigSecretRef": {"name": secret, "namespace": OPERATOR_NAMESPACE}},
                "heartbeat": {"period": "30s", "grace": "90s"},
            },
        },
    ]


@pytest.fixture(scope="module")
def cities(cluster: Cluster, operator: dict[str, Any]) -> Iterator[dict[str, City]]:
    plane = cluster.stack.control_plane
    out: dict[str, City] = {}
    try:
        for short, code, nodes, pods in (("xiamen", "350200", 30, 20), ("sanming", "350400", 12, 60)):
            name = f"census-{short}-{SUFFIX}"
            server = plane.add_apiserver(name)
            fleet = make_fleet(code, nodes, pods)
            create_fleet(server, fleet)
            out[short] = City(name, code, server, fleet)
            cluster.must_apply(*_city_docs(name, code, server))
        yield out
    finally:
        for city in out.values():
            cluster.kubectl("delete", "citydatacloud", city.name, "--wait=false")
            plane.stop_apiserver(city.name)


@pytest.fixture(scope="module")
def store(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Centre, int]]:
    """A versitygw centre in Xiamen holding 7 objects; returns it and their total size."""
    from datacloud.devstack.stack import centre_secret

    c = Centre(f"cen{SUFFIX}", tmp_path_factory.mktemp("census-centre")).start()
    cluster.must_apply(centre_secret(c, OPERATOR_NAMESPACE))
    cluster.must_apply(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "DataCentre",
            "metadata": {"name": c.name},
            "spec": {
                "city": "350200",
                "role": "Compute",
                "objectStore": {
                    "endpoint": c.endpoint,
                    "credentialsSecretRef": {"name": f"centre-{c.name}", "namespace": OPERATOR_NAMESPACE},
                },
            },
        }
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=c.endpoint,
        aws_access_key_id=c.access_key,
        aws_secret_access_key=c.secret_key,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="data-a")
    total = 0
    for i in range(7):
        body = os.urandom(1000 * (i + 1))
        s3.put_object(Bucket="data-a", Key=f"k/{i}", Body=body)
        total += len(body)
    yield c, total
    cluster.kubectl("delete", "datacentre", c.name, "--wait=false")
    c.stop()


@pytest.fixture(scope="module")
def prometheus(operator: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    from datacloud.devstack.process import free_port

    port = free_port()
    targets = [urlparse(operator["metrics"]).netloc, f"127.0.0.1:{port}"]  # the operator, and itself
    prom = Prometheus(tmp_path_factory.mktemp("census-prom"), targets, port=port).start()
    me = f'process_cpu_seconds_total{{instance="127.0.0.1:{port}"}}[10s]'
    wait_until(lambda: prom.query(f"rate({me})")["data"]["result"], 30, what="Prometheus scraping itself")
    yield prom
    prom.stop()


def census_doc(
    name: str, codes: list[str], centre: str, prom_url: str, promql: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ComputeCensus",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 0 1 1 *",
            "retain": 3,
            # Only this test's centre: the session's other centres hold other tests' data.
            "scope": {"cities": codes, "centres": [centre]},
            "reports": {
                "formats": ["json", "csv", "html"],
                "configMap": {"name": f"{name}-report", "namespace": OPERATOR_NAMESPACE},
                "objectStore": {"centre": centre, "bucket": BUCKET, "prefix": "reports/"},
            },
            "prometheusUrl": prom_url,
            "utilisation": {"window": "20s", "step": "1s", **promql},
        },
    }


def _free(fleet: Fleet) -> list[dict[str, Any]]:
    """Per schedulable node: what is left, by plain arithmetic over the generated fleet."""
    live = [p for p in fleet.pods if not p.terminated]
    out = []
    for n in fleet.nodes:
        if not n.ready or n.cordoned:
            continue
        mine = [p for p in live if p.node == n.name]
        out.append(
            {
                "centre": n.labels.get("datacloud.fujian.gov.cn/centre"),
                "model": n.gpu_model or "",
                "cpu": n.alloc_millicores - sum(p.millicores for p in mine),
                "memory_mib": n.alloc_memory_gib * 1024 - sum(p.memory_mib for p in mine),
                "gpu": n.gpus - sum(p.gpus for p in mine),
            }
        )
    return out


def _metric(url: str, name: str, **labels: str) -> float | None:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_census_run_reports_and_placement(
    cluster: Cluster,
    cities: dict[str, City],
    store: tuple[Centre, int],
    prometheus: Prometheus,
    operator: dict[str, Any],
    tmp_path: Path,
) -> None:
    centre, stored_bytes = store
    xm, sm = cities["xiamen"], cities["sanming"]
    cluster.must_apply(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "DataZone",
            "metadata": {"name": f"census-zone-{SUFFIX}", "labels": {f"{GROUP}/city": "350200"}},
            "spec": {
                "department": {"name": "测试"},
                "classification": "General",
                "namespaces": [f"census-zone-{SUFFIX}"],
                "quota": {"hard": {"requests.cpu": "40", "requests.memory": "64Gi"}},
            },
        }
    )
    cluster.must_apply(
        census_doc(CENSUS, [xm.code, sm.code, "350700"], centre.name, prometheus.url, queries(prometheus))
    )

    done = _cli("run", CENSUS, kubeconfig=cluster.kubeconfig)
    assert done.returncode == 0, done.stderr + done.stdout
    status = cluster.get("computecensuses", CENSUS)["status"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["LastRunSucceeded"]["status"] == "True", conds
    assert conds["UtilisationMeasured"]["status"] == "True", conds
    want = {c.code: c.fleet.expected() for c in cities.values()}
    assert status["totals"]["nodes"] == sum(w["nodes"]["total"] for w in want.values())
    assert status["totals"]["storageBytes"] == stored_bytes
    assert {line["cityCode"]: line["nodes"] for line in status["cities"]} == {
        code: w["nodes"]["total"] for code, w in want.items()
    }
    assert status["nextRunTime"].endswith("-01-01T00:00:00Z")
    assert status["snapshots"] == 1

    # Reports: CSV and JSON fit the ConfigMap; the HTML (plotly.js inlined) spills to the bucket, and says so.
    where = {
        loc["format"]: loc["location"]
        for loc in status["reportLocations"]
        if loc["location"].startswith("configmap")
    }
    assert set(where) == {"csv", "json", "snapshots"}, status["reportLocations"]
    assert conds["ReportsStored"]["reason"] == "Spilled"
    assert "html" in conds["ReportsStored"]["message"]
    data = cluster.kube.config_map_data(OPERATOR_NAMESPACE, f"{CENSUS}-report")
    assert "report.html" not in data
    assert "s3://" in json.loads(data["where.json"])["elsewhere"]["html"][0]

    rows = list(csv.DictReader(io.StringIO(data["report.csv"])))
    assert rows[0]["level"] == "province"
    for code, w in want.items():
        city = next(r for r in rows if r["level"] == "city" and r["city_code"] == code)
        assert int(city["nodes_total"]) == w["nodes"]["total"]
        assert int(city["nodes_ready"]) == w["nodes"]["ready"]
        assert int(city["nodes_schedulable"]) == w["nodes"]["schedulable"]
        assert float(city["cpu_capacity"]) == w["cpu_capacity"]
        assert float(city["cpu_allocatable"]) == w["cpu_allocatable"]
        assert float(city["cpu_schedulable"]) == w["cpu_schedulable"]
        assert float(city["cpu_requested"]) == w["cpu_requested"]
        assert float(city["memory_requested"]) == w["memory_requested"]
        assert int(city["gpu_requested"]) == sum(g["requested"] for g in w["gpus"].values())
        free = [f for f in _free(cities["xiamen" if code == xm.code else "sanming"].fleet)]
        assert float(city["cpu_largest_free"]) == max(f["cpu"] for f in free) / 1000
        assert int(city["data_age_seconds"]) >= 0
        assert city["data_time"]
        assert city["cpu_exhaustion_note"] == "not enough history"
    province = rows[0]
    assert float(province["cpu_requested"]) == sum(w["cpu_requested"] for w in want.values())
    assert float(province["cpu_committed"]) == 40.0
    xm_row = next(r for r in rows if r["level"] == "city" and r["city_code"] == xm.code)
    assert float(xm_row["cpu_overcommit_ratio"]) == pytest.approx(
        40 / want[xm.code]["cpu_allocatable"], abs=1e-4
    )
    assert int(xm_row["storage_bytes"]) == stored_bytes
    centre_row = next(r for r in rows if r["level"] == "centre" and r["centre"] == centre.name)
    assert int(centre_row["storage_objects"]) == 7
    assert int(centre_row["storage_bytes"]) == stored_bytes
    # Utilisation from the real Prometheus: the fd limit is constant, so its average and p95 are that value.
    limit = prometheus.query(f'max(process_max_fds{{instance="127.0.0.1:{prometheus.port}"}})')
    fds = float(limit["data"]["result"][0]["value"][1])
    node1 = next(
        r for r in rows if r["level"] == "centre" and r["city_code"] == xm.code and r["centre"] == "centre-1"
    )
    assert float(node1["memory_used_avg"]) == fds
    assert float(node1["memory_used_p95"]) == fds
    node0 = next(
        r for r in rows if r["level"] == "centre" and r["city_code"] == xm.code and r["centre"] == "centre-0"
    )
    assert 0 < float(node0["cpu_used_avg"]) <= float(node0["cpu_used_p95"])
    assert "350700" in " ".join(
        json.loads(data["report.json"])["problems"]
    )  # in scope, but no such city cloud

    # The HTML from the bucket, in headless Chromium: no console errors, four charts, the tables.
    s3 = boto3.client(
        "s3",
        endpoint_url=centre.endpoint,
        aws_access_key_id=centre.access_key,
        aws_secret_access_key=centre.secret_key,
        region_name="us-east-1",
    )
    page = tmp_path / "census.html"
    page.write_bytes(s3.get_object(Bucket=BUCKET, Key=f"reports/{CENSUS}/latest/report.html")["Body"].read())
    if chromium() is None:
        pytest.fail("chromium is not installed; tools/build.sh installs it")
    probe = (
        "({charts: document.querySelectorAll('.js-plotly-plot').length,"
        " drawn: document.querySelectorAll('.js-plotly-plot .main-svg').length,"
        " rows: document.querySelectorAll('#census-rows tbody tr').length,"
        " gpus: document.querySelectorAll('#census-gpus tbody tr').length,"
        " heading: document.querySelector('h1').innerText})"
    )
    shot = tmp_path / "census-report.png"
    result = open_page(page.as_uri(), probe, shot)
    print(f"census report screenshot: {shot}")
    assert result.errors == []
    assert result.probe["charts"] == 4
    assert result.probe["drawn"] >= 4
    assert "算力资源普查报告" in result.probe["heading"]
    assert "Compute census report" in result.probe["heading"]
    assert result.probe["rows"] == sum(1 for r in rows if r["level"] != "gpu")
    assert result.probe["gpus"] == sum(1 for r in rows if r["level"] == "gpu")
    assert shot.stat().st_size > 10_000

    # Placement advice, checked against the free capacity computed here from the fleets.
    placed = _cli(
        "place",
        CENSUS,
        "--cpu",
        "2",
        "--memory",
        "4Gi",
        "--gpu",
        "1",
        "--gpu-model",
        "A100",
        "--city",
        sm.code,
        "--json",
        kubeconfig=cluster.kubeconfig,
    )
    assert placed.returncode == 0, placed.stderr
    advice = json.loads(placed.stdout)
    expected = set()
    for city in cities.values():
        for f in _free(city.fleet):
            if f["gpu"] >= 1 and "A100" in f["model"] and f["cpu"] >= 2000 and f["memory_mib"] >= 4096:
                expected.add((city.code, f["centre"]))
    assert {(r["city"], r["centre"]) for r in advice["ranked"]} == expected
    assert advice["ranked"][0]["city"] == sm.code  # the preferred city first
    reasons = {(e["city"], e["centre"]): e["reason"] for e in advice["excluded"]}
    assert "no free GPU of model A100" in reasons[(xm.code, "centre-1")]  # the L40S centre
    assert (sm.code, "centre-0") in expected  # the fleet leaves an A100 free there

    # Two more runs while Sanming grows: a trend, a forecast, the metric the alert reads.
    writer = Writer(sm.server)
    for run in range(2):
        for j in range(10):
            pod = FleetPod(f"grow-{run}-{j}", sm.fleet.namespace, "node-0", 4000, 512, 0, "Running")
            create_pod(writer, pod)
            sm.fleet.pods.append(pod)
        again = _cli("run", CENSUS, kubeconfig=cluster.kubeconfig)
        assert again.returncode == 0, again.stderr
    status = cluster.get("computecensuses", CENSUS)["status"]
    assert status["snapshots"] == 3
    rows = list(
        csv.DictReader(
            io.StringIO(cluster.kube.config_map_data(OPERATOR_NAMESPACE, f"{CENSUS}-report")["report.csv"])
        )
    )
    sm_row = next(r for r in rows if r["level"] == "city" and r["city_code"] == sm.code)
    assert float(sm_row["delta_cpu_requested"]) == 40.0
    days = float(sm_row["cpu_days_until_exhaustion"])
    assert days > 0
    xm_row = next(r for r in rows if r["level"] == "city" and r["city_code"] == xm.code)
    assert xm_row["cpu_exhaustion_note"] == "not growing"
    flat = _metric(
        operator["metrics"], "datacloud_census_days_until_exhaustion", city=xm.name, resource="cpu"
    )
    assert flat == float("inf")
    metric = _metric(
        operator["metrics"], "datacloud_census_days_until_exhaustion", city=sm.name, resource="cpu"
    )
    assert metric == pytest.approx(days, abs=0.05)
    assert _metric(operator["metrics"], "datacloud_census_last_run_success", census=CENSUS) == 1.0
    assert (
        _metric(operator["metrics"], "datacloud_census_last_run_timestamp_seconds", census=CENSUS) or 0
    ) > 0


def test_bad_input_is_refused_with_a_readable_message(cluster: Cluster) -> None:
    unknown = _cli(
        "place", "--cpu", "1", "--memory", "1Gi", "--city", "999999", kubeconfig=cluster.kubeconfig
    )
    assert unknown.returncode == 2
    assert "unknown city '999999'" in unknown.stderr
    for flag, value in (("--memory", "12Gx"), ("--cpu", "-3"), ("--cpu", "lots")):
        args = {"--cpu": "1", "--memory": "1Gi", flag: value}
        bad = _cli("place", *[x for kv in args.items() for x in kv], kubeconfig=cluster.kubeconfig)
        assert bad.returncode == 2, bad.stderr
        assert "not a" in bad.stderr, bad.stderr
        assert "quantity" in bad.stderr, bad.stderr
    missing = _cli("run", f"no-such-census-{SUFFIX}", kubeconfig=cluster.kubeconfig)
    assert missing.returncode == 2
    assert "not found" in missing.stderr
    refused = cluster.apply(
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "ComputeCensus",
            "metadata": {"name": f"bad-{SUFFIX}"},
            "spec": {"schedule": "0 6 * * *", "utilisation": {"window": "a week"}},
        }
    )
    assert refused.returncode != 0
    assert "spec.utilisation.window" in refused.stderr


def test_an_unreachable_prometheus_is_a_condition_not_a_failed_census(
    cluster: Cluster, cities: dict[str, City], store: tuple[Centre, int], tmp_path: Path
) -> None:
    from datacloud.devstack.process import free_port

    name = f"census-noprom-{SUFFIX}"
    doc = census_doc(name, [cities["sanming"].code], store[0].name, f"http://127.0.0.1:{free_port()}", {})
    cluster.must_apply(doc)
    done = _cli("run", name, kubeconfig=cluster.kubeconfig)
    assert done.returncode == 0, done.stderr
    conds = {c["type"]: c for c in cluster.get("computecensuses", name)["status"]["conditions"]}
    assert conds["LastRunSucceeded"]["status"] == "True"
    assert conds["UtilisationMeasured"]["status"] == "False"
    assert conds["UtilisationMeasured"]["reason"] == "PrometheusUnreachable"
    reasons = {e["reason"] for e in cluster.events_for(name)}
    assert {"CensusCompleted", "UtilisationNotMeasured"} <= reasons
    # The CLI report works without the operator: collected afresh, written locally.
    out = tmp_path / "report.csv"
    report = _cli("report", name, "--format", "csv", "-o", str(out), kubeconfig=cluster.kubeconfig)
    assert report.returncode == 0, report.stderr
    assert "PrometheusUnreachable" in report.stderr  # the problem is shown, not hidden
    rows = list(csv.DictReader(out.open()))
    want = cities["sanming"].fleet.expected()
    city = next(r for r in rows if r["level"] == "city")
    assert int(city["nodes_total"]) == want["nodes"]["total"]
    assert city["cpu_used_avg"] == ""
    cluster.kubectl("delete", "computecensus", name, "--wait=false")


def test_a_report_the_api_server_refuses_says_why(cluster: Cluster) -> None:
    """A ConfigMap target in a namespace that does not exist: ReportsStored said only 'ApiException'; now
    the API server's status and message (which namespace is missing)."""
    spec = ComputeCensusSpec.model_validate(
        {"schedule": "@weekly", "reports": {"configMap": {"name": "r", "namespace": "no-such-ns-census"}}}
    )
    stored = census_reconcile.publish(cluster.kube, "c", spec, None, {"json": b"{}"}, "2026-01-01T00:00:00Z")
    assert len(stored.problems) == 1
    assert stored.problems[0].startswith("ConfigMap no-such-ns-census/r: 404 Not Found: ")
    assert 'namespaces "no-such-ns-census" not found' in stored.problems[0]
