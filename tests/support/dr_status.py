"""What the DR unit tests share: a replica spec (a continuous near target, a nightly far one), follower
figures at a given lag, and the status summary of `dr_status` as a dict of conditions."""

from __future__ import annotations

from typing import Any

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.topology import flows
from datacloud.reconcile import dr_status
from datacloud.replication.continuous import ReplicationStats

SPEC = DRReplicaSpec.model_validate(
    {
        "source": {"centre": "prod", "bucket": "data"},
        "activeCentre": "prod",
        "targets": [
            {
                "name": "near",
                "centre": "samecity",
                "bucket": "data-near",
                "mode": "Continuous",
                "rpoTarget": "30s",
            },
            {
                "name": "far",
                "centre": "remote",
                "bucket": "data-far",
                "mode": "Scheduled",
                "schedule": "0 2 * * *",
            },
        ],
    }
)


def stats(lag: float) -> ReplicationStats:
    return ReplicationStats(
        pending=0,
        in_flight=0,
        current_lag_seconds=lag,
        objects_copied=3,
        bytes_copied=10,
        objects_deleted=0,
        failures=0,
        changes_received=3,
        changes_ignored=0,
        lag_count=3,
        lag_sum_seconds=3 * lag,
        max_lag_seconds=lag,
        last_lag_seconds=lag,
        recent_lags=(lag,),
        scans=1,
        last_scan_at=None,
        last_error=None,
    )


def conditions(status: dict[str, Any], problems: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    conds, ready = dr_status.summary(status, SPEC, flows(SPEC, "prod"), problems or [], None, 4)
    return {"ready": ready, **{c["type"]: c for c in conds}}
