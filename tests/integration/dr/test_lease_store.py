"""Lease renewals on a real store (versitygw): the lean client's policy calls, renewals that skip the
read keeping what the bucket's owner wrote once a fence check has seen it, a store that restarted
(its kept-alive connections gone), and a store that refuses connections (nothing sent, nothing counted)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

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
