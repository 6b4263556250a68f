"""A DRReplica's status summary: target figures, conditions and phase from what was observed."""

from __future__ import annotations

import dataclasses

from datacloud.failover.topology import flows
from datacloud.reconcile import dr_status
from tests.support.dr_status import SPEC, conditions, stats


def test_lag_over_the_rpo_breaches_it_and_the_replica_is_not_ready() -> None:
    wanted = flows(SPEC, "prod")
    targets = dr_status.target_entries([], wanted, lambda _: stats(45.0))
    near = next(t for t in targets if t["name"] == "near")
    assert (near["lagSeconds"], near["rpoCompliant"], near["objectsCopied"]) == (45.0, False, 3)
    status = {"targets": targets, "activeCentre": "prod"}
    out = conditions(status)
    assert out["RPOCompliant"]["reason"] == "RPOBreached"
    assert "near" in out["RPOCompliant"]["message"]
    assert out["ready"] is False
    assert out["Ready"]["observedGeneration"] == 4
    assert status["estimatedDataLossSeconds"] == 45.0
    assert dr_status.phase(status, SPEC, False, False) == "Degraded"


def test_no_lag_yet_is_unknown_not_a_breach_and_the_replica_is_seeding_not_protected() -> None:
    status: dict[str, object] = {"targets": [], "activeCentre": "prod"}
    out = conditions(status)
    assert out["RPOCompliant"]["status"] == "Unknown"
    assert out["RPOCompliant"]["reason"] == "NotMeasured"
    # Before the first scan nothing is known to be copied: never Ready/Protected on that.
    assert out["ready"] is False
    assert out["Ready"]["reason"] == "Seeding"
    assert "near" in out["Ready"]["message"]
    status["conditions"] = [out["Ready"]]
    assert dr_status.phase(status, SPEC, False, False) == "Seeding"


def test_once_the_first_scan_measured_a_lag_within_the_rpo_the_replica_is_protected() -> None:
    wanted = flows(SPEC, "prod")
    status = {"targets": dr_status.target_entries([], wanted, lambda _: stats(2.0)), "activeCentre": "prod"}
    out = conditions(status)
    assert out["ready"] is True
    assert out["Ready"]["reason"] == "Protected"
    assert dr_status.phase(status, SPEC, True, False) == "Protected"


def test_two_writable_copies_suspect_a_split_brain() -> None:
    out = conditions({"targets": [], "activeCentre": "prod", "writableCopies": 2})
    assert (out["SingleWriter"]["status"], out["SingleWriter"]["reason"]) == ("False", "SplitBrainSuspected")


def test_unresolved_centres_name_the_problem() -> None:
    out = conditions({"targets": [], "activeCentre": "prod"}, [("CentreNotFound", "centre remote not found")])
    assert out["ReferencesValid"]["message"] == "centre remote not found"
    assert out["Ready"]["reason"] == "CentreNotFound"


def test_phase_follows_actions_and_the_active_centre() -> None:
    failing = {"activeCentre": "prod", "action": {"type": "Failover"}}
    assert dr_status.phase(failing, SPEC, True, True) == "FailingOver"
    assert dr_status.phase({"activeCentre": "samecity"}, SPEC, True, False) == "FailedOver"
    assert dr_status.phase({"activeCentre": "prod"}, SPEC, True, False) == "Protected"


def test_a_follower_that_has_not_scanned_yet_measures_nothing() -> None:
    """Before its first scan a follower's lag reads 0: that is no measurement, so no RPO verdict."""
    wanted = flows(SPEC, "prod")
    fresh = dataclasses.replace(stats(0.0), scans=0, last_error="NoSuchBucket: src")
    before = [{"name": "near", "lagSeconds": 1.0, "rpoCompliant": True}]
    targets = dr_status.target_entries(before, wanted, lambda _: fresh)
    near = next(t for t in targets if t["name"] == "near")
    assert "rpoCompliant" not in near
    assert "lagSeconds" not in near
    assert near["message"] == "NoSuchBucket: src"
    out = conditions({"targets": targets, "activeCentre": "prod"})
    assert (out["RPOCompliant"]["status"], out["RPOCompliant"]["reason"]) == ("Unknown", "NotMeasured")


def test_a_missing_source_withholds_the_endpoint_and_the_rpo() -> None:
    measured = dr_status.target_entries([], flows(SPEC, "prod"), lambda _: stats(0.5))
    missing = [("SourceBucketMissing", "bucket b does not exist in prod")]
    published = {"type": "EndpointPublished", "status": "True", "reason": "Published", "message": "m"}
    conds, ready = dr_status.summary(
        {"targets": measured, "activeCentre": "prod"}, SPEC, flows(SPEC, "prod"), missing, published, 2
    )
    by_type = {c["type"]: c for c in conds}
    assert ready is False
    assert (by_type["EndpointPublished"]["status"], by_type["EndpointPublished"]["reason"]) == (
        "False",
        "SourceBucketMissing",
    )
    assert by_type["RPOCompliant"]["status"] == "Unknown"
    assert "does not exist" in by_type["RPOCompliant"]["message"]
    assert dr_status.source_missing(missing)
    assert not dr_status.source_missing([])


def test_the_headline_is_the_worst_lag_and_the_oldest_full_sync() -> None:
    wanted = flows(SPEC, "prod")
    scheduled = [f.target for f in wanted if f.mode == "Scheduled"]
    targets = [
        {"name": "near", "lagSeconds": 0.5},
        *({"name": n, "lagSeconds": 3600.0 + i, "lastGoodSyncStart": f"2026-01-0{i + 1}T02:00:00+00:00"}
          for i, n in enumerate(scheduled)),
    ]  # fmt: skip
    out = dr_status.headline({"targets": targets}, wanted)
    assert out["worstLagTarget"] == scheduled[-1]
    assert out["worstLagSeconds"] == 3600.0 + len(scheduled) - 1
    assert out["lastFullSyncTime"] == "2026-01-01T02:00:00+00:00"
    never = dr_status.headline({"targets": [{"name": "near", "lagSeconds": 0.5}]}, wanted)
    assert never["lastFullSyncTime"] is None  # a Scheduled target never synced: no date to flatter with
    assert dr_status.headline({}, wanted)["worstLagSeconds"] is None


def test_no_rpo_target_is_not_reported_as_measured_compliance() -> None:
    wanted = [dataclasses.replace(f, rpo_s=None) for f in flows(SPEC, "prod")]
    conds, _ = dr_status.summary({"targets": [], "activeCentre": "prod"}, SPEC, wanted, [], None, 1)
    rpo = next(c for c in conds if c["type"] == "RPOCompliant")
    assert (rpo["reason"], rpo["message"]) == (
        "NoRPOTarget",
        "no target sets an rpoTarget: nothing to measure against",
    )
    measured = dr_status.target_entries([], flows(SPEC, "prod"), lambda _: stats(2.0))
    conds, _ = dr_status.summary(
        {"targets": measured, "activeCentre": "prod"},
        SPEC,
        [f for f in flows(SPEC, "prod") if f.mode == "Continuous"],
        [],
        None,
        1,
    )
    rpo = next(c for c in conds if c["type"] == "RPOCompliant")
    assert rpo["reason"] == "WithinRPO"
    assert "near 2.0s of" in rpo["message"]
