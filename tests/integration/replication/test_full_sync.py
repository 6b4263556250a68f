"""Full sync against real versitygw centres: content, metadata, awkward keys, sizes, deletes, pagination."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest

from datacloud.replication.copier import SOURCE_ETAG_META
from datacloud.replication.engine import Replicator, SyncOptions, full_sync
from datacloud.replication.errors import RetryPolicy
from tests.support.replication import BucketPair

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
FAST = RetryPolicy(attempts=3, initial=0.05, maximum=0.5)

AWKWARD_KEYS = [
    "福建/数据/公共 数据.csv",
    "with space.txt",
    "plus+sign.txt",
    "percent%20encoded%2Fnot.txt",
    "hash#tag.txt",
    "question?mark=1&and=2.txt",
    'quote\'s "double".txt',
    "tilde~star*paren(1)[2]{3}.txt",
    "semi;colon:comma,at@dollar$.txt",
    "emoji-🚀.bin",
    "deep/a/b/c/d/e/f/g.txt",
]


def test_copies_awkward_keys_zero_bytes_and_folder_markers_then_is_idempotent(pair: BucketPair) -> None:
    objects = {key: key.encode() * 3 for key in AWKWARD_KEYS}
    objects["empty.txt"] = b""
    objects["folder/"] = b""  # a directory marker
    objects["folder/inside.txt"] = b"inside"
    for key, body in objects.items():
        pair.src.put(pair.src_bucket, key, body)

    first = full_sync(*pair.locations(), SyncOptions(retry=FAST))

    assert first.ok, first.failed
    assert first.objects_copied == len(objects)
    assert sorted(pair.dst.keys(pair.dst_bucket)) == sorted(objects)
    assert pair.in_sync()
    assert pair.dst.head(pair.dst_bucket, "empty.txt")["ContentLength"] == 0

    second = full_sync(*pair.locations(), SyncOptions(retry=FAST))
    assert second.objects_copied == 0
    assert second.objects_skipped == len(objects)


def test_preserves_headers_and_user_metadata(pair: BucketPair) -> None:
    headers: dict[str, Any] = {
        "ContentType": "text/csv; charset=utf-8",
        "CacheControl": "max-age=600",
        "ContentEncoding": "identity",
        "ContentDisposition": 'attachment; filename="report.csv"',
        "Metadata": {"owner": "fujian-bigdata", "classification": "public"},
    }
    source_etag = pair.src.put(pair.src_bucket, "report.csv", b"a,b\n1,2\n", **headers)

    assert full_sync(*pair.locations(), SyncOptions(retry=FAST)).objects_copied == 1

    head = pair.dst.head(pair.dst_bucket, "report.csv")
    for name in ("ContentType", "CacheControl", "ContentEncoding", "ContentDisposition"):
        assert head[name] == headers[name], name
    assert head["Metadata"]["owner"] == "fujian-bigdata"
    assert head["Metadata"]["classification"] == "public"
    assert head["Metadata"][SOURCE_ETAG_META] == source_etag


def test_a_metadata_only_change_is_propagated(pair: BucketPair) -> None:
    etag = pair.src.put(
        pair.src_bucket, "notice.html", b"<p>hi</p>", ContentType="text/plain", Metadata={"v": "1"}
    )
    assert full_sync(*pair.locations(), SyncOptions(retry=FAST)).objects_copied == 1
    time.sleep(1.1)  # listings may give whole seconds: the change must be visibly later than the copy
    pair.src.s3.copy_object(
        Bucket=pair.src_bucket,
        Key="notice.html",
        CopySource={"Bucket": pair.src_bucket, "Key": "notice.html"},
        MetadataDirective="REPLACE",
        ContentType="text/html",
        Metadata={"v": "2", "reviewed-by": "fj-dsj"},
    )
    # S3 gives a copied-onto-itself object a new Last-Modified; versitygw keeps the file's mtime, which
    # is its Last-Modified, so set it as S3 would (without this a full sync cannot see the change, and
    # only a notification would carry it; see the continuous test).
    os.utime(pair.src.centre.root / "data" / pair.src_bucket / "notice.html")
    assert pair.src.head(pair.src_bucket, "notice.html")["ETag"].strip('"') == etag  # content unchanged

    result = full_sync(*pair.locations(), SyncOptions(retry=FAST))

    assert result.objects_copied == 1
    head = pair.dst.head(pair.dst_bucket, "notice.html")
    assert head["ContentType"] == "text/html"
    assert head["Metadata"]["v"] == "2"
    assert head["Metadata"]["reviewed-by"] == "fj-dsj"
    again = full_sync(*pair.locations(), SyncOptions(retry=FAST))
    assert again.objects_copied == 0


def test_large_object_goes_multipart_and_is_never_recopied(pair: BucketPair) -> None:
    body = hashlib.sha256(b"seed").digest() * (40 * MIB // 32)  # 40 MiB
    source_etag = pair.src.put(pair.src_bucket, "big/archive.tar", body)
    options = SyncOptions(multipart_threshold=16 * MIB, part_size=8 * MIB, verify="sha256", retry=FAST)

    first = full_sync(*pair.locations(), options)

    assert first.ok
    assert first.objects_copied == 1
    assert first.bytes_copied == len(body)
    assert first.verified == 1
    assert first.mismatch_count == 0
    head = pair.dst.head(pair.dst_bucket, "big/archive.tar")
    assert head["ETag"].strip('"').endswith("-5")  # five 8 MiB parts: an ETag of its own
    assert head["ETag"].strip('"') != source_etag
    assert head["Metadata"][SOURCE_ETAG_META] == source_etag
    assert pair.in_sync()
    assert pair.dst.uploads(pair.dst_bucket) == []

    again = full_sync(*pair.locations(), options)
    assert again.objects_copied == 0
    assert again.objects_skipped == 1


def test_changed_objects_are_recopied_and_unchanged_ones_are_not(pair: BucketPair) -> None:
    for i in range(5):
        pair.src.put(pair.src_bucket, f"doc-{i}", f"version 1 of {i}".encode())
    full_sync(*pair.locations(), SyncOptions(retry=FAST))
    pair.src.put(pair.src_bucket, "doc-1", b"version 2, longer than before")
    pair.src.put(pair.src_bucket, "doc-2", b"version 2 of 2")  # same size as before, other content

    result = full_sync(*pair.locations(), SyncOptions(retry=FAST))

    assert result.objects_copied == 2
    assert result.objects_skipped == 3
    assert pair.in_sync()


@pytest.mark.parametrize("policy", ["mirror", "retain"])
def test_delete_policy_applies_under_the_prefix_only(pair: BucketPair, policy: str) -> None:
    pair.src.put(pair.src_bucket, "data/keep.txt", b"keep")
    pair.dst.put(pair.dst_bucket, "replica/stale.txt", b"stale")
    pair.dst.put(pair.dst_bucket, "replica/old/", b"")
    pair.dst.put(pair.dst_bucket, "replica/old/nested.txt", b"nested")
    pair.dst.put(pair.dst_bucket, "elsewhere.txt", b"not under the prefix")

    result = full_sync(*pair.locations("data/", "replica/"), SyncOptions(delete=policy, retry=FAST))  # type: ignore[arg-type]

    assert result.ok, result.failed
    keys = set(pair.dst.keys(pair.dst_bucket))
    assert "replica/keep.txt" in keys
    assert "elsewhere.txt" in keys
    if policy == "mirror":
        assert result.objects_deleted == 3
        assert keys == {"replica/keep.txt", "elsewhere.txt"}
    else:
        assert result.objects_deleted == 0
        assert result.objects_kept == 3
        assert {"replica/stale.txt", "replica/old/", "replica/old/nested.txt"} <= keys


def test_small_pages_walk_every_key(pair: BucketPair) -> None:
    pair.src.put_many(pair.src_bucket, {f"k{i:03d}": str(i).encode() for i in range(53)})
    pair.dst.put_many(pair.dst_bucket, {f"k{i:03d}": str(i).encode() for i in range(0, 53, 2)})
    pair.dst.put(pair.dst_bucket, "k999-extra", b"x")

    result = full_sync(*pair.locations(), SyncOptions(page_size=4, delete="mirror", retry=FAST))

    assert result.objects_copied == 26  # the odd ones
    assert result.objects_skipped == 27
    assert result.objects_deleted == 1
    assert pair.in_sync()


def test_more_than_a_thousand_keys(pair: BucketPair) -> None:
    pair.src.put_many(pair.src_bucket, {f"many/{i:05d}": b"" if i % 7 == 0 else b"x" for i in range(1234)})

    result = full_sync(*pair.locations(), SyncOptions(concurrency=16, retry=FAST))

    assert result.objects_copied == 1234
    assert len(pair.dst.keys(pair.dst_bucket)) == 1234


def test_stale_upload_from_an_earlier_run_is_aborted(pair: BucketPair) -> None:
    pair.src.put(pair.src_bucket, "x", b"x")
    pair.dst.s3.create_multipart_upload(Bucket=pair.dst_bucket, Key="half-done")

    result = full_sync(*pair.locations(), SyncOptions(retry=FAST))

    assert result.uploads_aborted == 1
    assert pair.dst.uploads(pair.dst_bucket) == []


def test_sha256_verification_finds_and_repairs_a_corrupted_copy(pair: BucketPair) -> None:
    pair.src.put(pair.src_bucket, "a.txt", b"original")
    pair.src.put(pair.src_bucket, "b.txt", b"fine")
    full_sync(*pair.locations(), SyncOptions(retry=FAST))
    recorded = pair.dst.head(pair.dst_bucket, "a.txt")["Metadata"]
    # Same size and the same recorded source ETag: only hashing the content can tell.
    pair.dst.put(pair.dst_bucket, "a.txt", b"tampered", Metadata=recorded)

    sampled_out = full_sync(*pair.locations(), SyncOptions(verify="sha256", sample_percent=0, retry=FAST))
    hashed = full_sync(*pair.locations(), SyncOptions(verify="sha256", retry=FAST))

    assert sampled_out.verified == 0
    assert sampled_out.mismatch_count == 0
    assert hashed.repaired_keys == ["a.txt"]  # found, copied again and proven
    assert hashed.mismatches == []
    assert hashed.verified == 1
    assert hashed.ok
    assert pair.in_sync()


def test_size_etag_verification_checks_each_copy(pair: BucketPair) -> None:
    pair.src.put_many(pair.src_bucket, {f"v{i}": bytes([i]) * i for i in range(20)})

    result = full_sync(*pair.locations(), SyncOptions(verify="size-etag", sample_percent=50, retry=FAST))

    assert result.objects_copied == 20
    assert 0 < result.verified < 20  # a deterministic half-ish sample
    assert result.mismatch_count == 0


class _Meddling:
    """A source client that changes the source just before the engine reads `victim` from it.

    It stands in for both of the copier's source clients (boto3 for ranged part reads, the lean one for
    whole objects), so whichever path reads the victim meets the change.
    """

    def __init__(self, s3: Any, objects: Any, bucket: str, victim: str, change: str) -> None:
        self._s3, self._bucket, self._victim, self._change = s3, bucket, victim, change
        self._objects = objects
        self.done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def get_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"] == self._victim and not self.done:
            self.done = True
            if self._change == "delete":
                self._s3.delete_object(Bucket=self._bucket, Key=self._victim)
            else:
                self._s3.put_object(Bucket=self._bucket, Key=self._victim, Body=b"N" * (20 * MIB))
        reader = self._s3 if "Range" in kwargs else self._objects
        return reader.get_object(**kwargs)


def _meddle(replicator: Replicator, pair: BucketPair, victim: str, change: str) -> _Meddling:
    from dataclasses import replace

    source = replicator.copier.source
    meddling = _Meddling(source.s3, source.objects, pair.src_bucket, victim, change)
    replicator.copier.source = replace(source, s3=meddling, wire=meddling)
    return meddling


@pytest.mark.parametrize("victim_size", [10, 20 * MIB], ids=["small", "multipart"])
def test_object_overwritten_while_the_sync_runs(pair: BucketPair, victim_size: int) -> None:
    pair.src.put(pair.src_bucket, "victim", b"o" * victim_size)
    pair.src.put(pair.src_bucket, "bystander", b"b")
    options = SyncOptions(multipart_threshold=16 * MIB, part_size=5 * MIB, retry=FAST)
    with Replicator(*pair.locations(), options) as replicator:
        meddling = _meddle(replicator, pair, "victim", "overwrite")
        result = replicator.full_sync()

    assert meddling.done
    assert result.ok, result.failed
    assert pair.in_sync()  # the new version, never a mix of the two
    again = full_sync(*pair.locations(), options)
    assert again.objects_copied == 0


def test_object_deleted_while_the_sync_runs(pair: BucketPair) -> None:
    pair.src.put(pair.src_bucket, "victim", b"v")
    pair.src.put(pair.src_bucket, "bystander", b"b")
    with Replicator(*pair.locations(), SyncOptions(retry=FAST)) as replicator:
        meddling = _meddle(replicator, pair, "victim", "delete")
        result = replicator.full_sync()

    assert meddling.done
    assert result.objects_vanished == 1
    assert result.errors == 0
    assert pair.dst.keys(pair.dst_bucket) == ["bystander"]


def test_a_mid_sized_object_is_streamed_and_checked_by_its_md5(pair: BucketPair) -> None:
    body = os.urandom(5 * MIB + 123)
    etag = pair.src.put(
        pair.src_bucket, "mid/scan.tiff", body, ContentType="image/tiff", Metadata={"dpi": "600"}
    )

    first = full_sync(*pair.locations(), SyncOptions(verify="sha256", retry=FAST))

    assert first.objects_copied == 1
    assert first.mismatch_count == 0
    assert first.verified == 1
    head = pair.dst.head(pair.dst_bucket, "mid/scan.tiff")
    assert head["ETag"].strip('"') == etag  # one PUT: the same MD5 as the source
    assert head["ContentType"] == "image/tiff"
    assert head["Metadata"]["dpi"] == "600"
    assert full_sync(*pair.locations(), SyncOptions(retry=FAST)).objects_copied == 0


def test_a_source_uploaded_in_parts_is_streamed_and_never_recopied(pair: BucketPair) -> None:
    s3, bucket = pair.src.s3, pair.src_bucket
    parts = [os.urandom(5 * MIB), os.urandom(3 * MIB)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts.bin")["UploadId"]
    done = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(Bucket=bucket, Key="parts.bin", UploadId=upload, PartNumber=n, Body=p)[
                "ETag"
            ],
        }
        for n, p in enumerate(parts, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="parts.bin", UploadId=upload, MultipartUpload={"Parts": done}
    )
    source_etag = pair.src.head(bucket, "parts.bin")["ETag"].strip('"')
    assert source_etag.endswith("-2")

    assert full_sync(*pair.locations(), SyncOptions(retry=FAST)).objects_copied == 1

    head = pair.dst.head(pair.dst_bucket, "parts.bin")
    assert head["ETag"].strip('"') == hashlib.md5(b"".join(parts)).hexdigest()  # noqa: S324
    assert head["Metadata"][SOURCE_ETAG_META] == source_etag
    assert full_sync(*pair.locations(), SyncOptions(retry=FAST)).objects_copied == 0


class _Flipping:
    """A source whose first streamed read of `victim` comes back with one bit flipped."""

    def __init__(self, objects: Any, victim: str) -> None:
        self._objects, self._victim = objects, victim
        self.flipped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objects, name)

    def get_object(self, **kwargs: Any) -> Any:
        got = self._objects.get_object(**kwargs)
        if kwargs["Key"] == self._victim and not self.flipped:
            self.flipped += 1
            got["Body"] = _FlippedBody(got["Body"])
        return got


class _FlippedBody:
    """A body whose first chunk has one bit flipped (and no `readinto`, so it is read chunk by chunk)."""

    def __init__(self, body: Any) -> None:
        self._body, self._first = body, True

    def read(self, amount: int | None = None) -> bytes:
        data: bytes = self._body.read(amount)
        if self._first and data:
            self._first = False
            data = bytes([data[0] ^ 1]) + data[1:]
        return data

    def close(self) -> None:
        self._body.close()


def test_a_copy_altered_in_transit_is_removed_and_made_again(pair: BucketPair) -> None:
    from dataclasses import replace

    body = os.urandom(3 * MIB)
    pair.src.put(pair.src_bucket, "fragile.bin", body)
    with Replicator(*pair.locations(), SyncOptions(retry=FAST)) as replicator:
        source = replicator.copier.source
        flipping = _Flipping(source.objects, "fragile.bin")
        replicator.copier.source = replace(source, wire=flipping)
        result = replicator.full_sync()

    assert flipping.flipped == 1
    assert result.ok
    assert result.objects_copied == 1
    assert pair.dst.digests(pair.dst_bucket) == pair.src.digests(pair.src_bucket)


def test_a_mid_size_object_is_streamed_whole_between_the_real_gateways(pair: BucketPair) -> None:
    """Above STREAM_ABOVE and below the multipart threshold, a source whose ETag is its MD5 is handed
    to the PUT as it arrives (socket to socket, `splice`): the target must hold every byte, its ETag the
    source's MD5, with the metadata carried."""
    body = os.urandom(5 * MIB + 12345)  # not a multiple of any chunk or pipe size
    source_etag = pair.src.put(pair.src_bucket, "mid/键值.bin", body, Metadata={"owner": "fujian-dsj"})
    assert source_etag == hashlib.md5(body, usedforsecurity=False).hexdigest()

    result = full_sync(*pair.locations(), SyncOptions(verify="sha256", retry=FAST))

    assert result.ok
    assert result.objects_copied == 1
    assert result.mismatch_count == 0
    head = pair.dst.head(pair.dst_bucket, "mid/键值.bin")
    assert head["ETag"].strip('"') == source_etag
    assert head["Metadata"]["owner"] == "fujian-dsj"
    assert pair.in_sync()
