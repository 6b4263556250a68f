"""Where a sync reads and writes: `ENDPOINT_URL/BUCKET[/PREFIX]` locations and credentials files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datacloud.adapters.s3 import S3Credentials, S3Endpoint, key_flaw
from datacloud.api.overlap import odd_segment
from datacloud.api.s3names import REGION_MSG, is_region


class LocationError(ValueError):
    """A location or credentials file the user gave cannot be used; the message says why."""


@dataclass(frozen=True)
class Location:
    """A bucket, optionally narrowed to a prefix, on one centre's object store."""

    endpoint: S3Endpoint
    bucket: str
    prefix: str = ""

    def key(self, relative_key: str) -> str:
        return self.prefix + relative_key

    def __str__(self) -> str:
        return f"{self.endpoint.url}/{self.bucket}/{self.prefix}"


def split_location(text: str) -> tuple[str, str, str]:
    """`http://host:port/bucket/some/prefix` → (`http://host:port`, `bucket`, `some/prefix/`).

    A non-empty prefix is taken as a folder: it gets a trailing `/`, so `photos` never matches `photos2/`.
    """
    parts = urlsplit(text)
    if "@" in parts.netloc:
        # Said without echoing the location: what precedes the @ is likely a password.
        host = parts.netloc.rpartition("@")[2]
        raise LocationError(
            f"the location on {host} has user information before an @; credentials go in a credentials file"
        )
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise LocationError(f"{text!r} is not ENDPOINT_URL/BUCKET[/PREFIX] (e.g. https://s3.fz.example/data)")
    if parts.query or parts.fragment:
        raise LocationError(f"{text!r}: a location has no query string or fragment")
    try:
        parts.port  # noqa: B018 - parsing it is the check: a port that is no number, or out of range
    except ValueError:
        raise LocationError(f"{text!r}: the port must be a number from 1 to 65535") from None
    if parts.port == 0 or not parts.hostname:
        raise LocationError(f"{text!r}: no host, or port 0")
    bucket, _, prefix = parts.path.lstrip("/").partition("/")
    if not bucket:
        raise LocationError(f"{text!r} names no bucket; add /BUCKET after the endpoint")
    if odd_segment(prefix):
        raise LocationError(
            f"{text!r}: the prefix has an empty, . or .. path segment; object stores keep such keys under "
            "another name or refuse them"
        )
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{parts.scheme}://{parts.netloc}", bucket, prefix


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ACCESS = ("accessKeyId", "access_key_id", "AWS_ACCESS_KEY_ID", "accessKey", "access_key")
_SECRET = ("secretAccessKey", "secret_access_key", "AWS_SECRET_ACCESS_KEY", "secretKey", "secret_key")
_REGION = ("region", "AWS_REGION", "AWS_DEFAULT_REGION")


def load_credentials(path: Path, default_region: str = "us-east-1") -> tuple[S3Credentials, str]:
    """Read `{"accessKeyId", "secretAccessKey", "region"}` JSON or an env-style `KEY=value` file.

    Errors name the file and the missing field, never a value read from it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LocationError(f"credentials file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LocationError(f"cannot read credentials file {path}: {type(exc).__name__}") from None
    looks_like_json = text.lstrip().startswith(("{", "["))
    fields = _parse_json(text, path) if looks_like_json else _parse_env(text, path)
    access = _first(fields, _ACCESS)
    secret = _first(fields, _SECRET)
    if not access or not secret:
        missing = "accessKeyId" if not access else "secretAccessKey"
        raise LocationError(f"credentials file {path} has no {missing}")
    for name, value in (("accessKeyId", access), ("secretAccessKey", secret)):
        flaw = key_flaw(value)
        if flaw:
            raise LocationError(f"credentials file {path}: {name} {flaw}")
    region = _first(fields, _REGION) or default_region
    if not is_region(region):
        raise LocationError(f"credentials file {path}: region {region!r} {REGION_MSG}")
    return S3Credentials(access, secret), region


def _parse_json(text: str, path: Path) -> dict[str, str]:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocationError(f"credentials file {path} is not valid JSON (line {exc.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise LocationError(f"credentials file {path} must be a JSON object of strings")
    return {str(k): v for k, v in data.items()}


def _parse_env(text: str, path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        name, sep, value = line.partition("=")
        if not sep or not _NAME.match(name.strip()):
            raise LocationError(f"credentials file {path} line {number} is not KEY=value")
        fields[name.strip()] = value.strip().strip("'\"")
    return fields


def _first(fields: dict[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        if fields.get(name):
            return fields[name]
    return ""


def location(text: str, credentials_file: Path) -> Location:
    url, bucket, prefix = split_location(text)
    credentials, region = load_credentials(credentials_file)
    return Location(S3Endpoint(url, region, credentials), bucket, prefix)
