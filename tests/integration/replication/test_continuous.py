"""Continuous replication from real versitygw bucket notifications, polling, and the safety-net scan."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from datacloud.replication.continuous import ContinuousReplicator
from datacloud.replication.engine import KeyOutcome, SyncOptions
from datacloud.replication.errors import RetryPolicy
from datacloud.replication.events import Change, EventReceiver
from tests.support.replication import Store, start_centre, wait_until

pytestmark = pytest.mark.integration

FAST = RetryPolicy(attempts=2, initial=0.05, maximum=0.2)


class Notifying:
    """A source centre whose versitygw posts bucket notifications to our receiver."""

    def __init__(self, store: Store, receiver: EventReceiver, token: str) -> None:
        self.store, self.receiver, self.token = store, receiver, token


@pytest.fixture(scope="module")
def notifying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notifying]:
    receiver = EventReceiver().start()
    token = secrets.token_urlsafe(24)
    seen_test_event: list[int] = []
    receiver.register(token, lambda changes: seen_test_event.append(len(changes)))
    # The receiver must listen before versitygw starts: versitygw posts a test event at start-up and
    # refuses to start if the connection is refused.
    centre = start_centre("events", tmp_path_factory.mktemp("events"), event_webhook=receiver.url(token))
    assert seen_test_event == [0]  # the s3:TestEvent, accepted and carrying no change
    yield Notifying(Store(centre), receiver, token)
    centre.stop()
    receiver.stop()


def follower(
    source: Store, src_bucket: str, target: Store, dst_bucket: str, **kwargs: object
) -> ContinuousReplicator:
    options = SyncOptions(delete="mirror", concurrency=4, retry=FAST)
    return ContinuousReplicator(
        source.location(src_bucket),
        target.location(dst_bucket),
        options,
        retry_delay=0.2,
        max_retry_delay=1.0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_notifications_drive_copies_and_deletes(notifying: Notifying, centres: tuple[Store, Store]) -> None:
    src, dst = notifying.store, centres[1]
    src_bucket, dst_bucket = src.bucket("live"), dst.bucket("live")
    src.put(src_bucket, "before-start", b"0")
    lags: list[tuple[str, float]] = []
    rep = follower(
        src,
        src_bucket,
        dst,
        dst_bucket,
        receiver=notifying.receiver,
        token=notifying.token,
        scan_interval=3600,
        on_lag=lambda key, lag: lags.append((key, lag)),
    )
    rep.start()
    try:
        assert rep.wait_caught_up(30)
        keys = ["中文 目录/文件+1.txt", "a+b c%41#?.bin", "plain", "dir/"]
        for key in keys:
            src.put(src_bucket, key, key.encode() if not key.endswith("/") else b"")
        src.s3.delete_object(Bucket=src_bucket, Key="before-start")

        wait_until(lambda: src.digests(src_bucket) == dst.digests(dst_bucket), 30, "events replicated")
        stats = wait_until(
            lambda: (s := rep.stats()).objects_deleted == 1 and s.pending == 0 and s,
            10,
            f"stats settled {rep.stats()}",
        )
    finally:
        rep.stop()

    assert stats.scans == 1  # only the initial scan ran: the notifications did the work
    assert stats.changes_received >= len(keys) + 1
    assert stats.objects_copied == len(keys) + 1  # the initial object, then each new one
    # Every change has its lag measured (a key notified twice while its copy ran may be measured twice).
    assert stats.lag_count >= len(keys) + 1
    assert {key for key, _ in lags} >= {*keys, "before-start"}
    assert all(lag >= 0 for _, lag in lags)


def test_changes_queue_while_the_target_is_down(notifying: Notifying, spare_centre: Store) -> None:
    src, dst = notifying.store, spare_centre
    src_bucket, dst_bucket = src.bucket("down"), dst.bucket("down")
    rep = follower(
        src,
        src_bucket,
        dst,
        dst_bucket,
        receiver=notifying.receiver,
        token=notifying.token,
        scan_interval=3600,
    )
    rep.start()
    try:
        assert rep.wait_caught_up(30)
        dst.centre.stop()
        for i in range(5):
            src.put(src_bucket, f"while-down-{i}", b"w" * i)
        waiting = wait_until(lambda: (s := rep.stats()).failures > 0 and s.pending == 5 and s, 30, "failures")
        assert waiting.current_lag_seconds > 0
        dst.centre.restart()
        wait_until(lambda: rep.stats().pending == 0, 30, "queue drained")
    finally:
        rep.stop()
    assert src.digests(src_bucket) == dst.digests(dst_bucket)
    assert rep.stats().scans == 1  # caught up from the queue, not by a rescan


def test_poll_mode_without_notifications(centres: tuple[Store, Store]) -> None:
    src, dst = centres
    src_bucket, dst_bucket = src.bucket("poll"), dst.bucket("poll")
    rep = follower(src, src_bucket, dst, dst_bucket, poll_interval=0.2)
    rep.start()
    try:
        assert rep.wait_caught_up(30)
        src.put_many(src_bucket, {f"polled/{i}": b"p" * i for i in range(7)})
        wait_until(lambda: src.digests(src_bucket) == dst.digests(dst_bucket), 30, "polled copies")
        src.s3.delete_object(Bucket=src_bucket, Key="polled/3")
        wait_until(lambda: "polled/3" not in dst.keys(dst_bucket), 30, "polled delete")
    finally:
        rep.stop()
    stats = rep.stats()
    assert stats.objects_copied == 7
    assert stats.objects_deleted == 1
    assert stats.scans >= 2


def test_safety_net_scan_catches_what_no_notification_announced(
    notifying: Notifying, centres: tuple[Store, Store]
) -> None:
    # The source centre here sends no notifications at all; only the periodic scan can notice changes.
    src, dst = centres
    src_bucket, dst_bucket = src.bucket("quiet"), dst.bucket("quiet")
    rep = follower(
        src,
        src_bucket,
        dst,
        dst_bucket,
        receiver=notifying.receiver,
        token=notifying.token,
        scan_interval=0.5,
    )
    rep.start()
    try:
        src.put(src_bucket, "unannounced", b"u")
        wait_until(lambda: dst.keys(dst_bucket) == ["unannounced"], 30, "scan copy")
    finally:
        rep.stop()
    assert rep.stats().changes_received == 0


def test_receiver_refuses_bad_requests_and_keeps_serving(notifying: Notifying) -> None:
    receiver, token = notifying.receiver, notifying.token

    def post(path: str, body: bytes) -> int:
        request = urllib.request.Request(
            f"http://{receiver.host}:{receiver.port}{path}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a loopback test URL
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    record = {"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}
    good = json.dumps({"Records": [record]}).encode()
    assert post(f"/events/{token}", good) == 200
    assert post(f"/events/{'x' * len(token)}", good) == 401
    assert post("/events/", good) == 401
    assert post(f"/other/{token}", good) == 404
    assert post(f"/events/{token}", b"{not json") == 400
    assert post(f"/events/{token}", json.dumps({"Records": [{"eventName": "x"}]}).encode()) == 400
    assert post(f"/events/{token}", good) == 200


def test_a_metadata_only_change_follows_its_notification(
    notifying: Notifying, centres: tuple[Store, Store]
) -> None:
    src, dst = notifying.store, centres[1]
    src_bucket, dst_bucket = src.bucket("meta"), dst.bucket("meta")
    src.put(src_bucket, "page.html", b"<p>v</p>", ContentType="text/plain", Metadata={"rev": "1"})
    rep = follower(src, src_bucket, dst, dst_bucket, receiver=notifying.receiver, token=notifying.token)
    rep.start()
    try:
        assert rep.wait_caught_up(30)
        assert dst.head(dst_bucket, "page.html")["Metadata"]["rev"] == "1"
        src.s3.copy_object(
            Bucket=src_bucket,
            Key="page.html",
            CopySource={"Bucket": src_bucket, "Key": "page.html"},
            MetadataDirective="REPLACE",
            ContentType="text/html",
            Metadata={"rev": "2"},
        )
        head = wait_until(
            lambda: (h := dst.head(dst_bucket, "page.html"))["Metadata"]["rev"] == "2" and h,
            30,
            "the new metadata replicated",
        )
    finally:
        rep.stop()

    assert head["ContentType"] == "text/html"
    assert rep.stats().scans == 1  # carried by the notification, not by a later scan


def test_a_change_announced_again_during_its_copy_is_measured_once_delivered(
    centres: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate notification lands while the key's copy runs: the key goes again, finds the copy in
    line, and the change's lag is recorded then (it was delivered by the copy in flight)."""
    src, dst = centres
    src_bucket, dst_bucket = src.bucket("rerun"), dst.bucket("rerun")
    lags: list[str] = []
    rep = follower(
        src, src_bucket, dst, dst_bucket, poll_interval=3600, on_lag=lambda key, _: lags.append(key)
    )
    real = rep.replicator.sync_key
    entered, release = threading.Event(), threading.Event()

    def held_once(key: str) -> KeyOutcome:
        if key == "k" and not entered.is_set():
            entered.set()
            release.wait(10)
        return real(key)

    monkeypatch.setattr(rep.replicator, "sync_key", held_once)
    rep.start()
    try:
        assert rep.wait_caught_up(30)
        src.put(src_bucket, "k", b"v1")
        change = Change(src_bucket, "k", False, "s3:ObjectCreated:Put")
        rep.notify([change])
        assert entered.wait(10)
        rep.notify([change])  # announced again while the copy is in flight
        release.set()
        stats = wait_until(
            lambda: (s := rep.stats()).pending == 0 and s.in_flight == 0 and s,
            10,
            "the copy and its rerun done",
        )
    finally:
        release.set()
        rep.stop()
    assert stats.objects_copied == 1  # the rerun found the copy in line
    assert stats.lag_count == 1
    assert lags == ["k"]
    assert dst.digests(dst_bucket) == src.digests(src_bucket)
