"""The shared cache of DataCentres: a health change is never hidden by a read that was in flight."""

from __future__ import annotations

import threading
from typing import Any

from datacloud.reconcile.centres import CentreCache


class SlowKube:
    """Answers a DataCentre's health as it is when the read *started*; the first read is held until
    released, as a GET in flight while the probe writes the new health."""

    def __init__(self) -> None:
        self.health = "Down"
        self.reads = 0
        self.first_started = threading.Event()
        self.release_first = threading.Event()

    def get(self, plural: str, name: str) -> dict[str, Any]:
        seen = self.health
        self.reads += 1
        if self.reads == 1:
            self.first_started.set()
            assert self.release_first.wait(10)
        return {"metadata": {"name": name}, "status": {"health": seen}}


def test_a_read_in_flight_across_a_health_change_is_not_kept() -> None:
    kube = SlowKube()
    cache = CentreCache(kube)  # type: ignore[arg-type]
    answers: list[str] = []
    reader = threading.Thread(
        target=lambda: answers.append(cache.get("datacentres", "near")["status"]["health"])
    )
    reader.start()
    assert kube.first_started.wait(10)
    kube.health = "Up"  # the probe writes the new health, then announces it
    cache.clear()
    kube.release_first.set()
    reader.join(10)
    assert answers == ["Down"]  # that caller got what its read saw
    assert cache.get("datacentres", "near")["status"]["health"] == "Up"  # the runs the change woke see Up
    assert kube.reads == 2


def test_reads_are_kept_for_the_ttl_when_nothing_changed() -> None:
    kube = SlowKube()
    kube.reads = 1  # no held read
    cache = CentreCache(kube)  # type: ignore[arg-type]
    assert cache.get("datacentres", "near")["status"]["health"] == "Down"
    kube.health = "Up"
    assert cache.get("datacentres", "near")["status"]["health"] == "Down"  # cached: no change announced
    assert kube.reads == 2
