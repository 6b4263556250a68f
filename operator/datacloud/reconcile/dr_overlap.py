"""Overlapping DRReplicas: two replicas whose copies share keys are never both acted on.

A copy is a Place (centre, bucket, prefix); two places overlap when one contains the other (api/overlap).
Of two overlapping replicas the older one (creation time, then namespace/name) runs; the later one gets a
condition naming the other and does nothing (no fence, no follower, no Job, no action) until the overlap
is gone. A replica whose own copies overlap each other (a target inside its source, or two targets in one
another) gets a condition instead of a run, too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..adapters.kube import Kube
from ..api.drreplica import DRReplicaSpec
from ..api.overlap import Place, overlap
from ..failover.topology import Copy, copies

PLURAL = "drreplicas"
LIST_EVERY_S = 2.0


@dataclass(frozen=True)
class Conflict:
    reason: str  # OverlapsReplica | OverlapsItself
    message: str


def place(copy: Copy) -> Place:
    return Place(copy.centre, copy.bucket, copy.prefix)


def describe(copy: Copy) -> str:
    return f"{copy.name} ({copy.centre}/{copy.bucket}/{copy.prefix})".replace("/)", ")")


def within(spec: DRReplicaSpec) -> Conflict | None:
    """Two copies of one replica that share keys (replicating them into each other would loop)."""
    own = copies(spec)
    for i, a in enumerate(own):
        for b in own[i + 1 :]:
            if overlap(place(a), place(b)):
                return Conflict(
                    "OverlapsItself",
                    f"copies {describe(a)} and {describe(b)} overlap: one holds the other's keys; "
                    "give them different buckets or prefixes that do not contain one another",
                )
    return None


def _key(body: dict[str, Any]) -> tuple[str | None, str]:
    return body["metadata"].get("namespace"), str(body["metadata"]["name"])


def _order(body: dict[str, Any]) -> tuple[str, str, str]:
    meta = body["metadata"]
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta["name"]))


def between(me: dict[str, Any], spec: DRReplicaSpec, others: list[dict[str, Any]]) -> Conflict | None:
    """The first older replica sharing keys with this one; None when there is none."""
    mine = _order(me)
    for other in sorted(others, key=_order):
        if _order(other) >= mine or other["metadata"].get("deletionTimestamp"):
            continue
        try:
            theirs = DRReplicaSpec.model_validate(other.get("spec") or {})
        except ValidationError:
            continue
        for a in copies(spec):
            for b in copies(theirs):
                if overlap(place(a), place(b)):
                    who = f"{other['metadata'].get('namespace')}/{other['metadata']['name']}"
                    return Conflict(
                        "OverlapsReplica",
                        f"copy {describe(a)} overlaps copy {describe(b)} of DRReplica {who}, created "
                        "earlier; this replica does nothing until the overlap is gone",
                    )
    return None


class ReplicaList:
    """All DRReplicas, listed at most every LIST_EVERY_S seconds and shared by the replicas' runtimes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._at = 0.0

    def items(self, kube: Kube, me: tuple[str | None, str]) -> list[dict[str, Any]]:
        """The list, fresh enough to hold `me` (so it holds every replica created before `me`)."""
        with self._lock:
            listed = any(_key(o) == me for o in self._items)
            if not listed or time.monotonic() - self._at >= LIST_EVERY_S:
                self._items = kube.list(PLURAL)
                self._at = time.monotonic()
            return self._items


REPLICAS = ReplicaList()


def conflict(kube: Kube, body: dict[str, Any], spec: DRReplicaSpec) -> Conflict | None:
    found = within(spec)
    if found is not None:
        return found
    me = _key(body)
    others = [o for o in REPLICAS.items(kube, me) if _key(o) != me]
    return between(body, spec, others)
