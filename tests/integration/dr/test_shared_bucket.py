"""Two DRReplicas on one bucket (different prefixes), two application accounts, a failover of one of
them: each fence covers exactly its own replica's prefix and the two never undo each other; a third
replica overlapping the first is refused by condition and touches nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from datacloud.adapters import s3
from datacloud.builders.conditions import find
from datacloud.devstack.manifests import datacentre
from datacloud.devstack.objectstore import Centre
from datacloud.failover import fencing
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import (
    APP_KEY,
    APP_SECRET,
    NAMESPACE,
    action,
    allow_app,
    finished,
    replica,
    root,
    status,
)

pytestmark = pytest.mark.integration
OTHER_KEY, OTHER_SECRET = "drapp-two", "drapp-two-secret-0123456789"
ACCOUNTS = ((APP_KEY, APP_SECRET), (OTHER_KEY, OTHER_SECRET))


@pytest.fixture(scope="module")
def second_account(dr_centres: dict[str, Centre]) -> None:
    for centre in dr_centres.values():
        try:
            centre.add_user(OTHER_KEY, OTHER_SECRET)
        except Exception as e:  # created by an earlier module of the session
            if "exist" not in str(e).lower():
                raise


def account(centre: Centre, key: str, secret: str) -> Any:
    return s3.client(s3.S3Endpoint(centre.endpoint, "us-east-1", s3.S3Credentials(key, secret)))


def allow_accounts(centre: Centre, bucket: str) -> None:
    allow_app(centre, bucket, (APP_KEY, OTHER_KEY))


def accepted(client: Any, bucket: str, key: str) -> bool:
    try:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    except ClientError as e:
        if e.response["Error"]["Code"] == "AccessDenied":
            return False
        raise
    return True


def on_prefix(name: str, bucket: str, prefix: str) -> dict[str, Any]:
    doc = replica(name, bucket)
    doc["spec"]["source"]["prefix"] = prefix
    for target in doc["spec"]["targets"]:
        target["prefix"] = prefix
    doc["spec"]["targets"] = doc["spec"]["targets"][:1]  # the same-city copy is enough here
    return doc


@pytest.fixture
def shared(
    cluster: Cluster, dr_centres: dict[str, Centre], second_account: None, bucket: str
) -> Iterator[str]:
    for name in ("fz-prod", "fz-samecity-dr"):
        allow_accounts(dr_centres[name], bucket)
    yield bucket
    for name in ("alpha", "beta", "first", "later"):
        cluster.kubectl("-n", NAMESPACE, "delete", "drreplica", name, "--ignore-not-found", "--timeout=60s")


def test_failover_of_one_replica_fences_only_its_prefix_and_neither_replica_undoes_the_other(
    cluster: Cluster, dr_centres: dict[str, Centre], shared: str
) -> None:
    bucket = shared
    prod = dr_centres["fz-prod"]
    cluster.must_apply(on_prefix("alpha", bucket, "alpha"), on_prefix("beta", bucket, "beta/"))
    for name in ("alpha", "beta"):
        wait_until(
            lambda n=name: status(cluster, n).get("phase") == "Protected", 90, what=f"{name} Protected"
        )

    action(cluster, "alpha", "Failover", "fz-samecity-dr", "CHG-SHARED-1")
    wait_until(lambda: finished(cluster, "alpha", "CHG-SHARED-1"), 120, what="failover of alpha")

    # Many rounds, each account writing to each prefix in each centre: every answer is the expected one.
    # (Before per-prefix fences, the two replicas flipped the shared bucket's fence about once a second.)
    expected = {
        ("fz-prod", "alpha"): False,
        ("fz-prod", "beta"): True,
        ("fz-samecity-dr", "alpha"): True,
        ("fz-samecity-dr", "beta"): False,
    }
    acknowledged: dict[str, str] = {}
    for i in range(30):
        for key, secret in ACCOUNTS:
            for (centre, prefix), want in expected.items():
                client = account(dr_centres[centre], key, secret)
                name = f"{prefix}/{key}/{i:03d}"
                got = accepted(client, bucket, name)
                assert got == want, f"round {i}: {key} writing {name} to {centre}: accepted={got}"
                if got:
                    acknowledged[name] = centre

    alpha, beta = status(cluster, "alpha"), status(cluster, "beta")
    assert alpha["writableLocations"] == [f"fz-samecity-dr/{bucket}/alpha"]
    assert beta["writableLocations"] == [f"fz-prod/{bucket}/beta"]
    assert find(alpha["conditions"], "SingleWriter")["status"] == "True"
    assert find(beta["conditions"], "SingleWriter")["status"] == "True"
    policy = fencing.read_policy(root(prod), bucket)
    alpha_source = fencing.owner_id(NAMESPACE, "alpha", "source")
    beta_source = fencing.owner_id(NAMESPACE, "beta", "source")
    assert fencing.fence_epoch(policy, alpha_source) == 2
    assert fencing.fence_epoch(policy, beta_source) is None
    assert "app" in [s["Sid"] for s in fencing.statements(policy)]  # the bucket owner's statement kept

    # Failback of alpha: nothing acknowledged on the way is lost, beta's data is untouched.
    action(cluster, "alpha", "Failback", "fz-prod", "CHG-SHARED-2")
    wait_until(lambda: finished(cluster, "alpha", "CHG-SHARED-2"), 120, what="failback of alpha")
    at_prod = {
        o["Key"]
        for p in root(prod).get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in p.get("Contents", [])
    }
    missing = sorted(k for k in acknowledged if k not in at_prod)
    assert not missing, f"acknowledged but gone after failback: {missing[:5]}"
    home = [f"fz-prod/{bucket}/alpha"]
    wait_until(lambda: status(cluster, "alpha").get("writableLocations") == home, 30, what="measured at home")


def test_a_replica_overlapping_an_earlier_one_gets_a_condition_and_does_nothing_until_moved(
    cluster: Cluster, dr_centres: dict[str, Centre], shared: str, operator: dict[str, Any]
) -> None:
    bucket = shared
    prod = dr_centres["fz-prod"]
    cluster.must_apply(on_prefix("first", bucket, "first"))
    wait_until(lambda: status(cluster, "first").get("phase") == "Protected", 90, what="first Protected")
    cluster.must_apply(on_prefix("later", bucket, "first/inner"))
    s = wait_until(
        lambda: (st := status(cluster, "later")).get("phase") == "Overlapping" and st,
        60,
        what=f"later Overlapping (log: {operator['log']})",
    )
    cond = find(s["conditions"], "LocationsExclusive")
    assert (cond["status"], cond["reason"]) == ("False", "OverlapsReplica")
    assert f"{NAMESPACE}/first" in cond["message"]
    assert find(s["conditions"], "Ready")["status"] == "False"
    assert any(e["reason"] == "OverlapsReplica" for e in cluster.events_for("later"))
    later = fencing.owner_id(NAMESPACE, "later", "same-city")
    near_policy = fencing.read_policy(root(dr_centres["fz-samecity-dr"]), bucket)
    assert not [st for st in fencing.statements(near_policy) if later in st["Sid"]]  # it fenced nothing
    assert "endpoint" not in s

    moved = on_prefix("later", bucket, "later")
    cluster.must_apply(moved)
    wait_until(lambda: status(cluster, "later").get("phase") == "Protected", 90, what="later runs once moved")
    assert accepted(account(prod, APP_KEY, APP_SECRET), bucket, "later/after-move")


def test_a_target_on_another_name_for_its_source_store_is_refused_by_condition(
    cluster: Cluster, dr_centres: dict[str, Centre], shared: str, operator: dict[str, Any]
) -> None:
    """A second DataCentre on the production centre's object store: a replica copying into it copies
    into its own source bucket (and its fence would close the source), whatever the centres are called."""
    bucket = shared
    prod = dr_centres["fz-prod"]
    alias = datacentre("fz-prod", prod.endpoint)
    alias["metadata"]["name"] = "fz-prod-alias"  # the same store, its Secret the production centre's
    cluster.must_apply(alias)
    try:
        doc = on_prefix("aliased", bucket, "aliased")
        doc["spec"]["targets"][0]["centre"] = "fz-prod-alias"
        doc["spec"]["targets"][0]["prefix"] = "aliased/copy"
        cluster.must_apply(doc)
        s = wait_until(
            lambda: (st := status(cluster, "aliased")).get("phase") == "Overlapping" and st,
            60,
            what=f"aliased Overlapping (log: {operator['log']})",
        )
        cond = find(s["conditions"], "LocationsExclusive")
        assert (cond["status"], cond["reason"]) == ("False", "OverlapsItself")
        assert "centres fz-prod and fz-prod-alias are one object store" in cond["message"]
        owner = fencing.owner_id(NAMESPACE, "aliased", "same-city")
        policy = fencing.read_policy(root(prod), bucket)
        assert not [st for st in fencing.statements(policy) if owner in st["Sid"]]  # it fenced nothing
        assert accepted(account(prod, APP_KEY, APP_SECRET), bucket, "aliased/still-writable")
    finally:
        cluster.kubectl(
            "-n", NAMESPACE, "delete", "drreplica", "aliased", "--ignore-not-found", "--timeout=60s"
        )
        cluster.kubectl("delete", "datacentre", "fz-prod-alias", "--ignore-not-found", "--timeout=60s")
