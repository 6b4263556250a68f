"""The namespace's sync Jobs from one listing shared by every replica (`dr_jobs`): replicas asking
together make one request, a listing older than MAX_AGE_S or than what the caller needs is taken again,
and the old active's Jobs are those made until the action's start (a Job made since is kept, so
cancelling again after a restart is harmless)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from datacloud.reconcile import dr_jobs, dr_scheduled

LABEL = "datacloud.fujian.gov.cn/drreplica"


def sync_job(replica: str, name: str, made: str, done: bool = False) -> dict[str, Any]:
    labels = {LABEL: replica, "datacloud.fujian.gov.cn/target": "remote"}
    status = {"conditions": [{"type": "Complete", "status": "True"}]} if done else {}
    return {"metadata": {"name": name, "labels": labels, "creationTimestamp": made}, "status": status}


class Kube:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.lists, self.removed = items, 0, []  # type: ignore[var-annotated]
        self._lock = threading.Lock()

    def get_json(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.lists += 1
        time.sleep(0.05)  # the callers asking meanwhile wait for this listing
        return {"items": list(self.items)}

    def remove(self, api_version: str, kind: str, name: str, namespace: str, propagation: str) -> bool:
        self.removed.append(name)
        return True


class Runtime:
    def __init__(self, kube: Kube, name: str) -> None:
        self.kube, self.name, self.namespace = kube, name, "ns-list"
        self.events: list[tuple[str, str]] = []

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        self.events.append((reason, message))


@pytest.fixture(autouse=True)
def fresh() -> None:
    dr_jobs.JOBS.clear()


def test_a_hundred_replicas_asking_together_make_one_listing() -> None:
    kube = Kube([sync_job(f"r-{i}", f"r-{i}-remote-1", "2026-11-30T22:00:00Z") for i in range(100)])
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda i: dr_jobs.jobs(kube, "ns-list", f"r-{i}"), range(100)))  # type: ignore[arg-type]
    assert kube.lists == 1
    assert [[j["metadata"]["name"] for j in f] for f in found] == [[f"r-{i}-remote-1"] for i in range(100)]


def test_a_listing_older_than_the_caller_needs_is_taken_again() -> None:
    kube = Kube([])
    dr_jobs.jobs(kube, "ns-list", "r")  # type: ignore[arg-type]
    dr_jobs.jobs(kube, "ns-list", "r")  # type: ignore[arg-type]
    assert kube.lists == 1
    dr_jobs.jobs(kube, "ns-list", "r", since=time.time() + 0.01)  # type: ignore[arg-type]
    assert kube.lists == 2


def test_only_jobs_made_until_the_actions_start_are_cancelled() -> None:
    kube = Kube(
        [
            sync_job("r", "r-remote-20261130t0200", "2026-11-30T02:00:00Z"),  # from the old active
            sync_job("r", "r-remote-20261129t0200", "2026-11-29T02:00:00Z", done=True),  # finished
            sync_job("r", "r-remote-20261130t2300", "2026-11-30T23:00:00Z"),  # from the new active
            sync_job("r", "r-remote-seed-e2", "2026-11-30T22:00:00Z"),  # the seed itself
            sync_job("other", "other-remote-20261130t0200", "2026-11-30T02:00:00Z"),  # another replica's
        ]
    )
    rt = Runtime(kube, "r")
    cancelled = dr_scheduled.cancel_from_old_active(rt, "seed-e2", "2026-11-30T22:00:00Z")  # type: ignore[arg-type]
    assert cancelled == kube.removed == ["r-remote-20261130t0200"]
    assert [reason for reason, _ in rt.events] == ["SyncCancelled"]
