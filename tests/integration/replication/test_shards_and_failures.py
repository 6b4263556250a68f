"""Sharded syncs, bandwidth, permanent errors and a target that goes away mid-sync."""

from __future__ import annotations

import threading
import time

import pytest

from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.replication.engine import SyncOptions, full_sync
from datacloud.replication.errors import PermanentS3Error, RetryPolicy
from datacloud.replication.locations import Location
from datacloud.replication.shard import Shard, shard_of
from tests.support.replication import BucketPair, Store

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=3, initial=0.05, maximum=0.5)


def test_shards_together_copy_everything_exactly_once(pair: BucketPair) -> None:
    keys = [f"s/{i:04d}" for i in range(240)]
    pair.src.put_many(pair.src_bucket, {k: k.encode() for k in keys})
    copied_by: dict[int, set[str]] = {}
    before: set[str] = set()

    for index in range(3):
        result = full_sync(*pair.locations(), SyncOptions(shard=Shard(index, 3), retry=FAST))
        after = set(pair.dst.keys(pair.dst_bucket))
        copied_by[index] = after - before
        assert result.objects_copied == len(copied_by[index])
        before = after

    assert set().union(*copied_by.values()) == set(keys)  # no gap
    assert sum(len(c) for c in copied_by.values()) == len(keys)  # no overlap
    for index, copied in copied_by.items():
        assert copied
        assert all(shard_of(k, 3) == index for k in copied)
    assert pair.in_sync()


def test_mirror_deletes_respect_the_shard(pair: BucketPair) -> None:
    extras = [f"extra-{i}" for i in range(30)]
    pair.dst.put_many(pair.dst_bucket, {k: b"x" for k in extras})

    result = full_sync(*pair.locations(), SyncOptions(shard=Shard(1, 2), delete="mirror", retry=FAST))

    remaining = set(pair.dst.keys(pair.dst_bucket))
    assert remaining == {k for k in extras if shard_of(k, 2) == 0}
    assert result.objects_deleted == len(extras) - len(remaining)


def test_bandwidth_limited_sync_still_copies_everything(pair: BucketPair) -> None:
    pair.src.put_many(pair.src_bucket, {f"bw{i}": bytes(64 * 1024) for i in range(8)})

    result = full_sync(*pair.locations(), SyncOptions(bandwidth=2 * 1024 * 1024, retry=FAST))

    assert result.ok
    assert result.bytes_copied == 8 * 64 * 1024
    assert pair.in_sync()


def test_unknown_bucket_is_a_permanent_error(pair: BucketPair) -> None:
    source, _ = pair.locations()
    missing = Location(pair.dst.endpoint, "no-such-bucket-here")

    with pytest.raises(PermanentS3Error) as caught:
        full_sync(source, missing, SyncOptions(retry=FAST))

    assert caught.value.code == "NoSuchBucket"
    assert "no-such-bucket-here" in str(caught.value)


def test_wrong_secret_fails_at_once_without_revealing_it(pair: BucketPair) -> None:
    source, target = pair.locations()
    secret = "definitely-not-the-secret-0123456789"
    wrong = Location(
        S3Endpoint(target.endpoint.url, "us-east-1", S3Credentials(pair.dst.centre.access_key, secret)),
        target.bucket,
    )

    with pytest.raises(PermanentS3Error) as caught:
        full_sync(source, wrong, SyncOptions(retry=FAST))

    assert caught.value.code == "SignatureDoesNotMatch"
    assert secret not in str(caught.value)


def test_target_that_goes_away_mid_sync_is_caught_up(
    centres: tuple[Store, Store], spare_centre: Store
) -> None:
    src = centres[0]
    src_bucket, dst_bucket = src.bucket("away"), spare_centre.bucket("away")
    src.put_many(src_bucket, {f"o{i:03d}": bytes(16 * 1024) for i in range(60)})
    patient = RetryPolicy(attempts=30, initial=0.1, maximum=0.5)
    # Slow enough that the target is stopped while copies are in progress.
    options = SyncOptions(bandwidth=256 * 1024, concurrency=4, retry=patient)
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = full_sync(src.location(src_bucket), spare_centre.location(dst_bucket), options)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 20
    while len(spare_centre.keys(dst_bucket)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.is_alive(), "the sync finished before the target went away"
    spare_centre.centre.stop()
    time.sleep(2)
    spare_centre.centre.restart()
    worker.join(120)

    result = outcome["result"]
    assert not worker.is_alive()
    assert result.ok, result.failed  # type: ignore[attr-defined]
    assert src.digests(src_bucket) == spare_centre.digests(dst_bucket)
