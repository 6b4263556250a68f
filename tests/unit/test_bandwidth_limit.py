"""A target's bandwidthLimit: below 1Ki a second it was taken as no limit at all; now refused, naming why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from datacloud.api.drreplica import DRReplicaSpec


def spec(limit: str) -> DRReplicaSpec:
    target = {"name": "far", "centre": "remote", "bucket": "data-copy", "mode": "Scheduled"}
    target |= {"schedule": "0 2 * * *", "bandwidthLimit": limit}
    return DRReplicaSpec.model_validate(
        {"source": {"centre": "prod", "bucket": "data"}, "activeCentre": "prod", "targets": [target]}
    )


@pytest.mark.parametrize("limit", ["0", "500m", "1023", "0.5Ki", "1e999999999"])
def test_limits_under_1ki_or_uncomputable_are_refused(limit: str) -> None:
    with pytest.raises(ValidationError) as refused:
        spec(limit)
    assert "bandwidthLimit" in str(refused.value) or "bandwidth_limit" in str(refused.value)


@pytest.mark.parametrize("limit", ["1Ki", "1024", "100Mi", "1.5G", "2e9"])
def test_usable_limits_are_kept(limit: str) -> None:
    assert spec(limit).targets[0].bandwidth_limit == limit
