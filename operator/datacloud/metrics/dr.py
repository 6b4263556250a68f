"""DR metrics, set from DRReplica status (and counters bumped as syncs finish)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge
from prometheus_client.metrics import MetricWrapperBase

from .registry import REGISTRY

_T = ["namespace", "replica", "target"]
# Conditions that, when False, say part of the spec is not carried out.
UNUSABLE_CONDITIONS = ("LocationsExclusive", "SpecUsable")
UNUSABLE_REASONS = (
    "OverlapsReplica",
    "OverlapsItself",
    "ScheduleNeverFires",
    "ScheduleInvalid",
    "WindowNeverOpens",
)
_R = ["namespace", "replica"]
# JobsHealthy False reasons: a scheduled sync Job that cannot progress.
STUCK_JOB_REASONS = ("SyncJobFailed", "SyncPodCannotStart", "SyncPodUnschedulable")

last_sync = Gauge(
    "datacloud_dr_last_sync_timestamp_seconds", "When the target's last sync finished.", _T, registry=REGISTRY
)
lag = Gauge(
    "datacloud_dr_lag_seconds",
    "Age of the oldest change not yet copied to the target.",
    _T,
    registry=REGISTRY,
)
rpo_target = Gauge(
    "datacloud_dr_rpo_target_seconds", "The target's recovery point objective.", _T, registry=REGISTRY
)
sync_runs = Counter(
    "datacloud_dr_sync_runs_total",
    "Sync runs by result (succeeded|failed).",
    [*_T, "result"],
    registry=REGISTRY,
)
bytes_copied = Counter(
    "datacloud_dr_bytes_copied_total", "Bytes copied to the target.", _T, registry=REGISTRY
)
verify_repaired = Counter(
    "datacloud_dr_verify_repaired_total",
    "Copies a scheduled sync's verification found wrong, copied again and proved right.",
    _T,
    registry=REGISTRY,
)
parked_keys = Gauge(
    "datacloud_dr_parked_keys",
    "Keys the continuous follower cannot copy (failing permanently); they are not replicated.",
    _T,
    registry=REGISTRY,
)
missed = Gauge("datacloud_dr_missed_intervals", "Scheduled runs missed in a row.", _T, registry=REGISTRY)
mismatches = Gauge(
    "datacloud_dr_verification_mismatches",
    "Mismatches found by the last verification.",
    _T,
    registry=REGISTRY,
)
active_centre = Gauge(
    "datacloud_dr_active_centre", "1 for the replica's active centre.", [*_R, "centre"], registry=REGISTRY
)
active_refuses = Gauge(
    "datacloud_dr_active_copy_refuses_writes",
    "1 when the published active copy refused the operator's probe write (measured, not unknown): "
    "applications cannot write to it.",
    _R,
    registry=REGISTRY,
)


def active_copy_refuses(status: dict[str, Any]) -> float | None:
    """1 when the copy status says is published refused the last probe; 0 when it took it or another
    copy did; None (no series) when nothing is published or its writability is unknown."""
    endpoint = status.get("endpoint") or {}
    if not endpoint.get("centre") or status.get("writableCopies") is None:
        return None
    where = f"{endpoint['centre']}/{endpoint.get('bucket', '')}/{endpoint.get('prefix') or ''}".rstrip("/")
    if any(str(u).startswith(f"{where}: ") for u in status.get("unmeasuredCopies") or []):
        return None
    return 1.0 if where not in (status.get("writableLocations") or []) else 0.0


write_lease_renewals_failing = Gauge(
    "datacloud_write_lease_renewals_failing",
    "Buckets whose store refuses (or fails) the renewal of the write leases held there: their active "
    "copies refuse writes once those leases end.",
    registry=REGISTRY,
)


def watch_leases(failing: Callable[[], int]) -> None:
    """Read at every scrape from the process's write leases (`failover.lease.Leases.failing`)."""
    write_lease_renewals_failing.set_function(failing)


