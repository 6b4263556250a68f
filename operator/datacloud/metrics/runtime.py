"""The runtime's lanes: how many objects each runs, how many are due and waiting for a worker, and how
long the longest-waiting has waited (a lane that falls behind shows here before objects go stale); and
the operator's threads by pool, so a pool that grows shows by name."""

from __future__ import annotations

import re
import threading
from collections import Counter
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


def thread_pool(name: str) -> str:
    """A thread's pool: its name without the worker number (`replica-3` → `replica`,
    `Thread-12 (process_request_thread)` → `Thread (process_request_thread)`)."""
    return re.sub(r"[-_]\d+", "", name)


def threads_by_pool() -> Counter[str]:
    return Counter(thread_pool(t.name) for t in threading.enumerate())


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
        threads = GaugeMetricFamily(
            "datacloud_operator_threads", "The operator's threads, by pool.", labels=["pool"]
        )
        for pool, count in sorted(threads_by_pool().items()):
            threads.add_metric([pool], count)
        yield threads


REGISTRY.register(_Collector())
