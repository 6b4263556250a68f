from datacloud.builders.conditions import condition, find, merge_conditions


def test_transition_time_moves_only_when_status_changes() -> None:
    first = merge_conditions(None, [condition("Ready", True, "Answering", "ok")], "2026-01-01T00:00:00Z")
    same = merge_conditions(
        first, [condition("Ready", True, "Answering", "still ok")], "2026-01-01T00:01:00Z"
    )
    flipped = merge_conditions(
        same, [condition("Ready", False, "Unreachable", "down")], "2026-01-01T00:02:00Z"
    )
    assert find(same, "Ready") == {**find(first, "Ready"), "message": "still ok"}  # type: ignore[dict-item]
    ready = find(flipped, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    assert ready["status"] == "False"


def test_other_conditions_are_kept_and_sorted() -> None:
    base = merge_conditions(None, [condition("Ready", True, "A", "")], "t0")
    out = merge_conditions(base, [condition("Available", None, "B", "", generation=3)], "t1")
    assert [c["type"] for c in out] == ["Available", "Ready"]
    assert out[0]["status"] == "Unknown"
    assert out[0]["observedGeneration"] == 3
