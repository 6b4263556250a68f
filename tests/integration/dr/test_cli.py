"""`datacloud dr ...` against the real stack, as an SRE types it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, replica, status

pytestmark = pytest.mark.integration


def dr(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "datacloud",
            "dr",
            *args,
            "-n",
            NAMESPACE,
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_dry_run_prints_the_plan_and_estimated_loss(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    allow_app(dr_centres["fz-prod"], bucket)
    cleanup.append("cli")
    cluster.must_apply(replica("cli", bucket))
    wait_until(lambda: status(cluster, "cli").get("phase") == "Protected", 60)
    done = dr(cluster, "failover", "cli", "--to", "fz-samecity-dr", "--dry-run", "--request-id", "CHG-CLI-1")
    assert done.returncode == 0, done.stderr
    assert "Dry run, nothing changed" in done.stdout
    assert "Estimated data loss:" in done.stdout
    assert status(cluster, "cli")["activeCentre"] == "fz-prod"


def test_bad_input_gets_a_clear_message(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    missing = dr(cluster, "failover", "no-such-replica", "--to", "fz-samecity-dr")
    assert missing.returncode == 1
    assert "DRReplica dr-tests/no-such-replica not found" in missing.stderr
    cleanup.append("cli-bad")
    cluster.must_apply(replica("cli-bad", bucket))
    wrong = dr(cluster, "failover", "cli-bad", "--to", "sanming-dc")
    assert wrong.returncode == 2
    assert "sanming-dc holds no copy of cli-bad" in wrong.stderr
    refused = dr(
        cluster, "failover", "cli-bad", "--to", "fz-samecity-dr", "--request-id", "bad id with spaces"
    )
    assert refused.returncode == 1
    assert "requestId" in refused.stderr
    assert "Traceback" not in wrong.stderr + refused.stderr + missing.stderr
