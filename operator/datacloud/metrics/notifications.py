"""Bucket event notifications the operator's receiver took in: accepted (handed to the followers of their
bucket) and refused (a wrong token or path, a body that is no notification). Compared with the writes a
store took, a shortfall shows notifications lost on the way (their objects wait for the next scan).
Misnamed: records whose ARN named another object than their bucket and key fields (both are followed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from .registry import REGISTRY

_counts: list[Callable[[], tuple[int, int, int]]] = []  # (accepted, refused, misnamed), once started


def register(counts: Callable[[], tuple[int, int, int]]) -> None:
    _counts[:] = [counts]


class _Collector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "datacloud_notifications", "Bucket event notifications received, by result.", labels=["result"]
        )
        accepted, refused, misnamed = _counts[0]() if _counts else (0, 0, 0)
        family.add_metric(["accepted"], accepted)
        family.add_metric(["refused"], refused)
        yield family
        yield CounterMetricFamily(
            "datacloud_notifications_misnamed",
            "Notification records whose ARN named another bucket or key than their name fields.",
            value=misnamed,
        )


REGISTRY.register(_Collector())
