"""`datacloud sync` against `rclone sync` on the same data, between two real versitygw centres.

    .venv/bin/python bench/sync_bench.py [--small 2000] [--large 3] [--large-size 24Mi] [--concurrency 16]

Starts two versitygw centres on loopback, fills a source bucket with `--small` objects of 1-32 KiB and
`--large` objects of `--large-size` (multipart territory), then times, in the same run:
- a full copy into an empty bucket by `datacloud sync` (as a subprocess, start-up included) and by
  `rclone sync` (two S3 remotes configured through environment variables, `--transfers` and `--checkers`
  equal to our concurrency, the same multipart threshold and part size);
- a no-op re-sync of each (nothing changed), for rclone both its default (size + modification time,
  read from object metadata) and `--checksum` (size + MD5 from the listing).
Both copies are checked to hold the source's keys and sizes before any number is reported.
JSON goes to bench/results/sync.json; ratios are ours/rclone (throughput: above 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datacloud.adapters.s3 import S3Credentials, S3Endpoint, client
from datacloud.devstack.objectstore import Centre
from datacloud.devstack.process import tool
from datacloud.replication.throttle import parse_size

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def s3_for(centre: Centre) -> Any:
    return client(
        S3Endpoint(centre.endpoint, "us-east-1", S3Credentials(centre.access_key, centre.secret_key)),
        max_pool=64,
    )


def generate(s3: Any, bucket: str, small: int, large: int, large_size: int) -> tuple[int, int]:
    rng = random.Random(6)  # the same data set every run
    objects: list[tuple[str, int]] = [
        (f"small/{i // 100:03d}/{i:06d}.json", rng.randint(1024, 32 * 1024)) for i in range(small)
    ]
    objects += [(f"large/part-{i}.parquet", large_size) for i in range(large)]
    blob = os.urandom(max(large_size, 32 * 1024))

    def put(item: tuple[str, int]) -> None:
        key, size = item
        offset = rng.randint(0, 1024) if size < len(blob) - 1024 else 0
        s3.put_object(Bucket=bucket, Key=key, Body=blob[offset : offset + size])

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, objects))
    return len(objects), sum(size for _, size in objects)


def listing(s3: Any, bucket: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
    return found


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def rclone_env(src: Centre, dst: Centre) -> dict[str, str]:
    # rclone's AWS SDK refuses to start when AWS_CA_BUNDLE is set (unsupported transport); the centres
    # are plain HTTP on loopback, so no CA bundle is needed.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    for name, centre in (("SRC", src), ("DST", dst)):
        prefix = f"RCLONE_CONFIG_{name}_"
        env.update(
            {
                prefix + "TYPE": "s3",
                prefix + "PROVIDER": "Other",
                prefix + "ENDPOINT": centre.endpoint,
                prefix + "ACCESS_KEY_ID": centre.access_key,
                prefix + "SECRET_ACCESS_KEY": centre.secret_key,
                prefix + "REGION": "us-east-1",
                prefix + "FORCE_PATH_STYLE": "true",
            }
        )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--large-size", default="24Mi")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/sync.json")
    args = parser.parse_args()
    large_size = parse_size(args.large_size)
    threshold, part = "16Mi", "8Mi"

    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        root = Path(tmp)
        src, dst = Centre("bench-src", root / "src").start(), Centre("bench-dst", root / "dst").start()
        try:
            s3_src, s3_dst = s3_for(src), s3_for(dst)
            for s3, bucket in ((s3_src, "source"), (s3_dst, "ours"), (s3_dst, "theirs")):
                s3.create_bucket(Bucket=bucket)
            print(f"generating {args.small} small + {args.large} x {args.large_size} objects ...", flush=True)
            started = time.monotonic()
            count, size = generate(s3_src, "source", args.small, args.large, large_size)
            print(f"  {time.monotonic() - started:.1f}s", flush=True)

            creds = {}
            for name, centre in (("src", src), ("dst", dst)):
                creds[name] = root / f"{name}.json"
                creds[name].write_text(
                    json.dumps({"accessKeyId": centre.access_key, "secretAccessKey": centre.secret_key})
                )
            ours = [
                sys.executable,
                "-m",
                "datacloud.replication.cli",
                f"{src.endpoint}/source",
                f"{dst.endpoint}/ours",
                "--src-credentials",
                str(creds["src"]),
                "--dst-credentials",
                str(creds["dst"]),
                "--concurrency",
                str(args.concurrency),
                "--multipart-threshold",
                threshold,
                "--part-size",
                part,
            ]
            theirs = [
                tool("rclone"),
                "sync",
                "src:source",
                "dst:theirs",
                "--transfers",
                str(args.concurrency),
                "--checkers",
                str(args.concurrency),
                "--s3-upload-cutoff",
                threshold.replace("i", ""),
                "--s3-chunk-size",
                part.replace("i", ""),
                "--s3-no-check-bucket",
            ]
            env = rclone_env(src, dst)

            print("full sync: datacloud ...", flush=True)
            ours_full, ours_out = timed(ours)
            print(f"  {ours_full:.1f}s\nfull sync: rclone ...", flush=True)
            theirs_full, _ = timed(theirs, env)
            print(f"  {theirs_full:.1f}s", flush=True)
            expected = listing(s3_src, "source")
            for bucket in ("ours", "theirs"):
                if listing(s3_dst, bucket) != expected:
                    sys.exit(f"bucket {bucket} does not match the source after the full sync")

            print("no-op re-sync ...", flush=True)
            ours_noop, ours_noop_out = timed(ours)
            theirs_noop, _ = timed(theirs, env)
            theirs_noop_checksum, _ = timed([*theirs, "--checksum"], env)
        finally:
            src.stop()
            dst.stop()

    summary = json.loads(ours_out)
    noop_summary = json.loads(ours_noop_out)
    if summary["objects_copied"] != count or noop_summary["objects_copied"] != 0:
        sys.exit(f"unexpected copy counts: {summary['objects_copied']} then {noop_summary['objects_copied']}")
    result = {
        "benchmark": "sync",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "data_set": {
            "objects": count,
            "bytes": size,
            "small": args.small,
            "large": args.large,
            "large_size": large_size,
        },
        "settings": {"concurrency": args.concurrency, "multipart_threshold": threshold, "part_size": part},
        "full_sync": {
            "ours_seconds": round(ours_full, 3),
            "rclone_seconds": round(theirs_full, 3),
            "ours_mib_per_s": round(size / MIB / ours_full, 2),
            "rclone_mib_per_s": round(size / MIB / theirs_full, 2),
            "ours_objects_per_s": round(count / ours_full, 1),
            "rclone_objects_per_s": round(count / theirs_full, 1),
            "throughput_ratio_ours_over_rclone": round(theirs_full / ours_full, 3),
        },
        "noop_resync": {
            "ours_seconds": round(ours_noop, 3),
            "rclone_seconds": round(theirs_noop, 3),
            "rclone_checksum_seconds": round(theirs_noop_checksum, 3),
            "speed_ratio_ours_over_rclone": round(theirs_noop / ours_noop, 3),
            "speed_ratio_ours_over_rclone_checksum": round(theirs_noop_checksum / ours_noop, 3),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
