"""Whole-object GET, PUT and HEAD, and listings, straight over HTTP/1.1, signed with Signature Version 4 here.

Replication of small objects is request-bound: through botocore each request costs milliseconds of CPU
(its event hooks, models and parsers), which is most of the work when an object is a few KiB. This client
does only the calls the small-object path and the listings need, keeps one persistent connection per
thread and endpoint, and answers in the same shape as boto3 (`Body`, `ContentLength`, `ETag`,
`Metadata`, ...) so callers and error handling stay the same: S3 errors are raised as botocore's
`ClientError` with the store's code and message, connection failures as the standard library's
`ConnectionError`/`http.client` exceptions, which the retry policy already treats as transient.

Small payloads are signed (`x-amz-content-sha256` is the real digest), so a body altered on the way is
refused by the store; streamed ones, parts and copies' PUTs are sent unsigned and their caller compares
the ETag the store answers with the MD5 the bytes must have. Credentials are used for signing only and
never appear in an exception or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus, urlsplit

from .http11 import Response, ThreadConnections, header_bytes, stdlib_http
from .s3 import S3Endpoint

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# Response headers copied into the boto3-shaped answer, by boto3's names.
_RESPONSE_HEADERS = {
    "content-type": "ContentType",
    "cache-control": "CacheControl",
    "content-encoding": "ContentEncoding",
    "content-disposition": "ContentDisposition",
    "content-language": "ContentLanguage",
    "etag": "ETag",
}
# The boto3 argument names a PUT accepts, by header.
_REQUEST_HEADERS = {
    "ContentType": "content-type",
    "CacheControl": "cache-control",
    "ContentEncoding": "content-encoding",
    "ContentDisposition": "content-disposition",
    "ContentLanguage": "content-language",
    "IfNoneMatch": "if-none-match",  # "*": created only if no object has the key (an audit record)
}
_META = "x-amz-meta-"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class Signer:
    """SigV4 for one access key and region; the day's signing key is derived once and reused."""

    def __init__(self, endpoint: S3Endpoint) -> None:
        self._access = endpoint.credentials.access_key_id
        self._secret = endpoint.credentials.secret_access_key
        self._region = endpoint.region
        self._cached: tuple[str, Any, Any, str] = ("", None, None, "")  # day, pads, scope
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Signer(region={self._region!r})"

    def _signing_pads(self, day: str) -> tuple[Any, Any, str]:
        """The day's signing key as HMAC-SHA256's two padded hash states, ready to be copied, and the
        credential scope.

        Copying a started SHA-256 is a few times cheaper than `hmac.digest`, which sets the key up again
        (and, with OpenSSL 3, looks the digest up again) for every request. The day's entry is one
        tuple, read without the lock once made.
        """
        cached = self._cached
        if cached[0] == day:
            return cached[1], cached[2], cached[3]
        with self._lock:
            if self._cached[0] != day:
                key = ("AWS4" + self._secret).encode()
                for part in (day, self._region, "s3", "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                block = key.ljust(64, b"\0")
                inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
                outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
                self._cached = (day, inner, outer, f"{day}/{self._region}/s3/aws4_request")
            cached = self._cached
            return cached[1], cached[2], cached[3]

    def sign(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        payload_sha256: str,
        query: str = "",
        stamp: str | None = None,
    ) -> None:
        """Add `x-amz-date`, `x-amz-content-sha256` and `authorization` to `headers` (lower-case names).

        `query` is the canonical query string (`canonical_query`), also the one sent. The canonical
        request is hashed as the bytes that go on the wire (`header_bytes`), so a value in any script
        signs as the store will read it.
        """
        stamp = stamp or _stamp()
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_sha256
        names = sorted(headers)
        signed = ";".join(names)
        lines = "".join([f"{name}:{canonical_value(headers[name])}\n" for name in names])
        canonical = f"{method}\n{path}\n{query}\n{lines}\n{signed}\n{payload_sha256}"
        inner, outer, scope = self._signing_pads(stamp[:8])
        digest = hashlib.sha256(header_bytes(canonical)).hexdigest()
        inner, outer = inner.copy(), outer.copy()
        inner.update(f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}".encode())
        outer.update(inner.digest())
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access}/{scope}, "
            f"SignedHeaders={signed}, Signature={outer.hexdigest()}"
        )


