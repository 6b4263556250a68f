"""Carrying out a DR action step by step. Each step is idempotent; progress lives in status.action, so an
operator restarted in any step picks up at the first step not yet Succeeded."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.exceptions import ApiException

from ..api.conditions import ReplicaReason, ReplicaType, reason_of, replica
from ..api.drreplica import DRReplicaSpec
from ..failover import fencing
from ..failover.actions import current, mark
from ..failover.lease import SKEW_S
from ..failover.topology import Copy, active_copy
from ..replication.engine import Replicator, SyncOptions
from .centres import Centre
from .dr_flows import location
from .verdicts import UNREACHABLE

log = logging.getLogger(__name__)
FINAL_SYNC_PASSES = 5
# A failover fences a centre already found Down: a short attempt, since the operator fences it again as
# soon as it answers, and every second spent waiting on a dead store is a second of outage.
DOWN_CENTRE_TIMEOUT_S = 1.0


class StepBlocked(RuntimeError):
    """The step cannot finish now; it is retried on a later tick. `reason` is one CamelCase word for the
    step, the condition and the Event; the message says why."""

    def __init__(self, reason: str, message: str, retry_in: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_in = retry_in  # when the cause is known to go away (a write lease running out)


def api_refusal(e: ApiException) -> str:
    """The API server's own words for a refused request (an admission policy's message, a quota...)."""
    try:
        message = str(json.loads(e.body or "{}").get("message") or "")
    except (ValueError, TypeError, AttributeError):
        message = ""
    return f"HTTP {e.status}: {message or e.reason}"


def refused(reason: str, what: str, e: ApiException) -> StepBlocked:
    """A step's write refused by the API server (4xx: a policy or quota) or failed there (5xx)."""
    kind = "Refused" if e.status and 400 <= int(e.status) < 500 else "Failed"
    return StepBlocked(f"{reason}{kind}", f"the API server did not accept {what}: {api_refusal(e)}")


@dataclass
class ActionContext:
    spec: DRReplicaSpec
    action: dict[str, Any]  # status.action, updated in place
    centres: dict[str, Centre]
    now: str
    publish: Callable[[Copy, int], None]  # writes the endpoint ConfigMap and Service; StepBlocked if refused
    reseed: Callable[[Copy, int], str]  # starts the flows from the new active centre; StepBlocked if refused
    # The fence owner id of a copy (its own statements on a possibly shared bucket).
    owner: Callable[[Copy], str] = lambda copy: copy.name
    # Called before a step writes into a copy: StepBlocked until its divergent writes are preserved.
    before_writing_into: Callable[[Copy], None] = lambda copy: None
    # The write lease of a copy becoming active: held from now on; the expiry to write (None: no lease).
    lease: Callable[[Copy], int | None] = lambda copy: None
    # The lease of the copy being left: no longer renewed; until when (Unix time) it may accept writes.
    lease_end: Callable[[Copy], float] = lambda copy: 0.0
    retry_in: float | None = None  # set by a blocked step that knows when to be retried
    # Whether status already holds this action (its fencing epoch): if not, it is written before the
    # new active opens. An action's start is not written by itself: its first step fences with the epoch
    # (idempotent, and repeated with the same epoch after a restart), so the start rides on the next write.
    stored: bool = True

    @property
    def old(self) -> Copy:
        return active_copy(self.spec, str(self.action["fromCentre"]))

    @property
    def new(self) -> Copy:
        return active_copy(self.spec, str(self.action["targetCentre"]))

    @property
    def epoch(self) -> int:
        return int(self.action["fencingEpoch"])


def _where(copy: Copy) -> str:
    return f"{copy.centre}/{copy.bucket}/{copy.prefix}".rstrip("/")


