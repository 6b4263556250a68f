"""A DataZone's conditions and phase, from what one reconcile found. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.conditions import ZoneReason, ZoneType, reason_of
from ..api.conditions import zone as zone_condition
from ..api.datazone import DataZoneSpec
from .conditions import find
from .datazone_profile import LABEL_ZONE, Profile

Note = tuple[str, str]  # (reason, message)


@dataclass
class Findings:
    """Problems per area; an empty list means the area is in line."""

    namespaces: list[Note] = field(default_factory=list)
    isolation: list[Note] = field(default_factory=list)
    quota: list[Note] = field(default_factory=list)
    access: list[Note] = field(default_factory=list)
    references: list[Note] = field(default_factory=list)
    retained: list[Note] = field(default_factory=list)
    active: list[str] = field(default_factory=list)  # namespaces whose children are kept in line
    over_quota: list[str] = field(default_factory=list)  # resources whose zone usage exceeds the hard limit
    rebalancing: bool = False


def _joined(notes: Sequence[Note]) -> tuple[ZoneReason, str]:
    """The first note's reason (the reconciler's words, typed; an unknown one reads as a refused write)
    and every note's message."""
    return reason_of(ZoneReason, notes[0][0], ZoneReason.CHILD_NOT_WRITTEN), "; ".join(m for _, m in notes)


def _nowhere(f: Findings, what: str) -> tuple[ZoneReason, str]:
    """Why a zone that owns no namespace enforces nothing: NoNamespaces, with the namespace finding (a
    conflict) when there is one."""
    notes = f.namespaces or f.retained
    detail = f" ({_joined(notes)[0]}: {_joined(notes)[1]})" if notes else " yet"
    return ZoneReason.NO_NAMESPACES, f"{what} in no namespace: the zone owns none{detail}"


def zone_conditions(
    f: Findings,
    zone: str,
    profile: Profile,
    spec: DataZoneSpec,
    dr_gaps: Mapping[str, list[str]],
    generation: int | None,
) -> list[dict[str, Any]]:
    n = len(f.active)
    where = f"in {n} namespace{'s' if n != 1 else ''}"
    out = []

    if f.namespaces:
        out.append(zone_condition(ZoneType.NAMESPACES_SYNCED, False, *_joined(f.namespaces), generation))
    elif f.retained:
        out.append(zone_condition(ZoneType.NAMESPACES_SYNCED, False, *_joined(f.retained), generation))
    else:
        out.append(
            zone_condition(
                ZoneType.NAMESPACES_SYNCED,
                True,
                ZoneReason.IN_LINE,
                f"{n} namespace(s) created and labelled",
                generation,
            )
        )

    if f.isolation:
        out.append(zone_condition(ZoneType.ISOLATED, False, *_joined(f.isolation), generation))
    elif not n:
        out.append(
            zone_condition(
                ZoneType.ISOLATED,
                False,
                ZoneReason.NO_NAMESPACES,
                "the zone owns no namespace yet",
                generation,
            )
        )
    else:
        peers = sorted(set(spec.network.allow_from) - {zone})
        allowed = f"; ingress allowed from zone(s) {', '.join(peers)}" if peers else ""
        egress = (
            f"; egress to {len(spec.network.egress)} CIDR rule(s) and DNS"
            if profile.egress_restricted
            else ""
        )
        msg = f"default deny {'+'.join(profile.default_deny)} {where}{allowed}{egress}"
        out.append(zone_condition(ZoneType.ISOLATED, True, ZoneReason.POLICIES_IN_PLACE, msg, generation))

    if f.quota:
        out.append(zone_condition(ZoneType.QUOTA_ENFORCED, False, *_joined(f.quota), generation))
    elif not spec.quota.hard:
        out.append(
            zone_condition(
                ZoneType.QUOTA_ENFORCED,
                False,
                ZoneReason.NO_QUOTA_SET,
                "spec.quota.hard is empty: no limits",
                generation,
            )
        )
    elif not n:
        out.append(
            zone_condition(ZoneType.QUOTA_ENFORCED, False, *_nowhere(f, "no quota enforced"), generation)
        )
    elif f.over_quota:
        over = ", ".join(f.over_quota)
        msg = f"usage exceeds the zone limit for {over}; new objects are refused until it falls"
        out.append(zone_condition(ZoneType.QUOTA_ENFORCED, False, ZoneReason.OVER_QUOTA, msg, generation))
    elif f.rebalancing:
        out.append(
            zone_condition(
                ZoneType.QUOTA_ENFORCED,
                True,
                ZoneReason.REBALANCING,
                "usage changed while moving limits; retrying",
                generation,
            )
        )
    else:
        out.append(
            zone_condition(
                ZoneType.QUOTA_ENFORCED,
                True,
                ZoneReason.QUOTA_IN_PLACE,
                f"zone limits split over ResourceQuotas {where}",
                generation,
            )
        )

    if f.access:
        out.append(zone_condition(ZoneType.ACCESS_SYNCED, False, *_joined(f.access), generation))
    elif not n and (spec.access.admins or spec.access.editors or spec.access.viewers):
        out.append(zone_condition(ZoneType.ACCESS_SYNCED, False, *_nowhere(f, "no group bound"), generation))
    else:
        groups = [
            f"{role}: {', '.join(g)}"
            for role, g in (
                ("admins", spec.access.admins),
                ("editors", spec.access.editors),
                ("viewers", spec.access.viewers),
            )
            if g
        ]
        msg = f"bound {where} ({'; '.join(groups)})" if groups else "no groups to bind"
        out.append(
            zone_condition(
                ZoneType.ACCESS_SYNCED,
                True,
                ZoneReason.BINDINGS_IN_PLACE if groups else ZoneReason.NO_GROUPS,
                msg,
                generation,
            )
        )

    out.append(_dr_condition(profile, dr_gaps, generation))

    blocking = [*f.namespaces, *f.isolation, *f.quota, *f.access, *f.references, *f.retained]
    if blocking:
        out.append(zone_condition(ZoneType.READY, False, *_joined(blocking), generation))
    else:
        out.append(
            zone_condition(
                ZoneType.READY, True, ZoneReason.ZONE_IN_LINE, f"every child is in line {where}", generation
            )
        )
    return out


