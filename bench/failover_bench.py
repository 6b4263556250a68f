"""Failover benchmark: RTO and data loss when the production centre's server is killed mid-writes.

One command: `.venv/bin/python bench/failover_bench.py [--runs 5]`. Starts its own dev stack (control
plane, three versitygw centres, the operator), and for each run: a fresh DRReplica (Automatic failover,
default probe settings), an application writing to production every 50 ms, then production's server is
killed. RTO is measured from the kill until the endpoint ConfigMap names the same-city centre; loss counts
acknowledged writes missing at the new active: older than the lag at the kill, older than the RPO (the
promise: 0), all, and the age of each lost write at the kill. The bound in the same run is the detection
floor the probe settings impose (failureThreshold × interval): no policy-respecting failover is faster.
Writes bench/results/failover.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from datacloud.adapters import s3  # noqa: E402
from datacloud.adapters.kube import Kube, NotFound  # noqa: E402
from datacloud.api.common import parse_duration  # noqa: E402
from datacloud.api.datacentre import Probe  # noqa: E402
from datacloud.devstack.process import free_port  # noqa: E402
from datacloud.devstack.stack import OPERATOR_NAMESPACE, DevStack, operator_process  # noqa: E402

ROLES = {
    "fz-prod": ("Production", "350100"),
    "fz-samecity-dr": ("SameCityDR", "350100"),
    "xm-remote-dr": ("RemoteDR", "350200"),
}
NS = "bench-dr"
APP = ("benchapp", "benchapp-secret-0123456789")


def client(endpoint: str, key: str, secret: str) -> Any:
    return s3.client(
        s3.S3Endpoint(endpoint, "us-east-1", s3.S3Credentials(key, secret)), connect_timeout=1, read_timeout=2
    )


def setup(stack: DevStack) -> None:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]
    for name, centre in stack.centres.items():
        role, city = ROLES[name]
        docs.append(
            {
                "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
                "kind": "DataCentre",
                "metadata": {"name": name},
                "spec": {
                    "city": city,
                    "role": role,
                    "objectStore": {
                        "endpoint": centre.endpoint,
                        "credentialsSecretRef": {"name": f"centre-{name}", "namespace": OPERATOR_NAMESPACE},
                    },
                },
            }
        )
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


def one_run(stack: DevStack, kube: Kube, run: int) -> dict[str, Any]:
    prod, near = stack.centres["fz-prod"], stack.centres["fz-samecity-dr"]
    bucket, name = f"bench-{run}-{os.urandom(3).hex()}", f"bench-{run}"
    allow_app(prod.endpoint, (prod.access_key, prod.secret_key), bucket)
    allow_app(near.endpoint, (near.access_key, near.secret_key), bucket)
    stack.apply_documents(
        [
            {
                "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
                "kind": "DRReplica",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "source": {"centre": "fz-prod", "bucket": bucket},
                    "activeCentre": "fz-prod",
                    "targets": [
                        {
                            "name": "near",
                            "centre": "fz-samecity-dr",
                            "bucket": bucket,
                            "mode": "Continuous",
                            "rpoTarget": "10s",
                        }
                    ],
                    "failover": {"policy": "Automatic"},
                },
            }
        ]
    )
    wait(lambda: (kube.get("drreplicas", name, NS).get("status") or {}).get("phase") == "Protected", 120, 0.5)
    acked: dict[str, float] = {}
    stop = threading.Event()
    writer = client(prod.endpoint, *APP)

    def write() -> None:
        i = 0
        while not stop.is_set():
            key = f"w/{i:06d}"
            try:
                writer.put_object(Bucket=bucket, Key=key, Body=key.encode())
                acked[key] = time.time()
            except (BotoCoreError, ClientError):
                pass
            i += 1
            stop.wait(0.05)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    time.sleep(5)
    lag = float(next(t.get("lagSeconds", 0.0) for t in kube.get("drreplicas", name, NS)["status"]["targets"]))
    killed = time.time()
    prod.stop()

    def published() -> bool:
        try:
            cm = kube.read("v1", "ConfigMap", f"{name}-endpoint", NS)
        except NotFound:
            return False
        return bool(cm["data"]["centre"] == "fz-samecity-dr")

    wait(published, 180, 0.05)
    rto = time.time() - killed
    stop.set()
    thread.join(5)
    at_near: set[str] = set()
    for page in (
        client(near.endpoint, near.access_key, near.secret_key)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket)
    ):
        at_near |= {o["Key"] for o in page.get("Contents", [])}
    before_kill = {k for k, t in acked.items() if t <= killed}
    owed = {k for k, t in acked.items() if t < killed - lag}
    lost = before_kill - at_near
    kube.custom.delete_namespaced_custom_object("datacloud.fujian.gov.cn", "v1alpha1", NS, "drreplicas", name)
    prod.restart()
    wait(lambda: (kube.get("datacentres", "fz-prod").get("status") or {}).get("health") == "Up", 60, 0.5)
    return {
        "run": run,
        "rto_seconds": round(rto, 2),
        "lag_at_kill_seconds": lag,
        "acknowledged": len(before_kill),
        "lost_older_than_lag": len(owed - at_near),
        "lost_older_than_rpo": len({k for k in lost if acked[k] < killed - 10}),
        "lost_total": len(lost),
        "lost_ages_seconds": sorted(round(killed - acked[k], 3) for k in lost),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "failover.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dc-failover-") as tmp:
        stack = DevStack(Path(tmp)).start(samples=False)
        operator = operator_process(stack, Path(tmp) / "operator.log", free_port(), free_port())
        try:
            operator.start()
            kube = Kube.from_kubeconfig(str(stack.kubeconfig))
            setup(stack)
            wait(
                lambda: all(
                    (kube.get("datacentres", n).get("status") or {}).get("health") == "Up" for n in ROLES
                ),
                60,
                0.5,
            )
            runs = []
            for i in range(args.runs):
                runs.append(one_run(stack, kube, i))
                print(json.dumps(runs[-1]), flush=True)
        finally:
            operator.stop()
            stack.stop()
    probe = Probe()
    floor = probe.failure_threshold * parse_duration(probe.interval).total_seconds()
    rtos = [r["rto_seconds"] for r in runs]
    result = {
        "benchmark": "failover",
        "runs": runs,
        "rto_p50_seconds": statistics.median(rtos),
        "rto_max_seconds": max(rtos),
        "detection_floor_seconds": floor,
        "rto_p50_over_floor": round(statistics.median(rtos) / floor, 2),
        "lost_older_than_lag": sum(r["lost_older_than_lag"] for r in runs),
        "lost_older_than_rpo": sum(r["lost_older_than_rpo"] for r in runs),
        # The lag is read from status, which is refreshed every few seconds: a write acknowledged in the
        # last instants before the kill can count as "older than the lag" although it was still in flight.
        "targets": {"rto_p50_seconds": 10, "lost_older_than_lag": 0},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
