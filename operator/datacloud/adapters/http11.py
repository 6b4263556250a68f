"""A minimal HTTP/1.1 client connection for the hot paths (S3 objects, Kubernetes writes): one request at a
time, kept alive.

The standard library's `http.client` parses every response's headers with the `email` package, which
costs more CPU than everything else a small-object copy does. S3 answers are simple (a status line,
plain headers, a body of known length or chunked), so this reads them with `bytes` operations.
Reads go straight from the socket into one buffer (no `socket.makefile` layers), and a plain TCP
connection is a blocking socket whose read and write timeouts the kernel keeps (`SO_RCVTIMEO`,
`SO_SNDTIMEO`): with Python's own socket timeout every `recv` and `send` is preceded by a `poll`, and
each of the two system calls gives up and takes back the interpreter lock, which on a busy machine is
the larger part of the cost of a request.
Failures are raised as the standard library's exceptions (`http.client.BadStatusLine`,
`RemoteDisconnected`, `IncompleteRead`, `HTTPException`, `TimeoutError`, `ConnectionError`) so the
retry policy classifies them as it does for any other HTTP client.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType

MAX_LINE = 65536
MAX_HEADERS = 200
SPLICE = hasattr(os, "splice")
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the module only from Python 3.10 on some platforms
SPLICE_PIPE = 1024 * 1024


# Header text <-> bytes. Values are UTF-8 on the wire (what S3 stores for user metadata); bytes that are not
# valid UTF-8 survive a round trip as lone surrogates, so a value read from one store is sent to another
# byte for byte, and signed as those same bytes (`HEADER_ENCODING` is what the signer encodes with too).
HEADER_ENCODING = "utf-8"
HEADER_ERRORS = "surrogateescape"


def stdlib_http() -> ModuleType:
    """`http.client`, whose exception classes this layer raises, imported when first needed: with the
    `email` package it loads, its import is 10-15 ms of a sync's start-up, and only a failure needs it."""
    import http.client

    return http.client


def header_bytes(text: str) -> bytes:
    return text.encode(HEADER_ENCODING, HEADER_ERRORS)


def request_head(method: str, target: str, headers: dict[str, str], length: int | None) -> bytes:
    """The request line and headers, with `content-length` when there is a body of that length."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
    if length is not None:
        lines.append(f"content-length: {length}")
    return header_bytes("\r\n".join(lines) + "\r\n\r\n")


def parse_status(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise stdlib_http().BadStatusLine(repr(line[:100]))
    return int(parts[1])


def parse_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    """A whole response head (status line, headers, blank line) as (status, [(lower-case name, value)]):
    decoded once rather than line by line, which is most of the cost of reading a small object's answer."""
    first, _, rest = head.partition(b"\r\n")
    status = parse_status(first)
    headers = []
    for line in rest.decode(HEADER_ENCODING, HEADER_ERRORS).split("\r\n"):
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise stdlib_http().HTTPException(f"malformed header line {line[:100]!r}")
            headers.append((name.strip().lower(), value.strip(" \t")))
    return status, headers


