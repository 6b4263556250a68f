"""Scheduled full syncs: the operator creates the (Indexed) Job at the cron time; the Job's command, run
here in-process since the test cluster has no kubelet, reports back and the status follows."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import Refusals, allow_app, app, event_count, jobs, keys_at, replica, status

pytestmark = pytest.mark.integration


def test_scheduled_target_runs_as_an_indexed_job_and_reports_back(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    prod, remote = dr_centres["fz-prod"], dr_centres["xm-remote-dr"]
    allow_app(prod, bucket)
    for i in range(40):
        app(prod).put_object(
            Bucket=bucket, Key=f"archive/{i:03d}.csv", Body=f"row,{i}\n".encode(), ContentType="text/csv"
        )
    doc = replica("nightly", bucket)
    doc["spec"]["targets"][1].update(schedule="* * * * *", shards=2)
    cleanup.append("nightly")
    cluster.must_apply(doc)

    found = wait_until(lambda: jobs(cluster, "nightly"), 90, what="the scheduled Job")
    job = found[0]
    assert job["metadata"]["labels"]["datacloud.fujian.gov.cn/target"] == "remote"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 2
    assert job["metadata"]["ownerReferences"][0]["name"] == "nightly"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["sync", f"centre:fz-prod/{bucket}", f"centre:xm-remote-dr/{bucket}"]
    assert args[args.index("--verify") : args.index("--verify") + 2] == ["--verify", "sha256"]
    before = status(cluster, "nightly")
    remote_before = next(t for t in before["targets"] if t["name"] == "remote")
    assert remote_before["nextSyncTime"]

    for index in range(2):  # what each pod of the Indexed Job runs
        argv = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in args]
        done = subprocess.run(
            [sys.executable, "-m", "datacloud", *argv, "--kubeconfig", str(cluster.kubeconfig)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1])["ok"] is True

    def reported() -> dict[str, Any] | None:
        t: dict[str, Any] = next(
            (t for t in status(cluster, "nightly").get("targets", []) if t["name"] == "remote"), {}
        )
        return t if t.get("lastSyncResult") else None

    target = wait_until(reported, 60, what="the run's result in status")
    assert target["lastSyncResult"] == "Succeeded"
    assert target["objectsCopied"] == 40
    assert target["mismatches"] == 0
    assert target["rpoCompliant"] is True
    assert target["lastVerificationTime"] == target["lastSyncTime"]
    copied = keys_at(remote, bucket)
    assert {f"archive/{i:03d}.csv" for i in range(40)} <= copied


def test_a_refused_sync_job_is_reported_and_created_once_allowed(
    cluster: Cluster, dr_centres: dict[str, Centre], refusals: Refusals, bucket: str, cleanup: list[str]
) -> None:
    allow_app(dr_centres["fz-prod"], bucket)
    refusals.no_room_for_jobs()
    doc = replica("squeezed", bucket)
    doc["spec"]["targets"][1]["schedule"] = "* * * * *"
    cleanup.append("squeezed")
    cluster.must_apply(doc)

    def refused() -> dict[str, Any] | None:
        t: dict[str, Any] = next(
            (t for t in status(cluster, "squeezed").get("targets", []) if t["name"] == "remote"), {}
        )
        return t if "quota" in str(t.get("message")) else None

    target = wait_until(refused, 90, what="the refusal in the target's status")
    assert target["message"].startswith("sync Job not created: HTTP 403")
    assert "lastScheduledTime" not in target  # the run is still owed
    assert status(cluster, "squeezed")["phase"] == "Protected"  # the rest of the replica carries on
    wait_until(lambda: event_count(cluster, "squeezed", "SyncRefused"), 30, what="SyncRefused")
    assert jobs(cluster, "squeezed") == []

    refusals.lift()
    found = wait_until(lambda: jobs(cluster, "squeezed"), 60, what="the Job once the quota allows it")
    assert len(found) == 1
    owed = wait_until(
        lambda: next(t for t in status(cluster, "squeezed")["targets"] if t["name"] == "remote").get(
            "lastScheduledTime"
        ),
        30,
    )
    assert owed