_SPACES = re.compile(" {2,}")


def canonical_value(value: str) -> str:
    """SigV4's Trimall as the stores apply it: whitespace trimmed at both ends, runs of spaces inside made
    one space, any other whitespace inside kept.

    (botocore folds every run of whitespace inside too, so a value holding, say, a pair of tabs or of
    ideographic spaces is refused by the gateway when signed by boto3; `tests/integration/replication`
    checks this form against the real gateway.)
    """
    value = value.strip()
    return _SPACES.sub(" ", value) if "  " in value else value


_last_stamp: tuple[int, str] = (-1, "")


def _stamp() -> str:
    """The request time as SigV4 writes it, formatted once per second (every request needs one)."""
    global _last_stamp
    now = int(time.time())
    second, text = _last_stamp
    if now != second:
        text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        _last_stamp = (now, text)
    return text


# What `quote(text, safe="/~")` leaves as it is: a name made only of these needs no escaping.
_UNESCAPED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def object_path(bucket: str, key: str) -> str:
    """The path-style request path, encoded once as SigV4 wants it for S3 (`/` kept, all else escaped).

    Bucket names and most keys need no escaping; they are checked with a set operation in C, and only
    the others go through `quote` (several times as slow, and run for every request).
    """
    if _UNESCAPED.issuperset(key) and _UNESCAPED.issuperset(bucket) and "/" not in bucket:
        return f"/{bucket}/{key}"
    return "/" + quote(bucket, safe="") + "/" + quote(key, safe="/~")


