"""What the replication tests share: a centre seen through a plain boto3 client (`Store`), a source and
destination bucket (`BucketPair`), and polling with a deadline.

Fixtures built on these stay in `tests/integration/replication/conftest.py`."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from datacloud.adapters.s3 import S3Credentials, S3Endpoint, client
from datacloud.devstack.objectstore import Centre
from datacloud.replication.locations import Location
from tests.support import cluster


@dataclass
class Store:
    """One centre seen through a plain boto3 client, with helpers for setting up and reading back."""

    centre: Centre

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(
            self.centre.endpoint, "us-east-1", S3Credentials(self.centre.access_key, self.centre.secret_key)
        )

    @cached_property
    def s3(self) -> Any:
        return client(self.endpoint, max_pool=32)

    def bucket(self, stem: str) -> str:
        name = f"{stem}-{secrets.token_hex(4)}"
        self.s3.create_bucket(Bucket=name)
        return name

    def location(self, bucket: str, prefix: str = "") -> Location:
        return Location(self.endpoint, bucket, prefix)

    def credentials_file(self, directory: Path) -> Path:
        path = directory / f"{self.centre.name}-{secrets.token_hex(3)}.json"
        path.write_text(
            json.dumps(
                {
                    "accessKeyId": self.centre.access_key,
                    "secretAccessKey": self.centre.secret_key,
                    "region": "us-east-1",
                }
            )
        )
        return path

    def put(self, bucket: str, key: str, body: bytes = b"", **extra: Any) -> str:
        return str(self.s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)["ETag"]).strip('"')

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        s3 = self.s3
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        found: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [o["Key"] for o in page.get("Contents", [])]
        return found

    def digests(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Relative key → sha256 of the content, for comparing two trees.

        A key deleted between the listing and its read (a follower catching up) maps to "gone", so a
        tree still changing compares unequal instead of failing the comparison.
        """
        s3 = self.s3

        def one(key: str) -> tuple[str, str]:
            try:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except s3.exceptions.NoSuchKey:
                return key[len(prefix) :], "gone"
            return key[len(prefix) :], hashlib.sha256(body).hexdigest()

        with ThreadPoolExecutor(16) as pool:
            return dict(pool.map(one, self.keys(bucket, prefix)))

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        return dict(self.s3.head_object(Bucket=bucket, Key=key))

    def uploads(self, bucket: str) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@dataclass
class BucketPair:
    src: Store
    dst: Store
    src_bucket: str
    dst_bucket: str

    def locations(self, src_prefix: str = "", dst_prefix: str = "") -> tuple[Location, Location]:
        return self.src.location(self.src_bucket, src_prefix), self.dst.location(self.dst_bucket, dst_prefix)

    def in_sync(self, src_prefix: str = "", dst_prefix: str = "") -> bool:
        return self.src.digests(self.src_bucket, src_prefix) == self.dst.digests(self.dst_bucket, dst_prefix)


def start_centre(name: str, root: Path, **kwargs: Any) -> Centre:
    return Centre(name, root / name, **kwargs).start()


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """`cluster.wait_until`, polling every 0.1 s (object stores answer faster than the API server)."""
    return cluster.wait_until(check, timeout, 0.1, what)
