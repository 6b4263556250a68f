"""Network partitions for the nemesis: a centre's store in a network namespace of its own, joined to the
host (operator, API server, the applications that follow the published endpoint) by a veth pair that
can be cut and healed while the store runs on with its data.

Some applications live inside the centre: a thread can enter the namespace (setns(2) moves only the
calling thread), so a writer or a probe running there still reaches the store while the host cannot.
That is the hard case for fencing — a copy cut off from the operator but alive to its local writers.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from datacloud.devstack.objectstore import Centre

CLONE_NEWNET = 0x40000000


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
    """A network namespace joined to the host by a veth pair (subnet 10.253.<index>.0/30)."""

    def __init__(self, index: int) -> None:
        tag = os.urandom(2).hex()
        self.netns, self.host_if, self.ns_if = f"dcnem{tag}", f"vnh{tag}", f"vnn{tag}"
        self.host_ip, self.centre_ip = f"10.253.{index}.1", f"10.253.{index}.2"
        self.cut_off = False
        self.inside: ThreadPoolExecutor | None = None

    def __enter__(self) -> Link:
        ip("netns", "add", self.netns)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        ip("link", "set", self.ns_if, "netns", self.netns)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("netns", "exec", self.netns, "ip", "addr", "add", f"{self.centre_ip}/30", "dev", self.ns_if)
        ip("netns", "exec", self.netns, "ip", "link", "set", self.ns_if, "up")
        ip("netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        # Threads for the applications inside the centre: they reach the store whatever the link does.
        self.inside = ThreadPoolExecutor(
            4, thread_name_prefix=self.netns, initializer=enter, initargs=(self.netns,)
        )
        return self

    def run_inside(self, fn: Any, *args: Any) -> Any:
        assert self.inside is not None
        return self.inside.submit(fn, *args).result()

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")
        self.cut_off = True

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")
        ip("addr", "replace", f"{self.host_ip}/30", "dev", self.host_if)
        self.cut_off = False

    def __exit__(self, *_: object) -> None:
        if self.inside is not None:
            self.inside.shutdown(wait=False, cancel_futures=True)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10, check=False)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=10, check=False)


def isolate(centre: Centre, link: Link) -> None:
    """Run the centre's store (same data, same port) inside the link's namespace. Its notifications
    would go to the operator's receiver on the host's loopback, which a namespace cannot reach: it runs
    without them, and the operator polls it."""
    centre.stop()
    centre.netns, centre.host = link.netns, link.centre_ip
    centre.event_webhook, centre.event_token = None, None
    centre.start()