writable_copies = Gauge(
    "datacloud_dr_writable_copies", "Copies not fenced; more than 1 means split brain.", _R, registry=REGISTRY
)
fencing_epoch = Gauge(
    "datacloud_dr_fencing_epoch", "Fencing epoch; rises with every change of writer.", _R, registry=REGISTRY
)
action_in_progress = Gauge(
    "datacloud_dr_action_in_progress",
    "1 while a DR action runs, by type and step.",
    [*_R, "type", "step"],
    registry=REGISTRY,
)
action_started = Gauge(
    "datacloud_dr_action_started_timestamp_seconds",
    "When the running action started.",
    [*_R, "type"],
    registry=REGISTRY,
)
action_duration = Gauge(
    "datacloud_dr_action_duration_seconds",
    "Duration of the last finished action.",
    [*_R, "type"],
    registry=REGISTRY,
)
estimated_loss = Gauge(
    "datacloud_dr_estimated_data_loss_seconds",
    "Data a failover now would lose: the lag of the best Continuous target.",
    _R,
    registry=REGISTRY,
)
divergent_objects = Gauge(
    "datacloud_dr_divergent_objects",
    "Objects an old active copy accepted that the active copy lacked, preserved in quarantine and not "
    "yet reviewed.",
    _R,
    registry=REGISTRY,
)
divergence_pending = Gauge(
    "datacloud_dr_divergence_checks_pending",
    "Copies waiting for their divergent-write check (nothing is written into them until it ran).",
    _R,
    registry=REGISTRY,
)
spec_unusable = Gauge(
    "datacloud_dr_spec_unusable",
    "1 while part of the spec cannot be carried out, by reason (OverlapsReplica, ScheduleNeverFires...).",
    [*_R, "reason"],
    registry=REGISTRY,
)
sync_job_stuck = Gauge(
    "datacloud_dr_sync_job_stuck",
    "1 while a scheduled sync Job cannot progress, by reason (SyncJobFailed, SyncPodCannotStart, "
    "SyncPodUnschedulable): the JobsHealthy condition names the Job.",
    [*_R, "reason"],
    registry=REGISTRY,
)
paused = Gauge("datacloud_dr_paused", "1 while the replica is paused.", _R, registry=REGISTRY)

# Every label set written, per replica, so a replica's series can all be dropped when it goes.
_written: dict[tuple[str, str], set[tuple[MetricWrapperBase, tuple[str, ...]]]] = {}
Series = tuple[Gauge, tuple[str, ...]]
# The gauges each replica's status last gave, so a run sets only what changed and drops only what went
# (dropping and setting every series at every run was a seventh of the replica workers' CPU in a mass
# failover, py-spy).
_observed: dict[tuple[str, str], dict[Series, float]] = {}
_observed_lock = threading.Lock()


