"""The kubectl plugin, found through the real kubectl's plugin discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import tool
from tests.support.cluster import Cluster, wait_until
from tests.support.dr import NAMESPACE, allow_app, replica, status

pytestmark = pytest.mark.integration


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(
        [tool("kubectl"), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_kubectl_finds_the_plugin_and_it_reports_status(
    cluster: Cluster, dr_centres: dict[str, Centre], bucket: str, cleanup: list[str]
) -> None:
    listed = kubectl(cluster, "plugin", "list")
    assert "kubectl-datacloud" in listed.stdout
    allow_app(dr_centres["fz-prod"], bucket)
    cleanup.append("plugin")
    cluster.must_apply(replica("plugin", bucket))
    wait_until(lambda: status(cluster, "plugin").get("phase") == "Protected", 60)
    out = kubectl(cluster, "datacloud", "status", "-A")
    assert out.returncode == 0, out.stderr
    for expected in ("fz-prod", "Production", "fz-samecity-dr", f"{NAMESPACE}/plugin", "Protected"):
        assert expected in out.stdout
    dry = kubectl(
        cluster,
        "datacloud",
        "dr",
        "failover",
        "plugin",
        "-n",
        NAMESPACE,
        "--to",
        "fz-samecity-dr",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "Estimated data loss" in dry.stdout
    census = kubectl(cluster, "datacloud", "census", "report", "--format", "json", "-o", "-")
    assert census.returncode == 0, census.stderr
    report = json.loads(census.stdout)
    assert isinstance(report, dict)
    assert report
