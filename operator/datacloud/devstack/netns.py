"""A centre cut off by a network partition, for the DR tests and the nemesis: a network namespace joined
to the host (operator, API server, the applications that follow the published endpoint) by a veth pair
that can be cut and healed while the server inside keeps running with its data.

Some applications live inside the centre: a thread can enter the namespace (setns(2) moves only the
calling thread), so a writer or a probe running there still reaches the store while the host cannot.
That is the hard case for fencing: a copy cut off from the operator but alive to its local writers.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CLONE_NEWNET = 0x40000000
INSIDE_WORKERS = 4  # threads for the applications inside the centre


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def enter(netns: str) -> None:
    """Move the calling thread into a network namespace (the rest of the process stays where it is)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
    finally:
        os.close(fd)


class Link:
    """A network namespace joined to the host by a veth pair on the /30 `subnet`.1 (host) and .2 (centre);
    each Link alive at the same time needs a subnet of its own."""

    def __init__(self, subnet: str, prefix: str = "dcnet") -> None:
        tag = os.urandom(2).hex()
        self.netns, self.host_if, self.ns_if = f"{prefix}{tag}", f"vh{tag}", f"vn{tag}"
        self.host_ip, self.centre_ip = f"{subnet}.1", f"{subnet}.2"
        self.cut_off = False
        self._inside: ThreadPoolExecutor | None = None

    def __enter__(self) -> Link:
        ip("netns", "add", self.netns)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        ip("link", "set", self.ns_if, "netns", self.netns)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("netns", "exec", self.netns, "ip", "addr", "add", f"{self.centre_ip}/30", "dev", self.ns_if)
        ip("netns", "exec", self.netns, "ip", "link", "set", self.ns_if, "up")
        ip("netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        return self

    def run_inside(self, fn: Any, *args: Any) -> Any:
        """Run `fn` on a thread inside the namespace: it reaches the centre whatever the link does."""
        if self._inside is None:
            self._inside = ThreadPoolExecutor(
                INSIDE_WORKERS, thread_name_prefix=self.netns, initializer=enter, initargs=(self.netns,)
            )
        return self._inside.submit(fn, *args).result()

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")
        self.cut_off = True

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")
        # Taking the link down drops its address's routes on some kernels; replace puts them back.
        ip("addr", "replace", f"{self.host_ip}/30", "dev", self.host_if)
        self.cut_off = False

    def __exit__(self, *_: object) -> None:
        if self._inside is not None:
            self._inside.shutdown(wait=False, cancel_futures=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10, check=False)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=10, check=False)