def escape(text: str) -> str:
    """XML text escaping (`xml.sax.saxutils.escape`, whose import costs more than the three replaces)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def canonical_query(params: dict[str, str]) -> str:
    """Names and values escaped except unreserved characters, sorted by escaped name (SigV4's form:
    sorting the raw names puts `~` before `é`, whose escape `%C3%A9` sorts first)."""
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def error_from(status: int, body: bytes, operation: str) -> ClientError:
    code, message = str(status), stdlib_http().responses.get(status, "")
    if body:
        try:
            root = ET.fromstring(body)  # noqa: S314 - the store's own error document
            code = root.findtext("Code") or code
            message = root.findtext("Message") or message
        except ET.ParseError:
            pass
    # Imported when a store refuses something, not before: the lean path needs no botocore to run.
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class WireClient:
    """Whole-object calls and listings on one endpoint, one keep-alive connection per calling thread."""

    def __init__(self, endpoint: S3Endpoint, *, connect_timeout: float = 5.0, read_timeout: float = 60.0):
        parts = urlsplit(endpoint.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._host_header = parts.netloc
        self._signer = Signer(endpoint)
        context = None
        if self._https:
            # The same trust as the boto3 clients: AWS_CA_BUNDLE when set, the system store otherwise.
            context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
        self._conns = ThreadConnections(
            self._host,
            self._port,
            context=context,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    def __repr__(self) -> str:
        return f"WireClient({self._host_header!r})"

    @property
    def address(self) -> tuple[str, int, ssl.SSLContext | None]:
        """Host, port and TLS context (None for plain HTTP), for another client of the same endpoint."""
        return self._host, self._port, self._conns.context

    @property
    def host_header(self) -> str:
        return self._host_header

    @property
    def signer(self) -> Signer:
        return self._signer

    @property
    def read_timeout(self) -> float:
        return self._conns.read_timeout

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        query: str = "",
        stream: Iterable[bytes | memoryview] | None = None,
        length: int = 0,
        unsigned: bool = False,
    ) -> Response:
        headers["host"] = self._host_header
        if stream is not None or unsigned:
            digest = UNSIGNED_PAYLOAD  # the caller checks the returned ETag instead
        else:
            digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        self._signer.sign(method, path, headers, digest, query)
        target = f"{path}?{query}" if query else path
        response = self._conns.send(method, target, headers, body, stream, length)
        if response.status >= 300:
            try:
                data = response.read() if method != "HEAD" else b""
            except BaseException:
                self._conns.drop()
                raise
            raise error_from(response.status, data, operation)
        return response

    def get_object(self, *, Bucket: str, Key: str, Range: str = "", IfMatch: str = "") -> dict[str, Any]:
        """The object (or the `Range` of it), only if its ETag is `IfMatch` when that is given."""
        headers = {}
        if Range:
            headers["range"] = Range
        if IfMatch:
            headers["if-match"] = IfMatch
        response = self._request("GetObject", "GET", object_path(Bucket, Key), headers, None)
        answer = _answer(response)
        answer["Body"] = response
        return answer

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        response = self._request("HeadObject", "HEAD", object_path(Bucket, Key), {}, None)
        response.read()
        return _answer(response)

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        Metadata: dict[str, str] | None = None,
        Unsigned: bool = False,
        **extra: str,
    ) -> dict[str, Any]:
        """PUT a whole object. `Unsigned`: send the payload unsigned, for a caller that compares the
        returned ETag with the content's MD5 it already knows (a copy knows its source's)."""
        headers = put_headers(Metadata, extra)
        path = object_path(Bucket, Key)
        response = self._request("PutObject", "PUT", path, headers, Body, unsigned=Unsigned)
        response.read()
        return {"ETag": response.getheader("etag", "")}

    def put_object_stream(
        self,
        *,
        Bucket: str,
        Key: str,
        Chunks: Iterable[bytes | memoryview],
        ContentLength: int,
        Metadata: dict[str, str] | None = None,
        **extra: str,
    ) -> dict[str, Any]:
        """PUT `ContentLength` bytes as `Chunks` yields them, in one request and constant memory.

        The payload is sent unsigned (its digest is not known before it is sent), so the caller must
        compare the returned ETag with the content's MD5 to know the bytes arrived intact.
        """
        headers = put_headers(Metadata, extra)
        path = object_path(Bucket, Key)
        response = self._request("PutObject", "PUT", path, headers, None, stream=Chunks, length=ContentLength)
        response.read()
        return {"ETag": response.getheader("etag", "")}

    def create_multipart_upload(
        self, *, Bucket: str, Key: str, Metadata: dict[str, str] | None = None, **extra: str
    ) -> dict[str, Any]:
        headers = put_headers(Metadata, extra)
        path = object_path(Bucket, Key)
        response = self._request("CreateMultipartUpload", "POST", path, headers, b"", "uploads=")
        root, ns = _document(response.read(), "multipart upload")
        upload_id = root.findtext(ns + "UploadId")
        if not upload_id:
            raise stdlib_http().HTTPException("the store started a multipart upload without an UploadId")
        return {"UploadId": upload_id}

    def upload_part(
        self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes
    ) -> dict[str, Any]:
        """One part, its payload unsigned: the caller compares the returned ETag with the part's MD5,
        which it needs anyway for the object's ETag, instead of hashing the part twice."""
        query = canonical_query({"partNumber": str(PartNumber), "uploadId": UploadId})
        path = object_path(Bucket, Key)
        response = self._request("UploadPart", "PUT", path, {}, None, query, stream=(Body,), length=len(Body))
        response.read()
        return {"ETag": response.getheader("etag", "")}

    def complete_multipart_upload(
        self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any]
    ) -> dict[str, Any]:
        parts = "".join(
            f"<Part><PartNumber>{int(p['PartNumber'])}</PartNumber><ETag>{escape(str(p['ETag']))}</ETag></Part>"
            for p in MultipartUpload["Parts"]
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        query = canonical_query({"uploadId": UploadId})
        path = object_path(Bucket, Key)
        response = self._request("CompleteMultipartUpload", "POST", path, {}, body, query)
        # S3 may answer 200 and put the failure in the body (it keeps the connection alive while working).
        data = response.read()
        root, ns = _document(data, "multipart completion")
        if root.tag.endswith("Error"):
            raise error_from(400, data, "CompleteMultipartUpload")
        return {"ETag": root.findtext(ns + "ETag") or ""}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        query = canonical_query({"uploadId": UploadId})
        response = self._request("AbortMultipartUpload", "DELETE", object_path(Bucket, Key), {}, None, query)
        response.read()
        return {}

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        response = self._request("DeleteObject", "DELETE", object_path(Bucket, Key), {}, None)
        response.read()
        return {}

    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        MaxKeys: int = 1000,
        ContinuationToken: str | None = None,
    ) -> dict[str, Any]:
        """One ListObjectsV2 page: `Contents` (Key, Size, ETag, LastModified), `IsTruncated`, the next token.

        Keys are asked for URL-encoded (as boto3 does), so keys with control characters survive the XML.
        """
        params = {"list-type": "2", "encoding-type": "url", "max-keys": str(MaxKeys), "prefix": Prefix}
        if ContinuationToken:
            params["continuation-token"] = ContinuationToken
        path = "/" + quote(Bucket, safe="")
        response = self._request("ListObjectsV2", "GET", path, {}, None, canonical_query(params))
        return parse_listing(response.read())

    def list_multipart_uploads(
        self, *, Bucket: str, Prefix: str = "", KeyMarker: str = "", UploadIdMarker: str = ""
    ) -> dict[str, Any]:
        """One ListMultipartUploads page: `Uploads` (Key, UploadId, Initiated), `IsTruncated`, markers."""
        params = {"uploads": "", "encoding-type": "url", "prefix": Prefix}
        if KeyMarker:
            params["key-marker"] = KeyMarker
        if UploadIdMarker:
            params["upload-id-marker"] = UploadIdMarker
        path = "/" + quote(Bucket, safe="")
        response = self._request("ListMultipartUploads", "GET", path, {}, None, canonical_query(params))
        return parse_uploads(response.read())

    def close(self) -> None:
        """Close every connection this client opened, in whichever thread; call when no request runs."""
        self._conns.close()


