"""DataCentre health against real versitygw centres, probed by the real operator process."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.devstack.stack import OPERATOR_NAMESPACE
from tests.support.cluster import Cluster, wait_until
from tests.support.metrics import metric

pytestmark = pytest.mark.integration


def datacentre(name: str, endpoint: str, secret: str, threshold: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
        "kind": "DataCentre",
        "metadata": {"name": name},
        "spec": {
            "city": "350100",
            "role": "SameCityDR",
            "objectStore": {
                "endpoint": endpoint,
                "credentialsSecretRef": {"name": secret, "namespace": OPERATOR_NAMESPACE},
            },
            "probe": {"interval": "1s", "timeout": "1s", "failureThreshold": threshold},
        },
    }


def health(cluster: Cluster, name: str) -> str | None:
    status = cluster.get("datacentres", name).get("status") or {}
    return status.get("health")


def _condition(cluster: Cluster, name: str, kind: str) -> dict[str, Any] | None:
    for c in (cluster.get("datacentres", name).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return None


def _awaited(cluster: Cluster, name: str, kind: str, status: str, reason: str) -> dict[str, Any]:
    """The centre's `kind` condition, once it has this status and reason (within a minute)."""
    found: dict[str, Any] = wait_until(
        lambda: (
            (c := _condition(cluster, name, kind)) and (c["status"], c["reason"]) == (status, reason) and c
        ),
        60,
        what=f"{kind}={status} {reason}",
    )
    return found


def test_centre_goes_down_after_threshold_and_comes_back(
    cluster: Cluster, operator: dict[str, Any], centre: Centre
) -> None:
    name = f"dc-{centre.name}"
    cluster.must_apply(datacentre(name, centre.endpoint, f"centre-{centre.name}", threshold=3))
    wait_until(lambda: health(cluster, name) == "Up", 60, what="centre Up")
    status = cluster.get("datacentres", name)["status"]
    assert status["lastProbeLatencyMs"] >= 0
    assert status["observedGeneration"] == 1
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Answering")
    assert wait_until(lambda: metric(operator["metrics"], "datacloud_centre_up", centre=name) == 1.0, 20)

    centre.stop()
    seen: list[tuple[str | None, int]] = []

    def down() -> bool:
        s = cluster.get("datacentres", name).get("status") or {}
        seen.append((s.get("health"), s.get("consecutiveFailures", 0)))
        return s.get("health") == "Down"

    wait_until(down, 60, interval=0.2, what="centre Down")
    # Not Down before the threshold: every observation short of 3 failures was another state.
    assert all(h != "Down" for h, failures in seen if failures < 3)
    status = cluster.get("datacentres", name)["status"]
    assert status["consecutiveFailures"] >= 3
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "Unreachable"
    assert wait_until(lambda: metric(operator["metrics"], "datacloud_centre_up", centre=name) == 0.0, 20)

    centre.restart()
    wait_until(lambda: health(cluster, name) == "Up", 60, what="centre Up again")
    reasons = wait_until(
        lambda: (
            (r := [e["reason"] for e in cluster.events_for(name)])
            and {"CentreUp", "CentreDown"} <= set(r)
            and r
        ),
        20,
        what="transition events",
    )
    assert "CentreDown" in reasons


def test_missing_secret_is_a_condition_not_a_crash(cluster: Cluster, operator: dict[str, Any]) -> None:
    name = "dc-no-secret"
    cluster.must_apply(datacentre(name, "http://127.0.0.1:9", "does-not-exist"))
    _awaited(cluster, name, "Probing", "False", "SecretNotFound")
    assert health(cluster, name) == "Unknown"
    assert operator["process"].alive()
    cluster.kubectl("delete", "datacentre", name, "--wait=false")


