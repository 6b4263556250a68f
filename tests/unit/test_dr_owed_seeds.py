"""A seed Job for a scheduled target whose centre is Down at a failover cannot run: none is created then
(a mass failover from a dead centre made one API write per replica for it); it is created once the centre
answers, and never into a copy the caller holds back (divergent writes not yet kept)."""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.adapters import s3
from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.topology import Flow, flows
from datacloud.reconcile import dr_scheduled
from datacloud.reconcile.centres import Centre

SPEC = DRReplicaSpec.model_validate(
    {
        "source": {"centre": "prod", "bucket": "data"},
        "activeCentre": "prod",
        "targets": [
            {"name": "near", "centre": "near", "bucket": "data-near", "mode": "Continuous"},
            {"name": "far", "centre": "remote", "bucket": "data-far", "mode": "Scheduled",
             "schedule": "0 * * * *"},
        ],
        "failover": {"policy": "Automatic"},
    }
)  # fmt: skip
SCHEDULED = [f for f in flows(SPEC, "near") if f.mode == "Scheduled"]


def centre(name: str, health: str) -> Centre:
    endpoint = s3.S3Endpoint(f"http://{name}.invalid:9000", "us-east-1", s3.S3Credentials("k", "s"))
    return Centre(name, "350100", "RemoteDR", health, endpoint)


class Runtime:
    def __init__(self) -> None:
        self.name, self.namespace = "r", "ns"
        self.status: dict[str, Any] = {"fencingEpoch": 2}
        self.seeds_owed: dict[str, int] = {}
        self.events: list[str] = []

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        self.events.append(reason)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    jobs: list[str] = []

    def launch(rt: Any, body: Any, flow: Flow, run_id: str) -> str:
        jobs.append(f"{flow.target}-{run_id}")
        return jobs[-1]

    monkeypatch.setattr(dr_scheduled, "_launch", launch)
    monkeypatch.setattr(dr_scheduled, "cancel_from_old_active", lambda rt, keep: [])
    monkeypatch.setattr(dr_scheduled, "in_window", lambda window, now: True)
    return jobs


def centres(remote: str) -> dict[str, Centre]:
    return {"prod": centre("prod", "Down"), "near": centre("near", "Up"), "remote": centre("remote", remote)}


def test_a_seed_into_a_down_centre_is_owed_and_created_when_it_answers(launched: list[str]) -> None:
    rt: Any = Runtime()
    notes = dr_scheduled.seed(rt, {}, SPEC, SCHEDULED, 2, centres("Down"))
    assert launched == []
    assert rt.seeds_owed == {"far": 2}
    assert notes == ["remote by seed Job once it answers (Down now)"]

    dr_scheduled.pay_owed_seeds(rt, {}, SPEC, SCHEDULED, centres("Down"))
    assert launched == []  # still Down: still owed
    dr_scheduled.pay_owed_seeds(rt, {}, SPEC, [], centres("Up"))
    assert launched == []  # held back by the caller (divergent writes not yet kept): not written into
    assert rt.seeds_owed == {"far": 2}
    dr_scheduled.pay_owed_seeds(rt, {}, SPEC, SCHEDULED, centres("Up"))
    assert launched == ["far-seed-e2"]
    assert rt.seeds_owed == {}


def test_a_seed_into_a_centre_that_answers_is_created_at_once(launched: list[str]) -> None:
    rt: Any = Runtime()
    dr_scheduled.seed(rt, {}, SPEC, SCHEDULED, 2, centres("Up"))
    assert launched == ["far-seed-e2"]
    assert rt.seeds_owed == {}


def test_an_owed_seed_of_an_earlier_epoch_is_left_to_the_schedule(launched: list[str]) -> None:
    rt: Any = Runtime()
    rt.seeds_owed = {"far": 1}
    dr_scheduled.pay_owed_seeds(rt, {}, SPEC, SCHEDULED, centres("Up"))
    assert launched == []
    assert rt.seeds_owed == {}
