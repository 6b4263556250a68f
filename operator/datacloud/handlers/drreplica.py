"""DRReplica: a daemon per replica runs its reconciler once a second (replication, actions, status)."""

from __future__ import annotations

import copy
import os
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from .. import GROUP, VERSION
from ..adapters.kube import shared
from ..reconcile import dr_events
from ..reconcile.drreplica import PLURAL, ReplicaRuntime

DEFAULT_IMAGE = "datacloud/operator:0.1.0"


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
        os.environ.get("DATACLOUD_IMAGE", DEFAULT_IMAGE),
    )
    try:
        while not stopped:
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
            stopped.wait(wait)
    finally:
        runtime.close(
            deleted=bool(stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)
        )
