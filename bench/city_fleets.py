"""What the city and census benchmarks share: generated city fleets, child processes, peak RSS."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.fleet import create_fleet, embedded_kubeconfig, make_fleet

from datacloud.api.common import CITIES
from datacloud.devstack.controlplane import ControlPlane

CODES = tuple(CITIES)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_fleets(plane: ControlPlane, cities: int, nodes: int, pods: int, into: Path) -> tuple[Path, float]:
    """One API server per city holding a generated fleet; their kubeconfigs in a JSON file, and the
    seconds the setup took."""
    started = time.perf_counter()
    configs = []
    for i in range(cities):
        server = plane.add_apiserver(f"city-{i}")
        create_fleet(server, make_fleet(CODES[i % len(CODES)], nodes, pods), threads=8)
        configs.append(embedded_kubeconfig(server))
        print(f"city {i + 1}/{cities} written", file=sys.stderr)
    path = into / "kubeconfigs.json"
    path.write_text(json.dumps(configs))
    return path, time.perf_counter() - started


def run_child(script: str, kind: str, kubeconfigs: Path, page: int, timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh process, so its peak RSS is its own."""
    out = subprocess.run(
        [sys.executable, script, "--child", kind, "--kubeconfigs", str(kubeconfigs), "--page", str(page)],
        capture_output=True, text=True, check=True, timeout=timeout,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def alternate(
    rounds: int, kinds: tuple[str, ...], measure: Callable[[str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Measure each kind once per round, alternating, so slow phases of a shared machine hit all kinds."""
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds:
            runs[kind].append(measure(kind))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return runs
