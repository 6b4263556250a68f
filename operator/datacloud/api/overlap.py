"""When two object-store locations share keys: the one rule every room uses (sync CLI, DRReplica).

A location is (place, bucket, prefix), where place names the store (an endpoint URL or a centre). A
non-empty prefix is a folder: `photos` and `photos/` are the same location and neither holds `photos2/`.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit


class Place(NamedTuple):
    """A bucket, optionally narrowed to a prefix, on one store."""

    store: str
    bucket: str
    prefix: str = ""


def folder(prefix: str) -> str:
    """The prefix as a folder (`a/b` → `a/b/`; the empty prefix is the whole bucket)."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def contains(outer: Place, inner: Place) -> bool:
    """Every key under `inner` is also under `outer`."""
    return (
        outer.store == inner.store
        and outer.bucket == inner.bucket
        and folder(inner.prefix).startswith(folder(outer.prefix))
    )


def overlap(a: Place, b: Place) -> bool:
    """Some key can lie under both (one contains the other)."""
    return contains(a, b) or contains(b, a)


def store_name(url: str) -> str:
    """An endpoint URL as one name per store: scheme and host in lower case, the default port spelled
    out (`HTTP://Host/` and `http://host:80` name one store). Names are compared as written: one store
    reached by two host names, or two stores behind one address, are not recognised."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"
