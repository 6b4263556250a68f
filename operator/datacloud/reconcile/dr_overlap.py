"""Overlapping DRReplicas: two replicas whose copies share keys are never both acted on.

A copy is a Place (centre, bucket, prefix); two places overlap when one contains the other (api/overlap).
Of two overlapping replicas the older one (creation time, then namespace/name) runs; the later one gets a
condition naming the other and does nothing (no fence, no follower, no Job, no action) until the overlap
is gone. A replica whose own copies overlap each other (a target inside its source, or two targets in one
another) gets a condition instead of a run, too.

Copies are compared by the store their centres name (`store_of`: the endpoint URL, normalised), not by the
centre's name: two DataCentres on one object store hold one set of buckets, and a target on the one inside
a source on the other is a copy into itself (its fence would close the source).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


StoreOf = Callable[[str], str]  # centre name → the store it names


def by_name(centre: str) -> str:
    """Each centre its own store: what is known without reading the DataCentres."""
    return f"centre:{centre}"


def place(copy: Copy, store_of: StoreOf = by_name) -> Place:
    return Place(store_of(copy.centre), copy.bucket, copy.prefix)


def describe(copy: Copy) -> str:
    return f"{copy.name} ({copy.centre}/{copy.bucket}/{copy.prefix})".replace("/)", ")")


def _one_store(a: Copy, b: Copy, store_of: StoreOf) -> str:
    """Said when two centres' names differ but their store is one."""
    if a.centre == b.centre:
        return ""
    return f" (centres {a.centre} and {b.centre} are one object store, {store_of(a.centre)})"


def within(spec: DRReplicaSpec, store_of: StoreOf = by_name) -> Conflict | None:
    """Two copies of one replica that share keys (replicating them into each other would loop)."""
    own = copies(spec)
    for i, a in enumerate(own):
        for b in own[i + 1 :]:
            if overlap(place(a, store_of), place(b, store_of)):
                return Conflict(
                    "OverlapsItself",
                    f"copies {describe(a)} and {describe(b)} overlap{_one_store(a, b, store_of)}: one "
                    "holds the other's keys; give them different buckets or prefixes that do not contain one "
                    "another",
                )
    return None


def _key(body: dict[str, Any]) -> tuple[str | None, str]:
    return body["metadata"].get("namespace"), str(body["metadata"]["name"])


def _order(body: dict[str, Any]) -> tuple[str, str, str]:
    meta = body["metadata"]
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta["name"]))


def between(
    me: dict[str, Any], spec: DRReplicaSpec, others: list[dict[str, Any]], store_of: StoreOf = by_name
) -> Conflict | None:
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
                if overlap(place(a, store_of), place(b, store_of)):
                    who = f"{other['metadata'].get('namespace')}/{other['metadata']['name']}"
                    return Conflict(
                        "OverlapsReplica",
                        f"copy {describe(a)} overlaps copy {describe(b)} of DRReplica {who}"
                        f"{_one_store(a, b, store_of)}, created "
                        "earlier; this replica does nothing until the overlap is gone",
                    )
    return None


@dataclass(frozen=True)
class _Listing:
    items: list[dict[str, Any]]
    keys: frozenset[tuple[str | None, str]]
    at_bucket: dict[str, list[int]]  # bucket name → positions in items
    at: float  # monotonic time the list was taken


class ReplicaList:
    """All DRReplicas, listed at most every LIST_EVERY_S seconds and shared by the replicas' runtimes,
    with an index of the replicas naming each bucket: a check compares a replica with those naming one
    of its buckets on any centre (two centres may be one store), not with all of them (a thousand
    replicas checking at once scanned a thousand each).

    A listing is replaced whole, never changed: a check the current listing can answer (it holds the
    replica and is fresh) is answered at once, without waiting behind a LIST another replica started
    (a replica just created needs one; while hundreds were applied at once, the replicas' second runs
    queued behind those LISTs for a third of the replica workers' time). One LIST at a time."""

    def __init__(self) -> None:
        self._listing = _Listing([], frozenset(), {}, 0.0)
        self._refreshing = threading.Lock()

    def items(self, kube: Kube, me: tuple[str | None, str]) -> list[dict[str, Any]]:
        """The list, fresh enough to hold `me` (so it holds every replica created before `me`)."""
        return self._holding(kube, me).items

    def sharing(
        self, kube: Kube, me: tuple[str | None, str], places: frozenset[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """The other replicas naming the bucket of one of `places` (centre, bucket) on any centre, in
        listing order, from a list fresh enough to hold `me`."""
        listing = self._holding(kube, me)
        positions = sorted({i for _, bucket in places for i in listing.at_bucket.get(bucket, ())})
        return [listing.items[i] for i in positions if _key(listing.items[i]) != me]

    def _holding(self, kube: Kube, me: tuple[str | None, str]) -> _Listing:
        listing = self._listing
        if _answers(listing, me):
            return listing
        with self._refreshing:
            listing = self._listing  # another replica's LIST, taken while this one waited, may do
            if _answers(listing, me):
                return listing
            items = kube.list(PLURAL)
            at_bucket: dict[str, list[int]] = {}
            for i, body in enumerate(items):
                for bucket in {b for _, b in named_buckets(body)}:
                    at_bucket.setdefault(bucket, []).append(i)
            listing = _Listing(items, frozenset(_key(o) for o in items), at_bucket, time.monotonic())
            self._listing = listing
            return listing


def _answers(listing: _Listing, me: tuple[str | None, str]) -> bool:
    return me in listing.keys and time.monotonic() - listing.at < LIST_EVERY_S


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
