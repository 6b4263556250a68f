"""The DR action state machine: the steps of Failover, Switchover and Failback, and the dry-run plan.

Each step is idempotent and recorded in status before it starts and after it ends, so an operator killed
at any point resumes at the first step not marked Succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STEPS: dict[str, tuple[str, ...]] = {
    # Unplanned: the active centre is lost; what was not yet copied (the lag) is lost with it.
    "Failover": ("Fencing", "Promoting", "Publishing", "Reseeding", "Done"),
    # Planned: fence first, then copy until nothing is pending, then swap: no data lost.
    "Switchover": ("Fencing", "FinalSync", "Promoting", "Publishing", "Reseeding", "Done"),
    "Failback": ("Fencing", "FinalSync", "Promoting", "Publishing", "Reseeding", "Done"),
}
TERMINAL = ("Succeeded", "Failed")


def fresh_steps(action_type: str) -> list[dict[str, Any]]:
    return [{"name": name, "state": "Pending"} for name in STEPS[action_type]]


def next_step(steps: Sequence[Mapping[str, Any]]) -> str | None:
    """The first step not yet Succeeded; None when all are done."""
    for step in steps:
        if step.get("state") != "Succeeded":
            return str(step["name"])
    return None


def failed(steps: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((s for s in steps if s.get("state") == "Failed"), None)


def mark(
    steps: Sequence[Mapping[str, Any]],
    name: str,
    state: str,
    now: str,
    message: str = "",
    reason: str = "",
) -> list[dict[str, Any]]:
    """The steps with `name` set to `state`. `reason` says why a Running step waits; any other change
    of the step clears it."""
    out = []
    for step in steps:
        new = dict(step)
        if step["name"] == name:
            new.update(state=state, time=now)
            if message:
                new["message"] = message
            if reason:
                new["reason"] = reason
            else:
                new.pop("reason", None)
        out.append(new)
    return out


def current(steps: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The step the action is at (the first not yet Succeeded); None when all are done."""
    return next((s for s in steps if s.get("state") != "Succeeded"), None)


def plan(
    action_type: str, old_active: str, new_active: str, lag_s: float | None, others: Sequence[str]
) -> list[str]:
    """What the action would do, in the order it does it, for a dry run and the audit record."""
    lines = [f"Fencing: new fencing epoch; deny writes to the copy in {old_active} when reachable"]
    if action_type != "Failover":
        lines.append(f"FinalSync: copy {old_active} → {new_active} until nothing is pending (no data loss)")
    lines += [
        f"Promoting: {new_active} becomes the active centre",
        f"Publishing: endpoint ConfigMap and ExternalName Service point to {new_active}",
        f"Reseeding: replicate {new_active} → {', '.join(others) or 'no other centre'}",
    ]
    if action_type == "Failover":
        loss = "unknown (no lag measured)" if lag_s is None else f"{lag_s:.1f}s of writes"
        lines.append(f"Estimated data loss: {loss}")
    else:
        lines.append("Estimated data loss: none (planned, lossless)")
    return lines
