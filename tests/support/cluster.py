"""The real control plane as tests reach it (kubectl and the Python client), and polling with a deadline."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from datacloud.adapters.kube import Kube
from datacloud.devstack.process import tool
from datacloud.devstack.stack import DevStack


def refusal(create: Callable[[], object]) -> str | None:
    """None when the API server accepts `create` (a dry run, usually), else its message; anything but a
    validation refusal (422) fails the test."""
    from kubernetes.client.exceptions import ApiException

    try:
        create()
    except ApiException as e:
        status, body = e.status, e.body
    else:
        return None
    assert status == 422, body
    return str(json.loads(body)["message"])


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

    def must(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl that must succeed: a test whose setup step failed would otherwise pass for nothing."""
        done = self.kubectl(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done

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