def parse_listing(body: bytes) -> dict[str, Any]:
    """A ListObjectsV2 result document in boto3's shape (only the fields replication reads)."""
    root, ns = _document(body, "listing")
    encoded = root.findtext(ns + "EncodingType") == "url"
    contents = []
    for item in root.iterfind(ns + "Contents"):
        key = item.findtext(ns + "Key") or ""
        modified = item.findtext(ns + "LastModified")
        contents.append(
            {
                "Key": unquote_key(key) if encoded else key,
                "Size": int(item.findtext(ns + "Size") or 0),
                "ETag": item.findtext(ns + "ETag") or "",
                "LastModified": datetime.fromisoformat(modified) if modified else None,
            }
        )
    return {
        "Contents": contents,
        "IsTruncated": root.findtext(ns + "IsTruncated") == "true",
        "NextContinuationToken": root.findtext(ns + "NextContinuationToken"),
    }


def unquote_key(text: str) -> str:
    """`unquote_plus` for a key of a listing asked for URL-encoded: a key whose only escapes are the
    `%2F` of its slashes (nearly all) is decoded by one replace, several times faster."""
    if "+" not in text:
        plain = text.replace("%2F", "/")
        if "%" not in plain:
            return plain
    return unquote_plus(text)


def parse_uploads(body: bytes) -> dict[str, Any]:
    """A ListMultipartUploads result in boto3's shape (the fields the stale-upload sweep reads)."""
    root, ns = _document(body, "upload listing")
    encoded = root.findtext(ns + "EncodingType") == "url"
    uploads = []
    for item in root.iterfind(ns + "Upload"):
        key = item.findtext(ns + "Key") or ""
        initiated = item.findtext(ns + "Initiated")
        uploads.append(
            {
                "Key": unquote_plus(key) if encoded else key,
                "UploadId": item.findtext(ns + "UploadId") or "",
                "Initiated": datetime.fromisoformat(initiated) if initiated else None,
            }
        )
    next_key = root.findtext(ns + "NextKeyMarker") or ""
    return {
        "Uploads": uploads,
        "IsTruncated": root.findtext(ns + "IsTruncated") == "true",
        "NextKeyMarker": unquote_plus(next_key) if encoded else next_key,
        "NextUploadIdMarker": root.findtext(ns + "NextUploadIdMarker") or "",
    }


