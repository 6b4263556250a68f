from __future__ import annotations

from datacloud.replication.copier import SOURCE_ETAG_META
from datacloud.replication.verify import copy_matches, sampled


def test_sample_is_deterministic_and_proportional() -> None:
    keys = [f"k{i}" for i in range(10_000)]
    picked = [k for k in keys if sampled(k, 10)]
    assert picked == [k for k in keys if sampled(k, 10)]
    assert 800 < len(picked) < 1200
    assert all(sampled(k, 100) for k in keys[:100])
    assert not any(sampled(k, 0) for k in keys[:100])
    assert set(picked) <= {k for k in keys if sampled(k, 50)}  # a bigger sample contains a smaller one


def test_copy_matches_by_recorded_or_own_etag() -> None:
    multipart_copy = {"ContentLength": 10, "ETag": '"abc-2"', "Metadata": {SOURCE_ETAG_META: "src"}}
    plain_copy = {"ContentLength": 10, "ETag": '"src"', "Metadata": {}}
    assert copy_matches(10, "src", multipart_copy)
    assert copy_matches(10, "src", plain_copy)
    assert not copy_matches(11, "src", multipart_copy)
    assert not copy_matches(10, "other", multipart_copy)
    assert not copy_matches(10, "src", None)
