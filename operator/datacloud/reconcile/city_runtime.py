"""The CityDataCloud runtime: each city's heartbeat on the spec's period, run on the city roster."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube
from ..api.citydatacloud import CityDataCloudStatus
from ..builders.written import InvalidStatus, WrittenStatus
from ..metrics import cities as metrics
from . import citydatacloud
from .runtime import Roster
from .status_refusal import refused

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], None]
Key = tuple[str, str]


class CityRuntime:
    def __init__(self, kube: Kube, name: str, emit: Emit, status: dict[str, Any]) -> None:
        self.kube, self.name, self.emit = kube, name, emit
        self.link = citydatacloud.CityLink(name)
        self.written = WrittenStatus.start({"status": status}, CityDataCloudStatus)

    @property
    def status(self) -> dict[str, Any]:
        return self.written.status

    def run(self, body: dict[str, Any]) -> float:
        body["status"] = self.status
        report = citydatacloud.heartbeat(self.kube, body, self.link)
        try:
            patch = self.written.checked(report.status)
            self.kube.patch_status(citydatacloud.PLURAL, self.name, patch)
            self.written.wrote(patch)
        except ApiException as e:
            log.warning("could not write status of city %s: %s %s", self.name, e.status, e.reason)
        except InvalidStatus as e:
            refused(log, self.emit, f"city {self.name}", e)
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
