"""A DR action survives the operator being SIGKILLed while a step is in progress."""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from tests.conftest import Cluster, wait_until

from .conftest import allow_app, app, replica, root, status
from .test_actions import action, can_write, finished

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def protected(
    cluster: Cluster, centres: dict[str, Centre], name: str, bucket: str, cleanup: list[str]
) -> None:
    """A replica of `bucket` from production, both copies writable by the app account, Protected."""
    allow_app(centres["fz-prod"], bucket)
    allow_app(centres["fz-samecity-dr"], bucket)
    cleanup.append(name)
    cluster.must_apply(replica(name, bucket))
    wait_until(lambda: status(cluster, name).get("phase") == "Protected", 60)


def restart_operator(cluster: Cluster, operator: dict[str, Any]) -> None:
    """SIGKILL the operator and start it again; wait until it listens for notifications."""
    proc = operator["process"]
    proc.kill()
    proc.start()
    wait_until(lambda: _listening(cluster.stack.events_port), 30, what="the operator's event receiver")


def step_state(cluster: Cluster, name: str, request: str, step: str) -> str | None:
    a = status(cluster, name).get("action") or {}
    if a.get("requestId") != request:
        return None
    return next((s["state"] for s in a.get("steps", []) if s["name"] == step), None)


def test_switchover_resumes_after_sigkill_in_final_sync(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    near_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], near_restored
    protected(cluster, dr_centres, "resume", bucket, cleanup)
    for i in range(20):
        app(prod).put_object(Bucket=bucket, Key=f"k/{i}", Body=b"v")

    near.stop()  # the final sync cannot finish while the new active is away
    action(cluster, "resume", "Switchover", "fz-samecity-dr", "CHG-RESUME")
    wait_until(
        lambda: step_state(cluster, "resume", "CHG-RESUME", "FinalSync") == "Running",
        60,
        what="blocked in FinalSync",
    )
    assert step_state(cluster, "resume", "CHG-RESUME", "Fencing") == "Succeeded"
    assert not can_write(app(prod), bucket)  # fenced before the sync: no write can slip past it

    restart_operator(cluster, operator)
    near.restart()
    s = wait_until(lambda: finished(cluster, "resume", "CHG-RESUME"), 120, what="switchover finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2  # the restart did not take a second epoch
    keys = {o["Key"] for o in root(near).list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert {f"k/{i}" for i in range(20)} <= keys
    assert can_write(app(near), bucket)


def test_failover_resumes_after_sigkill_in_promoting(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    near_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = dr_centres["fz-prod"], near_restored
    protected(cluster, dr_centres, "promote", bucket, cleanup)
    near.stop()  # Promoting cannot open the new active for writes while it is away
    action(cluster, "promote", "Failover", "fz-samecity-dr", "CHG-PROMOTE")
    wait_until(
        lambda: step_state(cluster, "promote", "CHG-PROMOTE", "Promoting") == "Running",
        60,
        what="blocked in Promoting",
    )
    assert not can_write(app(prod), bucket)  # fenced: between the two steps nobody is a writer

    restart_operator(cluster, operator)
    near.restart()
    s = wait_until(lambda: finished(cluster, "promote", "CHG-PROMOTE"), 120, what="failover finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2
    assert can_write(app(near), bucket)


def test_paused_replica_copies_nothing_until_resumed(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    import json

    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    cleanup.append("pausing")
    cluster.must_apply(replica("pausing", bucket))
    wait_until(lambda: status(cluster, "pausing").get("phase") == "Protected", 60)

    def patch(paused: bool) -> None:
        done = cluster.kubectl(
            "-n",
            "dr-tests",
            "patch",
            "drreplica",
            "pausing",
            "--type",
            "merge",
            "-p",
            json.dumps({"spec": {"paused": paused}}),
        )
        assert done.returncode == 0, done.stderr

    patch(True)
    wait_until(lambda: status(cluster, "pausing").get("phase") == "Paused", 30, what="Paused")
    app(prod).put_object(Bucket=bucket, Key="while-paused", Body=b"1")
    import time

    time.sleep(5)  # several follower polls would have copied it by now
    near_keys = {o["Key"] for o in root(near).list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert "while-paused" not in near_keys
    patch(False)
    wait_until(
        lambda: (
            "while-paused"
            in {o["Key"] for o in root(near).list_objects_v2(Bucket=bucket).get("Contents", [])}
        ),
        30,
        what="copied after resuming",
    )


def test_switchover_resumes_after_sigkill_in_fencing(
    cluster: Cluster,
    operator: dict[str, Any],
    dr_centres: dict[str, Centre],
    prod_restored: Centre,
    bucket: str,
    cleanup: list[str],
) -> None:
    prod, near = prod_restored, dr_centres["fz-samecity-dr"]
    protected(cluster, dr_centres, "fencing", bucket, cleanup)
    for i in range(10):
        app(prod).put_object(Bucket=bucket, Key=f"f/{i}", Body=b"v")
    wait_until(
        lambda: (
            {f"f/{i}" for i in range(10)}
            <= {o["Key"] for o in root(near).list_objects_v2(Bucket=bucket).get("Contents", [])}
        ),
        30,
    )

    prod.stop()  # a planned switchover fences the old active first, and will not go on without it
    action(cluster, "fencing", "Switchover", "fz-samecity-dr", "CHG-FENCE")
    wait_until(
        lambda: step_state(cluster, "fencing", "CHG-FENCE", "Fencing") == "Running",
        60,
        what="blocked in Fencing",
    )
    assert status(cluster, "fencing")["activeCentre"] == "fz-prod"  # nothing promoted without the fence

    restart_operator(cluster, operator)
    prod.restart()
    s = wait_until(lambda: finished(cluster, "fencing", "CHG-FENCE"), 120, what="switchover finished")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == 2
    assert not can_write(app(prod), bucket)
    assert can_write(app(near), bucket)
