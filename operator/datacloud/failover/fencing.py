"""Fencing: a bucket policy that denies every write to a copy that is no longer active.

The deny statement's Sid carries the fencing epoch that set it, so the bucket itself says whether (and
since which epoch) it is fenced. The operator's own credentials are the store's root account, which
policies do not bind; applications write as ordinary accounts, which the deny stops.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..adapters import s3

FENCE_SID_PREFIX = "datacloud-fence-epoch-"


def fence_statement(bucket: str, epoch: int) -> dict[str, Any]:
    return {
        "Sid": f"{FENCE_SID_PREFIX}{epoch}",
        "Effect": "Deny",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"],
    }


def _statements(policy: str | None) -> list[dict[str, Any]]:
    return list(json.loads(policy).get("Statement", [])) if policy else []


def _is_fence(statement: dict[str, Any]) -> bool:
    return str(statement.get("Sid", "")).startswith(FENCE_SID_PREFIX)


def fenced_policy(existing: str | None, bucket: str, epoch: int) -> str:
    """The policy with the fence added (an older fence replaced, other statements kept)."""
    kept = [s for s in _statements(existing) if not _is_fence(s)]
    return json.dumps({"Version": "2012-10-17", "Statement": [*kept, fence_statement(bucket, epoch)]})


def unfenced_policy(existing: str | None) -> str | None:
    """The policy without the fence; None when nothing else is left (the policy is deleted)."""
    kept = [s for s in _statements(existing) if not _is_fence(s)]
    return json.dumps({"Version": "2012-10-17", "Statement": kept}) if kept else None


def fence_epoch(policy: str | None) -> int | None:
    """The epoch of the fence in a policy; None when the bucket is not fenced."""
    for s in _statements(policy):
        if _is_fence(s) and s.get("Effect") == "Deny":
            return int(str(s["Sid"]).removeprefix(FENCE_SID_PREFIX))
    return None


def read_policy(client: Any, bucket: str) -> str | None:
    try:
        return str(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchBucketPolicy", "NoSuchPolicy"):
            return None
        raise


def fence(endpoint: s3.S3Endpoint, bucket: str, epoch: int, timeout_s: float = 5.0) -> None:
    """Deny writes to `bucket`; idempotent. Raises when the store cannot be reached."""
    client = s3.shared_client(endpoint, connect_timeout=timeout_s, read_timeout=timeout_s)
    try:
        current = read_policy(client, bucket)
        if fence_epoch(current) == epoch:
            return
        client.put_bucket_policy(Bucket=bucket, Policy=fenced_policy(current, bucket, epoch))
    finally:
        client.close()


def unfence(endpoint: s3.S3Endpoint, bucket: str, timeout_s: float = 5.0) -> None:
    """Allow writes again (the copy becomes active); idempotent."""
    client = s3.shared_client(endpoint, connect_timeout=timeout_s, read_timeout=timeout_s)
    try:
        current = read_policy(client, bucket)
        if fence_epoch(current) is None:
            return
        remaining = unfenced_policy(current)
        if remaining is None:
            client.delete_bucket_policy(Bucket=bucket)
        else:
            client.put_bucket_policy(Bucket=bucket, Policy=remaining)
    finally:
        client.close()


def is_fenced(endpoint: s3.S3Endpoint, bucket: str, timeout_s: float = 5.0) -> int | None:
    client = s3.shared_client(endpoint, connect_timeout=timeout_s, read_timeout=timeout_s)
    try:
        return fence_epoch(read_policy(client, bucket))
    finally:
        client.close()
