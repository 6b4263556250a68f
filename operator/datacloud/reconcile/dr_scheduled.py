"""Scheduled (full) DR syncs: Jobs created at cron times inside the transfer window, or at once when the
run-now annotation gets a new value (`datacloud dr sync-now`); results read back.

A Job runs `datacloud sync` (Indexed, one pod per shard, when `shards` > 1); each shard of each run writes
its JSON summary into the ConfigMap `<replica>-<target>-sync-result` under a key of its own
(`summary-<run>-<shard>-<of>`), which is how the runs' figures reach status. Runs may overlap (a slow run
still copying when the next cron time comes): each complete run is folded in once and its keys removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from .. import RUN_NOW, settings
from ..adapters.kube import ApiError
from ..api.conditions import ReplicaReason, ReplicaType, replica
from ..api.drreplica import DRReplicaSpec
from ..builders import dr as build
from ..builders.conditions import merge_conditions
from ..builders.job_health import Stuck, retried, why_stuck
from ..builders.sync_account import SYNC_ACCOUNT
from ..failover.topology import Flow
from ..metrics import dr as dr_metrics
from . import dr_jobs
from .centres import Centre
from .dr_actions import api_refusal
from .dr_context import ReplicaContext
from .dr_flows import due_runs, epoch_now, in_window, next_run, seconds_between
from .dr_sync_account import ensure as ensure_sync_account

SYNC_SERVICE_ACCOUNT = SYNC_ACCOUNT
RESULT_POLL_S = 10.0  # a run's result is looked for this often until it is in
# A target's newest Job (and its pods) is looked at this often, not on every run: two lists per run of
# every replica kept the workers waiting on the API server while a thousand replicas failed over.
JOB_CHECK_S = 30.0
RESULT_RECHECK_S = 600.0  # and otherwise this often (a seed Job's result, say)


def result_configmap(replica: str, target: str) -> str:
    return f"{replica}-{target}-sync-result"[:253]


def sync_arguments(namespace: str, replica: str, flow: Flow, run_id: str) -> list[str]:
    """The `datacloud sync` arguments of one run of a scheduled flow (centres resolved by name in the
    cluster; the run named in its report, so an overlapping run does not overwrite it)."""
    spec = flow.spec
    args = [
        f"centre:{flow.src.centre}/{flow.src.bucket}/{flow.src.prefix}".rstrip("/"),
        f"centre:{flow.dst.centre}/{flow.dst.bucket}/{flow.dst.prefix}".rstrip("/"),
        "--mode",
        "full",
        "--delete",
        (spec.delete_policy if spec else "Mirror").lower(),
        "--report-configmap",
        f"{namespace}/{result_configmap(replica, flow.target)}",
        "--report-run",
        run_id,
    ]
    if spec:
        method = {"None": "none", "SizeETag": "size-etag", "SHA256": "sha256"}[spec.verification.method]
        args += ["--verify", method, "--sample", str(spec.verification.sample_percent)]
        if spec.bandwidth_limit:
            args += ["--bandwidth", spec.bandwidth_limit]
    return args


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def run(
    rt: ReplicaContext,
    body: dict[str, Any],
    spec: DRReplicaSpec,
    scheduled: list[Flow],
    centres: dict[str, Centre],
    now_text: str,
    held: Collection[str] = (),
) -> None:
    """`scheduled`: the Scheduled flows that may run now; `held`: the Scheduled targets held back (an
    unusable spec, divergent writes not yet kept), which their own conditions explain."""
    now = epoch_now()
    previous = {t["name"]: dict(t) for t in rt.status.get("targets") or []}
    _answer_run_now(rt, body, spec, scheduled, centres, previous, held, now)
    created = _parse_time(body["metadata"].get("creationTimestamp")) or now
    stuck: dict[str, Stuck | None] = {}  # target → why its newest Job is stuck; absent: not looked at
    for flow in scheduled:
        entry = previous.get(flow.target, {"name": flow.target})
        assert flow.schedule is not None  # the API refuses a Scheduled target without one
        last = _parse_time(entry.get("lastScheduledTime")) or created
        due = due_runs(flow.schedule, last, now)
        window = flow.spec.window if flow.spec else None
        if due and not spec.paused:
            latest = due[-1]
            if in_window(window, now) and flow.src.centre in centres and flow.dst.centre in centres:
                # A run the API server refuses (a quota, an admission policy) stays due: tried next tick.
                if _trylaunch(rt, body, flow, entry, _run_id(latest), f"for {latest.isoformat()}"):
                    entry["missedIntervals"] = len(due) - 1
                    entry["lastScheduledTime"] = latest.isoformat()
            else:
                entry["missedIntervals"] = int(entry.get("missedIntervals") or 0) + len(due)
                rt.emit(
                    "Warning",
                    "SyncMissed",
                    f"scheduled sync of {flow.target} missed: "
                    + (
                        "outside its transfer window"
                        if not in_window(window, now)
                        else "a centre is unavailable"
                    ),
                )
                entry["lastScheduledTime"] = latest.isoformat()
        upcoming = next_run(flow.schedule, now)
        entry["nextSyncTime"] = upcoming.isoformat()
        rt.due_within(seconds_between(now, upcoming))
        _read_result(rt, entry, flow, now)
        if time.monotonic() - rt.jobs_checked_at.get(flow.target, -JOB_CHECK_S) >= JOB_CHECK_S:
            rt.jobs_checked_at[flow.target] = time.monotonic()
            looked, why = _check_latest_job(rt, entry, flow)
            if looked:
                rt.jobs_stuck[flow.target] = why
        if flow.target in rt.jobs_stuck:
            stuck[flow.target] = rt.jobs_stuck[flow.target]
        previous[flow.target] = entry
    rt.status["targets"] = list(previous.values())
    _jobs_condition(rt, scheduled, stuck, body["metadata"].get("generation"), now_text)


def _jobs_condition(
    rt: ReplicaContext,
    scheduled: list[Flow],
    stuck: dict[str, Stuck | None],
    generation: int | None,
    now: str,
) -> None:
    """JobsHealthy: False naming every stuck Job (reason: the first one's), True when every Scheduled
    target's newest Job was looked at and none is stuck; left as it was when a lookup failed this time,
    absent without Scheduled targets."""
    conditions = [c for c in rt.status.get("conditions") or [] if c.get("type") != ReplicaType.JOBS_HEALTHY]
    if not scheduled:
        if len(conditions) != len(rt.status.get("conditions") or []):
            rt.status["conditions"] = conditions
        return
    named = [(t, why) for t, why in sorted(stuck.items()) if why is not None]
    if named:
        cond = replica(
            ReplicaType.JOBS_HEALTHY,
            False,
            ReplicaReason(named[0][1].reason),
            "; ".join(why.message for _, why in named),
            generation,
        )
    elif len(stuck) == len(scheduled):
        cond = replica(
            ReplicaType.JOBS_HEALTHY, True, ReplicaReason.NO_JOB_STUCK, "no sync Job is stuck", generation
        )
    else:
        return
    rt.status["conditions"] = merge_conditions(rt.status.get("conditions"), [cond], now)


def _answer_run_now(
    rt: ReplicaContext,
    body: dict[str, Any],
    spec: DRReplicaSpec,
    scheduled: list[Flow],
    centres: dict[str, Centre],
    entries: dict[str, dict[str, Any]],
    held: Collection[str],
    now: datetime,
) -> None:
    """A new value of the run-now annotation: every Scheduled target starts a full sync now, whatever its
    schedule and transfer window (the window keeps nightly copies off the daytime links; an SRE asking for
    a copy, before maintenance say, wants it now). Each target records the request it started a run for
    (`lastRunRequest`), so one request starts one run per target even while another target's run is
    refused and retried on later ticks. The replica answers (`status.lastRunRequest`) once every target
    started its run or an Event said why it cannot; a run the API server refuses keeps the request owed."""
    request = run_request(body)
    if not request or request == rt.status.get("lastRunRequest"):
        return
    runnable = {f.target: f for f in scheduled}
    names = sorted({*runnable, *held})
    if spec.paused or not names:
        why = "the replica is paused" if spec.paused else "it has no Scheduled target"
        rt.emit("Warning", "SyncNotStarted", f"run-now request {request}: nothing started: {why}")
        rt.status["lastRunRequest"] = request
        return
    owed, not_started = False, []
    for name in names:
        flow = runnable.get(name)
        entry = entries.setdefault(name, {"name": name})
        if entry.get("lastRunRequest") == request:
            continue
        if flow is None:
            not_started.append(f"{name} (held back: see the replica's conditions)")
        elif flow.src.centre not in centres or flow.dst.centre not in centres:
            not_started.append(f"{name} (a centre is unavailable)")
        elif (started := _started_for(rt, flow.target, request, entry)) is not None:
            entry.update(lastRunRequest=request, lastScheduledTime=started)
        elif _trylaunch(
            rt, body, flow, entry, request_run_id(now, request), f"on request {request}", request
        ):
            # From here the run is awaited like a cron run (its result read every RESULT_POLL_S), and the
            # schedule's next time counts from now.
            entry.update(lastRunRequest=request, lastScheduledTime=now.isoformat())
        else:
            owed = True
    if not_started:
        rt.emit(
            "Warning", "SyncNotStarted", f"run-now request {request}: not started: {', '.join(not_started)}"
        )
    if not owed:
        rt.status["lastRunRequest"] = request


# The annotation may hold up to 256 KiB; it is copied into status once per Scheduled target, so a long
# value would multiply towards the object's size limit and a refused status write. Beyond this length the
# status records its digest instead.
REQUEST_MAX = 128


def run_request(body: dict[str, Any]) -> str:
    """The run-now request as status records it: the annotation's value, or `sha256:<hex>` of a long one
    ("" when there is none)."""
    value = str((body["metadata"].get("annotations") or {}).get(RUN_NOW) or "")
    if len(value) <= REQUEST_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _started_for(rt: ReplicaContext, target: str, request: str, entry: dict[str, Any]) -> str | None:
    """When a Job was started for `request` since the target's last recorded start, though status does not
    say so (the operator was stopped between creating the Job and writing status): its creation time. A
    Job of an older use of the same value is older than that start and does not count. A failed listing
    counts as none: a second run costs a copy of what differs, a run never started costs the copy."""
    try:
        found = dr_jobs.jobs(rt.kube, rt.namespace, rt.name, target)
    except (ApiException, ApiError):
        return None
    since = _parse_time(entry.get("lastScheduledTime"))
    for job in found:
        meta = job.get("metadata") or {}
        created = _parse_time(meta.get("creationTimestamp"))
        if (meta.get("annotations") or {}).get(build.RUN_REQUEST) != request or created is None:
            continue
        if since is None or created >= since.replace(microsecond=0):
            return created.isoformat()
    return None


def _trylaunch(
    rt: ReplicaContext,
    body: dict[str, Any],
    flow: Flow,
    entry: dict[str, Any],
    run_id: str,
    why: str,
    request: str | None = None,
) -> bool:
    try:
        launch(rt, body, flow, run_id, request)
    except ApiException as e:
        entry["message"] = f"sync Job {NOT_CREATED}: {api_refusal(e)}"
        rt.emit("Warning", "SyncRefused", f"full sync of {flow.target}: {entry['message']}")
        return False
    if NOT_CREATED in str(entry.get("message") or ""):
        entry.pop("message")
    # A stuck Job's message stays until the newest Job is looked at, which clears it and JobsHealthy in one
    # status write (cleared here, the condition would name a stuck Job the message no longer does); that
    # look comes now rather than up to JOB_CHECK_S later.
    rt.jobs_checked_at.pop(flow.target, None)
    rt.emit("Normal", "SyncScheduled", f"full sync of {flow.target} started {why}")
    return True


STUCK_PREFIX = "sync Job "
NOT_CREATED = "not created"  # in the message of a run the API server refused: cleared by the next launch


def _check_latest_job(rt: ReplicaContext, entry: dict[str, Any], flow: Flow) -> tuple[bool, Stuck | None]:
    """The target's newest sync Job, when it cannot progress (a missing image, no node for its pods, a
    crash loop, its backoff spent), is named with the reason in the target's message and a Warning Event
    instead of a silent wait; the message goes once a later Job runs. Returns whether the Job could be
    looked at, and why it is stuck."""
    try:
        # From the namespace's shared listing (dr_jobs): a Job a few seconds old that it lacks is looked at
        # next time.
        jobs = dr_jobs.jobs(rt.kube, rt.namespace, rt.name, flow.target)
        latest = max(jobs, key=lambda j: str(j["metadata"].get("creationTimestamp") or ""), default=None)
        stuck = retries = None
        if latest is not None and not _succeeded(latest):
            pods = dr_jobs.pods(rt.kube, rt.namespace, latest["metadata"]["name"])
            stuck, retries = why_stuck(latest, pods, datetime.now(UTC)), retried(latest, pods)
    except (ApiException, ApiError):
        return False, None  # looked at again next tick; the Job's outcome still reaches status by its report
    if retries is not None:
        rt.emit("Warning", "SyncShardRetried", retries)  # once per new failure: the counts are in it
    if stuck is not None:
        entry["message"] = stuck.message
        rt.emit("Warning", stuck.reason, stuck.message)
    elif str(entry.get("message") or "").startswith(STUCK_PREFIX) and NOT_CREATED not in entry["message"]:
        entry.pop("message", None)
    return True, stuck


def _succeeded(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


def _finished(job: dict[str, Any]) -> bool:
    status = job.get("status") or {}
    done = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    return bool(status.get("completionTime") or done & {"Complete", "Failed"})


def cancel_from_old_active(rt: ReplicaContext, keep_run: str, cut: str) -> list[str]:
    """Delete (with their pods) this replica's unfinished sync Jobs made no later than `cut` (the action's
    start), other than run `keep_run`: they were started from the centre that was active before, and one
    finishing after the seed would leave older data on its target. Jobs made since (from the new active)
    are kept, so cancelling again after a restart is harmless. A refusal is reported and holds nothing up
    (those Jobs then run out)."""
    before = _parse_time(cut)
    try:
        # From the namespace's shared listing (dr_jobs), taken after the cut's second ended: every Job made
        # until then is in it. Each replica of a mass failover listing for itself read every Job, O(n²).
        since = before.timestamp() + 1.0 if before is not None else time.time()
        jobs = dr_jobs.jobs(rt.kube, rt.namespace, rt.name, since=since)
    except (ApiException, ApiError) as e:
        why = api_refusal(e) if isinstance(e, ApiException) else str(e)
        rt.emit("Warning", "SyncNotCancelled", f"sync Jobs from the old active not listed: {why}")
        return []
    cancelled = []
    for job in jobs:
        meta = job["metadata"]
        made = _parse_time(meta.get("creationTimestamp"))
        late = before is not None and made is not None and made > before
        if meta["name"].endswith(f"-{keep_run}") or meta.get("deletionTimestamp") or _finished(job) or late:
            continue
        try:
            removed = rt.kube.remove("batch/v1", "Job", meta["name"], rt.namespace, propagation="Background")
        except ApiException as e:
            rt.emit("Warning", "SyncNotCancelled", f"sync Job {meta['name']} not cancelled: {api_refusal(e)}")
            continue
        if removed:  # not when it went by itself since the listing
            cancelled.append(meta["name"])
    if cancelled:
        rt.emit("Normal", "SyncCancelled", f"cancelled {', '.join(cancelled)}: started from the old active")
    return cancelled


def request_run_id(now: datetime, request: str) -> str:
    """A requested run's id: its start to the second and a digest of the request, so that two requests
    within one second are two runs (with the time alone the second Job would be the first one again)."""
    return (
        "r"
        + _run_id(now, seconds=True)
        + hashlib.sha256(request.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    )


def _run_id(when: datetime, seconds: bool = False) -> str:
    return re.sub(r"[^0-9a-z]", "", when.strftime("%Y%m%dt%H%M%S" if seconds else "%Y%m%dt%H%M").lower())


def launch(
    rt: ReplicaContext, body: dict[str, Any], flow: Flow, run_id: str, request: str | None = None
) -> str:
    shards = flow.spec.shards if flow.spec else 1
    # The Job's pods run as `datacloud-sync`: without the account they are never created.
    ensure_sync_account(rt.kube, rt.namespace, settings.current().namespace)
    job = build.sync_job(
        body,
        flow.target,
        run_id,
        rt.job_image,
        sync_arguments(rt.namespace, rt.name, flow, run_id),
        shards,
        SYNC_SERVICE_ACCOUNT,
        request,
    )
    rt.kube.apply(job)
    return str(job["metadata"]["name"])


SUMMARY_KEY = re.compile(r"^summary-(?:(?P<run>.+)-)?(?P<index>\d+)-(?P<of>\d+)$")


def completed_runs(data: dict[str, str], shards: int, since: str | None) -> list[dict[str, Any]]:
    """Every run in the ConfigMap whose N shards have all reported (`summary-<run>-<i>-<N>`), each added
    up, the earliest finished first; its `keys` are the ConfigMap keys it was read from. Parts written
    without a run (`summary-<i>-<N>`, by Jobs from before runs were named) count as one run started at or
    after the latest cron time `since`."""
    by_run: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in data.items():
        match = SUMMARY_KEY.match(key)
        if not match or int(match["of"]) != shards:
            continue
        part = json.loads(value)
        if match["run"] is None and since and not _later_or_equal(str(part.get("startedAt") or ""), since):
            continue
        by_run.setdefault(match["run"] or "", {})[key] = part
    runs = [_add_up(parts) for parts in by_run.values() if len(parts) == shards]
    return sorted(runs, key=lambda r: str(r["finishedAt"]))


def _add_up(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    current = list(parts.values())
    total: dict[str, Any] = {"ok": all(bool(p.get("ok")) for p in current), "keys": sorted(parts)}
    for key in ("objects_copied", "bytes_copied", "mismatch_count", "repaired", "verified", "errors"):
        total[key] = sum(int(p.get(key) or 0) for p in current)
    total["duration_seconds"] = max(float(p.get("duration_seconds") or 0) for p in current)
    total["startedAt"] = min(str(p.get("startedAt") or "") for p in current)
    total["finishedAt"] = max(str(p.get("finishedAt") or "") for p in current)
    return total


def combine(data: dict[str, str], shards: int, since: str | None) -> dict[str, Any] | None:
    """The latest complete run's summary (see `completed_runs`), None until one is complete."""
    runs = completed_runs(data, shards, since)
    return runs[-1] if runs else None


