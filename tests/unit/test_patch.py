from datacloud.builders.patch import merge_patch


def test_removed_nested_keys_are_nulled() -> None:
    old = {"action": {"type": "Switchover", "finishedAt": "t1", "result": "Succeeded"}, "phase": "Protected"}
    new = {"action": {"type": "Failback", "startedAt": "t2"}, "phase": "Switching"}
    assert merge_patch(old, new) == {
        "action": {"type": "Failback", "startedAt": "t2", "finishedAt": None, "result": None},
        "phase": "Switching",
    }


def test_unchanged_documents_give_an_empty_patch_and_lists_are_replaced() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    assert merge_patch(doc, doc) == {}
    assert merge_patch(doc, {"a": {"b": [1]}, "c": 1}) == {"a": {"b": [1]}}
    assert merge_patch({}, {"x": None}) == {"x": None}
