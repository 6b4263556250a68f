"""Probing a centre's object store: one authenticated, cheap S3 call, timed."""

from __future__ import annotations

import time

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3
from .health import ProbeOutcome

AUTH_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}


def probe_store(endpoint: s3.S3Endpoint, timeout_s: float) -> ProbeOutcome:
    """ListBuckets against the store: it proves the server answers and the credentials are good."""
    client = s3.client(endpoint, connect_timeout=timeout_s, read_timeout=timeout_s, max_pool=1)
    start = time.monotonic()
    try:
        client.list_buckets()
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", "Unknown"))
        reason = "AuthenticationFailed" if code in AUTH_ERRORS else f"S3Error {code}"
        return ProbeOutcome(False, time.monotonic() - start, reason)
    except BotoCoreError as e:
        return ProbeOutcome(False, time.monotonic() - start, f"Unreachable: {type(e).__name__}")
    finally:
        client.close()
    return ProbeOutcome(True, time.monotonic() - start)