def _later_or_equal(a: str, b: str) -> bool:
    first, second = _parse_time(a), _parse_time(b)
    return first is not None and second is not None and first >= second


def _awaiting_result(entry: dict[str, Any]) -> bool:
    """A run was launched and no result finished after its cron time has been folded in yet."""
    launched = entry.get("lastScheduledTime")
    return bool(launched) and not _later_or_equal(str(entry.get("lastSyncTime") or ""), str(launched))


def _read_result(rt: ReplicaContext, entry: dict[str, Any], flow: Flow, now: datetime) -> None:
    """Fold the last run's summary (written by the Job's pods through `--report-configmap`) in: read
    every RESULT_POLL_S while a run is awaited, else every RESULT_RECHECK_S."""
    awaiting = _awaiting_result(entry)
    last_read = rt.results_read_at.get(flow.target)
    since = None if last_read is None else time.monotonic() - last_read
    if since is not None and since < (RESULT_POLL_S if awaiting else RESULT_RECHECK_S):
        _age(entry, now)
        if awaiting:
            rt.due_within(RESULT_POLL_S - since)
        return
    rt.results_read_at[flow.target] = time.monotonic()
    if awaiting:
        rt.due_within(RESULT_POLL_S)
    name = result_configmap(rt.name, flow.target)
    try:
        cm = rt.kube.read("v1", "ConfigMap", name, rt.namespace)
    except (LookupError, ApiException):
        cm = None
    shards = flow.spec.shards if flow.spec else 1
    data = (cm or {}).get("data") or {}
    runs = completed_runs(data, shards, entry.get("lastScheduledTime"))
    if runs:
        try:
            # Removed before they are counted: a run is folded in once, even if status is written late.
            rt.kube.merge_patch(
                "v1", "ConfigMap", name, {"data": {k: None for r in runs for k in r["keys"]}}, rt.namespace
            )
        except ApiException:
            runs = []  # counted next time, when its keys can be removed
    for summary in runs:
        _fold(rt, entry, flow, summary)
    if _shards_still_reporting(data, shards, {k for r in runs for k in r["keys"]}, now):
        # Another run's shards are still reporting (runs overlap): look again soon, not in ten minutes.
        rt.results_read_at[flow.target] = time.monotonic() - RESULT_RECHECK_S + RESULT_POLL_S
        rt.due_within(RESULT_POLL_S)
    _age(entry, now)


