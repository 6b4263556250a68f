"""Scheduled (full) DR syncs: Jobs created at cron times inside the transfer window, results read back.

A Job runs `datacloud sync` (Indexed, one pod per shard, when `shards` > 1); each run writes its JSON
summary into the ConfigMap `<replica>-<target>-sync-result`, which is how the runs' figures reach status.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kubernetes.client.exceptions import ApiException

from .. import GROUP
from ..api.drreplica import DRReplicaSpec
from ..builders import dr as build
from ..builders.job_health import why_stuck
from ..failover.topology import Flow
from ..metrics import dr as dr_metrics
from .centres import Centre
from .dr_actions import api_refusal, refused
from .dr_flows import due_runs, epoch_now, in_window, next_run, seconds_between

if TYPE_CHECKING:
    from .drreplica import ReplicaRuntime

SYNC_SERVICE_ACCOUNT = "datacloud-sync"
RESULT_POLL_S = 10.0  # a run's result is looked for this often until it is in
# A target's newest Job (and its pods) is looked at this often, not on every run: two lists per run of
# every replica kept the workers waiting on the API server while a thousand replicas failed over.
JOB_CHECK_S = 30.0
RESULT_RECHECK_S = 600.0  # and otherwise this often (a seed Job's result, say)


def result_configmap(replica: str, target: str) -> str:
    return f"{replica}-{target}-sync-result"[:253]


def sync_arguments(namespace: str, replica: str, flow: Flow) -> list[str]:
    """The `datacloud sync` arguments of one scheduled flow (centres resolved by name in the cluster)."""
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
    rt: ReplicaRuntime,
    body: dict[str, Any],
    spec: DRReplicaSpec,
    scheduled: list[Flow],
    centres: dict[str, Centre],
    now_text: str,
) -> None:
    now = epoch_now()
    previous = {t["name"]: dict(t) for t in rt.status.get("targets") or []}
    created = _parse_time(body["metadata"].get("creationTimestamp")) or now
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
                if _try_launch(rt, body, flow, entry, latest):
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
            _check_latest_job(rt, entry, flow)
        previous[flow.target] = entry
    rt.status["targets"] = list(previous.values())


def _try_launch(
    rt: ReplicaRuntime, body: dict[str, Any], flow: Flow, entry: dict[str, Any], when: datetime
) -> bool:
    try:
        _launch(rt, body, flow, _run_id(when))
    except ApiException as e:
        entry["message"] = f"sync Job not created: {api_refusal(e)}"
        rt.emit("Warning", "SyncRefused", f"full sync of {flow.target}: {entry['message']}")
        return False
    entry.pop("message", None)
    rt.emit("Normal", "SyncScheduled", f"full sync of {flow.target} started for {when.isoformat()}")
    return True


def seed(
    rt: ReplicaRuntime, body: dict[str, Any], spec: DRReplicaSpec, scheduled: list[Flow], epoch: int
) -> list[str]:
    """After a change of active centre, one full sync Job per scheduled target from the new active
    (named after the epoch, so a repeated step re-applies the same Job); StepBlocked when the API
    server refuses it. Outside a target's window, or while paused, its next scheduled run does it."""
    notes = []
    cancelled = cancel_from_old_active(rt, f"seed-e{epoch}")
    if cancelled:
        notes.append(f"cancelled {', '.join(cancelled)} (from the old active)")
    for flow in scheduled:
        window = flow.spec.window if flow.spec else None
        if spec.paused or not in_window(window, epoch_now()):
            notes.append(f"{flow.dst.centre} at its next scheduled run")
            continue
        try:
            name = _launch(rt, body, flow, f"seed-e{epoch}")
        except ApiException as e:
            raise refused("Reseed", f"the seed Job of {flow.target}", e) from None
        notes.append(f"{flow.dst.centre} by seed Job {name}")
    return notes


STUCK_PREFIX = "sync Job "


def _check_latest_job(rt: ReplicaRuntime, entry: dict[str, Any], flow: Flow) -> None:
    """The target's newest sync Job, when it cannot progress (a missing image, no node for its pods, a
    crash loop, its backoff spent), is named with the reason in the target's message and a Warning Event
    instead of a silent wait; the message goes once a later Job runs."""
    label = f"{GROUP}/drreplica={rt.name},{GROUP}/target={flow.target}"
    try:
        # From the watch cache: a thousand replicas each listing through to etcd read every Job (and Pod)
        # of the namespace each time; a Job a moment old that the cache lacks is looked at next time.
        jobs = rt.kube.read_all("batch/v1", "Job", rt.namespace, label_selector=label, cached=True)
        latest = max(jobs, key=lambda j: str(j["metadata"].get("creationTimestamp") or ""), default=None)
        stuck = None
        if latest is not None and not _succeeded(latest):
            selector = f"job-name={latest['metadata']['name']}"
            pods = rt.kube.read_all("v1", "Pod", rt.namespace, label_selector=selector, cached=True)
            stuck = why_stuck(latest, pods)
    except ApiException:
        return  # looked at again next tick; the Job's own outcome still reaches status through its report
    if stuck is not None:
        entry["message"] = stuck.message
        rt.emit("Warning", stuck.reason, stuck.message)
    elif str(entry.get("message") or "").startswith(STUCK_PREFIX) and "not created" not in entry["message"]:
        entry.pop("message", None)


