"""why_stuck: a Job that cannot progress is named, with its pod and the reason; a running or finished
one is not. The shapes below are what kubelet and the scheduler wrote on the dev node (test_node.py
checks the same against the real ones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.conditions import ReplicaReason
from datacloud.builders.job_health import NO_POD_GRACE_S, STUCK_WAITING, why_stuck
from tests.support.jobs import job, pod


def test_running_and_completed_jobs_are_not_stuck() -> None:
    assert why_stuck(job("j"), [pod("p", waiting="ContainerCreating")]) is None
    assert why_stuck(job("j", ("Complete", "")), [pod("p", waiting="ErrImagePull")]) is None


def test_failed_job_wins_over_its_pods() -> None:
    stuck = why_stuck(job("j", ("Failed", "BackoffLimitExceeded")), [pod("p", waiting="ErrImagePull")])
    assert stuck is not None
    assert stuck.reason == "SyncJobFailed"
    assert stuck.message == "sync Job j failed (BackoffLimitExceeded: BackoffLimitExceeded happened)"


@given(
    name=st.text(min_size=1, max_size=40),
    reason=st.sampled_from(sorted(STUCK_WAITING)),
)
def test_a_pod_that_cannot_start_is_named_with_its_job(name: str, reason: str) -> None:
    stuck = why_stuck(job(name), [pod("ok", waiting="ContainerCreating"), pod("bad", waiting=reason)])
    assert stuck is not None
    assert stuck.reason == "SyncPodCannotStart"
    assert stuck.message.startswith(f"sync Job {name}: pod bad container sync cannot start ({reason}")


def test_unschedulable_pod() -> None:
    stuck = why_stuck(job("j"), [pod("p", unschedulable=True)])
    assert stuck is not None
    assert stuck.reason == "SyncPodUnschedulable"
    assert stuck.message == "sync Job j: pod p not scheduled (Unschedulable: 0/1 nodes)"


def failed_pod(name: str, index: int) -> dict[str, Any]:
    annotations = {"batch.kubernetes.io/job-completion-index": str(index)}
    return {"metadata": {"name": name, "annotations": annotations}, "status": {"phase": "Failed"}}


def test_a_retried_shard_is_reported_with_its_failures_and_the_jobs_retries() -> None:
    from datacloud.builders.job_health import retried

    running = {"metadata": {"name": "r-far-1"}, "spec": {"backoffLimitPerIndex": 3}, "status": {}}
    pods = [failed_pod("a", 1), failed_pod("b", 1), failed_pod("c", 3), pod("d", waiting="ContainerCreating")]
    assert retried(running, pods) == (
        "sync Job r-far-1: shard 1 failed 2 time(s), shard 3 failed 1 time(s); retried (3 retries per shard)"
    )
    assert retried(running, [pod("d")]) is None  # nothing failed
    done = {**running, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert retried(done, pods) is None  # finished: its outcome says the rest


def test_a_job_out_of_retries_names_its_failed_shards() -> None:
    failed = job("r-far-1", ("Failed", "FailedIndexes"))
    failed["status"]["failedIndexes"] = "1,3"
    stuck = why_stuck(failed, [])
    assert stuck is not None
    assert (
        stuck.message
        == "sync Job r-far-1 failed (FailedIndexes: FailedIndexes happened; shard(s) 1,3 out of retries)"
    )


def test_a_job_that_created_no_pod_for_two_minutes_is_stuck_and_named() -> None:
    """A quota or an admission webhook refusing a Job's pods leaves no trace in the Job's status (only
    FailedCreate Events): with no pod two minutes after its creation, the Job is named as stuck."""
    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    refused = job("nightly")
    refused["metadata"]["creationTimestamp"] = "2026-11-30T12:00:00Z"
    assert why_stuck(refused, [], created + timedelta(seconds=NO_POD_GRACE_S - 1)) is None
    stuck = why_stuck(refused, [], created + timedelta(seconds=NO_POD_GRACE_S))
    assert stuck is not None
    assert stuck.reason == "SyncPodsNotCreated" == ReplicaReason.SYNC_PODS_NOT_CREATED
    assert "nightly" in stuck.message
    assert "created no pod" in stuck.message
    # Without a clock (the caller cannot tell the age) or once a pod exists, nothing is claimed.
    assert why_stuck(refused, []) is None
    assert why_stuck(refused, [pod("p", waiting="ContainerCreating")], created + timedelta(hours=1)) is None
    # A finished Job with its pods gone (ttl, cleanup) is not stuck.
    assert why_stuck(job("done", ("Complete", "")), [], created + timedelta(hours=1)) is None


def pending(name: str, created: str, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Pending pod as the API server stores it before anyone took it up."""
    status: dict[str, Any] = {"phase": "Pending", "qosClass": "Burstable"}
    if conditions is not None:
        status["conditions"] = conditions
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"schedulerName": "default-scheduler", "nodeName": "dc-node-7"},
        "status": status,
    }


