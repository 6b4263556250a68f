"""Fixtures shared by the whole suite: the real control plane, object-store centres, the operator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import free_port
from datacloud.devstack.stack import OPERATOR_NAMESPACE, DevStack, centre_secret, operator_process
from tests.support.cluster import Cluster


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
