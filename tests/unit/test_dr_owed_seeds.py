"""Seed Jobs after a change of active centre are owed by the action's Reseeding step and made only once
the action's end is written (`dr_reseed`): none is made on the failover's path, none into a centre that
is Down (a mass failover from a dead centre made one API write per replica for it) or into a copy the
caller holds back (divergent writes not yet kept); `Reseeded` says which are owed and why, and an operator
that restarts while it is False owes them again."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from datacloud.adapters import s3
from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.topology import Flow, flows
from datacloud.reconcile import dr_reseed
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
CUT = "2026-11-30T22:00:00Z"


def centre(name: str, health: str) -> Centre:
    endpoint = s3.S3Endpoint(f"http://{name}.invalid:9000", "us-east-1", s3.S3Credentials("k", "s"))
    return Centre(name, "350100", "RemoteDR", health, endpoint)


class Runtime:
    def __init__(self) -> None:
        self.name, self.namespace = "r", "ns"
        self.status: dict[str, Any] = {"fencingEpoch": 2}
        self.reseed: Any = None
        self.events: list[str] = []

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        self.events.append(reason)


class Refused(ApiException):
    def __init__(self) -> None:
        super().__init__(status=403, reason="Forbidden")
        self.body = '{"message": "exceeded quota: jobs"}'


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    jobs: list[str] = []
    cancels: list[str] = []

    def launch(rt: Any, body: Any, flow: Flow, run_id: str) -> str:
        if getattr(rt, "refuse", False):
            raise Refused()
        jobs.append(f"{flow.target}-{run_id}")
        return jobs[-1]

    monkeypatch.setattr(dr_reseed, "launch", launch)
    monkeypatch.setattr(dr_reseed, "cancel_from_old_active", lambda rt, keep, cut: cancels.append(cut) or [])
    monkeypatch.setattr(dr_reseed, "in_window", lambda window, now: True)
    return jobs


def centres(remote: str) -> dict[str, Centre]:
    return {"prod": centre("prod", "Down"), "near": centre("near", "Up"), "remote": centre("remote", remote)}


def reseeded(rt: Any) -> tuple[str, str, str]:
    dr_reseed.condition(rt, 1, "2026-11-30T22:00:05Z")
    c = next(c for c in rt.status["conditions"] if c["type"] == "Reseeded")
    return c["status"], c["reason"], c["message"]


def test_the_reseeding_step_makes_no_job_and_says_so(launched: list[str]) -> None:
    rt: Any = Runtime()
    notes = dr_reseed.owe(rt, SPEC, SCHEDULED, 2, CUT)
    assert launched == []
    assert rt.reseed.targets == {"far": dr_reseed.AFTER_RECORD}
    assert notes == [f"remote by seed Job (run seed-e2), {dr_reseed.AFTER_RECORD}"]
    assert reseeded(rt)[:2] == ("False", "SeedJobPending")


def test_a_seed_into_a_down_centre_stays_owed_until_it_answers(launched: list[str]) -> None:
    rt: Any = Runtime()
    dr_reseed.owe(rt, SPEC, SCHEDULED, 2, CUT)
    dr_reseed.pay(rt, {}, SPEC, SCHEDULED, SCHEDULED, centres("Down"))
    assert launched == []  # still Down: still owed
    assert reseeded(rt) == (
        "False",
        "SeedJobPending",
        "seed Job owed: far: remote Down: created once it answers",
    )
    dr_reseed.pay(rt, {}, SPEC, SCHEDULED, [], centres("Up"))
    assert launched == []  # held back by the caller (divergent writes not yet kept): not written into
    assert "divergent writes" in reseeded(rt)[2]
    dr_reseed.pay(rt, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    assert launched == ["far-seed-e2"]
    assert rt.reseed.targets == {}
    assert reseeded(rt) == ("True", "SeedJobsCreated", "epoch 2: created far-seed-e2")


def test_the_old_active_jobs_are_cancelled_once_before_the_seeds(launched: list[str]) -> None:
    rt: Any = Runtime()
    dr_reseed.owe(rt, SPEC, SCHEDULED, 2, CUT)
    for _ in range(3):
        dr_reseed.pay(rt, {}, SPEC, SCHEDULED, SCHEDULED, centres("Down"))
    assert rt.reseed.cancelled


def test_a_refused_seed_stays_owed_with_the_api_servers_words(launched: list[str]) -> None:
    rt: Any = Runtime()
    rt.refuse = True
    dr_reseed.owe(rt, SPEC, SCHEDULED, 2, CUT)
    dr_reseed.pay(rt, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    status, reason, message = reseeded(rt)
    assert (status, reason) == ("False", "ReseedRefused")
    assert "exceeded quota" in message
    assert rt.events == ["ReseedRefused"]
    rt.refuse = False
    dr_reseed.pay(rt, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    assert reseeded(rt)[:2] == ("True", "SeedJobsCreated")


def test_an_owed_seed_of_an_earlier_epoch_is_left_to_the_schedule(launched: list[str]) -> None:
    rt: Any = Runtime()
    dr_reseed.owe(rt, SPEC, SCHEDULED, 1, CUT)
    dr_reseed.pay(rt, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    assert launched == []
    assert rt.reseed.targets == {}


def test_an_operator_restarted_while_seeds_are_owed_owes_them_again(launched: list[str]) -> None:
    before: Any = Runtime()
    dr_reseed.owe(before, SPEC, SCHEDULED, 2, CUT)
    reseeded(before)
    after: Any = Runtime()  # a new process: nothing in memory, the status as written
    after.status = {**before.status, "action": {"startedAt": CUT}}
    dr_reseed.pay(after, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    assert launched == ["far-seed-e2"]
    assert reseeded(after)[:2] == ("True", "SeedJobsCreated")


def test_nothing_is_owed_again_after_a_restart_that_finds_the_seeds_made(launched: list[str]) -> None:
    before: Any = Runtime()
    dr_reseed.owe(before, SPEC, SCHEDULED, 2, CUT)
    dr_reseed.pay(before, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    reseeded(before)
    after: Any = Runtime()
    after.status = dict(before.status)
    dr_reseed.pay(after, {}, SPEC, SCHEDULED, SCHEDULED, centres("Up"))
    assert launched == ["far-seed-e2"]  # once, before the restart
