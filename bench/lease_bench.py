"""What a write lease costs the operator: renewals (a policy write, with or without a read first) of N
buckets, against a versitygw store of its own.

One command: `.venv/bin/python bench/lease_bench.py [--buckets 100] [--rounds 3]`. Measures the operator's
CPU and wall time per renewal four ways — through boto3's shared client (read and write, the path before
the lean client), through the lean client with a read every time, with no read (this process wrote the
policy last), and as the renewer runs them (a read every READ_EVERY-th renewal) — and the bound in the
same run: one policy read through boto3. From the renewer's figure it derives what 1,000 buckets cost at
the shortest lease and the shortest lease that keeps them within 3 % of a core. Writes
bench/results/lease.json, with the load average (`uptime`) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datacloud.adapters import s3  # noqa: E402
from datacloud.devstack.objectstore import Centre  # noqa: E402
from datacloud.failover import fencing, lease  # noqa: E402

BUDGET_CORES = 0.03  # what renewing 1,000 buckets may cost


def mean_interval(length: float) -> float:
    """The time between two renewals of one bucket's lease once its first renewal is past
    (`lease.renew_at` with no spread: only a grant draws one)."""
    return lease.renew_at(0.0, length, 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "lease.json"))
    args = parser.parse_args()
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    workdir = Path(tempfile.mkdtemp(prefix="lease-bench-"))
    centre = Centre("lease", workdir / "store").start()
    n = args.rounds * args.buckets
    try:
        endpoint = s3.S3Endpoint(
            centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key)
        )
        admin = s3.client(endpoint)
        buckets = [f"lease-{i}" for i in range(args.buckets)]
        # Each round one renewal interval later, as the renewer does: every renewal writes a new expiry.
        ahead = [0.0]
        leases = lease.Leases(clock=lambda: time.time() + ahead[0], background=False)
        for i, bucket in enumerate(buckets):
            admin.create_bucket(Bucket=bucket)
            leases.grant(f"{i:016x}", lease.Held(endpoint, bucket, "data", None, lease.LEASE_MIN_S))
            leases.renew(endpoint, bucket)  # the first write, and a warm client
        shared = s3.shared_client(endpoint, connect_timeout=2, read_timeout=2)

        def timed(renew_one: Callable[[str], object]) -> tuple[float, float]:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(args.rounds):
                ahead[0] += mean_interval(lease.LEASE_MIN_S)
                for bucket in buckets:
                    renew_one(bucket)
            return (time.process_time() - cpu0) / n, (time.perf_counter() - wall0) / n

        read_cpu, _ = timed(lambda bucket: fencing.read_policy(shared, bucket))

        def boto3_renewal(bucket: str) -> object:
            wanted = leases_wanted(leases, endpoint, bucket)
            return fencing.apply_many(endpoint, bucket, wanted, 2.0, client=shared, confirm=False)

        results = {"boto3ReadWrite": timed(boto3_renewal)}
        every = fencing.READ_EVERY
        for name, read_every in (("leanReadWrite", 1), ("leanWriteOnly", 10**9), ("leanAsRenewed", every)):
            fencing.READ_EVERY = read_every
            leases.renew(endpoint, buckets[0])  # the policy known again after the boto3 rounds
            results[name] = timed(lambda bucket: leases.renew(endpoint, bucket))
        fencing.READ_EVERY = every
        # Every lease still in place: the last renewals wrote what they meant to.
        for i, bucket in enumerate(buckets):
            policy = fencing.read_policy(shared, bucket)
            assert f"datacloud-lease-{i:016x}" in (policy or ""), bucket
    finally:
        centre.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    cpu = results["leanAsRenewed"][0]
    shortest = lease.LEASE_MIN_S
    needed_interval = 1000 * cpu / BUDGET_CORES
    lease_needed = next(length for length in range(6, 301) if mean_interval(length) >= needed_interval)
    report = {
        "command": f"bench/lease_bench.py --buckets {args.buckets} --rounds {args.rounds}",
        "renewalsPerWay": n,
        "cpuPerRenewalMs": {k: round(v[0] * 1000, 3) for k, v in results.items()},
        "wallPerRenewalMs": {k: round(v[1] * 1000, 3) for k, v in results.items()},
        "cpuPerBoto3PolicyReadMs": round(read_cpu * 1000, 3),
        "overBoto3ReadCpu": {k: round(v[0] / read_cpu, 2) for k, v in results.items()},
        "boto3ReadWriteOverLeanAsRenewedCpu": round(results["boto3ReadWrite"][0] / cpu, 2),
        "readEvery": fencing.READ_EVERY,
        "shortestLeaseS": shortest,
        "meanRenewalIntervalAtShortestLeaseS": round(mean_interval(shortest), 2),
        "coresFor1000BucketsAtShortestLease": round(1000 / mean_interval(shortest) * cpu, 4),
        "coresFor1000BucketsAtShortestLeaseThroughBoto3": round(
            1000 / mean_interval(shortest) * results["boto3ReadWrite"][0], 4
        ),
        "coresFor1000BucketsAt60sLease": round(1000 / mean_interval(60.0) * cpu, 4),
        "shortestLeaseWithin3PercentOfACoreS": lease_needed,
        "loadAverage": os.getloadavg(),
        "uptimeBefore": uptime_before,
        "uptimeAfter": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def leases_wanted(leases: lease.Leases, endpoint: s3.S3Endpoint, bucket: str) -> Callable[[], fencing.Wanted]:
    """What a renewal of `bucket` writes, as `Leases.renew` builds it (for the boto3 way)."""

    def wanted() -> fencing.Wanted:
        out: fencing.Wanted = {}
        for owner, held in leases._held.items():
            if (held.endpoint, held.bucket) == (endpoint, bucket):
                until = leases._next(owner, held)
                out[owner] = fencing.desired(bucket, held.prefix, owner, None, held.principal, until)
        return out

    return wanted


if __name__ == "__main__":
    sys.exit(main())
