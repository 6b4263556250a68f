"""Carrying out a DR action: a blocked step says why once, resumes where it was, and API refusals read
as the API server's own words."""

from __future__ import annotations

import json
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.actions import current, fresh_steps, mark
from datacloud.failover.topology import Copy
from datacloud.reconcile.centres import HealthChanges
from datacloud.reconcile.dr_actions import (
    ActionContext,
    StepBlocked,
    advance,
    api_refusal,
    progress_condition,
    refused,
)

SPEC = DRReplicaSpec.model_validate(
    {
        "source": {"centre": "prod", "bucket": "data"},
        "activeCentre": "prod",
        "targets": [{"name": "near", "centre": "samecity", "bucket": "data", "mode": "Continuous"}],
    }
)


def promoted_action() -> dict[str, Any]:
    """A failover whose Fencing and Promoting are done (what an operator restarted there finds)."""
    steps = fresh_steps("Failover")
    for name in ("Fencing", "Promoting"):
        steps = mark(steps, name, "Succeeded", "t0", "done")
    return {
        "type": "Failover",
        "fromCentre": "prod",
        "targetCentre": "samecity",
        "fencingEpoch": 2,
        "steps": steps,
    }


class Endpoint:
    """The publish and reseed callbacks of an ActionContext, refusing until `allow` is set."""

    def __init__(self) -> None:
        self.allow = False
        self.published: list[tuple[Copy, int]] = []
        self.reseeded: list[tuple[Copy, int]] = []

    def publish(self, copy: Copy, epoch: int) -> None:
        if not self.allow:
            raise StepBlocked("PublicationRefused", "change freeze")
        self.published.append((copy, epoch))

    def reseed(self, copy: Copy, epoch: int) -> str:
        self.reseeded.append((copy, epoch))
        return "replicating"


def test_a_blocked_step_is_recorded_once_with_its_reason_then_finishes() -> None:
    action, endpoint = promoted_action(), Endpoint()
    records: list[dict[str, Any]] = []
    ctx = ActionContext(SPEC, action, {}, "t1", endpoint.publish, endpoint.reseed)

    def record(a: dict[str, Any]) -> None:
        records.append(json.loads(json.dumps(a)))  # a copy: what status would hold at that moment

    assert advance(ctx, record) is False
    step = current(action["steps"])
    assert step is not None
    assert (step["name"], step["state"], step["reason"], step["message"]) == (
        "Publishing",
        "Running",
        "PublicationRefused",
        "change freeze",
    )
    # Why it waits, once: a Failover's Publishing is not written before it runs (nothing before it moved
    # data into the new copy), so the wait is its first write.
    assert len(records) == 1
    waiting = current(records[0]["steps"])
    assert waiting is not None
    assert (waiting["name"], waiting["reason"]) == ("Publishing", "PublicationRefused")

    assert advance(ctx, record) is False  # refused again, for the same reason: nothing new to write
    assert len(records) == 1

    endpoint.allow = True
    assert advance(ctx, record) is True
    assert all(s["state"] == "Succeeded" and "reason" not in s for s in action["steps"])
    assert [e for _, e in endpoint.published] == [2]
    assert [c.centre for c, _ in endpoint.reseeded] == ["samecity"]


def test_api_refusals_carry_the_servers_message_and_tell_refused_from_failed() -> None:
    denied = ApiException(status=422, reason="Unprocessable Entity")
    denied.body = json.dumps(
        {"kind": "Status", "message": "ValidatingAdmissionPolicy 'x' denied request: freeze"}
    )
    assert api_refusal(denied) == "HTTP 422: ValidatingAdmissionPolicy 'x' denied request: freeze"
    assert refused("Publication", "the endpoint", denied).reason == "PublicationRefused"
    broken = ApiException(status=503, reason="Service Unavailable")
    broken.body = "not json"
    assert api_refusal(broken) == "HTTP 503: Service Unavailable"
    assert refused("Reseed", "the seed Job", broken).reason == "ReseedFailed"


def test_marking_a_step_otherwise_clears_why_it_waited() -> None:
    steps = mark(fresh_steps("Failover"), "Fencing", "Running", "t", "away", "OldActiveUnreachable")
    assert steps[0]["reason"] == "OldActiveUnreachable"
    steps = mark(steps, "Fencing", "Succeeded", "t2", "fenced")
    assert "reason" not in steps[0]
    assert current(steps) == {"name": "Promoting", "state": "Pending"}


def test_health_changes_wake_a_waiter_at_once() -> None:
    changes = HealthChanges()
    seen = changes.version
    assert changes.wait(seen, 0.01) is False
    threading.Timer(0.05, changes.changed).start()
    assert changes.wait(seen, 5.0) is True
    assert changes.version == seen + 1


def test_action_progressing_says_where_the_action_waits_and_when_it_completed() -> None:
    action = promoted_action() | {"requestId": "CHG-1"}
    assert progress_condition({}, 3) is None
    running = progress_condition(action, 3)
    assert running is not None
    assert (running["status"], running["reason"], running["message"]) == (
        "True",
        "StepRunning",
        "Failover CHG-1 to samecity: Publishing",
    )
    action["steps"] = mark(
        action["steps"], "Publishing", "Running", "t", "change freeze", "PublicationRefused"
    )
    waiting = progress_condition(action, 3)
    assert waiting is not None
    assert (waiting["status"], waiting["reason"]) == ("False", "PublicationRefused")
    assert waiting["message"] == "Failover CHG-1 to samecity waits in Publishing: change freeze"
    done = progress_condition(action | {"finishedAt": "t2", "durationSeconds": 4.25}, 3)
    assert done is not None
    assert (done["status"], done["reason"], done["message"]) == (
        "True",
        "Completed",
        "Failover CHG-1 to samecity completed in 4.2s",
    )
