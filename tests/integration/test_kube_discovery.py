"""The dynamic client's discovery in a process with many worker threads, each with its own client."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from datacloud.adapters.kube import Kube
from datacloud.devstack.stack import DevStack

pytestmark = pytest.mark.integration


def test_clients_discover_without_reading_or_writing_a_shared_cache_file(
    stack: DevStack, caplog: pytest.LogCaptureFixture
) -> None:
    """The client's default cache is one file per API server, shared by every process and rewritten in
    place: a client reading it half-written (here: as another process left it) logged
    `load cache error` at ERROR. Each client now discovers for itself and writes no file."""
    first = Kube.from_kubeconfig(str(stack.kubeconfig))
    host = first.api.configuration.host
    shared = os.path.join(
        tempfile.gettempdir(), f"osrcp-{hashlib.md5(host.encode(), usedforsecurity=False).hexdigest()}.json"
    )
    half = Path(shared)
    kept = half.read_bytes() if half.exists() else None
    try:
        half.write_text('{"library_version": "3')  # half-written by another process
        clients = [Kube.from_kubeconfig(str(stack.kubeconfig)) for _ in range(12)]
        with caplog.at_level(logging.ERROR), ThreadPoolExecutor(12) as pool:
            kinds = list(
                pool.map(lambda k: k.dynamic.resources.get(api_version="v1", kind="ConfigMap").kind, clients)
            )
        assert kinds == ["ConfigMap"] * 12
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert half.read_text() == '{"library_version": "3'  # neither read as a cache nor rewritten
    finally:
        if kept is None:
            half.unlink()
        else:
            half.write_bytes(kept)
