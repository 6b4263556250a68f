"""Checks that a copy matches its source: cheaply by size and recorded ETag, or by hashing both sides."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from .copier import READ_CHUNK, SOURCE_ETAG_META, Side
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


@dataclass
class Verifier:
    source: Side
    target: Side
    mode: VerifyMode
    retry: RetryPolicy
    throttle: Throttle | None = None

    def check(self, key: str, size: int, source_etag: str) -> Verdict:
        if self.mode == "size-etag":
            return self.retry.call(lambda: self._size_etag(key, size, source_etag))
        if self.mode == "sha256":
            return self.retry.call(lambda: self._sha256(key, source_etag))
        return Verdict.MATCH

    def _size_etag(self, key: str, size: int, source_etag: str) -> Verdict:
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
        return Verdict.MATCH if copy_matches(size, source_etag, head) else Verdict.MISMATCH

    def _sha256(self, key: str, source_etag: str) -> Verdict:
        try:
            source_digest = self._digest(self.source, key, if_match=source_etag)
        except _Superseded:
            return Verdict.SUPERSEDED
        try:
            target_digest = self._digest(self.target, key)
        except _Superseded:
            return Verdict.MISMATCH  # the copy is missing
        return Verdict.MATCH if source_digest == target_digest else Verdict.MISMATCH

    def _digest(self, side: Side, key: str, if_match: str = "") -> str:
        extra = {"IfMatch": f'"{if_match}"'} if if_match else {}
        try:
            got = s3op(
                "GetObject", side.where, side.s3.get_object, Bucket=side.bucket, Key=side.key(key), **extra
            )
        except PermanentS3Error:
            raise
        except Exception as exc:
            if is_missing_key(exc) or error_code(exc) == "PreconditionFailed":
                raise _Superseded from None
            raise
        digest = hashlib.sha256()
        throttle = self.throttle or Unlimited()
        body = got["Body"]
        try:
            while chunk := body.read(READ_CHUNK):
                throttle.take(len(chunk))
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()


class _Superseded(Exception):
    pass