class SocketReader:
    """The reading side of a connection: a buffer refilled by one `recv` at a time, straight from the socket.

    A kernel read timeout on a blocking socket surfaces as `BlockingIOError`; it is raised as
    `TimeoutError`, as Python's own socket timeout is.
    """

    def __init__(self, sock: socket.socket, size: int = MAX_LINE) -> None:
        self._sock = sock
        self._size = size
        self._buf = b""
        self._pos = 0

    def _recv(self, amount: int) -> bytes:
        try:
            return self._sock.recv(amount)
        except BlockingIOError:
            raise TimeoutError("timed out reading from the server") from None

    def _recv_into(self, view: memoryview) -> int:
        try:
            return self._sock.recv_into(view)
        except BlockingIOError:
            raise TimeoutError("timed out reading from the server") from None

    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def fill(self) -> bool:
        """Make sure something is buffered; False when the server closed the connection instead."""
        if self._pos < len(self._buf):
            return True
        self._buf, self._pos = self._recv(self._size), 0
        return bool(self._buf)

    def take_through(self, marker: bytes) -> bytes | None:
        """Everything buffered up to and including `marker`, or None when the buffer does not hold it."""
        end = self._buf.find(marker, self._pos)
        if end < 0:
            return None
        return self._take(end + len(marker) - self._pos)

    def _take(self, amount: int) -> bytes:
        start, self._pos = self._pos, self._pos + amount
        return self._buf[start : self._pos]

    def read(self, amount: int) -> bytes:
        """`amount` bytes, fewer only when the connection ends first."""
        have = self.buffered()
        if amount <= have:
            return self._take(amount)
        out = bytearray(amount)
        view = memoryview(out)
        view[:have] = self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        got = have
        while got < amount:
            n = self._recv_into(view[got:])
            if not n:
                return bytes(view[:got])
            got += n
        return bytes(out)

    def readinto(self, view: memoryview) -> int:
        """Up to `len(view)` bytes into `view` (buffered ones first, then one `recv`); 0 at the end."""
        have = self.buffered()
        if have:
            n = min(have, len(view))
            view[:n] = self._buf[self._pos : self._pos + n]
            self._pos += n
            return n
        return self._recv_into(view)

    def readline(self, limit: int) -> bytes:
        """A line with its end, at most `limit` bytes; what is left when the connection ends first."""
        parts: list[bytes] = []
        size = 0
        while size < limit:
            if not self.fill():
                break
            stop = min(len(self._buf), self._pos + limit - size)
            end = self._buf.find(b"\n", self._pos, stop)
            part = self._take((end + 1 if end >= 0 else stop) - self._pos)
            parts.append(part)
            size += len(part)
            if end >= 0:
                break
        return b"".join(parts)


