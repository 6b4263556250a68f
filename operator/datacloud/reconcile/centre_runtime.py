"""The DataCentre runtime: each centre's probes on its interval, run on the centre roster.

A probe whose result changes nothing but its time and latency is written at most every
`HEARTBEAT_S` (the metrics carry every probe), so an idle province does not write centres' status
every second. The runtime carries two statuses: `status`, the probe's memory (health and failures in a
row advance with every probe, written or not), and `written` (`builders.written`), what was last
written, which every write is diffed against and checked through `DataCentreStatus` before it is sent.
A health transition is announced (`HEALTH_CHANGES`) after it is written: DRReplicas
woken by it then read the new health.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube, NotFound
from ..api.datacentre import DataCentreStatus
from ..builders.written import InvalidStatus, WrittenStatus
from ..metrics import centres as metrics
from . import datacentre
from .centres import HEALTH_CHANGES
from .runtime import Roster
from .status_refusal import refused

log = logging.getLogger(__name__)
HEARTBEAT_S = 60.0
# A centre's credentials Secret is read again after this long, or at once after a probe that did not
# succeed (rotated credentials are then picked up by the next probe). Read at every probe (each second by
# default), the centres' threads took 1.2 % of a core beside a thousand idle replicas; 0.85-0.98 % with
# the Secret kept (`bench/replicas_bench.py`, idle.cpu_percent_by_thread).
SECRET_TTL_S = 30.0
PROBE_FIGURES = ("lastProbeTime", "lastProbeLatencyMs")

Emit = Callable[[str, str, str], None]
Key = tuple[str, str]


class SecretCache:
    """The API client as a probe sees it: `secret_data` answered from memory for SECRET_TTL_S (a
    missing Secret too), everything else passed through."""

    def __init__(self, kube: Kube, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.clock = kube, clock
        self._read: dict[tuple[str, str], tuple[float, dict[str, str] | NotFound]] = {}

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        found = self._read.get((namespace, name))
        if found is None or self.clock() - found[0] >= SECRET_TTL_S:
            try:
                data: dict[str, str] | NotFound = self.kube.secret_data(namespace, name)
            except NotFound as e:
                data = e
            found = self._read[(namespace, name)] = (self.clock(), data)
        if isinstance(found[1], NotFound):
            raise found[1]
        return dict(found[1])

    def clear(self) -> None:
        self._read.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kube, name)


class CentreRuntime:
    def __init__(self, kube: Kube, name: str, emit: Emit, status: dict[str, Any]) -> None:
        self.kube, self.name, self.emit = kube, name, emit
        self.secrets = SecretCache(kube)
        self.status = dict(status)
        self.written = WrittenStatus.start({"status": status}, DataCentreStatus)
        self.written_at = 0.0
        self.next_probe = time.monotonic()

    def run(self, body: dict[str, Any]) -> float:
        body["status"] = self.status  # what this runtime wrote last, even if kopf's body is behind
        report = datacentre.probe_once(cast(Kube, self.secrets), body)
        if report.status.get("consecutiveFailures") or report.status.get("health") in (None, "Unknown"):
            self.secrets.clear()  # perhaps the credentials changed: the next probe reads them again
        if self._worth_writing(report.status):
            try:
                patch = self.written.checked(report.status)
                self.kube.patch_status(datacentre.PLURAL, self.name, patch)
                self.written.wrote(patch)
                self.written_at = time.monotonic()
            except ApiException as e:
                log.warning("could not write status of centre %s: %s %s", self.name, e.status, e.reason)
            except InvalidStatus as e:
                refused(log, self.emit, f"centre {self.name}", e)
        self.status = {**self.status, **report.status}
        spec = body.get("spec") or {}
        metrics.observe_centre(self.name, str(spec.get("city", "")), str(spec.get("role", "")), self.status)
        if report.transition:
            old, new = report.transition
            if "Down" in (old, new) or old == "Unknown":
                # DRReplicas react now, not at their next run. Up and Degraded are alike to them: a
                # store slowing down under load must not make every replica recheck its fences.
                HEALTH_CHANGES.changed()
            kind = "Normal" if new == "Up" else "Warning"
            self.emit(kind, f"Centre{new}", f"health changed from {old} to {new}")
        for reason, message in report.warnings:
            self.emit("Warning", reason, message)
        # A fixed cadence: the time spent probing and writing is not added to the interval, so "Down after
        # 3 failures 2 s apart" takes 4-6 s after the store fails, even under load.
        self.next_probe = max(self.next_probe + report.interval_s, time.monotonic())
        return max(0.0, self.next_probe - time.monotonic())

    def _worth_writing(self, new: dict[str, Any]) -> bool:
        changed = {k for k, v in new.items() if self.written.status.get(k) != v}
        if changed - set(PROBE_FIGURES):
            return True
        return bool(changed) and time.monotonic() - self.written_at >= HEARTBEAT_S

    def close(self, deleted: bool) -> None:
        if deleted:
            metrics.forget_centre(self.name)


def _run(runtime: CentreRuntime, body: dict[str, Any]) -> float:
    return runtime.run(body)


def _drop(runtime: CentreRuntime, deleted: bool) -> None:
    runtime.close(deleted)


_roster: Roster[Key, CentreRuntime] | None = None
_lock = threading.Lock()


def roster() -> Roster[Key, CentreRuntime]:
    global _roster
    with _lock:
        if _roster is None:
            _roster = Roster("centre", settings.current().centre_workers, _run, _drop)
        return _roster
