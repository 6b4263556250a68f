"""Job and pod objects in the shapes kubelet and the scheduler write (as seen on the dev node), for the
unit tests of stuck-Job detection."""

from __future__ import annotations

from typing import Any

from datacloud.api.drreplica import DRReplicaSpec


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


def scheduled_replica(paused: bool = False, continuous: bool = False) -> DRReplicaSpec:
    """A replica of `prod` with two Scheduled targets, `far` (02:00) and `west` (03:00), and with
    `continuous` a Continuous one, `near`, before them."""
    near = {"name": "near", "centre": "near", "bucket": "data", "mode": "Continuous"}
    far = {"name": "far", "centre": "remote", "bucket": "far", "mode": "Scheduled", "schedule": "0 2 * * *"}
    west = {
        "name": "west",
        "centre": "remote2",
        "bucket": "west",
        "mode": "Scheduled",
        "schedule": "0 3 * * *",
    }
    return DRReplicaSpec.model_validate(
        {
            "source": {"centre": "prod", "bucket": "data"},
            "activeCentre": "prod",
            "paused": paused,
            "targets": [near, far, west] if continuous else [far, west],
        }
    )
