"""A GET's body handed to a PUT as its body (`ResponseBody`): between two plain sockets it goes through a
kernel pipe (`splice`), otherwise a chunk at a time. Either way the target gets exactly the source's
bytes, however the network cuts them, or the PUT fails and its connection is closed so no store takes a
short body for a whole one."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.adapters import http11
from datacloud.adapters.http11 import ResponseBody
from datacloud.adapters.s3 import S3Endpoint
from datacloud.adapters.s3_wire import WireClient
from tests.support.servers import Listener


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data, b""
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


class Source(Listener):
    """Answers each GET with `body`, sent in `pieces` with short pauses between them (so the client's
    first receive holds the head and part of the body, and the rest arrives later), or stops after
    `cut_at` bytes of the body and closes."""

    def __init__(self, body: bytes, pieces: list[int], cut_at: int | None = None, stall: float = 0) -> None:
        self.body, self.pieces, self.cut_at, self.stall = body, pieces, cut_at, stall
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client may go away at any point
            while read_head(conn)[0]:
                head = b'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: %d\r\n\r\n' % len(self.body)
                end = len(self.body) if self.cut_at is None else self.cut_at
                points = [0, *sorted({p % (end + 1) for p in self.pieces}), end]
                conn.sendall(head + self.body[: points[1]])
                for a, b in itertools.pairwise(points[1:]):
                    time.sleep(0.002)
                    conn.sendall(self.body[a:b])
                if self.stall:
                    time.sleep(self.stall)
                if self.cut_at is not None:
                    break


class Target(Listener):
    """Reads each PUT's head and `content-length` bytes and answers with their MD5 as the ETag; what it
    received whole (`bodies`) and whether a connection ended inside a body (`short`)."""

    threaded = True

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.short = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while True:
                head, body = read_head(conn)
                if not head:
                    return
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    piece = conn.recv(1 << 20)
                    if not piece:
                        self.short += 1
                        return
                    body += piece
                self.bodies.append(body)
                etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
                conn.sendall(b'HTTP/1.1 200 OK\r\nETag: "%s"\r\nContent-Length: 0\r\n\r\n' % etag.encode())


def endpoint(server: Source | Target) -> S3Endpoint:
    return server.endpoint


@contextmanager
def servers(source: Source) -> Iterator[tuple[WireClient, WireClient, Target]]:
    target = Target()
    src = WireClient(endpoint(source), connect_timeout=2, read_timeout=1)
    dst = WireClient(endpoint(target), connect_timeout=2, read_timeout=2)
    try:
        yield src, dst, target
    finally:
        src.close()
        dst.close()
        source.close()
        target.close()


def pipe(src: WireClient, dst: WireClient, counted: list[int]) -> str:
    got = src.get_object(Bucket="b", Key="k")
    body = ResponseBody(got["Body"], counted.append)
    put = dst.put_object_stream(Bucket="b", Key="k2", Chunks=body, ContentLength=got["ContentLength"])
    return str(put["ETag"]).strip('"')


@pytest.fixture(params=["splice", "chunks"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a body is piped: through a kernel pipe, and read into this process a chunk at a time
    (TLS, or a system without `splice`)."""
    if request.param == "chunks":
        monkeypatch.setattr(http11, "SPLICE", False)
    elif not http11.SPLICE:
        pytest.skip("no splice on this system")
    return str(request.param)


@settings(max_examples=15, deadline=None)
@given(size=st.integers(0, 3 * 1024 * 1024), pieces=st.lists(st.integers(0, 3 * 1024 * 1024), max_size=6))
def test_the_target_gets_the_source_bytes_exactly(size: int, pieces: list[int]) -> None:
    for chunks_only in (False, True):
        body = os.urandom(size)
        with servers(Source(body, pieces)) as (src, dst, target):
            original = http11.SPLICE
            http11.SPLICE = original and not chunks_only
            try:
                counted: list[int] = []
                etag = pipe(src, dst, counted)
                # The connections stay usable: a second copy on the same ones.
                etag_again = pipe(src, dst, [])
            finally:
                http11.SPLICE = original
        assert target.bodies == [body, body]
        assert etag == etag_again == hashlib.md5(body, usedforsecurity=False).hexdigest()
        assert sum(counted) == size


def test_a_source_that_stops_mid_body_fails_the_put_and_closes_its_connection(way: str) -> None:
    body = os.urandom(2 * 1024 * 1024)
    with servers(Source(body, [100_000], cut_at=1_500_000)) as (src, dst, target):
        with pytest.raises(http.client.IncompleteRead):
            pipe(src, dst, [])
        deadline = time.monotonic() + 2
        while not target.short and time.monotonic() < deadline:
            time.sleep(0.01)
        assert target.bodies == []
        assert target.short == 1


def test_a_source_that_stalls_times_out_as_a_timeout(way: str) -> None:
    body = os.urandom(2 * 1024 * 1024)
    with servers(Source(body, [100_000], cut_at=1_500_000, stall=3)) as (src, dst, target):
        with pytest.raises(TimeoutError):
            pipe(src, dst, [])
        assert target.bodies == []


def test_a_body_of_another_length_than_announced_is_refused(way: str) -> None:
    body = os.urandom(300_000)
    with servers(Source(body, [])) as (src, dst, target):
        got = src.get_object(Bucket="b", Key="k")
        body_in = ResponseBody(got["Body"])
        with pytest.raises(http.client.HTTPException, match="announced"):
            dst.put_object_stream(Bucket="b", Key="k2", Chunks=body_in, ContentLength=299_999)
        assert target.bodies == []


def test_between_plain_sockets_the_body_never_enters_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past what arrived with the head, every byte goes through `splice`, none through `recv`."""
    if not http11.SPLICE:
        pytest.skip("no splice on this system")
    spliced: list[int] = []
    real_splice = os.splice

    def counting(src: int, dst: int, count: int, **kw: int) -> int:
        moved = real_splice(src, dst, count, **kw)
        spliced.append(moved)
        return moved

    monkeypatch.setattr(os, "splice", counting)
    body = os.urandom(3 * 1024 * 1024)
    with servers(Source(body, [10_000, 1_000_000])) as (src, dst, target):
        got = src.get_object(Bucket="b", Key="k")
        buffered = got["Body"]._conn.reader.buffered()
        dst.put_object_stream(Bucket="b", Key="k2", Chunks=ResponseBody(got["Body"]), ContentLength=len(body))
    assert target.bodies == [body]
    assert buffered < len(body)
    # Each move is counted twice: into the pipe and out of it.
    assert sum(spliced) == 2 * (len(body) - buffered)
