"""No credential ever appears in the operator's logs, in any datacloud object (spec or status), in Events,
in ConfigMaps or on /metrics — after the operator has worked with good, wrong and malformed credentials of
every kind it reads: object-store keys (DataCentre, DRReplica) and city kubeconfigs (CityDataCloud).

tests/integration/test_datacentre_health.py checks one wrong secret key for one centre; this file makes
every kind of credential fail (and succeed) and then searches everything a user can read for every secret
value stored in the operator's namespace, raw and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from datacloud.adapters import s3
from datacloud.devstack.stack import OPERATOR_NAMESPACE
from tests.support.cluster import Cluster, wait_until
from tests.support.fleet import embedded_kubeconfig

pytestmark = pytest.mark.integration

G = "datacloud.fujian.gov.cn/v1alpha1"
SUFFIX = os.urandom(3).hex()
NS = f"nocreds-{SUFFIX}"
CANARY_KEY = f"AKIACANARY{SUFFIX.upper()}"
CANARY_SECRET = f"canary-secret-{SUFFIX}-do-not-log"
CANARY_TOKEN = f"canary-token-{SUFFIX}-do-not-log"
CANARY_BROKEN = f"canary-broken-{SUFFIX}-do-not-log"


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "stringData": data,
    }


def datacentre(name: str, endpoint: str, secret_name: str) -> dict[str, Any]:
    return {
        "apiVersion": G,
        "kind": "DataCentre",
        "metadata": {"name": name},
        "spec": {
            "city": "350100",
            "role": "Compute",
            "objectStore": {
                "endpoint": endpoint,
                "credentialsSecretRef": {"name": secret_name, "namespace": OPERATOR_NAMESPACE},
            },
            "probe": {"interval": "1s", "timeout": "1s", "failureThreshold": 1},
        },
    }


def city(name: str, secret_name: str) -> dict[str, Any]:
    return {
        "apiVersion": G,
        "kind": "CityDataCloud",
        "metadata": {"name": name},
        "spec": {
            "cityCode": "350800",
            "displayName": {"zh": "龙岩", "en": "Longyan"},
            "cluster": {"kubeconfigSecretRef": {"name": secret_name, "namespace": OPERATOR_NAMESPACE}},
            "heartbeat": {"period": "1s", "grace": "3s"},
        },
    }


def condition(cluster: Cluster, plural: str, name: str, type_: str, ns: str | None = None) -> dict[str, Any]:
    conditions = (cluster.get(plural, name, ns).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


@pytest.fixture(scope="module")
def exercised(cluster: Cluster, operator: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Objects that make the operator use good, wrong and malformed credentials; returns their names."""
    stack_centre = cluster.stack.centres["fz-prod"]
    main = cluster.stack.control_plane.main
    names = {
        "good_dc": f"nc-good-{SUFFIX}",
        "bad_dc": f"nc-bad-{SUFFIX}",
        "good_city": f"nc-city-good-{SUFFIX}",
        "token_city": f"nc-city-token-{SUFFIX}",
        "broken_city": f"nc-city-broken-{SUFFIX}",
        "replica": f"nc-drr-{SUFFIX}",
    }
    bucket = f"nc-{SUFFIX}"
    root = s3.client(
        s3.S3Endpoint(
            stack_centre.endpoint,
            "us-east-1",
            s3.S3Credentials(stack_centre.access_key, stack_centre.secret_key),
        )
    )
    root.create_bucket(Bucket=bucket)
    root.put_object(Bucket=bucket, Key="a", Body=b"payload")
    broken_kubeconfig = f"apiVersion: v1\nkind: Config\nusers: [{{name: x, user: {{token: {CANARY_BROKEN}"
    cluster.must_apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        secret(f"nc-wrong-{SUFFIX}", accessKeyId=CANARY_KEY, secretAccessKey=CANARY_SECRET),
        secret(f"nc-good-kc-{SUFFIX}", kubeconfig=embedded_kubeconfig(main)),
        secret(f"nc-token-kc-{SUFFIX}", kubeconfig=embedded_kubeconfig(main, token=CANARY_TOKEN)),
        secret(f"nc-broken-kc-{SUFFIX}", kubeconfig=broken_kubeconfig),
    )
    cluster.must_apply(
        datacentre(names["good_dc"], stack_centre.endpoint, "centre-fz-prod"),
        datacentre(names["bad_dc"], stack_centre.endpoint, f"nc-wrong-{SUFFIX}"),
        city(names["good_city"], f"nc-good-kc-{SUFFIX}"),
        city(names["token_city"], f"nc-token-kc-{SUFFIX}"),
        city(names["broken_city"], f"nc-broken-kc-{SUFFIX}"),
        {
            "apiVersion": G,
            "kind": "DRReplica",
            "metadata": {"name": names["replica"], "namespace": NS},
            "spec": {
                "source": {"centre": names["good_dc"], "bucket": bucket},
                "activeCentre": names["good_dc"],
                "targets": [
                    {
                        "name": "wrong-keys",
                        "centre": names["bad_dc"],
                        "bucket": bucket,
                        "mode": "Continuous",
                        "rpoTarget": "10s",
                    }
                ],
            },
        },
    )

    def health(name: str) -> str | None:
        return (cluster.get("datacentres", name).get("status") or {}).get("health")

    wait_until(lambda: health(names["good_dc"]) == "Up", 60, what="good centre Up")
    wait_until(lambda: health(names["bad_dc"]) == "Down", 60, what="wrong-keys centre Down")
    for key, want in (("good_city", "True"), ("token_city", "False"), ("broken_city", "False")):

        def available(k: str = key, w: str = want) -> bool:
            return condition(cluster, "citydataclouds", names[k], "Available").get("status") == w

        wait_until(available, 60, what=f"{key} Available={want}")
    wait_until(
        lambda: (cluster.get("drreplicas", names["replica"], NS).get("status") or {}).get("conditions"),
        60,
        what="replica status written",
    )
    yield names
    for plural, key in (("datacentre", "good_dc"), ("datacentre", "bad_dc"), ("citydatacloud", "good_city"),
                        ("citydatacloud", "token_city"), ("citydatacloud", "broken_city")):  # fmt: skip
        cluster.kubectl("delete", plural, names[key], "--wait=false")
    cluster.kubectl("delete", "namespace", NS, "--wait=false")


