"""Write leases: the bound a failover waits for covers every expiry that may have reached the store."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.adapters import s3, s3_wire
from datacloud.failover import fencing, lease

ENDPOINT = s3.S3Endpoint("http://127.0.0.1:1", "us-east-1", s3.S3Credentials("k", "s"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Refused(s3_wire.NotSent):
    """The store's port refused the connection."""


class Lost(TimeoutError):
    """The request was sent; its answer never came."""


class Store:
    """Stands in for renew_many: records the lease expiries that reached the store, or fails."""

    def __init__(self) -> None:
        self.reached: dict[str, list[int]] = {}
        self.failure: type[Exception] | None = None

    def renew_many(
        self, endpoint: Any, bucket: str, wanted: Any, client: Any = None, seen: Any = None
    ) -> bool:
        statements = wanted() if callable(wanted) else wanted
        if self.failure is not None and issubclass(self.failure, s3_wire.NotSent):
            raise self.failure("not sent")
        for owner, theirs in statements.items():
            for s in theirs:
                if s["Sid"].startswith(fencing.LEASE_SID_PREFIX):
                    until = int(s["Condition"]["NumericGreaterThanEquals"]["aws:EpochTime"])
                    self.reached.setdefault(owner, []).append(until)
        if self.failure is Lost:  # sent, answer lost: it may be in force
            raise Lost("answer lost")
        return True


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    fake = Store()
    monkeypatch.setattr(fencing, "renew_many", fake.renew_many)
    monkeypatch.setattr(lease, "wire", lambda endpoint: None)
    return fake


def held(bucket: str = "b", length: float = 6.0) -> lease.Held:
    return lease.Held(ENDPOINT, bucket, "p", None, length)


def test_length_follows_down_for_within_bounds() -> None:
    assert lease.length_s(0) == lease.LEASE_MIN_S
    assert lease.length_s(45) == 45
    assert lease.length_s(10_000) == lease.LEASE_MAX_S


def test_the_lease_statement_denies_writes_from_its_expiry_on() -> None:
    s = fencing.lease_statement("b", "p", "0" * 16, 123)
    assert s["Effect"] == "Deny"
    assert s["Resource"] == ["arn:aws:s3:::b/p/*"]
    assert s["Condition"] == {"NumericGreaterThanEquals": {"aws:EpochTime": "123"}}


def test_fencing_replaces_the_lease_and_a_lease_replaces_the_fence() -> None:
    owner = "0123456789abcdef"
    leased = fencing.rewritten(None, owner, fencing.desired("b", "p", owner, None, "probe", 50))
    fenced = fencing.rewritten(leased, owner, fencing.desired("b", "p", owner, 3, "probe"))
    sids = [s["Sid"] for s in json.loads(fenced or "{}")["Statement"]]
    assert sids == [f"datacloud-probe-{owner}", f"datacloud-fence-{owner}-epoch-3"]
    assert fencing.fence_epoch(leased, owner) is None
    again = fencing.rewritten(fenced, owner, fencing.desired("b", "p", owner, None, "probe", 60))
    assert fencing.fence_epoch(again, owner) is None
    assert "datacloud-lease-" in (again or "")


def test_a_fresh_process_assumes_its_predecessor_renewed_as_it_started(store: Store) -> None:
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    clock.now += 2
    assert leases.release("o", 6.0) == leases.started + 6.0


def test_a_renewal_that_never_left_does_not_extend_the_bound(store: Store) -> None:
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    clock.now += 100
    first = leases.grant("o", held())
    clock.now += 3
    store.failure = s3_wire.NotSent
    leases.renew(ENDPOINT, "b")
    assert leases.release("o", 6.0) == first


def test_a_renewal_whose_answer_was_lost_extends_the_bound(store: Store) -> None:
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    clock.now += 100
    leases.grant("o", held())
    clock.now += 3
    store.failure = Lost
    leases.renew(ENDPOINT, "b")
    assert leases.release("o", 6.0) == max(store.reached["o"])


def test_one_write_renews_every_lease_on_a_bucket(store: Store) -> None:
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    for owner in ("a", "b"):
        leases.grant(owner, held("shared"))
    leases.grant("c", held("other"))
    clock.now += 3.5
    due = leases.due()
    assert {bucket: sorted(owners) for (_, bucket), owners in due.items()} == {
        "shared": ["a", "b"],
        "other": ["c"],
    }
    leases.renew(ENDPOINT, "shared")
    assert set(store.reached) == {"a", "b"}


