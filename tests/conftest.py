"""Fixtures shared by the whole suite: the real control plane, object-store centres, the operator."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from datacloud.adapters.kube import Kube
from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import free_port, tool
from datacloud.devstack.stack import OPERATOR_NAMESPACE, DevStack, centre_secret, operator_process

ROOT = Path(__file__).resolve().parents[1]


def wait_until(check: Callable[[], Any], timeout: float = 60, interval: float = 0.25, what: str = "") -> Any:
    """Poll until `check()` returns something truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or check}; last value: {last!r}")


class Cluster:
    """The session's provincial API server, reached through the real kubectl and the Python client."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.kubeconfig = stack.kubeconfig
        self.kube = Kube.from_kubeconfig(str(self.kubeconfig))

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def apply(self, *docs: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        text = "---\n".join(yaml.safe_dump(d, allow_unicode=True) for d in docs)
        return self.kubectl("apply", "-f", "-", stdin=text)

    def must_apply(self, *docs: dict[str, Any]) -> None:
        done = self.apply(*docs)
        assert done.returncode == 0, done.stderr

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.kube.get(plural, name, namespace)

    def events_for(self, name: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get", "events", "-A", "-o", "yaml", "--field-selector", f"involvedObject.name={name}"
        )
        return list(yaml.safe_load(out.stdout).get("items", []))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """Control plane with the CRDs installed and the three provincial centres; no samples."""
    dev = DevStack(tmp_path_factory.mktemp("stack")).start(samples=False)
    yield dev
    dev.stop()


@pytest.fixture(scope="session")
def cluster(stack: DevStack) -> Cluster:
    return Cluster(stack)


@pytest.fixture(scope="session")
def operator(stack: DevStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The operator process (`datacloud run`) against the session cluster."""
    port, live = free_port(), free_port()
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = operator_process(stack, log, port, live, "--log-format", "json").start()
    yield {
        "process": proc,
        "metrics": f"http://127.0.0.1:{port}/metrics",
        "liveness": f"http://127.0.0.1:{live}/healthz",
        "log": log,
    }
    proc.stop()


@pytest.fixture
def centre(tmp_path: Path, cluster: Cluster) -> Iterator[Centre]:
    """A fresh versitygw centre for one test, with its credentials Secret in the operator namespace."""
    c = Centre(f"t{os.urandom(3).hex()}", tmp_path / "centre").start()
    cluster.must_apply(centre_secret(c, OPERATOR_NAMESPACE))
    yield c
    c.stop()
