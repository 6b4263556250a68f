"""The CityDataCloud runtime: each city's heartbeat on the spec's period, run on the city roster."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube
from ..metrics import cities as metrics
from . import citydatacloud
from .runtime import Roster

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], None]
Key = tuple[str, str]


class CityRuntime:
    def __init__(self, kube: Kube, name: str, emit: Emit, status: dict[str, Any]) -> None:
        self.kube, self.name, self.emit = kube, name, emit
        self.link = citydatacloud.CityLink(name)
        self.status = dict(status)

    def run(self, body: dict[str, Any]) -> float:
        body["status"] = self.status
        report = citydatacloud.heartbeat(self.kube, body, self.link)
        try:
            self.kube.patch_status(citydatacloud.PLURAL, self.name, report.status)
            self.status = citydatacloud.merged_status(self.status, report.status)
        except ApiException as e:
            log.warning("could not write status of city %s: %s %s", self.name, e.status, e.reason)
        metrics.observe_city(self.name, str((body.get("spec") or {}).get("cityCode", "")), self.status)
        for event in report.events:
            self.emit(event.type, event.reason, event.message)
        return report.period_s

    def close(self, deleted: bool) -> None:
        self.link.close()
        if deleted:
            metrics.forget_city(self.name)


def _run(runtime: CityRuntime, body: dict[str, Any]) -> float:
    return runtime.run(body)


def _drop(runtime: CityRuntime, deleted: bool) -> None:
    runtime.close(deleted)


_roster: Roster[Key, CityRuntime] | None = None
_lock = threading.Lock()


def roster() -> Roster[Key, CityRuntime]:
    global _roster
    with _lock:
        if _roster is None:
            _roster = Roster("city", settings.current().city_workers, _run, _drop)
        return _roster
