"""Malformed manifests are refused by the real API server, through the real kubectl, naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _sample(kind: str, name: str | None = None) -> dict[str, Any]:
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
                return copy.deepcopy(doc)
    raise LookupError(kind)


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path (list indexes as numbers); value None deletes the key."""
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if value is None:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def case(kind: str, path: str, value: Any, expect: str, sample: str | None = None) -> Any:
    return pytest.param(kind, sample, [(path, value)], expect, id=f"{kind}:{path}={value!r}"[:80])


def multi(kind: str, changes: list[tuple[str, Any]], expect: str, ident: str) -> Any:
    return pytest.param(kind, None, changes, expect, id=f"{kind}:{ident}")


TARGET_COPY = {
    "name": "same-city",
    "centre": "fz-samecity-dr",
    "bucket": "b-copy",
    "mode": "Continuous",
    "rpoTarget": "30s",
}

CASES = [
    # DataCentre
    case("DataCentre", "spec.role", "Primary", 'spec.role: Unsupported value: "Primary"'),
    case("DataCentre", "spec.city", "110000", "spec.city"),
    case("DataCentre", "spec.objectStore.endpoint", "oss.example", "spec.objectStore.endpoint"),
    # Endpoints the pattern admitted but the probe could not use (it raised on each probe), or that would
    # show a password wherever the endpoint is shown.
    case("DataCentre", "spec.objectStore.endpoint", "http://127.0.0.1:abc", "must be a URL"),
    case("DataCentre", "spec.objectStore.endpoint", "http://127.0.0.1:99999", "port from 1 to 65535"),
    case("DataCentre", "spec.objectStore.endpoint", "https://oss.fz.example/s3", "must not have a path"),
    case("DataCentre", "spec.objectStore.endpoint", "http://127.0.0.1:0", "port from 1 to 65535"),
    case("DataCentre", "spec.objectStore.endpoint", "http://:7070", "must name a host"),
    case("DataCentre", "spec.objectStore.endpoint", "http://k:hunter2@h:7070", "must not carry a user"),
    case("DataCentre", "spec.objectStore.endpoint", "http://h:7070/?x=1", "query or fragment"),
    case("DataCentre", "spec.probe.interval", "-5s", "spec.probe.interval"),
    case("DataCentre", "spec.probe.interval", "ten seconds", "spec.probe.interval"),
    case("DataCentre", "spec.probe.failureThreshold", 0, "spec.probe.failureThreshold"),
    case("DataCentre", "spec.probe.timeout", "1m", "probe.timeout must not be longer than probe.interval"),
    case(
        "DataCentre", "spec.objectStore.secretAccessKey", "hunter2", "credentials must not be written inline"
    ),
    case(
        "DataCentre", "spec.objectStore.credentialsSecretRef", None, "spec.objectStore.credentialsSecretRef"
    ),
    case(
        "DataCentre",
        "spec.objectStore.credentialsSecretRef.namespace",
        "Bad_NS",
        "credentialsSecretRef.namespace",
    ),
    # CityDataCloud
    case("CityDataCloud", "spec.cityCode", "350999", 'spec.cityCode: Unsupported value: "350999"'),
    case("CityDataCloud", "spec.heartbeat.period", "30 seconds", "spec.heartbeat.period"),
    case("CityDataCloud", "spec.heartbeat.grace", "10s", "heartbeat.grace must be at least heartbeat.period"),
    case(
        "CityDataCloud",
        "spec.heartbeat",
        {"period": "0s", "grace": "0s"},
        "heartbeat.period must be at least 1s",
    ),
    case("CityDataCloud", "spec.baseline.version", "one", "spec.baseline.version"),
    case("CityDataCloud", "spec.cluster.kubeconfigSecretRef", None, "spec.cluster.kubeconfigSecretRef"),
    # A display name goes into CSV rows and terminal tables: no control characters.
    case("CityDataCloud", "spec.displayName.zh", "厦门\r", "spec.displayName.zh"),
    # DataZone
    case("DataZone", "spec.classification", "Secret", 'spec.classification: Unsupported value: "Secret"'),
    case("DataZone", "spec.namespaces", [], "spec.namespaces"),
    case("DataZone", "spec.namespaces", ["Zone_A"], "spec.namespaces[0]"),
    case("DataZone", "spec.quota.hard", {"requests.cpu": "lots"}, "spec.quota.hard[requests.cpu]"),
    case("DataZone", "spec.quota.hard", {"requests.memory": "-4Gi"}, "spec.quota.hard[requests.memory]"),
    case("DataZone", "spec.network.egress", [{"cidr": "10.0.0.0/33"}], "must be a CIDR block"),
    case(
        "DataZone",
        "spec.network.egress",
        [{"cidr": "10.0.0.0/8", "ports": [70000]}],
        "spec.network.egress[0].ports[0]",
    ),
    case("DataZone", "spec.access.admins", ["bad group\n"], "spec.access.admins[0]"),
    # Label values: a department code must start and end with a letter or digit, a zone name fit in 63.
    case("DataZone", "spec.department.code", "-FJ-", "spec.department.code"),
    case("DataZone", "spec.department.name", "省\u202e局", "spec.department.name"),
    case("DataZone", "metadata.name", "z" * 64, "metadata.name of a DataZone must be at most 63 characters"),
    # DRReplica
    case(
        "DRReplica", "spec.targets.0.mode", "Realtime", 'spec.targets[0].mode: Unsupported value: "Realtime"'
    ),
    case("DRReplica", "spec.source.prefix", "records//2026/", "spec.source.prefix: Invalid value"),
    case("DRReplica", "spec.targets.0.prefix", "../up/", "spec.targets[0].prefix: Invalid value"),
    case("DRReplica", "spec.targets.1.prefix", "copy/./x", "must not contain an empty, . or .. path segment"),
    case("DRReplica", "spec.targets.1.schedule", "every night", "spec.targets[1].schedule"),
    case("DRReplica", "spec.targets.1.schedule", None, "a Scheduled target needs a cron schedule"),
    case("DRReplica", "spec.targets.0.rpoTarget", None, "a Continuous target needs rpoTarget"),
    case("DRReplica", "spec.targets.0.rpoTarget", "-30s", "spec.targets[0].rpoTarget"),
    # Durations the pattern admits but no timer can hold: refused at the field, with the bound.
    case("DRReplica", "spec.targets.0.rpoTarget", "8761h", "spec.targets[0].rpoTarget: Invalid value"),
    case("DRReplica", "spec.targets.0.rpoTarget", "9" * 20 + "h", "spec.targets[0].rpoTarget"),
    case("DRReplica", "spec.failover.downFor", "525601m", "at most 8760h"),
    case("ComputeCensus", "spec.utilisation.window", "99999999h", "at most 8760h"),
    case("DRReplica", "spec.targets.1.bandwidthLimit", "fast", "spec.targets[1].bandwidthLimit"),
    # Under one byte a second once made whole bytes, these were taken as no limit at all.
    case("DRReplica", "spec.targets.1.bandwidthLimit", "0", "must be at least 1Ki"),
    case("DRReplica", "spec.targets.1.bandwidthLimit", "500m", "must be at least 1Ki"),
    case("DRReplica", "spec.targets.1.bandwidthLimit", "1e999999999", "spec.targets[1].bandwidthLimit"),
    case(
        "DRReplica",
        "spec.targets.1.window",
        {"start": "25:00", "end": "05:00"},
        "spec.targets[1].window.start",
    ),
    case(
        "DRReplica", "spec.targets.1.verification", {"method": "MD5"}, "spec.targets[1].verification.method"
    ),
    case("DRReplica", "spec.targets.1.verification", {"samplePercent": 150}, "samplePercent"),
    case(
        "DRReplica", "spec.activeCentre", "sanming-dc", "activeCentre must be the source centre or the centre"
    ),
    case("DRReplica", "spec.source.bucket", "Bad_Bucket", "spec.source.bucket"),
    case("DRReplica", "spec.targets", [], "spec.targets"),
    case("DRReplica", "spec.targets.1.shards", 0, "spec.targets[1].shards"),
    case("DRReplica", "spec.failover.policy", "Sometimes", "spec.failover.policy"),
    case(
        "DRReplica",
        "spec.action",
        {"type": "Failover", "targetCentre": "nowhere", "requestId": "CHG-1"},
        "action.targetCentre must be the source centre",
    ),
    case(
        "DRReplica",
        "spec.action",
        {"type": "Explode", "targetCentre": "fz-prod", "requestId": "CHG-1"},
        "spec.action.type",
    ),
    multi("DRReplica", [("spec.targets.1", dict(TARGET_COPY))], "Duplicate value", "duplicate-target-names"),
    # Names the operator cannot name the endpoint Service after (`<name>-endpoint`, a DNS-1035 label).
    case("DRReplica", "metadata.name", "orders.v2", "metadata.name of a DRReplica must be a DNS-1035 label"),
    case("DRReplica", "metadata.name", "2024-orders", "metadata.name of a DRReplica must be a DNS-1035"),
    case("DRReplica", "metadata.name", "r" * 55, "at most 54 characters"),
    # A target's name labels its sync Jobs: at most 63 characters.
    case("DRReplica", "spec.targets.0.name", "t" * 64, "spec.targets[0].name"),
    # ComputeCensus
    case("ComputeCensus", "spec.schedule", "weekly", "spec.schedule"),
    case("ComputeCensus", "spec.retain", 0, "spec.retain"),
    case("ComputeCensus", "spec.utilisation", {"step": "0s"}, "utilisation.step must be at least 1s"),
    case("ComputeCensus", "spec.utilisation", {"step": "1s", "window": "24h"}, "at most 11000 steps"),
    case(
        "ComputeCensus",
        "spec.reports.objectStore",
        {"centre": "fz-prod", "bucket": "census-reports", "prefix": "reports//weekly/"},
        "spec.reports.objectStore.prefix: Invalid value",
    ),
    case("ComputeCensus", "spec.scope", {"cities": ["999999"]}, "spec.scope.cities[0]"),
    case("ComputeCensus", "spec.reports.formats", ["pdf"], "spec.reports.formats[0]"),
    case("ComputeCensus", "spec.prometheusUrl", "prometheus:9090", "spec.prometheusUrl"),
    # Shown in UtilisationMeasured when Prometheus fails: no password in it; a port that is one.
    case("ComputeCensus", "spec.prometheusUrl", "http://u:hunter2@prom:9090", "must not carry a user"),
    case("ComputeCensus", "spec.prometheusUrl", "http://prom:99999", "port from 1 to 65535"),
    # The census's name labels its report and snapshot ConfigMaps: a label value.
    case("ComputeCensus", "metadata.name", "c" * 64, "metadata.name of a ComputeCensus must be at most 63"),
]


