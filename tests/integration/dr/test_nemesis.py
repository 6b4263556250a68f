"""A short seeded nemesis schedule (bench/dr_nemesis.py) on the session stack: random failovers,
switchovers, failbacks, centre kills and restarts and operator SIGKILLs while two application accounts
write through the published endpoints. No acknowledged write may be lost."""

from __future__ import annotations

import os
from typing import Any

import pytest
from bench import dr_nemesis

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster

pytestmark = pytest.mark.integration
NEMESIS_NAMESPACE = "dr-nemesis"


@pytest.mark.timeout(900)
def test_a_short_fault_schedule_loses_no_acknowledged_write(
    cluster: Cluster,
    dr_centres: dict[str, Centre],
    operator: dict[str, Any],
    prod_restored: Centre,
    near_restored: Centre,
) -> None:
    bucket = f"nemesis-{os.urandom(3).hex()}"
    try:
        report = dr_nemesis.run(
            cluster.stack, operator["process"], cluster.kube, NEMESIS_NAMESPACE, bucket, faults=6, seed=7
        )
    finally:
        for name in dr_nemesis.ACCOUNTS:
            cluster.kubectl("-n", NEMESIS_NAMESPACE, "delete", "drreplica", name, "--wait=false")
    assert report["faultsInjected"] == 6
    assert report["acknowledgedWrites"] > 0
    assert report["lostWrites"] == 0, report["lostKeys"]
    assert report["readbackMismatches"] == 0