def _document(body: bytes, what: str) -> tuple[ET.Element, str]:
    """The parsed XML document and its namespace prefix (`{uri}` or empty)."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - the store's own answer
    except ET.ParseError as exc:
        raise stdlib_http().HTTPException(f"unreadable {what} from the store: {exc}") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    return root, ns


def put_headers(metadata: dict[str, str] | None, extra: dict[str, str]) -> dict[str, str]:
    unknown = set(extra) - set(_REQUEST_HEADERS)
    if unknown:
        raise TypeError(f"put_object got unsupported arguments {sorted(unknown)}")
    headers = {header: str(extra[name]) for name, header in _REQUEST_HEADERS.items() if extra.get(name)}
    for name, value in (metadata or {}).items():
        headers[_META + name.lower()] = value
    for name, value in headers.items():
        # A line break would end the header and start another one: never send what HTTP cannot carry.
        if _UNSENDABLE.search(name) or _UNSENDABLE.search(value):
            raise ValueError(f"header {name!r} holds a line break or NUL, which HTTP cannot carry")
    return headers


_UNSENDABLE = re.compile("[\r\n\0]")


def _answer(response: Response) -> dict[str, Any]:
    return answer_from(response.header_list, response.getheader("content-length"))


def answer_from(headers: list[tuple[str, str]], content_length: str | None = None) -> dict[str, Any]:
    """A GET/HEAD answer in boto3's shape from (lower-case name, value) headers."""
    if content_length is None:
        content_length = next((value for name, value in headers if name == "content-length"), "0")
    answer: dict[str, Any] = {"ContentLength": int(content_length or 0)}
    metadata: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(_META):
            metadata[name[len(_META) :]] = value
        elif name in _RESPONSE_HEADERS:
            answer[_RESPONSE_HEADERS[name]] = value
    answer["Metadata"] = metadata
    return answer


class SharedWireClient(WireClient):
    """A WireClient shared by every user of its endpoint in the process: connections stay one per thread
    and endpoint, not one per thread and user. `close` leaves them to the other users."""

    def close(self) -> None:
        pass


_shared: dict[S3Endpoint, SharedWireClient] = {}
_shared_lock = threading.Lock()


def shared_wire(endpoint: S3Endpoint) -> SharedWireClient:
    with _shared_lock:
        found = _shared.get(endpoint)
        if found is None:
            found = _shared[endpoint] = SharedWireClient(endpoint)
        return found


# -- bucket policies (the write leases' renewals: a GET and a PUT a few times a minute per bucket) -------


class NotSent(ConnectionError):
    """No byte of the request reached the store: no connection to it could be made (refused, timed out,
    unreachable, TLS refused), and no earlier attempt of the same call had been sent."""


def get_bucket_policy(client: WireClient, bucket: str) -> str | None:
    """The bucket's policy document, None when it has none."""
    from botocore.exceptions import ClientError  # see `error_from`

    try:
        return _policy_call(client, "GetBucketPolicy", "GET", bucket, None).decode()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchBucketPolicy", "NoSuchPolicy"):
            return None
        raise


def put_bucket_policy(client: WireClient, bucket: str, policy: str) -> None:
    _policy_call(client, "PutBucketPolicy", "PUT", bucket, policy.encode())


def delete_bucket_policy(client: WireClient, bucket: str) -> None:
    _policy_call(client, "DeleteBucketPolicy", "DELETE", bucket, None)


