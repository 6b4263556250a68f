"""Whether a city is available and its census fresh: pure decisions from one heartbeat's outcome.

A city that stops answering stays Available until `grace` has passed since its last heartbeat (a
restart or a network blip should not page anyone); problems that waiting cannot cure — a missing
Secret, an unusable kubeconfig, an untrusted certificate, rejected credentials — make it unavailable at
once, with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..api.common import CITIES


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


def _city(code: str) -> str:
    return f"{code} ({CITIES[code][1]})" if code in CITIES else code


def centres_verdict(city_code: str, listed: Sequence[str], centres: Mapping[str, str | None]) -> Verdict:
    """CentresResolved: each DataCentre the city lists exists (a key of `centres`), validates (its value,
    the centre's spec.city, is not None) and stands in the city. Every problem is named, worst first."""
    if not listed:
        return Verdict(True, "NoCentres", "spec.centres lists no DataCentre")
    missing = [c for c in listed if c not in centres]
    invalid = [c for c in listed if c in centres and centres[c] is None]
    elsewhere = [c for c in listed if centres.get(c) not in (None, city_code)]
    said = [
        *(f"DataCentre {c} does not exist" for c in missing),
        *(f"DataCentre {c} stands in {_city(str(centres[c]))}, not in {_city(city_code)}" for c in elsewhere),
        *(f"DataCentre {c} has an invalid spec" for c in invalid),
    ]
    if not said:
        return Verdict(True, "Resolved", f"{', '.join(listed)} stand(s) in {_city(city_code)}")
    reason = "CentreNotFound" if missing else "CentreInOtherCity" if elsewhere else "CentreInvalid"
    return Verdict(False, reason, "; ".join(said))


def _age(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def city_owners(bodies: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """City code → the CityDataCloud that is that city: the oldest (creation time, then name) of those
    not being deleted. Two clouds with one code would be counted twice by a census; the others are not."""
    owners: dict[str, tuple[tuple[str, str], str]] = {}
    for body in bodies:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        code = spec.get("cityCode") if isinstance(spec, Mapping) else None
        if not isinstance(code, str) or meta.get("deletionTimestamp"):
            continue
        if code not in owners or _age(body) < owners[code][0]:
            owners[code] = (_age(body), str(meta.get("name")))
    return {code: name for code, (_, name) in owners.items()}


def code_verdict(name: str, city_code: str, owners: Mapping[str, str]) -> Verdict:
    """CityCodeUnique: this cloud is the one counted for its city code."""
    owner = owners.get(city_code, name)
    if owner == name:
        return Verdict(True, "Unique", f"the CityDataCloud of {_city(city_code)}")
    return Verdict(
        False,
        "CityCodeTaken",
        f"CityDataCloud {owner}, created earlier, is {_city(city_code)}: the census counts that one and "
        "leaves this one out; delete one of them or correct spec.cityCode",
    )
