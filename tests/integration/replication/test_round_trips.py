"""Generated keys, bodies, Content-Types and user metadata (UTF-8, RFC 2047, `+`, `%`, Chinese, empty
values) copied between real versitygw centres by both copy paths, read back byte for byte."""

from __future__ import annotations

import base64
import itertools
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacloud.adapters.s3_wire import WireClient
from datacloud.replication.copier import OWN_META, user_metadata
from datacloud.replication.engine import Replicator, SyncOptions, full_sync
from datacloud.replication.errors import RetryPolicy
from tests.support.replication import Store

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=2, initial=0.05, maximum=0.2)
MIB = 1024 * 1024

# A key is path segments (the gateway stores objects as files): any character but "/" in a segment, no
# "." or ".." segment, each segment well under a file name's 255 bytes. No C0 control characters: the
# gateway lists them as U+FFFD whatever the encoding-type asked, so such an object cannot be found
# from its listing (a full pass counts it as vanished; `sync_key` copies it).
segment = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/" + "".join(map(chr, range(32)))),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in {".", ".."})
keys = st.lists(segment, min_size=1, max_size=3).map("/".join)
value_chars = st.characters(exclude_categories=["Cs", "Cc"]) | st.sampled_from(" +%中文")
# Stored as sent but for the blanks around it, which HTTP drops.
values = st.text(value_chars, max_size=24).map(lambda v: v.strip(" \t")) | st.sampled_from(
    [
        "",
        "中文",
        "a+b%20c",
        "100%",
        "\xa0x\u3000",
        "a\t\tb\u2028c",
        "=?UTF-8?B?" + base64.b64encode("数据".encode()).decode() + "?=",
    ]
)
metadata = st.dictionaries(
    st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12), values, max_size=8
)
content_types = st.sampled_from(["", "text/plain; charset=utf-8", "application/json", "image/png", "x/+%"])
bodies = st.binary(max_size=256)


class Buckets:
    def __init__(self, src: Store, dst: Store) -> None:
        self.src, self.dst = src, dst
        self.src_bucket, self.dst_bucket = src.bucket("rt-src"), dst.bucket("rt-dst")
        self.src_wire, self.dst_wire = WireClient(src.endpoint), WireClient(dst.endpoint)
        self.counter = itertools.count()


@pytest.fixture(scope="module")
def buckets(centres: tuple[Store, Store]) -> Iterator[Buckets]:
    made = Buckets(*centres)
    yield made
    made.src_wire.close()
    made.dst_wire.close()


def read(wire: WireClient, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    got = wire.get_object(Bucket=bucket, Key=key)
    return got["Body"].read(), got


def put_source(b: Buckets, key: str, body: bytes, content_type: str, meta: dict[str, str]) -> None:
    extra = {"ContentType": content_type} if content_type else {}
    b.src_wire.put_object(Bucket=b.src_bucket, Key=key, Body=body, Metadata=meta, **extra)
    stored, head = read(b.src_wire, b.src_bucket, key)
    assert stored == body
    assert head["Metadata"] == meta, "the gateway stored the metadata as sent (and accepted the signature)"


def assert_same(b: Buckets, src_key: str, dst_key: str) -> None:
    src_body, src_head = read(b.src_wire, b.src_bucket, src_key)
    dst_body, dst_head = read(b.dst_wire, b.dst_bucket, dst_key)
    assert dst_body == src_body
    assert dst_head.get("ContentType") == src_head.get("ContentType")
    assert user_metadata(dst_head) == user_metadata(src_head)
    assert OWN_META & set(dst_head["Metadata"])  # the copy records its source


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, body=bodies, content_type=content_types, meta=metadata)
def test_generated_objects_survive_a_full_pass_and_a_single_key_copy(
    buckets: Buckets, key: str, body: bytes, content_type: str, meta: dict[str, str]
) -> None:
    n = next(buckets.counter)
    src_key = f"ex{n}/{key}"
    put_source(buckets, src_key, body, content_type, meta)
    src = buckets.src.location(buckets.src_bucket, f"ex{n}/")

    # A full pass (listing, plan, copy) ...
    result = full_sync(src, buckets.dst.location(buckets.dst_bucket, f"pass{n}/"), SyncOptions(retry=FAST))
    assert result.ok, result.failed
    assert result.objects_copied == 1
    assert_same(buckets, src_key, f"pass{n}/{key}")

    # ... and a single key, as continuous replication copies it (HEADs, then the same Copier).
    with Replicator(
        src, buckets.dst.location(buckets.dst_bucket, f"key{n}/"), SyncOptions(retry=FAST)
    ) as rep:
        assert rep.sync_key(key).status == "copied"
        assert rep.sync_key(key).status == "in-sync"  # metadata compares equal once copied
    assert_same(buckets, src_key, f"key{n}/{key}")


@pytest.mark.parametrize("size", [3 * MIB, 11 * MIB], ids=["streamed", "multipart"])
def test_non_ascii_metadata_survives_streamed_and_multipart_copies(buckets: Buckets, size: int) -> None:
    """Larger objects take the streamed PUT or CreateMultipartUpload: the metadata goes with them."""
    meta = {"owner": "福建省大数据局", "note": "a+b%20c  d", "empty": "", "enc": "=?UTF-8?B?5Lit5paH?="}
    body = bytes(range(256)) * (size // 256)
    put_source(buckets, f"big-{size}/obj.bin", body, "application/octet-stream", meta)
    options = SyncOptions(retry=FAST, multipart_threshold=5 * MIB, part_size=5 * MIB)
    src = buckets.src.location(buckets.src_bucket, f"big-{size}/")
    result = full_sync(src, buckets.dst.location(buckets.dst_bucket, f"big-{size}/"), options)
    assert result.ok, result.failed
    assert_same(buckets, f"big-{size}/obj.bin", f"big-{size}/obj.bin")
    head = buckets.dst_wire.head_object(Bucket=buckets.dst_bucket, Key=f"big-{size}/obj.bin")
    assert ("-" in head["ETag"]) == (size > 5 * MIB)


def test_a_put_with_if_none_match_never_replaces_an_object(buckets: Buckets) -> None:
    """The audit records are written with If-None-Match: * through the lean client: the gateway refuses
    (412) a second PUT of the same key, so a record is never overwritten."""
    from botocore.exceptions import ClientError

    key = f"audit/{next(buckets.counter)}.json"
    buckets.src_wire.put_object(Bucket=buckets.src_bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        buckets.src_wire.put_object(Bucket=buckets.src_bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert read(buckets.src_wire, buckets.src_bucket, key)[0] == b"first"