T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PLACED = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-02T12:00:00Z"}


def test_a_pod_no_scheduler_looked_at_is_stuck_after_the_grace() -> None:
    """Seen on the dev stack without a node: no scheduler runs, the sync pod stays Pending with an empty
    status, and JobsHealthy read True ("no sync Job is stuck") for as long as it waited."""
    from datacloud.builders.job_health import NOT_TAKEN_UP_GRACE_S

    alone = pending("p", "2026-12-02T12:00:00Z")
    assert why_stuck(job("j"), [alone], T0 + timedelta(seconds=NOT_TAKEN_UP_GRACE_S - 1)) is None
    stuck = why_stuck(job("j"), [alone], T0 + timedelta(seconds=NOT_TAKEN_UP_GRACE_S))
    assert stuck is not None
    assert stuck.reason == "SyncPodUnschedulable" == ReplicaReason.SYNC_POD_UNSCHEDULABLE
    assert stuck.message == (
        "sync Job j: pod p has waited 120 s and no scheduler has looked at it "
        "(does the scheduler 'default-scheduler' run?)"
    )
    alone["spec"]["schedulerName"] = "batch-调度器"
    stuck = why_stuck(job("j"), [alone], T0 + timedelta(hours=1))
    assert stuck is not None
    assert "'batch-调度器'" in stuck.message
    assert why_stuck(job("j"), [alone]) is None  # without a clock nothing is claimed


def test_a_pod_placed_on_a_node_that_never_started_it_is_stuck_after_the_grace() -> None:
    from datacloud.builders.job_health import NOT_TAKEN_UP_GRACE_S

    placed = pending("p", "2026-12-02T11:59:59Z", [PLACED])
    assert why_stuck(job("j"), [placed], T0 + timedelta(seconds=NOT_TAKEN_UP_GRACE_S - 1)) is None
    stuck = why_stuck(job("j"), [placed], T0 + timedelta(seconds=NOT_TAKEN_UP_GRACE_S))
    assert stuck is not None
    assert stuck.reason == "SyncPodCannotStart"
    assert "placed on node dc-node-7 120 s ago and its kubelet has not taken it up" in stuck.message


def test_a_pod_a_kubelet_took_up_is_not_claimed_stuck_however_long_it_waits() -> None:
    """What kubelet writes as soon as it admits a pod (pulling a large image can take long)."""
    later = T0 + timedelta(hours=5)
    admitted = pending(
        "p",
        "2026-12-02T12:00:00Z",
        [
            PLACED,
            {"type": "PodReadyToStartContainers", "status": "False"},
            {"type": "Initialized", "status": "True"},
        ],
    )
    assert why_stuck(job("j"), [admitted], later) is None
    pulling = pending("p", "2026-12-02T12:00:00Z", [PLACED])
    pulling["status"]["containerStatuses"] = [
        {"name": "sync", "state": {"waiting": {"reason": "ContainerCreating"}}}
    ]
    assert why_stuck(job("j"), [pulling], later) is None
    running = pending("p", "2026-12-02T12:00:00Z")
    running["status"]["phase"] = "Running"
    assert why_stuck(job("j"), [running], later) is None
    unreadable = pending("p", "not a time")
    assert why_stuck(job("j"), [unreadable], later) is None


@given(
    conditions=st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["PodScheduled", "Initialized", "Ready", "ContainersReady"]),
                "status": st.sampled_from(["True", "False", "Unknown"]),
                "lastTransitionTime": st.just("2026-12-02T12:00:00Z"),
            }
        ),
        min_size=2,
        max_size=4,
    ),
)
def test_only_an_untouched_pod_is_claimed_never_taken_up(conditions: list[dict[str, Any]]) -> None:
    """With more than the scheduler's one condition, someone took the pod up: whatever else holds it is
    for the other rules (an unschedulable pod is still named as such)."""
    stuck = why_stuck(job("j"), [pending("p", "2026-12-02T12:00:00Z", conditions)], T0 + timedelta(days=1))
    unschedulable = any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions)
    assert (stuck is not None) == unschedulable
    if stuck is not None:
        assert "not scheduled" in stuck.message
