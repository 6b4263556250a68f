"""docs/metrics.md against what the real operator exports once objects of every kind exist.

Forward: every `datacloud_` metric the operator exports is catalogued, with the same type and labels.
Reverse (one test per catalogued metric): every catalogued metric is exported. Metrics of an area that is
not written yet fail here by name, on purpose.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from datacloud.devstack.process import free_port
from datacloud.devstack.stack import OPERATOR_NAMESPACE
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, dr_centres, replica, status
from tests.support.fleet import create_fleet, embedded_kubeconfig, make_fleet

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "metrics.md"
SUFFIX = os.urandom(2).hex()
G = "datacloud.fujian.gov.cn/v1alpha1"
ROW = re.compile(r"^\|\s*`(datacloud_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|([^|]*)\|\s*$")

assert dr_centres  # a fixture imported from tests/support/dr.py: the stack's centres as DataCentres


@dataclass(frozen=True)
class Entry:
    name: str
    type: str
    labels: frozenset[str]
    meaning: str


def catalogue() -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for line in CATALOGUE.read_text().splitlines():
        m = ROW.match(line)
        if m:
            name, type_, labels, meaning = m.groups()
            assert name not in entries, f"{name} catalogued twice"
            entries[name] = Entry(name, type_, frozenset(re.findall(r"`(\w+)`", labels)), meaning.strip())
    return entries


@dataclass
class Seen:
    """Metrics seen on /metrics over a time window: name → type and every label-name set."""

    types: dict[str, str] = field(default_factory=dict)
    labels: dict[str, set[frozenset[str]]] = field(default_factory=dict)

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            name = family.name + ("_total" if family.type == "counter" else "")
            if not name.startswith("datacloud_"):
                continue
            self.types[name] = family.type
            for sample in family.samples:
                if sample.name == name or family.type != "counter":
                    self.labels.setdefault(name, set()).add(frozenset(sample.labels) - {"le", "quantile"})


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback)
        return str(resp.read().decode())


def test_catalogue_is_well_formed() -> None:
    entries = catalogue()
    assert len(entries) >= 30
    for e in entries.values():
        assert e.type in {"gauge", "counter", "histogram", "summary"}, e
        assert e.meaning, e
        assert e.name.endswith("_total") == (e.type == "counter"), (
            f"{e.name}: counters and only counters end in _total"
        )


def citydatacloud(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": G,
        "kind": "CityDataCloud",
        "metadata": {"name": name},
        "spec": {
            "cityCode": "350300",
            "displayName": {"zh": "莆田", "en": "Putian"},
            "cluster": {"kubeconfigSecretRef": {"name": secret, "namespace": OPERATOR_NAMESPACE}},
            "heartbeat": {"period": "1s", "grace": "5s"},
        },
    }


@pytest.fixture(scope="module")
def seen(cluster: Cluster, operator: dict[str, Any], dr_centres: dict[str, Any]) -> Iterator[Seen]:
    """One object of every kind (a city with a small fleet, a zone, a replica taken through a switchover,
    a census), and the union of what /metrics showed while they were reconciled."""
    plane = cluster.stack.control_plane
    seen = Seen()
    city, zone, drr, census = (f"cat-{kind}-{SUFFIX}" for kind in ("city", "zone", "drr", "census"))
    bucket = f"cat-{SUFFIX}"
    server = plane.add_apiserver(city, port=free_port())
    try:
        create_fleet(server, make_fleet("350300", 6, 12))
        text = embedded_kubeconfig(server)
        cluster.must_apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{city}-kubeconfig", "namespace": OPERATOR_NAMESPACE},
                "stringData": {"kubeconfig": text},
            },
            citydatacloud(city, f"{city}-kubeconfig"),
            {
                "apiVersion": G,
                "kind": "DataZone",
                "metadata": {"name": zone},
                "spec": {
                    "department": {"name": "省大数据管理局", "code": "FJ-DSJ"},
                    "classification": "General",
                    "namespaces": [zone],
                    "quota": {"hard": {"requests.cpu": "4", "pods": "10"}},
                },
            },
            {
                "apiVersion": G,
                "kind": "ComputeCensus",
                "metadata": {"name": census},
                "spec": {"schedule": "* * * * *", "retain": 2},
            },
        )
        allow_app(dr_centres["fz-prod"], bucket)
        allow_app(dr_centres["fz-samecity-dr"], bucket)
        cluster.must_apply(replica(drr, bucket))

        def protected() -> bool:
            seen.add(scrape(operator["metrics"]))
            return status(cluster, drr).get("phase") == "Protected"

        wait_until(protected, 90, interval=0.2, what="replica Protected")
        patch = {
            "spec": {"action": {"type": "Switchover", "targetCentre": "fz-samecity-dr", "requestId": "CAT-1"}}
        }
        done = cluster.kubectl(
            "-n", NAMESPACE, "patch", "drreplica", drr, "--type", "merge", "-p", json.dumps(patch)
        )
        assert done.returncode == 0, done.stderr

        def switched() -> bool:
            seen.add(scrape(operator["metrics"]))
            return bool((status(cluster, drr).get("action") or {}).get("finishedAt"))

        # Polled fast: the action's in-progress series exist only while it runs.
        wait_until(switched, 120, interval=0.05, what="switchover finished")
        wanted = set(catalogue())
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not wanted <= set(seen.types):
            seen.add(scrape(operator["metrics"]))
            time.sleep(0.5)
        yield seen
    finally:
        for kind, name in (("citydatacloud", city), ("datazone", zone), ("computecensus", census)):
            cluster.kubectl("delete", kind, name, "--wait=false")
        cluster.kubectl("-n", NAMESPACE, "delete", "drreplica", drr, "--wait=false")
        plane.stop_apiserver(city)


def test_every_exported_metric_is_catalogued(seen: Seen) -> None:
    entries = catalogue()
    assert seen.types, "the operator exported no datacloud_ metric at all"
    missing = sorted(set(seen.types) - set(entries))
    assert not missing, f"exported but not in docs/metrics.md: {missing}"
    for name, type_ in seen.types.items():
        assert entries[name].type == type_, f"{name}: exported as {type_}, catalogued as {entries[name].type}"
        for labels in seen.labels.get(name, set()):
            assert labels == entries[name].labels, f"{name}: exported labels {sorted(labels)}"


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_catalogued_metric_is_exported(seen: Seen, name: str) -> None:
    assert name in seen.types, f"{name} is in docs/metrics.md but the operator never exported it"
