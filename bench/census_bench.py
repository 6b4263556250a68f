"""A full compute census of ten cities against the bound of just listing their objects.

    .venv/bin/python bench/census_bench.py [--cities 10] [--nodes 1000] [--pods-per-node 10] [--rounds 3]

Starts a control plane with one API server per city and writes a generated fleet into each
(tests/support/fleet.py). Then, in fresh child processes so each peak RSS is its own, alternately runs:
- bound: the raw API only — the paginated lists of every city's nodes and live pods the census makes,
  city after city, each page decoded (the next page's token is inside it); nothing else;
- census: a full census run as the operator does it (census/run.py: the same lists, projected to
  compact records, reduced to rows per city, centre and GPU model, free capacity, province totals,
  trends) and then all three report formats (JSON, CSV, and the HTML page with plotly.js inlined).
JSON goes to bench/results/census.json; the target is census time within 1.5x the bound and peak RSS
under 500 MB.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.city_fleets import CODES, alternate, peak_rss_mb, run_child, write_fleets  # noqa: E402
from datacloud.adapters.kube import Kube  # noqa: E402
from datacloud.api.common import CITIES  # noqa: E402
from datacloud.census.collect import LIVE_PODS, NODES, PODS  # noqa: E402
from datacloud.census.report import render  # noqa: E402
from datacloud.census.run import CityTarget, assemble, collect  # noqa: E402
from datacloud.devstack.controlplane import ControlPlane  # noqa: E402


def bound(kubeconfigs: list[str], page: int) -> dict[str, Any]:
    """Paginated list calls and nothing else, city after city as the census goes."""
    kubes = [Kube.from_kubeconfig_text(k, timeout_s=120) for k in kubeconfigs]
    start = time.perf_counter()
    objects = 0
    for kube in kubes:
        for path, query in ((NODES, {}), (PODS, {"fieldSelector": LIVE_PODS})):
            for out in kube.list_pages(path, query, page):
                objects += len(out.get("items") or [])
    return {"seconds": time.perf_counter() - start, "objects": objects, "peak_rss_mb": peak_rss_mb()}


def census(kubeconfigs: list[str], page: int) -> dict[str, Any]:
    """A census run (collect + assemble) and the three reports."""
    targets = [
        CityTarget(f"city-{i}", CODES[i % len(CODES)], *CITIES[CODES[i % len(CODES)]],
                   Kube.from_kubeconfig_text(k, timeout_s=120))
        for i, k in enumerate(kubeconfigs)
    ]  # fmt: skip
    start = time.perf_counter()
    collected = collect(targets, [], None, page_size=page)
    collected_s = time.perf_counter() - start
    if collected.problems:
        raise RuntimeError("; ".join(collected.problems))
    snapshot = assemble("bench", collected, [], [])
    assembled_s = time.perf_counter() - start
    sizes = {fmt: len(render(fmt, snapshot, [snapshot])) for fmt in ("json", "csv", "html")}
    total = time.perf_counter() - start
    province = snapshot.rows[0]
    return {
        "seconds": total,
        "collect_seconds": collected_s,
        "assemble_seconds": assembled_s - collected_s,
        "reports_seconds": total - assembled_s,
        "objects": int(province["nodes_total"]) + int(province["pods_live"]),
        "rows": len(snapshot.rows),
        "report_bytes": sizes,
        "snapshot_gzip_bytes": len(snapshot.encode()),
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cities", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=1000, help="nodes per city")
    ap.add_argument("--pods-per-node", type=int, default=10)
    ap.add_argument("--page", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "census.json")
    ap.add_argument("--child", choices=["bound", "census"], help=argparse.SUPPRESS)
    ap.add_argument("--kubeconfigs", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        configs = json.loads(args.kubeconfigs.read_text())
        print(json.dumps((bound if args.child == "bound" else census)(configs, args.page)))
        return

    with tempfile.TemporaryDirectory(prefix="census-bench-") as tmp:
        plane = ControlPlane(Path(tmp) / "cluster").start(controller_manager=False)
        try:
            path, setup = write_fleets(
                plane, args.cities, args.nodes, args.nodes * args.pods_per_node, Path(tmp)
            )
            runs = alternate(
                args.rounds,
                ("bound", "census"),
                lambda kind: run_child(__file__, kind, path, args.page, 3600),
            )
        finally:
            plane.stop()

    b = statistics.median(r["seconds"] for r in runs["bound"])
    c = statistics.median(r["seconds"] for r in runs["census"])
    collect_only = statistics.median(r["collect_seconds"] for r in runs["census"])
    result = {
        "benchmark": "census",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cities": args.cities,
        "nodes_per_city": args.nodes,
        "pods_per_city": args.nodes * args.pods_per_node,
        "page_size": args.page,
        "rounds": args.rounds,
        "setup_seconds": round(setup, 1),
        "bound_seconds": round(b, 3),
        "census_seconds": round(c, 3),
        "ratio": round(c / b, 3),
        "collect_ratio": round(collect_only / b, 3),
        "target_ratio": 1.5,
        "census_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["census"]), 1),
        "bound_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["bound"]), 1),
        "target_rss_mb": 500,
        "report_bytes": runs["census"][0]["report_bytes"],
        "snapshot_gzip_bytes": runs["census"][0]["snapshot_gzip_bytes"],
        "rows": runs["census"][0]["rows"],
        "objects_listed": runs["bound"][0]["objects"],
        "objects_in_census": runs["census"][0]["objects"],
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
