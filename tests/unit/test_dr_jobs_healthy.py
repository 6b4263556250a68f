"""JobsHealthy: a DRReplica's own condition for its scheduled sync Jobs. False naming every stuck Job
(with the first one's reason), True only when every Scheduled target's newest Job was looked at, left as
it was when a lookup failed, gone without Scheduled targets; the stuck gauge follows it."""

from __future__ import annotations

from typing import Any

from datacloud.adapters.kube import ApiError
from datacloud.failover.topology import flows
from datacloud.metrics import REGISTRY
from datacloud.metrics import dr as dr_metrics
from datacloud.reconcile import dr_jobs, dr_scheduled
from tests.support.jobs import job, pod, scheduled_replica

SPEC = scheduled_replica()
SCHEDULED = [f for f in flows(SPEC, "prod") if f.mode == "Scheduled"]


class Kube:
    """The namespace's sync Jobs and pods, labelled as the operator and the Job controller label them; a
    target in `failing` makes the listing answer 503."""

    def __init__(
        self, jobs: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]], failing: set[str]
    ) -> None:
        self.jobs, self.failing = jobs, failing

    def get_json(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        assert query["labelSelector"] == "datacloud.fujian.gov.cn/drreplica"
        if self.failing:
            raise ApiError("ServerError", "HTTP 503", 503)
        items = []
        for target, (j, pods) in self.jobs.items():
            if path.endswith("/jobs"):
                labels = {
                    "datacloud.fujian.gov.cn/drreplica": "records",
                    "datacloud.fujian.gov.cn/target": target,
                }
                items.append({**j, "metadata": {**j["metadata"], "labels": labels}})
            else:
                for p in pods:
                    labels = {
                        "datacloud.fujian.gov.cn/drreplica": "records",
                        "job-name": j["metadata"]["name"],
                    }
                    items.append({**p, "metadata": {**p["metadata"], "labels": labels}})
        return {"items": items}


class Runtime:
    def __init__(self, kube: Kube) -> None:
        self.name, self.namespace, self.kube = "records", "ns-jobs", kube
        self.status: dict[str, Any] = {}
        self.events: list[tuple[str, str, str]] = []

    def emit(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))


def check(rt: Runtime) -> dict[str, Any] | None:
    dr_jobs.JOBS.clear()  # each check is a later look, after the listings' age
    dr_jobs.PODS.clear()
    stuck = {}
    for flow in SCHEDULED:
        looked, why = dr_scheduled._check_latest_job(rt, {"name": flow.target}, flow)  # type: ignore[arg-type]
        if looked:
            stuck[flow.target] = why
    dr_scheduled._jobs_condition(rt, SCHEDULED, stuck, 3, "2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    return next((c for c in rt.status.get("conditions") or [] if c["type"] == "JobsHealthy"), None)


def stuck_gauge(reason: str) -> float | None:
    labels = {"namespace": "ns-jobs", "replica": "records", "reason": reason}
    return REGISTRY.get_sample_value("datacloud_dr_sync_job_stuck", labels)


def test_stuck_jobs_make_jobs_healthy_false_naming_each() -> None:
    kube = Kube(
        {
            "far": (job("records-far-1"), [pod("records-far-1-x", unschedulable=True)]),
            "west": (job("records-west-1"), [pod("records-west-1-y", waiting="ErrImageNeverPull")]),
        },
        set(),
    )
    rt = Runtime(kube)
    cond = check(rt)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "SyncPodUnschedulable")
    assert "sync Job records-far-1: pod records-far-1-x not scheduled" in cond["message"]
    assert "sync Job records-west-1: pod records-west-1-y container sync cannot start" in cond["message"]
    assert cond["observedGeneration"] == 3
    dr_metrics.observe_replica("ns-jobs", "records", rt.status, {}, False, {})
    assert stuck_gauge("SyncPodUnschedulable") == 1
    assert stuck_gauge("SyncJobFailed") == 0

    # A failed lookup of one target says nothing new: the condition stays as it was.
    kube.failing = {"west"}
    kube.jobs["far"] = (job("records-far-2", ("Complete", "")), [])
    assert check(rt) == cond

    # Every target looked at, nothing stuck: True (its transition time is the merge's).
    kube.failing = set()
    kube.jobs["west"] = (job("records-west-2"), [pod("records-west-2-z", waiting="ContainerCreating")])
    cond = check(rt)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("True", "NoJobStuck")
    dr_metrics.observe_replica("ns-jobs", "records", rt.status, {}, False, {})
    assert stuck_gauge("SyncPodUnschedulable") == 0


