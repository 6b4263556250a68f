"""The event-loop copier for small objects, on its own, against real versitygw servers."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from datacloud.replication.copier import SOURCE_ETAG_META, Copied, SourceVanished
from datacloud.replication.engine import Replicator, SyncOptions
from datacloud.replication.errors import PermanentS3Error, RetryPolicy
from datacloud.replication.small_copier import SMALL_MAX, SmallCopier, TooLarge
from tests.support.replication import BucketPair

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=2, initial=0.05, maximum=0.2)


def run_small(replicator: Replicator, keys: list[str], target_bucket: str | None = None) -> dict[str, object]:
    outcomes: dict[str, object] = {}
    finished = threading.Event()

    def done(key: str, outcome: Copied | BaseException) -> None:
        outcomes[key] = outcome
        if len(outcomes) == len(keys):
            finished.set()

    target = replicator.target if target_bucket is None else replace(replicator.target, bucket=target_bucket)
    with SmallCopier(replicator.source, target, concurrency=4, retry=FAST, done=done) as small:
        for key in keys:
            small.submit(key)
        assert finished.wait(30)
    return outcomes


def test_copies_vanished_keys_and_too_large_objects_each_get_their_outcome(pair: BucketPair) -> None:
    pair.src.put(pair.src_bucket, "表/ok 1.csv", b"a,b\n", ContentType="text/csv", Metadata={"owner": "fj"})
    pair.src.put(pair.src_bucket, "grown.bin", b"x" * (SMALL_MAX + 1))
    with Replicator(*pair.locations(), SyncOptions(retry=FAST)) as replicator:
        outcomes = run_small(replicator, ["表/ok 1.csv", "gone.txt", "grown.bin"])

    copied = outcomes["表/ok 1.csv"]
    assert isinstance(copied, Copied)
    assert copied.size == 4
    head = pair.dst.head(pair.dst_bucket, "表/ok 1.csv")
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"] == {"owner": "fj", SOURCE_ETAG_META: copied.source_etag}
    assert isinstance(outcomes["gone.txt"], SourceVanished)
    assert isinstance(outcomes["grown.bin"], TooLarge)
    assert pair.dst.keys(pair.dst_bucket) == ["表/ok 1.csv"]


def test_a_missing_target_bucket_is_permanent(pair: BucketPair) -> None:
    pair.src.put(pair.src_bucket, "k", b"v")
    with Replicator(*pair.locations(), SyncOptions(retry=FAST)) as replicator:
        outcomes = run_small(replicator, ["k"], target_bucket="no-such-bucket-here")

    failure = outcomes["k"]
    assert isinstance(failure, PermanentS3Error)
    assert failure.code == "NoSuchBucket"


def test_a_stopped_target_is_retried_then_reported(pair: BucketPair) -> None:
    pair.src.put(pair.src_bucket, "k", b"v")
    with Replicator(*pair.locations(), SyncOptions(retry=FAST)) as replicator:
        pair.dst.centre.stop()
        try:
            outcomes = run_small(replicator, ["k"])
        finally:
            pair.dst.centre.restart()

    assert isinstance(outcomes["k"], ConnectionRefusedError)
