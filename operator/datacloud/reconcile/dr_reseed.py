"""Seed Jobs after a change of active centre: one full sync per Scheduled target from the new active, so
the remote copy holds the new active's data now rather than at its next cron time.

The action's Reseeding step only owes them (`owe`): no Job is needed for the replica to be FailedOver, and
making them on the action's path (with the sync account they run as, and the listing of the old active's
Jobs to cancel) kept a thousand replicas failing over at once waiting on the API server. They are made
(`pay`) by the runs after the action's end is written, first cancelling this replica's sync Jobs still
unfinished from before the action (started from the old active, one finishing after the seed would land
older data on its target). The `Reseeded` condition says which seed Jobs were made and which are owed and
why (the action's end not yet written, a centre Down, the API server refusing), so nothing claims a seed
that was not made. Owed seeds are kept in memory; an operator that finds `Reseeded` False when it starts
owes every Scheduled target's seed of the current epoch again (the Jobs are named after the epoch, so one
already made is applied unchanged).
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from ..api.conditions import ReplicaReason, ReplicaType, reason_of, replica
from ..api.drreplica import DRReplicaSpec
from ..builders.conditions import merge_conditions
from ..failover.topology import Flow
from .centres import Centre
from .dr_actions import refused
from .dr_context import OwedSeeds, ReplicaContext
from .dr_flows import epoch_now, in_window
from .dr_scheduled import cancel_from_old_active, launch

AFTER_RECORD = "made by the run after the action's end"


def run_id(epoch: int) -> str:
    return f"seed-e{epoch}"


def owe(rt: ReplicaContext, spec: DRReplicaSpec, scheduled: list[Flow], epoch: int, cut: str) -> list[str]:
    """The Reseeding step: a seed owed to each Scheduled target inside its window (unless paused; the
    others copy at their next scheduled run); `cut` is the action's start. Returns the step's notes."""
    owed: dict[str, str] = {}
    notes: list[str] = []
    skipped: list[str] = []
    for flow in scheduled:
        window = flow.spec.window if flow.spec else None
        if spec.paused or not in_window(window, epoch_now()):
            notes.append(f"{flow.dst.centre} at its next scheduled run")
            skipped.append(flow.target)
            continue
        owed[flow.target] = AFTER_RECORD
        notes.append(f"{flow.dst.centre} by seed Job (run {run_id(epoch)}), {AFTER_RECORD}")
    rt.reseed = OwedSeeds(epoch, cut, owed, skipped=skipped)
    return notes


def pay(
    rt: ReplicaContext,
    body: dict[str, Any],
    spec: DRReplicaSpec,
    scheduled: list[Flow],
    writable: list[Flow],
    centres: dict[str, Centre],
) -> None:
    """Once the action's end is written: cancel the old active's Jobs (once), then make each owed seed
    whose centres answer. `scheduled` are the Scheduled flows from the active centre, `writable` those
    that may be written into now (a returning copy whose divergent writes are not yet kept is not)."""
    epoch = int(rt.status.get("fencingEpoch") or 0)
    owed = rt.reseed if rt.reseed is not None else _restored(rt, spec, scheduled, epoch)
    if owed is None:
        return
    rt.reseed = owed
    if owed.epoch != epoch:  # a later action owes its own
        owed.targets.clear()
        return
    if not owed.cancelled:
        cancel_from_old_active(rt, run_id(epoch), owed.cut)  # a refusal is reported there, not held on
        owed.cancelled = True
    flows = {f.target: f for f in scheduled}
    open_ = {f.target for f in writable}
    owed.refusal = None
    for target in list(owed.targets):
        flow = flows.get(target)
        window = flow.spec.window if flow and flow.spec else None
        if flow is None or spec.paused or not in_window(window, epoch_now()):
            del owed.targets[
                target
            ]  # no longer a target, paused, or out of its window: its next run copies it
            owed.skipped.append(target)
            continue
        if target not in open_:
            owed.targets[target] = f"{flow.dst.centre} holds divergent writes not yet kept"
            continue
        down = [c for c in (flow.src.centre, flow.dst.centre) if _down(centres.get(c))]
        if down:
            owed.targets[target] = f"{', '.join(down)} Down: created once it answers"
            continue
        try:
            name = launch(rt, body, flow, run_id(epoch))
        except ApiException as e:
            blocked = refused("Reseed", f"the seed Job of {target}", e)
            owed.targets[target] = str(blocked)
            owed.refusal = blocked.reason
            rt.emit("Warning", blocked.reason, f"seed Job of {target} not created: {blocked}; retrying")
            continue
        del owed.targets[target]
        owed.created.append(name)


def _down(centre: Centre | None) -> bool:
    return centre is None or centre.health == "Down"


def _restored(rt: ReplicaContext, spec: DRReplicaSpec, scheduled: list[Flow], epoch: int) -> OwedSeeds | None:
    """After a restart: the seeds of the current epoch owed again while `Reseeded` says some are owed."""
    found = next(
        (c for c in rt.status.get("conditions") or [] if c.get("type") == ReplicaType.RESEEDED), None
    )
    if found is None or found.get("status") != "False":
        return None
    cut = str((rt.status.get("action") or {}).get("startedAt") or "")
    return OwedSeeds(epoch, cut, {f.target: "owed before the operator restarted" for f in scheduled})


def condition(rt: ReplicaContext, generation: int | None, now: str) -> None:
    """`Reseeded` from what is owed; left as it was while nothing is (before any action, after a restart
    that found it True)."""
    owed = rt.reseed
    if owed is None:
        return
    if owed.targets:
        waits = reason_of(ReplicaReason, owed.refusal or "", ReplicaReason.SEED_JOB_PENDING)
        message = "seed Job owed: " + "; ".join(f"{t}: {why}" for t, why in sorted(owed.targets.items()))
        cond = replica(ReplicaType.RESEEDED, False, waits, message, generation)
    else:
        parts = [f"created {', '.join(owed.created)}"] if owed.created else []
        if owed.skipped:
            parts.append(f"{', '.join(owed.skipped)} at the next scheduled run")
        message = f"epoch {owed.epoch}: " + ("; ".join(parts) or "no Scheduled target")
        cond = replica(ReplicaType.RESEEDED, True, ReplicaReason.SEED_JOBS_CREATED, message, generation)
    rt.status["conditions"] = merge_conditions(rt.status.get("conditions"), [cond], now)
