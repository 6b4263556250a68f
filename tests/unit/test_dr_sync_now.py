"""The run-now annotation on a DRReplica (`datacloud dr sync-now`): every Scheduled target starts one full
sync per request, whatever its schedule; a refused run keeps the request owed without starting the others
twice; a paused replica, a held-back target or an unavailable centre is answered with an Event naming it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from datacloud import RUN_NOW
from datacloud.api.drreplica import DRReplicaSpec
from datacloud.builders import dr as build
from datacloud.failover.topology import Flow, flows
from datacloud.reconcile import dr_scheduled
from tests.support.jobs import scheduled_replica

NOW = datetime(2026, 12, 2, 10, 0, 30, tzinfo=UTC)


def spec(paused: bool = False) -> DRReplicaSpec:
    return scheduled_replica(paused, continuous=True)


def scheduled(s: DRReplicaSpec) -> list[Flow]:
    return [f for f in flows(s, "prod") if f.mode == "Scheduled"]


CENTRES: dict[str, Any] = {"prod": object(), "near": object(), "remote": object(), "remote2": object()}


class Runtime:
    name, namespace, kube = "records", "ns", None

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.events: list[tuple[str, str, str]] = []
        self.jobs_checked_at: dict[str, float] = {}

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        self.events.append((kind, reason, message))


MADE: list[dict[str, Any]] = []  # the Jobs the API server holds, as the shared listing returns them


@pytest.fixture(autouse=True)
def cluster_jobs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    MADE.clear()

    def jobs(kube: Any, namespace: str, replica: str, target: str | None = None) -> list[dict[str, Any]]:
        return [j for j in MADE if j["metadata"]["labels"]["datacloud.fujian.gov.cn/target"] == target]

    monkeypatch.setattr(dr_scheduled.dr_jobs, "jobs", jobs)
    return MADE


def made(rt: Any, flow: Flow, run_id: str, request: str | None, created: datetime = NOW) -> str:
    job = build.sync_job(body(None), flow.target, run_id, "img", [], 1, "sa", request)
    job["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    MADE.append(job)
    return str(job["metadata"]["name"])


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The runs started: (target, run id); a target in `refuse` is refused as a quota would."""
    runs: list[tuple[str, str]] = []

    def launch(rt: Any, body: Any, flow: Flow, run_id: str, request: str | None = None) -> str:
        if flow.target in getattr(rt, "refuse", ()):
            raise ApiException(status=403, reason="Forbidden")
        runs.append((flow.target, run_id))
        return made(rt, flow, run_id, request)

    monkeypatch.setattr(dr_scheduled, "launch", launch)
    return runs


def body(request: str | None) -> dict[str, Any]:
    annotations = {RUN_NOW: request} if request is not None else {}
    return {"metadata": {"name": "records", "namespace": "ns", "uid": "u1", "annotations": annotations}}


def answer(rt: Runtime, s: DRReplicaSpec, request: str | None, **kw: Any) -> dict[str, dict[str, Any]]:
    entries = {t["name"]: dict(t) for t in rt.status.get("targets") or []}
    dr_scheduled._answer_run_now(
        rt,  # type: ignore[arg-type]
        body(request),
        s,
        kw.get("flows", scheduled(s)),
        kw.get("centres", CENTRES),
        entries,
        kw.get("held", ()),
        kw.get("now", NOW),
    )
    rt.status["targets"] = list(entries.values())
    return entries


def test_a_new_request_starts_one_run_of_every_scheduled_target(launched: list[tuple[str, str]]) -> None:
    rt = Runtime()
    entries = answer(rt, spec(), "r1")
    assert sorted(t for t, _ in launched) == ["far", "west"]
    assert {run for _, run in launched} == {dr_scheduled.request_run_id(NOW, "r1")}
    assert dr_scheduled.request_run_id(NOW, "r1").startswith("r20261202t100030")
    assert rt.status["lastRunRequest"] == "r1"
    for name in ("far", "west"):
        assert entries[name]["lastRunRequest"] == "r1"
        assert entries[name]["lastScheduledTime"] == NOW.isoformat()
    assert [e[1] for e in rt.events] == ["SyncScheduled", "SyncScheduled"]
    assert "on request r1" in rt.events[0][2]

    answer(rt, spec(), "r1")  # the same value again: answered already
    assert len(launched) == 2


