"""Scheduled full syncs: the operator creates the (Indexed) Job at the cron time, or at once on request
(the run-now annotation, `datacloud dr sync-now`); the Job's command, run here in-process since the test
cluster has no kubelet, reports back and the status follows."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datacloud import RUN_NOW
from datacloud.builders.job_health import NOT_TAKEN_UP_GRACE_S, why_stuck
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, Refusals, allow_app, app, event_count, jobs, keys_at, replica, status

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
    doc["metadata"]["annotations"] = {RUN_NOW: "before-maintenance"}  # a run asked for, not a cron time
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
    assert "lastRunRequest" not in status(cluster, "squeezed")  # and the request not yet answered
    assert status(cluster, "squeezed")["phase"] == "Protected"  # the rest of the replica carries on
    wait_until(lambda: event_count(cluster, "squeezed", "SyncRefused"), 30, what="SyncRefused")
    assert jobs(cluster, "squeezed") == []

    refusals.lift()
    found = wait_until(lambda: jobs(cluster, "squeezed"), 60, what="the Job once the quota allows it")
    assert len(found) == 1
    answered = wait_until(
        lambda: status(cluster, "squeezed").get("lastRunRequest") == "before-maintenance", 30, what="answered"
    )
    assert answered
    remote = next(t for t in status(cluster, "squeezed")["targets"] if t["name"] == "remote")
    assert remote["lastRunRequest"] == "before-maintenance"
    assert remote["lastScheduledTime"]
    assert "message" not in remote


def sync_now(cluster: Cluster, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datacloud", "dr", "sync-now", name, "-n", NAMESPACE,
         "--kubeconfig", str(cluster.kubeconfig), *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_sync_now_starts_each_scheduled_target_once_and_a_paused_replica_says_why(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    allow_app(dr_centres["fz-prod"], bucket)
    cleanup.append("on-demand")
    cluster.must_apply(replica("on-demand", bucket))  # nightly at 02:00: nothing runs by itself today
    wait_until(lambda: status(cluster, "on-demand").get("phase") == "Protected", 90, what="Protected")
    assert jobs(cluster, "on-demand") == []

    asked = sync_now(cluster, "on-demand")
    assert asked.returncode == 0, asked.stderr
    assert "remote" in asked.stdout
    assert "full sync started" in asked.stdout
    (job,) = jobs(cluster, "on-demand")
    assert job["metadata"]["labels"]["datacloud.fujian.gov.cn/target"] == "remote"
    remote = next(t for t in status(cluster, "on-demand")["targets"] if t["name"] == "remote")
    assert remote["lastRunRequest"] == status(cluster, "on-demand")["lastRunRequest"]
    # The Job carries its request: an operator restarted before it wrote status finds it (unit-tested).
    assert job["metadata"]["annotations"]["datacloud.fujian.gov.cn/run-request"] == remote["lastRunRequest"]
    assert remote["nextSyncTime"].endswith("02:00:00+00:00")  # the schedule goes on from the run

    # This cluster runs no scheduler, like the dev stack without a node: the Job's pod stays Pending with
    # an empty status, which two minutes on is named as stuck (the shape from the real API server; the
    # clock is moved rather than waited for).
    name = job["metadata"]["name"]
    pods = wait_until(
        lambda: cluster.kube.read_all("v1", "Pod", NAMESPACE, label_selector=f"job-name={name}"),
        60,
        what="the Job's pod",
    )
    (pod,) = pods
    assert why_stuck(job, pods, datetime.now(UTC)) is None  # not yet
    later = datetime.now(UTC) + timedelta(seconds=NOT_TAKEN_UP_GRACE_S)
    stuck = why_stuck(job, pods, later)
    assert stuck is not None
    assert stuck.reason == "SyncPodUnschedulable"
    assert f"pod {pod['metadata']['name']} has waited" in stuck.message
    assert "no scheduler has looked at it" in stuck.message

    # Any value is a request, in any script and up to the annotations' 256 KiB: status keeps a digest of
    # a long one (one copy per target would otherwise crowd the object), and it starts one more run.
    long_request = "维护前同步 " * 12_000  # 192,000 bytes of UTF-8
    cluster.kube.merge_patch(
        "datacloud.fujian.gov.cn/v1alpha1",
        "DRReplica",
        "on-demand",
        {"metadata": {"annotations": {RUN_NOW: long_request}}},
        NAMESPACE,
    )
    digest = wait_until(
        lambda: (
            str(status(cluster, "on-demand").get("lastRunRequest") or "").startswith("sha256:")
            and status(cluster, "on-demand")["lastRunRequest"]
        ),
        60,
        what="the long request answered",
    )
    assert len(digest) == 71
    assert len(jobs(cluster, "on-demand")) == 2

    cluster.kube.merge_patch(
        "datacloud.fujian.gov.cn/v1alpha1", "DRReplica", "on-demand", {"spec": {"paused": True}}, NAMESPACE
    )
    refused = sync_now(cluster, "on-demand", "--timeout", "60")
    assert refused.returncode == 1
    assert "not started: remote" in refused.stderr
    wait_until(lambda: event_count(cluster, "on-demand", "SyncNotStarted"), 30, what="SyncNotStarted")
    assert len(jobs(cluster, "on-demand")) == 2  # no run while paused

    missing = sync_now(cluster, "no-such-replica", "--no-wait")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
