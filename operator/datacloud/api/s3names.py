"""S3 signing regions as the SDKs take them: one check for the DataCentre schema and for `datacloud sync`'s
credentials files (kept free of pydantic, which a sync's start-up does not load)."""

from __future__ import annotations

import re

# botocore raises InvalidRegionError for anything else, before sending a request. The region is also a
# field of every request's credential scope, `<key>/<day>/<region>/s3/aws4_request`, where a slash or a
# space would split it.
# Digits alone are refused too (a host label, as botocore reads a region).
REGION = r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
DIGITS = r"^[0-9]+$"
REGION_MSG = (
    "must be a region name such as us-east-1: letters, digits and inner hyphens, at most 63, not digits alone"
)


def is_region(text: str) -> bool:
    return re.fullmatch(REGION, text) is not None and re.fullmatch(DIGITS, text) is None
