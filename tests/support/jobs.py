"""Job and pod objects in the shapes kubelet and the scheduler write (as seen on the dev node), for the
unit tests of stuck-Job detection."""

from __future__ import annotations

from typing import Any


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
