"""A scheduled sync whose verification finds a wrong copy and repairs it: the DRReplica's status, an
Event and a counter say how many (the Job's command run here in-process: the test cluster has no
kubelet)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from datacloud import RUN_NOW
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, app, jobs, replica, root, status

pytestmark = pytest.mark.integration


def repaired_total(url: str, name: str) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    wanted = {"namespace": NAMESPACE, "replica": name, "target": "remote"}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "datacloud_dr_verify_repaired_total" and s.labels == wanted:
                return float(s.value)
    return None


def sync(cluster: Cluster, args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "datacloud", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def tamper(remote: Centre, bucket: str, key: str) -> None:
    """Change the copy's bytes, not its size nor its metadata (the recorded source ETag included)."""
    client = root(remote)
    got = client.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    client.put_object(
        Bucket=bucket, Key=key, Body=bytes([body[0] ^ 0xFF]) + body[1:], Metadata=got["Metadata"]
    )


def test_a_repair_by_verification_is_counted_in_status_event_and_metric(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, remote = dr_centres["fz-prod"], dr_centres["xm-remote-dr"]
    allow_app(prod, bucket)
    for i in range(5):
        app(prod).put_object(Bucket=bucket, Key=f"rows/{i}.csv", Body=f"row,{i}\n".encode() * 20)
    doc = replica("repairs", bucket)
    doc["metadata"]["annotations"] = {RUN_NOW: "repair-check"}  # its nightly run, now
    cleanup.append("repairs")
    cluster.must_apply(doc)

    job = wait_until(lambda: jobs(cluster, "repairs"), 90, what="the requested Job")[0]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    at = args.index("--report-configmap")
    seeded = sync(cluster, args[:at] + args[at + 2 :])  # a first copy, not reported
    assert seeded["objects_copied"] == 5
    tamper(remote, bucket, "rows/3.csv")

    ran = sync(cluster, args)  # the Job's run: verification finds the copy wrong and repairs it
    assert (ran["repaired"], ran["mismatch_count"], ran["ok"]) == (1, 0, True)

    def reported() -> dict[str, Any] | None:
        t = next((t for t in status(cluster, "repairs").get("targets", []) if t["name"] == "remote"), {})
        return t if t.get("lastSyncResult") else None

    target = wait_until(reported, 60, what="the run's result in status")
    assert (target["lastSyncResult"], target["repaired"], target["mismatches"]) == ("Succeeded", 1, 0)
    wait_until(lambda: repaired_total(operator["metrics"], "repairs") == 1, 30, what="the repair counted")

    def repair_events() -> list[dict[str, Any]]:
        return [e for e in cluster.events_for("repairs") if e.get("reason") == "CopiesRepaired"]

    events = wait_until(repair_events, 30, what="a CopiesRepaired Event")
    assert len(events) == 1
    assert "found 1 copy(ies) wrong" in events[0]["message"]
