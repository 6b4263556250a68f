"""Centre health metrics, set from DataCentre status."""

from __future__ import annotations

import contextlib

from prometheus_client import Gauge

from .registry import REGISTRY

HEALTH_STATES = ("Up", "Degraded", "Down", "Unknown")

centre_up = Gauge(
    "datacloud_centre_up",
    "1 when the centre's object store answers (Up or Degraded), else 0.",
    ["centre", "city", "role"],
    registry=REGISTRY,
)
centre_health = Gauge(
    "datacloud_centre_health",
    "1 for the centre's current health state, 0 for the others.",
    ["centre", "state"],
    registry=REGISTRY,
)
centre_probe_latency = Gauge(
    "datacloud_centre_probe_latency_seconds",
    "Latency of the last successful probe of the centre's object store.",
    ["centre"],
    registry=REGISTRY,
)
centre_probe_failures = Gauge(
    "datacloud_centre_consecutive_probe_failures",
    "Failed probes in a row.",
    ["centre"],
    registry=REGISTRY,
)
_centre_labels: dict[str, tuple[str, str]] = {}


def observe_centre(name: str, city: str, role: str, status: dict[str, object]) -> None:
    """Set the centre's series from its status."""
    previous = _centre_labels.get(name)
    if previous and previous != (city, role):
        centre_up.remove(name, *previous)
    _centre_labels[name] = (city, role)
    health = str(status.get("health") or "Unknown")
    centre_up.labels(name, city, role).set(1 if health in ("Up", "Degraded") else 0)
    for state in HEALTH_STATES:
        centre_health.labels(name, state).set(1 if state == health else 0)
    latency = status.get("lastProbeLatencyMs")
    if isinstance(latency, int | float) and health != "Down":
        centre_probe_latency.labels(name).set(float(latency) / 1000)
    failures = status.get("consecutiveFailures")
    centre_probe_failures.labels(name).set(float(failures) if isinstance(failures, int | float) else 0)


def forget_centre(name: str) -> None:
    labels = _centre_labels.pop(name, None)
    if labels:
        centre_up.remove(name, *labels)
    for state in HEALTH_STATES:
        _remove(centre_health, name, state)
    _remove(centre_probe_latency, name)
    _remove(centre_probe_failures, name)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
