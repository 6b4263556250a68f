"""DRReplica reconciler: one `ReplicaRuntime` per replica, run by the DRReplica roster (`dr_roster`).

observe (spec, centres and their health, the followers' lag) → plan (topology from the active centre,
actions, automatic failover, due scheduled runs) → apply (fences, followers, Jobs, endpoint, status,
events, metrics).

A run is either full or light. A full run also checks the buckets and the fences against the stores; it
happens when the spec, the active centre or the fencing epoch changes, when a centre answers again after
being Down, and every `RESYNC_S` (drift repair). The fences are checked more often: every `FENCE_CHECK_S`
(`fence_every`: the roster stretches it so the operator's checks stay within a rate), one policy read
per fenced copy, since a fence someone removed is a second writer; a missing statement is written again
and the copies probed at once, so `writableCopies` never reads healthy through it. Light runs keep the
followers, scheduled syncs and status current. A replica with nothing to do is run every `IDLE_S` and
writes nothing: idle costs no API writes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .. import settings
from ..adapters import s3_wire
from ..adapters.kube import Kube
from ..api.common import parse_duration
from ..api.conditions import ReplicaReason, ReplicaType, reason_of, replica
from ..api.drreplica import DRReplicaSpec, DRReplicaStatus
from ..api.reserved import AUDIT_BUCKET
from ..builders import dr as build
from ..builders.conditions import merge_conditions, now_iso
from ..builders.patch import apply_merge_patch, merge_patch
from ..builders.written import InvalidStatus, WrittenStatus, resource_version
from ..failover import fencing
from ..failover.actions import current, fresh_steps, plan
from ..failover.lease import LEASES
from ..failover.topology import Copy, Flow, active_copy, copies, flows
from ..metrics import dr as dr_metrics
from ..replication.events import EventReceiver
from . import dr_buckets, dr_divergent, dr_overlap, dr_reseed, dr_scheduled, dr_specs, dr_status, dr_writers
from .centres import Centre, CentreReader, CentreUnavailable, resolve
from .dr_actions import ActionContext, StepBlocked, advance, progress_condition, refused
from .dr_context import OwedSeeds
from .dr_flows import FollowerHub, Followers, epoch_now, seconds_between
from .dr_parked import ParkedNotices
from .status_refusal import refused as status_refused

log = logging.getLogger(__name__)
PLURAL = "drreplicas"
HISTORY = 20
STATUS_EVERY_S = 5.0  # figures that change (lag, counts) are written at most this often
# Figures that change by themselves while nothing happens (a scan's time, a scheduled copy's age) are
# written with the next real change, or after this long: a thousand idle replicas must not write every
# few seconds. The metrics carry them live.
DRIFTING_EVERY_S = 1800.0
DRIFTING_TARGET_KEYS = ("lagSeconds", "lastSyncTime")
REPUBLISH_EVERY_S = 1800.0  # the endpoint is applied again this often (drift repair), and after a refusal
RESYNC_S = 300.0  # a full run (buckets, fences) at least this often, spread by up to a fifth
FENCE_CHECK_S = 20.0  # fences checked against the stores at least this often, spread by up to a fifth
# A light run at least this often. Nothing waits for it: scheduled runs and automatic failovers say when
# they are due, a follower with something pending asks for a run within BUSY_S, health changes and new
# specs wake the replica. A light run costs about 2 ms of CPU: a thousand idle replicas every 30 s would
# take 6 % of a core.
IDLE_S = 120.0
BUSY_S = 2.0  # while a follower has changes pending or a scheduled copy is running
# The run after an action's end (the seed Jobs, the full run that fences the others at the new epoch and
# probes the copies) comes no sooner than this: the runs of replicas still failing over have been due
# since their write lease ended, at most a lease ago, so they go first. In a mass failover that work kept
# the API server and the workers busy while later replicas waited to fail over.
AFTER_ACTION_S = 12.0
RETRY_REFUSED_S = 10.0  # a refused publication outside an action is tried again after this long
BLOCKED_BACKOFF_MAX_S = 5.0  # a blocked action step is retried after 1, 2, 4, 5, 5... seconds
AUDIT_BUCKET_SEEN: set[str] = set()  # the stores whose audit bucket this process found or made
ROLE_FOR_MODE = {"Continuous": "SameCityDR", "Scheduled": "RemoteDR"}

Emit = Callable[[str, str, str], None]  # (type, reason, message) → an Event on the replica
Overlaps = Callable[[Kube, dict[str, Any], DRReplicaSpec], "dr_overlap.Conflict | None"]


class ReplicaRuntime:
    """The live state of one DRReplica inside the operator (followers, last status written)."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        emit: Emit,
        receiver: EventReceiver | None = None,
        job_image: str | None = None,
        centre_reader: CentreReader | None = None,
        follower_hub: FollowerHub | None = None,
        overlaps: Overlaps = dr_overlap.conflict,
        fence_every: Callable[[], float] = lambda: FENCE_CHECK_S,
    ) -> None:
        self.kube, self.namespace, self.name, self._emit = kube, namespace, name, emit
        self.overlaps, self.fence_every = overlaps, fence_every
        self.centre_reader: CentreReader = centre_reader or kube
        self._emitted: dict[str, str] = {}
        self.centre_tokens: dict[str, str | None] = {}
        self.followers = Followers(receiver, lambda c: self.centre_tokens.get(c), follower_hub)
        self.job_image = job_image or settings.current().image
        self.written = WrittenStatus(DRReplicaStatus)  # what this runtime last wrote (builders.written)
        self.written_at = 0.0  # when; 0 before the first write
        self.published: tuple[str, str, int] | None = None
        self.published_at = 0.0
        self.publication: dict[str, Any] | None = None  # the EndpointPublished condition, once known
        self.blocked_ticks = 0
        self.finished_unwritten = False  # an action finished (or a step waits) this run; not yet written
        self.status: dict[str, Any] = {}
        self.full_for: tuple[Any, str, Any] | None = None  # (generation, active, epoch) of the last full run
        self.full_reachable: frozenset[str] = frozenset()  # the centres not Down at the last full run
        self.resync_at = 0.0
        self.fence_at = 0.0
        self.bucket_problems: list[tuple[str, str]] = []  # found by the last full run
        self.waits_for: float | None = None  # seconds until something due (auto failover, a cron time)
        self.results_read_at: dict[str, float] = {}  # scheduled target → when its result was last read
        self.jobs_checked_at: dict[str, float] = {}  # scheduled target → when its newest Job was looked at
        self.jobs_stuck: dict[str, Any] = {}  # scheduled target → why its newest Job is stuck, as last seen
        self.reseed: OwedSeeds | None = None  # the seed Jobs owed since the last change of active centre
        self.after_action = 0.0  # (monotonic) the next run after an action's end is not due before this
        self.parked_notices = ParkedNotices()
        # (spec, centres, active centre) of the last run with a settled writer: whose lease to drop.
        self.lease_holder: tuple[DRReplicaSpec, dict[str, Centre], str] | None = None
        # The spec as last parsed, with what it was parsed from: parsed again only when that changed
        # (parsing at every run was a sixteenth of the replica workers' CPU in a mass failover).
        self.parsed: tuple[dict[str, Any], DRReplicaSpec] | None = None

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        """Post an Event, once per distinct message of a reason (a tick a second must not spam); with
        `key`, once per distinct key instead (for messages that carry changing figures)."""
        seen = key if key is not None else message
        if self._emitted.get(reason) == seen:
            return
        self._emitted[reason] = seen
        self._emit(kind, reason, message)

    # -- the tick ------------------------------------------------------------------------------------
    def tick(self, body: dict[str, Any]) -> float:
        """One reconcile; returns how long to wait before the next."""
        self.status = deepcopy(self.written.current(body))
        self.finished_unwritten = False
        generation = body["metadata"].get("generation")
        now = now_iso()
        try:
            spec = self._spec(body.get("spec") or {})
        except ValidationError as e:
            self.followers.stop_all()
            msg = "; ".join(f"spec.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            self._conditions(
                [replica(ReplicaType.READY, False, ReplicaReason.INVALID_SPEC, msg, generation)], now
            )
            self.emit("Warning", "InvalidSpec", msg)
            self._write(body, phase="Degraded", force=True)
            return 30.0

        conflict = self.overlaps(self.kube, body, spec)
        if conflict is not None:
            return self._stand_aside(body, conflict, generation, now)
        unusable = dr_specs.problems(spec, epoch_now())

        self.waits_for = None
        centres, problems = self._resolve(spec)
        active = str(self.status.get("activeCentre") or spec.active_centre)
        self.status.setdefault("activeCentre", active)
        self.status.setdefault("fencingEpoch", 1)
        full_key = (generation, active, self.status["fencingEpoch"])
        reachable = frozenset(n for n, c in centres.items() if c.health != "Down")
        full = self._full_run_due(full_key, reachable)
        if full:
            self.bucket_problems = []
            dr_buckets.ensure(spec, centres, self.bucket_problems)
        problems += self.bucket_problems

        try:
            action_running = self._actions(body, spec, centres, now)
            active = str(self.status["activeCentre"])
            wanted = flows(spec, active)
            if not action_running and self._auto_failover(body, spec, centres, wanted, now):
                # Carry the failover out now, not a tick later: every second here is a second of outage.
                self._actions(body, spec, centres, now)
                active = str(self.status["activeCentre"])
                wanted = flows(spec, active)
            if spec.paused or not self._writer_settled():
                self.followers.stop_all()
                if self._writer_settled():
                    dr_writers.keep_lease(self.namespace, self.name, spec, centres, active)
                    self._hold_lease(spec, centres, active)
            else:
                # Once promoted, the new topology is the right one even while the last steps finish.
                epoch = int(self.status["fencingEpoch"])
                fence_due = full or time.monotonic() >= self.fence_at
                # Between full runs, one policy read per fenced copy; the fences are written and the copies
                # probed again only when a statement went missing (someone re-applied the bucket policy).
                if full or (
                    fence_due
                    and not dr_writers.fences_in_place(
                        self.namespace, self.name, spec, centres, active, epoch
                    )
                ):
                    self._fence_others(spec, centres, active)
                if fence_due:
                    self.fence_at = time.monotonic() + self.fence_every() * random.uniform(0.8, 1.0)
                self._hold_lease(spec, centres, active)
                self.due_within(max(0.0, self.fence_at - time.monotonic()))
                # Nothing flows into a copy whose divergent writes are not yet kept (checked on every run).
                dr_divergent.run(self, body, spec, centres, now)
                following = dr_divergent.gate(self.status, (f for f in wanted if f.mode == "Continuous"))
                if dr_status.source_missing(problems):
                    following = []  # none from a bucket that does not exist; started once it does
                self.followers.match(following, centres)
                if not dr_status.source_missing(problems):
                    self._publish(body, spec, centres, active)
                else:
                    self._mark_stale(body, spec, problems)
            skipped = {p.target for p in unusable}
            scheduled = [f for f in wanted if f.mode == "Scheduled" and f.target not in skipped]
            writable = dr_divergent.gate(self.status, scheduled)
            self._pay_seeds(body, spec, scheduled, writable, centres)
            dr_reseed.condition(self, generation, now)
            held = ({f.target for f in scheduled} - {f.target for f in writable}) | {
                p.target for p in unusable
            }
            dr_scheduled.run(self, body, spec, writable, centres, now, held)
            self._target_status(spec, wanted, now)
            self._report_unusable(unusable, generation, now)
            self._summarise(spec, wanted, centres, problems, generation, now, unusable)
        except Exception:
            # A finished action is recorded even when the rest of the run failed: run again, it would be
            # finished a second time (a second Event and audit record).
            if self.finished_unwritten:
                self.finished_unwritten = False
                self._write(body, force=True)
            raise
        self._write(body, force=self.finished_unwritten)
        self.finished_unwritten = False
        if full:
            self.full_for, self.full_reachable = full_key, reachable
            self.resync_at = time.monotonic() + RESYNC_S * random.uniform(0.8, 1.0)
        return self._next_wait()

    def _hold_lease(self, spec: DRReplicaSpec, centres: dict[str, Centre], active: str) -> None:
        """Remember whose lease the replica holds; when a spec change took the active copy out of the
        replica, leave that copy open (`dr_writers.removed`) and say so. On this process's first run of
        the replica the old copy is the one status says was published last: a spec changed while no
        operator ran, which the new process never saw."""
        dr_writers.follow_credentials(self.namespace, self.name, spec, centres, active)
        before, self.lease_holder = self.lease_holder, (spec, centres, active)
        if before is not None and before[0] is spec:
            return  # the same spec as the last run (parsed once): nothing moved
        if before is None:
            published = dr_writers.published_copy(self.status.get("endpoint"))
            old = dr_writers.removed(published, spec, active) if published is not None else None
        else:
            old = dr_writers.removed(active_copy(before[0], before[2]), spec, active)
        if old is None:
            return
        owner = fencing.owner_id(self.namespace, self.name, old.name)
        try:
            centre = (before[1] if before is not None else centres).get(old.centre)
            centre = centre or resolve(self.centre_reader, old.centre)
            dr_writers.release(self.namespace, self.name, old, spec, active, centre)
        except (BotoCoreError, ClientError, OSError, fencing.PolicyContended, CentreUnavailable) as e:
            self.emit(
                "Warning",
                "OldActiveCopyNotReleased",
                f"{dr_writers.where(old)} is no longer a copy of this replica, but its write lease could not "
                f"be removed ({type(e).__name__}): it refuses writes once the lease ends, until the "
                f"statements {fencing.LEASE_SID_PREFIX}{owner} and {fencing.PROBE_SID_PREFIX}{owner} are "
                "removed from its bucket policy",
            )
            return
        self.emit(
            "Normal",
            "OldActiveCopyReleased",
            f"{dr_writers.where(old)} is no longer a copy of this replica: its write lease was "
            "removed, so it takes writes as before the replica (nothing is replicated from it now)",
        )

    def _spec(self, raw: dict[str, Any]) -> DRReplicaSpec:
        if self.parsed is None or self.parsed[0] != raw:
            self.parsed = (deepcopy(raw), DRReplicaSpec.model_validate(raw))
        return self.parsed[1]

    def _full_run_due(self, key: tuple[Any, str, Any], reachable: frozenset[str]) -> bool:
        """A new spec, writer or epoch; a centre that answers again (its fences may be gone); drift
        repair; a missing bucket. Not a centre going Down (nothing can be fenced there), nor every run of
        an action: a thousand replicas failing over at once re-checked every bucket and fence each second."""
        return (
            self.full_for != key
            or bool(reachable - self.full_reachable)
            or time.monotonic() >= self.resync_at
            or bool(self.bucket_problems)  # a missing bucket is looked for again at every run, not in 5 min
        )

    def _next_wait(self) -> float:
        """While an action runs: one second, backing off while a step is blocked (the refusal is already
        reported). Otherwise: soon while changes are pending, else at the next thing due or `IDLE_S`."""
        step = current((self.status.get("action") or {}).get("steps") or [])
        if self._action_in_progress():
            if step is None or not step.get("reason"):
                self.blocked_ticks = 0
                return 1.0
            self.blocked_ticks += 1
            backoff = float(min(BLOCKED_BACKOFF_MAX_S, 2 ** (self.blocked_ticks - 1)))
            # A step that knows when its cause goes away (a write lease running out) is retried then.
            return backoff if self.waits_for is None else min(backoff, max(0.1, self.waits_for))
        self.blocked_ticks = 0
        busy = any(
            (stats := self.followers.stats(target)) is not None and (stats.pending or stats.in_flight)
            for target in list(self.followers.running)
        )
        wait = BUSY_S if busy else IDLE_S
        if self.waits_for is not None:
            wait = min(wait, max(0.5, self.waits_for))
        return max(wait, self.after_action - time.monotonic())

    def due_within(self, seconds: float) -> None:
        """Something (an automatic failover, a scheduled run) is due in `seconds`: run by then."""
        self.waits_for = seconds if self.waits_for is None else min(self.waits_for, seconds)

    # -- observe -------------------------------------------------------------------------------------
    def _resolve(self, spec: DRReplicaSpec) -> tuple[dict[str, Centre], list[tuple[str, str]]]:
        centres: dict[str, Centre] = {}
        problems: list[tuple[str, str]] = []
        for copy in copies(spec):
            if copy.centre in centres:
                continue
            try:
                centre = resolve(self.centre_reader, copy.centre)
            except CentreUnavailable as e:
                problems.append((e.reason, str(e)))
                continue
            centres[copy.centre] = centre
            self.centre_tokens[copy.centre] = self._token(copy.centre)
        for target in spec.targets:
            found = centres.get(target.centre)
            want = ROLE_FOR_MODE[target.mode]
            if found and found.role != want:
                problems.append(
                    (
                        "RoleMismatch",
                        f"target {target.name} is {target.mode} but centre "
                        f"{found.name} is {found.role}; {target.mode} targets belong on a {want} centre",
                    )
                )
        return centres, problems

    def _token(self, centre: str) -> str | None:
        try:
            body = self.centre_reader.get("datacentres", centre)
            ref = body["spec"]["objectStore"]["credentialsSecretRef"]
            return self.centre_reader.secret_data(ref["namespace"], ref["name"]).get("eventToken") or None
        except (LookupError, KeyError):
            return None

    # -- actions -------------------------------------------------------------------------------------
    def _action_in_progress(self) -> bool:
        action = self.status.get("action") or {}
        return bool(action.get("startedAt") and not action.get("finishedAt") and not action.get("dryRun"))

    def _grant_lease(self, spec: DRReplicaSpec, centres: dict[str, Centre], copy: Copy) -> int | None:
        centre = centres.get(copy.centre)
        owner = fencing.owner_id(self.namespace, self.name, copy.name)
        replica = (self.namespace, self.name)
        return None if centre is None else dr_writers.grant_lease(owner, centre, copy, spec, replica)

    def _writer_settled(self) -> bool:
        """No action runs, or the running one has promoted its target: flows may run from the active."""
        if not self._action_in_progress():
            return True
        steps = self.status["action"].get("steps") or []
        return any(s["name"] == "Promoting" and s["state"] == "Succeeded" for s in steps)

    def _actions(
        self, body: dict[str, Any], spec: DRReplicaSpec, centres: dict[str, Centre], now: str
    ) -> bool:
        requested = spec.action
        handled = self.status.get("handledRequestId")
        if requested and requested.request_id != handled and not self._action_in_progress():
            self._start_action(body, spec, requested.model_dump(by_alias=True), "spec", now)
        if not self._action_in_progress():
            return False
        action = dict(self.status["action"])
        ctx = ActionContext(
            spec,
            action,
            centres,
            now,
            publish=lambda copy, epoch: self._publish_copy(body, centres, copy, epoch, force=True),
            reseed=lambda copy, epoch: self._reseed(spec, centres, copy, epoch),
            owner=lambda copy: fencing.owner_id(self.namespace, self.name, copy.name),
            before_writing_into=lambda copy: self._divergence_checked(body, spec, centres, copy, now),
            lease=lambda copy: self._grant_lease(spec, centres, copy),
            lease_end=lambda copy: LEASES.release(
                fencing.owner_id(self.namespace, self.name, copy.name), dr_writers.lease_length(spec)
            ),
            stored=(self.written.status.get("action") or {}).get("requestId") == action["requestId"],
        )
        finished = advance(ctx, lambda a: self._record_action(body, a), lambda a: self._note_wait(body, a))
        if ctx.retry_in is not None:
            self.due_within(ctx.retry_in)
        if finished:
            self._take_action(action)
            self._finish_action(body, spec, centres, now)
            return False
        step = current(self.status["action"]["steps"])
        # The write lease's wait is the expected part of an unplanned failover, bounded and ended by
        # itself: ActionProgressing says it, and the outcome Event says how long it took.
        if step is not None and step.get("reason") and step["reason"] != ReplicaReason.WRITE_LEASE_RUNNING:
            a = self.status["action"]
            self.emit(
                "Warning",
                "ActionBlocked",
                f"{a['type']} {a['requestId']} waits in {step['name']} ({step['reason']}): "
                f"{step.get('message', '')}; retrying",
                key=f"{a['requestId']}/{step['name']}/{step['reason']}",
            )
        return True

    def _reseed(self, spec: DRReplicaSpec, centres: dict[str, Centre], new: Copy, epoch: int) -> str:
        """Replication from the new active: its continuous followers, and a seed Job owed to each
        scheduled target (`dr_reseed`: made once the action's end is written)."""
        wanted = dr_divergent.gate(self.status, flows(spec, new.centre))
        continuous = [f for f in wanted if f.mode == "Continuous"]
        if not spec.paused:
            self.followers.match(continuous, centres)
        scheduled = [f for f in wanted if f.mode == "Scheduled"]
        cut = str((self.status.get("action") or {}).get("startedAt") or now_iso())
        seeds = dr_reseed.owe(self, spec, scheduled, epoch, cut)
        parts = [f"{f.dst.centre} continuously" for f in continuous] + seeds
        if spec.paused:
            parts.insert(0, "paused: replication starts when resumed")
        return f"replicating {new.centre} → " + ("; ".join(parts) or "no other centre")

    def _pay_seeds(
        self,
        body: dict[str, Any],
        spec: DRReplicaSpec,
        scheduled: list[Flow],
        writable: list[Flow],
        centres: dict[str, Centre],
    ) -> None:
        """The seed Jobs owed, made only once the action's end is written (this run writes it at its end:
        they are made by the next run)."""
        if self._action_in_progress():
            return
        if self.finished_unwritten:
            return  # made by the next run, AFTER_ACTION_S from now
        dr_reseed.pay(self, body, spec, scheduled, writable, centres)

    def _start_action(
        self, body: dict[str, Any], spec: DRReplicaSpec, requested: dict[str, Any], origin: str, now: str
    ) -> None:
        old = str(self.status["activeCentre"])
        new = str(requested["targetCentre"])
        others = [c.centre for c in copies(spec) if c.centre != new]
        lag = self._lag_to(spec, new)
        kind = str(requested["type"])
        action: dict[str, Any] = {
            "type": kind,
            "requestId": requested["requestId"],
            "requestedBy": requested.get("requestedBy") or origin,
            "fromCentre": old,
            "targetCentre": new,
            "dryRun": bool(requested.get("dryRun")),
            "startedAt": now,
            "startedEpoch": time.time(),
            "estimatedDataLossSeconds": lag if kind == "Failover" else 0.0,
            "plan": plan(kind, old, new, lag, others),
            "fencingEpoch": int(self.status["fencingEpoch"]) + 1,
        }
        self.status["handledRequestId"] = requested["requestId"]
        if old == new:
            action.update(
                finishedAt=now, steps=[], result="Rejected", plan=[f"{new} is already the active centre"]
            )
            self.emit(
                "Warning", "ActionRejected", f"{kind} {requested['requestId']}: {new} is already active"
            )
            self._archive(action)
            return
        if action["dryRun"]:
            action.update(finishedAt=now, steps=[], result="DryRun")
            self.emit("Normal", "DryRun", f"{kind} to {new} would: " + "; ".join(action["plan"]))
            self._archive(action)
            return
        action["steps"] = fresh_steps(kind)
        dr_divergent.expect(self.status, spec, action)
        self.followers.stop_all()  # the writer changes: no flow may run from the old active from here on
        self.blocked_ticks = 0
        self.status["action"] = action
        # A requested action is acknowledged at once; an automatic failover says everything in its one
        # outcome Event (or in ActionBlocked, should a step wait on something): a thousand replicas failing
        # over posted three or four Events each, on the API server the failovers wait on.
        if origin != "automatic":
            self.emit("Warning" if kind == "Failover" else "Normal", f"{kind}Started", _headline(action))
        # Not written here: advance() stores it before the new active opens, or with why a step waits.

    def _take_action(self, action: dict[str, Any]) -> None:
        """The action's progress into status (written by the caller)."""
        self.status["action"] = action
        promoted = any(s["name"] == "Promoting" and s["state"] == "Succeeded" for s in action["steps"])
        if promoted:
            self.status["activeCentre"] = action["targetCentre"]
            self.status["fencingEpoch"] = action["fencingEpoch"]

    def _record_action(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Written at once and strictly: advance asks only where the next effect must not get ahead of
        status (the promotion before the endpoint moves) or where a step waits and its reason must show."""
        self._take_action(action)
        self._note_progress(body)
        self.write_now(body)

    def _note_wait(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Why a step waits, written at the end of this run with the rest of its status (two writes per
        replica in the run that starts a failover waiting for the write lease, before)."""
        self._take_action(action)
        self._note_progress(body)
        self.finished_unwritten = True

    def _note_progress(self, body: dict[str, Any]) -> None:
        """ActionProgressing and EndpointPublished written together with the step they describe."""
        generation = body["metadata"].get("generation")
        conds = [
            c
            for c in (progress_condition(self.status.get("action") or {}, generation), self.publication)
            if c is not None
        ]
        if conds:
            self._conditions([{**c, "observedGeneration": generation} for c in conds], now_iso())

    def _finish_action(
        self, body: dict[str, Any], spec: DRReplicaSpec, centres: dict[str, Centre], now: str
    ) -> None:
        action = dict(self.status["action"])
        action["finishedAt"] = now
        action["durationSeconds"] = round(time.time() - float(action.get("startedEpoch") or time.time()), 3)
        action["result"] = "Succeeded"
        action["measuredDataLossSeconds"] = action.get("estimatedDataLossSeconds")
        self.status["action"] = action
        ready = next(
            (c["status"] == "True" for c in self.status.get("conditions", []) if c["type"] == "Ready"), False
        )
        self.status["phase"] = self._phase(spec, ready)
        self._audit(spec, centres, action, now)
        waited = next(
            (
                st
                for st in action["steps"]
                if st["name"] == "Fencing" and "write lease" in st.get("message", "")
            ),
            None,
        )
        # The copy left behind, when it is away: checked for divergent writes once it answers.
        unchecked = [
            r["centre"]
            for r in dr_divergent.pending(self.status)
            if r.get("epoch") == action["fencingEpoch"]
            and (centres.get(r["centre"]) is None or centres[r["centre"]].health == "Down")
        ]
        self.emit(
            "Warning" if action["type"] == "Failover" else "Normal",
            f"{action['type']}Completed",
            f"{_headline(action)}: completed in {action['durationSeconds']:.1f}s"
            + (f"; {waited['message']}" if waited else "")
            + "".join(
                f"; {c} is checked for divergent writes once it answers, and nothing is copied into it "
                "until then"
                for c in unchecked
            ),
        )
        self._archive(action, keep_current=True)
        self._note_progress(body)
        # Written with the rest of this run's status at its end, in one write (two writes per replica at
        # the end of a mass failover kept the workers waiting on the API server).
        self.finished_unwritten = True
        self.after_action = time.monotonic() + AFTER_ACTION_S

    def _archive(self, action: dict[str, Any], keep_current: bool = False) -> None:
        history = [action, *(self.status.get("history") or [])][:HISTORY]
        self.status["history"] = history
        if not keep_current:
            self.status["action"] = action

    def _audit(
        self, spec: DRReplicaSpec, centres: dict[str, Centre], action: dict[str, Any], now: str
    ) -> None:
        """Append one JSON record to the audit bucket of the remote centre (or another reachable one)."""
        key, payload = build.audit_record(self.name, self.namespace, action, int(action["fencingEpoch"]), now)
        ordered = sorted(centres.values(), key=lambda c: (c.role != "RemoteDR", c.health != "Up"))
        for centre in ordered:
            # Through the lean client (as fences and leases): a thousand replicas failing over at once
            # each write a record, and through boto3 it was a quarter of the replica workers' CPU.
            client = s3_wire.shared_wire_timed(centre.endpoint, 2.0, 5.0)
            try:
                with s3_wire.botocore_errors(centre.endpoint.url):
                    if centre.endpoint.url not in AUDIT_BUCKET_SEEN:  # one HEAD per store, not per record
                        try:
                            s3_wire.head_bucket(client, AUDIT_BUCKET)
                        except ClientError:
                            s3_wire.create_bucket(client, AUDIT_BUCKET, centre.endpoint.region)
                        AUDIT_BUCKET_SEEN.add(centre.endpoint.url)
                    client.put_object(
                        Bucket=AUDIT_BUCKET,
                        Key=key,
                        Body=payload,
                        ContentType="application/json",
                        IfNoneMatch="*",
                    )
                action["auditRecord"] = f"{centre.name}/{AUDIT_BUCKET}/{key}"
                return
            except (BotoCoreError, ClientError) as e:
                if isinstance(e, ClientError) and e.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed",
                    "412",
                ):
                    # Stored by an earlier attempt to record this action whose end was not written (an
                    # operator killed, or its status write refused): the record is there, once.
                    action["auditRecord"] = f"{centre.name}/{AUDIT_BUCKET}/{key}"
                    return
                AUDIT_BUCKET_SEEN.discard(centre.endpoint.url)  # looked for again next time
                log.warning("audit record not written to %s: %s", centre.name, e)
        self.emit(
            "Warning", "AuditNotWritten", "no centre could store the audit record; it is in status history"
        )

    def _lag_to(self, spec: DRReplicaSpec, centre: str) -> float | None:
        centre_of = {c.name: c.centre for c in copies(spec)}  # the old source, once a target, too
        for target in self.status.get("targets") or []:
            if centre_of.get(str(target.get("name"))) == centre and target.get("lagSeconds") is not None:
                return float(target["lagSeconds"])
        return None

    def _auto_failover(
        self,
        body: dict[str, Any],
        spec: DRReplicaSpec,
        centres: dict[str, Centre],
        wanted: list[Flow],
        now: str,
    ) -> bool:
        """Start a failover when the policy allows it; True when one was started."""
        if spec.failover.policy != "Automatic" or spec.paused:
            return False
        active = str(self.status["activeCentre"])
        down_for = self._down_for(active)
        needed = parse_duration(spec.failover.down_for).total_seconds()
        if down_for is None:
            return False
        if down_for < needed:
            self.due_within(needed - down_for)
            return False
        candidates = []
        for flow in wanted:
            centre = centres.get(flow.dst.centre)
            lag = self._lag_to(spec, flow.dst.centre)
            limit = (
                parse_duration(spec.failover.max_data_loss).total_seconds()
                if spec.failover.max_data_loss
                else flow.rpo_s
            )
            if flow.mode != "Continuous" or centre is None or centre.health not in ("Up", "Degraded"):
                continue
            if lag is None or limit is None or lag > limit:
                continue
            candidates.append((lag, flow.dst.centre))
        if not candidates:
            self.emit(
                "Warning",
                "FailoverBlocked",
                f"{active} is Down but no Continuous target is Up and within its RPO; waiting",
            )
            return False
        _, target = min(candidates)
        epoch = int(self.status["fencingEpoch"]) + 1
        self._start_action(
            body,
            spec,
            {
                "type": "Failover",
                "targetCentre": target,
                "requestId": f"auto-{epoch}",
                "requestedBy": "datacloud-operator (automatic)",
            },
            "automatic",
            now,
        )
        self.status["handledRequestId"] = spec.action.request_id if spec.action else None
        return True

    def _down_for(self, centre: str) -> float | None:
        try:
            status = self.centre_reader.get("datacentres", centre).get("status") or {}
        except LookupError:
            return None
        if status.get("health") != "Down" or not status.get("lastTransitionTime"):
            return None
        since = datetime.fromisoformat(str(status["lastTransitionTime"]).replace("Z", "+00:00"))
        return seconds_between(since, datetime.now(since.tzinfo))

    def _divergence_checked(
        self, body: dict[str, Any], spec: DRReplicaSpec, centres: dict[str, Centre], copy: Copy, now: str
    ) -> None:
        """Before a final sync writes into `copy`: its divergent writes preserved, or StepBlocked."""
        dr_divergent.run(self, body, spec, centres, now)
        if copy.name in dr_divergent.blocked_copies(self.status):
            raise StepBlocked(
                "DivergenceCheckPending",
                f"{copy.centre} must be compared with the active copy (and what diverged kept) first",
            )

    # -- spec problems only the operator can see ----------------------------------------------------
    def _stand_aside(
        self, body: dict[str, Any], conflict: dr_overlap.Conflict, generation: int | None, now: str
    ) -> float:
        """Another replica owns these keys (or this one's copies overlap): do nothing, say why."""
        self.followers.stop_all()
        overlap = reason_of(ReplicaReason, conflict.reason, ReplicaReason.OVERLAPS_REPLICA)
        self._conditions(
            [
                replica(ReplicaType.LOCATIONS_EXCLUSIVE, False, overlap, conflict.message, generation),
                replica(ReplicaType.READY, False, overlap, conflict.message, generation),
            ],
            now,
        )
        self.emit("Warning", conflict.reason, conflict.message)
        self.status["observedGeneration"] = generation
        dr_metrics.observe_replica(
            self.namespace, self.name, {**self.status, "phase": "Overlapping"}, {}, False, {}
        )
        self._write(body, phase="Overlapping")
        return 5.0

    def _report_unusable(
        self, unusable: list[dr_specs.TargetProblem], generation: int | None, now: str
    ) -> None:
        """Targets left out because their spec cannot be carried out: condition, Event, phase (Ready is
        False for them too, see dr_status.summary)."""
        conds = [
            replica(
                ReplicaType.LOCATIONS_EXCLUSIVE,
                True,
                ReplicaReason.NO_OVERLAP,
                "no other replica shares these keys",
                generation,
            )
        ]
        if unusable:
            message = "; ".join(p.message for p in unusable)
            why = reason_of(ReplicaReason, unusable[0].reason, ReplicaReason.SCHEDULE_INVALID)
            conds.append(replica(ReplicaType.SPEC_USABLE, False, why, message, generation))
            for p in unusable:
                self.emit("Warning", p.reason, f"target {p.target} is not synced: {p.message}")
        else:
            conds.append(
                replica(
                    ReplicaType.SPEC_USABLE,
                    True,
                    ReplicaReason.USABLE,
                    "every target can be carried out",
                    generation,
                )
            )
        self._conditions(conds, now)

    # -- apply ---------------------------------------------------------------------------------------
    def _fence_others(self, spec: DRReplicaSpec, centres: dict[str, Centre], active: str) -> None:
        """Every copy but the active one fenced at the current epoch; writability probed per copy."""
        epoch = int(self.status["fencingEpoch"])
        measured = dr_writers.fence_and_measure(self.namespace, self.name, spec, centres, active, epoch)
        self.status.update(measured.status())

    def _publish(
        self, body: dict[str, Any], spec: DRReplicaSpec, centres: dict[str, Centre], active: str
    ) -> None:
        refused_lately = time.monotonic() - self.published_at < RETRY_REFUSED_S
        if (self.publication or {}).get("status") == "False" and refused_lately:
            return
        # A refusal is reported by the EndpointPublished condition and an Event, and tried again later.
        with contextlib.suppress(StepBlocked):
            self._publish_copy(body, centres, active_copy(spec, active), int(self.status["fencingEpoch"]))

    def _publish_copy(
        self, body: dict[str, Any], centres: dict[str, Centre], copy: Copy, epoch: int, force: bool = False
    ) -> None:
        """Apply the endpoint ConfigMap and Service; StepBlocked when the API server refuses them (an
        admission policy, a quota), which the EndpointPublished condition and an Event then explain."""
        centre = centres.get(copy.centre)
        if centre is None:
            if force:  # an action must not record a publication that did not happen
                raise StepBlocked("CentreUnresolved", f"centre {copy.centre} cannot be resolved")
            return  # ReferencesValid says why
        key = (copy.centre, copy.bucket, epoch)
        if not force and self.published == key and time.monotonic() - self.published_at < REPUBLISH_EVERY_S:
            return
        name = build.endpoint_name(self.name)
        try:
            self.kube.apply(
                build.endpoint_configmap(
                    body, copy.centre, centre.endpoint.url, copy.bucket, copy.prefix, epoch
                )
            )
            self.kube.apply(build.endpoint_service(body, centre.endpoint.url))
        except ApiException as e:
            blocked = refused("Publication", f"the endpoint ConfigMap/Service {name}", e)
            self.published_at = time.monotonic()
            refusal = reason_of(ReplicaReason, blocked.reason, ReplicaReason.PUBLICATION_REFUSED)
            self.publication = replica(ReplicaType.ENDPOINT_PUBLISHED, False, refusal, str(blocked))
            self.emit("Warning", blocked.reason, f"{copy.centre}/{copy.bucket} not published: {blocked}")
            raise blocked from None
        self.published, self.published_at = key, time.monotonic()
        message = f"ConfigMap and Service {name} name {copy.centre}/{copy.bucket} (epoch {epoch})"
        self.publication = replica(ReplicaType.ENDPOINT_PUBLISHED, True, ReplicaReason.PUBLISHED, message)
        self.status["endpoint"] = {
            "centre": copy.centre,
            "url": centre.endpoint.url,
            "bucket": copy.bucket,
            "prefix": copy.prefix,
            "copyName": copy.name,
            "configMap": build.endpoint_name(self.name),
            "service": build.endpoint_name(self.name),
        }

    def _mark_stale(self, body: dict[str, Any], spec: DRReplicaSpec, problems: list[tuple[str, str]]) -> None:
        """The source bucket is gone after its endpoint was published. The ConfigMap and Service are kept
        (applications holding them fail at the store, not at a missing ConfigMap, and the ConfigMap still
        says where the data was) and the ConfigMap is marked stale, as status.endpoint is; EndpointPublished
        says so (dr_status.summary). Publishing afresh, once the bucket is back, removes the mark."""
        endpoint = self.status.get("endpoint") or {}
        why = next(message for reason, message in problems if reason == dr_status.SOURCE_MISSING)
        names_source = (endpoint.get("centre"), endpoint.get("bucket")) == (
            spec.source.centre,
            spec.source.bucket,
        )
        if not names_source or endpoint.get("stale") == why:
            return
        epoch = int(self.status["fencingEpoch"])
        name = build.endpoint_name(self.name)
        try:
            self.kube.apply(
                build.endpoint_configmap(
                    body,
                    spec.source.centre,
                    endpoint["url"],
                    spec.source.bucket,
                    spec.source.prefix,
                    epoch,
                    why,
                )
            )
        except ApiException as e:
            blocked = refused("Publication", f"the stale mark on ConfigMap {name}", e)
            self.emit("Warning", blocked.reason, str(blocked))
            return
        self.status["endpoint"] = {**endpoint, "stale": why}
        self.published = None  # published afresh (without the mark) as soon as the bucket is back
        self.emit("Warning", "EndpointStale", f"ConfigMap {name} kept and marked stale: {why}")

    def _target_status(self, spec: DRReplicaSpec, wanted: list[Flow], now: str) -> None:
        before = self.status.get("targets") or []
        self.status["targets"] = dr_status.target_entries(before, wanted, self.followers.stats)
        for message in self.parked_notices.news(before, self.status["targets"]):
            self._emit("Warning", "KeysParked", message)

    def _summarise(
        self,
        spec: DRReplicaSpec,
        wanted: list[Flow],
        centres: dict[str, Centre],
        problems: list[tuple[str, str]],
        generation: int | None,
        now: str,
        unusable: list[dr_specs.TargetProblem] | None = None,
    ) -> None:
        conds, ready = dr_status.summary(
            self.status,
            spec,
            wanted,
            problems,
            self.publication,
            generation,
            [(p.reason, p.message) for p in unusable or []],
        )
        self._conditions(conds, now)
        self.status["phase"] = self._phase(spec, ready)
        if unusable and self.status["phase"] in ("Protected", "Degraded", "Seeding"):
            self.status["phase"] = "Invalid"
        self.status["observedGeneration"] = generation
        rpos = {f.target: f.rpo_s for f in wanted}
        dr_metrics.observe_replica(self.namespace, self.name, self.status, rpos, spec.paused, {})

    def _phase(self, spec: DRReplicaSpec, ready: bool) -> str:
        return dr_status.phase(self.status, spec, ready, self._action_in_progress())

    def _conditions(self, conds: list[dict[str, Any]], now: str) -> None:
        self.status["conditions"] = merge_conditions(self.status.get("conditions"), conds, now)

    def _write(
        self, body: dict[str, Any], phase: str | None = None, force: bool = False, strict: bool = False
    ) -> None:
        """Write the status if worth it; a status DRReplicaStatus refuses is reported and not written (and
        raised as well when `strict`: the caller's next step must not run unrecorded)."""
        if phase:
            self.status["phase"] = phase
        if not force and not self._worth_writing():
            return
        # Diff against what is stored, so nested keys that went away are nulled.
        try:
            patch = self.written.checked(merge_patch(self.written.status, self.status))
        except InvalidStatus as e:
            status_refused(log, self.emit, f"replica {self.namespace}/{self.name}", e)
            if strict:
                raise
            return
        out = self.kube.patch_status(PLURAL, self.name, patch, self.namespace)
        self.written.wrote(patch, resource_version(out or {}))
        self.written_at = time.monotonic()

    def write_now(self, body: dict[str, Any]) -> None:
        self._write(body, force=True, strict=True)

    def _worth_writing(self) -> bool:
        """Whether status differs from what was written enough to write it now (see DRIFTING_EVERY_S)."""
        if not self.written_at:
            return True
        # Both as the API server stores them (a null is no key), so a None set this run is no change.
        written, status = self.written.status, apply_merge_patch({}, self.status)
        figures = ("targets", "estimatedDataLossSeconds")
        stable = {k: v for k, v in status.items() if k not in figures}
        written_stable = {k: v for k, v in written.items() if k not in figures}
        if stable != written_stable:
            return True
        age = time.monotonic() - self.written_at
        targets, before = status.get("targets") or [], written.get("targets") or []
        loss, loss_before = status.get("estimatedDataLossSeconds"), written.get("estimatedDataLossSeconds")
        if targets == before and loss == loss_before:
            return False
        if _without_drifting(targets) != _without_drifting(before) or loss != loss_before:
            if age < STATUS_EVERY_S:  # written at the next run due then, not the idle timer's
                self.due_within(STATUS_EVERY_S - age)
            return age >= STATUS_EVERY_S
        return age >= DRIFTING_EVERY_S

    def close(self, deleted: bool) -> None:
        self.followers.stop_all()
        if deleted:
            dr_metrics.forget_replica(self.namespace, self.name)
            if self.lease_holder is not None:
                # The write lease must not outlive the replica: the copy would refuse writes for good.
                try:
                    dr_writers.drop_lease(self.namespace, self.name, *self.lease_holder)
                except (BotoCoreError, ClientError, fencing.PolicyContended) as e:
                    log.warning("write lease of %s/%s not removed: %s", self.namespace, self.name, e)


def _headline(action: dict[str, Any]) -> str:
    loss = action.get("estimatedDataLossSeconds")
    return (
        f"{action['type']} {action['fromCentre']} → {action['targetCentre']} ({action['requestId']}, "
        f"{action.get('requestedBy')}), estimated data loss "
        + ("unknown (no lag measured)" if loss is None else f"{float(loss):.1f}s")
    )


def _without_drifting(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k not in DRIFTING_TARGET_KEYS} for t in targets]
