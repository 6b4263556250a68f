"""The active copy a spec change left behind, found from what status says was published last (a spec
changed while no operator ran: the new process never saw the old spec)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.topology import Copy, copies
from datacloud.reconcile.dr_writers import published_copy, removed


def spec(bucket: str = "data", prefix: str = "", target_bucket: str = "data") -> DRReplicaSpec:
    target = {"name": "near", "centre": "samecity", "bucket": target_bucket, "mode": "Continuous"}
    return DRReplicaSpec.model_validate(
        {
            "source": {"centre": "prod", "bucket": bucket, "prefix": prefix},
            "activeCentre": "prod",
            "targets": [target],
        }
    )


def endpoint(**over: Any) -> dict[str, Any]:
    return {"centre": "prod", "bucket": "data", "prefix": "", "copyName": "source", **over}


def test_a_source_moved_to_another_bucket_leaves_the_published_copy_behind() -> None:
    old = published_copy(endpoint())
    assert old == Copy("source", "prod", "data", "")
    assert removed(old, spec(bucket="data-v2"), "prod") == old


def test_a_copy_the_spec_still_has_is_not_left_behind() -> None:
    old = published_copy(endpoint())
    assert old is not None
    assert removed(old, spec(), "prod") is None
    # After a failover the old source is a passive copy (fenced, not released).
    failed_over = published_copy(endpoint(centre="samecity", copyName="near"))
    assert failed_over is not None
    assert removed(failed_over, spec(), "prod") is None


def test_the_same_bucket_under_another_prefix_carries_the_new_lease_instead() -> None:
    old = published_copy(endpoint())
    assert old is not None
    assert removed(old, spec(prefix="v2/"), "prod") is None


def test_status_without_the_copy_name_names_nothing() -> None:
    """Published by an operator that did not record the copy: nothing is released on a guess."""
    assert published_copy(None) is None
    assert published_copy({}) is None
    assert published_copy({"centre": "prod", "bucket": "data"}) is None
    assert published_copy(endpoint(copyName="")) is None


BUCKETS = st.sampled_from(["data", "data-v2", "other"])
PREFIXES = st.sampled_from(["", "a/", "b/"])


@given(BUCKETS, PREFIXES, BUCKETS, BUCKETS, PREFIXES)
def test_left_behind_exactly_when_no_copy_of_the_spec_and_not_the_active_bucket(
    old_bucket: str, old_prefix: str, bucket: str, target_bucket: str, prefix: str
) -> None:
    old = Copy("source", "prod", old_bucket, old_prefix)
    new = spec(bucket, prefix, target_bucket)
    kept = any((c.centre, c.bucket, c.prefix) == ("prod", old_bucket, old_prefix) for c in copies(new))
    expected = None if kept or old_bucket == bucket else old
    assert removed(old, new, "prod") == expected
