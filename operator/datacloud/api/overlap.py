"""When two object-store locations share keys: the one rule every room uses (sync CLI, DRReplica).

A location is (place, bucket, prefix), where place names the store (an endpoint URL or a centre). A
non-empty prefix is a folder: `photos` and `photos/` are the same location and neither holds `photos2/`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import NamedTuple
from urllib.parse import urlsplit


class Place(NamedTuple):
    """A bucket, optionally narrowed to a prefix, on one store."""

    store: str
    bucket: str
    prefix: str = ""


_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")


def odd_segment(prefix: str) -> bool:
    """Whether a key prefix has an empty, `.` or `..` path segment (`a//b/`, `/a`, `./`, `../x/`): object
    stores keep such keys under another name (versitygw stores `a//b/k` as `a/b/k`) or refuse them."""
    return "//" in prefix or prefix.startswith("/") or _DOT_SEGMENT.search(prefix) is not None


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


def _host(host: str) -> str:
    """A host as one name however it is spelled: IPv4 in any form the resolver's `inet_aton` takes
    (`127.1`, `0x7f.0.0.1`) as dotted quad, IPv6 compressed, names in lower case without the root dot
    and in their ASCII (punycode) form. Every loopback spelling (`localhost` and `*.localhost`, which
    resolve to this machine without DNS, 127.0.0.0/8, ::1, and the unspecified 0.0.0.0 and ::, which a
    connection takes to this machine too) is `localhost`: a store on this machine answers on all of
    them when it listens on all of them, and taking two spellings for two stores would miss a copy into
    itself. No name is resolved."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost"
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    host, percent, zone = host.partition("%")  # an IPv6 zone (`fe80::1%eth0`) names the link: kept
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback or address.is_unspecified:
            return "localhost"
        return f"[{address}{percent}{zone}]" if address.version == 6 else str(address)
    host += percent + zone
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def store_name(url: str) -> str:
    """An endpoint URL as one name per store: scheme in lower case, the host as `_host` spells it, the
    default port spelled out, path, user and query left out (`HTTP://Host/`, `http://host:80` and
    `http://HOST.` name one store; so do `http://localhost:7070` and `http://127.0.0.1:7070`). Never
    raises: a URL whose port is not a port is named by its lower-cased network location (the centre
    holding it is refused by its schema, and is Invalid if admitted before the rule). One store reached
    by two DNS names, or two stores behind one address, are not recognised (names are not resolved)."""
    try:
        parts = urlsplit(url.strip())
        hostname, port = parts.hostname or "", parts.port
    except ValueError:  # `http://[::1`, `http://h:abc`, `http://h:99999`: without its user, as written
        return re.sub(r"//[^/]*@", "//", url.strip().lower(), count=1)
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{_host(hostname)}:{port if port is not None else default}"
