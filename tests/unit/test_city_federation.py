"""Availability with a grace period and census freshness: pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from datacloud.census.federation import Contact, availability, census_freshness

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=90)
DOWN = Contact(False, "Unreachable", "connection refused", transient=True)


def test_answering_city_is_available() -> None:
    v = availability(Contact(True, "HeartbeatSucceeded", "v1.34.4 answered"), None, NOW, GRACE)
    assert (v.status, v.reason) == (True, "HeartbeatSucceeded")


def test_silent_city_stays_available_within_grace_then_turns_unavailable() -> None:
    within = availability(DOWN, NOW - timedelta(seconds=60), NOW, GRACE)
    assert (within.status, within.reason) == (True, "HeartbeatMissed")
    assert "connection refused" in within.message
    beyond = availability(DOWN, NOW - timedelta(seconds=91), NOW, GRACE)
    assert (beyond.status, beyond.reason) == (False, "Unreachable")


def test_never_reached_city_is_unavailable() -> None:
    assert availability(DOWN, None, NOW, GRACE).status is False


def test_problems_waiting_cannot_cure_skip_the_grace() -> None:
    for reason in ("SecretNotFound", "KubeconfigInvalid", "CertificateInvalid", "Unauthorized"):
        v = availability(Contact(False, reason, "bad"), NOW - timedelta(seconds=1), NOW, GRACE)
        assert (v.status, v.reason) == (False, reason)


def test_census_freshness() -> None:
    assert census_freshness(None, NOW, GRACE).reason == "NoSummary"
    assert census_freshness(NOW - timedelta(seconds=30), NOW, GRACE).status is True
    stale = census_freshness(NOW - timedelta(seconds=300), NOW, GRACE, "city down")
    assert (stale.status, stale.reason) == (False, "Stale")
    assert "city down" in stale.message
