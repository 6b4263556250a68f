"""Many continuous followers on one `FollowerHub`: fixed threads, every follower catches up, a stopped
follower copies nothing more."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest

from datacloud.reconcile.dr_flows import FollowerHub
from datacloud.replication.continuous import ContinuousReplicator
from datacloud.replication.engine import SyncOptions
from datacloud.replication.errors import RetryPolicy
from datacloud.replication.events import EventReceiver
from tests.support.replication import Store, start_centre, wait_until

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=2, initial=0.05, maximum=0.2)
FOLLOWERS = 24  # eight times the hub's copy workers below


def test_many_followers_share_a_few_threads(centres: tuple[Store, Store]) -> None:
    src, dst = centres
    hub = FollowerHub(copy_workers=3, scan_workers=2)
    pairs = [(src.bucket("hub"), dst.bucket("hub")) for _ in range(FOLLOWERS)]
    for i, (a, _) in enumerate(pairs):
        src.put_many(a, {f"before/{j}": bytes([i]) * (j + 1) for j in range(3)})
    followers = [
        ContinuousReplicator(
            src.location(a),
            dst.location(b),
            SyncOptions(delete="mirror", concurrency=4, retry=FAST),
            poll_interval=0.3,
            retry_delay=0.2,
            max_retry_delay=1.0,
            driver=hub,
        )
        for a, b in pairs
    ]
    before = threading.active_count()
    for f in followers:
        f.start()
    try:
        for f in followers:
            assert f.wait_caught_up(60)
        for i, (a, _) in enumerate(pairs):
            src.put(a, "after", bytes([i]) * 10)
            src.s3.delete_object(Bucket=a, Key="before/0")
        for a, b in pairs:
            wait_until(lambda a=a, b=b: src.digests(a) == dst.digests(b), 60, f"{a} followed")
        # Threads: the hub's (3 copy, 2 scan, 1 dispatch) and the listings' prefetchers, not per follower.
        assert threading.active_count() - before <= 3 + 2 + 1 + 2 * 2
    finally:
        stopped = followers[0]
        stopped.stop(timeout=10)
        for f in followers[1:]:
            f.stop(timeout=10)
    a, b = pairs[0]
    src.put(a, "after-stop", b"x")
    copied = stopped.stats().objects_copied
    assert stopped.dispatch_once() is None
    assert stopped.scan_once() is None
    assert stopped.stats().objects_copied == copied
    assert "after-stop" not in dst.keys(b)
    hub.copies.shutdown()
    hub.dispatch.stop()
    hub.scans.stop()


def test_notifications_reach_only_the_followers_of_their_bucket(
    centres: tuple[Store, Store], tmp_path: Path
) -> None:
    """One registration per store token: each follower is handed the changes of its own bucket only."""
    _, dst = centres
    receiver = EventReceiver().start()
    token = secrets.token_urlsafe(24)
    hub = FollowerHub(copy_workers=3, scan_workers=2)
    router = hub.router(receiver)
    seen: list[int] = []
    receiver.register(token, lambda changes: seen.append(len(changes)))  # versitygw's start-up test event
    centre = start_centre("routed", tmp_path / "routed", event_webhook=receiver.url(token))
    src = Store(centre)
    pairs = [(src.bucket("routed"), dst.bucket("routed")) for _ in range(12)]
    followers = [
        ContinuousReplicator(
            src.location(a),
            dst.location(b),
            SyncOptions(delete="mirror", concurrency=4, retry=FAST),
            receiver=router.for_bucket(a),
            token=token,
            scan_interval=300,
            driver=hub,
        ).start()
        for a, b in pairs
    ]
    try:
        for f in followers:
            assert f.wait_caught_up(60)
        for i, (a, _) in enumerate(pairs):
            src.put(a, f"k{i}", bytes([i]) * 5)
        for a, b in pairs:
            wait_until(lambda a=a, b=b: src.digests(a) == dst.digests(b), 60, f"{a} followed")
        for f in followers:
            stats = f.stats()
            # Its own object's notification; a record versitygw misnamed (bucket name of another request)
            # reaches the follower of the bucket it names, too (its ARN reading reaches the right one).
            assert stats.changes_received >= 1
            assert stats.changes_ignored == 0  # never handed another bucket's
            assert stats.scans == 1  # copied from the notification, not by a rescan
        received = sum(f.stats().changes_received for f in followers)
        assert len(pairs) <= received <= len(pairs) + receiver.misnamed
    finally:
        for f in followers:
            f.stop(timeout=10)
        centre.stop()
        receiver.stop()
        hub.copies.shutdown()
        hub.dispatch.stop()
        hub.scans.stop()