class Response:
    """Status, headers (lower-case names) and a body read with `read`, up to its end exactly."""

    def __init__(self, conn: Connection, status: int, headers: list[tuple[str, str]], no_body: bool) -> None:
        self.status = status
        self.header_list = headers
        self.headers: dict[str, str] = {}
        for name, value in headers:
            self.headers.setdefault(name, value)
        self._conn = conn
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        self._done = no_body
        if no_body:
            self._left = 0
        elif self._chunked:
            self._left = -1
        else:
            length = self.headers.get("content-length")
            if length is None or not length.isdigit():
                raise stdlib_http().HTTPException(f"response without a usable length ({length!r})")
            self._left = int(length)
            self._done = self._left == 0
        if self._done:
            conn.response_done(self)

    def getheader(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def read(self, amount: int | None = None) -> bytes:
        """Up to `amount` bytes (all that is left when None); b"" at the end."""
        if self._done:
            return b""
        data = self._read_chunked(amount) if self._chunked else self._read_plain(amount)
        if self._done:
            self._conn.response_done(self)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` from the body (0 at its end); for streaming without a new bytes per chunk."""
        if self._done:
            return 0
        if self._chunked:
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        want = min(len(buffer), self._left)
        got = 0
        while got < want:
            n = self._conn.reader.readinto(buffer[got:want])
            if not n:
                self._conn.broken()
                raise stdlib_http().IncompleteRead(bytes(buffer[:got]), want - got)
            got += n
        self._left -= got
        if self._left == 0:
            self._done = True
            self._conn.response_done(self)
        return got

    def splice_to(self, out: socket.socket, on_chunk: Callable[[int], None] | None = None) -> int:
        """Send the rest of the body to `out` (a plain TCP socket) and return how many bytes went.

        The bytes go socket -> kernel pipe -> socket (`splice`): never copied into this process. Those
        the reader had already buffered with the head are sent first. `on_chunk(n)` is called before
        each piece of `n` bytes goes (bandwidth limit, progress). Only for a plain-length body on a
        plain socket (`can_splice`).
        """
        sent = 0
        have = min(self._conn.reader.buffered(), self._left)
        if have:
            chunk = self._conn.reader.read(have)
            if on_chunk:
                on_chunk(have)
            out.sendall(chunk)
            self._left -= have
            sent += have
        if self._left:
            sent += self._splice(out, on_chunk)
        self._done = True
        self._conn.response_done(self)
        return sent

    def _splice(self, out: socket.socket, on_chunk: Callable[[int], None] | None) -> int:
        src, dst = self._conn.sock.fileno(), out.fileno()
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        sent = 0
        try:
            with contextlib.suppress(OSError):  # a smaller pipe only means more calls
                fcntl.fcntl(write_end, F_SETPIPE_SZ, SPLICE_PIPE)
            while self._left:
                try:
                    n = os.splice(src, write_end, min(self._left, SPLICE_PIPE), flags=os.SPLICE_F_MOVE)
                except BlockingIOError:
                    self._conn.broken()
                    raise TimeoutError("timed out reading from the server") from None
                if not n:
                    self._conn.broken()
                    raise stdlib_http().IncompleteRead(b"", self._left)
                if on_chunk:
                    on_chunk(n)
                self._left -= n
                while n:
                    moved = os.splice(read_end, dst, n, flags=os.SPLICE_F_MOVE | os.SPLICE_F_MORE)
                    n -= moved
                    sent += moved
        except BaseException:
            self._done = True
            self._conn.broken()
            raise
        finally:
            os.close(read_end)
            os.close(write_end)
        return sent

    @property
    def remaining(self) -> int:
        return 0 if self._done else self._left

    @property
    def can_splice(self) -> bool:
        """Whether `splice_to` can send this body: a plain socket, a known length, Linux."""
        return SPLICE and not self._chunked and not isinstance(self._conn.sock, ssl.SSLSocket)

    def _read_plain(self, amount: int | None) -> bytes:
        want = self._left if amount is None or amount < 0 else min(amount, self._left)
        data = self._conn.reader.read(want)
        if len(data) < want:
            self._conn.broken()
            raise stdlib_http().IncompleteRead(data, want - len(data))
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, amount: int | None) -> bytes:
        out: list[bytes] = []
        wanted = amount if amount is not None and amount >= 0 else -1
        reader = self._conn.reader
        while wanted != 0:
            if self._chunk_left == 0:
                line = reader.readline(MAX_LINE)
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    self._conn.broken()
                    raise stdlib_http().IncompleteRead(b"".join(out)) from None
                if size == 0:
                    while reader.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._done = True
                    break
                self._chunk_left = size
            take = self._chunk_left if wanted < 0 else min(wanted, self._chunk_left)
            data = reader.read(take)
            if len(data) < take:
                self._conn.broken()
                raise stdlib_http().IncompleteRead(b"".join([*out, data]))
            out.append(data)
            self._chunk_left -= take
            if wanted > 0:
                wanted -= take
            if self._chunk_left == 0:
                reader.readline(MAX_LINE)  # the CRLF after a chunk
        return b"".join(out)

    def close(self) -> None:
        """Stop reading; a body left unread makes the connection unusable, so it is closed."""
        if not self._done:
            self._done = True
            self._conn.broken()


class ResponseBody:
    """A request body that is the rest of a response being read on another connection: between two
    plain sockets it goes through a kernel pipe, never copied into this process (`Response.splice_to`);
    otherwise it is read a chunk at a time into one buffer. `on_chunk(n)` sees every piece."""

    def __init__(
        self, response: Response, on_chunk: Callable[[int], None] | None = None, chunk: int = 1024 * 1024
    ) -> None:
        self.response = response
        self.on_chunk = on_chunk
        self._chunk = chunk

    def __iter__(self) -> Iterator[memoryview]:
        buffer = memoryview(bytearray(self._chunk))
        try:
            while n := self.response.readinto(buffer):
                if self.on_chunk:
                    self.on_chunk(n)
                yield buffer[:n]
        finally:
            self.response.close()


class Connection:
    """One TCP (or TLS) connection to a server; `broken` once anything went wrong on it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        read_timeout: float,
        context: ssl.SSLContext | None = None,
    ) -> None:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(read_timeout)
        else:
            # The kernel keeps the timeouts: no `poll` before each `recv` and `send` (see the module note).
            sock.settimeout(None)
            seconds = int(read_timeout)
            timeval = struct.pack("ll", seconds, int((read_timeout - seconds) * 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        self.sock = sock
        self.context_free = context is None
        self.reader = SocketReader(sock)
        self.usable = True
        self.busy = False

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        *,
        stream: Iterable[bytes | memoryview] | None = None,
        length: int = 0,
    ) -> Response:
        """Send a request and read the answer's status and headers.

        The body is `body`, or `length` bytes taken from `stream` as they come (fewer or more is an
        error, and the connection is closed so the server never takes a short body for a whole one).
        """
        if self.busy:
            raise stdlib_http().CannotSendRequest("the previous response was not read to its end")
        if stream is not None:
            head = request_head(method, target, headers, length)
        elif body is not None or method in {"PUT", "POST"}:
            head = request_head(method, target, headers, len(body or b""))
        else:
            head = request_head(method, target, headers, None)
        self.busy = True
        try:
            return self._exchange(method, head, body, stream, length)
        except BlockingIOError:
            self.broken()
            raise TimeoutError("timed out sending to the server") from None
        except BaseException:
            self.broken()
            raise

    def _exchange(
        self,
        method: str,
        head: bytes,
        body: bytes | None,
        stream: Iterable[bytes | memoryview] | None,
        length: int,
    ) -> Response:
        if stream is not None:
            self.sock.sendall(head)
            self._send_stream(stream, length)
        elif body and len(body) <= 256 * 1024:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            if body:
                self.sock.sendall(body)
        return self._response(method)

    def _send_stream(self, stream: Iterable[bytes | memoryview], length: int) -> None:
        if isinstance(stream, ResponseBody) and stream.response.can_splice and self.context_free:
            if stream.response.remaining != length:
                raise stdlib_http().HTTPException(
                    f"the body holds {stream.response.remaining} bytes, not the announced {length}"
                )
            stream.response.splice_to(self.sock, stream.on_chunk)
            return
        sent = 0
        for chunk in stream:
            sent += len(chunk)
            if sent > length:
                raise stdlib_http().HTTPException(f"the body grew past its announced {length} bytes")
            self.sock.sendall(chunk)
        if sent != length:
            raise stdlib_http().HTTPException(f"the body ended after {sent} of {length} bytes")

    def _response(self, method: str) -> Response:
        status, headers = parse_head(self._read_head())
        if len(headers) > MAX_HEADERS:
            raise stdlib_http().HTTPException("response headers too long")
        if status == 100:  # an interim answer; the real one follows
            return self._response(method)
        no_body = method == "HEAD" or status in (204, 304)
        response = Response(self, status, headers, no_body)
        if response.getheader("connection").lower() == "close":
            self.usable = False
        return response

    def _read_head(self) -> bytes:
        """The status line and headers up to the blank line, taken from the read buffer in one piece
        when they arrived together (nearly always), line by line otherwise."""
        if not self.reader.fill():
            raise stdlib_http().RemoteDisconnected("the server closed the connection without answering")
        head = self.reader.take_through(b"\r\n\r\n")
        if head is not None:
            return head
        lines: list[bytes] = []
        while True:
            raw = self.reader.readline(MAX_LINE + 1)
            if not raw:
                raise stdlib_http().RemoteDisconnected("the connection closed inside the headers")
            if len(raw) > MAX_LINE or len(lines) > MAX_HEADERS:
                raise stdlib_http().HTTPException("response headers too long")
            lines.append(raw.rstrip(b"\r\n") + b"\r\n")
            if len(lines) > 1 and raw in (b"\r\n", b"\n"):
                return b"".join(lines)

    def response_done(self, response: Response) -> None:
        self.busy = False
        if response.getheader("connection").lower() == "close":
            self.usable = False

    def broken(self) -> None:
        self.usable = False
        self.busy = False
        self.close()

    def close(self) -> None:
        self.usable = False
        self.sock.close()


class ThreadConnections:
    """One kept-alive connection per calling thread to one server (HTTP, or TLS with `context`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.host, self.port, self.context = host, port, context
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._local = threading.local()
        self._open: set[Connection] = set()  # every thread's, so close() reaches all
        self._open_lock = threading.Lock()

    def connection(self) -> tuple[Connection, bool]:
        """This thread's connection and whether it was used before (it may have gone stale)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.usable and not conn.busy:
            return conn, True
        self.drop()
        conn = Connection(
            self.host,
            self.port,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            context=self.context,
        )
        self._local.conn = conn
        with self._open_lock:
            self._open.add(conn)
        return conn, False

    def drop(self) -> None:
        """Close this thread's connection (after a failure, or a response left unread)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._open_lock:
                self._open.discard(conn)
            conn.close()

    def send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        stream: Iterable[bytes | memoryview] | None = None,
        length: int = 0,
    ) -> Response:
        """Send one request; a kept-alive connection the server has since closed is replaced once.

        (Only when nothing of a streamed body was consumed yet: a stream cannot be replayed.)
        """
        for attempt in (1, 2):
            conn, reused = self.connection()
            try:
                return conn.request(method, target, headers, body, stream=stream, length=length)
            except (stdlib_http().RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.drop()
                if not reused or attempt == 2 or stream is not None:
                    raise
            except BaseException:
                self.drop()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every connection opened here, in whichever thread; call when no request runs."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()
