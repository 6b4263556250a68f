"""`make up` and `make down` as a newcomer uses them: samples listed, centres Up, explain, no leftovers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from datacloud.devstack.process import tool
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_dev_up_lists_samples_and_down_leaves_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    up = subprocess.run(
        [sys.executable, "-m", "datacloud", "dev", "up", "--dir", str(state_dir)],
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
        for expected in ("fz-prod", "xiamen", "population", "population-records", "provincial", "350128"):
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
