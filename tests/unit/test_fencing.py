"""Fence statements of many replicas on one bucket policy: each owner's writes touch only its own
statements, so any interleaving of fences and unfences ends with every owner's last wish in force."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.failover import fencing

APP = {
    "Sid": "app",
    "Effect": "Allow",
    "Principal": {"AWS": ["app"]},
    "Action": ["s3:*"],
    "Resource": ["arn:aws:s3:::b/*"],
}
OWNERS = [fencing.owner_id("ns", f"replica-{i}", "source") for i in range(4)]
prefixes = st.text(min_size=0, max_size=12).filter(lambda p: not p.startswith("/"))
ops = st.lists(
    st.tuples(st.sampled_from(OWNERS), st.one_of(st.none(), st.integers(1, 50)), st.booleans()),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.dictionaries(st.sampled_from(OWNERS), prefixes))
def test_every_owner_keeps_its_last_fence_whatever_the_others_do(
    operations: list[tuple[str, int | None, bool]], prefix_of: dict[str, str]
) -> None:
    policy: str | None = json.dumps({"Version": "2012-10-17", "Statement": [APP]})
    last: dict[str, int | None] = {}
    for owner, epoch, probe in operations:
        prefix = prefix_of.get(owner, "")
        wanted = fencing.desired("b", prefix, owner, epoch, "probe-key" if probe else None)
        policy = fencing.rewritten(policy, owner, wanted)
        last[owner] = epoch
    for owner in OWNERS:
        assert fencing.fence_epoch(policy, owner) == last.get(owner)
    statements = fencing.statements(policy)
    assert APP in statements  # what the bucket's owner wrote is never dropped
    for s in statements:
        if s["Effect"] == "Deny":
            owner = s["Sid"].split("-")[2]
            assert s["Resource"] == [fencing.resource("b", prefix_of.get(owner, ""))]


def test_a_fence_covers_exactly_the_copys_prefix_as_a_folder() -> None:
    owner = OWNERS[0]
    deny = fencing.fence_statement("b", "photos", owner, 3)
    assert deny["Resource"] == ["arn:aws:s3:::b/photos/*"]  # not photos2/
    assert fencing.fence_statement("b", "", owner, 3)["Resource"] == ["arn:aws:s3:::b/*"]
    assert fencing.fence_statement("b", "图片/", owner, 3)["Resource"] == ["arn:aws:s3:::b/图片/*"]


def test_an_unfenced_owner_without_probe_leaves_no_policy_behind() -> None:
    owner = OWNERS[1]
    fenced = fencing.rewritten(None, owner, fencing.desired("b", "", owner, 4, None))
    assert fencing.fence_epoch(fenced, owner) == 4
    assert fencing.rewritten(fenced, owner, fencing.desired("b", "", owner, None, None)) is None


def test_a_whole_bucket_fence_of_an_earlier_version_is_removed_by_the_first_owner_writing() -> None:
    legacy = {
        "Sid": "datacloud-fence-epoch-2",
        "Effect": "Deny",
        "Principal": {"AWS": ["*"]},
        "Action": fencing.WRITE_ACTIONS,
        "Resource": ["arn:aws:s3:::b/*"],
    }
    old = json.dumps({"Version": "2012-10-17", "Statement": [APP, legacy]})
    owner = OWNERS[2]
    new = fencing.rewritten(old, owner, fencing.desired("b", "a/", owner, None, "probe"))
    sids = [s["Sid"] for s in fencing.statements(new)]
    assert "datacloud-fence-epoch-2" not in sids
    assert sids == ["app", f"datacloud-probe-{owner}"]
