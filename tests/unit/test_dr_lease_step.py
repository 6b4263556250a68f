"""The Fencing step of an unplanned failover whose old active cannot be fenced: it waits for the old
copy's write lease, and says until when."""

from __future__ import annotations

import time
from typing import Any

import pytest

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.actions import fresh_steps
from datacloud.reconcile.dr_actions import ActionContext, advance

SPEC = DRReplicaSpec.model_validate(
    {
        "source": {"centre": "prod", "bucket": "data"},
        "activeCentre": "prod",
        "targets": [
            {"name": "near", "centre": "near", "bucket": "data", "mode": "Continuous", "rpoTarget": "30s"}
        ],
    }
)


def context(kind: str, lease_end: float, released: list[str]) -> ActionContext:
    action: dict[str, Any] = {
        "type": kind,
        "requestId": "r",
        "fromCentre": "prod",
        "targetCentre": "near",
        "fencingEpoch": 2,
        "steps": fresh_steps(kind),
    }

    def end(copy: Any) -> float:
        released.append(copy.centre)
        return lease_end

    # No centre resolves: the old active cannot be fenced, nor the new one opened.
    return ActionContext(
        SPEC, action, {}, "now", publish=lambda c, e: None, reseed=lambda c, e: "", lease_end=end
    )


def fencing_step(ctx: ActionContext) -> dict[str, Any]:
    return next(s for s in ctx.action["steps"] if s["name"] == "Fencing")


def test_a_failover_waits_while_the_old_copy_may_still_accept_writes() -> None:
    released: list[str] = []
    ctx = context("Failover", time.time() + 30, released)
    assert advance(ctx, lambda a: None) is False
    step = fencing_step(ctx)
    assert step["reason"] == "WriteLeaseRunning"
    assert "two writable copies" in step["message"]
    assert ctx.retry_in is not None
    assert 29 < ctx.retry_in <= 31
    assert released == ["prod"]  # the lease stopped being renewed before anything else


def test_once_the_lease_has_ended_the_failover_goes_on() -> None:
    ctx = context("Failover", time.time() - 5, [])
    advance(ctx, lambda a: None)
    step = fencing_step(ctx)
    assert step["state"] == "Succeeded"
    assert "refuses writes" in step["message"]
    assert "fenced as soon as it answers" in step["message"]


@pytest.mark.parametrize("kind", ["Switchover", "Failback"])
def test_a_planned_action_never_goes_on_without_fencing(kind: str) -> None:
    ctx = context(kind, time.time() - 5, [])
    advance(ctx, lambda a: None)
    assert fencing_step(ctx)["reason"] == "OldActiveUnreachable"
    assert fencing_step(ctx)["state"] == "Running"
