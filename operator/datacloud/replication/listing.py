"""Streaming, paged listings and the merge-join that diffs two of them in bounded memory.

S3 lists keys in ascending UTF-8 byte order, which is the order of Python's `str` comparison, so two
listings can be walked side by side like a sorted merge: memory stays at one page per side however
many keys the buckets hold.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from .errors import ListingOrderError, RetryPolicy, call_s3


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object; `key` is relative to the synced prefix."""

    key: str
    size: int
    etag: str  # without quotes
    modified: float = 0.0  # POSIX seconds


def strip_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


def iter_objects(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    where: str,
    page_size: int = 1000,
    retry: RetryPolicy | None = None,
) -> Iterator[ObjectInfo]:
    """Every object under `prefix`, one ListObjectsV2 page at a time, keys made relative to `prefix`."""
    policy = retry or RetryPolicy()
    token: str | None = None
    previous: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            kwargs["ContinuationToken"] = token
        page = call_s3(policy, "ListObjectsV2", where, s3.list_objects_v2, **kwargs)
        for item in page.get("Contents", []):
            key = str(item["Key"])
            if previous is not None and key <= previous:
                raise ListingOrderError(f"{where} listed {key!r} after {previous!r}; refusing to diff")
            previous = key
            modified = item.get("LastModified")
            yield ObjectInfo(
                key=key[len(prefix) :],
                size=int(item.get("Size", 0)),
                etag=strip_etag(item.get("ETag")),
                modified=modified.timestamp() if isinstance(modified, datetime) else 0.0,
            )
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


class Relation(Enum):
    ONLY_SOURCE = "only-source"
    ONLY_TARGET = "only-target"
    SIZE_DIFFERS = "size-differs"
    # Same size, different ETags: the target's ETag may differ only because it was uploaded in other
    # parts, so the source ETag recorded on the copy must be read to decide.
    ETAG_DIFFERS = "etag-differs"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class Pair:
    relation: Relation
    source: ObjectInfo | None
    target: ObjectInfo | None

    @property
    def key(self) -> str:
        found = self.source or self.target
        assert found is not None
        return found.key


def merge_join(source: Iterable[ObjectInfo], target: Iterable[ObjectInfo]) -> Iterator[Pair]:
    """Pair up two key-sorted listings; every key of either side is yielded exactly once, in order."""
    src_iter, dst_iter = iter(source), iter(target)
    src, dst = next(src_iter, None), next(dst_iter, None)
    while src is not None or dst is not None:
        if dst is None or (src is not None and src.key < dst.key):
            assert src is not None
            yield Pair(Relation.ONLY_SOURCE, src, None)
            src = next(src_iter, None)
        elif src is None or dst.key < src.key:
            yield Pair(Relation.ONLY_TARGET, None, dst)
            dst = next(dst_iter, None)
        else:
            if src.size != dst.size:
                relation = Relation.SIZE_DIFFERS
            elif src.etag != dst.etag:
                relation = Relation.ETAG_DIFFERS
            else:
                relation = Relation.SAME
            yield Pair(relation, src, dst)
            src, dst = next(src_iter, None), next(dst_iter, None)


_END = object()


def prefetched(
    items: Iterable[Any], depth: int = 2000, stop: threading.Event | None = None, batch: int = 100
) -> Iterator[Any]:
    """Iterate `items` from a background thread, about `depth` items ahead, so both listings page in
    parallel.

    Items cross between the threads `batch` at a time (one queue hand-off, with its locks and wake-up,
    per batch instead of per item: most of the cost of a key's way through a listing). A listing page
    arrives whole, so a batch waits only at a page's end for the next page's request. Exceptions
    raised by the producer are re-raised in the consumer after the items that came before them.
    """
    batch = max(1, min(batch, depth))
    buffer: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth // batch))
    halt = stop or threading.Event()
    finished = threading.Event()

    def put(item: Any) -> bool:
        while not (halt.is_set() or finished.is_set()):
            try:
                buffer.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        chunk: list[Any] = []
        try:
            for item in items:
                chunk.append(item)
                if len(chunk) >= batch:
                    if not put(chunk):
                        return
                    chunk = []
            if chunk and not put(chunk):
                return
            put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            if chunk and not put(chunk):
                return
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="listing-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                got = buffer.get(timeout=0.2)
            except queue.Empty:
                if thread.is_alive():
                    continue
                return  # the producer was stopped before reaching the end
            if got is _END:
                return
            if isinstance(got, _Failure):
                raise got.exc
            yield from got
    finally:
        finished.set()


@dataclass(frozen=True)
class _Failure:
    exc: BaseException


def only_owned(items: Iterable[ObjectInfo], owns: Callable[[str], bool]) -> Iterator[ObjectInfo]:
    return (item for item in items if owns(item.key))
