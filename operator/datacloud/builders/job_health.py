"""Why a Job makes no progress, read from the Job and its pods as kubelet and the scheduler report them.

A sync Job whose pods cannot start (the image is missing, no node fits, the container crash-loops) waits
for ever without failing; this names the Job, the pod and the reason so the DRReplica can say so in a
condition and an Event instead of waiting silently. Pure: the caller lists the Job's pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Container waiting reasons that do not clear by themselves (kubelet retries, but nothing will change
# until someone fixes the image, the configuration or the program).
STUCK_WAITING = frozenset(
    {
        "ErrImageNeverPull",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


# A Job that has created no pod this long after it was made is refused its pods (a ResourceQuota, an
# admission webhook, Pod Security, a missing ServiceAccount): the Job controller only posts FailedCreate
# Events and keeps retrying, so nothing in the Job's status ever says so.
NO_POD_GRACE_S = 120.0


# A pod nobody takes up this long: no scheduler has written its PodScheduled condition (none runs, or
# spec.schedulerName names one that does not), or the node it was bound to has not started it (kubelet
# down or cut off). Either way the pod stays Pending with nothing in the Job's status saying why.
NOT_TAKEN_UP_GRACE_S = 120.0


@dataclass(frozen=True)
class Stuck:
    reason: str  # SyncJobFailed | SyncPodCannotStart | SyncPodUnschedulable | SyncPodsNotCreated
    message: str


def _true(conditions: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind and c.get("status") == "True"), None)


INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def shard_failures(pods: list[dict[str, Any]]) -> dict[int, int]:
    """Failed attempts by shard (the pod's completion index; 0 for a Job that is not Indexed)."""
    failures: dict[int, int] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") == "Failed":
            index = int(((pod["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION)) or 0)
            failures[index] = failures.get(index, 0) + 1
    return failures


def retried(job: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
    """While `job` runs with failed attempts behind it: which shards failed how often and how many
    retries each has (the Job's backoffLimitPerIndex, or its backoffLimit for all pods together)."""
    status = job.get("status") or {}
    done = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    failures = shard_failures(pods)
    if not failures or done & {"Complete", "Failed"}:
        return None
    spec = job.get("spec") or {}
    per_index = spec.get("backoffLimitPerIndex")
    limit = (
        f"{per_index} retries per shard"
        if per_index is not None
        else f"{spec.get('backoffLimit', 6)} retries"
    )
    shards = ", ".join(f"shard {i} failed {n} time(s)" for i, n in sorted(failures.items()))
    return f"sync Job {job['metadata']['name']}: {shards}; retried ({limit})"


def why_stuck(job: dict[str, Any], pods: list[dict[str, Any]], now: datetime | None = None) -> Stuck | None:
    """The first reason `job` cannot make progress, or None while it runs (or has finished well). With
    `now`, a Job that has created no pod within `NO_POD_GRACE_S` of its creation is stuck too."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    failed = _true(status.get("conditions"), "Failed")
    if failed:
        detail = f"{failed.get('reason') or 'Failed'}: {failed.get('message') or ''}".rstrip(": ")
        if status.get("failedIndexes"):
            detail += f"; shard(s) {status['failedIndexes']} out of retries"
        return Stuck("SyncJobFailed", f"sync Job {name} failed ({detail})")
    if _true(status.get("conditions"), "Complete"):
        return None
    if not pods and now is not None and not job.get("spec", {}).get("suspend"):
        age = _age_s(job, now)
        if age is not None and age >= NO_POD_GRACE_S:
            return Stuck(
                "SyncPodsNotCreated",
                f"sync Job {name} has created no pod in {int(age)} s (a quota, an admission webhook or Pod "
                f"Security refuses them: see `kubectl describe job {name}` for FailedCreate)",
            )
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        pod_name = pod["metadata"]["name"]
        pod_status = pod.get("status") or {}
        for cs in pod_status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_WAITING:
                text = f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
                return Stuck(
                    "SyncPodCannotStart",
                    f"sync Job {name}: pod {pod_name} container {cs.get('name')} cannot start ({text})",
                )
        for cond in pod_status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                text = f"{cond.get('reason') or 'Unschedulable'}: {cond.get('message') or ''}".rstrip(": ")
                return Stuck(
                    "SyncPodUnschedulable", f"sync Job {name}: pod {pod_name} not scheduled ({text})"
                )
        if now is not None:
            untouched = _not_taken_up(name, pod, now)
            if untouched is not None:
                return untouched
    return None


def _not_taken_up(job_name: str, pod: dict[str, Any], now: datetime) -> Stuck | None:
    """A Pending pod that neither a scheduler nor a kubelet has written anything on for
    NOT_TAKEN_UP_GRACE_S. Once a scheduler looks it writes PodScheduled; once a kubelet admits the pod it
    writes container statuses and more conditions, so an empty status is proof that nobody did."""
    status = pod.get("status") or {}
    if (
        status.get("phase") != "Pending"
        or status.get("containerStatuses")
        or status.get("initContainerStatuses")
    ):
        return None
    conditions = status.get("conditions") or []
    placed = _true(conditions, "PodScheduled")
    if conditions and (placed is None or len(conditions) > 1):
        return None  # a scheduler found no node (named above), or a kubelet took the pod up
    # Waiting since it was made (no scheduler looked), or since it was placed (no kubelet took it up).
    age = _seconds_since(
        placed.get("lastTransitionTime") if placed else pod["metadata"].get("creationTimestamp"), now
    )
    if age is None or age < NOT_TAKEN_UP_GRACE_S:
        return None
    pod_name, spec = pod["metadata"]["name"], pod.get("spec") or {}
    if placed is None:
        scheduler = spec.get("schedulerName") or "default-scheduler"
        why = f"has waited {int(age)} s and no scheduler has looked at it (does the scheduler {scheduler!r} "
        why += "run?)"
        return Stuck("SyncPodUnschedulable", f"sync Job {job_name}: pod {pod_name} {why}")
    node = spec.get("nodeName") or "?"
    why = (
        f"was placed on node {node} {int(age)} s ago and its kubelet has not taken it up (is the node down "
        f"or cut off? `kubectl get node {node}`)"
    )
    return Stuck("SyncPodCannotStart", f"sync Job {job_name}: pod {pod_name} {why}")


def _age_s(obj: dict[str, Any], now: datetime) -> float | None:
    return _seconds_since(obj["metadata"].get("creationTimestamp"), now)


def _seconds_since(stamp: str | None, now: datetime) -> float | None:
    try:
        return (now - datetime.fromisoformat(str(stamp or "").replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None
