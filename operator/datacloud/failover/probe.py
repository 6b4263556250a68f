"""Probing a centre's object store: one authenticated, cheap S3 call, timed."""

from __future__ import annotations

import time

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3
from .health import ProbeOutcome

# Error codes meaning "the store answered but refused these credentials". versitygw answers an unknown
# access key with XAdminUserNotFound and HTTP 404, so the code is the only reliable signal.
AUTH_ERRORS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "XAdminUserNotFound",
}


def probe_store(endpoint: s3.S3Endpoint, timeout_s: float) -> ProbeOutcome:
    """ListBuckets against the store: it proves the server answers and the credentials are good.

    One bucket is enough for that (a store holding thousands would otherwise cost a parse of all of them
    every probe), on the process's client for the endpoint (making a client costs more than the probe)."""
    client = s3.shared_client(endpoint, connect_timeout=timeout_s, read_timeout=timeout_s)
    start = time.monotonic()
    try:
        client.list_buckets(MaxBuckets=1)
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", "Unknown"))
        http = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in AUTH_ERRORS or http in (401, 403):
            return ProbeOutcome(False, time.monotonic() - start, f"AuthenticationFailed: {code}")
        return ProbeOutcome(False, time.monotonic() - start, f"S3Error: {code} (HTTP {http})")
    except BotoCoreError as e:
        return ProbeOutcome(False, time.monotonic() - start, f"Unreachable: {type(e).__name__}")
    finally:
        client.close()
    return ProbeOutcome(True, time.monotonic() - start)
