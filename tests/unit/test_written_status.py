"""The one carrier of "the status I last wrote": merge-patch semantics, and the body taking over once it
has caught up with the write."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.datazone import DataZoneStatus
from datacloud.builders.patch import apply_merge_patch, merge_patch
from datacloud.builders.written import WrittenStatus, older


def body(version: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": version}, "status": status}


def test_a_body_older_than_the_write_is_not_reconciled_from() -> None:
    written = WrittenStatus.start(body("10", {"phase": "Pending"}), DataZoneStatus)
    written.wrote({"phase": "Ready", "conditions": [{"type": "Ready"}]}, after="12")
    assert written.current(body("11", {"phase": "Pending"}))["phase"] == "Ready"
    assert written.current(body("10", {"phase": "Pending"}))["phase"] == "Ready"


def test_once_the_body_catches_up_it_is_the_truth() -> None:
    written = WrittenStatus.start(body("10", {}), DataZoneStatus)
    written.wrote({"phase": "Ready"}, after="12")
    assert written.current(body("13", {"phase": "Ready", "note": "set by someone else"})) == {
        "phase": "Ready",
        "note": "set by someone else",
    }


def test_without_a_version_the_written_status_is_kept() -> None:
    written = WrittenStatus.start(body("10", {"a": 1}), DataZoneStatus)
    written.wrote({"b": 2})
    assert written.current(body("99", {"a": 1})) == {"a": 1, "b": 2}


def test_resource_versions_compare_as_integers_or_not_at_all() -> None:
    assert older("99", "100")
    assert not older("100", "99")
    assert not older("100", "100")
    assert not older("", "100")
    assert not older("abc", "100")
    assert not older("099", "100")  # not a canonical integer: no claim either way


json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)
docs = st.dictionaries(st.text(max_size=3), json, max_size=5).map(
    lambda d: apply_merge_patch({}, d)  # a stored document holds no nulls
)


@given(docs, docs)
def test_applying_the_patch_between_two_documents_gives_the_second(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert apply_merge_patch(old, merge_patch(old, new)) == new


def test_with_no_write_pending_the_body_is_the_truth() -> None:
    written = WrittenStatus.start(body("10", {"phase": "Ready"}), DataZoneStatus)
    assert written.current(body("11", {"phase": "Degraded", "note": "someone else's"})) == {
        "phase": "Degraded",
        "note": "someone else's",
    }
