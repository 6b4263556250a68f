"""A delete the old active acknowledged that never reached the new active: neither resurrected silently
nor made to vanish silently. The object the new active holds is kept, and the divergence record (status,
manifest, Event, metric, `datacloud dr divergent list`) says the old copy deleted it."""

from __future__ import annotations

import json
import time

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import action, allow_app, app, cli, finished, listing, patch, replica, root, status

pytestmark = pytest.mark.integration
DELETED = ["gone/plain.txt", "gone/空格 and ключ.json", "gone/emoji-🙂.bin"]
KEPT = ["stays/record.json"]


def next_second(after: float) -> None:
    wait_until(lambda: time.time() >= int(after) + 2, 5, what="the next whole second")


def test_a_delete_acknowledged_by_the_old_active_is_recorded_and_the_object_kept(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append("deletes")
    cluster.must_apply(replica("deletes", bucket))  # the same-city target mirrors deletes
    wait_until(lambda: status(cluster, "deletes").get("phase") == "Protected", 60, what="Protected")
    for key in DELETED + KEPT:
        app(prod).put_object(Bucket=bucket, Key=key, Body=key.encode())
    wait_until(lambda: set(DELETED + KEPT) <= listing(root(near), bucket), 30, what="copied before the cut")
    # Store times have whole seconds: the cut comes in a later second than the copies, the write after
    # it in a later second than the cut (one in the cut's own second is recorded as "in doubt").
    next_second(time.time())

    # Replication held back, the application deletes at production (acknowledged), then the cut.
    patch(cluster, "deletes", {"paused": True})
    wait_until(lambda: status(cluster, "deletes").get("phase") == "Paused", 30)
    for key in DELETED:
        app(prod).delete_object(Bucket=bucket, Key=key)
    action(cluster, "deletes", "Failover", "fz-samecity-dr", "CHG-DEL-1")
    wait_until(lambda: finished(cluster, "deletes", "CHG-DEL-1"), 90, what="failover")
    next_second(time.time())
    # Written at the new active after the cut: the old copy never had it, so it is no delete.
    app(near).put_object(Bucket=bucket, Key="after-the-cut", Body=b"new")
    patch(cluster, "deletes", {"paused": False})

    s = wait_until(
        lambda: (st := status(cluster, "deletes"))["divergence"][0]["state"] != "Pending" and st,
        60,
        what="divergence checked",
    )
    record = s["divergence"][0]
    assert record["state"] == "Preserved"
    assert record["deletes"] == len(DELETED)
    assert record["objects"] == 0
    # The new active keeps what it holds; nothing is deleted on the old copy's word.
    assert set(DELETED + KEPT + ["after-the-cut"]) <= listing(root(near), bucket)
    assert "DivergentDeletesRecorded" in [e["reason"] for e in cluster.events_for("deletes")]

    listed = cli(cluster, "list", "deletes", "--objects", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    entry = json.loads(listed.stdout)[0]
    assert {o["key"] for o in entry["deletedAtOldCopy"]} == set(DELETED)
    assert entry["kept"] == []
    # The old copy is mirrored from the new active from now on: the deleted objects come back there too.
    wait_until(lambda: set(DELETED) <= listing(root(prod), bucket), 60, what="new active → old copy")
    dismissed = cli(cluster, "dismiss", "deletes", "--epoch", str(record["epoch"]))
    assert dismissed.returncode == 0, dismissed.stderr
    wait_until(
        lambda: status(cluster, "deletes")["divergence"][0]["state"] == "Reviewed", 30, what="reviewed"
    )
