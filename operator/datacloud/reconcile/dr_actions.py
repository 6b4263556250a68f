"""Carrying out a DR action step by step. Each step is idempotent; progress lives in status.action, so an
operator restarted in any step picks up at the first step not yet Succeeded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..api.drreplica import DRReplicaSpec
from ..failover import fencing
from ..failover.actions import mark, next_step
from ..failover.topology import Copy, active_copy, copies
from ..replication.engine import Replicator, SyncOptions
from .centres import Centre
from .dr_flows import location

log = logging.getLogger(__name__)
FINAL_SYNC_PASSES = 5


class StepBlocked(RuntimeError):
    """The step cannot finish now; it is retried on the next tick (the message says why)."""


@dataclass
class ActionContext:
    spec: DRReplicaSpec
    action: dict[str, Any]  # status.action, updated in place
    centres: dict[str, Centre]
    now: str
    publish: Callable[[Copy, int], None]  # writes the endpoint ConfigMap and Service
    reseed: Callable[[str], None]  # restarts the flows from the new active centre

    @property
    def old(self) -> Copy:
        return active_copy(self.spec, str(self.action["fromCentre"]))

    @property
    def new(self) -> Copy:
        return active_copy(self.spec, str(self.action["targetCentre"]))

    @property
    def epoch(self) -> int:
        return int(self.action["fencingEpoch"])


def _fence_old(ctx: ActionContext) -> str:
    centre = ctx.centres.get(ctx.old.centre)
    try:
        if centre is None:
            raise StepBlocked(f"centre {ctx.old.centre} cannot be resolved")
        fencing.fence(centre.endpoint, ctx.old.bucket, ctx.epoch)
    except (BotoCoreError, ClientError, StepBlocked) as e:
        if ctx.action["type"] != "Failover":
            # A planned action needs the old copy reachable: it is the one holding the latest writes.
            raise StepBlocked(f"cannot fence {ctx.old.centre}: {e}") from None
        return f"{ctx.old.centre} unreachable ({type(e).__name__}); it will be fenced as soon as it answers"
    return f"writes to {ctx.old.centre}/{ctx.old.bucket} denied (epoch {ctx.epoch})"


def _final_sync(ctx: ActionContext) -> str:
    src_centre, dst_centre = ctx.centres.get(ctx.old.centre), ctx.centres.get(ctx.new.centre)
    if src_centre is None or dst_centre is None:
        raise StepBlocked("both centres must be reachable for a final sync")
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
                        raise StepBlocked(f"{result.mismatch_count} objects differ after the final sync")
                    return f"lag is zero: {copied} objects copied in the final sync"
    except (BotoCoreError, ClientError) as e:
        raise StepBlocked(f"final sync failed: {e}") from None
    raise StepBlocked(f"still copying after {FINAL_SYNC_PASSES} passes ({copied} objects); retrying")


def _promote(ctx: ActionContext) -> str:
    centre = ctx.centres.get(ctx.new.centre)
    if centre is None:
        raise StepBlocked(f"centre {ctx.new.centre} cannot be resolved")
    try:
        fencing.unfence(centre.endpoint, ctx.new.bucket)
    except (BotoCoreError, ClientError) as e:
        raise StepBlocked(f"cannot open {ctx.new.centre} for writes: {e}") from None
    return f"{ctx.new.centre} is the active centre (epoch {ctx.epoch})"


def _publish(ctx: ActionContext) -> str:
    ctx.publish(ctx.new, ctx.epoch)
    return f"endpoint published: {ctx.new.centre}/{ctx.new.bucket}"


def _reseed(ctx: ActionContext) -> str:
    ctx.reseed(ctx.new.centre)
    others = [c.centre for c in copies(ctx.spec) if c.centre != ctx.new.centre]
    return f"replicating {ctx.new.centre} → {', '.join(others)}"


STEP_FUNCTIONS: dict[str, Callable[[ActionContext], str]] = {
    "Fencing": _fence_old,
    "FinalSync": _final_sync,
    "Promoting": _promote,
    "Publishing": _publish,
    "Reseeding": _reseed,
    "Done": lambda ctx: "done",
}


def advance(ctx: ActionContext, record: Callable[[dict[str, Any]], None]) -> bool:
    """Run steps until the action is done or a step is blocked; `record` persists after every change.

    Returns True when the action finished."""
    while (step := next_step(ctx.action["steps"])) is not None:
        ctx.action["steps"] = mark(ctx.action["steps"], step, "Running", ctx.now)
        record(ctx.action)
        try:
            message = STEP_FUNCTIONS[step](ctx)
        except StepBlocked as e:
            ctx.action["steps"] = mark(ctx.action["steps"], step, "Running", ctx.now, str(e))
            record(ctx.action)
            log.warning("%s step %s blocked: %s", ctx.action["type"], step, e)
            return False
        ctx.action["steps"] = mark(ctx.action["steps"], step, "Succeeded", ctx.now, message)
        record(ctx.action)
    return True
