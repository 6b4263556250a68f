"""CityDataCloud: a daemon per city runs the heartbeat on the spec's period."""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from .. import GROUP, VERSION
from ..adapters.kube import shared
from ..metrics import cities as metrics
from ..reconcile import citydatacloud


@kopf.daemon(GROUP, VERSION, citydatacloud.PLURAL, cancellation_timeout=10.0)
def heartbeat_city(
    stopped: kopf.DaemonStopped, name: str, body: kopf.Body, logger: kopf.Logger, **_: Any
) -> None:
    kube = shared()
    link = citydatacloud.CityLink(name)
    status: dict[str, Any] = dict(body.get("status") or {})
    metrics.observe_city(name, str((body.get("spec") or {}).get("cityCode", "")), status)
    try:
        while not stopped:
            current = {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": status}
            report = citydatacloud.heartbeat(kube, current, link)
            try:
                kube.patch_status(citydatacloud.PLURAL, name, report.status)
                status = citydatacloud.merged_status(status, report.status)
            except ApiException as e:
                logger.warning("could not write status of city %s: %s %s", name, e.status, e.reason)
            metrics.observe_city(name, str(body.spec.get("cityCode", "")), status)
            for event in report.events:
                kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            stopped.wait(report.period_s)
    finally:
        link.close()
        if stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
            metrics.forget_city(name)
