"""Two operator replicas (kopf peering): only the one with the highest priority acts on a failover.

The session's standalone operator is stopped for the test; a low-priority replica starts first (and so
begins to work), then a high-priority one: the first must pause in its favour, and an automatic failover
must then be carried out once, by one replica: one new epoch, one set of steps, one audit record.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import Managed, free_port
from datacloud.devstack.stack import operator_env
from datacloud.failover import fencing
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, event_count, listening, replica, root, status

pytestmark = pytest.mark.integration
NAME = "twopeers"


def replica_process(cluster: Cluster, log: Path, priority: int, notifications: bool) -> Managed:
    """`datacloud run` with peering (no --standalone) at a fixed priority."""
    argv = [sys.executable, "-m", "datacloud", "run", "--metrics-port", str(free_port()), "--liveness", ""]
    argv += ["--log-format", "json"]
    if notifications:  # one receiver port per machine: only the replica that will lead listens
        argv += ["--events-port", str(cluster.stack.events_port)]
    env = {**operator_env(cluster.stack.kubeconfig), "DATACLOUD_PRIORITY": str(priority)}
    return Managed(f"operator-{priority}", argv, log, env)


@pytest.fixture
def peers(cluster: Cluster, operator: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Managed, Managed]]:
    session = operator["process"]
    session.stop()
    standby = replica_process(cluster, tmp_path / "standby.log", 10, notifications=False)
    leader = replica_process(cluster, tmp_path / "leader.log", 9000, notifications=True)
    try:
        before = probed(cluster)
        standby.start()
        # Alone, the standby works: the centres' probe times move again.
        wait_until(lambda: probed(cluster) > before, 60, what="the standby probing the centres")
        leader.start()
        wait_until(lambda: listening(cluster.stack.events_port), 30, what="the leader's event receiver")
        wait_until(lambda: "Pausing operations in favour of" in text(standby), 60, what="the standby pausing")
        yield leader, standby
    finally:
        standby.stop()  # first, so it does not resume when the leader leaves the peering object
        leader.stop()
        session.start()
        wait_until(lambda: listening(cluster.stack.events_port), 30, what="the session operator back")


def probed(cluster: Cluster) -> str:
    """The latest probe time of the production centre."""
    return str((cluster.get("datacentres", "fz-prod").get("status") or {}).get("lastProbeTime") or "")


def text(proc: Managed) -> str:
    return proc.log.read_text(errors="replace") if proc.log.exists() else ""


def test_two_peered_replicas_fail_over_once(
    cluster: Cluster,
    dr_centres: dict[str, Centre],
    prod_restored: Centre,
    peers: tuple[Managed, Managed],
    bucket: str,
    cleanup: list[str],
) -> None:
    leader, standby = peers
    prod, near = prod_restored, dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    cleanup.append(NAME)
    cluster.must_apply(replica(NAME, bucket, policy="Automatic"))
    wait_until(lambda: status(cluster, NAME).get("phase") == "Protected", 60, what="Protected")

    prod.stop()
    s = wait_until(
        lambda: (st := status(cluster, NAME)).get("action", {}).get("finishedAt") and st,
        90,
        what="automatic failover finished",
    )
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2
    assert [h["requestId"] for h in s["history"]] == ["auto-2"]
    assert all(st["state"] == "Succeeded" for st in s["action"]["steps"])
    audit = root(dr_centres["xm-remote-dr"]).list_objects_v2(
        Bucket="datacloud-audit", Prefix=f".datacloud/audit/{NAMESPACE}/{NAME}/"
    )
    assert len(audit.get("Contents", [])) == 1
    # An automatic failover says all in one Event: its outcome (no start Event, no lease-wait Event).
    assert event_count(cluster, NAME, "FailoverStarted") == 0
    assert event_count(cluster, NAME, "FailoverCompleted") == 1
    near_copy = fencing.owner_id(NAMESPACE, NAME, "same-city")
    assert fencing.fence_epoch(fencing.read_policy(root(near), bucket), near_copy) is None  # open
    # The leader did the work; the paused standby never even looked at the replica.
    assert NAME in text(leader)
    assert NAME not in text(standby)
    assert standby.alive()
