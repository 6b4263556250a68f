"""Network partitions for the nemesis: a centre's store in a network namespace of its own
(`datacloud.devstack.netns`), its applications inside the namespace still reaching it while the host
cannot."""

from __future__ import annotations

from datacloud.devstack.netns import Link
from datacloud.devstack.objectstore import Centre


def nemesis_link(index: int) -> Link:
    """The link of the nemesis's `index`-th centre (one subnet each)."""
    return Link(f"10.253.{index}", prefix="dcnem")


def isolate(centre: Centre, link: Link) -> None:
    """Run the centre's store (same data, same port) inside the link's namespace. Its notifications
    would go to the operator's receiver on the host's loopback, which a namespace cannot reach: it runs
    without them, and the operator polls it."""
    centre.stop()
    centre.netns, centre.host = link.netns, link.centre_ip
    centre.event_webhook, centre.event_token = None, None
    centre.start()