def test_without_scheduled_targets_the_condition_goes() -> None:
    rt = Runtime(Kube({"far": (job("j", ("Failed", "BackoffLimitExceeded")), [])}, set()))
    cond = check(rt)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "SyncJobFailed")
    dr_scheduled._jobs_condition(rt, [], {}, 3, "2026-01-01T00:00:00Z")  # type: ignore[arg-type]
    assert rt.status["conditions"] == []


def test_a_retried_shard_is_posted_once_per_new_failure() -> None:
    running = {"metadata": {"name": "records-far-3"}, "spec": {"backoffLimitPerIndex": 3}, "status": {}}
    failed = {"metadata": {"name": "records-far-3-1-a", "annotations": {
        "batch.kubernetes.io/job-completion-index": "1"}}, "status": {"phase": "Failed"}}  # fmt: skip
    kube = Kube({"far": (running, [failed]), "west": (job("records-west-3"), [])}, set())
    rt = Runtime(kube)
    posted: list[str] = []
    rt.emit = lambda kind, reason, message: posted.append(f"{kind} {reason}: {message}")  # type: ignore[method-assign]
    cond = check(rt)
    assert cond is not None
    assert cond["reason"] == "NoJobStuck"  # retrying is progress, not stuck
    assert posted == [
        "Warning SyncShardRetried: sync Job records-far-3: shard 1 failed 1 time(s); "
        "retried (3 retries per shard)"
    ]


def test_a_new_run_leaves_the_stuck_message_to_the_look_that_clears_the_condition_too(
    monkeypatch: Any,
) -> None:
    """A launch used to clear a stuck Job's message while JobsHealthy still named it for up to
    JOB_CHECK_S: the message and the condition disagreed. Now both change in the same look at the newest
    Job, which the launch brings forward; a refused run's own message still goes at the next launch."""
    monkeypatch.setattr(dr_scheduled, "launch", lambda *args: "run")
    kube = Kube({"far": (job("records-far-1"), [pod("records-far-1-x", unschedulable=True)])}, set())
    rt = Runtime(kube)
    rt.jobs_checked_at = {"far": 0.0}  # type: ignore[attr-defined]
    far = SCHEDULED[0]
    entry: dict[str, Any] = {"name": "far"}
    dr_jobs.JOBS.clear()
    dr_jobs.PODS.clear()
    looked, why = dr_scheduled._check_latest_job(rt, entry, far)  # type: ignore[arg-type]
    assert looked
    assert why is not None
    assert entry["message"].startswith("sync Job records-far-1: pod records-far-1-x not scheduled")

    assert dr_scheduled._trylaunch(rt, {}, far, entry, "202601010000", "for 2026-01-01")  # type: ignore[arg-type]
    assert entry["message"].startswith("sync Job records-far-1: pod")  # still what JobsHealthy says
    assert "far" not in rt.jobs_checked_at  # type: ignore[attr-defined]  # looked at in this pass

    kube.jobs["far"] = (job("records-far-1", ("Complete", "")), [])
    dr_jobs.JOBS.clear()
    looked, why = dr_scheduled._check_latest_job(rt, entry, far)  # type: ignore[arg-type]
    assert looked
    assert why is None
    assert "message" not in entry  # cleared by the look that makes JobsHealthy True

    entry["message"] = "sync Job not created: quota exceeded"
    assert dr_scheduled._trylaunch(rt, {}, far, entry, "202601010000", "for 2026-01-01")  # type: ignore[arg-type]
    assert "message" not in entry
