"""ComputeCensus metrics, set from each run's outcome and restored from status after a restart."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Gauge

from .registry import REGISTRY

last_run = Gauge(
    "datacloud_census_last_run_timestamp_seconds",
    "When the census last finished a run (Unix time).",
    ["census"],
    registry=REGISTRY,
)
last_success = Gauge(
    "datacloud_census_last_run_success",
    "1 when the census's last run collected every city in scope and stored its snapshot, else 0.",
    ["census"],
    registry=REGISTRY,
)
exhaustion = Gauge(
    "datacloud_census_days_until_exhaustion",
    "Days until requests reach allocatable at the growth seen over the retained snapshots "
    "(+Inf when not growing; absent without enough history).",
    ["city", "resource"],
    registry=REGISTRY,
)
_forecasts: dict[str, set[tuple[str, str]]] = {}  # census → (city, resource) series it set


def observe_census(name: str, status: Mapping[str, Any]) -> None:
    """The run gauges from status (so they are right after an operator restart)."""
    finished = status.get("lastRunTime")
    if isinstance(finished, str):
        with contextlib.suppress(ValueError):
            last_run.labels(name).set(datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp())
    conditions: list[Mapping[str, Any]] = list(status.get("conditions") or [])
    outcome = next((c for c in conditions if c.get("type") == "LastRunSucceeded"), None)
    if outcome is not None:  # also after a run that failed before any finished
        last_success.labels(name).set(1 if outcome.get("status") == "True" else 0)


def observe_forecasts(name: str, forecasts: Iterable[tuple[str, str, float]]) -> None:
    """Replace this census's exhaustion series; series it no longer has are dropped."""
    now = set()
    for city, resource, days in forecasts:
        exhaustion.labels(city, resource).set(days)
        now.add((city, resource))
    for gone in _forecasts.get(name, set()) - now:
        with contextlib.suppress(KeyError):
            exhaustion.remove(*gone)
    _forecasts[name] = now


def forget_census(name: str) -> None:
    for gauge in (last_run, last_success):
        with contextlib.suppress(KeyError):
            gauge.remove(name)
    observe_forecasts(name, [])
    _forecasts.pop(name, None)
