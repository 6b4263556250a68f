"""Writes an old active copy accepted that the new active never received are kept, never deleted.

The deterministic case: replication paused, the application writes to production (acknowledged), an
unplanned failover promotes the same-city copy, which never saw those writes. When replication resumes,
the old copy is compared with the new active before anything is mirrored over it: every divergent object
is kept, byte for byte with its metadata, and counted, announced, measured and restorable.
The automatic case: a writer runs through the kill of production; whatever was acknowledged is at the
active copy or kept, before and after the failback.
"""

from __future__ import annotations

import json
import time

import pytest

from datacloud.api.reserved import QUARANTINE_BUCKET
from datacloud.devstack.objectstore import Centre
from datacloud.reconcile.dr_divergent import quarantine_prefix
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import (
    NAMESPACE,
    SteadyWriter,
    action,
    allow_app,
    app,
    cli,
    finished,
    listing,
    patch,
    replica,
    root,
    status,
)

pytestmark = pytest.mark.integration
# Keys of every Unicode class a citizen's record might carry.
NAMES = ["plain.txt", "空格 and space.json", "emoji-🙂.bin", "Ünïcödé/ключ/κλειδί", "tab\tnew"]


def kept(centre: Centre, name: str, epoch: int) -> dict[str, bytes]:
    prefix = quarantine_prefix(NAMESPACE, name, epoch)
    client = root(centre)
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=QUARANTINE_BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix) :]] = client.get_object(Bucket=QUARANTINE_BUCKET, Key=o["Key"])[
                "Body"
            ].read()
    return out


def test_writes_the_new_active_never_got_are_kept_before_the_old_copy_is_mirrored_and_can_be_restored(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append("diverge")
    cluster.must_apply(replica("diverge", bucket))
    wait_until(lambda: status(cluster, "diverge").get("phase") == "Protected", 60, what="Protected")
    app(prod).put_object(Bucket=bucket, Key="shared", Body=b"before the cut")
    wait_until(lambda: "shared" in listing(root(near), bucket), 30, what="copied before the cut")

    patch(cluster, "diverge", {"paused": True})
    wait_until(lambda: status(cluster, "diverge").get("phase") == "Paused", 30)
    written = {}
    for i, name in enumerate(NAMES):
        body = f"{name}:{i}".encode() * (i + 1)
        app(prod).put_object(
            Bucket=bucket, Key=name, Body=body, ContentType="text/x-record", Metadata={"citizen": str(i)}
        )
        written[name] = body
    app(prod).put_object(Bucket=bucket, Key="shared", Body=b"changed at prod after the last copy")

    action(cluster, "diverge", "Failover", "fz-samecity-dr", "CHG-DIV-1")
    s = wait_until(lambda: finished(cluster, "diverge", "CHG-DIV-1"), 90, what="failover")
    assert s["divergence"][0]["state"] == "Pending"
    app(near).put_object(Bucket=bucket, Key="after-failover", Body=b"new active")
    patch(cluster, "diverge", {"paused": False})

    s = wait_until(
        lambda: (st := status(cluster, "diverge"))["divergence"][0]["state"] != "Pending" and st,
        60,
        what="divergence checked",
    )
    record = s["divergence"][0]
    assert record["state"] == "Preserved"
    assert record["objects"] == len(NAMES) + 1  # the new keys, and the key changed after the last copy
    held = kept(prod, "diverge", record["epoch"])
    for name, body in written.items():
        assert held[name] == body, name
    assert held["shared"] == b"changed at prod after the last copy"
    meta = root(prod).head_object(
        Bucket=QUARANTINE_BUCKET, Key=quarantine_prefix(NAMESPACE, "diverge", 2) + NAMES[1]
    )
    assert (meta["ContentType"], meta["Metadata"]) == ("text/x-record", {"citizen": "1"})

    # Only now is the old copy mirrored from the new active; the history says what the failover cost.
    wait_until(lambda: "after-failover" in listing(root(prod), bucket), 60, what="new active → old copy")
    entry = next(h for h in s["history"] if h["requestId"] == "CHG-DIV-1")
    assert entry["divergentObjects"] == len(NAMES) + 1
    assert entry["measuredDataLossSeconds"] > 0
    reasons = [e["reason"] for e in cluster.events_for("diverge")]
    assert "DivergentWritesPreserved" in reasons

    listed = cli(cluster, "list", "diverge", "--objects", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert {o["key"] for o in json.loads(listed.stdout)[0]["kept"]} == {*NAMES, "shared"}
    restored = cli(cluster, "restore", "diverge", "--epoch", "2")
    assert restored.returncode == 0, restored.stderr
    skipped = [line for line in restored.stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1  # the active copy's newer write of "shared" wins
    assert "/shared" in skipped[0]
    for name, body in written.items():
        assert root(near).get_object(Bucket=bucket, Key=name)["Body"].read() == body
    assert root(near).get_object(Bucket=bucket, Key="shared")["Body"].read() == b"before the cut"
    wait_until(
        lambda: status(cluster, "diverge")["divergence"][0]["state"] == "Reviewed", 30, what="reviewed"
    )


def test_every_write_acknowledged_through_an_automatic_failover_and_failback_is_kept(
    cluster: Cluster, dr_centres: dict[str, Centre], prod_restored: Centre, bucket: str, cleanup: list[str]
) -> None:
    prod, near = prod_restored, dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append("cut")
    cluster.must_apply(replica("cut", bucket, policy="Automatic"))
    wait_until(lambda: status(cluster, "cut").get("phase") == "Protected", 60, what="Protected")
    with SteadyWriter(prod, bucket) as writer:
        time.sleep(3)
        prod.stop()  # writes run up to the cut
        wait_until(
            lambda: (status(cluster, "cut").get("action") or {}).get("finishedAt"), 90, what="auto failover"
        )
    acked = set(writer.acked)
    assert acked

    def unaccounted(active: Centre, epoch: int) -> set[str]:
        return acked - listing(root(active), bucket) - set(kept(prod, "cut", epoch))

    prod.restart()
    s = wait_until(
        lambda: (st := status(cluster, "cut"))["divergence"][0]["state"] != "Pending" and st,
        90,
        what="the returned copy checked",
    )
    epoch = s["divergence"][0]["epoch"]
    assert not unaccounted(near, epoch)
    entry = s["history"][0]
    assert entry["divergentObjects"] == s["divergence"][0]["objects"]
    action(cluster, "cut", "Failback", "fz-prod", "CHG-CUT-HOME")
    wait_until(lambda: finished(cluster, "cut", "CHG-CUT-HOME"), 120, what="failback")
    assert not unaccounted(prod, epoch)
