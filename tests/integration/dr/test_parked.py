"""A continuous target that refuses one key for good: the DRReplica says so in status, an Event and a
metric (and not RPOCompliant), keeps copying the others, and clears once the target takes the key."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, keys_at, replica, root, status

pytestmark = pytest.mark.integration
BLOCKED = "blocked/内容 ü.txt"  # a key the target cannot store (see `block`), with non-ASCII in it


def block(near: Centre, bucket: str) -> None:
    """An object named like the key's folder at the target: on the gateway's file system a file sits
    where the key's directory must go, so every PUT of the key is refused. Retain keeps that object."""
    allow_app(near, bucket)
    root(near).put_object(Bucket=bucket, Key="blocked", Body=b"a file in the way")


def parked_gauge(url: str, name: str) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "datacloud_dr_parked_keys" and s.labels == {
                "namespace": NAMESPACE,
                "replica": name,
                "target": "same-city",
            }:
                return float(s.value)
    return None


def parked_events(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    return [e for e in cluster.events_for(name) if e.get("reason") == "KeysParked"]


def test_a_key_the_target_refuses_is_reported_parked_and_clears_when_taken(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    block(near, bucket)
    writer = app(prod)
    writer.put_object(Bucket=bucket, Key=BLOCKED, Body=b"cannot land")
    writer.put_object(Bucket=bucket, Key="fine.txt", Body=b"copied all the same")
    doc = replica("parked", bucket)
    doc["spec"]["targets"] = [{**doc["spec"]["targets"][0], "deletePolicy": "Retain", "rpoTarget": "1h"}]
    cleanup.append("parked")
    cluster.must_apply(doc)

    def reported() -> dict[str, Any] | None:
        s = status(cluster, "parked")
        target = next((t for t in s.get("targets") or [] if t["name"] == "same-city"), {})
        return s if target.get("parkedKeys") == 1 else None

    s = wait_until(reported, 120, what="the refused key reported parked")
    assert "fine.txt" in keys_at(near, bucket)  # the others are copied
    target = next(t for t in s["targets"] if t["name"] == "same-city")
    assert [p["key"] for p in target["parked"]] == [BLOCKED]
    assert target["parked"][0]["reason"]
    assert target["rpoCompliant"] is False  # within the 1 h RPO by lag, but the key is not replicated
    conds = {c["type"]: c for c in s["conditions"]}
    assert (conds["RPOCompliant"]["status"], conds["RPOCompliant"]["reason"]) == ("False", "KeysParked")
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "KeysParked")
    assert s["phase"] == "Degraded"
    wait_until(lambda: parked_gauge(operator["metrics"], "parked") == 1, 30, what="the parked-keys gauge")
    events = wait_until(lambda: parked_events(cluster, "parked"), 30, what="a KeysParked Event")
    assert BLOCKED in events[0]["message"]

    # Later ticks (another key copied, its figures written) announce nothing again.
    copied_before = int(target.get("objectsCopied") or 0)
    writer.put_object(Bucket=bucket, Key="later.txt", Body=b"after the parking")

    def later_copied() -> bool:
        t = next(t for t in status(cluster, "parked")["targets"] if t["name"] == "same-city")
        return int(t.get("objectsCopied") or 0) > copied_before

    wait_until(later_copied, 60, what="a later key copied and its figures written")
    assert sum(int(e.get("count") or 1) for e in parked_events(cluster, "parked")) == 1

    # The target takes the key once the object in its way is gone and the key changes again.
    root(near).delete_object(Bucket=bucket, Key="blocked")
    writer.put_object(Bucket=bucket, Key=BLOCKED, Body=b"lands now")

    def cleared() -> dict[str, Any] | None:
        s = status(cluster, "parked")
        t = next(t for t in s["targets"] if t["name"] == "same-city")
        return s if t.get("parkedKeys") == 0 and t.get("rpoCompliant") is True else None

    s = wait_until(cleared, 120, what="the key copied and the target compliant again")
    assert BLOCKED in keys_at(near, bucket)
    conds = {c["type"]: c for c in s["conditions"]}
    assert conds["RPOCompliant"]["status"] == "True"
    wait_until(lambda: parked_gauge(operator["metrics"], "parked") == 0, 30, what="the gauge at 0")
