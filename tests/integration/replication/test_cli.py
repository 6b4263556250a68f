"""`datacloud sync` as a user runs it: a subprocess, a JSON summary on stdout, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.replication import BucketPair

pytestmark = pytest.mark.integration


def sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datacloud.replication.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_full_sync_prints_a_json_summary(pair: BucketPair, tmp_path: Path) -> None:
    pair.src.put_many(pair.src_bucket, {f"in/{i}": b"x" * i for i in range(12)})
    pair.dst.put(pair.dst_bucket, "out/orphan", b"o")
    src_url = f"{pair.src.centre.endpoint}/{pair.src_bucket}/in"
    dst_url = f"{pair.dst.centre.endpoint}/{pair.dst_bucket}/out"
    creds = [
        "--src-credentials",
        str(pair.src.credentials_file(tmp_path)),
        "--dst-credentials",
        str(pair.dst.credentials_file(tmp_path)),
    ]

    done = sync(src_url, dst_url, *creds, "--delete", "mirror", "--verify", "size-etag", "--concurrency", "4")

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    assert summary["objects_copied"] == 12
    assert summary["objects_deleted"] == 1
    assert summary["verified"] == 12
    assert summary["target"].endswith(f"/{pair.dst_bucket}/out/")
    assert pair.in_sync("in/", "out/")
    assert pair.src.centre.secret_key not in done.stdout + done.stderr

    again = json.loads(sync(src_url, dst_url, *creds).stdout)
    assert again["objects_copied"] == 0
    assert again["objects_skipped"] == 12


def test_unknown_bucket_is_one_line_and_exit_1(pair: BucketPair, tmp_path: Path) -> None:
    done = sync(
        f"{pair.src.centre.endpoint}/{pair.src_bucket}",
        f"{pair.dst.centre.endpoint}/nope-bucket",
        "--src-credentials",
        str(pair.src.credentials_file(tmp_path)),
        "--dst-credentials",
        str(pair.dst.credentials_file(tmp_path)),
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    error_lines = [line for line in done.stderr.splitlines() if "datacloud sync:" in line]
    assert len(error_lines) == 1
    assert "NoSuchBucket" in error_lines[0]
    assert "nope-bucket" in error_lines[0]
    assert json.loads(done.stdout)["ok"] is False


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--shard", "3/2"], "--shard"),
        (["--bandwidth", "abc"], "--bandwidth"),
        (["--concurrency", "many"], "--concurrency"),
    ],
)
def test_malformed_arguments_exit_2_without_traceback(
    pair: BucketPair, tmp_path: Path, extra: list[str], expected: str
) -> None:
    done = sync(
        f"{pair.src.centre.endpoint}/{pair.src_bucket}",
        f"{pair.dst.centre.endpoint}/{pair.dst_bucket}",
        "--src-credentials",
        str(pair.src.credentials_file(tmp_path)),
        "--dst-credentials",
        str(pair.dst.credentials_file(tmp_path)),
        *extra,
    )

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_continuous_poll_mode_copies_and_reports(pair: BucketPair, tmp_path: Path) -> None:
    pair.src.put_many(pair.src_bucket, {f"p{i}": b"p" for i in range(5)})

    done = sync(
        f"{pair.src.centre.endpoint}/{pair.src_bucket}",
        f"{pair.dst.centre.endpoint}/{pair.dst_bucket}",
        "--src-credentials",
        str(pair.src.credentials_file(tmp_path)),
        "--dst-credentials",
        str(pair.dst.credentials_file(tmp_path)),
        "--mode",
        "continuous",
        "--poll",
        "0.3",
        "--duration",
        "3",
        "--progress-interval",
        "1",
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["mode"] == "continuous"
    assert summary["objects_copied"] == 5
    assert summary["pending"] == 0
    assert summary["lag_count"] == 5
    assert pair.in_sync()