def _succeeded(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


def _finished(job: dict[str, Any]) -> bool:
    status = job.get("status") or {}
    done = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    return bool(status.get("completionTime") or done & {"Complete", "Failed"})


def cancel_from_old_active(rt: ReplicaRuntime, keep_run: str) -> list[str]:
    """Delete (with their pods) this replica's unfinished sync Jobs other than run `keep_run`: they were
    started from the centre that was active before, and one finishing after the seed would leave older
    data on its target. A refusal is reported and does not hold the action up (those Jobs then run out)."""
    label = f"{GROUP}/drreplica={rt.name}"
    try:
        # From the watch cache (milliseconds behind; the Jobs to cancel were made long before): in a mass
        # failover each replica listing through to etcd read every Job of the namespace, O(n²).
        jobs = rt.kube.read_all("batch/v1", "Job", rt.namespace, label_selector=label, cached=True)
    except ApiException as e:
        rt.emit("Warning", "SyncNotCancelled", f"sync Jobs from the old active not listed: {api_refusal(e)}")
        return []
    cancelled = []
    for job in jobs:
        meta = job["metadata"]
        if meta["name"].endswith(f"-{keep_run}") or meta.get("deletionTimestamp") or _finished(job):
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


def _run_id(when: datetime) -> str:
    return re.sub(r"[^0-9a-z]", "", when.strftime("%Y%m%dt%H%M").lower())


def _launch(rt: ReplicaRuntime, body: dict[str, Any], flow: Flow, run_id: str) -> str:
    shards = flow.spec.shards if flow.spec else 1
    job = build.sync_job(
        body,
        flow.target,
        run_id,
        rt.job_image,
        sync_arguments(rt.namespace, rt.name, flow),
        shards,
        SYNC_SERVICE_ACCOUNT,
    )
    rt.kube.apply(job)
    return str(job["metadata"]["name"])


def combine(data: dict[str, str], shards: int, since: str | None) -> dict[str, Any] | None:
    """The current run's summary from the ConfigMap: every shard's part (`summary-<i>-<N>`) started at or
    after the run's cron time `since`, added up; None until all N shards have reported."""
    parts = [json.loads(v) for k, v in data.items() if k.startswith("summary-") and k.endswith(f"-{shards}")]
    current = [p for p in parts if not since or _later_or_equal(str(p.get("startedAt") or ""), since)]
    if not current or len(current) < shards:
        return None
    total: dict[str, Any] = {"ok": all(bool(p.get("ok")) for p in current)}
    for key in ("objects_copied", "bytes_copied", "mismatch_count", "repaired", "verified", "errors"):
        total[key] = sum(int(p.get(key) or 0) for p in current)
    total["duration_seconds"] = max(float(p.get("duration_seconds") or 0) for p in current)
    total["startedAt"] = min(str(p.get("startedAt") or "") for p in current)
    total["finishedAt"] = max(str(p.get("finishedAt") or "") for p in current)
    return total


def _later_or_equal(a: str, b: str) -> bool:
    first, second = _parse_time(a), _parse_time(b)
    return first is not None and second is not None and first >= second


def _awaiting_result(entry: dict[str, Any]) -> bool:
    """A run was launched and no result finished after its cron time has been folded in yet."""
    launched = entry.get("lastScheduledTime")
    return bool(launched) and not _later_or_equal(str(entry.get("lastSyncTime") or ""), str(launched))


def _read_result(rt: ReplicaRuntime, entry: dict[str, Any], flow: Flow, now: datetime) -> None:
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
    try:
        cm = rt.kube.read("v1", "ConfigMap", result_configmap(rt.name, flow.target), rt.namespace)
    except (LookupError, ApiException):
        cm = None
    shards = flow.spec.shards if flow.spec else 1
    summary = combine((cm or {}).get("data") or {}, shards, entry.get("lastScheduledTime"))
    if summary and summary["finishedAt"] != entry.get("lastSyncTime"):
        ok = bool(summary["ok"])
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
        if ok:
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
    _age(entry, now)


def _age(entry: dict[str, Any], now: datetime) -> None:
    good = _parse_time(entry.get("lastGoodSyncStart"))
    if good is not None:
        # A scheduled copy is as old as the start of the last good full sync: that is its data loss.
        entry["lagSeconds"] = round(seconds_between(good, now), 1)
