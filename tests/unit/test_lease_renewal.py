"""Lease renewals: when they run, and when they may skip reading the policy (never at the cost of
another writer's statements)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.adapters import s3, s3_wire
from datacloud.failover import fencing, lease

ENDPOINT = s3.S3Endpoint("http://127.0.0.1:1", "us-east-1", s3.S3Credentials("k", "s"))
OWNER = "0123456789abcdef"
FOREIGN = {"Sid": "sre-allow", "Effect": "Allow", "Principal": {"AWS": ["app"]}, "Action": ["s3:GetObject"]}


class Policies:
    """A bucket's policy as the store keeps it, with the requests that reached it. `fail` makes the next
    write fail: before it is sent ("refused") or after it landed ("lost")."""

    def __init__(self) -> None:
        self.policy: str | None = None
        self.calls: list[str] = []
        self.fail: str | None = None
        self.edits = 0

    def get(self, client: Any, bucket: str) -> str | None:
        self.calls.append("GET")
        return self.policy

    def put(self, client: Any, bucket: str, policy: str) -> None:
        self.calls.append("PUT")
        if self.fail == "refused":
            self.fail = None
            raise s3_wire.NotSent("refused")
        before = [s for s in fencing.statements(self.policy) if not fencing._owned(s, OWNER)]
        after = fencing.statements(policy)
        # Nothing another writer put there is lost by a renewal.
        assert all(s in after for s in before), (before, after)
        self.policy = policy
        if self.fail == "lost":
            self.fail = None
            raise TimeoutError("answer lost")

    def delete(self, client: Any, bucket: str) -> None:
        self.calls.append("DELETE")
        self.policy = None

    def edit(self) -> None:
        """An SRE adds a statement of their own (through another client)."""
        self.edits += 1
        added = {**FOREIGN, "Sid": f"{FOREIGN['Sid']}-{self.edits}"} if self.edits > 1 else FOREIGN
        self.policy = json.dumps(
            {"Version": "2012-10-17", "Statement": [*fencing.statements(self.policy), added]}
        )


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Policies:
    fake = Policies()
    monkeypatch.setattr(s3_wire, "get_bucket_policy", fake.get)
    monkeypatch.setattr(s3_wire, "put_bucket_policy", fake.put)
    monkeypatch.setattr(s3_wire, "delete_bucket_policy", fake.delete)
    # The blind-renewal path (READ_EVERY > 1, off by default) is exercised here with reads every 4th.
    monkeypatch.setattr(fencing, "READ_EVERY", 4)
    fencing._known.clear()
    return fake


def renew(until: int, bucket: str = "b") -> None:
    wanted = {OWNER: fencing.desired(bucket, "p", OWNER, None, None, until)}
    fencing.renew_many(ENDPOINT, bucket, lambda: wanted, None)  # type: ignore[arg-type]


def test_a_renewal_after_our_own_write_does_not_read(store: Policies) -> None:
    renew(100)
    renew(200)
    assert store.calls == ["GET", "PUT", "PUT"]
    assert '"aws:EpochTime": "200"' in (store.policy or "")


def test_every_read_every_th_renewal_reads(store: Policies) -> None:
    for until in range(2 * fencing.READ_EVERY):
        renew(until)
    assert store.calls.count("GET") == 2
    assert store.calls.count("PUT") == 2 * fencing.READ_EVERY


def test_a_policy_found_changed_makes_the_next_renewal_read_and_keep_it(store: Policies) -> None:
    renew(100)
    store.edit()
    fencing.observed(ENDPOINT, "b", store.policy)  # the fence check read it
    renew(200)
    assert store.calls == ["GET", "PUT", "GET", "PUT"]
    assert FOREIGN in fencing.statements(store.policy)


@pytest.mark.parametrize("failure", ["refused", "lost"])
def test_a_failed_renewal_makes_the_next_one_read(store: Policies, failure: str) -> None:
    renew(100)
    store.fail = failure
    with pytest.raises(OSError, match=r"refused|lost"):
        renew(200)
    renew(300)
    assert store.calls == ["GET", "PUT", "PUT", "GET", "PUT"]


class BotoClient:
    """The boto3 calls `apply_many` makes, on the same store."""

    def __init__(self, store: Policies) -> None:
        self.store = store

    def get_bucket_policy(self, Bucket: str) -> dict[str, str]:
        assert self.store.policy is not None
        return {"Policy": self.store.policy}

    def put_bucket_policy(self, Bucket: str, Policy: str) -> None:
        self.store.policy = Policy

    def delete_bucket_policy(self, Bucket: str) -> None:
        self.store.policy = None


OPS = st.lists(st.sampled_from(["renew", "refused", "lost", "edit", "edit-seen", "fence-write"]), max_size=30)


@settings(max_examples=300)
@given(ops=OPS)
def test_a_blind_renewal_writes_on_top_of_what_the_store_holds(ops: list[str]) -> None:
    """Whatever mix of renewals, failures, other writes of this process and edits by others that a read
    has seen: a renewal that skips the read starts from exactly the store's policy (the fake store
    asserts no foreign statement is dropped)."""
    store = Policies()
    originals = (s3_wire.get_bucket_policy, s3_wire.put_bucket_policy, s3_wire.delete_bucket_policy)
    s3_wire.get_bucket_policy, s3_wire.put_bucket_policy = store.get, store.put  # type: ignore[assignment]
    s3_wire.delete_bucket_policy = store.delete  # type: ignore[assignment]
    fencing._known.clear()
    store.policy = json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN]})
    try:
        for until, op in enumerate(ops):
            if op in ("refused", "lost"):
                store.fail = op
                with pytest.raises(OSError, match=r"refused|lost"):
                    renew(until)
            elif op == "renew":
                renew(until)
            elif op.startswith("edit"):
                store.edit()
                if op == "edit-seen":
                    fencing.observed(ENDPOINT, "b", store.policy)
                else:
                    fencing._known.pop((ENDPOINT.url, "b"), None)  # unseen edits: READ_EVERY bounds them
            else:
                wanted = {OWNER: fencing.desired("b", "p", OWNER, 3, None)}
                fencing.apply_many(ENDPOINT, "b", wanted, 1.0, client=BotoClient(store))
    finally:
        s3_wire.get_bucket_policy, s3_wire.put_bucket_policy, s3_wire.delete_bucket_policy = originals
        fencing._known.clear()


@settings(max_examples=200)
@given(length=st.floats(lease.LEASE_MIN_S, lease.LEASE_MAX_S), draw=st.floats(0, 1), now=st.floats(0, 2e9))
def test_a_lease_is_renewed_with_the_margin_left_and_no_earlier_than_the_spread(
    length: float, draw: float, now: float
) -> None:
    at = lease.renew_at(now, length, draw)
    left = now + length - at
    assert left >= lease.RENEW_MARGIN_S - 1e-6
    assert left <= lease.RENEW_MARGIN_S + lease.SPREAD_MAX_S + 1e-6


def test_buckets_granted_together_renew_spread_over_the_window() -> None:
    length = lease.LEASE_MIN_S
    earliest, latest = lease.renew_at(0, length, 1.0), lease.renew_at(0, length, 0.0)
    assert latest - earliest == pytest.approx(min(lease.SPREAD_MAX_S, (length - lease.RENEW_MARGIN_S) / 2))
    assert earliest > 0


def test_a_grant_is_spread_and_later_renewals_start_with_the_margin_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first renewal after a grant starts at a random point of the spread (buckets granted together
    drift apart); every later one when exactly RENEW_MARGIN_S is left (an early start would renew more
    often, and the buckets are apart already)."""
    now = [1000.0]
    monkeypatch.setattr(
        fencing, "renew_many", lambda endpoint, bucket, wanted, client, seen=None: bool(wanted())
    )
    monkeypatch.setattr(lease, "wire", lambda endpoint: None)
    leases = lease.Leases(clock=lambda: now[0], background=False)
    length = lease.LEASE_MIN_S
    firsts = []
    for i in range(50):
        leases.grant(f"o{i}", lease.Held(ENDPOINT, f"b{i}", "p", None, length))
        firsts.append(leases._renew_at[f"o{i}"] - now[0])
    assert len({round(f, 6) for f in firsts}) > 1
    assert all(
        length - lease.RENEW_MARGIN_S - lease.SPREAD_MAX_S <= f <= length - lease.RENEW_MARGIN_S
        for f in firsts
    )
    for _ in range(3):
        now[0] += length  # every first renewal is due by now
        due = leases.due()
        assert len(due) == 50
        for endpoint, bucket in due:
            leases.renew(endpoint, bucket)
        assert {round(at - now[0], 6) for at in leases._renew_at.values()} == {length - lease.RENEW_MARGIN_S}


def test_by_default_every_renewal_reads_so_a_statement_added_by_hand_is_kept(
    store: Policies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fencing, "READ_EVERY", 1)  # the default
    renew(100)
    store.edit()  # an SRE adds an application's Allow between two renewals
    renew(200)
    assert store.calls == ["GET", "PUT", "GET", "PUT"]
    assert FOREIGN["Sid"] in {st.get("Sid") for st in fencing.statements(store.policy)}