def test_no_annotation_starts_nothing(launched: list[tuple[str, str]]) -> None:
    rt = Runtime()
    answer(rt, spec(), None)
    answer(rt, spec(), "")
    assert launched == []
    assert rt.events == []
    assert "lastRunRequest" not in rt.status


def test_a_refused_run_keeps_the_request_owed_without_starting_the_others_twice(
    launched: list[tuple[str, str]],
) -> None:
    rt = Runtime()
    rt.refuse = {"west"}  # type: ignore[attr-defined]
    entries = answer(rt, spec(), "r1")
    assert [t for t, _ in launched] == ["far"]
    assert "lastRunRequest" not in rt.status  # owed
    assert entries["west"]["message"].startswith("sync Job not created: HTTP 403")
    assert "lastScheduledTime" not in entries["west"]

    rt.refuse = set()  # type: ignore[attr-defined]
    later = datetime(2026, 12, 2, 10, 0, 33, tzinfo=UTC)
    entries = answer(rt, spec(), "r1", now=later)
    assert [t for t, _ in launched] == ["far", "west"]  # far not again
    assert rt.status["lastRunRequest"] == "r1"
    assert "message" not in entries["west"]


def test_a_paused_replica_answers_with_an_event_and_starts_nothing(launched: list[tuple[str, str]]) -> None:
    rt = Runtime()
    answer(rt, spec(paused=True), "r1")
    assert launched == []
    assert rt.status["lastRunRequest"] == "r1"
    assert rt.events == [
        ("Warning", "SyncNotStarted", "run-now request r1: nothing started: the replica is paused")
    ]


def test_held_and_unreachable_targets_are_named_and_the_rest_start(launched: list[tuple[str, str]]) -> None:
    rt = Runtime()
    s = spec()
    only_far = [f for f in scheduled(s) if f.target == "far"]
    centres = {k: v for k, v in CENTRES.items() if k != "remote"}
    answer(rt, s, "r1", flows=only_far, held={"west"}, centres=centres)
    assert launched == []
    assert rt.status["lastRunRequest"] == "r1"
    ((kind, reason, message),) = rt.events
    assert (kind, reason) == ("Warning", "SyncNotStarted")
    assert "far (a centre is unavailable)" in message
    assert "west (held back" in message


def test_without_scheduled_targets_the_request_is_answered_with_an_event(
    launched: list[tuple[str, str]],
) -> None:
    rt = Runtime()
    answer(rt, spec(), "r1", flows=[])
    assert rt.events[0][2].endswith("it has no Scheduled target")
    assert rt.status["lastRunRequest"] == "r1"


def test_a_run_now_is_not_followed_by_the_cron_time_it_covers() -> None:
    """After a run on request at 10:00:30 the schedule counts from then: a every-minute cron next fires at
    10:01, not at once for 10:00."""
    last = datetime.fromisoformat(NOW.isoformat())
    assert dr_scheduled.due_runs("* * * * *", last, NOW) == []
    assert dr_scheduled.due_runs("* * * * *", last, datetime(2026, 12, 2, 10, 1, 0, tzinfo=UTC))


@given(
    request=st.text(min_size=1, max_size=300),
    replica=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
)
# Both found by Hypothesis in CI-like runs: a value longer than a digest but kept as it is, and one long
# enough to be recorded by its digest.
@example(request="0" * 72, replica="r")
@example(request="0" * 129, replica="r")
def test_any_request_value_gives_a_valid_job_name(request: str, replica: str) -> None:
    """The annotation's value is free text (any script, any length): it never reaches the Job's name.
    The run's id is made from the request as status records it (a long one by its digest)."""
    recorded_as = dr_scheduled.run_request({"metadata": {"annotations": {RUN_NOW: request}}})
    run_id = dr_scheduled.request_run_id(NOW, recorded_as)
    name = build.job_name(replica, "remote-target", run_id)
    assert len(name) <= 63
    assert name.endswith(run_id)
    assert all(c.isascii() and (c.isalnum() or c in "-.") for c in name)
    rt = Runtime()
    runs: list[str] = []
    original = dr_scheduled.launch
    dr_scheduled.launch = lambda rt, body, flow, run, request=None: runs.append(run) or ""  # type: ignore[assignment]
    try:
        answer(rt, spec(), request)
        assert runs == [run_id, run_id]
        recorded = rt.status["lastRunRequest"]
        if len(request) <= dr_scheduled.REQUEST_MAX:
            assert recorded == request
        else:
            assert recorded.startswith("sha256:")
        assert recorded == recorded_as
        assert len(recorded) <= max(dr_scheduled.REQUEST_MAX, len("sha256:") + 64)
        assert {t.get("lastRunRequest") for t in rt.status["targets"] if t["name"] != "near"} == {recorded}
        answer(rt, spec(), request)  # the same value again, long or not: answered already
        assert len(runs) == 2
    finally:
        dr_scheduled.launch = original