def observe_replica(
    namespace: str,
    name: str,
    status: dict[str, Any],
    rpos: dict[str, float | None],
    paused_now: bool,
    timestamps: dict[str, float | None],
) -> None:
    """Gauges from status. `rpos` and `timestamps` (last sync, epoch seconds) are keyed by target name.
    Only the series whose value changed since the replica's last observation are set, and only those
    it no longer has are dropped."""
    replica_key = (namespace, name)
    wanted: dict[Series, float] = {}

    def want(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
        if value is not None:
            wanted[(gauge, labels)] = float(value)

    for target in status.get("targets") or []:
        labels = (namespace, name, str(target["name"]))
        want(last_sync, labels, timestamps.get(labels[2]))
        want(lag, labels, target.get("lagSeconds"))
        want(rpo_target, labels, rpos.get(labels[2]))
        want(missed, labels, target.get("missedIntervals"))
        want(mismatches, labels, target.get("mismatches"))
        want(parked_keys, labels, target.get("parkedKeys"))
        # Present from the start at 0, so increase() sees a target's very first failure or repair.
        if (sync_runs, (*labels, "succeeded")) not in _written.get(replica_key, ()):
            for result in ("succeeded", "failed"):
                sync_runs.labels(*labels, result)
                _written.setdefault(replica_key, set()).add((sync_runs, (*labels, result)))
        if (verify_repaired, labels) not in _written.get(replica_key, ()):
            verify_repaired.labels(*labels)
            _written.setdefault(replica_key, set()).add((verify_repaired, labels))
    replica = (namespace, name)
    if status.get("activeCentre"):
        want(active_centre, (*replica, str(status["activeCentre"])), 1)
    want(fencing_epoch, replica, status.get("fencingEpoch"))
    want(writable_copies, replica, status.get("writableCopies"))
    want(active_refuses, replica, active_copy_refuses(status))
    want(paused, replica, 1 if paused_now else 0)
    want(estimated_loss, replica, status.get("estimatedDataLossSeconds"))
    records = status.get("divergence") or []
    preserved = [r for r in records if r.get("state") == "Preserved"]
    want(
        divergent_objects,
        replica,
        sum(int(r.get("objects") or 0) + int(r.get("deletes") or 0) for r in preserved),
    )
    want(divergence_pending, replica, sum(1 for r in records if r.get("state") == "Pending"))
    unusable = {
        str(c.get("reason"))
        for c in status.get("conditions") or []
        if c.get("type") in UNUSABLE_CONDITIONS and c.get("status") == "False"
    }
    for reason in UNUSABLE_REASONS:
        want(spec_unusable, (*replica, reason), 1 if reason in unusable else 0)
    jobs = next((c for c in status.get("conditions") or [] if c.get("type") == "JobsHealthy"), None)
    if jobs is not None:
        for reason in STUCK_JOB_REASONS:
            stuck_now = jobs.get("status") == "False" and jobs.get("reason") == reason
            want(sync_job_stuck, (*replica, reason), 1 if stuck_now else 0)
    action = status.get("action") or {}
    kind = str(action.get("type", ""))
    if action.get("startedAt") and not action.get("finishedAt") and not action.get("dryRun"):
        step = next((s["name"] for s in action.get("steps", []) if s.get("state") != "Succeeded"), "Done")
        want(action_in_progress, (*replica, kind, str(step)), 1)
        want(action_started, (*replica, kind), action.get("startedEpoch"))
    for past in [action, *(status.get("history") or [])]:
        if past.get("durationSeconds") is not None and not past.get("dryRun"):
            want(action_duration, (*replica, str(past.get("type", ""))), past["durationSeconds"])
            break
    with _observed_lock:
        before = _observed.get(replica_key, {})
        for gone in before.keys() - wanted.keys():
            with contextlib.suppress(KeyError):
                gone[0].remove(*gone[1])
            _written.get(replica_key, set()).discard(gone)
        for series, value in wanted.items():
            if before.get(series) != value:
                series[0].labels(*series[1]).set(value)
                _written.setdefault(replica_key, set()).add(series)
        _observed[replica_key] = wanted


def count_sync(
    namespace: str, name: str, target: str, ok: bool, copied_bytes: int, repaired: int = 0
) -> None:
    labels = (namespace, name, target)
    sync_runs.labels(*labels, "succeeded" if ok else "failed").inc()
    bytes_copied.labels(*labels).inc(copied_bytes)
    verify_repaired.labels(*labels).inc(repaired)
    _written.setdefault((namespace, name), set()).update(
        {
            (sync_runs, (*labels, "succeeded" if ok else "failed")),
            (bytes_copied, labels),
            (verify_repaired, labels),
        }
    )


def forget_replica(namespace: str, name: str, keep_counters: bool = False) -> None:
    """Drop the replica's series (counters too, unless they should keep counting)."""
    with _observed_lock:
        _observed.pop((namespace, name), None)
    written = _written.get((namespace, name), set())
    for metric, labels in list(written):
        if keep_counters and isinstance(metric, Counter):
            continue
        with contextlib.suppress(KeyError):
            metric.remove(*labels)
        written.discard((metric, labels))
    if not written:
        _written.pop((namespace, name), None)
