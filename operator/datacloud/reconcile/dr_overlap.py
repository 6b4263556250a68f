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
    """All DRReplicas, listed at most every LIST_EVERY_S seconds and shared by the replicas' runtimes,
    with an index of the replicas naming each (centre, bucket): a check compares a replica with those
    sharing a bucket with it, not with all of them (a thousand replicas checking at once scanned a
    thousand each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []
        self._keys: set[tuple[str | None, str]] = set()
        self._at_place: dict[tuple[str, str], list[int]] = {}  # (centre, bucket) → positions in _items
        self._at = 0.0

    def items(self, kube: Kube, me: tuple[str | None, str]) -> list[dict[str, Any]]:
        """The list, fresh enough to hold `me` (so it holds every replica created before `me`)."""
        with self._lock:
            self._refresh(kube, me)
            return self._items

    def sharing(
        self, kube: Kube, me: tuple[str | None, str], places: frozenset[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """The other replicas naming one of `places` (centre, bucket), in listing order, from a list
        fresh enough to hold `me`."""
        with self._lock:
            self._refresh(kube, me)
            positions = sorted({i for p in places for i in self._at_place.get(p, ())})
            return [self._items[i] for i in positions if _key(self._items[i]) != me]

    def _refresh(self, kube: Kube, me: tuple[str | None, str]) -> None:  # caller holds _lock
        if me in self._keys and time.monotonic() - self._at < LIST_EVERY_S:
            return
        self._items = kube.list(PLURAL)
        self._at = time.monotonic()
        self._keys = {_key(o) for o in self._items}
        self._at_place = {}
        for i, body in enumerate(self._items):
            for pair in named_buckets(body):
                self._at_place.setdefault(pair, []).append(i)


def named_buckets(body: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """The (centre, bucket) of every copy a replica's spec names, read from the raw spec (an older
    replica's spec is not validated again for each check; only replicas sharing one can overlap)."""
    spec = body.get("spec") or {}
    places = [spec.get("source") or {}, *(spec.get("targets") or [])]
    return frozenset(
        (str(p.get("centre")), str(p.get("bucket")))
        for p in places
        if isinstance(p, dict) and p.get("bucket")
    )


REPLICAS = ReplicaList()


def conflict(kube: Kube, body: dict[str, Any], spec: DRReplicaSpec) -> Conflict | None:
    found = within(spec)
    if found is not None:
        return found
    me = _key(body)
    others = [o for o in REPLICAS.items(kube, me) if _key(o) != me]
    return between(body, spec, others)
