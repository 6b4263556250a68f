"""The unreconciled-objects count: status missing or behind the generation, past the threshold."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.metrics import unreconciled as u


def body(generation: int, observed: int | None, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed, "phase": "Protected"}
    return {"metadata": {"generation": generation, "creationTimestamp": created}, "status": status}


def test_missing_status_counts_from_creation() -> None:
    kind = "t-missing"
    created = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    u.observe(kind, ("ns", "a"), body(1, None), now=created + 5)
    assert u.summary(now=created + 30)[kind] == (0, 30.0)
    assert u.summary(now=created + 61)[kind][0] == 1  # waited since creation, not since first seen
    u.observe(kind, ("ns", "a"), body(1, 1), now=created + 62)
    assert u.summary(now=created + 500)[kind] == (0, 0.0)


def test_behind_generation_counts_from_first_seen_and_deletion_forgets() -> None:
    kind = "t-behind"
    u.observe(kind, ("", "z"), body(3, 2), now=1000.0)
    u.observe(kind, ("", "z"), body(3, 2), now=1050.0)  # a later event does not restart the clock
    assert u.summary(now=1061.0)[kind] == (1, 61.0)
    u.forget(kind, ("", "z"))
    assert u.summary(now=2000.0)[kind] == (0, 0.0)


def test_an_object_being_deleted_is_not_counted() -> None:
    deleting = body(4, 3)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    assert not u.behind(deleting)


def test_a_tracked_kind_is_exported_as_zero() -> None:
    u.track("t-empty")
    assert u.summary()["t-empty"] == (0, 0.0)


@given(st.integers(1, 10**6), st.one_of(st.none(), st.integers(0, 10**6)))
def test_behind_means_status_missing_or_another_generation(generation: int, observed: int | None) -> None:
    """(Objects not being deleted.)"""
    assert u.behind(body(generation, observed)) == (observed is None or observed != generation)
