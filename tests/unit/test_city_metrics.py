"""City metrics follow status: set from it, dropped when a series or the city goes."""

from __future__ import annotations

from typing import Any

from datacloud.metrics import REGISTRY
from datacloud.metrics.cities import forget_city, observe_city


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def status(gpus: bool = True) -> dict[str, Any]:
    return {
        "conditions": [{"type": "Available", "status": "True"}],
        "lastHeartbeatTime": "2025-06-01T12:00:00Z",
        "nodes": {"total": 10, "ready": 8, "schedulable": 7, "cordoned": 2},
        "resources": {"capacity": {"cpu": "96", "memory": "4Gi"}, "requested": {"cpu": "1500m"}},
        "accelerators": [{"resource": "nvidia.com/gpu", "model": "A100", "capacity": 8, "allocatable": 8,
                          "requested": 3}] if gpus else [],
        "compliance": {"profile": "fujian-provincial", "version": "v1", "score": 83,
                       "failedChecks": [{"id": "FJ-NET-001", "severity": "high", "message": "m"}]},
    }  # fmt: skip


def test_series_follow_status_and_disappear_with_the_city() -> None:
    observe_city("m-city", "350200", status())
    assert value("datacloud_city_available", city="m-city", code="350200") == 1
    assert value("datacloud_city_nodes", city="m-city", state="not_ready") == 2
    assert value("datacloud_city_resource", city="m-city", resource="memory", kind="capacity") == 4 * 2**30
    assert value("datacloud_city_resource", city="m-city", resource="cpu", kind="requested") == 1.5
    gpu = {"city": "m-city", "resource": "nvidia.com/gpu", "model": "A100"}
    assert value("datacloud_city_accelerators", **gpu, kind="requested") == 3
    assert (
        value(
            "datacloud_city_baseline_score_percent", city="m-city", profile="fujian-provincial", version="v1"
        )
        == 83
    )
    assert value("datacloud_city_baseline_failed_checks", city="m-city", severity="high") == 1
    assert value("datacloud_city_last_heartbeat_timestamp_seconds", city="m-city") == 1748779200
    age = value("datacloud_city_heartbeat_age_seconds", city="m-city")
    assert age is not None
    assert age > 0

    observe_city("m-city", "350200", status(gpus=False))
    assert value("datacloud_city_accelerators", **gpu, kind="requested") is None
    assert value("datacloud_city_nodes", city="m-city", state="total") == 10

    forget_city("m-city")
    for name, labels in [("datacloud_city_available", {"city": "m-city", "code": "350200"}),
                         ("datacloud_city_nodes", {"city": "m-city", "state": "total"}),
                         ("datacloud_city_heartbeat_age_seconds", {"city": "m-city"})]:  # fmt: skip
        assert value(name, **labels) is None
