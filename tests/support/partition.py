"""A network partition for the DR tests: a network namespace joined to the host by a veth pair that can be
cut and healed while the server inside keeps running with its data."""

from __future__ import annotations

import os
import subprocess

from datacloud.devstack import manifests

HOST_SIDE, CENTRE_SIDE = "10.252.7.1", "10.252.7.2"  # a test host of our own, inside this machine


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Link:
    """A network namespace joined to the host by a veth pair that can be cut and healed."""

    def __init__(self) -> None:
        tag = os.urandom(2).hex()
        self.netns, self.host_if, self.ns_if = f"dcpart{tag}", f"vdh{tag}", f"vdn{tag}"

    def __enter__(self) -> Link:
        ip("netns", "add", self.netns)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        ip("link", "set", self.ns_if, "netns", self.netns)
        ip("addr", "add", f"{HOST_SIDE}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("netns", "exec", self.netns, "ip", "addr", "add", f"{CENTRE_SIDE}/30", "dev", self.ns_if)
        ip("netns", "exec", self.netns, "ip", "link", "set", self.ns_if, "up")
        ip("netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        return self

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")
        ip("addr", "replace", f"{HOST_SIDE}/30", "dev", self.host_if)

    def __exit__(self, *_: object) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10, check=False)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=10, check=False)


def replica_on_partitioned_prod(name: str, namespace: str, bucket: str, rpo: str) -> dict[str, object]:
    """A DRReplica whose active copy is on the partitioned production centre (`part-prod`), with one
    Continuous target on the same-city centre and automatic failover."""
    return manifests.replica(
        name, namespace, bucket, "Automatic", rpo, centre="part-prod", remote=False, down_for=None
    )
