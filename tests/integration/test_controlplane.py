"""The local control plane itself: real authentication, RBAC, controllers, city API servers, cleanup."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import psutil
import pytest

from datacloud.devstack.controlplane import ControlPlane, write_kubeconfig
from datacloud.devstack.process import tool
from tests.support.cluster import Cluster, wait_until

pytestmark = pytest.mark.integration


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubectl"), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_namespaces_really_delete_and_garbage_collection_runs(cluster: Cluster) -> None:
    assert cluster.kubectl("create", "namespace", "cp-gc").returncode == 0
    assert cluster.kubectl("-n", "cp-gc", "create", "configmap", "owner").returncode == 0
    uid = cluster.must("-n", "cp-gc", "get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}").stdout
    assert uid
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": "cp-gc",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
    }
    cluster.must_apply(child)
    assert cluster.must("-n", "cp-gc", "get", "configmap", "child").stdout  # there before the owner goes
    assert cluster.kubectl("-n", "cp-gc", "delete", "configmap", "owner").returncode == 0
    wait_until(
        lambda: "NotFound" in cluster.kubectl("-n", "cp-gc", "get", "configmap", "child").stderr,
        60,
        what="garbage collection of the owned ConfigMap",
    )
    assert cluster.kubectl("delete", "namespace", "cp-gc", "--timeout=90s").returncode == 0
    assert "NotFound" in cluster.kubectl("get", "namespace", "cp-gc").stderr


def test_rbac_refuses_an_unprivileged_client_certificate(cluster: Cluster, tmp_path: Path) -> None:
    cp = cluster.stack.control_plane
    user = cp.pki.issue("nobody", "nobody", org="datacloud-nobody")
    kc = write_kubeconfig(tmp_path / "kc", "nobody", cp.main.url, cp.pki.cert_path, user.cert, user.key)
    done = kubectl(kc, "get", "secrets", "-A")
    assert done.returncode != 0
    assert 'User "nobody" cannot list resource "secrets"' in done.stderr


def test_unknown_ca_and_expired_certificates_are_refused(cluster: Cluster, tmp_path: Path) -> None:
    from datacloud.devstack.pki import LocalCA

    cp = cluster.stack.control_plane
    stranger = LocalCA(tmp_path / "other").issue("admin", "admin", org="system:masters")
    kc = write_kubeconfig(tmp_path / "kc1", "x", cp.main.url, cp.pki.cert_path, stranger.cert, stranger.key)
    assert "Unauthorized" in kubectl(kc, "get", "ns").stderr
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    expired = cp.pki.issue(
        "expired", "admin", org="system:masters", valid=dt.timedelta(days=1), not_before=old
    )
    kc2 = write_kubeconfig(tmp_path / "kc2", "x", cp.main.url, cp.pki.cert_path, expired.cert, expired.key)
    assert "Unauthorized" in kubectl(kc2, "get", "ns").stderr


def test_city_api_servers_are_separate_clusters_and_stop_cleanly(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "cp").start(controller_manager=False)
    try:
        city = cp.add_apiserver("city-350200")
        assert kubectl(cp.main.kubeconfig, "create", "namespace", "only-in-province").returncode == 0
        in_city = kubectl(city.kubeconfig, "get", "ns", "-o", "name")
        assert in_city.returncode == 0, in_city.stderr
        assert "namespace/default" in in_city.stdout  # the city answered with its own namespaces
        assert "namespace/only-in-province" not in in_city.stdout
        assert kubectl(city.kubeconfig, "version", "-o", "json").returncode == 0
        pids = [p.pid for p in (cp.etcd, cp.main.process, city.process) if p and p.pid]
    finally:
        cp.stop()
    assert pids
    assert not [
        p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
