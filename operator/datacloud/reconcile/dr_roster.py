"""The DRReplica roster: every replica's `ReplicaRuntime`, run on one fixed pool of workers.

Centre health changes wake every replica at once (an automatic failover must not wait for a replica's
next run); DataCentres and their Secrets are read through one cache shared by all replicas.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from .. import settings
from ..adapters.kube import Kube
from . import dr_events, dr_flows
from .centres import HEALTH_CHANGES, CentreCache
from .drreplica import Emit, ReplicaRuntime
from .runtime import Roster

log = logging.getLogger(__name__)
API_ERROR_RETRY_S = 5.0
FAILURE_RETRY_S = 10.0

Key = tuple[str, str]
_roster: Roster[Key, ReplicaRuntime] | None = None
_cache: CentreCache | None = None
_lock = threading.Lock()


def run(runtime: ReplicaRuntime, body: dict[str, Any]) -> float:
    try:
        return runtime.tick(body)
    except ApiException as e:
        log.warning(
            "API error while reconciling %s/%s: %s %s", runtime.namespace, runtime.name, e.status, e.reason
        )
        return API_ERROR_RETRY_S
    except Exception:
        # One replica's unexpected failure must not stop the others or crash-loop the operator.
        log.exception("reconcile of %s/%s failed; retrying", runtime.namespace, runtime.name)
        return FAILURE_RETRY_S


def drop(runtime: ReplicaRuntime, deleted: bool) -> None:
    runtime.close(deleted=deleted)


def roster() -> Roster[Key, ReplicaRuntime]:
    """The process's DRReplica roster, made on first use."""
    global _roster
    with _lock:
        if _roster is None:
            _roster = Roster("replica", settings.current().replica_workers, run, drop)
            HEALTH_CHANGES.subscribe(_roster.wake_all)
        return _roster


def centre_cache(kube: Kube) -> CentreCache:
    global _cache
    with _lock:
        if _cache is None:
            _cache = CentreCache(kube)
            HEALTH_CHANGES.subscribe(_cache.clear, first=True)
        return _cache


def make(kube: Kube, key: Key, emit: Emit) -> ReplicaRuntime:
    namespace, name = key
    return ReplicaRuntime(
        kube,
        namespace,
        name,
        emit,
        dr_events.receiver(),
        settings.current().image,
        centre_reader=centre_cache(kube),
        follower_hub=dr_flows.hub(),
    )
