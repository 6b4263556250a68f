"""The webhook receiver for bucket event notifications, and the parser of their S3 event-record JSON.

versitygw posts notifications without any authentication header, so the receiver authenticates by an
unguessable token in the path, `/events/<token>`, compared in constant time. Anything else is refused
(404 for other paths, 401 for a wrong token, 400 for a body that is not an event notification) without
affecting the server.

Keys: AWS URL-encodes `s3.object.key` (form style, `+` for space); versitygw sends the key as is. In
"auto" mode both readings are handed on when they differ. That is safe because an event is only a hint:
the replicator asks the source about each key, so a reading that names no object changes nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote_plus

log = logging.getLogger(__name__)

KeyEncoding = Literal["auto", "raw", "url"]
PATH_PREFIX = "/events/"
MAX_BODY = 1024 * 1024
MIN_TOKEN_LENGTH = 16
CONNECTION_WORKERS = 2  # each notification takes about a millisecond; the backlog holds bursts
# A connection that sends no complete request for this long is closed, so it does not hold a worker.
IDLE_CONNECTION_S = 2.0


class BadNotification(ValueError):
    """The body is not an S3 event notification."""


@dataclass(frozen=True)
class Change:
    """One object that changed in a bucket, according to a notification."""

    bucket: str
    key: str
    removed: bool
    event: str
    # Read from the record's ARN because its bucket name or key said otherwise (see `_changes_of`).
    from_arn: bool = False


def parse_notification(body: bytes, encoding: KeyEncoding = "auto") -> list[Change]:
    """The changes an S3 event notification announces; [] for a test event (sent when a store starts)."""
    try:
        document: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadNotification("body is not JSON") from None
    if not isinstance(document, dict):
        raise BadNotification("body is not a JSON object")
    if "Records" not in document:
        if str(document.get("Event", "")).endswith("TestEvent"):
            return []
        raise BadNotification("no Records")
    records = document["Records"]
    if not isinstance(records, list):
        raise BadNotification("Records is not a list")
    changes: list[Change] = []
    for record in records:
        changes.extend(_changes_of(record, encoding))
    return changes


def _changes_of(record: Any, encoding: KeyEncoding) -> list[Change]:
    try:
        event = record["eventName"]
        bucket = record["s3"]["bucket"]["name"]
        key = record["s3"]["object"]["key"]
    except (TypeError, KeyError):
        raise BadNotification("a record lacks eventName, s3.bucket.name or s3.object.key") from None
    if not all(isinstance(value, str) for value in (event, bucket, key)) or not key or not bucket:
        raise BadNotification("eventName, bucket name and key must be non-empty strings")
    if not event.startswith("s3:"):
        event = "s3:" + event  # some stores omit the prefix
    removed = event.startswith("s3:ObjectRemoved:")
    changes = [Change(bucket, candidate, removed, event) for candidate in key_readings(key, encoding)]
    named = arn_path(record["s3"]["bucket"].get("arn"))
    if named is not None and named != (bucket, key):
        # versitygw 1.8 builds the ARN from the request path when it makes the event, but fills the
        # bucket name (and a key without "/") with a view of the request buffer that the next request
        # reuses before the event is sent: about one notification in 500 under load named another
        # bucket, and its object was copied only by the next scan. Both readings are handed on (an
        # event is only a hint; the follower of a bucket that lacks the key finds nothing to do).
        changes += [
            Change(named[0], k, removed, event, from_arn=True) for k in key_readings(named[1], encoding)
        ]
    return changes


ARN_PREFIX = "arn:aws:s3:::"


def arn_path(arn: Any) -> tuple[str, str] | None:
    """(bucket, key) from an ARN naming the object by its request path, `arn:aws:s3:::/bucket/key`
    (versitygw's form); None for any other ARN (AWS names only the bucket: `arn:aws:s3:::bucket`)."""
    if not isinstance(arn, str) or not arn.startswith(ARN_PREFIX + "/"):
        return None
    bucket, _, key = arn[len(ARN_PREFIX) + 1 :].partition("/")
    return (bucket, key) if bucket and key else None


def key_readings(key: str, encoding: KeyEncoding) -> list[str]:
    if encoding == "raw":
        return [key]
    decoded = unquote_plus(key)
    if encoding == "url" or decoded == key:
        return [decoded]
    return [key, decoded]


Sink = Callable[[list[Change]], None]


class EventReceiver:
    """An HTTP server in a background thread that hands notifications to the sinks of their token.

    Several sinks may share one token (one per replicated bucket of a store); each filters by bucket.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, encoding: KeyEncoding = "auto") -> None:
        self.encoding = encoding
        self._sinks: dict[str, list[Sink]] = {}
        self._lock = threading.Lock()
        self.accepted = 0
        self.rejected = 0
        self.misnamed = 0  # records whose ARN named another bucket or key than their name fields
        self._server = _PooledHTTPServer((host, port), _handler_for(self), CONNECTION_WORKERS)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, token: str) -> str:
        """The URL to configure as the store's webhook (it contains the token: treat it as a secret)."""
        return f"http://{self.host}:{self.port}{PATH_PREFIX}{token}"

    def register(self, token: str, sink: Sink) -> None:
        if len(token) < MIN_TOKEN_LENGTH or not token.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"a webhook token needs at least {MIN_TOKEN_LENGTH} URL-safe characters")
        with self._lock:
            self._sinks.setdefault(token, []).append(sink)

    def unregister(self, token: str, sink: Sink) -> None:
        with self._lock:
            sinks = self._sinks.get(token, [])
            if sink in sinks:
                sinks.remove(sink)
            if not sinks:
                self._sinks.pop(token, None)

    def start(self) -> EventReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="event-receiver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever, so only when it runs
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def sinks_for(self, presented: str) -> list[Sink] | None:
        """The sinks of the token presented, compared in constant time; None for an unknown token."""
        with self._lock:
            entries = list(self._sinks.items())
        found: list[Sink] | None = None
        for token, sinks in entries:
            # Compare against every token so the time taken does not reveal which one was close.
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = list(sinks)
        return found

    def count(self, accepted: bool, misnamed: int = 0) -> None:
        with self._lock:
            if accepted:
                self.accepted += 1
            else:
                self.rejected += 1
            self.misnamed += misnamed


