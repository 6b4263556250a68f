"""What a store really accepts: a PUT by an ordinary (non-root) account under a copy's prefix.

The root account the operator replicates with is not bound by bucket policies, so only a write by an
ordinary account shows whether applications can write to a copy. The probe account is allowed exactly one
key per copy (`<prefix>.datacloud-probe/<owner>`); a fence denies it like any application.

The probe PUT carries a Content-MD5 that cannot match its body: a store that would accept the write
answers BadDigest (the request passed authorisation, nothing is stored), a fenced one AccessDenied. So
the data set never holds probe objects, and a store that checked the digest before the policy would
read as writable (a false alarm), never as fenced. A store that ignored the digest and stored the
object counts as writable too, and the object is removed at once by the root account.

Sent through the lean client (`s3_wire`): every replica probes each of its copies when protected, and
through boto3 a probe cost several times the CPU. Its transport failures come out as botocore's, so a
store that does not answer reads as unknown, never as writable or fenced.
"""

from __future__ import annotations

import base64
from enum import Enum

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3, s3_wire
from .fencing import probe_key
from .probe import AUTH_ERRORS

# A Content-MD5 no empty body has (the MD5 of b"" is d41d8cd9...).
NEVER_MATCHES = base64.b64encode(b"\0" * 16).decode()


class Writable(Enum):
    YES = "accepts writes"
    NO = "refuses writes"
    UNKNOWN = "not measured"


def probe_write(
    root: s3.S3Endpoint,
    probe: s3.S3Credentials,
    bucket: str,
    prefix: str,
    owner: str,
    timeout_s: float = 2.0,
) -> tuple[Writable, str]:
    """Whether the store accepts a write by an ordinary account under `bucket/prefix`, and why not known."""
    as_probe = s3.S3Endpoint(root.url, root.region, probe)
    key = probe_key(prefix, owner)
    try:
        with s3_wire.botocore_errors(root.url):
            s3_wire.put_probe(
                s3_wire.shared_wire_timed(as_probe, timeout_s, timeout_s), bucket, key, NEVER_MATCHES
            )
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code == "AccessDenied":
            return Writable.NO, ""
        if code in ("BadDigest", "InvalidDigest"):
            return Writable.YES, ""
        if code in AUTH_ERRORS:
            return Writable.UNKNOWN, f"the probe account is refused: {code}"
        return Writable.UNKNOWN, f"S3 error {code}"
    except BotoCoreError as e:
        return Writable.UNKNOWN, f"unreachable: {type(e).__name__}"
    try:
        with s3_wire.botocore_errors(root.url):
            s3_wire.shared_wire_timed(root, timeout_s, timeout_s).delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError):
        pass  # removed at the next probe; the answer stands
    return Writable.YES, ""
