"""Failover benchmark: RTO and data loss when the production centre's server is killed mid-writes.

One command: `.venv/bin/python bench/failover_bench.py [--runs 5]`. Starts its own dev stack (control
plane, three versitygw centres, the operator), and for each run: a fresh DRReplica (Automatic failover,
default probe settings), an application writing to production every 50 ms, then production's server is
killed. RTO is measured from the kill until the endpoint ConfigMap names the same-city centre, and split
into detection (kill → the DataCentre reads Down, polled every 50 ms), reaction (Down → the action's
recorded start) and flow (start → endpoint published).

Loss counts acknowledged writes missing at the new active after the failover. The lag at the kill is
measured by the bench itself, not read from status (which is refreshed every few seconds, so a lag read
from it is stale and once made a write still in flight look "older than the lag"): a thread lists the
same-city bucket back to back during the writes, and the lag at the kill is the age, at the kill, of the
oldest write acknowledged before the start of the last listing finished before the kill and missing
from it (or the age of that listing's start when nothing was missing). Every write older than that lag
was at the target before the kill, so "lost older than the lag" (the target: 0) counts data the failover
itself lost, never a write still in flight. The operator's own view is reported beside it: the
`datacloud_dr_lag_seconds` gauge scraped every 100 ms, its last value before the kill. Loss is also
counted against the RPO (the promise: 0) and in total, with the age of each lost write at the kill.

The bound in the same run is detection: the probe settings put the DataCentre's Down between
(failureThreshold − 1) × interval and failureThreshold × interval after the kill (4-6 s by default), and
no policy-respecting failover starts before it. `rto_p50_over_detection_p50` compares the RTO with the
detection measured in the same runs (1.0: the operator adds nothing after Down);
`after_detection_p50_seconds` is the operator's own share. Writes bench/results/failover.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from datacloud.adapters import s3  # noqa: E402
from datacloud.adapters.kube import Kube, NotFound  # noqa: E402
from datacloud.api.common import parse_duration  # noqa: E402
from datacloud.api.datacentre import Probe  # noqa: E402
from datacloud.devstack import manifests  # noqa: E402
from datacloud.devstack.process import free_port  # noqa: E402
from datacloud.devstack.stack import DevStack, operator_process  # noqa: E402

NS = "bench-dr"
APP = ("benchapp", "benchapp-secret-0123456789")


def client(endpoint: str, key: str, secret: str) -> Any:
    return s3.client(
        s3.S3Endpoint(endpoint, "us-east-1", s3.S3Credentials(key, secret)), connect_timeout=1, read_timeout=2
    )


def setup(stack: DevStack) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]
    for name, centre in stack.centres.items():
        docs.append(manifests.datacentre(name, centre.endpoint, probe=None))
        centre.add_user(*APP)
    stack.apply_documents(docs)


def allow_app(endpoint: str, root: tuple[str, str], bucket: str) -> None:
    c = client(endpoint, *root)
    try:
        c.create_bucket(Bucket=bucket)
    except ClientError as e:
        if not e.response["Error"]["Code"].startswith("BucketAlready"):
            raise
    c.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "app",
                        "Effect": "Allow",
                        "Principal": {"AWS": [APP[0]]},
                        "Action": ["s3:*"],
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    }
                ],
            }
        ),
    )


def wait(check: Any, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError


class Writer:
    """The application: one PUT every 50 ms to production, remembering when each was acknowledged."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.client, self.bucket = client(endpoint, *APP), bucket
        self.acked: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            key = f"w/{i:06d}"
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=key.encode())
                self.acked[key] = time.time()
            except (BotoCoreError, ClientError):
                pass
            i += 1
            self.stop.wait(0.05)


