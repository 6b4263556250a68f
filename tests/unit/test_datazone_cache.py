"""The zone caches' indexes by namespace and by zone follow puts, moves between zones and deletes."""

from __future__ import annotations

from typing import Any

from datacloud.reconcile.datazone_cache import Informer


def informer(changes: list[str | None]) -> Informer:
    return Informer(None, "NetworkPolicy", "/x", lambda o: o["metadata"]["name"], changes.append)  # type: ignore[arg-type]


def obj(ns: str, name: str, zone: str | None) -> dict[str, Any]:
    labels = {"datacloud.fujian.gov.cn/zone": zone} if zone else {}
    return {"metadata": {"namespace": ns, "name": name, "labels": labels}}


def test_indexes_follow_changes() -> None:
    inf = informer([])
    inf._put(("a", "p1"), inf._entry(obj("a", "p1", "z1")))
    inf._put(("a", "p2"), inf._entry(obj("a", "p2", "z1")))
    snapshot = inf.by_ns["a"]
    assert set(snapshot) == {"p1", "p2"}
    assert set(inf.by_zone["z1"]) == {("a", "p1"), ("a", "p2")}
    old = inf._put(("a", "p1"), inf._entry(obj("a", "p1", "z2")))  # relabelled to another zone
    assert old == ("z1", "p1")
    assert set(inf.by_zone["z1"]) == {("a", "p2")}
    assert set(inf.by_zone["z2"]) == {("a", "p1")}
    inf._put(("a", "p2"), None)
    assert set(inf.by_ns["a"]) == {"p1"}
    assert inf.by_zone["z1"] == {}
    assert set(snapshot) == {"p1", "p2"}  # what a reader already holds never changes under it
    assert inf.get("a", "p1") == "p1"
    assert inf.get("b", "p1") is None