OPS = st.lists(
    st.tuples(
        st.sampled_from(["grant", "renew", "release", "tick"]),
        st.sampled_from(["a", "b"]),
        st.sampled_from([None, s3_wire.NotSent, Refused, Lost]),
        st.floats(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, gap=st.floats(0, 20))
def test_the_bound_covers_every_expiry_that_may_have_reached_the_store(ops: list[Any], gap: float) -> None:
    """Whatever mix of grants, renewals (failing before or after sending) and releases: an owner's
    release bound is at least every expiry the store may hold for it."""
    fake = Store()
    original, original_wire = fencing.renew_many, lease.wire
    fencing.renew_many = fake.renew_many  # type: ignore[assignment]
    lease.wire = lambda endpoint: None  # type: ignore[assignment,return-value]
    try:
        clock = Clock()
        leases = lease.Leases(clock, background=False)
        clock.now += gap
        for op, owner, failure, step in ops:
            clock.now += step
            fake.failure = failure
            if op == "grant":
                until = leases.grant(owner, held())
                if failure is None:  # the caller wrote it itself
                    fake.reached.setdefault(owner, []).append(until)
            elif op == "renew":
                leases.renew(ENDPOINT, "b")
            elif op == "release":
                bound = leases.release(owner, 6.0)
                assert bound >= max(fake.reached.get(owner, [0]))
        for owner in ("a", "b"):
            assert leases.release(owner, 6.0) >= max(fake.reached.get(owner, [0]))
    finally:
        fencing.renew_many = original  # type: ignore[assignment]
        lease.wire = original_wire  # type: ignore[assignment]


OWNERS = [f"{i:016x}" for i in range(4)]


@st.composite
def policies(draw: Any) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """A shared bucket's policy (fences, leases and probe Allows of several owners, a foreign Allow) and
    what one renewal wants for some of the owners."""
    present: list[dict[str, Any]] = [{"Sid": "app", "Effect": "Allow", "Principal": {"AWS": ["a"]}}]
    for owner in OWNERS:
        prefix = draw(st.sampled_from(["", "alpha", "alpha/beta", "ключ/🙂"]))
        state = draw(st.sampled_from(["none", "fenced", "leased"]))
        epoch = draw(st.integers(1, 9))
        until = draw(st.integers(1, 10**10))
        if state != "none":
            present += fencing.desired(
                "b", prefix, owner, epoch if state == "fenced" else None, "probe", until
            )
    renewed = draw(st.lists(st.sampled_from(OWNERS), unique=True))
    wanted = {
        o: fencing.desired(
            "b", "p", o, None, draw(st.sampled_from([None, "probe"])), draw(st.integers(1, 10**10))
        )
        for o in renewed
    }
    return json.dumps({"Version": "2012-10-17", "Statement": present}), wanted


@settings(max_examples=200)
@given(case=policies())
def test_one_renewal_on_a_shared_bucket_leaves_every_other_statement_alone(
    case: tuple[str, dict[str, list[dict[str, Any]]]],
) -> None:
    existing, wanted = case
    after = fencing.rewritten_for(existing, wanted)
    assert fencing._settled_for(after, wanted)
    others = [s for s in fencing.statements(existing) if not any(fencing._owned(s, o) for o in wanted)]
    kept = fencing.statements(after)
    assert all(s in kept for s in others)
    for owner in set(OWNERS) - set(wanted):
        assert fencing.fence_epoch(after, owner) == fencing.fence_epoch(existing, owner)


def test_a_store_that_refused_a_connection_is_not_tried_again_for_its_other_buckets_at_once(
    store: Store,
) -> None:
    """A store that times out would otherwise hold a renewer for a connect timeout per bucket, and the
    leases on every other store would wait behind it."""
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    for bucket in ("b1", "b2"):
        leases.grant(f"o-{bucket}", held(bucket))
    clock.now += 3.5
    store.failure = s3_wire.NotSent
    leases.renew(ENDPOINT, "b1")
    store.failure = None
    leases.renew(ENDPOINT, "b2")
    assert store.reached == {}
    assert leases.due() == {}  # both retried RETRY_S later
    clock.now += lease.RETRY_S
    leases.renew(ENDPOINT, "b2")
    assert set(store.reached) == {"o-b2"}


def test_an_unexpected_error_in_a_renewal_does_not_end_the_renewals(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A renewal that raises something no one expected is logged and retried; the renewer lives on (had
    it died, every active copy would refuse writes one lease later)."""
    calls: list[str] = []

    def broken(*args: object, **kwargs: object) -> bool:
        calls.append("renew")
        raise KeyError("a bug")

    monkeypatch.setattr(lease.fencing, "renew_many", broken)
    leases = lease.Leases(clock=lambda: 1000.0, background=False)
    leases.grant("o", lease.Held(ENDPOINT, "b", "p", None, 11.0))
    leases.renew(ENDPOINT, "b")
    leases.renew(ENDPOINT, "b")
    assert calls == ["renew", "renew"]
    assert "unexpected error" in caplog.text


MOVES = st.lists(
    st.tuples(
        st.sampled_from(["grant", "release"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["x", "y", "z"]),
        st.sampled_from(["http://127.0.0.1:1", "http://127.0.0.1:2"]),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(moves=MOVES)
def test_a_renewal_writes_exactly_the_owners_holding_a_lease_on_its_bucket(moves: list[Any]) -> None:
    """Owners granted, moved to another bucket or store (a failover), and released in any order: each
    bucket's renewal carries the leases of the owners holding one there now, no other."""
    store = Store()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fencing, "renew_many", store.renew_many)
        patch.setattr(lease, "wire", lambda endpoint: None)
        renewals_follow_moves(moves, store)


def renewals_follow_moves(moves: list[Any], store: Store) -> None:
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    model: dict[str, tuple[s3.S3Endpoint, str]] = {}
    for op, owner, bucket, url in moves:
        endpoint = s3.S3Endpoint(url, "us-east-1", s3.S3Credentials("k", "s"))
        if op == "grant":
            leases.grant(owner, lease.Held(endpoint, bucket, "p", None, 11.0))
            model[owner] = (endpoint, bucket)
        else:
            leases.release(owner, 11.0)
            model.pop(owner, None)
    clock.now += 60
    expected: dict[tuple[s3.S3Endpoint, str], list[str]] = {}
    for owner, place in sorted(model.items()):
        expected.setdefault(place, []).append(owner)
    assert {place: sorted(owners) for place, owners in leases.due().items()} == expected
    for (endpoint, bucket), owners in expected.items():
        store.reached.clear()
        leases.renew(endpoint, bucket)
        assert sorted(store.reached) == owners


def test_an_owner_found_due_whose_renewal_never_ran_is_due_again(store: Store) -> None:
    """The due leases come off a queue: one handed out but never renewed (its renewer failed before
    the request) is not dropped from it, and one released is never handed out again."""
    clock = Clock()
    leases = lease.Leases(clock, background=False)
    leases.grant("kept", held("b1"))
    leases.grant("gone", held("b2"))
    clock.now += 6
    assert {bucket for _, bucket in leases.due()} == {"b1", "b2"}
    assert leases.due() == {}  # handed out: not again at once
    leases.release("gone", 6.0)
    clock.now += lease.RETRY_S
    assert {bucket for _, bucket in leases.due()} == {"b1"}
    leases.renew(ENDPOINT, "b1")
    clock.now += lease.RETRY_S
    assert leases.due() == {}  # renewed: due again only when its margin is reached


def test_the_renewer_renews_each_store_one_bucket_at_a_time_and_every_store_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The background renewer: every lease is renewed, a store's buckets one after another (no two
    renewals of one store at once), and a store that answers slowly does not hold up the other."""
    import threading
    import time

    slow = s3.S3Endpoint("http://127.0.0.1:2", "us-east-1", s3.S3Credentials("k", "s"))
    lock = threading.Lock()
    running: dict[str, int] = {}
    overlapped: list[str] = []
    renewed: dict[str, set[str]] = {}
    fast_done_while_slow_ran = threading.Event()

    def renew_many(endpoint: Any, bucket: str, wanted: Any, client: Any = None, seen: Any = None) -> bool:
        with lock:
            running[endpoint.url] = running.get(endpoint.url, 0) + 1
            if running[endpoint.url] > 1:
                overlapped.append(endpoint.url)
        wanted()
        if endpoint is slow:
            fast_done_while_slow_ran.wait(10)  # answers only once the other store's leases are renewed
        with lock:
            running[endpoint.url] -= 1
            renewed.setdefault(endpoint.url, set()).add(bucket)
            if endpoint is not slow and len(renewed[endpoint.url]) == 4:
                fast_done_while_slow_ran.set()
        return True

    monkeypatch.setattr(fencing, "renew_many", renew_many)
    monkeypatch.setattr(lease, "wire", lambda endpoint: None)
    leases = lease.Leases()
    for i in range(4):
        leases.grant(f"fast-{i}", held(f"f{i}", length=6.0))
        leases.grant(f"slow-{i}", lease.Held(slow, f"s{i}", "p", None, 6.0))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(renewed.get(slow.url, ())) < 4:
        time.sleep(0.05)
    leases.stop()
    assert fast_done_while_slow_ran.is_set()
    assert renewed == {ENDPOINT.url: {"f0", "f1", "f2", "f3"}, slow.url: {"s0", "s1", "s2", "s3"}}
    assert overlapped == []
