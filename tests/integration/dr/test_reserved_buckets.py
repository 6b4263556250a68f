"""The buckets the operator keeps its own records in are refused as a DRReplica's source or target by the
real API server, naming the field; a bucket that merely resembles one is accepted."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from datacloud.api.reserved import RESERVED_BUCKETS
from tests.support.cluster import Cluster
from tests.support.dr import replica

pytestmark = pytest.mark.integration


def _with(bucket_at: str, bucket: str) -> dict[str, Any]:
    doc = replica("reserved", "ordinary-bucket")
    if bucket_at == "source":
        doc["spec"]["source"]["bucket"] = bucket
    else:
        doc["spec"]["targets"][int(bucket_at)]["bucket"] = bucket
    return doc


@pytest.mark.parametrize("bucket", RESERVED_BUCKETS)
@pytest.mark.parametrize(
    ("where", "field"),
    [("source", "spec.source.bucket"), ("0", "spec.targets[0].bucket"), ("1", "spec.targets[1].bucket")],
)
def test_a_reserved_bucket_is_refused_naming_the_field(
    cluster: Cluster, dr_centres: Any, bucket: str, where: str, field: str
) -> None:
    done = cluster.apply(_with(where, bucket))
    assert done.returncode != 0, f"accepted {bucket} at {field}: {done.stdout}"
    assert field in done.stderr, done.stderr
    assert f"must not be {' or '.join(RESERVED_BUCKETS)}" in done.stderr


@pytest.mark.parametrize("bucket", ["datacloud-divergent2", "my-datacloud-audit", "datacloud-audits"])
def test_a_bucket_resembling_a_reserved_one_is_accepted(
    cluster: Cluster, dr_centres: Any, bucket: str
) -> None:
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=_yaml(_with("0", bucket)))
    assert done.returncode == 0, done.stderr


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, allow_unicode=True)
