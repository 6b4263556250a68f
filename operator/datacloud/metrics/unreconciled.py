"""Objects the operator has not reconciled: status missing, or behind the object's generation.

Fed from every watch event of every datacloud kind (not from the runtimes: an object no runtime ever
picked up is exactly what this must show). Counted at scrape time, per kind, once an object has been
behind for longer than `THRESHOLD_S`; the alert DatacloudObjectsUnreconciled fires on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .registry import REGISTRY

THRESHOLD_S = 60.0

_lock = threading.Lock()
_behind: dict[str, dict[tuple[str, str], float]] = {}  # kind → object → POSIX time it fell behind
_kinds: set[str] = set()


def behind(body: Mapping[str, Any]) -> bool:
    """Whether the object's status is missing or describes an older generation. An object being deleted
    is not counted: setting its deletionTimestamp raises its generation, and what remains is the
    deletion's work (its finalizer handler, reported by kopf), not reconciling a spec."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return False
    if not status:
        return True
    observed = status.get("observedGeneration")
    return observed is None or observed != meta.get("generation")


def _created(body: Mapping[str, Any]) -> float | None:
    text = str((body.get("metadata") or {}).get("creationTimestamp") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        return None


def track(kind: str) -> None:
    """Export the kind's series (as 0) before any object of it is seen."""
    with _lock:
        _kinds.add(kind)


def observe(kind: str, key: tuple[str, str], body: Mapping[str, Any], now: float | None = None) -> None:
    """One watch event of one object. An object without any status counts from its creation (it may have
    waited since before this operator started); one behind its generation from when this was first seen."""
    now = time.time() if now is None else now
    with _lock:
        _kinds.add(kind)
        objects = _behind.setdefault(kind, {})
        if not behind(body):
            objects.pop(key, None)
        elif key not in objects:
            created = _created(body) if not (body.get("status") or {}) else None
            objects[key] = min(now, created) if created is not None else now


def forget(kind: str, key: tuple[str, str]) -> None:
    with _lock:
        _behind.get(kind, {}).pop(key, None)


def summary(now: float | None = None, threshold: float = THRESHOLD_S) -> dict[str, tuple[int, float]]:
    """kind → (objects behind for longer than `threshold`, seconds the oldest has been behind)."""
    now = time.time() if now is None else now
    with _lock:
        out = {}
        for kind in _kinds:
            ages = [now - since for since in _behind.get(kind, {}).values()]
            out[kind] = (sum(1 for a in ages if a > threshold), max(ages, default=0.0))
        return out


class _Collector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = GaugeMetricFamily(
            "datacloud_unreconciled_objects",
            f"Objects whose status is missing or behind their generation for more than {THRESHOLD_S:.0f}s.",
            labels=["kind"],
        )
        oldest = GaugeMetricFamily(
            "datacloud_unreconciled_oldest_seconds",
            "How long the longest-waiting unreconciled object of the kind has waited.",
            labels=["kind"],
        )
        for kind, (n, age) in sorted(summary().items()):
            count.add_metric([kind], n)
            oldest.add_metric([kind], round(age, 1))
        yield count
        yield oldest


REGISTRY.register(_Collector())