def test_wrong_credentials_fail_the_probe_without_leaking_them(
    cluster: Cluster, operator: dict[str, Any], centre: Centre
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "wrong-creds", "namespace": OPERATOR_NAMESPACE},
        "stringData": {"accessKeyId": "AKIAWRONGWRONG", "secretAccessKey": "s3cr3t-never-shown"},
    }
    cluster.must_apply(secret)
    name = f"dc-badcreds-{centre.name}"
    cluster.must_apply(datacentre(name, centre.endpoint, "wrong-creds", threshold=1))
    wait_until(lambda: health(cluster, name) == "Down", 60, what="Down on bad credentials")
    status = cluster.get("datacentres", name)["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "AuthenticationFailed"
    everything = repr(status) + repr(cluster.events_for(name)) + operator["log"].read_text()
    assert "s3cr3t-never-shown" not in everything
    assert centre.secret_key not in everything
    cluster.kubectl("delete", "datacentre", name, "--wait=false")


def test_a_key_ending_in_a_line_break_is_named_not_probed(
    cluster: Cluster, operator: dict[str, Any], centre: Centre
) -> None:
    """`kubectl create secret --from-file` keeps a file's last newline. Sent as it is, the key made every
    probe fail (HTTP 400, or SignatureDoesNotMatch) and the centre read Down, which fails its replicas
    over; now the centre is not probed, says which key is wrong, and comes Up once the key is mended."""
    secret_name = f"newline-creds-{centre.name}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": OPERATOR_NAMESPACE},
        "stringData": {"accessKeyId": centre.access_key, "secretAccessKey": centre.secret_key + "\n"},
    }
    cluster.must_apply(secret)
    name = f"dc-newline-{centre.name}"
    cluster.must_apply(datacentre(name, centre.endpoint, secret_name, threshold=1))
    probing = _awaited(cluster, name, "Probing", "False", "SecretValueInvalid")
    assert "secretAccessKey ends with a line break" in probing["message"]
    assert health(cluster, name) == "Unknown"
    everything = repr(cluster.get("datacentres", name)) + repr(cluster.events_for(name))
    assert centre.secret_key not in everything + operator["log"].read_text()

    secret["stringData"]["secretAccessKey"] = centre.secret_key
    cluster.must_apply(secret)
    wait_until(lambda: health(cluster, name) == "Up", 60, what="Up once the key is mended")
    cluster.kubectl("delete", "datacentre", name, "--wait=false")


def test_a_region_the_store_does_not_sign_for_is_named(
    cluster: Cluster, operator: dict[str, Any], centre: Centre
) -> None:
    """The store's answer names the region it expects; the condition passes it on (it said only
    `S3Error: AuthorizationHeaderMalformed (HTTP 400)`)."""
    name = f"dc-region-{centre.name}"
    doc = datacentre(name, centre.endpoint, f"centre-{centre.name}", threshold=1)
    doc["spec"]["objectStore"]["region"] = "cn-fujian-1"
    cluster.must_apply(doc)
    ready = _awaited(cluster, name, "Ready", "False", "S3Error")
    assert "cn-fujian-1" in ready["message"]
    assert "spec.objectStore.region" in ready["message"]
    cluster.kubectl("delete", "datacentre", name, "--wait=false")


def test_deleted_centre_series_are_dropped(
    cluster: Cluster, operator: dict[str, Any], centre: Centre
) -> None:
    name = f"dc-gone-{centre.name}"
    cluster.must_apply(datacentre(name, centre.endpoint, f"centre-{centre.name}"))
    wait_until(lambda: metric(operator["metrics"], "datacloud_centre_up", centre=name) == 1.0, 60)
    assert cluster.kubectl("delete", "datacentre", name).returncode == 0
    wait_until(
        lambda: metric(operator["metrics"], "datacloud_centre_up", centre=name) is None,
        30,
        what="series dropped",
    )


def test_liveness_endpoint_answers(operator: dict[str, Any]) -> None:
    with urllib.request.urlopen(operator["liveness"], timeout=5) as resp:  # noqa: S310
        assert resp.status == 200


def test_operator_logs_are_json(operator: dict[str, Any], cluster: Cluster) -> None:
    import json

    lines = [ln for ln in operator["log"].read_text().splitlines() if ln.strip().startswith("{")]
    assert lines, "no JSON log lines"
    record = json.loads(lines[-1])
    assert {"message", "timestamp"} <= set(record) or {"message", "severity"} <= set(record)
    assert not re.search(r"secretAccessKey\W+\w{10,}", operator["log"].read_text())
