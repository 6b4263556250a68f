"""The zone caches' indexes by namespace and by zone follow puts, moves between zones and deletes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from datacloud.adapters.kube import ApiError
from datacloud.reconcile.datazone_cache import Informer


def informer(changes: list[str | None]) -> Informer:
    return Informer(
        None, "NetworkPolicy", "/x", lambda o: o["metadata"]["name"], lambda z, _: changes.append(z)
    )  # type: ignore[arg-type]


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


class Events:
    """A Kube stand-in whose watch yields given events once (the informer's HTTP side is not under test)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def watch(self, path: str, query: dict[str, Any], timeout: int) -> tuple[None, Any]:
        return None, iter(self.events)


def event(kind: str, ns: str, name: str, zone: str, version: str) -> dict[str, Any]:
    body = obj(ns, name, zone)
    body["metadata"]["resourceVersion"] = version
    return {"type": kind, "object": body}


def watched(
    events: list[dict[str, Any]], expected: list[tuple[str, str, str]], kind: str = "NetworkPolicy"
) -> tuple[Informer, list[Any]]:
    changes: list[Any] = []
    inf = Informer(Events(events), kind, "/x", lambda o: dict(o), lambda z, c: changes.append(z))  # type: ignore[arg-type]
    for ns, name, version in expected:
        inf.expect(ns, name, version)
    inf._watch("1")
    return inf, changes


def test_the_zones_own_write_coming_back_does_not_wake_it() -> None:
    inf, changes = watched([event("ADDED", "a", "p1", "z1", "5")], [("a", "p1", "5")])
    assert changes == []
    assert inf.get("a", "p1")["metadata"]["resourceVersion"] == "5"  # the cache still follows it


def test_any_other_change_wakes_the_zone() -> None:
    later = [event("ADDED", "a", "p1", "z1", "5"), event("MODIFIED", "a", "p1", "z1", "6")]
    _, changes = watched(later, [("a", "p1", "5")])
    assert changes == ["z1"]  # the edit after the zone's write (told once: old and new labels say z1)
    _, changes = watched([event("ADDED", "a", "p1", "z1", "7")], [("a", "p1", "5")])
    assert changes == ["z1"]  # not the version the zone wrote
    _, changes = watched([event("ADDED", "a", "p2", "z1", "5")], [("a", "p1", "5")])
    assert changes == ["z1"]  # another object
    _, changes = watched([event("DELETED", "a", "p1", "z1", "5")], [("a", "p1", "5")])
    assert changes == []  # nothing cached, nothing to tell (a delete is never taken for an echo)


def test_an_echo_that_moves_an_object_between_zones_still_wakes_the_zone_that_lost_it() -> None:
    events = [event("ADDED", "a", "p1", "z1", "4"), event("MODIFIED", "a", "p1", "z2", "5")]
    _, changes = watched(events, [("a", "p1", "5")])
    assert changes == ["z1", "z1"]  # the first event, then z1 losing p1; z2 wrote it and is not woken


def test_an_echo_that_already_arrived_is_not_expected_again() -> None:
    inf, changes = watched([event("ADDED", "a", "p1", "z1", "5")], [])
    assert changes == ["z1"]
    inf.expect("a", "p1", "5")  # the write's answer came after its event
    assert inf._echoes == {}


def test_a_quota_whose_usage_alone_changed_says_so() -> None:
    changes: list[Any] = []
    first = event("ADDED", "a", "q", "z1", "5")
    counted = event("MODIFIED", "a", "q", "z1", "6")
    counted["object"]["status"] = {"used": {"pods": "0"}}
    edited = event("MODIFIED", "a", "q", "z1", "7")
    edited["object"]["spec"] = {"hard": {"pods": "9"}}
    edited["object"]["status"] = {"used": {"pods": "0"}}
    project = lambda o: {**o, "status": {"used": (o.get("status") or {}).get("used") or {}}}  # noqa: E731
    inf = Informer(
        Events([first, counted, edited]), "ResourceQuota", "/x", project, lambda z, c: changes.append(c)
    )  # type: ignore[arg-type]
    inf._watch("1")
    assert [c.usage for c in changes] == [None, {"pods": "0"}, None]
    assert [c.version for c in changes] == ["5", "6", "7"]


class BrokenByStop:
    """A Kube stand-in whose watch breaks, as a closed connection does, once the informer is stopped."""

    def __init__(self, informer: list[Informer]) -> None:
        self.informer = informer

    def list_pages(self, path: str, query: dict[str, Any]) -> Any:
        return iter([{"items": [], "metadata": {"resourceVersion": "1"}}])

    def watch(self, path: str, query: dict[str, Any], timeout: int) -> tuple[None, Any]:
        def events() -> Any:
            self.informer[0].stop()
            raise ApiError("Unreachable", "watch on /x broke (ProtocolError)")
            yield  # a generator, like the real watch

        return None, events()


def test_a_watch_broken_by_stop_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """At shutdown the operator closes each watch itself; that is not the API server being unreachable,
    so nothing warns of it or says it is retrying."""
    holder: list[Informer] = []
    inf = Informer(BrokenByStop(holder), "NetworkPolicy", "/x", dict, lambda z, c: None)  # type: ignore[arg-type]
    holder.append(inf)
    with caplog.at_level(logging.WARNING, logger="datacloud"):
        inf.run()  # returns: a loop that retried would spin here until the test's timeout
    assert inf.synced.is_set()
    assert [r.getMessage() for r in caplog.records] == []
