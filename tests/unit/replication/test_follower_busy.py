"""A follower tells whoever reports its lag when a change arrives with nothing pending, once per busy
spell: an idle replica then runs seldom, and soon after its follower gets work."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.replication.continuous import ContinuousReplicator
from datacloud.replication.events import Change
from datacloud.replication.locations import Location

ENDPOINT = S3Endpoint("http://127.0.0.1:9", "us-east-1", S3Credentials("k", "s"))


class Driver:
    """Takes the copies instead of running them, so what is pending stays pending until `finish`."""

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


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=30))
def test_on_busy_once_per_busy_spell(keys: list[str]) -> None:
    told: list[int] = []
    follower = ContinuousReplicator(
        Location(ENDPOINT, "src"),
        Location(ENDPOINT, "dst"),
        driver=Driver(),
        on_busy=lambda: told.append(1),
    )
    for key in keys:
        follower.notify([Change("src", key, False, "s3:ObjectCreated:Put")])
    follower.notify([Change("other", "x", False, "s3:ObjectCreated:Put")])  # not this follower's bucket
    assert len(told) == 1
    with follower._cond:  # the backlog cleared (as the copies finishing would)
        follower._pending.clear()
    follower.notify([Change("src", keys[0], False, "s3:ObjectCreated:Put")])
    assert len(told) == 2
