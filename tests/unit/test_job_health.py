"""why_stuck: a Job that cannot progress is named, with its pod and the reason; a running or finished
one is not. The shapes below are what kubelet and the scheduler wrote on the dev node (test_node.py
checks the same against the real ones)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.builders.job_health import STUCK_WAITING, why_stuck


def job(name: str, *conditions: tuple[str, str]) -> dict[str, Any]:
    conds = [{"type": t, "status": "True", "reason": r, "message": f"{r} happened"} for t, r in conditions]
    return {"metadata": {"name": name}, "status": {"conditions": conds}}


def pod(name: str, waiting: str | None = None, unschedulable: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending"}
    if waiting:
        status["containerStatuses"] = [
            {"name": "sync", "state": {"waiting": {"reason": waiting, "message": "m"}}}
        ]
    if unschedulable:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}
        ]
    return {"metadata": {"name": name}, "status": status}


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
