"""A replica's gauges follow its status run after run: changed values set, series it no longer has
dropped, everything back after the replica was forgotten and seen again."""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.metrics import dr
from datacloud.metrics.registry import REGISTRY


def value(metric: str, **labels: str) -> float | None:
    found: float | None = REGISTRY.get_sample_value(metric, labels)
    return found


def status(lags: dict[str, float], epoch: int, action: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "activeCentre": "prod",
        "fencingEpoch": epoch,
        "targets": [{"name": n, "lagSeconds": lag} for n, lag in lags.items()],
    }
    if action is not None:
        out["action"] = action
    return out


def test_series_follow_the_status_and_come_back_after_forget() -> None:
    ns, name = "metrics-ns", "orders"
    keys = {"namespace": ns, "replica": name}
    dr.observe_replica(ns, name, status({"near": 1.5, "far": 30.0}, 1), {"near": 30.0}, False, {})
    assert value("datacloud_dr_lag_seconds", **keys, target="far") == 30.0
    assert value("datacloud_dr_fencing_epoch", **keys) == 1

    running = {"type": "Failover", "startedAt": "x", "startedEpoch": 100.0, "steps": [{"name": "Promoting"}]}
    dr.observe_replica(ns, name, status({"near": 2.5}, 2, running), {"near": 30.0}, False, {})
    assert value("datacloud_dr_lag_seconds", **keys, target="near") == 2.5
    assert value("datacloud_dr_lag_seconds", **keys, target="far") is None
    assert value("datacloud_dr_fencing_epoch", **keys) == 2
    assert value("datacloud_dr_action_in_progress", **keys, type="Failover", step="Promoting") == 1

    done = {**running, "finishedAt": "y", "durationSeconds": 3.0}
    dr.observe_replica(ns, name, status({"near": 2.5}, 2, done), {"near": 30.0}, False, {})
    assert value("datacloud_dr_action_in_progress", **keys, type="Failover", step="Promoting") is None

    dr.forget_replica(ns, name)
    assert value("datacloud_dr_lag_seconds", **keys, target="near") is None
    assert value("datacloud_dr_fencing_epoch", **keys) is None
    dr.observe_replica(ns, name, status({"near": 2.5}, 2, done), {"near": 30.0}, False, {})
    assert value("datacloud_dr_lag_seconds", **keys, target="near") == 2.5
    assert value("datacloud_dr_fencing_epoch", **keys) == 2
    dr.forget_replica(ns, name)


ACTIVE = {"centre": "fz-prod", "bucket": "b", "prefix": "records/"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"endpoint": ACTIVE, "writableCopies": 1, "writableLocations": ["fz-prod/b/records"]}, 0.0),
        ({"endpoint": ACTIVE, "writableCopies": 0, "writableLocations": []}, 1.0),
        # Another copy took the probe and the active one did not (split brain has its own alert).
        ({"endpoint": ACTIVE, "writableCopies": 1, "writableLocations": ["fz-samecity-dr/b"]}, 1.0),
        # Unknown is not a refusal: a centre without a probe account, a store that did not answer.
        (
            {
                "endpoint": ACTIVE,
                "writableCopies": 0,
                "writableLocations": [],
                "unmeasuredCopies": ["fz-prod/b/records: no probe account in the centre's Secret"],
            },
            None,
        ),
        ({"writableCopies": 0}, None),  # nothing published (its source bucket is missing)
    ],
)
def test_the_active_copy_refuses_writes_only_when_measured_so(
    status: dict[str, Any], expected: float | None
) -> None:
    assert dr.active_copy_refuses(status) == expected
