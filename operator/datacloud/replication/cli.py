"""`datacloud sync SRC DST`: the command-line face of the replication engine.

Mounted under the main `datacloud` command through `add_sync_arguments` and `run_sync`; also runnable on
its own as `python -m datacloud.replication.cli`. Exit codes (also in --help): see `EXIT_CODES`.
Failures print one line on stderr (per failed object, and one for the run); a JSON summary goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datacloud import settings
from datacloud.adapters.s3 import S3Endpoint
from datacloud.api.overlap import Place, overlap, store_name
from datacloud.api.reserved_names import RESERVED_BUCKETS, RESERVED_MESSAGE

from .locations import Location, LocationError, load_credentials, split_location
from .shard import Shard, parse_shard
from .throttle import parse_size

if TYPE_CHECKING:
    # The engine (and botocore's exceptions, tenacity, the S3 client) are imported when a sync runs,
    # not for `--help` or a bad argument: they are most of the command's start-up time.
    from .engine import SyncOptions, SyncResult

log = logging.getLogger("datacloud.sync")

Resolver = Callable[[str], tuple[S3Endpoint, str, str]]
PROG = "datacloud sync"
EXIT_CODES = """exit codes:
  0  done: every object copied (or already in sync) and, with --verify, proven (repairs included)
  1  the run failed or was incomplete: a store refused or was out of reach, some objects failed (each
     is named on stderr and in the JSON summary), a verification mismatch stayed, or it was interrupted
  2  unusable input: a bad option or location, an unreadable credentials file, or a source and target
     that overlap (one holds the other's keys)"""
# Failed objects named on stderr; the JSON summary names up to MAX_FAILED_KEYS.
FAILED_LINES = 20


class UsageError(Exception):
    """Input that cannot work; reported in one line with exit code 2."""


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_CODES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source",
        metavar="SRC",
        help="ENDPOINT_URL/BUCKET[/PREFIX] to copy from (datacloud sync: also centre:NAME/BUCKET[/PREFIX])",
    )
    parser.add_argument("target", metavar="DST", help="ENDPOINT_URL/BUCKET[/PREFIX] to copy to (as SRC)")
    parser.add_argument(
        "--src-credentials",
        metavar="FILE",
        type=Path,
        help="JSON or KEY=value file with accessKeyId, secretAccessKey, region",
    )
    parser.add_argument("--dst-credentials", metavar="FILE", type=Path, help="as --src-credentials")
    parser.add_argument(
        "--mode",
        choices=["full", "continuous"],
        default="full",
        help="full: one pass, then exit; continuous: follow changes until stopped (default full)",
    )
    parser.add_argument(
        "--delete",
        choices=["mirror", "retain"],
        default="retain",
        help="mirror deletes target objects missing from the source; retain keeps them",
    )
    parser.add_argument(
        "--verify",
        choices=["none", "size-etag", "sha256"],
        default="none",
        help="prove each copy: size-etag checks the target's own ETag against the MD5 its bytes must have "
        "(reading the source only for copies made in parts by an earlier run); sha256 reads and hashes "
        "both sides. A copy found wrong is copied again and reported as repaired (default none)",
    )
    parser.add_argument(
        "--sample",
        metavar="PCT",
        default="100",
        help="percentage of objects to verify, picked deterministically (default 100)",
    )
    parser.add_argument(
        "--bandwidth", metavar="SIZE", help="bytes per second over all workers, e.g. 50Mi (default unlimited)"
    )
    parser.add_argument("--concurrency", metavar="N", default="8", help="parallel copies (default 8)")
    parser.add_argument(
        "--shard",
        metavar="i/N",
        default="0/1",
        help="take shard i (0-based) of N of the key space, e.g. a Job completion index",
    )
    parser.add_argument(
        "--multipart-threshold",
        metavar="SIZE",
        default="128Mi",
        help="objects larger than this are copied in parts, at most 5Gi (default 128Mi)",
    )
    parser.add_argument(
        "--part-size",
        metavar="SIZE",
        default="8Mi",
        help="size of each part, 5Mi to 5Gi (default 8Mi); larger where an object needs over 10,000",
    )
    parser.add_argument("--page-size", metavar="N", default="1000", help="keys per listing request")
    parser.add_argument(
        "--retries", metavar="N", default="8", help="attempts per request on transient errors (default 8)"
    )
    parser.add_argument(
        "--progress-interval",
        metavar="SECONDS",
        default="10",
        help="seconds between progress lines when stderr is not a terminal",
    )
    group = parser.add_argument_group("continuous mode")
    group.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:8087",
        help="address of the notification webhook receiver (default 127.0.0.1:8087)",
    )
    group.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help="file holding the webhook token (created with a new token if missing); "
        "the webhook URL is http://HOST:PORT/events/<token>",
    )
    group.add_argument(
        "--poll", metavar="SECONDS", help="no notifications: diff the listings every SECONDS instead"
    )
    group.add_argument(
        "--scan-interval",
        metavar="SECONDS",
        default="300",
        help="seconds between safety-net listing passes when using notifications (default 300)",
    )
    group.add_argument("--duration", metavar="SECONDS", help="stop after SECONDS (default: until SIGTERM)")


