"""A TCP forwarder between network namespaces: listens inside the node's namespace, connects from the host's.

The dev stack's servers listen on the host's loopback only; the node (kubelet, containerd and the pods)
lives in a network namespace of its own. This process opens its listening sockets inside the node's
namespace (a socket keeps the namespace it was made in) and opens the onward connections in its own, so
`https://127.0.0.1:PORT` means the same API server to the kubelet as to the host, and a pod reaches a
centre at the node's address.

The other way, `--connect SOCKET` serves HTTP CONNECT on a Unix socket: the API server's egress
selector sends its traffic to the cluster (to kubelets: `kubectl logs`, `exec`, `port-forward`; to
pods and services) there, and the tunnel is opened inside the node's namespace when the address is in
`--inside NET` (the node's subnet), from the host's otherwise. Run as
`python -m datacloud.devstack.forward NETNS [--connect SOCKET --inside NET] LISTEN=TARGET ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the body in the network namespace at `netns` (a /proc/PID/ns/net path), then come back."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def parse(rule: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """`10.88.0.1:9000=127.0.0.1:9000` → ((listen host, port), (target host, port))."""
    listen, _, target = rule.partition("=")
    lhost, _, lport = listen.rpartition(":")
    thost, _, tport = target.rpartition(":")
    return (lhost, int(lport)), (thost, int(tport))


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _handler(target: tuple[str, int]):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle


async def _dial(
    netns: str, inner: ipaddress.IPv4Network | ipaddress.IPv6Network, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to host:port, made inside the node's namespace when host is in `inner`."""
    sock = None
    if ipaddress.ip_address(host) in inner:
        with inside(netns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # keeps the namespace it was made in
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 10)
        return await asyncio.open_connection(sock=sock)
    return await asyncio.wait_for(asyncio.open_connection(host, port), 10)


def _connect_handler(netns: str, inner: ipaddress.IPv4Network | ipaddress.IPv6Network):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = request.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
            host, _, port = target.rpartition(":")
            if method != "CONNECT":
                raise ValueError(method)
            up_reader, up_writer = await _dial(netns, inner, host.strip("[]"), int(port))
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            with contextlib.suppress(OSError):
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle


async def _connect_server(netns: str, path: str, inner: str) -> asyncio.Server | None:
    """The CONNECT proxy on `path`; None when another node's forwarder serves it already."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return None  # answered: in use
    except OSError:
        Path(path).unlink(missing_ok=True)  # left by a node that ended
    finally:
        probe.close()
    return await asyncio.start_unix_server(_connect_handler(netns, ipaddress.ip_network(inner)), path=path)


async def serve(netns: str, rules: list[str], connect: str | None = None, inner: str = "") -> None:
    parsed = [parse(r) for r in rules]
    with inside(netns):
        sockets = [listening_socket(*listen) for listen, _ in parsed]
    servers = [
        await asyncio.start_server(_handler(target), sock=sock)
        for sock, (_, target) in zip(sockets, parsed, strict=True)
    ]
    if connect:
        proxy = await _connect_server(netns, connect, inner)
        print(f"egress proxy at {connect}" if proxy else f"egress proxy at {connect} served by another node")
        servers += [proxy] if proxy else []
    print(f"forwarding {len(servers)} addresses into {netns}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(
            "usage: python -m datacloud.devstack.forward NETNS [--connect SOCKET --inside NET] "
            "LISTEN=TARGET ...",
            file=sys.stderr,
        )
        return 2
    netns, rest = argv[0], argv[1:]
    connect = inner = None
    if rest[:1] == ["--connect"]:
        connect, inner, rest = rest[1], rest[3], rest[4:]
    asyncio.run(serve(netns, rest, connect, inner or ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