def _dr_condition(profile: Profile, gaps: Mapping[str, list[str]], generation: int | None) -> dict[str, Any]:
    need = profile.dr_requirement
    if not gaps:
        msg = (
            f"no DRReplica is labelled {LABEL_ZONE} with this zone or lives in its namespaces; "
            f"each needs {need}"
        )
        return zone_condition(ZoneType.DR_PROTECTED, False, ZoneReason.NO_DR_REPLICAS, msg, generation)
    failing = {name: missing for name, missing in gaps.items() if missing}
    if failing:
        msg = "; ".join(f"{name} lacks {' and '.join(missing)}" for name, missing in sorted(failing.items()))
        return zone_condition(ZoneType.DR_PROTECTED, False, ZoneReason.REQUIREMENT_NOT_MET, msg, generation)
    return zone_condition(
        ZoneType.DR_PROTECTED,
        True,
        ZoneReason.REQUIREMENT_MET,
        f"{len(gaps)} DRReplica(s) each have {need}",
        generation,
    )


def zone_phase(conditions: Sequence[Mapping[str, Any]]) -> str:
    ready = find(conditions, "Ready")
    if ready and ready.get("status") == "True":
        return "Ready"
    synced = find(conditions, "NamespacesSynced")
    if synced and synced.get("reason") in ("NamespaceExists", "OwnedByOtherZone", "ClaimedByOtherZone"):
        return "Conflict"
    return "Degraded"


def transition_events(
    old: Sequence[Mapping[str, Any]] | None, new: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    """(type, reason, message) for every condition whose status or reason changed: a Warning when it went
    False, Normal `ZoneReady` when Ready turned True again. A new zone that is simply in line at once gets no
    Event (its Ready condition says so; an Event per zone would be one more write for each of a thousand
    zones applied together)."""
    events: list[tuple[str, str, str]] = []
    quiet = ("NoQuotaSet", "NoDRReplicas")  # states a new zone starts in, worth an Event only as a change
    for c in new:
        before = find(old, str(c["type"]))
        if before and (before.get("status"), before.get("reason")) == (c["status"], c["reason"]):
            continue
        if c["reason"] in quiet and before is None:
            continue
        if c["type"] == "DRProtected":
            kind = "Normal" if c["status"] == "True" else "Warning"
            events.append((kind, f"DR{c['reason']}", str(c["message"])))
        elif c["type"] == "Ready" and c["status"] == "True":
            if before is not None:
                events.append(("Normal", "ZoneReady", str(c["message"])))
        elif c["status"] == "False" and c["reason"] not in {e[1] for e in events}:
            events.append(("Warning", str(c["reason"]), str(c["message"])))
    return events
