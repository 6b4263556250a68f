"""The operator's own buckets are refused by the typed models too (a spec admitted before the CEL rule
existed becomes InvalidSpec, not a replica that mirrors over the quarantine)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.api.reserved import RESERVED_BUCKETS, RESERVED_MESSAGE


def spec(source: str, target: str) -> dict[str, Any]:
    return {
        "source": {"centre": "a", "bucket": source},
        "activeCentre": "a",
        "targets": [{"name": "t", "centre": "b", "bucket": target, "mode": "Continuous", "rpoTarget": "30s"}],
    }


@pytest.mark.parametrize("bucket", RESERVED_BUCKETS)
def test_reserved_buckets_are_refused_as_source_and_target(bucket: str) -> None:
    for where, doc in (("source", spec(bucket, "fine")), ("targets", spec("fine", bucket))):
        with pytest.raises(ValidationError) as err:
            DRReplicaSpec.model_validate(doc)
        assert err.value.errors()[0]["loc"][0] == where
        assert RESERVED_MESSAGE in str(err.value)


@given(st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True))
def test_every_other_bucket_name_is_accepted(bucket: str) -> None:
    if bucket in RESERVED_BUCKETS:
        return
    assert DRReplicaSpec.model_validate(spec(bucket, "other-bucket")).source.bucket == bucket
