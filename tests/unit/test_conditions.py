from datacloud.api.conditions import DataCentreReason as R
from datacloud.api.conditions import DataCentreType as T
from datacloud.api.conditions import datacentre
from datacloud.builders.conditions import find, merge_conditions


def test_transition_time_moves_only_when_status_changes() -> None:
    ok, still = (
        datacentre(T.READY, True, R.ANSWERING, "ok"),
        datacentre(T.READY, True, R.ANSWERING, "still ok"),
    )
    first = merge_conditions(None, [ok], "2026-01-01T00:00:00Z")
    same = merge_conditions(first, [still], "2026-01-01T00:01:00Z")
    flipped = merge_conditions(
        same, [datacentre(T.READY, False, R.UNREACHABLE, "down")], "2026-01-01T00:02:00Z"
    )
    assert find(same, "Ready") == {**find(first, "Ready"), "message": "still ok"}  # type: ignore[dict-item]
    ready = find(flipped, "Ready")
    assert ready is not None
    assert ready["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    assert ready["status"] == "False"


def test_other_conditions_are_kept_and_sorted() -> None:
    base = merge_conditions(None, [datacentre(T.READY, True, R.ANSWERING, "")], "t0")
    unknown = datacentre(T.READY, None, R.SECRET_NOT_FOUND, "", generation=3)
    out = merge_conditions(base, [datacentre(T.PROBING, False, R.SECRET_NOT_FOUND, "", 3), unknown], "t1")
    assert [c["type"] for c in out] == ["Probing", "Ready"]
    assert out[1]["status"] == "Unknown"
    assert out[0]["observedGeneration"] == 3