def _shards_still_reporting(data: dict[str, str], shards: int, folded: set[str], now: datetime) -> bool:
    """Some shard of a run not yet complete reported within the hour (a run whose other shards never
    report, its Job failed, is not waited for beyond that)."""
    for key, value in data.items():
        match = SUMMARY_KEY.match(key)
        if key in folded or not match or int(match["of"]) != shards:
            continue
        finished = _parse_time(str(json.loads(value).get("finishedAt") or ""))
        if finished is not None and seconds_between(finished, now) < 3600:
            return True
    return False


def _fold(rt: ReplicaContext, entry: dict[str, Any], flow: Flow, summary: dict[str, Any]) -> None:
    """One complete run into the target's status (the latest run's figures) and the metrics (every run's)."""
    ok = bool(summary["ok"])
    if summary["finishedAt"] >= str(entry.get("lastSyncTime") or ""):
        entry.update(
            lastSyncTime=summary["finishedAt"],
            lastSyncDurationSeconds=summary["duration_seconds"],
            lastSyncResult="Succeeded" if ok else "Failed",
            objectsCopied=summary["objects_copied"],
            bytesCopied=summary["bytes_copied"],
            mismatches=summary["mismatch_count"],
            repaired=summary["repaired"],
        )
        if summary["verified"]:
            entry["lastVerificationTime"] = summary["finishedAt"]
    if ok and summary["startedAt"] > str(entry.get("lastGoodSyncStart") or ""):
        entry["lastGoodSyncStart"] = summary["startedAt"]
    dr_metrics.count_sync(
        rt.namespace, rt.name, flow.target, ok, int(summary["bytes_copied"]), int(summary["repaired"])
    )
    if summary["repaired"]:
        rt.emit(
            "Warning",
            "CopiesRepaired",
            f"verification of {flow.target} found {summary['repaired']} copy(ies) wrong; copied again "
            f"and proved right (sync finished {summary['finishedAt']})",
        )


def _age(entry: dict[str, Any], now: datetime) -> None:
    good = _parse_time(entry.get("lastGoodSyncStart"))
    if good is not None:
        # A scheduled copy is as old as the start of the last good full sync: that is its data loss.
        entry["lagSeconds"] = round(seconds_between(good, now), 1)
