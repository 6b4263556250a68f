"""Verification that proves and repairs, and one object failing without stopping the others (full and
continuous), against real versitygw centres."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from datacloud.adapters.s3_wire import WireClient, error_from
from datacloud.replication.continuous import ContinuousReplicator
from datacloud.replication.engine import Replicator, SyncOptions, full_sync
from datacloud.replication.errors import RetryPolicy
from tests.support.replication import BucketPair, wait_until

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=2, initial=0.05, maximum=0.2)
MIB = 1024 * 1024


def tamper(pair: BucketPair, key: str) -> None:
    """Change a copy's bytes but not its size, keeping its metadata (recorded source ETag included):
    what a bad disk, or a writer that is not the replicator, leaves behind."""
    wire = WireClient(pair.dst.endpoint)
    try:
        got = wire.get_object(Bucket=pair.dst_bucket, Key=key)
        body = got["Body"].read()
        changed = bytes([body[0] ^ 0xFF]) + body[1:]
        extra = {"ContentType": got["ContentType"]} if got.get("ContentType") else {}
        wire.put_object(Bucket=pair.dst_bucket, Key=key, Body=changed, Metadata=got["Metadata"], **extra)
    finally:
        wire.close()


@pytest.mark.parametrize("mode", ["size-etag", "sha256"])
def test_a_tampered_copy_is_found_repaired_and_reported(pair: BucketPair, mode: str) -> None:
    for i in range(5):
        pair.src.put(pair.src_bucket, f"k{i}.txt", f"content {i}".encode() * 10)
    assert full_sync(*pair.locations(), SyncOptions(retry=FAST)).ok
    tamper(pair, "k3.txt")
    assert not pair.in_sync()

    result = full_sync(*pair.locations(), SyncOptions(retry=FAST, verify=mode))  # type: ignore[arg-type]

    assert result.repaired == 1
    assert result.repaired_keys == ["k3.txt"]
    assert result.mismatch_count == 0
    assert result.verified == 4
    assert result.ok
    assert pair.in_sync()


def test_multipart_copies_are_proven_from_their_parts_and_repaired(pair: BucketPair) -> None:
    """A copy made in parts has an ETag of its own: size-etag recomputes it from the source's bytes in
    the recorded part size, so an untouched copy passes and a replaced one is found."""
    body = bytes(range(256)) * (11 * MIB // 256)
    pair.src.put(pair.src_bucket, "whole.bin", body)  # one PUT: the source's ETag is its MD5
    pair.src.put(pair.src_bucket, "other.bin", body[::-1])
    options = SyncOptions(retry=FAST, multipart_threshold=5 * MIB, part_size=5 * MIB, verify="size-etag")
    first = full_sync(*pair.locations(), options)
    assert first.ok
    assert (first.verified, first.repaired) == (2, 0)
    assert "-" in pair.dst.head(pair.dst_bucket, "whole.bin")["ETag"]  # copied in parts

    clean = full_sync(*pair.locations(), options)  # proven again, from the source, in a later run
    assert (clean.verified, clean.repaired, clean.objects_copied) == (2, 0, 0)

    tamper(pair, "other.bin")  # now a single-part object with the same size and metadata
    repaired = full_sync(*pair.locations(), options)
    assert repaired.repaired_keys == ["other.bin"]
    assert pair.in_sync()


def blocked_key(pair: BucketPair) -> str:
    """A key the target cannot store: it already holds an object named like the key's folder (on the
    gateway's file system, a file where a directory must go). Retain keeps that object."""
    pair.dst.put(pair.dst_bucket, "blocked", b"a file in the way")
    pair.src.put(pair.src_bucket, "blocked/inner.txt", b"cannot land")
    return "blocked/inner.txt"


def test_one_failing_object_does_not_stop_the_others(pair: BucketPair) -> None:
    bad = blocked_key(pair)
    for i in range(30):
        pair.src.put(pair.src_bucket, f"ok/{i:02}.txt", b"fine %d" % i)

    result = full_sync(*pair.locations(), SyncOptions(retry=FAST, concurrency=2))

    assert result.completed
    assert result.objects_copied == 30
    assert result.errors == 1
    assert [f["key"] for f in result.failed] == [bad]
    assert result.failed[0]["reason"]
    assert not result.ok


def test_the_cli_names_the_failed_key_and_exits_1_at_the_end(pair: BucketPair, tmp_path: Path) -> None:
    bad = blocked_key(pair)
    pair.src.put(pair.src_bucket, "good.txt", b"good")
    src_creds, dst_creds = pair.src.credentials_file(tmp_path), pair.dst.credentials_file(tmp_path)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "datacloud.cli",
            "sync",
            f"{pair.src.centre.endpoint}/{pair.src_bucket}",
            f"{pair.dst.centre.endpoint}/{pair.dst_bucket}",
            "--src-credentials",
            str(src_creds),
            "--dst-credentials",
            str(dst_creds),
            "--retries",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert f"datacloud sync: failed: {bad}: " in run.stderr
    assert "Traceback" not in run.stderr
    assert pair.dst.keys(pair.dst_bucket, "good") == ["good.txt"]


