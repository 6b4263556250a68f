"""A DR action survives the operator being SIGKILLed in each step of its progression.

Each test holds the operator inside one step by something real outside it: a centre that is away
(Fencing, FinalSync, Promoting), a ValidatingAdmissionPolicy refusing the endpoint ConfigMap (Publishing),
a ResourceQuota with no room for the seed Job (Reseeding). The step recorded in status at the kill proves
where the operator was killed; the refusal is then lifted and the action must finish exactly once.
"""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.builders import dr as build
from datacloud.builders.conditions import find
from datacloud.devstack.objectstore import Centre
from datacloud.failover import fencing
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import (
    NAMESPACE,
    Refusals,
    action,
    allow_app,
    app,
    can_write,
    event_count,
    finished,
    keys_at,
    listening,
    replica,
    root,
    status,
)

pytestmark = pytest.mark.integration


def protected(
    cluster: Cluster, centres: dict[str, Centre], name: str, bucket: str, cleanup: list[str]
) -> None:
    """A replica of `bucket` from production, both copies writable by the app account, Protected."""
    allow_app(centres["fz-prod"], bucket)
    allow_app(centres["fz-samecity-dr"], bucket)
    cleanup.append(name)
    cluster.must_apply(replica(name, bucket))
    wait_until(lambda: status(cluster, name).get("phase") == "Protected", 60)


def restart_operator(cluster: Cluster, operator: dict[str, Any]) -> None:
    """SIGKILL the operator and start it again; wait until it listens for notifications."""
    proc = operator["process"]
    proc.kill()
    proc.start()
    wait_until(lambda: listening(cluster.stack.events_port), 30, what="the operator's event receiver")


def step_state(cluster: Cluster, name: str, request: str, step: str) -> str | None:
    a = status(cluster, name).get("action") or {}
    if a.get("requestId") != request:
        return None
    return next((s["state"] for s in a.get("steps", []) if s["name"] == step), None)


def blocked_in(cluster: Cluster, name: str, request: str, step: str) -> dict[str, Any] | None:
    """The replica's status once the action is Running in `step` and has recorded why it waits."""
    s = status(cluster, name)
    a = s.get("action") or {}
    found: dict[str, Any] = next((st for st in a.get("steps", []) if st["name"] == step), {})
    ok = a.get("requestId") == request and found.get("state") == "Running" and found.get("reason")
    return s if ok else None


def the_step(s: dict[str, Any], step: str) -> dict[str, Any]:
    return dict(next(st for st in s["action"]["steps"] if st["name"] == step))


def condition_of(s: dict[str, Any], type_: str) -> tuple[str, str] | None:
    c = find(s.get("conditions"), type_)
    return (str(c["status"]), str(c["reason"])) if c else None


