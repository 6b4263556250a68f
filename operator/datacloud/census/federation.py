"""Whether a city is available and its census fresh: pure decisions from one heartbeat's outcome.

A city that stops answering stays Available until `grace` has passed since its last heartbeat (a
restart or a network blip should not page anyone); problems that waiting cannot cure — a missing
Secret, an unusable kubeconfig, an untrusted certificate, rejected credentials — make it unavailable at
once, with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Contact:
    """The outcome of one heartbeat."""

    ok: bool
    reason: str  # CamelCase, e.g. Unreachable, SecretNotFound
    message: str
    transient: bool = False  # waiting may cure it (the city is down), so the grace period applies


@dataclass(frozen=True)
class Verdict:
    status: bool | None  # the condition's status: True, False, None for Unknown
    reason: str
    message: str


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f}s"


def availability(
    contact: Contact, last_heartbeat: datetime | None, now: datetime, grace: timedelta
) -> Verdict:
    if contact.ok:
        return Verdict(True, contact.reason, contact.message)
    if contact.transient and last_heartbeat is not None and now - last_heartbeat <= grace:
        return Verdict(
            True,
            "HeartbeatMissed",
            f"{contact.message}; last heartbeat {_seconds(now - last_heartbeat)} ago, "
            f"unavailable after {_seconds(grace)}",
        )
    return Verdict(False, contact.reason, contact.message)


def census_freshness(
    summary_time: datetime | None, now: datetime, grace: timedelta, problem: str = ""
) -> Verdict:
    """CensusFresh: the node and resource summary is younger than the grace period."""
    if summary_time is None:
        return Verdict(False, "NoSummary", problem or "the city has not been summarised yet")
    age = now - summary_time
    if age <= grace:
        return Verdict(True, "Current", f"summary is {_seconds(age)} old")
    detail = f": {problem}" if problem else ""
    return Verdict(
        False, "Stale", f"summary is {_seconds(age)} old, older than the grace {_seconds(grace)}{detail}"
    )
