"""Every admitted DRReplica spec works or says why: out-of-range cron fields are refused by the API
server naming the field; a schedule that never fires is reported (condition naming the field, Event,
phase) while the replica's other targets are still replicated."""

from __future__ import annotations

import json

import pytest

from datacloud.builders.conditions import find
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import allow_app, app, keys_at, replica, status

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("schedule", "field"), [("99 99 * * *", "minute"), ("0 0 * 13 *", "month")])
def test_the_api_server_refuses_a_cron_field_out_of_range_naming_it(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, schedule: str, field: str
) -> None:
    doc = replica("out-of-range", bucket)
    doc["spec"]["targets"][1]["schedule"] = schedule
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(doc))
    assert done.returncode != 0
    assert f"the {field} field" in done.stderr
    assert "spec.targets[1].schedule" in done.stderr


def test_a_schedule_that_never_fires_is_reported_and_the_continuous_target_still_runs(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    prod, near = dr_centres["fz-prod"], dr_centres["fz-samecity-dr"]
    allow_app(prod, bucket)
    allow_app(near, bucket)
    doc = replica("feb31", bucket)
    doc["spec"]["targets"][1]["schedule"] = "0 0 31 2 *"
    cleanup.append("feb31")
    cluster.must_apply(doc)
    s = wait_until(
        lambda: (st := status(cluster, "feb31")).get("phase") == "Invalid" and st, 60, what="Invalid"
    )
    cond = find(s["conditions"], "SpecUsable")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "ScheduleNeverFires")
    assert "spec.targets[1].schedule" in cond["message"]
    ready = find(s["conditions"], "Ready")
    assert ready is not None
    assert ready["reason"] == "ScheduleNeverFires"
    assert any(e["reason"] == "ScheduleNeverFires" for e in cluster.events_for("feb31"))

    app(prod).put_object(Bucket=bucket, Key="still-protected", Body=b"1")
    wait_until(lambda: "still-protected" in keys_at(near, bucket), 30, what="the continuous target runs")
    # ... and is reported (its status follows the copy within a status write or two).
    wait_until(
        lambda: (
            next(
                (t for t in status(cluster, "feb31").get("targets") or [] if t["name"] == "same-city"), {}
            ).get("lagSeconds")
            is not None
        ),
        30,
        what="the continuous target's lag reported beside the unusable schedule",
    )

    fixed = replica("feb31", bucket)  # schedule fixed: the condition clears, the phase follows
    cluster.must_apply(fixed)
    s = wait_until(
        lambda: (st := status(cluster, "feb31")).get("phase") == "Protected" and st, 60, what="fixed"
    )
    cond = find(s["conditions"], "SpecUsable")
    assert cond is not None
    assert cond["status"] == "True"


def test_the_api_server_refuses_two_targets_whose_prefixes_nest(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str
) -> None:
    doc = replica("nested", bucket)
    near = dict(doc["spec"]["targets"][0], name="near-inner", prefix="records/2026")
    doc["spec"]["targets"][0]["prefix"] = "records"
    doc["spec"]["targets"].append(near)
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(doc))
    assert done.returncode != 0
    assert "prefixes that do not contain one another" in done.stderr
    near["prefix"] = "records2"  # a sibling, not inside: admitted
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(doc))
    assert done.returncode == 0, done.stderr
