"""A follower tells whoever reports its lag (`on_busy`) when changes have been pending for NEWS_AFTER_S
without a break, once per such busy spell, and when its first scan is done: an idle replica then runs
seldom, soon after its follower falls behind, and not after every change copied at once."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.replication import continuous
from datacloud.replication.continuous import ContinuousReplicator
from datacloud.replication.engine import KeyOutcome, SyncOptions
from datacloud.replication.errors import RetryPolicy
from datacloud.replication.events import Change
from datacloud.replication.locations import Location

ENDPOINT = S3Endpoint("http://127.0.0.1:9", "us-east-1", S3Credentials("k", "s"))


class Driver:
    """Takes the copies instead of running them, so what is pending stays pending until they run."""

    def __init__(self) -> None:
        self.work: list[Callable[[], None]] = []

    def submit(self, work: Callable[[], None]) -> None:
        self.work.append(work)

    def dispatch_soon(self, replicator: ContinuousReplicator) -> None:
        pass

    def scan_soon(self, replicator: ContinuousReplicator) -> None:
        pass

    def forget(self, replicator: ContinuousReplicator) -> None:
        pass


def follower(told: list[int]) -> ContinuousReplicator:
    return ContinuousReplicator(
        Location(ENDPOINT, "src"), Location(ENDPOINT, "dst"), driver=Driver(), on_busy=lambda: told.append(1)
    )


def change(key: str, bucket: str = "src") -> list[Change]:
    return [Change(bucket, key, False, "s3:ObjectCreated:Put")]


def age_spell(f: ContinuousReplicator) -> None:
    """As if the current busy spell began NEWS_AFTER_S ago."""
    with f._cond:
        assert f._busy_since is not None
        f._busy_since -= continuous.NEWS_AFTER_S


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=30))
def test_on_busy_once_per_busy_spell(keys: list[str]) -> None:
    told: list[int] = []
    f = follower(told)
    for key in keys:
        f.notify(change(key))
    f.notify(change("x", bucket="other"))  # not this follower's bucket
    assert told == []  # just arrived: no news yet
    age_spell(f)
    for key in keys:
        f.notify(change(key))
    assert f.dispatch_once() is None  # nothing left to wait for: told
    assert len(told) == 1
    with f._cond:  # the backlog cleared (as the copies finishing would)
        f._pending.clear()
    f.notify(change(keys[0]))
    age_spell(f)
    f.notify(change(keys[0]))
    assert len(told) == 2


def test_changes_copied_at_once_are_no_news() -> None:
    """A replica receiving a write a second, each copied in milliseconds, is not woken for each."""
    told: list[int] = []
    f = follower(told)
    driver = f.driver
    assert isinstance(driver, Driver)
    for i in range(20):
        f.notify(change(f"k{i}"))
        f.dispatch_once()
        assert len(driver.work) == 1
        driver.work.clear()
        f._done(f"k{i}", KeyOutcome("copied", 1, "e", "e"))  # as the copy finishing would
    assert told == []


def test_a_spell_becomes_news_by_the_timer_without_another_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy that takes long (a large object): nothing else happens, and the driver's timer, which
    `dispatch_once` asks for, makes the spell news."""
    told: list[int] = []
    f = follower(told)
    f.notify(change("big"))
    wait = f.dispatch_once()  # the copy handed out; the timer asked for
    assert wait is not None
    assert 0 < wait <= continuous.NEWS_AFTER_S
    assert told == []
    age_spell(f)
    assert f.dispatch_once() is None
    assert told == [1]


def test_a_failed_scan_is_tried_again_soon_backing_off_to_the_interval() -> None:
    """Nothing listens on the endpoint's port: every scan fails with the connection refused."""
    f = ContinuousReplicator(
        Location(ENDPOINT, "src"),
        Location(ENDPOINT, "dst"),
        SyncOptions(retry=RetryPolicy(attempts=1)),
        driver=Driver(),
        poll_interval=300.0,  # no receiver: the follower polls, a scan every poll_interval
    )
    f._swept = True  # only the scan itself
    delays = [f.scan_once() for _ in range(10)]
    assert delays[:4] == [2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == 300.0
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(delays))
    error = f.stats().last_error
    assert error is not None
    assert "scan:" in error