def run_sync(
    args: argparse.Namespace,
    resolve: Resolver | None = None,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run the sync the arguments describe; `on_summary` also receives the JSON summary of a full sync
    (the operator's Jobs use it to report their result)."""
    _configure_logging()
    try:
        source = _location(args.source, args.src_credentials, "--src-credentials", resolve)
        target = _location(args.target, args.dst_credentials, "--dst-credentials", resolve)
        _refuse_overlap(source, target)
        options = _options(args)
        if args.mode == "continuous":
            return _run_continuous(args, source, target, options)
        return _run_full(args, source, target, options, on_summary)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from .errors import ReplicationError, describe

        # One line, no traceback: the engine's errors name the operation and the endpoint. The
        # traceback is kept for DATACLOUD_LOG_LEVEL=DEBUG, for whatever was not foreseen.
        log.debug("the sync failed", exc_info=True)
        message = str(exc) if isinstance(exc, ReplicationError) else describe(exc)
        print(f"{PROG}: failed: {message}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": message}))
        return 1


def _refuse_overlap(source: Location, target: Location) -> None:
    """Copying a location into itself or into a part of itself would grow copies of copies (or, with
    --delete mirror, delete the source): refused before anything runs."""
    a = Place(store_name(source.endpoint.url), source.bucket, source.prefix)
    b = Place(store_name(target.endpoint.url), target.bucket, target.prefix)
    if overlap(a, b):
        raise UsageError(
            f"source {source} and target {target} overlap (one holds the other's keys); "
            "choose another bucket or prefixes where neither contains the other"
        )
    if target.bucket in RESERVED_BUCKETS:
        raise UsageError(f"DST bucket {target.bucket} {RESERVED_MESSAGE}")


def _location(text: str, credentials: Path | None, flag: str, resolve: Resolver | None) -> Location:
    if text.startswith(("http://", "https://")):
        if credentials is None:
            raise UsageError(f"{flag} FILE is required for {text}")
        try:
            url, bucket, prefix = split_location(text)
            creds, region = load_credentials(credentials)
        except LocationError as exc:
            raise UsageError(str(exc)) from None
        return Location(S3Endpoint(url, region, creds), bucket, prefix)
    if resolve is None:
        raise UsageError(f"{text!r} is not ENDPOINT_URL/BUCKET[/PREFIX]")
    try:
        endpoint, bucket, prefix = resolve(text)
    except Exception as exc:
        raise UsageError(f"cannot resolve {text!r}: {exc}") from None
    return Location(endpoint, bucket, prefix)


