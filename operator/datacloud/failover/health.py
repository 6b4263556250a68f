"""Centre health from probe outcomes: a pure state machine.

Up: the store answers quickly. Degraded: it answers slowly, or has failed fewer times in a row than the
threshold. Down: it has failed `failure_threshold` times in a row. Unknown: not probed yet, or the probe
could not even be attempted (no credentials).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    latency_s: float
    error: str = ""
    attempted: bool = True


@dataclass(frozen=True)
class HealthState:
    health: str = "Unknown"
    consecutive_failures: int = 0


def next_health(
    previous: HealthState, outcome: ProbeOutcome, failure_threshold: int, degraded_latency_s: float
) -> HealthState:
    if not outcome.attempted:
        return HealthState("Unknown", previous.consecutive_failures)
    if outcome.ok:
        health = "Degraded" if outcome.latency_s > degraded_latency_s else "Up"
        return HealthState(health, 0)
    failures = previous.consecutive_failures + 1
    if failures >= failure_threshold:
        return HealthState("Down", failures)
    # Below the threshold a failing centre is not yet Down, but it is not healthy either.
    return HealthState("Degraded" if previous.health != "Unknown" else "Unknown", failures)
