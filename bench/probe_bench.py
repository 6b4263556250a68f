"""What a centre probe costs the operator: ListBuckets (one bucket at most) against a versitygw store of its
own, through boto3's shared client (the probe before) and through the lean client as `probe_store` makes
it, in alternating rounds.

One command: `.venv/bin/python bench/probe_bench.py [--probes 1000] [--rounds 3]`. Writes
bench/results/probe.json: CPU milliseconds per probe for each way, each round, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datacloud.adapters import s3  # noqa: E402
from datacloud.devstack.objectstore import Centre  # noqa: E402
from datacloud.failover.probe import probe_store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=1000, help="probes per way and round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each way in turn (default 3)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "probe.json"), help="JSON report")
    args = parser.parse_args()
    load_before = os.getloadavg()
    centre = Centre("probe-bench", Path(tempfile.mkdtemp()) / "store").start()
    try:
        endpoint = s3.S3Endpoint(
            centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key)
        )
        boto = s3.shared_client(endpoint, connect_timeout=1, read_timeout=1)

        def through_boto3() -> None:
            boto.list_buckets(MaxBuckets=1)

        def lean() -> None:
            if not probe_store(endpoint, 1.0).ok:
                raise SystemExit("the probe failed against a live store")

        ways = {"boto3": through_boto3, "lean": lean}
        cpu_ms: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, probe in ways.items():
                start = time.process_time()
                for _ in range(args.probes):
                    probe()
                cpu_ms[name].append(round((time.process_time() - start) / args.probes * 1000, 4))
    finally:
        centre.stop()
    medians = {name: statistics.median(values) for name, values in cpu_ms.items()}
    report = {
        "benchmark": "probe",
        "command": "bench/probe_bench.py " + " ".join(sys.argv[1:]),
        "probes_per_round": args.probes,
        "cpu_ms_per_probe": cpu_ms,
        "cpu_ms_per_probe_median": medians,
        "boto3_over_lean": round(medians["boto3"] / medians["lean"], 2),
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
    }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
