"""The sync Jobs and sync pods of a namespace, from one listing shared by every DRReplica there.

Each replica looks at its newest sync Job every `dr_scheduled.JOB_CHECK_S` (and at its pods while it
runs), and after a change of active centre at its Jobs still unfinished from the old active. One LIST per
replica and look, each filtered by the API server over every Job (or pod) of the namespace, kept a thousand
replicas failing over at once waiting on the API server. Here one listing of the namespace's sync Jobs
(by the label every one carries), at most `MAX_AGE_S` old, serves every replica, indexed by replica;
their pods likewise, indexed by Job, listed only when a replica asks about an unfinished Job. The
listings are read from the API server's watch cache as raw JSON (no client models).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .. import GROUP
from ..adapters.kube import Kube

REPLICA_LABEL = f"{GROUP}/drreplica"  # on every sync Job and its pods (builders.dr.sync_job)
MAX_AGE_S = 5.0  # a Job made since is seen by a later look (the checks are JOB_CHECK_S apart)

Index = dict[str, list[dict[str, Any]]]


class Listing:
    """One kind's objects labelled REPLICA_LABEL, per namespace, indexed by the value of `index_label`."""

    def __init__(self, path: str, index_label: str) -> None:
        self.path, self.index_label = path, index_label  # path: with "{namespace}"
        self._lock = threading.Lock()
        self._namespaces: dict[str, threading.Lock] = {}
        self._taken: dict[str, tuple[float, Index]] = {}  # namespace → (Unix time it was asked for, index)

    def get(self, kube: Kube, namespace: str, value: str, since: float = 0.0) -> list[dict[str, Any]]:
        """The objects whose `index_label` is `value`, from a listing asked for no earlier than `since`
        (Unix time) and at most MAX_AGE_S ago. Raises ApiError when the listing fails."""
        with self._lock:
            lock = self._namespaces.setdefault(namespace, threading.Lock())
        with lock:  # one caller lists; the others queued meanwhile use its listing instead of their own
            found = self._taken.get(namespace)
            now = time.time()
            if found is None or now - found[0] > MAX_AGE_S or found[0] < since:
                found = self._taken[namespace] = (now, self._list(kube, namespace))
        return list(found[1].get(value, []))

    def _list(self, kube: Kube, namespace: str) -> Index:
        query = {"labelSelector": REPLICA_LABEL, "resourceVersion": "0"}
        listed = kube.get_json(self.path.format(namespace=namespace), query)
        index: Index = {}
        for item in listed.get("items") or []:
            labels = (item.get("metadata") or {}).get("labels") or {}
            if self.index_label in labels:
                index.setdefault(str(labels[self.index_label]), []).append(item)
        return index

    def clear(self) -> None:
        with self._lock:
            self._taken.clear()


JOBS = Listing("/apis/batch/v1/namespaces/{namespace}/jobs", REPLICA_LABEL)
PODS = Listing("/api/v1/namespaces/{namespace}/pods", "job-name")


def jobs(
    kube: Kube, namespace: str, replica: str, target: str | None = None, since: float = 0.0
) -> list[dict[str, Any]]:
    """The replica's sync Jobs (of one target, when given)."""
    found = JOBS.get(kube, namespace, replica, since)
    if target is None:
        return found
    return [
        j for j in found if ((j.get("metadata") or {}).get("labels") or {}).get(f"{GROUP}/target") == target
    ]


def pods(kube: Kube, namespace: str, job: str) -> list[dict[str, Any]]:
    """The pods of one sync Job."""
    return PODS.get(kube, namespace, job)
