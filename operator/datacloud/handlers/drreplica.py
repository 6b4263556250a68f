"""DRReplica: a daemon per replica runs its reconciler once a second (replication, actions, status)."""

from __future__ import annotations

import copy
import time
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from .. import GROUP, VERSION
from ..adapters.kube import shared
from ..reconcile import dr_events
from ..reconcile.centres import HEALTH_CHANGES
from ..reconcile.drreplica import PLURAL, ReplicaRuntime
from ..settings import job_image

STOP_CHECK_S = 0.5


def pause(stopped: kopf.DaemonStopped, seen: int, seconds: float) -> None:
    """Wait `seconds`, or less when a centre's health changes (or the daemon is stopped)."""
    deadline = time.monotonic() + seconds
    while not stopped and (left := deadline - time.monotonic()) > 0:
        if HEALTH_CHANGES.wait(seen, min(left, STOP_CHECK_S)):
            return


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
def protect_replica(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)

    assert namespace, "DRReplica is a namespaced kind"
    runtime = ReplicaRuntime(
        shared(),
        namespace,
        name,
        emit,
        dr_events.receiver(),
        job_image(),
    )
    try:
        while not stopped:
            seen = HEALTH_CHANGES.version
            try:
                wait = runtime.tick(copy.deepcopy(dict(body)))
            except ApiException as e:
                logger.warning(
                    "API error while reconciling %s/%s: %s %s", namespace, name, e.status, e.reason
                )
                wait = 5.0
            except Exception:
                # One replica's unexpected failure must not stop the others or crash-loop the operator.
                logger.exception("reconcile of %s/%s failed; retrying", namespace, name)
                wait = 10.0
            pause(stopped, seen, wait)
    finally:
        runtime.close(
            deleted=bool(stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)
        )
