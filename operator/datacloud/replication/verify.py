"""Checks that a copy matches its source: cheaply by size and recorded ETag, or by hashing both sides."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from .copier import (
    CONTENT_MD5_META,
    PART_SIZE_META,
    READ_CHUNK,
    SOURCE_ETAG_META,
    Side,
    is_md5,
    multipart_etag,
)
from .errors import PermanentS3Error, RetryPolicy, error_code, is_missing_key, s3op
from .listing import strip_etag
from .throttle import Throttle, Unlimited

VerifyMode = Literal["none", "size-etag", "sha256"]


class Verdict(Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    SUPERSEDED = "superseded"  # the source changed or vanished since the copy; the next pass decides


def sampled(key: str, percent: float) -> bool:
    """Deterministic sample: the same keys are picked on every run and in every shard."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha1(b"verify\0" + key.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < percent * 100


def recorded_etag(head: dict[str, Any]) -> str:
    return str((head.get("Metadata") or {}).get(SOURCE_ETAG_META, ""))


def copy_matches(source_size: int, source_etag: str, target_head: dict[str, Any] | None) -> bool:
    """Does the target hold this source version: same size, and the source ETag as its own or recorded?"""
    if target_head is None or int(target_head.get("ContentLength", -1)) != source_size:
        return False
    return source_etag in {recorded_etag(target_head), strip_etag(target_head.get("ETag"))}


def expected_etag(source_etag: str, target_head: dict[str, Any]) -> str | None:
    """The ETag the target must have for the source's bytes, when that is known without reading them.

    It is the source's own ETag when both are single-part MD5s (or the same multipart ETag: the same
    parts' MD5s), or the content MD5 recorded at copy time for a copy of a multipart source. None means
    it must be computed from the source (a multipart copy, or an unrecorded one).
    """
    own = strip_etag(target_head.get("ETag"))
    recorded = str((target_head.get("Metadata") or {}).get(CONTENT_MD5_META, ""))
    if is_md5(own):
        if is_md5(source_etag):
            return source_etag
        return recorded or None
    return source_etag if own == source_etag else None


@dataclass
class Verifier:
    """Proves a copy: `size-etag` checks the target's own ETag (computed by the target from the bytes
    it holds) against the ETag those bytes must have; `sha256` reads and hashes both sides."""

    source: Side
    target: Side
    mode: VerifyMode
    retry: RetryPolicy
    throttle: Throttle | None = None
    on_bytes: Callable[[int], None] | None = None  # bytes read, for progress

    def check(self, key: str, size: int, source_etag: str, expected: str = "") -> Verdict:
        """`expected`: the target ETag a copy made in this process must have, when it knows it."""
        if self.mode == "size-etag":
            return self.retry.call(lambda: self._size_etag(key, size, source_etag, expected))
        if self.mode == "sha256":
            return self.retry.call(lambda: self._sha256(key, source_etag))
        return Verdict.MATCH

    def _size_etag(self, key: str, size: int, source_etag: str, expected: str) -> Verdict:
        try:
            head = s3op(
                "HeadObject",
                self.target.where,
                self.target.objects.head_object,
                Bucket=self.target.bucket,
                Key=self.target.key(key),
            )
        except Exception as exc:
            if is_missing_key(exc):
                return Verdict.MISMATCH
            raise
        if not copy_matches(size, source_etag, head):
            return Verdict.MISMATCH  # another size, or a copy of another version
        own = strip_etag(head.get("ETag"))
        if not (is_md5(own) or _MULTIPART.match(own)):
            return self._sha256(key, source_etag)  # a store with opaque ETags: only the bytes can tell
        must = expected or expected_etag(source_etag, head)
        if not must:
            try:
                must = self._source_etag_like(key, source_etag, own, head)
            except _Superseded:
                return Verdict.SUPERSEDED
            if not must:  # cut in parts of unknown size (not by this engine): only the bytes can tell
                return self._sha256(key, source_etag)
        return Verdict.MATCH if own == must else Verdict.MISMATCH

    def _source_etag_like(self, key: str, source_etag: str, own: str, head: dict[str, Any]) -> str:
        """The ETag the source's bytes give in the target's layout (one part, or parts of the recorded
        size), read from the source pinned to the version that was copied."""
        multipart = _MULTIPART.match(own)
        part_size = 0
        if multipart:
            recorded = str((head.get("Metadata") or {}).get(PART_SIZE_META, ""))
            part_size = int(recorded) if recorded.isdigit() and int(recorded) > 0 else 0
            if not part_size:
                return ""  # not a copy this engine made in parts: nothing says how it was cut
        digests = self._read(self.source, key, if_match=source_etag, part_size=part_size, algorithm="md5")
        return multipart_etag(digests) if multipart else digests[0].hex()

    def _sha256(self, key: str, source_etag: str) -> Verdict:
        try:
            source_digest = self._read(self.source, key, if_match=source_etag)
        except _Superseded:
            return Verdict.SUPERSEDED
        try:
            target_digest = self._read(self.target, key)
        except _Superseded:
            return Verdict.MISMATCH  # the copy is missing
        return Verdict.MATCH if source_digest == target_digest else Verdict.MISMATCH

    def _read(
        self, side: Side, key: str, if_match: str = "", part_size: int = 0, algorithm: str = "sha256"
    ) -> list[bytes]:
        """The digest of the object's bytes, or one per part of `part_size` bytes when that is set."""
        extra = {"IfMatch": f'"{if_match}"'} if if_match else {}
        try:
            got = s3op(
                "GetObject",
                side.where,
                side.objects.get_object,
                Bucket=side.bucket,
                Key=side.key(key),
                **extra,
            )
        except PermanentS3Error:
            raise
        except Exception as exc:
            if is_missing_key(exc) or error_code(exc) == "PreconditionFailed":
                raise _Superseded from None
            raise
        digests: list[bytes] = []
        digest = hashlib.new(algorithm)
        in_part = 0
        throttle = self.throttle or Unlimited()
        body = got["Body"]
        try:
            while chunk := body.read(READ_CHUNK):
                throttle.take(len(chunk))
                if self.on_bytes is not None:
                    self.on_bytes(len(chunk))
                view = memoryview(chunk)
                while part_size and in_part + len(view) >= part_size:
                    take = part_size - in_part
                    digest.update(view[:take])
                    digests.append(digest.digest())
                    digest, in_part, view = hashlib.new(algorithm), 0, view[take:]
                digest.update(view)
                in_part += len(view)
        finally:
            body.close()
        if in_part or not digests:
            digests.append(digest.digest())
        return digests


_MULTIPART = re.compile(r"^[0-9a-f]{32}-[0-9]+$")


class _Superseded(Exception):
    pass
