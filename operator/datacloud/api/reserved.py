"""Buckets the operator writes its own records into, which no DRReplica may replicate into or out of.

A replica on one of them would mirror over (or fence, or delete from) what the operator keeps there: the
divergent writes it preserved after an unplanned failover, and the append-only audit records of every DR
action. Refused at admission (a CEL rule on each bucket field), when the operator parses a spec admitted
before the rule existed, by the topology checks (infra/) and by `datacloud sync` as a destination.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from .common import BUCKET, cel, regex_field
from .reserved_names import AUDIT_BUCKET, QUARANTINE_BUCKET, RESERVED_BUCKETS, RESERVED_MESSAGE

__all__ = [
    "AUDIT_BUCKET",
    "QUARANTINE_BUCKET",
    "RESERVED_BUCKETS",
    "RESERVED_MESSAGE",
    "ReplicaBucket",
    "not_reserved",
]

_BUCKET_MESSAGE = "must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots or hyphens"


def not_reserved(bucket: str) -> str:
    if bucket in RESERVED_BUCKETS:
        raise ValueError(RESERVED_MESSAGE)
    return bucket


def _bucket_name(bucket: str) -> str:
    if not re.fullmatch(BUCKET, bucket):
        raise ValueError(_BUCKET_MESSAGE)
    return bucket


ReplicaBucket = Annotated[
    str,
    regex_field(BUCKET, _BUCKET_MESSAGE, 63, cel(f"!(self in {list(RESERVED_BUCKETS)!r})", RESERVED_MESSAGE)),
    AfterValidator(_bucket_name),
    AfterValidator(not_reserved),
]
