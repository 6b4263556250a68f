"""A real Prometheus scraping the real operator with the shipped rules: a centre stopped → the alert
fires in Prometheus; the dashboard's every query is accepted by Prometheus."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.devstack.prometheus import RULES_FILE, Prometheus
from datacloud.devstack.stack import OPERATOR_NAMESPACE
from tests.support.cluster import Cluster, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "dashboards" / "datacloud.json"
SUFFIX = os.urandom(2).hex()
# Grafana's own variables, replaced the way Grafana would before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$namespace": ".*", "$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


@pytest.fixture(scope="module")
def prometheus(operator: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    target = urlparse(operator["metrics"]).netloc
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"), [target]).start()
    yield prom
    prom.stop()


def datacentre(name: str, endpoint: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
        "kind": "DataCentre",
        "metadata": {"name": name},
        "spec": {
            "city": "350200",
            "role": "RemoteDR",
            "objectStore": {
                "endpoint": endpoint,
                "credentialsSecretRef": {"name": secret, "namespace": OPERATOR_NAMESPACE},
            },
            "probe": {"interval": "1s", "timeout": "1s", "failureThreshold": 2},
        },
    }


def value(prom: Prometheus, expr: str) -> float | None:
    result = prom.query(expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def alerts(prom: Prometheus, name: str, **labels: str) -> list[dict[str, Any]]:
    every = prom.api("alerts")["data"]["alerts"]
    return [
        a
        for a in every
        if a["labels"]["alertname"] == name and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def test_prometheus_scrapes_the_operator_and_loads_every_rule(prometheus: Prometheus) -> None:
    wait_until(lambda: value(prometheus, 'up{job="datacloud-operator"}') == 1.0, 30, what="operator scraped")
    groups = prometheus.api("rules")["data"]["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    shipped = set(re.findall(r"^\s+- alert: (\w+)$", RULES_FILE.read_text(), flags=re.MULTILINE))
    assert loaded == shipped
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), "a rule failed to evaluate"
    # Either may be pending from evaluations before the first successful scrape; both clear after it.
    for name in ("DatacloudOperatorDown", "DatacloudMetricsAbsent"):

        def inactive(n: str = name) -> bool:
            return alerts(prometheus, n) == []

        wait_until(inactive, 30, what=f"{name} inactive")


def test_stopped_centre_fires_centre_down_then_resolves(
    prometheus: Prometheus, cluster: Cluster, operator: dict[str, Any], centre: Centre
) -> None:
    name = f"e2e-{centre.name}"
    cluster.must_apply(datacentre(name, centre.endpoint, f"centre-{centre.name}"))
    try:
        up = f'datacloud_centre_up{{centre="{name}"}}'
        wait_until(lambda: value(prometheus, up) == 1.0, 60, what="centre Up in Prometheus")
        assert alerts(prometheus, "DatacloudCentreDown", centre=name) == []

        centre.stop()
        firing = wait_until(
            lambda: [
                a for a in alerts(prometheus, "DatacloudCentreDown", centre=name) if a["state"] == "firing"
            ],
            150,
            interval=1,
            what="DatacloudCentreDown firing",
        )
        alert = firing[0]
        assert alert["labels"]["severity"] == "critical"
        assert name in alert["annotations"]["summary"]
        assert alert["annotations"]["runbook_url"].endswith("/runbooks/DatacloudCentreDown.md")
        assert value(
            prometheus, f'ALERTS{{alertname="DatacloudCentreDown",centre="{name}",alertstate="firing"}}'
        )

        centre.restart()
        wait_until(
            lambda: alerts(prometheus, "DatacloudCentreDown", centre=name) == [], 60, what="alert resolved"
        )
    finally:
        cluster.kubectl("delete", "datacentre", name, "--wait=false")


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    out = [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
    out += [("annotation " + a["name"], a["expr"]) for a in board["annotations"]["list"] if a.get("expr")]
    for var in board["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.+),\s*\w+\)", var.get("definition", ""))
        if m:
            out.append(("variable " + var["name"], m.group(1)))
    return out


def substituted(expr: str) -> str:
    for var, replacement in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, replacement)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_every_dashboard_query_is_accepted_by_prometheus(
    prometheus: Prometheus, cluster: Cluster, operator: dict[str, Any]
) -> None:
    # A centre of the dev stack, declared under a name of our own, so the centre panels have data.
    stack_centre = cluster.stack.centres["xm-remote-dr"]
    name = f"e2e-board-{SUFFIX}"
    cluster.must_apply(datacentre(name, stack_centre.endpoint, "centre-xm-remote-dr"))
    try:
        wait_until(
            lambda: value(prometheus, f'datacloud_centre_up{{centre="{name}"}}') == 1.0,
            60,
            what="centre scraped",
        )
        queries = dashboard_queries()
        assert len(queries) >= 20
        for title, expr in queries:
            answer = prometheus.query(substituted(expr))
            assert answer["status"] == "success", f"{title}: {expr}: {answer.get('error')}"
        centre_panels = [(t, e) for t, e in queries if "datacloud_centre_" in e]
        assert centre_panels
        for title, expr in centre_panels:
            assert prometheus.query(substituted(expr))["data"]["result"], (
                f"{title}: no data for a live centre"
            )
    finally:
        cluster.kubectl("delete", "datacentre", name, "--wait=false")


def test_a_broken_query_is_refused(prometheus: Prometheus) -> None:
    """The acceptance check above is real: Prometheus answers an error for an expression it cannot parse."""
    answer = prometheus.query("sum by (centre) (datacloud_centre_up")
    assert answer["status"] == "error"