def modules_loaded_by_a_sync(pair: BucketPair, tmp_path: Path, heavy: tuple[str, ...]) -> list[str]:
    """Which of `heavy` a `datacloud sync` of the pair's buckets, run in a fresh interpreter, imported."""
    src_creds, dst_creds = pair.src.credentials_file(tmp_path), pair.dst.credentials_file(tmp_path)
    probe = (
        "import sys, atexit\n"
        f"heavy = {heavy!r}\n"
        "atexit.register(lambda: print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        "from datacloud.cli import main\n"
        f"code = main(['sync', {pair.src.centre.endpoint + '/' + pair.src_bucket!r}, "
        f"{pair.dst.centre.endpoint + '/' + pair.dst_bucket!r}, '--src-credentials', {str(src_creds)!r}, "
        f"'--dst-credentials', {str(dst_creds)!r}])\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    loaded: list[str] = json.loads(run.stderr.strip().splitlines()[-1].replace("'", '"'))
    return loaded


def test_a_sync_of_empty_buckets_loads_neither_kubernetes_nor_boto3(pair: BucketPair, tmp_path: Path) -> None:
    assert modules_loaded_by_a_sync(pair, tmp_path, ("kubernetes", "boto3", "kopf")) == []


def test_a_sync_that_copies_loads_no_botocore_urllib3_tenacity_or_http_client(
    pair: BucketPair, tmp_path: Path
) -> None:
    """Start-up: a sync whose requests all succeed needs none of botocore's, urllib3's, tenacity's or
    http.client's code (together 45-60 ms of a run's start-up, before the first byte moves); the engine
    asks for them only when a request fails."""
    pair.src.put(pair.src_bucket, "small.txt", b"a small object")
    pair.src.put(pair.src_bucket, "large.bin", bytes(range(256)) * (8 * 1024 + 1))  # > 1 MiB: streamed
    heavy = ("botocore", "urllib3", "tenacity", "http.client", "email")
    assert modules_loaded_by_a_sync(pair, tmp_path, heavy) == []
    assert sorted(pair.dst.keys(pair.dst_bucket)) == ["large.bin", "small.txt"]


def test_continuous_mode_parks_a_permanently_failing_key(
    pair: BucketPair, caplog: pytest.LogCaptureFixture
) -> None:
    bad = blocked_key(pair)
    caplog.set_level(logging.WARNING, logger="datacloud.replication.continuous")
    follower = ContinuousReplicator(
        *pair.locations(),
        SyncOptions(retry=FAST, concurrency=2),
        poll_interval=0.1,
        retry_delay=0.05,
        max_retry_delay=3600.0,  # once parked, not tried again within this test
    ).start()
    try:
        pair.src.put(pair.src_bucket, "after.txt", b"copied all the same")
        wait_until(lambda: follower.stats().parked == 1, what="the blocked key to be parked")
        wait_until(lambda: "after.txt" in pair.dst.keys(pair.dst_bucket), what="the other key to be copied")
        parked_at = follower.stats()
        wait_until(lambda: follower.stats().scans >= parked_at.scans + 5, what="five more scans")
        later = follower.stats()
    finally:
        follower.stop()
    assert [k for k, _ in later.parked_keys] == [bad]
    assert later.failures == parked_at.failures  # scans do not undo the backoff: no retry loop
    assert later.pending == 1  # still owed, and counted in the lag
    parked_lines = [r for r in caplog.records if "parked" in r.getMessage() and bad in r.getMessage()]
    assert len(parked_lines) == 1


def test_a_key_refused_permanently_is_named_and_the_pass_goes_on(
    pair: BucketPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal that would be permanent for a whole bucket (SignatureDoesNotMatch, as non-ASCII metadata
    once caused) is, for one key among successes, that key's failure: the pass copies the rest."""
    for i in range(10):
        pair.src.put(pair.src_bucket, f"k{i}.txt", b"x")
    # A bandwidth limit keeps the pass on the threaded copier, whose target client is wrapped here.
    with Replicator(*pair.locations(), SyncOptions(retry=FAST, bandwidth=1 << 30, concurrency=2)) as rep:
        assert rep.target.wire is not None
        real_put = rep.target.wire.put_object

        def refusing_put(**kwargs: Any) -> dict[str, Any]:
            if kwargs["Key"] == "k3.txt":
                raise error_from(403, SIGNATURE_REFUSED, "PutObject")
            return real_put(**kwargs)

        monkeypatch.setattr(rep.target.wire, "put_object", refusing_put)
        result = rep.full_sync()

    assert result.completed
    assert result.objects_copied == 9
    assert result.failed == [
        {"key": "k3.txt", "reason": f"SignatureDoesNotMatch on PutObject at {rep.target.where}: refused"}
    ]
    assert not result.ok


SIGNATURE_REFUSED = b"<Error><Code>SignatureDoesNotMatch</Code><Message>refused</Message></Error>"
