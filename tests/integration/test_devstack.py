"""`make up` and `make down` as a newcomer uses them: samples listed, centres Up, explain, no leftovers."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from datacloud.devstack.process import tool
from tests.support.cluster import wait_until

pytestmark = pytest.mark.integration


def test_dev_up_lists_samples_and_down_leaves_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    up = subprocess.run(
        [sys.executable, "-m", "datacloud", "dev", "up", "--dir", str(state_dir), "--cities", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    assert "kubectl get datacloud" in up.stdout
    state = json.loads((state_dir / "state.json").read_text())
    pids = [state["holder"], state["operator"], *state["pids"]]
    kc = str(state_dir / "kubeconfig")

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            [tool("kubectl"), "--kubeconfig", kc, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        listing = kubectl("get", "datacloud", "-A")
        for expected in ("fz-prod", "fuzhou", "population", "population-records", "provincial", "350100"):
            assert expected in listing
        wait_until(lambda: kubectl("get", "dc").count(" Up ") == 3, 90, what="three centres Up")
        wait_until(
            lambda: kubectl("get", "drr", "-A").count("Protected") == 3, 90, what="sample replicas Protected"
        )
        explain = kubectl("explain", "drreplica.spec.targets")
        assert "rpoTarget" in explain
        assert "Recovery point objective" in explain
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "datacloud", "dev", "down", "--dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert down.returncode == 0, down.stderr
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert not (state_dir / "state.json").exists()


def test_dev_run_stops_everything_when_its_parent_is_killed(tmp_path: Path) -> None:
    """`make run` killed (make passes no signal on): the stack must not outlive it."""
    out = tmp_path / "run.log"
    command = (
        f"{sys.executable} -m datacloud dev run --dir {tmp_path / 'dev'} --no-samples --no-prometheus"
        f" > {out} 2>&1; true"  # `; true` keeps bash as the parent instead of exec'ing python
    )
    parent = subprocess.Popen(["bash", "-c", command], start_new_session=True)
    ours: list[psutil.Process] = [psutil.Process(parent.pid)]  # what this test started, to clean up
    try:
        wait_until(
            lambda: out.exists() and "dev stack is up" in out.read_text(), 240, what="the dev stack up"
        )
        ours += psutil.Process(parent.pid).children(recursive=True)
        assert (
            len(ours) >= 8
        )  # bash, the runner, etcd, API server, controller manager, 3 centres (+ operator)
        parent.kill()  # SIGKILL: the parent cannot pass anything on
        parent.wait(10)

        def gone() -> bool:
            return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ours[1:])

        wait_until(gone, 90, what="every process of the stack stopped")
        assert "dev stack stopped" in out.read_text()
    finally:
        for proc in ours:
            with contextlib.suppress(psutil.Error):
                proc.kill()
