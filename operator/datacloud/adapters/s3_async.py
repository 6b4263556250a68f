"""Whole-object GET and PUT on asyncio streams, for copying many small objects from one thread.

With a thread per in-flight copy, most of the client's CPU for a small object goes to handing the
interpreter lock from thread to thread around each socket call. Here one event loop keeps every
request in flight on its own kept-alive connection. Requests are signed by the same `Signer` as the
blocking client (`s3_wire`), answers have the same boto3 shape, S3 errors are botocore `ClientError`s
and connection failures are the standard library's exceptions, so the retry policy sorts them as usual.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import ssl
from typing import Any

from .http11 import parse_head, request_head
from .s3_wire import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    WireClient,
    answer_from,
    error_from,
    object_path,
    put_headers,
)

MAX_HEAD = 65536


class AsyncConnection:
    """One connection, one request at a time; reopened when it breaks or the server closes it."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, timeout: float) -> None:
        self._host, self._port, self._context, self._timeout = host, port, context, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        async with asyncio.timeout(self._timeout):
            self._reader, self._writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._context, limit=MAX_HEAD
            )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def exchange(self, request: bytes, read_body: bool) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send a whole request and read the whole answer; a kept-alive connection gone stale is
        replaced once (GET and PUT of a whole object are safe to send again)."""
        for attempt in (1, 2):
            reused = self._writer is not None
            if not reused:
                await self._open()
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._exchange(request, read_body)
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self.close()
                if not reused or attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, request: bytes, read_body: bool) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(request)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise http.client.RemoteDisconnected(
                    "the server closed the connection without answering"
                ) from None
            raise http.client.IncompleteRead(exc.partial) from None
        except asyncio.LimitOverrunError:
            raise http.client.HTTPException("response headers too long") from None
        status, headers = parse_head(head)
        values = dict(headers)
        body = b""
        if read_body and status not in (204, 304):
            length = values.get("content-length", "")
            if not length.isdigit():
                raise http.client.HTTPException(f"response without a usable length ({length!r})")
            try:
                body = await self._reader.readexactly(int(length))
            except asyncio.IncompleteReadError as exc:
                raise http.client.IncompleteRead(exc.partial, int(length) - len(exc.partial)) from None
        if values.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


class AsyncObjects:
    """GET and PUT of small whole objects on one endpoint, for use on one event loop."""

    def __init__(self, wire: WireClient) -> None:
        self._wire = wire
        self._signer = wire.signer
        self._host_header = wire.host_header

    def connection(self) -> AsyncConnection:
        host, port, context = self._wire.address
        return AsyncConnection(host, port, context, self._wire.read_timeout)

    def _request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, unsigned: bool = False
    ) -> bytes:
        headers["host"] = self._host_header
        # Unsigned: the caller checks the returned ETag instead.
        digest = UNSIGNED_PAYLOAD if unsigned else hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        self._signer.sign(method, path, headers, digest)
        return request_head(method, path, headers, len(body) if method == "PUT" else None) + body

    async def get_object(self, conn: AsyncConnection, bucket: str, key: str) -> tuple[dict[str, Any], bytes]:
        status, headers, body = await conn.exchange(
            self._request("GET", object_path(bucket, key), {}, b""), True
        )
        if status >= 300:
            raise error_from(status, body, "GetObject")
        return answer_from(headers), body

    async def put_object(
        self, conn: AsyncConnection, bucket: str, key: str, body: bytes, **extra: Any
    ) -> dict[str, Any]:
        metadata = extra.pop("Metadata", None)
        unsigned = bool(extra.pop("Unsigned", False))
        request = self._request("PUT", object_path(bucket, key), put_headers(metadata, extra), body, unsigned)
        status, answered, answer = await conn.exchange(request, True)
        if status >= 300:
            raise error_from(status, answer, "PutObject")
        return {"ETag": dict(answered).get("etag", "")}