def test_a_long_request_is_recorded_by_its_digest(launched: list[tuple[str, str]]) -> None:
    """An annotation may hold 256 KiB; copied into status once per Scheduled target it would push the
    object towards its size limit and a refused status write, so status records its digest."""
    rt = Runtime()
    first = "维护前" * 30_000
    answer(rt, spec(), first)
    recorded = rt.status["lastRunRequest"]
    assert recorded.startswith("sha256:")
    assert len(recorded) == 71
    assert recorded == dr_scheduled.run_request(body(first))
    assert all(len(message) < 300 for _, _, message in rt.events)
    answer(rt, spec(), first + "!")  # a different long value is a new request
    assert len(launched) == 4
    assert rt.status["lastRunRequest"] != recorded
    short = "x" * dr_scheduled.REQUEST_MAX
    assert dr_scheduled.run_request(body(short)) == short


def test_a_run_started_just_before_the_operator_stopped_is_not_started_again(
    launched: list[tuple[str, str]],
) -> None:
    """Killed after creating the Jobs and before writing status: the operator that follows finds the Jobs
    by their request and records them instead of starting the request's runs a second time."""
    rt = Runtime()
    rt.status = {"targets": [{"name": "far", "lastScheduledTime": "2026-12-02T02:00:00+00:00"}]}
    before = {"targets": [dict(t) for t in rt.status["targets"]]}
    answer(rt, spec(), "before-maintenance")
    assert len(launched) == 2
    rt.status = before  # the status write never happened
    later = datetime(2026, 12, 2, 10, 0, 45, tzinfo=UTC)
    entries = answer(rt, spec(), "before-maintenance", now=later)
    assert len(launched) == 2  # nothing started twice
    assert rt.status["lastRunRequest"] == "before-maintenance"
    assert entries["far"]["lastScheduledTime"] == "2026-12-02T10:00:30+00:00"  # the Job's own start


def test_a_request_value_used_again_later_starts_a_new_run(launched: list[tuple[str, str]]) -> None:
    """A, then B, then A again: the Job of the first A is older than B's start and does not count."""
    rt = Runtime()
    answer(rt, spec(), "A")
    answer(rt, spec(), "B", now=datetime(2026, 12, 2, 11, 0, tzinfo=UTC))
    answer(rt, spec(), "A", now=datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    assert len(launched) == 6
    assert rt.status["lastRunRequest"] == "A"


def test_a_failed_job_listing_starts_the_run(
    launched: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise ApiException(status=500, reason="etcd leader changed")

    monkeypatch.setattr(dr_scheduled.dr_jobs, "jobs", refused)
    rt = Runtime()
    answer(rt, spec(), "r1")
    assert len(launched) == 2


def test_a_job_started_on_request_carries_it() -> None:
    job = build.sync_job(body(None), "far", "r20261202t100030", "img", [], 1, "sa", "r1")
    assert job["metadata"]["annotations"] == {build.RUN_REQUEST: "r1"}
    cron = build.sync_job(body(None), "far", "20261202t0200", "img", [], 1, "sa")
    assert "annotations" not in cron["metadata"]


def test_two_requests_within_one_second_are_two_runs(launched: list[tuple[str, str]]) -> None:
    """Found in CI: a second request in the same second as the first gave the same Job name, and applying
    it again started nothing while status said the run had started."""
    rt = Runtime()
    answer(rt, spec(), "first")
    answer(rt, spec(), "second", now=NOW.replace(microsecond=900_000))
    far = sorted(run for target, run in launched if target == "far")
    assert len(far) == 2
    assert far[0] != far[1]
    names = {build.job_name("records", "far", run) for run in far}
    assert len(names) == 2