class _PooledHTTPServer(ThreadingHTTPServer):
    """Connections served by a fixed pool of threads: the standard server starts a thread per
    connection, so the operator's threads grew with the notifications in flight."""

    # versitygw opens a connection per notification, a hundred a second under load. With the standard
    # backlog of 5 the kernel dropped connection attempts whenever the accepting thread waited for the
    # GIL; versitygw's retry of the handshake comes after 1 s and 3 s, and it gives up after 3 s: those
    # notifications were lost (their objects copied only by the next scan, minutes later).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], workers: int) -> None:
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="event-conn")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self.process_request_thread, request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _handler_for(receiver: EventReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_CONNECTION_S

        def do_POST(self) -> None:
            self.misnamed = 0
            status = self._handle()
            receiver.count(status == HTTPStatus.OK, self.misnamed)
            # One notification per connection: versitygw never reads the answer, so it never reuses
            # the connection, and one kept open would hold a worker while notifications queue behind it
            # (versitygw gives up on one after 3 s and drops it).
            self.close_connection = True
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        def _handle(self) -> HTTPStatus:
            if not self.path.startswith(PATH_PREFIX):
                self.close_connection = True
                return HTTPStatus.NOT_FOUND
            sinks = receiver.sinks_for(self.path[len(PATH_PREFIX) :])
            if sinks is None:
                self.close_connection = True
                return HTTPStatus.UNAUTHORIZED
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.close_connection = True
                return HTTPStatus.LENGTH_REQUIRED
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            body = self.rfile.read(length)
            try:
                changes = parse_notification(body, receiver.encoding)
            except BadNotification as exc:
                log.info("refused a notification: %s", exc)
                return HTTPStatus.BAD_REQUEST
            self.misnamed = len({(c.bucket, c.key) for c in changes if c.from_arn})
            for sink in sinks:
                sink(changes)
            return HTTPStatus.OK

        def do_GET(self) -> None:
            self._refuse()

        def do_PUT(self) -> None:
            self._refuse()

        def do_DELETE(self) -> None:
            self._refuse()

        def _refuse(self) -> None:
            receiver.count(False)
            self.close_connection = True
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            # The default logs the request line, whose path holds the token.
            log.debug("webhook %s from %s", getattr(self, "command", "-"), self.client_address[0])

    return Handler
