"""Copy one object from the source store to the target store, streaming through this process.

Small objects go GET → PUT in one request each; larger ones as a multipart upload whose parts are ranged
GETs pinned with If-Match to the ETag first seen, so an object overwritten mid-copy is never stitched
together from two versions. Each copy records the source ETag as user metadata on the target object:
a multipart copy has an ETag of its own, and later passes compare against the recorded one instead.

Buffers: one part (or one small object) per worker, so memory stays near concurrency × part size.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from datacloud.adapters.http11 import Response, ResponseBody
from datacloud.adapters.s3_wire import WireClient

from .errors import AlteredInTransit, PermanentS3Error, RetryPolicy, call_s3, error_code, is_missing_key, s3op
from .listing import strip_etag
from .throttle import Throttle, Unlimited

SOURCE_ETAG_META = "datacloud-source-etag"
# The MD5 of the content, recorded when the source's ETag is not one (it was uploaded in parts), so the
# target's own ETag can later be checked against what it must be.
CONTENT_MD5_META = "datacloud-md5"
# The part size of a multipart copy: with it the target's ETag can be recomputed from the source.
PART_SIZE_META = "datacloud-part-size"
OWN_META = frozenset({SOURCE_ETAG_META, CONTENT_MD5_META, PART_SIZE_META})
# Headers that travel with the object; anything else a store adds (dates, checksums) is its own.
PRESERVED_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
)
READ_CHUNK = 256 * 1024
# Objects above this size are piped from the GET into the PUT instead of being held whole in memory.
STREAM_ABOVE = 1024 * 1024
STREAM_CHUNK = 1024 * 1024
MIB = 1024 * 1024


_HEX = "0123456789abcdef"


def is_md5(etag: str) -> bool:
    """A single-part ETag (the content's MD5), not a multipart one (`md5-of-md5s-N`) or opaque.

    (Two string operations in C, not a regular expression: it runs three times per copied object.)
    """
    return len(etag) == 32 and not etag.strip(_HEX)


class SourceVanished(Exception):
    """The source object was deleted after it was listed; the next listing will agree."""


class SourceChanged(Exception):
    """The source object was overwritten during a multipart copy (its If-Match failed)."""


@dataclass(frozen=True)
class Side:
    """One end of a sync: a client, bucket and prefix, and a credential-free name for messages."""

    s3: Any
    bucket: str
    prefix: str
    where: str
    # The lean client for whole-object GET/PUT/HEAD (same answers as boto3, a fraction of the CPU);
    # None where only boto3 is wanted.
    wire: WireClient | None = None

    @property
    def objects(self) -> Any:
        """The client for whole-object calls: the lean one when there is one."""
        return self.wire or self.s3

    def key(self, relative_key: str) -> str:
        return self.prefix + relative_key


# S3's limits: a single PUT and a part hold at most 5 GiB, an upload at most 10,000 parts.
MAX_PUT = 5 * 1024 * MIB
MAX_PARTS = 10_000


@dataclass(frozen=True)
class CopySettings:
    multipart_threshold: int = 128 * MIB
    part_size: int = 8 * MIB

    def __post_init__(self) -> None:
        if self.part_size < 5 * MIB:
            raise ValueError("part size must be at least 5 MiB (the S3 minimum for all but the last part)")
        if self.part_size > MAX_PUT:
            raise ValueError("part size must be at most 5 GiB (the S3 maximum)")
        if self.multipart_threshold < 1:
            raise ValueError("multipart threshold must be positive")
        if self.multipart_threshold > MAX_PUT:
            raise ValueError("multipart threshold must be at most 5 GiB (the largest single PUT S3 takes)")

    def part_size_for(self, size: int) -> int:
        """The configured part size, or the smallest whole MiB that keeps an object of `size` bytes within
        S3's 10,000 parts (8 MiB parts reach only 78 GiB)."""
        needed = -(-size // MAX_PARTS)
        return max(self.part_size, -(-needed // MIB) * MIB)

    def part_ranges(self, size: int) -> list[tuple[int, int, int]]:
        """(part number, first byte, last byte) of each part of an object of `size` bytes."""
        step = self.part_size_for(size)
        return [
            (number, start, min(start + step, size) - 1)
            for number, start in enumerate(range(0, size, step), 1)
        ]


@dataclass(frozen=True)
class Copied:
    size: int
    source_etag: str
    target_etag: str = ""
    expected_etag: str = ""  # the ETag the target must have for these bytes ("" when not known here)


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives an object uploaded in these parts: MD5 of the parts' MD5s, dash, count."""
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


def whole_put(got: dict[str, Any], data: bytes) -> tuple[dict[str, Any], str]:
    """The PUT arguments for a whole-object copy of `got` holding `data`, and the ETag the target must
    answer with (the content's MD5: the source's own ETag, or computed and recorded when that is not one).

    The payload goes unsigned: the target's answer, the MD5 of what it stored, is checked against the
    MD5 the source gave for what it stored (`check_arrival`), which covers both legs of the copy where
    a signed payload covers only the second, and spares hashing every object here.
    """
    etag = strip_etag(got.get("ETag"))
    if is_md5(etag):
        return {**target_metadata(got, etag), "Unsigned": True}, etag
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return {**target_metadata(got, etag, {CONTENT_MD5_META: md5}), "Unsigned": True}, md5


def check_arrival(key: str, arrived_etag: str, expected: str) -> None:
    """The target's ETag for a copy must be the one its bytes give; otherwise they changed on the way.

    (A store whose ETags are not MD5s, as some that encrypt at rest, gives nothing to compare with.)
    """
    if expected and (is_md5(arrived_etag) or "-" in arrived_etag) and arrived_etag != expected:
        raise AlteredInTransit(f"{key!r} arrived with ETag {arrived_etag}, expected {expected}")


class UploadRegistry:
    """Multipart uploads this process has open, so a stale-upload sweep never aborts a live one."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, upload_id: str) -> None:
        with self._lock:
            self._ids.add(upload_id)

    def discard(self, upload_id: str) -> None:
        with self._lock:
            self._ids.discard(upload_id)

    def __contains__(self, upload_id: object) -> bool:
        with self._lock:
            return upload_id in self._ids


def read_all(body: Any, throttle: Throttle, on_bytes: Callable[[int], None] | None = None) -> bytes:
    """Drain a streaming body in chunks, charging each chunk to the bandwidth limit (in one read when
    there is no limit: a small object is then one call, not a loop)."""
    if isinstance(throttle, Unlimited):
        try:
            data: bytes = body.read()
        finally:
            body.close()
        if on_bytes:
            on_bytes(len(data))
        return data
    chunks: list[bytes] = []
    try:
        while chunk := body.read(READ_CHUNK):
            throttle.take(len(chunk))
            if on_bytes:
                on_bytes(len(chunk))
            chunks.append(chunk)
    finally:
        body.close()
    return b"".join(chunks)


def _fill(body: Any, buffer: memoryview) -> int:
    """Read the next chunk of `body` into `buffer` (bodies without `readinto` are copied in)."""
    if hasattr(body, "readinto"):
        return int(body.readinto(buffer))
    data = body.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def user_metadata(head: dict[str, Any]) -> dict[str, str]:
    """An object's user metadata without what replication recorded on it (a replica of a replica
    records its own)."""
    return {k: v for k, v in (head.get("Metadata") or {}).items() if k not in OWN_META}


def target_metadata(
    source_head: dict[str, Any], source_etag: str, recorded: dict[str, str] | None = None
) -> dict[str, Any]:
    """The PUT arguments that carry the source's headers and user metadata, plus the recorded ETag."""
    headers = {name: source_head[name] for name in PRESERVED_HEADERS if source_head.get(name)}
    metadata = user_metadata(source_head)
    metadata[SOURCE_ETAG_META] = source_etag
    metadata.update(recorded or {})
    return {**headers, "Metadata": metadata}


def same_metadata(source_head: dict[str, Any], target_head: dict[str, Any]) -> bool:
    """Do the preserved headers and user metadata agree (the recorded source ETag aside)?

    A metadata-only change (S3 CopyObject onto itself with new metadata) keeps the ETag and size, so
    only this comparison notices it.
    """
    for name in PRESERVED_HEADERS:
        if (source_head.get(name) or "") != (target_head.get(name) or ""):
            return False
    return user_metadata(source_head) == user_metadata(target_head)


class Copier:
    def __init__(
        self,
        source: Side,
        target: Side,
        *,
        settings: CopySettings,
        retry: RetryPolicy,
        throttle: Throttle | None = None,
        part_pool: ThreadPoolExecutor | None = None,
        uploads: UploadRegistry | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.settings = settings
        self.retry = retry
        self.throttle = throttle or Unlimited()
        self.part_pool = part_pool
        self.uploads = uploads or UploadRegistry()
        self.on_bytes = on_bytes

    def copy(self, key: str, expected_size: int) -> Copied:
        """Copy `key` (relative); raises SourceVanished if it is gone from the source."""
        if expected_size <= self.settings.multipart_threshold:
            copied = self._copy_whole(key)
            if copied is not None:
                return copied
        # Large, or grew past the threshold since it was listed. An object overwritten while its parts
        # are copied is retried from the start a few times before giving up for this pass.
        for _ in range(3):
            try:
                return self._copy_multipart(key)
            except SourceChanged:
                continue
        raise SourceChanged(f"{key!r} kept changing while it was copied")

    def head_source(self, key: str) -> dict[str, Any] | None:
        return self._head(self.source, key)

    def head_target(self, key: str) -> dict[str, Any] | None:
        return self._head(self.target, key)

    def _head(self, side: Side, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = call_s3(
                self.retry,
                "HeadObject",
                side.where,
                side.objects.head_object,
                Bucket=side.bucket,
                Key=side.key(key),
            )
            return head
        except Exception as exc:
            if is_missing_key(exc):
                return None
            raise

    def _copy_whole(self, key: str) -> Copied | None:
        """GET then PUT; None when the object turned out larger than the multipart threshold."""

        def attempt() -> Copied | None:
            try:
                got = s3op(
                    "GetObject",
                    self.source.where,
                    self.source.objects.get_object,
                    Bucket=self.source.bucket,
                    Key=self.source.key(key),
                )
            except Exception as exc:
                if is_missing_key(exc):
                    raise SourceVanished(key) from None
                raise
            size = int(got.get("ContentLength", 0))
            if size > self.settings.multipart_threshold:
                got["Body"].close()
                return None
            etag = strip_etag(got.get("ETag"))
            if size > STREAM_ABOVE and self.target.wire is not None:
                return self._stream(key, got, etag, size, self.target.wire)
            data = read_all(got["Body"], self.throttle, self.on_bytes)
            arguments, expected = whole_put(got, data)
            put = s3op(
                "PutObject",
                self.target.where,
                self.target.objects.put_object,
                Bucket=self.target.bucket,
                Key=self.target.key(key),
                Body=data,
                **arguments,
            )
            arrived = strip_etag(put.get("ETag"))
            try:
                check_arrival(key, arrived, expected)
            except AlteredInTransit:
                self._remove_target(key)
                raise
            return Copied(len(data), etag, arrived, expected)

        return self.retry.call(attempt)

    def _stream(self, key: str, got: dict[str, Any], etag: str, size: int, wire: WireClient) -> Copied:
        """Pipe the GET body into one PUT and check what arrived by its MD5.

        When the source's ETag is its MD5, the body is handed over as it is (`_body_source`): between
        two plain connections it goes from socket to socket through a kernel pipe. Otherwise it is read
        here a chunk at a time, to compute the MD5 the target's ETag must equal.

        The PUT's payload is unsigned (its digest would need the whole body first), so integrity comes
        from the target's ETag, the MD5 of what it stored: it must equal the source's ETag when that is
        a plain MD5, or the MD5 computed here while streaming when the source was uploaded in parts.
        """
        digest = None if is_md5(etag) else hashlib.md5(usedforsecurity=False)

        def chunks() -> Iterator[memoryview]:
            # One buffer per copy, refilled in place: each chunk is sent before the next is read, and
            # a fresh 1 MiB object per chunk would cost an allocation and its page faults every time.
            body = got["Body"]
            buffer = memoryview(bytearray(STREAM_CHUNK))
            try:
                while n := _fill(body, buffer):
                    chunk = buffer[:n]
                    self.throttle.take(n)
                    if self.on_bytes:
                        self.on_bytes(n)
                    if digest is not None:
                        digest.update(chunk)
                    yield chunk
            finally:
                body.close()

        put = s3op(
            "PutObject",
            self.target.where,
            wire.put_object_stream,
            Bucket=self.target.bucket,
            Key=self.target.key(key),
            Chunks=self._body_source(got["Body"], digest is None, chunks),
            ContentLength=size,
            **target_metadata(got, etag),
        )
        arrived = strip_etag(put.get("ETag"))
        expected = etag if digest is None else digest.hexdigest()
        try:
            check_arrival(key, arrived, expected)
        except AlteredInTransit:
            self._remove_target(key)
            raise
        return Copied(size, etag, arrived, expected)

    def _body_source(
        self, body: Any, as_is: bool, chunks: Callable[[], Iterator[memoryview]]
    ) -> Iterable[bytes | memoryview]:
        """What the PUT sends: the GET's body handed over whole when nothing here needs its bytes
        (between two plain connections it then goes socket to socket through a kernel pipe, never
        copied into this process), the chunks read here otherwise (to hash them)."""
        if as_is and isinstance(body, Response):

            def counted(n: int) -> None:
                self.throttle.take(n)
                if self.on_bytes:
                    self.on_bytes(n)

            return ResponseBody(body, counted)
        return chunks()

    def _remove_target(self, key: str) -> None:
        """Remove a copy that arrived altered, so no pass takes it for a good one (a retry or the next
        pass copies it again). Best effort: the failure is reported in any case."""
        with contextlib.suppress(Exception):
            self.target.objects.delete_object(Bucket=self.target.bucket, Key=self.target.key(key))

    def _copy_multipart(self, key: str) -> Copied:
        head = self.head_source(key)
        if head is None:
            raise SourceVanished(key)
        etag = strip_etag(head.get("ETag"))
        size = int(head.get("ContentLength", 0))
        created = call_s3(
            self.retry,
            "CreateMultipartUpload",
            self.target.where,
            self.target.objects.create_multipart_upload,
            Bucket=self.target.bucket,
            Key=self.target.key(key),
            **target_metadata(head, etag, {PART_SIZE_META: str(self.settings.part_size_for(size))}),
        )
        upload_id = str(created["UploadId"])
        self.uploads.add(upload_id)
        futures: list[Future[dict[str, Any]]] = []
        try:
            ranges = self.settings.part_ranges(size)
            for number, first, last in ranges:
                job = _PartJob(self, key, upload_id, etag, number, first, last)
                if self.part_pool is not None:
                    futures.append(self.part_pool.submit(job.run))
                else:
                    done: Future[dict[str, Any]] = Future()
                    done.set_result(job.run())
                    futures.append(done)
            done_parts = [future.result() for future in futures]
            parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in done_parts]
            completed = call_s3(
                self.retry,
                "CompleteMultipartUpload",
                self.target.where,
                self.target.objects.complete_multipart_upload,
                Bucket=self.target.bucket,
                Key=self.target.key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            # The part MD5s recorded while copying give the ETag the whole must have.
            expected = multipart_etag([p["MD5"] for p in done_parts])
            check_arrival(key, strip_etag(completed.get("ETag")), expected)
        except BaseException:
            for future in futures:
                future.cancel()
            self._abort(key, upload_id)
            raise
        finally:
            self.uploads.discard(upload_id)
        return Copied(size, etag, strip_etag(completed.get("ETag")), expected)

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: a leftover upload is invisible as an object and is swept by the next pass."""
        with contextlib.suppress(Exception):
            call_s3(
                self.retry,
                "AbortMultipartUpload",
                self.target.where,
                self.target.objects.abort_multipart_upload,
                Bucket=self.target.bucket,
                Key=self.target.key(key),
                UploadId=upload_id,
            )


@dataclass(frozen=True)
class _PartJob:
    copier: Copier
    key: str
    upload_id: str
    etag: str
    number: int
    first: int
    last: int

    def run(self) -> dict[str, Any]:
        return self.copier.retry.call(self._attempt)

    def _attempt(self) -> dict[str, Any]:
        source, target = self.copier.source, self.copier.target
        try:
            got = s3op(
                "GetObject",
                source.where,
                source.objects.get_object,
                Bucket=source.bucket,
                Key=source.key(self.key),
                Range=f"bytes={self.first}-{self.last}",
                IfMatch=f'"{self.etag}"',
            )
        except PermanentS3Error:
            raise
        except Exception as exc:
            if error_code(exc) == "PreconditionFailed":
                raise SourceChanged(self.key) from None
            if is_missing_key(exc):
                raise SourceVanished(self.key) from None
            raise
        data = read_all(got["Body"], self.copier.throttle, self.copier.on_bytes)
        if len(data) != self.last - self.first + 1:
            raise SourceChanged(self.key)
        md5 = hashlib.md5(data, usedforsecurity=False)
        part = s3op(
            "UploadPart",
            target.where,
            target.objects.upload_part,
            Bucket=target.bucket,
            Key=target.key(self.key),
            UploadId=self.upload_id,
            PartNumber=self.number,
            Body=data,
        )
        check_arrival(f"{self.key} part {self.number}", strip_etag(part["ETag"]), md5.hexdigest())
        return {"PartNumber": self.number, "ETag": part["ETag"], "MD5": md5.digest()}