class Sampler:
    """Runs `sample()` back to back in a thread; `latest` is the last (start time, value) that finished."""

    def __init__(self, sample: Any, pause: float) -> None:
        self.sample, self.pause = sample, pause
        self.latest: tuple[float, Any] | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            started = time.time()
            with contextlib.suppress(Exception):  # a failed sample leaves the previous one current
                self.latest = (started, self.sample())
            self.stop.wait(self.pause)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def keys_of(c: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def exported_lag(metrics_url: str, name: str) -> float | None:
    with urllib.request.urlopen(metrics_url, timeout=2) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith("datacloud_dr_lag_seconds{") and f'replica="{name}"' in line and NS in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def one_run(stack: DevStack, kube: Kube, metrics_url: str, run: int) -> dict[str, Any]:
    prod, near = stack.centres["fz-prod"], stack.centres["fz-samecity-dr"]
    bucket, name = f"bench-{run}-{os.urandom(3).hex()}", f"bench-{run}"
    allow_app(prod.endpoint, (prod.access_key, prod.secret_key), bucket)
    allow_app(near.endpoint, (near.access_key, near.secret_key), bucket)
    stack.apply_documents(
        [manifests.replica(name, NS, bucket, "Automatic", "10s", target="near", remote=False, down_for=None)]
    )
    wait(lambda: (kube.get("drreplicas", name, NS).get("status") or {}).get("phase") == "Protected", 120, 0.5)
    writer = Writer(prod.endpoint, bucket)
    writer.thread.start()
    near_root = client(near.endpoint, near.access_key, near.secret_key)
    target = Sampler(lambda: keys_of(near_root, bucket), 0.0)
    reported = Sampler(lambda: exported_lag(metrics_url, name), 0.1)
    time.sleep(5)
    listed = target.latest  # finished before the kill: its start and what the target held
    lag_sample = reported.latest
    killed = time.time()
    prod.stop()
    target.close()
    reported.close()

    health = Sampler(lambda: (kube.get("datacentres", "fz-prod").get("status") or {}).get("health"), 0.05)
    down_at: float | None = None

    def published() -> bool:
        nonlocal down_at
        if down_at is None and health.latest and health.latest[1] == "Down":
            down_at = health.latest[0]
        try:
            cm = kube.read("v1", "ConfigMap", f"{name}-endpoint", NS)
        except NotFound:
            return False
        return bool(cm["data"]["centre"] == "fz-samecity-dr")

    wait(published, 180, 0.05)
    rto = time.time() - killed
    health.close()
    writer.stop.set()
    writer.thread.join(5)
    action = (kube.get("drreplicas", name, NS).get("status") or {}).get("action") or {}
    started = float(action["startedEpoch"]) - killed if action.get("startedEpoch") else None
    at_near = keys_of(near_root, bucket)
    acked = dict(writer.acked)
    assert listed is not None, "the target was never listed before the kill"
    listed_at, listed_keys = listed
    missing = [t for k, t in acked.items() if t < listed_at and k not in listed_keys]
    oldest_unreplicated = min(missing, default=listed_at)
    lag = killed - oldest_unreplicated
    before_kill = {k for k, t in acked.items() if t <= killed}
    lost = before_kill - at_near
    kube.custom.delete_namespaced_custom_object("datacloud.fujian.gov.cn", "v1alpha1", NS, "drreplicas", name)
    prod.restart()
    wait(lambda: (kube.get("datacentres", "fz-prod").get("status") or {}).get("health") == "Up", 60, 0.5)
    return {
        "run": run,
        "rto_seconds": round(rto, 2),
        "down_detected_seconds": round(down_at - killed, 2) if down_at else None,
        "action_started_seconds": round(started, 2) if started is not None else None,
        "lag_at_kill_seconds": round(lag, 3),
        "listing_age_at_kill_seconds": round(killed - listed_at, 3),
        "reported_lag_at_kill_seconds": lag_sample[1] if lag_sample else None,
        "reported_lag_sample_age_seconds": round(killed - lag_sample[0], 3) if lag_sample else None,
        "acknowledged": len(before_kill),
        "lost_older_than_lag": len({k for k in lost if acked[k] < killed - lag}),
        "lost_older_than_rpo": len({k for k in lost if acked[k] < killed - 10}),
        "lost_total": len(lost),
        "lost_ages_seconds": sorted(round(killed - acked[k], 3) for k in lost),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "failover.json"))
    parser.add_argument("--keep-log", help="copy the operator's log here at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dc-failover-") as tmp:
        stack = DevStack(Path(tmp)).start(samples=False)
        metrics_port = free_port()
        operator = operator_process(stack, Path(tmp) / "operator.log", metrics_port, free_port())
        try:
            operator.start()
            kube = Kube.from_kubeconfig(str(stack.kubeconfig))
            setup(stack)
            wait(
                lambda: all(
                    (kube.get("datacentres", n).get("status") or {}).get("health") == "Up"
                    for n in manifests.ROLES
                ),
                60,
                0.5,
            )
            runs = []
            for i in range(args.runs):
                runs.append(one_run(stack, kube, f"http://127.0.0.1:{metrics_port}/metrics", i))
                print(json.dumps(runs[-1]), flush=True)
        finally:
            operator.stop()
            stack.stop()
            if args.keep_log:
                shutil.copy(Path(tmp) / "operator.log", args.keep_log)
    probe = Probe()
    interval = parse_duration(probe.interval).total_seconds()
    worst = probe.failure_threshold * interval  # Down at the latest this long after the kill
    for r in runs:
        detected = r["down_detected_seconds"]
        r["after_detection_seconds"] = round(r["rto_seconds"] - detected, 2) if detected else None
    rtos = [r["rto_seconds"] for r in runs]

    def median(field: str) -> float | None:
        values = [r[field] for r in runs if r[field] is not None]
        return round(statistics.median(values), 2) if values else None

    result = {
        "benchmark": "failover",
        "runs": runs,
        "rto_p50_seconds": statistics.median(rtos),
        "rto_max_seconds": max(rtos),
        "down_detected_p50_seconds": median("down_detected_seconds"),
        "action_started_p50_seconds": median("action_started_seconds"),
        "after_detection_p50_seconds": median("after_detection_seconds"),
        "detection_window_seconds": [worst - interval, worst],
        "rto_p50_over_detection_p50": (
            round(statistics.median(rtos) / detection, 2)
            if (detection := median("down_detected_seconds"))
            else None
        ),
        "lost_older_than_lag": sum(r["lost_older_than_lag"] for r in runs),
        "lost_older_than_rpo": sum(r["lost_older_than_rpo"] for r in runs),
        "lost_total": sum(r["lost_total"] for r in runs),
        "lag_measured_by": "the bench: writer acknowledgements against back-to-back listings of the target",
        "targets": {"rto_p50_seconds": 10, "lost_older_than_lag": 0},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
