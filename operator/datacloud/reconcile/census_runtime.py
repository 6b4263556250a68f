"""The ComputeCensus runtime: each census on its cron schedule, or at once when its run-now annotation
gets a new value (the annotation wakes it; no polling), run on the census roster."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube
from ..api.census import ComputeCensusStatus
from ..builders.written import InvalidStatus, WrittenStatus
from ..metrics import census as metrics
from . import census
from .runtime import Roster
from .status_refusal import refused

log = logging.getLogger(__name__)
IDLE_S = 30.0  # a schedule is checked at least this often
BACKOFF_S = 60.0  # after a run that raised, before the next attempt

Emit = Callable[[str, str, str], None]
Key = tuple[str, str]


class CensusRuntime:
    def __init__(self, kube: Kube, name: str, emit: Emit, status: dict[str, Any]) -> None:
        self.kube, self.name, self.emit = kube, name, emit
        self.written = WrittenStatus.start({"status": status}, ComputeCensusStatus)
        metrics.observe_census(name, self.status)

    @property
    def status(self) -> dict[str, Any]:
        return self.written.status

    def run(self, body: dict[str, Any]) -> float:
        wait = IDLE_S
        now = datetime.now(UTC)
        current = {
            "metadata": body.get("metadata") or {},
            "spec": body.get("spec") or {},
            "status": self.status,
        }
        decision = census.decide(current, now)
        if decision.reason:
            log.info("census %s: %s run starting", self.name, decision.reason)
            try:
                report = census.run_once(self.kube, current, decision)
            except Exception as e:  # a bug or the provincial API failing: record it, retry later
                log.exception("census %s run failed", self.name)
                patch = census.failed_status(self.status, decision, e)
                wait = BACKOFF_S
                self.emit("Warning", "CensusFailed", f"{type(e).__name__}: {census.why(e)}")
            else:
                patch = report.status
                if report.snapshot is not None:
                    metrics.observe_forecasts(self.name, census.days_until_exhaustion(report.snapshot))
                for event in report.events:
                    self.emit(event.type, event.reason, event.message)
        else:
            patch = census.idle_status(current, decision, now) or {}
            for event in census.spec_events(self.status, patch):
                self.emit(event.type, event.reason, event.message)
            if decision.next_run is not None:
                wait = min(wait, max(0.5, (decision.next_run - now).total_seconds()))
        if patch:
            try:
                patch = self.written.checked(patch)
                self.kube.patch_status(census.PLURAL, self.name, patch)
                self.written.wrote(patch)
            except ApiException as e:
                log.warning("could not write status of census %s: %s %s", self.name, e.status, e.reason)
            except InvalidStatus as e:
                refused(log, self.emit, f"census {self.name}", e)
        metrics.observe_census(self.name, self.status)
        return wait

    def close(self, deleted: bool) -> None:
        if deleted:
            metrics.forget_census(self.name)


def _run(runtime: CensusRuntime, body: dict[str, Any]) -> float:
    return runtime.run(body)


def _drop(runtime: CensusRuntime, deleted: bool) -> None:
    runtime.close(deleted)


_roster: Roster[Key, CensusRuntime] | None = None
_lock = threading.Lock()


def roster() -> Roster[Key, CensusRuntime]:
    global _roster
    with _lock:
        if _roster is None:
            _roster = Roster("census", settings.current().census_workers, _run, _drop)
        return _roster
