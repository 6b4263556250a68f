"""Lease renewals on a real store (versitygw): the lean client's policy calls, renewals that skip the
read keeping what the bucket's owner wrote once a fence check has seen it, a store that restarted
(its kept-alive connections gone), and a store that refuses connections (nothing sent, nothing counted)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from datacloud.adapters import s3, s3_wire
from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import free_port
from datacloud.failover import fencing, lease

pytestmark = pytest.mark.integration
APP = ("lease-app", "lease-app-secret-0123456789")
BUCKET = "lease-renewals"
PREFIX = "数据/ключ 1"
OWNER = fencing.owner_id("ns", "renewed", "source")


def allow(sid: str) -> dict[str, object]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": [APP[0]]},
        "Action": ["s3:PutObject", "s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/*"],
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Centre]:
    centre = Centre("leases", tmp_path / "leases").start()
    fencing._known.clear()
    try:
        centre.add_user(*APP)
        yield centre
    finally:
        centre.stop()
        fencing._known.clear()


def endpoint_of(centre: Centre, key: tuple[str, str] | None = None) -> s3.S3Endpoint:
    access, secret = key or (centre.access_key, centre.secret_key)
    return s3.S3Endpoint(centre.endpoint, "us-east-1", s3.S3Credentials(access, secret))


def lease_until(policy: str | None) -> int:
    (statement,) = [s for s in fencing.statements(policy) if s["Sid"] == f"datacloud-lease-{OWNER}"]
    return int(statement["Condition"]["NumericGreaterThanEquals"]["aws:EpochTime"])


def can_write(centre: Centre) -> bool:
    try:
        s3.client(endpoint_of(centre, APP)).put_object(Bucket=BUCKET, Key=f"{PREFIX}/k", Body=b"1")
    except ClientError as e:
        if e.response["Error"]["Code"] == "AccessDenied":
            return False
        raise
    return True


def test_renewals_keep_the_owners_statements_and_the_store_enforces_them(store: Centre) -> None:
    endpoint = endpoint_of(store)
    root = s3.client(endpoint)
    root.create_bucket(Bucket=BUCKET)
    root.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [allow("app")]})
    )
    ahead = [0.0]
    leases = lease.Leases(clock=lambda: time.time() + ahead[0], background=False)
    leases.grant(OWNER, lease.Held(endpoint, BUCKET, PREFIX, None, lease.LEASE_MIN_S))
    leases.renew(endpoint, BUCKET)  # reads: the policy is not known yet
    first = lease_until(s3_wire.get_bucket_policy(lease.wire(endpoint), BUCKET))
    assert can_write(store)

    # The bucket's owner adds a statement; the fence check reads the policy and sees it.
    current = root.get_bucket_policy(Bucket=BUCKET)["Policy"]
    edited = {"Version": "2012-10-17", "Statement": [*fencing.statements(current), allow("added ✓")]}
    root.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(edited))
    fencing.in_place(endpoint, BUCKET, PREFIX, OWNER, None)
    for _ in range(fencing.READ_EVERY + 1):
        ahead[0] += 5
        leases.renew(endpoint, BUCKET)
    after = root.get_bucket_policy(Bucket=BUCKET)["Policy"]
    assert {s["Sid"] for s in fencing.statements(after)} >= {"app", "added ✓", f"datacloud-lease-{OWNER}"}
    assert lease_until(after) > first
    assert can_write(store)

    # A lease that has run out: the store itself refuses the application's writes.
    leases.release(OWNER, 0.0)
    fencing.apply_many(endpoint, BUCKET, {OWNER: fencing.desired(BUCKET, PREFIX, OWNER, None, None, 1)}, 5.0)
    assert not can_write(store)


def test_a_renewal_after_the_store_restarted_lands(store: Centre) -> None:
    endpoint = endpoint_of(store)
    s3.client(endpoint).create_bucket(Bucket=BUCKET)
    ahead = [0.0]
    leases = lease.Leases(clock=lambda: time.time() + ahead[0], background=False)
    leases.grant(OWNER, lease.Held(endpoint, BUCKET, PREFIX, None, lease.LEASE_MIN_S))
    leases.renew(endpoint, BUCKET)
    store.restart()  # the renewer's kept-alive connection is now dead
    ahead[0] += 10
    leases.renew(endpoint, BUCKET)
    assert lease_until(s3_wire.get_bucket_policy(lease.wire(endpoint), BUCKET)) == leases.release(OWNER, 0.0)


def test_a_store_refusing_connections_gets_nothing_and_extends_no_bound() -> None:
    closed = s3.S3Endpoint(f"http://127.0.0.1:{free_port()}", "us-east-1", s3.S3Credentials("k", "s"))
    with pytest.raises(s3_wire.NotSent):
        s3_wire.get_bucket_policy(s3_wire.WireClient(closed, connect_timeout=1, read_timeout=1), BUCKET)
    clock = [time.time()]
    leases = lease.Leases(clock=lambda: clock[0], background=False)
    first = leases.grant(OWNER, lease.Held(closed, BUCKET, PREFIX, None, lease.LEASE_MIN_S))
    clock[0] += 10
    leases.renew(closed, BUCKET)
    assert leases.release(OWNER, 0.0) == first


def test_renewals_the_store_refuses_are_counted_logged_once_and_followed_to_new_credentials(
    store: Centre, caplog: pytest.LogCaptureFixture
) -> None:
    """The centre's key was rotated and the old one revoked: every renewal with it is refused, and the
    copy would refuse writes once its lease ends. The refusals are counted (the alert's metric), logged
    once rather than at every attempt, and tell the lease's holder (its replica runs at once); the run
    hands the new credentials over (`follow`) and the very next renewal lands with them."""
    s3.client(endpoint_of(store)).create_bucket(Bucket=BUCKET)
    revoked = endpoint_of(store, (store.access_key, "a-revoked-secret-0123456789"))
    told: list[object] = []
    leases = lease.Leases(background=False)
    leases.on_refused = told.append
    leases.grant(OWNER, lease.Held(revoked, BUCKET, PREFIX, None, lease.LEASE_MIN_S, ("ns", "renewed")))
    caplog.set_level("INFO", logger=lease.__name__)
    for _ in range(5):
        leases.renew(revoked, BUCKET)
    assert leases.failing() == 1
    assert told == [("ns", "renewed")] * 5
    refused = [r for r in caplog.records if "not renewed" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert (
        "SignatureDoesNotMatch" in refused[0].getMessage() or "InvalidAccessKeyId" in refused[0].getMessage()
    )
    assert "a-revoked-secret" not in caplog.text

    leases.follow(OWNER, endpoint_of(store))  # the replica's run, with the Secret as it is now
    assert leases.due() == {(endpoint_of(store), BUCKET): [OWNER]}  # due at once, at the new place
    leases.renew(endpoint_of(store), BUCKET)
    assert leases.failing() == 0
    assert lease_until(fencing.read_policy(s3.client(endpoint_of(store)), BUCKET)) > time.time()
    assert any("renewed again after 5 failed attempt(s)" in r.getMessage() for r in caplog.records)


def test_a_bucket_that_does_not_exist_is_asked_about_seldom_and_raises_no_alert(
    store: Centre, caplog: pytest.LogCaptureFixture
) -> None:
    """Its replica says SourceBucketMissing: the renewals wait NO_BUCKET_RETRY_S, log once, and are not
    counted as refused (a WARNING every second per replica filled the log before)."""
    now = [1_000_000.0]
    leases = lease.Leases(clock=lambda: now[0], background=False)
    leases.grant(OWNER, lease.Held(endpoint_of(store), "no-such-bucket", "", None, lease.LEASE_MIN_S))
    caplog.set_level("INFO", logger=lease.__name__)
    for _ in range(3):
        leases.renew(endpoint_of(store), "no-such-bucket")
    assert leases.failing() == 0
    assert len([r for r in caplog.records if "does not exist" in r.getMessage()]) == 1
    now[0] += lease.NO_BUCKET_RETRY_S - 1
    assert leases.due() == {}
    now[0] += 1
    assert list(leases.due()) == [(endpoint_of(store), "no-such-bucket")]


def watched(store: Centre) -> tuple[Any, lease.Leases, list[object]]:
    """The bucket made, and leases whose holders' `on_changed` calls are recorded."""
    admin = s3.client(endpoint_of(store))
    admin.create_bucket(Bucket=BUCKET)
    told: list[object] = []
    leases = lease.Leases(background=False)
    leases.on_changed = told.append
    return admin, leases, told


def freeze(admin: Any) -> None:
    """An SRE's Deny on every PUT, added to the bucket's policy beside what is there."""
    policy = json.loads(fencing.read_policy(admin, BUCKET) or "{}")
    deny = {**allow("sre-freeze"), "Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": ["s3:PutObject"]}
    statements = [*policy["Statement"], deny]
    admin.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({**policy, "Statement": statements}))


