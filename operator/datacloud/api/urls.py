"""HTTP(S) URLs the operator connects to (an object store's endpoint, Prometheus): what the schema admits
is what the operator can use, and never a password that status, Events or logs would show."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from .common import new_value_rule

ENDPOINT = r"^https?://[^\s/]+(/.*)?$"
PORT = r"^0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
# An endpoint whose port, if any, is 1 to 65535 (the host is judged by the host rule).
WITH_PORT = r"^https?://(\[[^\]/]*\]|[^/:\[\]]*)(:" + PORT[1:-1] + r")?(/.*)?$"
PORT_MSG = "must have a port from 1 to 65535, e.g. http://127.0.0.1:7070"
URL_MSG = "must be a URL: a host name or address and an optional port, e.g. http://127.0.0.1:7070"
HOST_MSG = "must name a host, e.g. https://oss.fz-prod.fj.gov.cn"
EXTRA_MSG = "must not carry a query or fragment (? or #)"


def _usable(url: str, user_msg: str) -> str:
    """What the schema's rules hold, checked again when the operator reads an object admitted before them:
    the port was read first by the probe (`http://h:abc` raised on every probe, with no status)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        raise ValueError(URL_MSG) from None
    try:
        port = parts.port
    except ValueError:
        raise ValueError(PORT_MSG) from None
    if "@" in parts.netloc:
        raise ValueError(user_msg)
    if parts.netloc.endswith(":") or (
        port is not None and not re.fullmatch(PORT, parts.netloc.rpartition(":")[2])
    ):
        raise ValueError(PORT_MSG)
    if not parts.hostname:
        raise ValueError(HOST_MSG)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError(EXTRA_MSG)
    return url


def url_field(user_msg: str, description: str, max_length: int = 512, root_only: bool = False) -> Any:
    """The schema of a URL: a host, an optional port from 1 to 65535, no user or password (`user_msg`
    says where credentials go instead), no query or fragment. Rules on new values only (optionalOldSelf);
    `url_check` holds the same in the model, so an object admitted before them is Invalid naming the field."""
    port_rule = f"!isURL(self) || self.matches('^https?://[^/]*@|[?#]') || self.matches({WITH_PORT!r})"
    return Field(
        pattern=ENDPOINT,
        max_length=max_length,
        description=description,
        json_schema_extra={
            "x-kubernetes-validations": [
                new_value_rule("!self.matches('^https?://[^/]*@')", user_msg),
                new_value_rule("!self.matches('[?#]')", EXTRA_MSG),
                new_value_rule(
                    f"!self.matches({ENDPOINT!r}) || self.matches('^https?://[^/]*@') || isURL(self)", URL_MSG
                ),
                new_value_rule("!isURL(self) || url(self).getHostname() != ''", HOST_MSG),
                # On the whole text: a regex on url(self).getPort(), of no known length, cost too much.
                new_value_rule(port_rule, PORT_MSG),
                *([new_value_rule(f"!isURL(self) || {ROOT_PATH_CEL}", PATH_MSG)] if root_only else []),
            ]
        },
    )


# An S3 endpoint is a host and port: buckets are addressed at its root. A path was admitted and then
# dropped by one client and kept by another (boto3 puts it before the bucket), so two parts of the
# operator addressed two places.
PATH_MSG = "must not have a path: buckets are addressed at the endpoint's root, e.g. http://127.0.0.1:7070"
ROOT_PATH_CEL = "url(self).getEscapedPath() in ['', '/']"


def _at_root(url: str) -> str:
    if urlsplit(url).path not in ("", "/"):
        raise ValueError(PATH_MSG)
    return url


AT_ROOT = AfterValidator(_at_root)


def url_check(user_msg: str) -> AfterValidator:
    return AfterValidator(lambda url: _usable(url, user_msg))