def _options(args: argparse.Namespace) -> SyncOptions:
    from .engine import SyncOptions
    from .errors import RetryPolicy

    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return SyncOptions(
            delete=args.delete,
            verify=args.verify,
            sample_percent=_float(args.sample, "--sample"),
            concurrency=_int(args.concurrency, "--concurrency"),
            multipart_threshold=_size(args.multipart_threshold, "--multipart-threshold"),
            part_size=_size(args.part_size, "--part-size"),
            page_size=_int(args.page_size, "--page-size"),
            bandwidth=_bandwidth(args.bandwidth) if args.bandwidth else None,
            shard=shard,
            retry=RetryPolicy(attempts=max(1, _int(args.retries, "--retries"))),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{flag} must be a whole number, not {text!r}") from None
    if value < 0:
        raise UsageError(f"{flag} must not be negative")
    return value


def _float(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} must be a number, not {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise UsageError(f"{flag} must not be negative")
    return value


def _size(text: str, flag: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _bandwidth(text: str) -> int:
    """At least 1Ki: below that the limit was taken as none at all (0, or 500m made whole bytes)."""
    found = _size(text, "--bandwidth")
    if found < 1024:
        raise UsageError(f"--bandwidth: {text!r} is under 1Ki bytes per second; leave it out for no limit")
    return found


def _run_full(
    args: argparse.Namespace,
    source: Location,
    target: Location,
    options: SyncOptions,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    from .engine import Replicator
    from .progress import ProgressReporter

    interval = _float(args.progress_interval, "--progress-interval")
    started = datetime.now(UTC).isoformat()
    with Replicator(source, target, options) as replicator, _stop_on_signals() as stop:
        reporter = ProgressReporter(interval=interval)
        with reporter.running():
            result = replicator.full_sync(progress=reporter.progress, stop=stop)
    summary = {
        **_summary(args, source, target, options.shard, result),
        "startedAt": started,
        "finishedAt": datetime.now(UTC).isoformat(),
    }
    print(json.dumps(summary))
    if on_summary is not None:
        on_summary(summary)
    for failure in result.failed[:FAILED_LINES]:
        print(f"{PROG}: failed: {failure['key']}: {failure['reason']}", file=sys.stderr)
    if result.errors > FAILED_LINES:
        print(f"{PROG}: ... and {result.errors - FAILED_LINES} more (see the JSON summary)", file=sys.stderr)
    for key in result.repaired_keys:
        print(f"{PROG}: repaired: {key} (its copy did not match; copied again and proven)", file=sys.stderr)
    for key in result.mismatches:
        print(f"{PROG}: mismatch: {key} (still differs after a recopy)", file=sys.stderr)
    if not result.completed:
        print(f"{PROG}: interrupted before the sync finished", file=sys.stderr)
    elif result.errors or result.mismatch_count:
        print(
            f"{PROG}: {result.errors} object(s) failed, {result.mismatch_count} verification mismatch(es); "
            "the others were copied",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def _summary(
    args: argparse.Namespace, source: Location, target: Location, shard: Shard, result: SyncResult
) -> dict[str, Any]:
    return {
        "mode": "full",
        "source": str(source),
        "target": str(target),
        "shard": str(shard),
        "delete": args.delete,
        "verify": args.verify,
        **result.to_dict(),
    }


def _run_continuous(
    args: argparse.Namespace, source: Location, target: Location, options: SyncOptions
) -> int:
    # Imported here: the receiver's HTTP server and the follower are not needed by a full sync.
    from .continuous import ContinuousReplicator
    from .events import EventReceiver

    duration = _float(args.duration, "--duration") if args.duration else None
    receiver: EventReceiver | None = None
    token: str | None = None
    kwargs: dict[str, Any] = {}
    if args.poll is not None:
        kwargs["poll_interval"] = max(0.1, _float(args.poll, "--poll"))
    else:
        if args.token_file is None:
            raise UsageError("continuous mode needs --token-file (the webhook token), or --poll SECONDS")
        token = _token(args.token_file)
        host, port = _listen(args.listen)
        receiver = EventReceiver(host, port).start()
        kwargs["scan_interval"] = max(1.0, _float(args.scan_interval, "--scan-interval"))
        log.info(
            "receiving notifications on http://%s:%d/events/<token from %s>",
            receiver.host,
            receiver.port,
            args.token_file,
        )
    replicator = ContinuousReplicator(source, target, options, receiver=receiver, token=token, **kwargs)
    replicator.replicator.check_buckets()
    interval = _float(args.progress_interval, "--progress-interval")
    with _stop_on_signals() as stop:
        replicator.start()
        deadline = time.monotonic() + duration if duration is not None else None
        try:
            while not stop.is_set():
                remaining = deadline - time.monotonic() if deadline is not None else interval
                if remaining <= 0 or stop.wait(min(interval, remaining)):
                    break
                stats = replicator.stats()
                log.info(
                    "pending %d, current lag %.1fs, copied %d, deleted %d, failures %d, parked %d",
                    stats.pending,
                    stats.current_lag_seconds,
                    stats.objects_copied,
                    stats.objects_deleted,
                    stats.failures,
                    stats.parked,
                )
        finally:
            replicator.stop()
            if receiver is not None:
                receiver.stop()
    stats = replicator.stats()
    summary = {"mode": "continuous", "source": str(source), "target": str(target), **asdict(stats)}
    summary["recent_lags"] = list(stats.recent_lags)
    print(json.dumps(summary))
    return 0


def _token(path: Path) -> str:
    try:
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
            log.info("wrote a new webhook token to %s", path)
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot use token file {path}: {type(exc).__name__}") from None
    if len(token) < 16:
        raise UsageError(f"the token in {path} is too short (at least 16 characters)")
    return token


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen must be HOST:PORT, not {text!r}")
    return host or "0.0.0.0", int(port)  # noqa: S104 - listening on all interfaces is what ":PORT" asks


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so a run ends cleanly and still prints its summary."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        level = settings.current().log_level
        logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
        # botocore logs request details at DEBUG; keep them out unless asked for explicitly.
        logging.getLogger("botocore").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Replicate objects between S3 stores.")
    add_sync_arguments(parser)
    return run_sync(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