def _fence_old(ctx: ActionContext) -> str:
    centre = ctx.centres.get(ctx.old.centre)
    failover = ctx.action["type"] == "Failover"
    # First the lease stops being renewed (a renewal must not replace the fence written next).
    lease_end = ctx.lease_end(ctx.old)
    if failover and centre is not None and centre.health == "Down":
        # Another replica failing over from the same dead centre has just tried it: take its word.
        why = UNREACHABLE.recent(centre.name)
        if why is not None:
            return _unfenced_old(ctx, lease_end, why)
    try:
        if centre is None:
            raise StepBlocked("CentreUnresolved", f"centre {ctx.old.centre} cannot be resolved")
        timeout = DOWN_CENTRE_TIMEOUT_S if failover and centre.health == "Down" else 5.0
        fencing.fence(
            centre.endpoint,
            ctx.old.bucket,
            ctx.old.prefix,
            ctx.owner(ctx.old),
            ctx.epoch,
            centre.probe.access_key_id if centre.probe else None,
            timeout_s=timeout,
        )
    except (BotoCoreError, ClientError, fencing.PolicyContended, StepBlocked) as e:
        if not failover:
            # A planned action needs the old copy reachable: it is the one holding the latest writes.
            raise StepBlocked("OldActiveUnreachable", f"cannot fence {ctx.old.centre}: {e}") from None
        if centre is not None and isinstance(e, BotoCoreError):
            UNREACHABLE.note(centre.name, type(e).__name__)
        return _unfenced_old(ctx, lease_end, type(e).__name__)
    if centre is not None:
        UNREACHABLE.clear(centre.name)
    return f"writes to {_where(ctx.old)} denied (epoch {ctx.epoch})"


def _unfenced_old(ctx: ActionContext, lease_end: float, why: str) -> str:
    """An unplanned failover whose old active cannot be fenced goes on only once that copy's write lease
    has run out: from then on it refuses writes by itself, now and whenever it comes back."""
    wait = lease_end + SKEW_S - time.time()
    if wait > 0:
        ends = datetime.fromtimestamp(lease_end, UTC).isoformat(timespec="seconds")
        raise StepBlocked(
            "WriteLeaseRunning",
            f"{ctx.old.centre} cannot be fenced ({why}) and may accept writes until its write lease ends "
            f"at {ends}; promoting before then could leave two writable copies",
            retry_in=wait,
        )
    return (
        f"{ctx.old.centre} unreachable ({why}); its write lease has ended, so it refuses writes, "
        "and it is fenced as soon as it answers"
    )


def _final_sync(ctx: ActionContext) -> str:
    src_centre, dst_centre = ctx.centres.get(ctx.old.centre), ctx.centres.get(ctx.new.centre)
    if src_centre is None or dst_centre is None:
        raise StepBlocked("CentreUnresolved", "both centres must be resolved for a final sync")
    ctx.before_writing_into(ctx.new)
    src = location(src_centre, ctx.old.bucket, ctx.old.prefix)
    dst = location(dst_centre, ctx.new.bucket, ctx.new.prefix)
    copied = 0
    try:
        with Replicator(src, dst, SyncOptions(delete="mirror", verify="size-etag")) as replicator:
            for _ in range(FINAL_SYNC_PASSES):
                result = replicator.full_sync()
                copied += result.objects_copied
                if result.objects_copied == 0 and result.objects_deleted == 0 and result.errors == 0:
                    if result.mismatch_count:
                        raise StepBlocked(
                            "FinalSyncMismatch",
                            f"{result.mismatch_count} objects differ after the final sync",
                        )
                    return f"lag is zero: {copied} objects copied in the final sync"
    except (BotoCoreError, ClientError) as e:
        raise StepBlocked("FinalSyncFailed", f"final sync failed: {e}") from None
    raise StepBlocked(
        "FinalSyncIncomplete", f"still copying after {FINAL_SYNC_PASSES} passes ({copied} objects); retrying"
    )


def _promote(ctx: ActionContext) -> str:
    centre = ctx.centres.get(ctx.new.centre)
    if centre is None:
        raise StepBlocked("CentreUnresolved", f"centre {ctx.new.centre} cannot be resolved")
    try:
        fencing.unfence(
            centre.endpoint,
            ctx.new.bucket,
            ctx.new.prefix,
            ctx.owner(ctx.new),
            centre.probe.access_key_id if centre.probe else None,
            lease_until=ctx.lease(ctx.new),
        )
    except (BotoCoreError, ClientError, fencing.PolicyContended) as e:
        raise StepBlocked("NewActiveUnreachable", f"cannot open {ctx.new.centre} for writes: {e}") from None
    return f"{ctx.new.centre} is the active centre (epoch {ctx.epoch})"


def _publish(ctx: ActionContext) -> str:
    ctx.publish(ctx.new, ctx.epoch)
    return f"endpoint published: {ctx.new.centre}/{ctx.new.bucket}"


def _reseed(ctx: ActionContext) -> str:
    return ctx.reseed(ctx.new, ctx.epoch)


STEP_FUNCTIONS: dict[str, Callable[[ActionContext], str]] = {
    "Fencing": _fence_old,
    "FinalSync": _final_sync,
    "Promoting": _promote,
    "Publishing": _publish,
    "Reseeding": _reseed,
    "Done": lambda ctx: "done",
}


