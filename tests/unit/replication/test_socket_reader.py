"""The connection's read buffer gives the bytes the server sent, in order, however the network cut them
into receives and whatever mix of reads the response parser makes."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.adapters.http11 import SocketReader


class Arrivals:
    """Stands in for a socket: each receive returns at most the next piece that arrived (the way the
    kernel hands over a TCP stream), then b"" once the server closed."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = [p for p in pieces if p]

    def recv(self, amount: int) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces[0]
        self.pieces[0] = piece[amount:]
        if not self.pieces[0]:
            self.pieces.pop(0)
        return piece[:amount]

    def recv_into(self, view: memoryview) -> int:
        data = self.recv(len(view))
        view[: len(data)] = data
        return len(data)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


reads = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(0, 300)),
        st.tuples(st.just("readinto"), st.integers(1, 300)),
        st.tuples(st.just("readline"), st.integers(1, 80)),
        st.tuples(st.just("through"), st.sampled_from([b"\r\n\r\n", b"\n", b"x"])),
    ),
    max_size=30,
)
streams = st.lists(st.sampled_from([b"\r\n", b"\n", b"x", b"HTTP/1.1 200 OK", b"\r\n\r\n", b"\xff\x00"]))


@settings(max_examples=400, deadline=None)
@given(streams, st.lists(st.integers(0, 10_000), max_size=12), reads, st.integers(1, 64))
def test_reads_return_the_stream_in_order(
    parts: list[bytes], cuts: list[int], steps: list[tuple[str, object]], size: int
) -> None:
    data = b"".join(parts) * 3
    reader = SocketReader(Arrivals(cut(data, cuts)), size=size)  # type: ignore[arg-type]
    expected = io.BytesIO(data)
    got: list[bytes] = []
    for step, arg in steps:
        if step == "read":
            assert isinstance(arg, int)
            piece = reader.read(arg)
            assert piece == expected.read(arg)  # all asked for, short only at the end of the stream
        elif step == "readinto":
            assert isinstance(arg, int)
            buffer = memoryview(bytearray(arg))
            n = reader.readinto(buffer)
            piece = bytes(buffer[:n])
            assert piece == expected.read(n)
            assert n > 0 or not expected.read(1)  # 0 only at the end
        elif step == "readline":
            assert isinstance(arg, int)
            piece = reader.readline(arg)
            assert piece == expected.readline(arg)
        else:
            assert isinstance(arg, bytes)
            piece = reader.take_through(arg) or b""
            if piece:  # only from what is buffered: the marker ends it and appears nowhere before
                assert piece.find(arg) == len(piece) - len(arg)
                assert piece == expected.read(len(piece))
        got.append(piece)
    rest = reader.read(len(data))
    assert b"".join(got) + rest == data
