"""The S3 adapter: one place that builds boto3 clients for a centre's object store.

Credentials travel in `S3Credentials`, whose repr hides the secret, so they never reach a log line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)


def key_flaw(value: str) -> str | None:
    """What makes an access or secret key unusable as written, or None. A line break at the end is the
    usual one (`kubectl create secret --from-file` keeps a file's last newline): sent in a request header
    it makes the request malformed (HTTP 400), and in a signing key every signature wrong, so the store
    seemed to refuse good credentials. Says what is wrong, never the value."""
    if value.endswith(("\n", "\r")):
        return "ends with a line break"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "holds a control character"
    if value != value.strip():
        return "begins or ends with a space"
    return None


@dataclass(frozen=True)
class S3Endpoint:
    """Where a centre's object store is and how to sign requests to it."""

    url: str
    region: str
    credentials: S3Credentials


_shared_lock = threading.Lock()
_lazy: dict[tuple[S3Endpoint, tuple[tuple[str, Any], ...]], Any] = {}


class LazyClient:
    """A boto3 client made on first use (making one costs about 0.1 s of CPU), then shared by threads, and
    by every LazyClient of the same endpoint and settings in the process (the operator's thousand
    followers of one centre use one client and its bounded connection pool, not a thousand)."""

    def __init__(self, endpoint: S3Endpoint, **settings: Any) -> None:
        self._endpoint = endpoint
        self._settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LazyClient({self._endpoint.url!r})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        with self._lock:
            if self._client is None:
                key = (self._endpoint, tuple(sorted(self._settings.items())))
                with _shared_lock:
                    found = _lazy.get(key)
                    if found is None:
                        found = _lazy[key] = client(self._endpoint, **self._settings)
                self._client = found
        return getattr(self._client, name)


def client(
    endpoint: S3Endpoint,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
    max_pool: int = 32,
    retries: int = 0,
) -> Any:
    """A boto3 S3 client with path-style addressing (centres are addressed by host:port, not DNS).

    botocore's own retries are off by default: callers retry with tenacity, where the policy is visible.
    boto3 is imported here, not at the top: loading it takes a fifth of a second, which a `datacloud sync`
    of small objects never needs.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=endpoint.region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool,
        retries={"max_attempts": retries, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.credentials.access_key_id,
        aws_secret_access_key=endpoint.credentials.secret_access_key,
        config=config,
    )


class SharedClient:
    """A process-wide client: everything but `close`, which must not close it under its other users."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        pass


_shared: dict[tuple[S3Endpoint, float, float], SharedClient] = {}
SHARED_POOL = 16


def shared_client(
    endpoint: S3Endpoint, *, connect_timeout: float = 5.0, read_timeout: float = 60.0
) -> SharedClient:
    """One client per endpoint and timeouts for the whole process (boto3 clients are thread-safe): making
    a client costs about 0.1 s of CPU, which a thousand objects checking their buckets must not pay each
    time. Its connection pool is bounded, so connections do not grow with the callers either."""
    key = (endpoint, connect_timeout, read_timeout)
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            made = client(
                endpoint, connect_timeout=connect_timeout, read_timeout=read_timeout, max_pool=SHARED_POOL
            )
            found = _shared[key] = SharedClient(made)
        return found
