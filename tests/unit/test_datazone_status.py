"""Zone conditions, phase and events from what a reconcile found."""

from __future__ import annotations

from datacloud.api.datazone import DataZoneSpec
from datacloud.builders.conditions import find
from datacloud.builders.datazone_profile import profile_for
from datacloud.builders.datazone_status import Findings, transition_events, zone_conditions, zone_phase

SPEC = DataZoneSpec.model_validate(
    {
        "department": {"name": "d"},
        "classification": "Important",
        "namespaces": ["a"],
        "quota": {"hard": {"pods": "3"}},
        "access": {"admins": ["fj-admins"]},
    }
)


def test_all_in_line_is_ready_and_dr_is_separate() -> None:
    conds = zone_conditions(Findings(active=["a"]), "z", profile_for("Important"), SPEC, {}, 3)
    assert find(conds, "Ready")["status"] == "True"  # type: ignore[index]
    assert find(conds, "DRProtected")["reason"] == "NoDRReplicas"  # type: ignore[index]
    assert all(c["observedGeneration"] == 3 for c in conds)
    assert zone_phase(conds) == "Ready"


def test_conflict_names_the_namespace_and_blocks_ready() -> None:
    f = Findings(active=["a"], namespaces=[("OwnedByOtherZone", "namespace b belongs to zone other")])
    conds = zone_conditions(f, "z", profile_for("Important"), SPEC, {"dr/x": []}, 1)
    ready = find(conds, "Ready")
    assert ready["status"] == "False"
    assert "namespace b belongs to zone other" in ready["message"]
    assert find(conds, "DRProtected")["status"] == "True"  # type: ignore[index]
    assert zone_phase(conds) == "Conflict"


def test_over_quota_and_events() -> None:
    f = Findings(active=["a"], over_quota=["pods"])
    conds = zone_conditions(f, "z", profile_for("Important"), SPEC, {}, 1)
    assert find(conds, "QuotaEnforced")["reason"] == "OverQuota"  # type: ignore[index]
    events = transition_events(None, conds)
    assert ("Warning", "OverQuota") in [(e[0], e[1]) for e in events]
    assert not any(e[1] == "DRNoDRReplicas" for e in events)  # a new zone starting without DR is not news
    assert transition_events(conds, conds) == []


def test_zone_ready_is_news_only_after_trouble() -> None:
    ready = zone_conditions(Findings(active=["a"]), "z", profile_for("Important"), SPEC, {}, 1)
    assert transition_events(None, ready) == []  # a new zone in line at once: its Ready condition says so
    trouble = Findings(active=["a"], isolation=[("NetworkPolicyRejected", "refused")])
    degraded = zone_conditions(trouble, "z", profile_for("Important"), SPEC, {}, 1)
    assert ("Normal", "ZoneReady") in [(e[0], e[1]) for e in transition_events(degraded, ready)]


def test_a_zone_owning_no_namespace_enforces_nothing() -> None:
    """A zone in Conflict (its only namespace taken) claims no quota and no bindings."""
    f = Findings(active=[], namespaces=[("NamespaceExists", "namespace a exists and is not taken over")])
    conds = zone_conditions(f, "z", profile_for("Important"), SPEC, {}, 1)
    for type_ in ("QuotaEnforced", "AccessSynced", "Isolated", "Ready"):
        c = find(conds, type_)
        assert c is not None
        assert c["status"] == "False", (type_, c)
    quota, access = find(conds, "QuotaEnforced"), find(conds, "AccessSynced")
    assert quota is not None
    assert access is not None
    assert (quota["reason"], access["reason"]) == ("NoNamespaces", "NoNamespaces")
    assert "NamespaceExists" in quota["message"]
    assert "namespace a exists" in quota["message"]
    assert zone_phase(conds) == "Conflict"
    fresh = zone_conditions(Findings(), "z", profile_for("Important"), SPEC, {}, 1)
    assert find(fresh, "QuotaEnforced")["reason"] == "NoNamespaces"  # type: ignore[index]
