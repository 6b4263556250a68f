"""The continuous phase of bench/sync_bench.py, in a process of its own so its memory is its own.

    .venv/bin/python bench/sync_follow.py --root DIR --rate 50 --duration 60 --concurrency 16 --out FILE

Starts an event receiver, a source centre that notifies it and a target centre, and follows the source
with `ContinuousReplicator` (as the operator does for a Continuous target) while a writer thread PUTs
`--rate` objects of 4-64 KiB per second for `--duration` seconds, on a fixed schedule. Each object's
lag runs from the writer's acknowledgement to the replicator finishing its copy (both clocks are this
process's); a copy that finishes before the writer has read the PUT's answer counts as 0. When the
writer stops, the run waits for the last copies, checks the two buckets hold the same keys and sizes,
and writes lag percentiles, the replicator's own lag figures and this process's peak RSS (sampled) to
`--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path

import psutil

from datacloud.adapters.s3 import S3Credentials, S3Endpoint, client
from datacloud.adapters.s3_wire import WireClient
from datacloud.devstack.objectstore import Centre
from datacloud.replication.continuous import ContinuousReplicator
from datacloud.replication.engine import SyncOptions
from datacloud.replication.events import EventReceiver
from datacloud.replication.listing import iter_objects
from datacloud.replication.locations import Location


def endpoint(centre: Centre) -> S3Endpoint:
    return S3Endpoint(centre.endpoint, "us-east-1", S3Credentials(centre.access_key, centre.secret_key))


def make_bucket(centre: Centre, name: str) -> None:
    client(endpoint(centre)).create_bucket(Bucket=name)


class PeakRss:
    """This process's resident memory, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / (1024 * 1024)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    peak_rss = PeakRss()
    receiver = EventReceiver().start()
    token = secrets.token_urlsafe(24)
    src = Centre("follow-src", args.root / "src", event_webhook=receiver.url(token)).start()
    dst = Centre("follow-dst", args.root / "dst").start()
    try:
        for centre in (src, dst):
            make_bucket(centre, "live")
        done_at: dict[str, float] = {}
        lock = threading.Lock()

        def on_lag(key: str, _lag: float) -> None:
            with lock:
                done_at.setdefault(key, time.time())

        follower = ContinuousReplicator(
            Location(endpoint(src), "live"),
            Location(endpoint(dst), "live"),
            SyncOptions(concurrency=args.concurrency),
            receiver=receiver,
            token=token,
            on_lag=on_lag,
        ).start()
        if not follower.wait_caught_up(60):
            sys.exit("the follower did not finish its first scan")

        writer = WireClient(endpoint(src))
        rng = random.Random(8)
        blob = os.urandom(128 * 1024)
        acked: dict[str, float] = {}
        count = int(args.rate * args.duration)
        started = time.monotonic()
        late = 0
        for i in range(count):
            due = started + i / args.rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late += 1
            key = f"live/{i:06d}.bin"
            size = rng.randint(4 * 1024, 64 * 1024)
            writer.put_object(Bucket="live", Key=key, Body=blob[:size])
            acked[key] = time.time()
        wrote_for = time.monotonic() - started

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if all(key in done_at for key in acked):
                    break
            time.sleep(0.05)
        stats = follower.stats()
        follower.stop()

        with lock:
            missing = [key for key in acked if key not in done_at]
            lags = [max(0.0, done_at[key] - acked[key]) for key in acked if key in done_at]
        source = {o.key: o.size for o in iter_objects(WireClient(endpoint(src)), "live", "", where="src")}
        target = {o.key: o.size for o in iter_objects(WireClient(endpoint(dst)), "live", "", where="dst")}
        if missing or source != target:
            sys.exit(f"continuous: {len(missing)} objects never copied; buckets equal: {source == target}")
        result = {
            "objects": count,
            "rate_per_s": args.rate,
            "achieved_rate_per_s": round(count / wrote_for, 1),
            "writes_behind_schedule": late,
            "lag_seconds": {
                "p50": percentile(lags, 50),
                "p90": percentile(lags, 90),
                "p99": percentile(lags, 99),
                "max": round(max(lags), 4),
            },
            "replicator_reported": {
                "copied": stats.objects_copied,
                "mean_lag_s": round(stats.lag_sum_seconds / max(1, stats.lag_count), 4),
                "max_lag_s": round(stats.max_lag_seconds, 4),
                "scans": stats.scans,
                "changes_received": stats.changes_received,
            },
            # Sampled, not ru_maxrss: Linux carries ru_maxrss across exec, so it would include the
            # memory of the bench process this one was forked from.
            "peak_rss_mb": round(peak_rss.stop(), 1),
            "target": "p99 <= 1 s",
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        src.stop()
        dst.stop()
        receiver.stop()


if __name__ == "__main__":
    main()
