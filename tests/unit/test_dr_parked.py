"""Parked keys of a continuous target and repairs of a scheduled sync, as a DRReplica reports them:
status figures, conditions, one Event per newly parked set, metrics."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.failover.topology import flows
from datacloud.metrics import REGISTRY
from datacloud.metrics import dr as dr_metrics
from datacloud.reconcile import dr_scheduled, dr_status
from datacloud.reconcile.dr_parked import ParkedNotices
from datacloud.replication.continuous import ReplicationStats
from tests.support.dr_status import SPEC, conditions, stats

WANTED = flows(SPEC, "prod")


def parked(lag: float, *keys: str) -> ReplicationStats:
    return replace(
        stats(lag),
        pending=len(keys),
        parked=len(keys),
        parked_keys=tuple((k, f"AccessDenied: {k} refused") for k in keys),
    )


def near(targets: list[dict[str, Any]]) -> dict[str, Any]:
    return next(t for t in targets if t["name"] == "near")


def test_a_parked_key_is_named_and_never_rpo_compliant_however_small_the_lag() -> None:
    targets = dr_status.target_entries([], WANTED, lambda _: parked(0.5, "a/b.txt"))
    entry = near(targets)
    assert entry["parkedKeys"] == 1
    assert entry["parked"] == [{"key": "a/b.txt", "reason": "AccessDenied: a/b.txt refused"}]
    assert entry["rpoCompliant"] is False  # 0.5 s is within the 30 s RPO, the key is not replicated at all
    out = conditions({"targets": targets, "activeCentre": "prod"})
    assert (out["RPOCompliant"]["status"], out["RPOCompliant"]["reason"]) == ("False", "KeysParked")
    assert "near (1 parked)" in out["RPOCompliant"]["message"]
    assert (out["ready"], out["Ready"]["reason"]) == (False, "KeysParked")


def test_parked_and_over_the_rpo_is_a_breach_that_names_both() -> None:
    targets = dr_status.target_entries([], WANTED, lambda _: parked(45.0, "k"))
    out = conditions({"targets": targets, "activeCentre": "prod"})
    assert out["RPOCompliant"]["reason"] == "RPOBreached"
    assert "over RPO: near" in out["RPOCompliant"]["message"]
    assert "near (1 parked)" in out["RPOCompliant"]["message"]


def test_once_the_key_is_copied_the_target_is_compliant_and_names_no_key() -> None:
    before = dr_status.target_entries([], WANTED, lambda _: parked(0.5, "k"))
    after = dr_status.target_entries(before, WANTED, lambda _: stats(0.5))
    entry = near(after)
    assert (entry["parkedKeys"], entry["rpoCompliant"]) == (0, True)
    assert "parked" not in entry
    assert conditions({"targets": after, "activeCentre": "prod"})["RPOCompliant"]["status"] == "True"


def test_status_names_a_bounded_number_of_keys_with_bounded_reasons() -> None:
    many = replace(
        stats(1.0),
        parked=500,
        parked_keys=tuple((f"k{i}", "x" * 5000) for i in range(100)),
    )
    entry = near(dr_status.target_entries([], WANTED, lambda _: many))
    assert entry["parkedKeys"] == 500
    assert len(entry["parked"]) == dr_status.PARKED_NAMED
    assert all(len(p["reason"]) == dr_status.REASON_CHARS for p in entry["parked"])


def test_an_event_once_per_newly_parked_set_not_per_tick() -> None:
    notices = ParkedNotices()
    empty = dr_status.target_entries([], WANTED, lambda _: stats(0.1))
    one = dr_status.target_entries([], WANTED, lambda _: parked(0.1, "a"))
    two = dr_status.target_entries([], WANTED, lambda _: parked(0.1, "a", "b"))
    assert notices.news([], empty) == []
    first = notices.news([], one)
    assert len(first) == 1
    assert "'a'" in first[0]
    assert "near" in first[0]
    assert [notices.news([], one) for _ in range(5)] == [[]] * 5  # the same set on later ticks: quiet
    second = notices.news([], two)
    assert len(second) == 1
    assert "'b'" in second[0]
    assert "'a'" not in second[0]
    assert notices.news([], one) == []  # fewer parked: nothing new
    assert notices.news([], empty) == []
    assert len(notices.news([], one)) == 1  # parked again after being copied: new again


def test_keys_already_parked_in_stored_status_are_not_announced_again_after_a_restart() -> None:
    stored = dr_status.target_entries([], WANTED, lambda _: parked(0.1, "a"))
    assert ParkedNotices().news(stored, stored) == []


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=400),
        min_size=1,
        max_size=30,
        unique=True,
    )
)
def test_any_key_names_survive_status_and_events(keys: list[str]) -> None:
    """Every Unicode class in keys: named as they are, the set bounded, one Event that parses."""
    targets = dr_status.target_entries([], WANTED, lambda _: parked(0.1, *keys))
    entry = near(targets)
    assert entry["parkedKeys"] == len(keys)
    assert [p["key"] for p in entry["parked"]] == keys[: dr_status.PARKED_NAMED]
    json.dumps(targets, ensure_ascii=False)
    notices = ParkedNotices()
    events = notices.news([], targets)
    assert len(events) == 1
    assert len(events[0]) < 1024  # an Event message stays short whatever the keys
    assert notices.news([], targets) == []


def sample(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_metrics_carry_parked_keys_and_repairs() -> None:
    labels = {"namespace": "ns-parked", "replica": "r", "target": "near"}
    targets = dr_status.target_entries([], WANTED, lambda _: parked(0.1, "a", "b"))
    dr_metrics.observe_replica("ns-parked", "r", {"targets": targets}, {}, False, {})
    assert sample("datacloud_dr_parked_keys", labels) == 2
    assert sample("datacloud_dr_verify_repaired_total", labels) == 0  # present before the first repair
    dr_metrics.count_sync("ns-parked", "r", "near", True, 10, repaired=3)
    dr_metrics.count_sync("ns-parked", "r", "near", True, 10)
    assert sample("datacloud_dr_verify_repaired_total", labels) == 3
    dr_metrics.forget_replica("ns-parked", "r")
    assert sample("datacloud_dr_parked_keys", labels) is None


def test_repairs_of_every_shard_are_added_up() -> None:
    def part(i: int, repaired: int) -> tuple[str, str]:
        body = {"ok": True, "repaired": repaired, "startedAt": "2026-01-01T02:00:01+00:00"}
        return f"summary-{i}-2", json.dumps({**body, "finishedAt": "2026-01-01T02:10:00+00:00"})

    data = dict([part(0, 2), part(1, 5)])
    total = dr_scheduled.combine(data, 2, "2026-01-01T02:00:00+00:00")
    assert total is not None
    assert total["repaired"] == 7


def test_datacloud_status_shows_parked_keys_beside_rpo_compliance() -> None:
    from rich.console import Console

    from datacloud.commands.status import replicas_table

    targets = [{"name": "near", "lagSeconds": 0.2, "rpoCompliant": False, "parkedKeys": 2}]
    drr = {
        "metadata": {"namespace": "ns", "name": "r"},
        "spec": {"targets": [{"name": "near", "centre": "c", "mode": "Continuous", "rpoTarget": "30s"}]},
        "status": {"phase": "Degraded", "targets": targets},
    }
    console = Console(width=200, record=True)
    console.print(replicas_table([drr], all_namespaces=False))
    assert "(2 parked)" in console.export_text()