def progress_condition(action: dict[str, Any], generation: int | None) -> dict[str, Any] | None:
    """ActionProgressing: True while the action advances and once it completed; False while a step
    waits on something outside the operator (the reason and message say what). None before any
    action (dry runs and rejected requests leave it as it was)."""
    if not action.get("steps"):
        return None
    what = f"{action['type']} {action['requestId']} to {action['targetCentre']}"
    if action.get("finishedAt"):
        took = float(action.get("durationSeconds") or 0.0)
        done = f"{what} completed in {took:.1f}s"
        return replica(ReplicaType.ACTION_PROGRESSING, True, ReplicaReason.COMPLETED, done, generation)
    step = current(action["steps"])
    if step is None:
        return None
    if step.get("reason"):
        message = f"{what} waits in {step['name']}: {step.get('message', '')}"
        waits = reason_of(ReplicaReason, str(step["reason"]), ReplicaReason.CENTRE_UNRESOLVED)
        return replica(ReplicaType.ACTION_PROGRESSING, False, waits, message, generation)
    running = f"{what}: {step['name']}"
    return replica(ReplicaType.ACTION_PROGRESSING, True, ReplicaReason.STEP_RUNNING, running, generation)


# Steps whose start is written before they run: what they do outside must not get ahead of status.
# A final sync can take long, so status shows that it runs. Promoting opens the new active, so the
# action's fencing epoch is stored first (when no earlier write of this action did: ActionContext.stored).
RECORDED_BEFORE = frozenset({"FinalSync"})


def _recorded_before(name: str, steps: list[dict[str, Any]]) -> bool:
    """Whether a step's start must be written before it runs. Publishing moves the endpoint, and
    applications write into the new active from then on: where an earlier step of the action copied
    data into the new copy (a final sync mirrors the old copy onto it, deleting what the old one lacks),
    the promotion is stored first, so an operator restarted after the endpoint moved never redoes that
    step over those writes. A Failover's earlier steps (fencing the old copy, opening the new one) move
    no data and are redone unchanged after a restart, to the same target and epoch the stored action
    names, so its promotion rides on the end's write (one status write per replica fewer in a mass
    failover)."""
    if name in RECORDED_BEFORE:
        return True
    return name == "Publishing" and any(s["name"] in RECORDED_BEFORE for s in steps)


def advance(
    ctx: ActionContext,
    record: Callable[[dict[str, Any]], None],
    waiting: Callable[[dict[str, Any]], None] | None = None,
) -> bool:
    """Run steps until the action is done or a step is blocked. `record` persists status.action, and is
    called only where a write must precede an effect: before a step `_recorded_before` names runs, before
    Promoting when the action (its fencing epoch) is not yet stored, and when a step waits (once per
    reason, so a step retried on every tick does not rewrite status every time). The end is written by
    the caller, with the action's result.

    `waiting` (default: `record`) persists why a step waits: nothing of the action follows in this run,
    so the caller may write it with the rest of the run's status, in one write.

    The other steps' progress rides on those writes (a thousand replicas failing over at once wrote
    status once per step each); a step that succeeded but was not yet recorded is simply run again after
    a restart, as every step is idempotent. A step is marked Succeeded only after it ran.

    Returns True when the action finished (its last steps possibly not yet recorded)."""
    unrecorded = False
    while (step := current(ctx.action["steps"])) is not None:
        name = str(step["name"])
        if step.get("state") != "Running":
            ctx.action["steps"] = mark(ctx.action["steps"], name, "Running", ctx.now)
            unrecorded = True
        if unrecorded and (
            _recorded_before(name, ctx.action["steps"]) or (name == "Promoting" and not ctx.stored)
        ):
            record(ctx.action)
            unrecorded, ctx.stored = False, True
        try:
            message = STEP_FUNCTIONS[name](ctx)
        except StepBlocked as e:
            ctx.retry_in = e.retry_in
            if (step.get("reason"), step.get("message")) != (e.reason, str(e)) or unrecorded:
                ctx.action["steps"] = mark(ctx.action["steps"], name, "Running", ctx.now, str(e), e.reason)
                (waiting or record)(ctx.action)
                ctx.stored = True
                log.warning("%s step %s blocked (%s): %s", ctx.action["type"], name, e.reason, e)
            return False
        ctx.action["steps"] = mark(ctx.action["steps"], name, "Succeeded", ctx.now, message)
        unrecorded = True
    return True
