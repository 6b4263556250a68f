"""A network partition for the DR tests: production's store in a network namespace of its own
(`datacloud.devstack.netns`), on a subnet no other test uses."""

from __future__ import annotations

from datacloud.devstack import manifests
from datacloud.devstack.netns import Link

SUBNET = "10.252.7"  # a test host of our own, inside this machine


def partition() -> Link:
    """The link to the partitioned production centre (its store listens on `link.centre_ip`)."""
    return Link(SUBNET, prefix="dcpart")


def replica_on_partitioned_prod(name: str, namespace: str, bucket: str, rpo: str) -> dict[str, object]:
    """A DRReplica whose active copy is on the partitioned production centre (`part-prod`), with one
    Continuous target on the same-city centre and automatic failover."""
    return manifests.replica(
        name, namespace, bucket, "Automatic", rpo, centre="part-prod", remote=False, down_for=None
    )