def assert_finished_once(
    cluster: Cluster, centres: dict[str, Centre], name: str, bucket: str, request: str, kind: str
) -> dict[str, Any]:
    """The action finished once: one epoch more, each step once and Succeeded, one history entry, one
    audit record, one start Event; the old active fenced at that epoch, the endpoint on the new one."""
    s = wait_until(lambda: finished(cluster, name, request), 120, what=f"{kind} finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2  # the restart did not take a second epoch
    names = [st["name"] for st in s["action"]["steps"]]
    assert names == ["Fencing", "Promoting", "Publishing", "Reseeding", "Done"]
    assert all(st["state"] == "Succeeded" and "reason" not in st for st in s["action"]["steps"])
    assert [h["requestId"] for h in s.get("history", [])].count(request) == 1
    audit = root(centres["xm-remote-dr"]).list_objects_v2(
        Bucket="datacloud-audit", Prefix=f".datacloud/audit/{NAMESPACE}/{name}/"
    )
    assert len(audit.get("Contents", [])) == 1
    assert event_count(cluster, name, f"{kind}Started") == 1
    source = fencing.owner_id(NAMESPACE, name, "source")
    assert fencing.fence_epoch(fencing.read_policy(root(centres["fz-prod"]), bucket), source) == 2
    cm = cluster.kube.read("v1", "ConfigMap", f"{name}-endpoint", NAMESPACE)
    assert (cm["data"]["centre"], cm["data"]["fencingEpoch"]) == ("fz-samecity-dr", "2")
    assert condition_of(s, "ActionProgressing") == ("True", "Completed")
    return dict(s)


def test_switchover_resumes_after_sigkill_in_final_sync(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    near_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], near_restored
    protected(cluster, dr_centres, "resume", bucket, cleanup)
    for i in range(20):
        app(prod).put_object(Bucket=bucket, Key=f"k/{i}", Body=b"v")

    near.stop()  # the final sync cannot finish while the new active is away
    action(cluster, "resume", "Switchover", "fz-samecity-dr", "CHG-RESUME")
    wait_until(
        lambda: step_state(cluster, "resume", "CHG-RESUME", "FinalSync") == "Running",
        60,
        what="blocked in FinalSync",
    )
    assert step_state(cluster, "resume", "CHG-RESUME", "Fencing") == "Succeeded"
    assert not can_write(app(prod), bucket)  # fenced before the sync: no write can slip past it

    restart_operator(cluster, operator)
    near.restart()
    s = wait_until(lambda: finished(cluster, "resume", "CHG-RESUME"), 120, what="switchover finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2  # the restart did not take a second epoch
    keys = keys_at(near, bucket)
    assert {f"k/{i}" for i in range(20)} <= keys
    assert can_write(app(near), bucket)


def test_failover_resumes_after_sigkill_in_promoting(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    near_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], near_restored
    protected(cluster, dr_centres, "promote", bucket, cleanup)
    near.stop()  # Promoting cannot open the new active for writes while it is away
    action(cluster, "promote", "Failover", "fz-samecity-dr", "CHG-PROMOTE")
    s = wait_until(
        lambda: blocked_in(cluster, "promote", "CHG-PROMOTE", "Promoting"), 60, what="blocked in Promoting"
    )
    assert the_step(s, "Promoting")["reason"] == "NewActiveUnreachable"
    assert not can_write(app(prod), bucket)  # fenced: between the two steps nobody is a writer

    restart_operator(cluster, operator)
    near.restart()
    s = wait_until(lambda: finished(cluster, "promote", "CHG-PROMOTE"), 120, what="failover finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2
    assert can_write(app(near), bucket)


def test_paused_replica_copies_nothing_until_resumed(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    import json

    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    cleanup.append("pausing")
    cluster.must_apply(replica("pausing", bucket))
    wait_until(lambda: status(cluster, "pausing").get("phase") == "Protected", 60)

    def patch(paused: bool) -> None:
        done = cluster.kubectl(
            "-n",
            "dr-tests",
            "patch",
            "drreplica",
            "pausing",
            "--type",
            "merge",
            "-p",
            json.dumps({"spec": {"paused": paused}}),
        )
        assert done.returncode == 0, done.stderr

    patch(True)
    wait_until(lambda: status(cluster, "pausing").get("phase") == "Paused", 30, what="Paused")
    app(prod).put_object(Bucket=bucket, Key="while-paused", Body=b"1")
    import time

    time.sleep(5)  # several follower polls would have copied it by now
    near_keys = keys_at(near, bucket)
    assert "while-paused" not in near_keys
    patch(False)
    wait_until(
        lambda: "while-paused" in keys_at(near, bucket),
        30,
        what="copied after resuming",
    )


def test_switchover_resumes_after_sigkill_in_fencing(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    prod_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = prod_restored, dr_centres["fz-samecity-dr"]
    protected(cluster, dr_centres, "fencing", bucket, cleanup)
    for i in range(10):
        app(prod).put_object(Bucket=bucket, Key=f"f/{i}", Body=b"v")
    wait_until(
        lambda: {f"f/{i}" for i in range(10)} <= keys_at(near, bucket),
        30,
    )

    prod.stop()  # a planned switchover fences the old active first, and will not go on without it
    action(cluster, "fencing", "Switchover", "fz-samecity-dr", "CHG-FENCE")
    s = wait_until(
        lambda: blocked_in(cluster, "fencing", "CHG-FENCE", "Fencing"), 60, what="blocked in Fencing"
    )
    assert the_step(s, "Fencing")["reason"] == "OldActiveUnreachable"
    assert status(cluster, "fencing")["activeCentre"] == "fz-prod"  # nothing promoted without the fence

    restart_operator(cluster, operator)
    prod.restart()
    s = wait_until(lambda: finished(cluster, "fencing", "CHG-FENCE"), 120, what="switchover finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2
    assert not can_write(app(prod), bucket)
    assert can_write(app(near), bucket)


def test_failover_resumes_after_sigkill_in_publishing(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    refusals: Refusals,
    bucket: str,
    cleanup: list[str],
) -> None:
    protected(cluster, dr_centres, "publish", bucket, cleanup)
    refusals.freeze_endpoint("publish")  # the API server refuses the endpoint ConfigMap: Publishing waits
    action(cluster, "publish", "Failover", "fz-samecity-dr", "CHG-PUBLISH")
    s = wait_until(
        lambda: blocked_in(cluster, "publish", "CHG-PUBLISH", "Publishing"), 60, what="refused in Publishing"
    )
    step = the_step(s, "Publishing")
    assert step["reason"] == "PublicationRefused"
    assert "change freeze: the endpoint of publish may not change" in step["message"]
    assert the_step(s, "Promoting")["state"] == "Succeeded"
    s = wait_until(
        lambda: (
            (st := status(cluster, "publish"))
            and condition_of(st, "EndpointPublished") == ("False", "PublicationRefused")
            and st
        ),
        30,
        what="EndpointPublished False",
    )
    assert condition_of(s, "ActionProgressing") == ("False", "PublicationRefused")
    cm = cluster.kube.read("v1", "ConfigMap", "publish-endpoint", NAMESPACE)
    assert cm["data"]["centre"] == "fz-prod"  # the refusal held: nothing was published behind it
    blocked = wait_until(lambda: event_count(cluster, "publish", "ActionBlocked"), 30, what="ActionBlocked")

    restart_operator(cluster, operator)
    # The restarted operator is back in Publishing, refused again, and says so again.
    wait_until(
        lambda: event_count(cluster, "publish", "ActionBlocked") > blocked, 60, what="ActionBlocked again"
    )
    assert the_step(status(cluster, "publish"), "Publishing")["state"] == "Running"

    refusals.lift()
    s = assert_finished_once(cluster, dr_centres, "publish", bucket, "CHG-PUBLISH", "Failover")
    assert condition_of(s, "EndpointPublished") == ("True", "Published")
    assert can_write(app(dr_centres["fz-samecity-dr"]), bucket)


def test_failover_resumes_after_sigkill_between_the_endpoint_moving_and_its_end_written(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    refusals: Refusals,
    bucket: str,
    cleanup: list[str],
) -> None:
    """A Failover's promotion is not written before its endpoint moves; it rides on the end's write. Killed
    after the endpoint moved and before the end was written (the API server refusing that write), the
    operator resumes the action stored with its epoch: the same target, the same epoch, and nothing
    written through the moved endpoint is undone by the steps it redoes."""
    near = dr_centres["fz-samecity-dr"]
    protected(cluster, dr_centres, "ending", bucket, cleanup)
    refusals.hold_end("ending")
    action(cluster, "ending", "Failover", "fz-samecity-dr", "CHG-ENDING")
    wait_until(
        lambda: (
            cluster.kube.read("v1", "ConfigMap", "ending-endpoint", NAMESPACE)["data"]["centre"]
            == "fz-samecity-dr"
        ),
        60,
        what="the endpoint moved",
    )
    s = status(cluster, "ending")
    assert s["action"]["requestId"] == "CHG-ENDING"
    assert not s["action"].get("finishedAt")
    assert the_step(s, "Promoting")["state"] == "Running"  # the promotion is not stored before the move
    assert s["activeCentre"] == "fz-prod"
    # An application follows the moved endpoint and writes into the new active.
    wait_until(lambda: can_write(app(near), bucket), 30, what="the new active open")
    app(near).put_object(Bucket=bucket, Key="after-the-move", Body=b"acknowledged")

    restart_operator(cluster, operator)
    refusals.lift()
    s = wait_until(lambda: finished(cluster, "ending", "CHG-ENDING"), 120, what="failover finished")
    assert s["action"]["result"] == "Succeeded"
    assert (s["activeCentre"], s["fencingEpoch"]) == ("fz-samecity-dr", 2)  # no second epoch or target
    assert all(st["state"] == "Succeeded" and "reason" not in st for st in s["action"]["steps"])
    assert [h["requestId"] for h in s.get("history", [])].count("CHG-ENDING") == 1
    assert event_count(cluster, "ending", "FailoverStarted") == 1
    source = fencing.owner_id(NAMESPACE, "ending", "source")
    prod = root(dr_centres["fz-prod"])
    assert fencing.fence_epoch(fencing.read_policy(prod, bucket), source) == 2
    cm = cluster.kube.read("v1", "ConfigMap", "ending-endpoint", NAMESPACE)
    assert (cm["data"]["centre"], cm["data"]["fencingEpoch"]) == ("fz-samecity-dr", "2")
    assert condition_of(s, "EndpointPublished") == ("True", "Published")
    # Written through the moved endpoint while the operator was away: kept by the steps it redid.
    assert "after-the-move" in keys_at(near, bucket)
    assert can_write(app(near), bucket)
    # Finished again after the restart, and again at every refused end before it: one audit record.
    records = root(dr_centres["xm-remote-dr"]).list_objects_v2(
        Bucket="datacloud-audit", Prefix=f".datacloud/audit/{NAMESPACE}/ending/"
    )
    keys = [o["Key"] for o in records.get("Contents", []) if "CHG-ENDING" in o["Key"]]
    assert len(keys) == 1, keys
    assert s["action"]["auditRecord"] == f"xm-remote-dr/datacloud-audit/{keys[0]}"


def reseeded(cluster: Cluster, name: str) -> tuple[str, str, str] | None:
    c = find(status(cluster, name).get("conditions"), "Reseeded")
    return (str(c["status"]), str(c["reason"]), str(c["message"])) if c else None


def test_a_refused_seed_job_holds_no_failover_and_is_made_after_a_restart(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    refusals: Refusals,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    protected(cluster, dr_centres, "reseed", bucket, cleanup)
    refusals.no_room_for_jobs()  # the namespace's quota has no room for the remote target's seed Job
    action(cluster, "reseed", "Failover", "fz-samecity-dr", "CHG-RESEED")
    # The seed Job is not needed for the failover: it completes, and Reseeded says what is owed and why.
    s = assert_finished_once(cluster, dr_centres, "reseed", bucket, "CHG-RESEED", "Failover")
    assert "made by the run after the action's end" in the_step(s, "Reseeding")["message"]
    refusal = wait_until(
        lambda: (c := reseeded(cluster, "reseed")) and c[1] == "ReseedRefused" and c, 60, what="seed refused"
    )
    assert refusal[0] == "False"
    assert "quota" in refusal[2]
    assert event_count(cluster, "reseed", "ReseedRefused") >= 1
    refused_before = event_count(cluster, "reseed", "ReseedRefused")

    restart_operator(cluster, operator)  # the owed seed is in memory only: the condition brings it back
    wait_until(
        lambda: event_count(cluster, "reseed", "ReseedRefused") > refused_before, 60, what="refused again"
    )
    refusals.lift()
    made = wait_until(
        lambda: (c := reseeded(cluster, "reseed")) and c[0] == "True" and c, 60, what="seed Job made"
    )
    assert made[1] == "SeedJobsCreated"
    assert "reseed-remote-seed-e2" in made[2]
    jobs = cluster.kube.read_all(
        "batch/v1", "Job", NAMESPACE, label_selector="datacloud.fujian.gov.cn/drreplica=reseed"
    )
    assert [j["metadata"]["name"] for j in jobs] == ["reseed-remote-seed-e2"]
    args = jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[1:3] == [f"centre:fz-samecity-dr/{bucket}", f"centre:xm-remote-dr/{bucket}"]
    assert [h["requestId"] for h in status(cluster, "reseed")["history"]].count("CHG-RESEED") == 1
    # Reseeding also restarted continuous replication from the new active, back to the old one.
    app(near).put_object(Bucket=bucket, Key="after-reseed", Body=b"1")
    wait_until(
        lambda: "after-reseed" in keys_at(prod, bucket),
        30,
        what="new active → old",
    )


def stale_job(cluster: Cluster, name: str, bucket: str) -> str:
    """The Job a 02:00 scheduled run would have started from fz-prod (no kubelet runs it, so it stays
    unfinished); its name."""
    body = cluster.get("drreplicas", name, NAMESPACE)
    args = ["sync", f"centre:fz-prod/{bucket}", f"centre:xm-remote-dr/{bucket}"]
    job = build.sync_job(
        body, "remote", "20261127t0200", "datacloud/operator:0.1.0", args, 1, "datacloud-sync"
    )
    job["metadata"]["namespace"] = NAMESPACE
    cluster.must_apply(job)
    return str(job["metadata"]["name"])


def job_names(cluster: Cluster, name: str) -> list[str]:
    jobs = cluster.kube.read_all(
        "batch/v1", "Job", NAMESPACE, label_selector=f"datacloud.fujian.gov.cn/drreplica={name}"
    )
    return sorted(j["metadata"]["name"] for j in jobs if not j["metadata"].get("deletionTimestamp"))


def test_failover_cancels_a_sync_job_still_running_from_the_old_active(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    bucket: str,
    cleanup: list[str],
) -> None:
    protected(cluster, dr_centres, "stalejob", bucket, cleanup)
    stale = stale_job(cluster, "stalejob", bucket)

    action(cluster, "stalejob", "Failover", "fz-samecity-dr", "CHG-STALE")
    assert_finished_once(cluster, dr_centres, "stalejob", bucket, "CHG-STALE", "Failover")
    # The seed Job is made (and the old active's Jobs cancelled first) once the action's end is written.
    wait_until(
        lambda: job_names(cluster, "stalejob") == ["stalejob-remote-seed-e2"], 60, what="stale Job replaced"
    )
    cancelled = [e["message"] for e in cluster.events_for("stalejob") if e["reason"] == "SyncCancelled"]
    assert len(cancelled) == 1
    assert stale in cancelled[0]


def test_a_refused_cancellation_is_reported_and_does_not_hold_the_failover(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    refusals: Refusals,
    bucket: str,
    cleanup: list[str],
) -> None:
    protected(cluster, dr_centres, "heldjob", bucket, cleanup)
    stale = stale_job(cluster, "heldjob", bucket)
    refusals.keep_jobs("heldjob", stale)

    action(cluster, "heldjob", "Failover", "fz-samecity-dr", "CHG-HELD")
    assert_finished_once(cluster, dr_centres, "heldjob", bucket, "CHG-HELD", "Failover")
    both = sorted([stale, "heldjob-remote-seed-e2"])
    wait_until(lambda: job_names(cluster, "heldjob") == both, 60, what="seed Job beside the held one")
    warnings = [e["message"] for e in cluster.events_for("heldjob") if e["reason"] == "SyncNotCancelled"]
    assert len(warnings) == 1
    assert stale in warnings[0]
    assert "audit hold" in warnings[0]  # the API server's own words
    assert event_count(cluster, "heldjob", "SyncCancelled") == 0
