"""Measured use: object-store usage of a centre's buckets (S3) and utilisation from Prometheus.

Prometheus answers a range query per resource with one series per node; the series are added up per
census row (city × centre) at each step, and the row gets the average and the 95th percentile of that
sum over the window — the p95 of a sum, not a sum of p95s, which would overstate a row's peak.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..adapters import s3


@dataclass(frozen=True)
class StorageUsage:
    buckets: int
    objects: int
    bytes: int


class UsageError(Exception):
    """Usage that could not be read: `reason` is one CamelCase word (PrometheusUnreachable,
    QueryFailed, ObjectStoreUnreachable)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def bucket_usage(endpoint: s3.S3Endpoint, page_size: int = 1000) -> StorageUsage:
    """Every bucket of the store, every object listed page by page, sizes added up."""
    client = s3.client(endpoint, connect_timeout=3.0, read_timeout=30.0, max_pool=4)
    try:
        buckets = [b["Name"] for b in client.list_buckets().get("Buckets") or []]
        objects = size = 0
        paginator = client.get_paginator("list_objects_v2")
        for bucket in buckets:
            for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": page_size}):
                for obj in page.get("Contents") or []:
                    objects += 1
                    size += int(obj.get("Size") or 0)
    except Exception as e:  # botocore's endpoint, credential and client errors alike
        code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") else None
        detail = f"{type(e).__name__}{f' {code}' if code else ''}"
        raise UsageError("ObjectStoreUnreachable", f"{endpoint.url}: {detail}") from None
    return StorageUsage(len(buckets), objects, size)


# --- Prometheus ------------------------------------------------------------------------------------
Series = tuple[dict[str, str], list[tuple[float, float]]]


def query_range(
    url: str, expr: str, start: datetime, end: datetime, step: timedelta, timeout_s: float = 30.0
) -> list[Series]:
    """POST /api/v1/query_range; UsageError when Prometheus cannot be reached or refuses the query."""
    form = urllib.parse.urlencode(
        {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{max(step.total_seconds(), 0.001):.3f}",
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (http(s) only, see below)
        url.rstrip("/") + "/api/v1/query_range",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        # the URL is the spec's prometheusUrl, which the CRD limits to http(s)
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
            body = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            message = str(json.loads(e.read()).get("error", ""))
        except ValueError:
            message = ""
        raise UsageError("QueryFailed", f"HTTP {e.code}: {message[:200] or e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise UsageError("PrometheusUnreachable", f"{url} did not answer ({reason})") from None
    if body.get("status") != "success":
        raise UsageError("QueryFailed", str(body.get("error", "unknown error"))[:200])
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise UsageError("QueryFailed", f"expected a range vector, got {data.get('resultType')}")
    return [
        (dict(s.get("metric") or {}), [(float(t), float(v)) for t, v in s.get("values") or []])
        for s in data.get("result") or []
    ]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Measured:
    avg: float
    p95: float
    samples: int  # steps with data


def aggregate(
    series: list[Series], locate: Callable[[Mapping[str, str]], tuple[Any, ...]]
) -> tuple[dict[Any, Measured], int]:
    """Per row key: average and p95 over time of the sum of its series (`locate` names every row a
    series counts in: its centre, its city, the province). Also returns how many series matched no
    row (a node the census does not know)."""
    sums: dict[Any, dict[float, float]] = {}
    unmatched = 0
    for labels, points in series:
        keys = locate(labels)
        if not keys:
            unmatched += 1
        for key in keys:
            row = sums.setdefault(key, {})
            for t, v in points:
                if math.isfinite(v):
                    row[t] = row.get(t, 0.0) + v
    out = {
        key: Measured(sum(by_t.values()) / len(by_t), percentile(list(by_t.values()), 95), len(by_t))
        for key, by_t in sums.items()
        if by_t
    }
    return out, unmatched
