"""The names of the buckets the operator keeps its own records in (see `reserved`), without pydantic:
`datacloud sync` refuses them as a destination and should not pay for the models' import to know them."""

QUARANTINE_BUCKET = "datacloud-divergent"  # divergent writes kept after an unplanned failover
AUDIT_BUCKET = "datacloud-audit"  # one JSON record per finished DR action
RESERVED_BUCKETS = (QUARANTINE_BUCKET, AUDIT_BUCKET)
RESERVED_MESSAGE = (
    f"must not be {' or '.join(RESERVED_BUCKETS)}: the operator keeps its own records there "
    "(divergent writes it preserved, audit records of DR actions)"
)