@pytest.mark.parametrize(("kind", "sample", "changes", "expect"), CASES)
def test_malformed_manifest_is_refused(
    cluster: Cluster, kind: str, sample: str | None, changes: list[tuple[str, Any]], expect: str
) -> None:
    doc = _sample(kind, sample)
    doc["metadata"]["name"] = "malformed"
    doc["metadata"].pop("namespace", None) if kind != "DRReplica" else None
    for path, value in changes:
        _set(doc, path, value)
    done = cluster.apply(
        *(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "datacloud-dr"}}]
            if kind == "DRReplica"
            else []
        ),
        doc,
    )
    assert done.returncode != 0, f"accepted a malformed {kind}: {done.stdout}"
    assert expect in done.stderr, done.stderr


def test_at_least_25_malformed_cases() -> None:
    assert len(CASES) >= 25


def test_samples_are_accepted_as_is(cluster: Cluster) -> None:
    for path in sorted(SAMPLES.glob("*.yaml")):
        if path.name.startswith("00-"):
            assert cluster.kubectl("apply", "-f", str(path)).returncode == 0
            continue
        done = cluster.kubectl("apply", "--dry-run=server", "-f", str(path))
        assert done.returncode == 0, f"{path.name}: {done.stderr}"
        # "created" on a fresh cluster; "configured"/"unchanged" when another test made the same names.
        assert "(server dry run)" in done.stdout


def test_longest_usable_replica_name_is_accepted(cluster: Cluster) -> None:
    """The bound of the name rule: 54 characters, a dotted target name of 63."""
    doc = _sample("DRReplica")
    doc["metadata"]["name"] = "r" + "-x" * 26 + "z"
    doc["spec"]["targets"][0]["name"] = "near.copy-" + "n" * 53
    assert len(doc["metadata"]["name"]) == 54
    assert len(doc["spec"]["targets"][0]["name"]) == 63
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "datacloud-dr"}}
    assert cluster.apply(namespace).returncode == 0
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "endpoint", ["http://[::1]:7070", "http://127.0.0.1:07070/", "https://例子.中国", "http://localhost"]
)
def test_usable_endpoints_are_accepted(cluster: Cluster, endpoint: str) -> None:
    doc = _set(_sample("DataCentre"), "spec.objectStore.endpoint", endpoint)
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode == 0, done.stderr


def test_a_refused_endpoint_password_is_not_echoed(cluster: Cluster) -> None:
    doc = _set(_sample("DataCentre"), "spec.objectStore.endpoint", "http://k:hunter2@h:7070")
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode != 0
    assert "spec.objectStore.endpoint" in done.stderr
    assert "hunter2" not in done.stderr
