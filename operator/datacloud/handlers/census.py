"""ComputeCensus: a daemon per census runs it on its cron schedule, or at once when the annotation
`datacloud.fujian.gov.cn/run-now` gets a new value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from .. import GROUP, VERSION
from ..adapters.kube import shared
from ..metrics import census as metrics
from ..reconcile import census
from ..reconcile.citydatacloud import merged_status

POLL_S = 2.0  # how soon a run-now annotation is noticed
BACKOFF_S = 60.0  # after a run that raised, before the next attempt


@kopf.daemon(GROUP, VERSION, census.PLURAL, cancellation_timeout=10.0)
def census_daemon(
    stopped: kopf.DaemonStopped, name: str, body: kopf.Body, logger: kopf.Logger, **_: Any
) -> None:
    kube = shared()
    status: dict[str, Any] = dict(body.get("status") or {})
    metrics.observe_census(name, status)
    try:
        while not stopped:
            wait = POLL_S
            now = datetime.now(UTC)
            current = {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": status}
            decision = census.decide(current, now)
            if decision.reason:
                logger.info("census %s: %s run starting", name, decision.reason)
                try:
                    report = census.run_once(kube, current, decision)
                except Exception as e:  # a bug or the provincial API failing: record it, retry next tick
                    logger.exception("census %s run failed", name)
                    patch = census.failed_status(status, decision, e)
                    wait = BACKOFF_S
                    kopf.event(body, type="Warning", reason="CensusFailed", message=f"{type(e).__name__}")
                else:
                    patch = report.status
                    if report.snapshot is not None:
                        metrics.observe_forecasts(name, census.days_until_exhaustion(report.snapshot))
                    for event in report.events:
                        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            else:
                patch = census.idle_status(current, decision, now) or {}
                for event in census.spec_events(status, patch):
                    kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            if patch:
                try:
                    kube.patch_status(census.PLURAL, name, patch)
                    status = merged_status(status, patch)
                except ApiException as e:
                    logger.warning("could not write status of census %s: %s %s", name, e.status, e.reason)
            metrics.observe_census(name, status)
            stopped.wait(wait)
    finally:
        if stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            metrics.forget_census(name)
