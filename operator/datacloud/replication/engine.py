"""Full sync orchestration: list both sides, merge-join, copy/delete with bounded concurrency, verify.

A pass holds at most one listing page per side plus a bounded queue of pending work, whatever the size
of the bucket. It is idempotent (a second pass finds nothing to do) and resumable (a pass started after
a crash diffs again and redoes only what is missing; uploads the crashed run left open are aborted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from datacloud.adapters.s3 import LazyClient
from datacloud.adapters.s3_wire import shared_wire

from .copier import MIB, Copied, Copier, CopySettings, Side, SourceVanished, UploadRegistry, same_metadata
from .errors import PermanentS3Error, RetryPolicy, call_s3, describe
from .listing import iter_objects, merge_join, only_owned, prefetched, strip_etag
from .locations import Location
from .plan import Action, DeletePolicy, Step, plan, source_newer
from .shard import Shard
from .throttle import Throttle, TokenBucket, Unlimited
from .verify import Verdict, Verifier, VerifyMode, copy_matches, sampled
from .workers import BatchWorkers

log = logging.getLogger(__name__)

MAX_FAILED_KEYS = 1000  # named in the summary; the count goes on beyond
MAX_MISMATCH_KEYS = 100
# Permanent refusals (access denied, signature refused) in a row, with no success between them, after
# which the pass stops: one key can be refused on its own, but this many mean the whole target refuses.
PERMANENT_IN_A_ROW = 25


@dataclass(frozen=True)
class SyncOptions:
    delete: DeletePolicy = "retain"
    verify: VerifyMode = "none"
    sample_percent: float = 100.0
    concurrency: int = 8
    multipart_threshold: int = 128 * MIB
    part_size: int = 8 * MIB
    page_size: int = 1000
    bandwidth: int | None = None  # bytes per second over all workers; None = unlimited
    shard: Shard = field(default_factory=Shard)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 1 <= self.page_size <= 1000:
            raise ValueError("page size must be 1..1000")
        if not 0 <= self.sample_percent <= 100:
            raise ValueError("the verification sample is a percentage, 0..100")
        CopySettings(self.multipart_threshold, self.part_size)  # validates the sizes


@dataclass
class SyncResult:
    """What one full pass did. `errors` counts objects that failed and will be retried next pass;
    `failed` names them with the reason (the first `MAX_FAILED_KEYS`)."""

    objects_copied: int = 0
    bytes_copied: int = 0
    objects_deleted: int = 0
    objects_skipped: int = 0  # already in sync
    objects_kept: int = 0  # only on the target, kept by the retain policy
    objects_vanished: int = 0  # deleted from the source between listing and copying
    errors: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    verified: int = 0
    mismatches: list[str] = field(default_factory=list)  # copies found wrong and not repaired
    mismatch_count: int = 0
    repaired: int = 0  # copies found wrong by verification and copied again, now proven right
    repaired_keys: list[str] = field(default_factory=list)
    uploads_aborted: int = 0
    duration_seconds: float = 0.0
    completed: bool = True  # False when the pass was stopped before it finished

    @property
    def ok(self) -> bool:
        return self.completed and self.errors == 0 and self.mismatch_count == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class SyncProgress:
    """Counters a progress display polls while a pass runs (thread-safe updates through `add`)."""

    listed_objects: int = 0  # source objects in this shard seen so far
    listed_bytes: int = 0
    listing_done: bool = False
    pending_objects: int = 0  # planned copies (the work an ETA is about)
    pending_bytes: int = 0
    done_objects: int = 0
    done_bytes: int = 0
    transferred_bytes: int = 0  # bytes streamed, including parts of objects not finished yet
    verify_pending: int = 0  # objects picked for verification
    verify_done: int = 0
    verify_bytes: int = 0  # bytes read to verify
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


KeyStatus = Literal["copied", "deleted", "in-sync", "absent", "not-owned"]


@dataclass(frozen=True)
class KeyOutcome:
    status: KeyStatus
    size: int = 0
    source_etag: str = ""
    target_etag: str = ""  # with source_etag, lets a caller remember this pair as known to be in sync


class Replicator:
    """Copies from one location to another: full passes and single keys. Holds one client per endpoint.

    Use as a context manager, or call `close()`.
    """

    def __init__(self, source: Location, target: Location, options: SyncOptions | None = None) -> None:
        self.options = options or SyncOptions()
        self.source_location = source
        self.target_location = target
        pool = self.options.concurrency * 2 + 4
        self.source = Side(
            LazyClient(source.endpoint, max_pool=pool),
            source.bucket,
            source.prefix,
            f"{source.endpoint.url}/{source.bucket}",
            shared_wire(source.endpoint),
        )
        self.target = Side(
            LazyClient(target.endpoint, max_pool=pool),
            target.bucket,
            target.prefix,
            f"{target.endpoint.url}/{target.bucket}",
            shared_wire(target.endpoint),
        )
        self.throttle: Throttle = (
            TokenBucket(self.options.bandwidth) if self.options.bandwidth else Unlimited()
        )
        self.uploads = UploadRegistry()
        self._progress = SyncProgress()
        self._part_pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="dc-part")
        self.copier = Copier(
            self.source,
            self.target,
            settings=CopySettings(self.options.multipart_threshold, self.options.part_size),
            retry=self.options.retry,
            throttle=self.throttle,
            part_pool=self._part_pool,
            uploads=self.uploads,
            on_bytes=lambda n: self._progress.add(transferred_bytes=n),
        )
        self.verifier = Verifier(
            self.source,
            self.target,
            self.options.verify,
            self.options.retry,
            self.throttle,
            on_bytes=lambda n: self._progress.add(verify_bytes=n),
        )

    def __enter__(self) -> Replicator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._part_pool.shutdown(wait=True, cancel_futures=True)
        for side in (self.source, self.target):
            if side.wire is not None:
                side.wire.close()

    def check_buckets(self) -> None:
        """Fail fast, with PermanentS3Error, when either bucket is missing or refused.

        A one-key listing rather than HeadBucket: HEAD responses have no body, so they cannot say
        whether a 403 means a wrong secret or a refusal, and listing is the permission a sync needs.
        """
        for side in (self.source, self.target):
            call_s3(
                self.options.retry,
                "ListObjectsV2",
                side.where,
                side.objects.list_objects_v2,
                Bucket=side.bucket,
                Prefix=side.prefix,
                MaxKeys=1,
            )

    def sweep_stale_uploads(self, started_before: datetime) -> int:
        """Abort multipart uploads under the target prefix (and in this shard) left by an earlier run.

        S3 does not show an upload's metadata, so "ours" means: under the replicated prefix of a replica
        bucket, in this shard, started before this pass, and not open in this process.
        """
        aborted = 0
        kwargs: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": self.target.prefix}
        while True:
            page = call_s3(
                self.options.retry,
                "ListMultipartUploads",
                self.target.where,
                self.target.objects.list_multipart_uploads,
                **kwargs,
            )
            for upload in page.get("Uploads", []):
                key, upload_id = str(upload["Key"]), str(upload["UploadId"])
                initiated = upload.get("Initiated")
                relative = key[len(self.target.prefix) :]
                if upload_id in self.uploads or not self.options.shard.owns(relative):
                    continue
                if isinstance(initiated, datetime) and initiated >= started_before:
                    continue
                call_s3(
                    self.options.retry,
                    "AbortMultipartUpload",
                    self.target.where,
                    self.target.objects.abort_multipart_upload,
                    Bucket=self.target.bucket,
                    Key=key,
                    UploadId=upload_id,
                )
                aborted += 1
            if not page.get("IsTruncated"):
                return aborted
            kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
            kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    def full_sync(
        self, *, progress: SyncProgress | None = None, stop: threading.Event | None = None
    ) -> SyncResult:
        """One full pass. Raises PermanentS3Error for failures no retry can fix (credentials, bucket)."""
        started = time.monotonic()
        self._progress = progress or SyncProgress()
        result = SyncResult()
        self.check_buckets()
        result.uploads_aborted = self.sweep_stale_uploads(datetime.now(UTC))
        _Pass(self, result, self._progress, stop or threading.Event()).run()
        result.duration_seconds = round(time.monotonic() - started, 3)
        log.info(
            "sync %s → %s: copied %d (%d bytes), deleted %d, skipped %d, errors %d in %.1fs",
            self.source_location,
            self.target_location,
            result.objects_copied,
            result.bytes_copied,
            result.objects_deleted,
            result.objects_skipped,
            result.errors,
            result.duration_seconds,
        )
        return result

    def sync_key(self, key: str) -> KeyOutcome:
        """Bring one key (relative to the prefixes) on the target in line with the source right now.

        The source is asked, not trusted from an event, so duplicate or out-of-order events are harmless.
        """
        if not self.options.shard.owns(key):
            return KeyOutcome("not-owned")
        for _ in range(3):
            head = self.copier.head_source(key)
            if head is None:
                # Asking the target first keeps misread or repeated notifications from counting as deletes.
                if self.options.delete != "mirror" or self.copier.head_target(key) is None:
                    return KeyOutcome("absent")
                self.delete_target(key)
                return KeyOutcome("deleted")
            size, etag = int(head.get("ContentLength", 0)), strip_etag(head.get("ETag"))
            target = self.copier.head_target(key)
            if copy_matches(size, etag, target) and target is not None and same_metadata(head, target):
                return KeyOutcome("in-sync", size, etag, strip_etag(target.get("ETag")))
            try:
                copied = self.copier.copy(key, size)
            except SourceVanished:
                continue  # deleted meanwhile: look again, which leads to the delete policy
            return KeyOutcome("copied", copied.size, copied.source_etag, copied.target_etag)
        return KeyOutcome("absent")

    def delete_target(self, key: str) -> None:
        call_s3(
            self.options.retry,
            "DeleteObject",
            self.target.where,
            self.target.objects.delete_object,
            Bucket=self.target.bucket,
            Key=self.target.key(key),
        )


class _Pass:
    """The work of one full pass, with its thread pool, in-flight bound and tallies."""

    def __init__(self, rep: Replicator, result: SyncResult, progress: SyncProgress, stop: threading.Event):
        self.rep = rep
        self.opts = rep.options
        self.result = result
        self.progress = progress
        self.stop = stop
        self.halt = threading.Event()  # set on stop or on a permanent failure
        self.fatal: PermanentS3Error | None = None
        self.refused_in_a_row = 0
        self.lock = threading.Lock()
        # Enough queued work to keep every worker busy, little enough to keep memory flat.
        self.pool = BatchWorkers(self.opts.concurrency, name="dc-copy")

    def run(self) -> None:
        marker_deletes: list[str] = []
        try:
            owns = self.opts.shard.owns
            source = prefetched(self._listing(self.rep.source, owns), stop=self.halt)
            target = prefetched(self._listing(self.rep.target, owns), stop=self.halt)
            for action in plan(merge_join(source, target), self.opts.delete):
                if self.stop.is_set() or self.halt.is_set():
                    self.result.completed = False
                    break
                self._dispatch(action, marker_deletes)
            else:
                self.progress.listing_done = True
            self._drain()
            # Folder markers go last and deepest first: a store on a file system cannot remove a
            # directory before its contents.
            for key in sorted(marker_deletes, reverse=True):
                if self.halt.is_set():
                    break
                self._submit(self._delete, Action(Step.DELETE, key))
            self._drain()
        finally:
            self.halt.set()  # what is still queued returns at once
            self.pool.close()
        if self.fatal is not None:
            raise self.fatal
        if self.stop.is_set():
            self.result.completed = False

    def _listing(self, side: Side, owns: Callable[[str], bool]) -> Any:
        pages = iter_objects(
            side.objects,
            side.bucket,
            side.prefix,
            where=side.where,
            page_size=self.opts.page_size,
            retry=self.opts.retry,
        )
        return only_owned(pages, owns)

    def _dispatch(self, action: Action, marker_deletes: list[str]) -> None:
        if action.step is Step.COPY:  # the common case of a first pass: one progress update, not two
            self.progress.add(
                listed_objects=1, listed_bytes=action.size, pending_objects=1, pending_bytes=action.size
            )
            self._submit(self._copy, action, weight=action.size)
            return
        if action.source is not None:
            self.progress.add(listed_objects=1, listed_bytes=action.source.size)
        match action.step:
            case Step.SKIP:
                self._tally(objects_skipped=1)
                assert action.source is not None
                if self._sampled(action.key):
                    self._submit(self._verify, action.key, action.source.size, action.source.etag)
            case Step.KEEP:
                self._tally(objects_kept=1)
            case Step.DELETE if action.key.endswith("/"):
                marker_deletes.append(action.key)
            case Step.DELETE:
                self._submit(self._delete, action)
            case Step.CHECK:  # may turn into a copy
                self._submit(self._check, action, weight=action.size)

    def _sampled(self, key: str) -> bool:
        return self.opts.verify != "none" and sampled(key, self.opts.sample_percent)

    def _submit(self, fn: Callable[..., None], *args: Any, weight: int = 0) -> None:
        """Hand a task to the workers; `weight` is the bytes it copies (large copies are not batched)."""
        self.pool.submit(self._guarded, fn, *args, weight=weight)

    def _drain(self) -> None:
        """Wait until every submitted task is done."""
        self.pool.drain()

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        if self.halt.is_set():
            return
        key = args[0].key if isinstance(args[0], Action) else str(args[0])
        try:
            fn(*args)
        except Exception as exc:
            self._failed(key, exc)

    def _failed(self, key: str, exc: BaseException) -> None:
        """One object failed: it is named in the result and the pass goes on with the others, unless
        so many refusals in a row show that the store refuses everything."""
        if isinstance(exc, SourceVanished):
            self._tally(objects_vanished=1)
            return
        reason = describe(exc)
        log.warning("%s: %s", key, reason)
        with self.lock:
            self.result.errors += 1
            if len(self.result.failed) < MAX_FAILED_KEYS:
                self.result.failed.append({"key": key, "reason": reason})
            if isinstance(exc, PermanentS3Error):
                self.refused_in_a_row += 1
                if self.refused_in_a_row >= PERMANENT_IN_A_ROW and self.fatal is None:
                    self.fatal = exc
                    self.halt.set()

    def _copied(self, copied: Copied) -> None:
        with self.lock:
            self.refused_in_a_row = 0
            self.result.objects_copied += 1
            self.result.bytes_copied += copied.size
        self.progress.add(done_objects=1, done_bytes=copied.size)

    def _tally(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self.result, name, getattr(self.result, name) + amount)

    def _copy(self, action: Action) -> None:
        copied = self.rep.copier.copy(action.key, action.size)
        self._copied(copied)
        if self._sampled(action.key):
            self._verify(action.key, copied.size, copied.source_etag, copied.expected_etag)

    def _check(self, action: Action) -> None:
        assert action.source is not None
        head = self.rep.copier.head_target(action.key)
        stale = not copy_matches(action.source.size, action.source.etag, head)
        if not stale and head is not None and source_newer(action.source, action.target):
            source_head = self.rep.copier.head_source(action.key)
            stale = source_head is not None and not same_metadata(source_head, head)
        if stale:
            self.progress.add(pending_objects=1, pending_bytes=action.size)
            self._copy(action)
            return
        self._tally(objects_skipped=1)
        if self._sampled(action.key):
            self._verify(action.key, action.source.size, action.source.etag)

    def _delete(self, action: Action) -> None:
        self.rep.delete_target(action.key)
        self._tally(objects_deleted=1)

    def _verify(self, key: str, size: int, etag: str, expected: str = "") -> None:
        """Prove the copy; one found wrong is copied again and proven again (then counted repaired)."""
        self.progress.add(verify_pending=1)
        try:
            verdict = self.rep.verifier.check(key, size, etag, expected)
            if verdict is Verdict.MISMATCH:
                log.warning(
                    "%s: the copy does not match its source (%s); copying it again", key, self.opts.verify
                )
                copied = self.rep.copier.copy(key, size)
                if (
                    self.rep.verifier.check(key, copied.size, copied.source_etag, copied.expected_etag)
                    is Verdict.MATCH
                ):
                    log.warning("%s: repaired", key)
                    with self.lock:
                        self.result.repaired += 1
                        if len(self.result.repaired_keys) < MAX_MISMATCH_KEYS:
                            self.result.repaired_keys.append(key)
                    return
                with self.lock:
                    self.result.mismatch_count += 1
                    if len(self.result.mismatches) < MAX_MISMATCH_KEYS:
                        self.result.mismatches.append(key)
            elif verdict is Verdict.MATCH:
                self._tally(verified=1)
        finally:
            self.progress.add(verify_done=1)


def full_sync(
    source: Location,
    target: Location,
    options: SyncOptions | None = None,
    *,
    progress: SyncProgress | None = None,
    stop: threading.Event | None = None,
) -> SyncResult:
    """One full sync pass from `source` to `target` (see `Replicator.full_sync`)."""
    with Replicator(source, target, options) as replicator:
        return replicator.full_sync(progress=progress, stop=stop)
