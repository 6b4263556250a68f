"""A sync killed with SIGKILL resumes: the next run copies only what is missing and leaves no debris."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.replication import BucketPair

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def test_sigkill_mid_sync_then_resume(pair: BucketPair, tmp_path: Path) -> None:
    small = {f"small/{i:04d}": os.urandom(32 * 1024) for i in range(200)}
    pair.src.put_many(pair.src_bucket, small)
    pair.src.put(pair.src_bucket, "a-big/blob.bin", os.urandom(24 * MIB))  # listed first: copied early
    total = len(small) + 1
    argv = [
        sys.executable,
        "-m",
        "datacloud.replication.cli",
        f"{pair.src.centre.endpoint}/{pair.src_bucket}",
        f"{pair.dst.centre.endpoint}/{pair.dst_bucket}",
        "--src-credentials",
        str(pair.src.credentials_file(tmp_path)),
        "--dst-credentials",
        str(pair.dst.credentials_file(tmp_path)),
        "--concurrency",
        "4",
        "--multipart-threshold",
        "8Mi",
        "--part-size",
        "5Mi",
    ]
    log = (tmp_path / "first.log").open("w")
    # Throttled so the kill lands mid-way, with a multipart upload of the big object open.
    first = subprocess.Popen([*argv, "--bandwidth", "3Mi"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            uploads = pair.dst.uploads(pair.dst_bucket)
            done = len(pair.dst.keys(pair.dst_bucket))
            parts = (
                pair.dst.s3.list_parts(
                    Bucket=pair.dst_bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
                ).get("Parts", [])
                if uploads
                else []
            )
            if parts and done >= 20:
                break
            assert first.poll() is None, "the first run finished before it could be killed"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()

    source_digests = pair.src.digests(pair.src_bucket)
    complete_before = {k for k, d in pair.dst.digests(pair.dst_bucket).items() if source_digests[k] == d}
    assert set(pair.dst.keys(pair.dst_bucket)) == complete_before  # nothing visible is half-written
    assert 0 < len(complete_before) < total
    assert "a-big/blob.bin" not in complete_before  # a half-uploaded object is not visible
    assert pair.dst.uploads(pair.dst_bucket), "the killed run left its multipart upload open"

    second = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["objects_copied"] == total - len(complete_before)
    assert summary["objects_skipped"] == len(complete_before)
    assert summary["uploads_aborted"] >= 1
    assert pair.dst.uploads(pair.dst_bucket) == []
    assert pair.in_sync()
