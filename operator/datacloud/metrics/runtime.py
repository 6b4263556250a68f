"""The runtime's lanes: how many objects each runs, how many are due and waiting for a worker, and how
long the longest-waiting has waited (a lane that falls behind shows here before objects go stale)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .registry import REGISTRY


class LaneFigures(Protocol):
    @property
    def objects(self) -> int: ...
    @property
    def due(self) -> int: ...
    @property
    def oldest_due_seconds(self) -> float: ...


_lanes: dict[str, tuple[int, Callable[[], LaneFigures]]] = {}


def register_lane(name: str, workers: int, stats: Callable[[], LaneFigures]) -> None:
    _lanes[name] = (workers, stats)


class _Collector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "objects": GaugeMetricFamily(
                "datacloud_runtime_objects", "Objects run by the lane.", labels=["lane"]
            ),
            "due": GaugeMetricFamily(
                "datacloud_runtime_due_objects", "Objects due and waiting for a worker.", labels=["lane"]
            ),
            "workers": GaugeMetricFamily(
                "datacloud_runtime_workers", "Worker threads of the lane.", labels=["lane"]
            ),
            "oldest": GaugeMetricFamily(
                "datacloud_runtime_oldest_due_seconds",
                "How long the longest-waiting due object has waited for a worker.",
                labels=["lane"],
            ),
        }
        for name, (workers, stats) in sorted(_lanes.items()):
            figures = stats()
            families["objects"].add_metric([name], figures.objects)
            families["due"].add_metric([name], figures.due)
            families["workers"].add_metric([name], workers)
            families["oldest"].add_metric([name], round(figures.oldest_due_seconds, 3))
        yield from families.values()


REGISTRY.register(_Collector())
