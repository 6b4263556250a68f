"""Fences of many replicas on one real bucket policy (versitygw): owners fencing and opening their
prefixes from many threads at once, while the bucket's owner keeps re-applying its own policy, end with
every owner's last wish in force — and the store enforcing exactly that, as a probe write shows."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from datacloud.adapters import s3
from datacloud.devstack.objectstore import Centre
from datacloud.failover import fencing
from datacloud.failover.writable import Writable, probe_write

pytestmark = pytest.mark.integration
PROBE = ("fence-probe", "fence-probe-secret-0123456789")
BUCKET = "shared-fences"
PREFIXES = ["alpha", "alpha2", "beta/", "数据/记录", "x y"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Centre]:
    centre = Centre("fences", tmp_path / "fences").start()
    try:
        centre.add_user(*PROBE)
        yield centre
    finally:
        centre.stop()


def test_concurrent_owners_never_clobber_each_other_and_the_store_enforces_the_result(store: Centre) -> None:
    endpoint = s3.S3Endpoint(
        store.endpoint, "us-east-1", s3.S3Credentials(store.access_key, store.secret_key)
    )
    root = s3.client(endpoint)
    root.create_bucket(Bucket=BUCKET)
    app = {
        "Sid": "app",
        "Effect": "Allow",
        "Principal": {"AWS": [PROBE[0]]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/*"],
    }
    owners = [fencing.owner_id("ns", f"r{i}", "source") for i in range(len(PREFIXES))]
    last: dict[str, int | None] = {}
    errors: list[BaseException] = []

    def owner_thread(i: int) -> None:
        rng = random.Random(i)
        try:
            for _ in range(15):
                epoch = rng.choice([None, rng.randint(1, 9)])
                fencing.apply(endpoint, BUCKET, PREFIXES[i], owners[i], epoch, PROBE[0])
                last[owners[i]] = epoch
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=owner_thread, args=(i,)) for i in range(len(owners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    # The bucket owner re-applies a policy holding its statement and what it read (the way people edit).
    current = fencing.read_policy(root, BUCKET)
    kept = fencing.statements(current)
    root.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [app, *kept]})
    )

    policy = fencing.read_policy(root, BUCKET)
    assert app in fencing.statements(policy)
    for i, owner in enumerate(owners):
        assert fencing.fence_epoch(policy, owner) == last[owner], PREFIXES[i]
        answer, why = probe_write(endpoint, s3.S3Credentials(*PROBE), BUCKET, PREFIXES[i], owner)
        assert answer is (Writable.NO if last[owner] is not None else Writable.YES), (PREFIXES[i], why)
    # Probes leave nothing behind.
    listed = root.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert listed == []


def test_a_fence_on_one_prefix_leaves_its_neighbour_writable(store: Centre) -> None:
    endpoint = s3.S3Endpoint(
        store.endpoint, "us-east-1", s3.S3Credentials(store.access_key, store.secret_key)
    )
    s3.client(endpoint).create_bucket(Bucket=BUCKET)
    a, b = fencing.owner_id("ns", "a", "source"), fencing.owner_id("ns", "b", "source")
    fencing.apply(endpoint, BUCKET, "photos", a, 2, PROBE[0])
    fencing.apply(endpoint, BUCKET, "photos2", b, None, PROBE[0])
    probe = s3.S3Credentials(*PROBE)
    assert probe_write(endpoint, probe, BUCKET, "photos", a)[0] is Writable.NO
    assert probe_write(endpoint, probe, BUCKET, "photos2", b)[0] is Writable.YES
    # An account the store does not know in the probe's place: the fence is written all the same.
    c = fencing.owner_id("ns", "c", "source")
    with pytest.raises(fencing.ProbeAccountRejected):
        fencing.apply(endpoint, BUCKET, "gamma", c, 3, "no-such-account")
    assert fencing.fence_epoch(fencing.read_policy(s3.client(endpoint), BUCKET), c) == 3
    with pytest.raises(ClientError):
        s3.client(s3.S3Endpoint(store.endpoint, "us-east-1", probe)).put_object(
            Bucket=BUCKET, Key="photos/x", Body=b"1"
        )
