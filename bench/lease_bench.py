"""What a write lease costs the operator: one renewal (policy read and write) of N buckets, against a
versitygw store of its own.

One command: `.venv/bin/python bench/lease_bench.py [--buckets 100] [--rounds 3]`. Reports the operator's
CPU and the wall time per renewal, and what they make for 1,000 buckets at the shortest lease (renewed
every half lease) and at a 60-s one. The bound in the same run: the CPU of one policy read alone. Writes
bench/results/lease.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datacloud.adapters import s3  # noqa: E402
from datacloud.devstack.objectstore import Centre  # noqa: E402
from datacloud.failover import fencing, lease  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lease.json"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lease-bench-"))
    centre = Centre("lease", workdir / "store").start()
    try:
        endpoint = s3.S3Endpoint(
            centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key)
        )
        admin = s3.client(endpoint)
        buckets = [f"lease-{i}" for i in range(args.buckets)]
        # Each round half a lease later, as the renewer does: every renewal writes a new expiry.
        ahead = [0.0]
        leases = lease.Leases(clock=lambda: time.time() + ahead[0], background=False)
        for i, bucket in enumerate(buckets):
            admin.create_bucket(Bucket=bucket)
            leases.grant(f"{i:016x}", lease.Held(endpoint, bucket, "data", None, lease.LEASE_MIN_S))
            leases.renew(endpoint, bucket)  # the first write, and a warm client
        shared = s3.shared_client(endpoint, connect_timeout=2, read_timeout=2)
        cpu0 = time.process_time()
        for _ in range(args.rounds):
            for bucket in buckets:
                fencing.read_policy(shared, bucket)
        read_cpu = (time.process_time() - cpu0) / (args.rounds * len(buckets))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(args.rounds):
            ahead[0] += lease.LEASE_MIN_S / 2
            for bucket in buckets:
                leases.renew(endpoint, bucket)
        n = args.rounds * len(buckets)
        cpu, wall = (time.process_time() - cpu0) / n, (time.perf_counter() - wall0) / n
    finally:
        centre.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "command": f"bench/lease_bench.py --buckets {args.buckets} --rounds {args.rounds}",
        "renewals": n,
        "cpuPerRenewalMs": round(cpu * 1000, 3),
        "wallPerRenewalMs": round(wall * 1000, 3),
        "cpuPerPolicyReadMs": round(read_cpu * 1000, 3),
        "renewalOverReadCpu": round(cpu / read_cpu, 2),
        "coresFor1000BucketsAtShortestLease": round(1000 / (lease.LEASE_MIN_S / 2) * cpu, 3),
        "coresFor1000BucketsAt60sLease": round(1000 / 30.0 * cpu, 3),
        "loadAverage": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