def _policy_call(client: WireClient, operation: str, method: str, bucket: str, body: bytes | None) -> bytes:
    """One `?policy` request and its answer's body. Raises `NotSent` only when provably nothing was sent
    (a write lease's expiry is forgotten then, and only then); a kept-alive connection the store closed
    meanwhile is replaced once, after which a failure may follow a request that was sent."""
    path = "/" + quote(bucket, safe="")
    query = canonical_query({"policy": ""})
    conns = client._conns
    maybe_sent = False
    for attempt in (1, 2):
        headers = {"host": client.host_header}
        if body is not None:
            headers["content-md5"] = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324
        client.signer.sign(method, path, headers, hashlib.sha256(body or b"").hexdigest(), query)
        try:
            conn, reused = conns.connection()
        except OSError as e:
            if maybe_sent:
                raise
            raise NotSent(f"no connection to the store: {type(e).__name__}") from None
        try:
            response = conn.request(method, f"{path}?{query}", headers, body)
            data = response.read()
        except (stdlib_http().RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conns.drop()
            maybe_sent = True
            if not reused or attempt == 2:
                raise
            continue
        except BaseException:
            conns.drop()
            raise
        if response.status >= 300:
            raise error_from(response.status, data, operation)
        return data
    raise AssertionError("unreachable")


# -- the protect path: buckets and fence policies (each replica's first reconcile, every fence check) ---

_timed: dict[tuple[S3Endpoint, float, float], SharedWireClient] = {}


def shared_wire_timed(endpoint: S3Endpoint, connect_timeout: float, read_timeout: float) -> SharedWireClient:
    """`shared_wire` with the caller's timeouts: one client per endpoint and timeouts in the process (a
    fence on a dead store must give up within its own timeout, not the replication's)."""
    key = (endpoint, connect_timeout, read_timeout)
    with _shared_lock:
        found = _timed.get(key)
        if found is None:
            found = _timed[key] = SharedWireClient(
                endpoint, connect_timeout=connect_timeout, read_timeout=read_timeout
            )
        return found


def head_bucket(client: WireClient, bucket: str) -> None:
    """Raises `ClientError` (code "404", HTTP 404, as boto3's) when the bucket does not exist."""
    response = client._request("HeadBucket", "HEAD", "/" + quote(bucket, safe=""), {}, None)
    response.read()


# Answers to a CreateBucket meaning the bucket is there already (ours, or visible to the root account).
BUCKET_EXISTS = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def create_bucket(client: WireClient, bucket: str, region: str) -> bool:
    """Create the bucket; False when it was there already. Tried straight away: a HEAD first costs a
    request more whenever the bucket is missing, and saves none when it is there."""
    from botocore.exceptions import ClientError  # see `error_from`

    body = b""
    if region != "us-east-1":  # as boto3 does: us-east-1 takes no location, any other region must be named
        body = (
            '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LocationConstraint>{escape(region)}</LocationConstraint></CreateBucketConfiguration>"
        ).encode()
    try:
        response = client._request("CreateBucket", "PUT", "/" + quote(bucket, safe=""), {}, body or None)
        response.read()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in BUCKET_EXISTS:
            return False
        raise
    return True


def put_probe(client: WireClient, bucket: str, key: str, content_md5: str) -> None:
    """An empty PUT carrying the given Content-MD5 (the writability probe sends one that cannot match)."""
    headers = {"content-md5": content_md5}
    client._request("PutObject", "PUT", object_path(bucket, key), headers, None).read()


def list_buckets(client: WireClient, max_buckets: int) -> None:
    """ListBuckets, at most `max_buckets` of them, the answer read and dropped: the centre probe's proof
    that the store answers and takes the credentials (a refusal raises `ClientError` with its code).
    A 200 that is not a bucket listing (a web server's page at a wrong port, a proxy's login form) proves
    neither, and raises `ClientError` with the code NotAnS3Listing."""
    body = client._request(
        "ListBuckets", "GET", "/", {}, None, query=canonical_query({"max-buckets": str(max_buckets)})
    ).read()
    if b"<ListAllMyBucketsResult" not in body[:1024]:
        raise error_from(200, NOT_A_LISTING, "ListBuckets")


NOT_A_LISTING = (
    b"<Error><Code>NotAnS3Listing</Code><Message>the endpoint answered ListBuckets with something other "
    b"than a bucket listing: not an S3 store</Message></Error>"
)


class botocore_errors:  # a context manager named for its use: `with botocore_errors(url): ...`
    """Transport failures of the lean client raised as botocore's, so callers written for boto3 keep their
    verdicts: no answer (refused, timed out, cut off) is a `BotoCoreError` — the store is unreachable —
    while any answer stays a `ClientError` with the store's code, untouched."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if error is None or not isinstance(error, OSError | stdlib_http().HTTPException):
            return  # no failure, or an answer (ClientError) or another exception: left as it is
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

        if isinstance(error, NotSent | ConnectionRefusedError) or not isinstance(
            error, TimeoutError | ConnectionError | stdlib_http().HTTPException
        ):
            # Nothing reached the store, or no way to it (network unreachable, name unknown, TLS refused).
            raise EndpointConnectionError(endpoint_url=self.url, error=error) from None
        if isinstance(error, TimeoutError):
            raise ReadTimeoutError(endpoint_url=self.url, error=error) from None
        raise ConnectionClosedError(endpoint_url=self.url, error=error) from None  # reset, cut off, garbled
