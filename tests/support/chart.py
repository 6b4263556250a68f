"""The operator's Helm chart as the tests reach it: its folder and the real helm, with caches of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from datacloud.devstack.process import tool

CHART = Path(__file__).resolve().parents[2] / "charts" / "datacloud-operator"


def helm(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": "/tmp/helm-cache",
        "HELM_CONFIG_HOME": "/tmp/helm-config",
        "HELM_DATA_HOME": "/tmp/helm-data",
    }
    extra = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return subprocess.run(
        [tool("helm"), *args, *extra], capture_output=True, text=True, timeout=180, env=env, check=False
    )