def credentials(cluster: Cluster) -> set[str]:
    """Every secret value the operator can read: object-store keys and the private parts of kubeconfigs."""
    out = cluster.kubectl("-n", OPERATOR_NAMESPACE, "get", "secrets", "-o", "json")
    assert out.returncode == 0, out.stderr
    found: set[str] = set()
    for item in json.loads(out.stdout)["items"]:
        for key, encoded in (item.get("data") or {}).items():
            text = base64.b64decode(encoded).decode(errors="replace")
            if key in ("accessKeyId", "secretAccessKey"):
                found.add(text)
            elif "kind: Config" in text or "apiVersion" in text:
                found |= kubeconfig_secrets(text)
    return {f for f in found if len(f) >= 10}


def kubeconfig_secrets(text: str) -> set[str]:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        # A kubeconfig too broken to parse: every long token in it counts as secret.
        return {word for word in text.replace("}", " ").replace("]", " ").split() if len(word) >= 20}
    found: set[str] = set()
    for user in (config or {}).get("users") or []:
        u = user.get("user") or {}
        if u.get("token"):
            found.add(str(u["token"]))
        if u.get("client-key-data"):
            found.add(str(u["client-key-data"]))
            pem = base64.b64decode(u["client-key-data"]).decode()
            body = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
            found |= {ln for ln in body if len(ln) >= 40}  # any line of the private key
    return found


def readable(cluster: Cluster, operator: dict[str, Any]) -> dict[str, str]:
    """Everything a user or an SRE can read about the operator's work."""
    sources = {
        "operator log": operator["log"].read_text(errors="replace"),
        "datacloud objects": cluster.kubectl("get", "datacloud", "-A", "-o", "json").stdout,
        "events": cluster.kubectl("get", "events", "-A", "-o", "json").stdout,
        "configmaps": cluster.kubectl("get", "configmaps", "-A", "-o", "json").stdout,
    }
    with urllib.request.urlopen(operator["metrics"], timeout=5) as resp:  # noqa: S310 (loopback)
        sources["metrics"] = resp.read().decode()
    return sources


def test_failures_were_reported_in_status_and_events(cluster: Cluster, exercised: dict[str, str]) -> None:
    """The operator did meet the bad credentials (so the search below is not vacuous)."""
    ready = condition(cluster, "datacentres", exercised["bad_dc"], "Ready")
    assert ready["reason"] == "AuthenticationFailed"
    for key in ("token_city", "broken_city"):
        available = condition(cluster, "citydataclouds", exercised[key], "Available")
        assert available["status"] == "False"
        assert available.get("message")
    assert cluster.events_for(exercised["bad_dc"])


def test_no_credential_appears_anywhere(
    cluster: Cluster, operator: dict[str, Any], exercised: dict[str, str]
) -> None:
    secrets = credentials(cluster)
    assert {CANARY_KEY, CANARY_SECRET, CANARY_TOKEN} <= secrets
    assert any(CANARY_BROKEN in s for s in secrets)
    assert len(secrets) >= 8
    sources = readable(cluster, operator)
    assert exercised["bad_dc"] in sources["datacloud objects"]  # the objects are in what was searched
    leaks = []
    for value in secrets:
        forms = {value, base64.b64encode(value.encode()).decode()}
        for where, text in sources.items():
            if any(form in text for form in forms):
                leaks.append(f"{value[:4]}… in {where}")
    assert not leaks, leaks


def json_records(operator: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for line in operator["log"].read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def test_json_log_records_carry_the_object_reference(cluster: Cluster, operator: dict[str, Any]) -> None:
    """With --log-format json, records about an object name it (kopf's `object` field): apiVersion, kind,
    name, uid (and namespace for namespaced kinds). A zone's deletion is logged by its handler."""
    zone = f"nc-zone-{SUFFIX}"
    cluster.must_apply(
        {
            "apiVersion": G,
            "kind": "DataZone",
            "metadata": {"name": zone},
            "spec": {
                "department": {"name": "省大数据管理局", "code": "FJ-DSJ"},
                "classification": "General",
                "namespaces": [zone],
            },
        }
    )
    wait_until(
        lambda: (cluster.get("datazones", zone).get("status") or {}).get("conditions"), 60, what="zone seen"
    )
    uid = cluster.get("datazones", zone)["metadata"]["uid"]
    assert cluster.kubectl("delete", "datazone", zone, "--wait=false").returncode == 0
    about = wait_until(
        lambda: [r for r in json_records(operator) if (r.get("object") or {}).get("name") == zone],
        90,
        what="a JSON log record about the zone",
    )
    ref = about[0]["object"]
    assert (ref["apiVersion"], ref["kind"], ref["uid"]) == (G, "DataZone", uid)
    assert {"message", "timestamp", "severity"} <= set(about[0])
