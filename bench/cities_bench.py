"""How fast the operator summarises ten city clusters, against the bound of just listing their objects.

    .venv/bin/python bench/cities_bench.py [--cities 10] [--nodes 1000] [--pods 10000] [--rounds 3]

Starts a control plane with one API server per city, writes a generated fleet into each
(tests/support/fleet.py), then, in fresh child processes so each peak RSS is its own, alternately runs:
- bound: the raw API only — paginated list calls of every city's nodes and live pods (the same queries
  the census makes), each page decoded because the next page's token is inside it; nothing else;
- census: the operator's collectors — the same lists projected into compact records, held as a live
  mirror, and added up into a CitySummary per city.
Cities run concurrently (one thread each) in both. JSON goes to bench/results/cities.json; the target is
census time within 1.5x the bound and census peak RSS under 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.city_fleets import alternate, peak_rss_mb, run_child, write_fleets  # noqa: E402
from datacloud.adapters.kube import Kube  # noqa: E402
from datacloud.census.aggregate import summarise  # noqa: E402
from datacloud.census.collect import LIVE_PODS, NODES, PODS, CityCollector  # noqa: E402
from datacloud.devstack.controlplane import ControlPlane  # noqa: E402


def bound(kubeconfigs: list[str], page: int) -> dict[str, Any]:
    """Paginated list calls and nothing else."""
    kubes = [Kube.from_kubeconfig_text(k, timeout_s=60) for k in kubeconfigs]

    def list_city(kube: Kube) -> int:
        n = 0
        for path, query in ((NODES, {}), (PODS, {"fieldSelector": LIVE_PODS})):
            for out in kube.list_pages(path, query, page):
                n += len(out.get("items") or [])
        return n

    start = time.perf_counter()
    with ThreadPoolExecutor(len(kubes)) as pool:
        objects = sum(pool.map(list_city, kubes))
    return {"seconds": time.perf_counter() - start, "objects": objects, "peak_rss_mb": peak_rss_mb()}


def census(kubeconfigs: list[str], page: int) -> dict[str, Any]:
    """The operator's path: a live mirror per city, then its summary."""
    kubes = [Kube.from_kubeconfig_text(k, timeout_s=60) for k in kubeconfigs]
    start = time.perf_counter()
    collectors = [CityCollector(kube, f"bench-{i}", page) for i, kube in enumerate(kubes)]
    summaries = []
    for c in collectors:
        if not c.wait_synced(600):
            raise RuntimeError(f"a city did not sync: {c.error}")
        summaries.append(c.summary())
    seconds = time.perf_counter() - start
    again = time.perf_counter()
    for c in collectors:  # what a heartbeat costs after a change: adding up the mirror again
        summarise(c.nodes.items(), c.pods.items())
    resummarise = time.perf_counter() - again
    for c in collectors:
        c.stop()
    return {
        "seconds": seconds,
        "objects": sum(s.nodes.total + s.pods for s in summaries if s),
        "resummarise_all_seconds": resummarise,
        "peak_rss_mb": peak_rss_mb(),
        "nodes": [s.nodes_wire() for s in summaries if s],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cities", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--page", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cities.json")
    ap.add_argument("--child", choices=["bound", "census"], help=argparse.SUPPRESS)
    ap.add_argument("--kubeconfigs", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        configs = json.loads(args.kubeconfigs.read_text())
        print(json.dumps((bound if args.child == "bound" else census)(configs, args.page)))
        return

    with tempfile.TemporaryDirectory(prefix="cities-bench-") as tmp:
        plane = ControlPlane(Path(tmp) / "cluster").start(controller_manager=False)
        try:
            path, setup = write_fleets(plane, args.cities, args.nodes, args.pods, Path(tmp))
            runs = alternate(
                args.rounds,
                ("bound", "census"),
                lambda kind: run_child(__file__, kind, path, args.page, 1800),
            )
        finally:
            plane.stop()

    b = statistics.median(r["seconds"] for r in runs["bound"])
    c = statistics.median(r["seconds"] for r in runs["census"])
    result = {
        "benchmark": "cities",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cities": args.cities,
        "nodes_per_city": args.nodes,
        "pods_per_city": args.pods,
        "page_size": args.page,
        "rounds": args.rounds,
        "setup_seconds": round(setup, 1),
        "bound_seconds": round(b, 3),
        "census_seconds": round(c, 3),
        "ratio": round(c / b, 3),
        "target_ratio": 1.5,
        "census_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["census"]), 1),
        "bound_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["bound"]), 1),
        "target_rss_mb": 400,
        "resummarise_all_seconds": round(
            statistics.median(r["resummarise_all_seconds"] for r in runs["census"]), 3
        ),
        "objects_listed": runs["bound"][0]["objects"],
        "objects_summarised": runs["census"][0]["objects"],
        "runs": {k: [{kk: v for kk, v in r.items() if kk != "nodes"} for r in rs] for k, rs in runs.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