def test_a_statement_someone_adds_to_an_active_copys_policy_tells_its_holder(store: Centre) -> None:
    """An SRE's Deny on every PUT stops the active copy taking writes, and the replica's last probe said
    it took them: the renewal that reads the changed policy tells the holder (it probes again at once).
    Not at the first read, and not when only the lease's own statement moved."""
    admin, leases, told = watched(store)
    leases.grant(OWNER, lease.Held(endpoint_of(store), BUCKET, PREFIX, None, lease.LEASE_MIN_S, ("ns", "r")))
    for _ in range(3):
        leases.renew(endpoint_of(store), BUCKET)
    assert told == []
    freeze(admin)
    leases.renew(endpoint_of(store), BUCKET)
    assert told == [("ns", "r")]
    leases.renew(endpoint_of(store), BUCKET)  # kept by the renewal, and seen unchanged
    assert told == [("ns", "r")]
    assert "sre-freeze" in (fencing.read_policy(admin, BUCKET) or "")


def test_a_statement_added_between_the_full_run_and_the_first_renewal_is_seen(store: Centre) -> None:
    """The replica's full run wrote the lease and probed; someone adds a Deny before the first renewal
    (two minutes away with `downFor: 2m`): that renewal compares with what the run wrote."""
    admin, leases, told = watched(store)
    held = lease.Held(endpoint_of(store), BUCKET, PREFIX, None, lease.LEASE_MIN_S, ("ns", "r"))
    until = leases.grant(OWNER, held)
    fencing.apply(endpoint_of(store), BUCKET, PREFIX, OWNER, None, None, 2.0, until)  # the full run's write
    freeze(admin)
    leases.renew(endpoint_of(store), BUCKET)
    assert told == [("ns", "r")]
