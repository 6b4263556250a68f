"""What keeps a thousand DRReplicas cheap: an action's steps written once each, one replica's finding of
a dead centre shared by the others, overlaps asked again only when the replicas changed, fence checks
within a rate, and no full run for a centre going Down."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from datacloud.adapters import s3
from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.actions import STEPS, fresh_steps
from datacloud.reconcile import dr_actions, dr_overlap, dr_roster, dr_writers
from datacloud.reconcile.centres import Centre
from datacloud.reconcile.drreplica import FENCE_CHECK_S, ReplicaRuntime
from datacloud.reconcile.runtime import Roster
from datacloud.reconcile.verdicts import Unreachable

SPEC = DRReplicaSpec.model_validate(
    {
        "source": {"centre": "prod", "bucket": "data"},
        "activeCentre": "prod",
        "targets": [{"name": "near", "centre": "near", "bucket": "data", "mode": "Continuous"}],
        "failover": {"policy": "Automatic"},
    }
)


def centre(name: str, health: str) -> Centre:
    endpoint = s3.S3Endpoint(f"http://{name}.invalid:9000", "us-east-1", s3.S3Credentials("k", "s"))
    return Centre(name, "350100", "Production", health, endpoint)


def context(action_type: str = "Failover", prod: str = "Down") -> dr_actions.ActionContext:
    action = {"type": action_type, "fromCentre": "prod", "targetCentre": "near", "fencingEpoch": 2}
    action["steps"] = fresh_steps(action_type)
    return dr_actions.ActionContext(
        SPEC,
        action,
        {"prod": centre("prod", prod), "near": centre("near", "Up")},
        "now",
        publish=lambda copy, epoch: None,
        reseed=lambda copy, epoch: "reseeded",
    )


def test_a_failover_is_written_before_it_opens_the_new_active_and_its_promotion_rides_on_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Status writes per failover step were the operator's per-replica cost in a mass failover. Before
    the end (written by the caller) only one write must come first: the action with its fencing epoch
    before the new active opens. The promotion is not written before the endpoint moves: a Failover's
    steps before Publishing move no data, so a restart redoes them unchanged (was a second write)."""
    events: list[Any] = []

    def effect(what: str) -> Any:
        return lambda ctx: events.append(what) or "ok"

    steps = dict.fromkeys(STEPS["Failover"], lambda ctx: "ok")
    effects = {"Promoting": effect("new active opened"), "Publishing": effect("endpoint moved")}
    monkeypatch.setattr(dr_actions, "STEP_FUNCTIONS", {**steps, **effects})
    ctx = context()
    ctx.stored = False  # a fresh action: status does not hold it yet
    assert dr_actions.advance(ctx, lambda a: events.append({s["name"]: s["state"] for s in a["steps"]}))
    assert len(events) == 3  # was one write per step and one at the start, then one before the move
    before_open, opened, moved = events
    assert (opened, moved) == ("new active opened", "endpoint moved")
    assert (before_open["Fencing"], before_open["Promoting"]) == ("Succeeded", "Running")
    assert before_open["Publishing"] == "Pending"  # nothing early

    events.clear()
    again = context()  # an action status already holds (written while a step waited): no write at all
    assert dr_actions.advance(again, lambda a: events.append({s["name"]: s["state"] for s in a["steps"]}))
    assert [e for e in events if isinstance(e, dict)] == []


def test_after_a_final_sync_the_promotion_is_written_before_the_endpoint_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A switchover's final sync mirrors the old copy onto the new one: redone after a restart once the
    endpoint had moved, it would delete or overwrite what applications wrote into the new active. So the
    promotion is stored before Publishing, and a restart resumes at Publishing."""
    events: list[Any] = []

    def effect(what: str) -> Any:
        return lambda ctx: events.append(what) or "ok"

    steps = dict.fromkeys(STEPS["Switchover"], lambda ctx: "ok")
    effects = {
        "FinalSync": effect("copied into the new copy"),
        "Promoting": effect("new active opened"),
        "Publishing": effect("endpoint moved"),
    }
    monkeypatch.setattr(dr_actions, "STEP_FUNCTIONS", {**steps, **effects})
    action = {"type": "Switchover", "fromCentre": "prod", "targetCentre": "near", "fencingEpoch": 2}
    action["steps"] = fresh_steps("Switchover")
    ctx = dr_actions.ActionContext(
        SPEC,
        action,
        {"prod": centre("prod", "Up"), "near": centre("near", "Up")},
        "now",
        publish=lambda copy, epoch: None,
        reseed=lambda copy, epoch: "reseeded",
        stored=False,
    )
    assert dr_actions.advance(ctx, lambda a: events.append({s["name"]: s["state"] for s in a["steps"]}))
    before_sync, synced, opened, before_move, moved = events
    assert (synced, opened, moved) == ("copied into the new copy", "new active opened", "endpoint moved")
    assert (before_sync["Fencing"], before_sync["FinalSync"]) == ("Succeeded", "Running")
    assert (before_move["Promoting"], before_move["Publishing"]) == ("Succeeded", "Running")


def test_a_success_before_a_blocked_step_is_still_written(monkeypatch: pytest.MonkeyPatch) -> None:
    def blocked(ctx: dr_actions.ActionContext) -> str:
        raise dr_actions.StepBlocked("NewActiveUnreachable", "no answer")

    steps = dict.fromkeys(STEPS["Failover"], lambda ctx: "ok")
    monkeypatch.setattr(dr_actions, "STEP_FUNCTIONS", {**steps, "Promoting": blocked})
    ctx, records = context(), []
    assert not dr_actions.advance(ctx, lambda a: records.append([dict(s) for s in a["steps"]]))
    last = {s["name"]: s for s in records[-1]}
    assert last["Fencing"]["state"] == "Succeeded"
    assert (last["Promoting"]["state"], last["Promoting"]["reason"]) == ("Running", "NewActiveUnreachable")


def test_a_wait_is_handed_to_the_runs_own_write_and_the_next_run_leaves_its_one_write_to_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run that starts a failover waiting for the write lease wrote status twice (the wait, then the
    run's own); the wait now rides on the run's write. The next run, once the lease has ended, opens the
    new active without writing first (the wait stored the epoch), moves the endpoint, and leaves the one write
    to the end."""
    lease_over = False

    def fence(ctx: dr_actions.ActionContext) -> str:
        if not lease_over:
            raise dr_actions.StepBlocked("WriteLeaseRunning", "until 12:00:11", retry_in=3.0)
        return "lease ended"

    steps = dict.fromkeys(STEPS["Failover"], lambda ctx: "ok")
    monkeypatch.setattr(dr_actions, "STEP_FUNCTIONS", {**steps, "Fencing": fence})
    ctx, written, waits = context(), [], []
    ctx.stored = False
    assert not dr_actions.advance(ctx, written.append, waits.append)
    assert written == []
    assert len(waits) == 1
    assert ctx.stored
    assert ctx.retry_in == 3.0
    waiting = {s["name"]: s for s in waits[0]["steps"]}["Fencing"]
    assert (waiting["state"], waiting["reason"]) == ("Running", "WriteLeaseRunning")
    assert not dr_actions.advance(ctx, written.append, waits.append)  # still waiting: nothing new to write
    assert written == []
    assert len(waits) == 1

    lease_over = True
    assert dr_actions.advance(ctx, lambda a: written.append({s["name"]: s["state"] for s in a["steps"]}))
    assert written == []  # the end, written by the caller, is the run's one write
    assert all(s["state"] == "Succeeded" for s in ctx.action["steps"])


def test_a_dead_centre_is_tried_once_for_many_failovers(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []

    def fence(endpoint: s3.S3Endpoint, *args: Any, **kwargs: Any) -> None:
        tried.append(endpoint.url)
        raise EndpointConnectionError(endpoint_url=endpoint.url)

    monkeypatch.setattr(dr_actions.fencing, "fence", fence)
    monkeypatch.setattr(dr_actions, "UNREACHABLE", Unreachable())
    messages = [dr_actions._fence_old(context()) for _ in range(50)]
    assert len(tried) == 1
    assert all("unreachable" in m and "fenced as soon as it answers" in m for m in messages)
    # A planned action (the old centre Up) never takes another replica's word: it needs the fence.
    with pytest.raises(dr_actions.StepBlocked):
        dr_actions._fence_old(context("Switchover", prod="Up"))
    assert len(tried) == 2


def test_the_verdict_goes_stale() -> None:
    now = [0.0]
    verdicts = Unreachable(fresh_s=5.0, clock=lambda: now[0])
    verdicts.note("prod", "EndpointConnectionError")
    assert verdicts.recent("prod") == "EndpointConnectionError"
    now[0] = 5.1
    assert verdicts.recent("prod") is None
    verdicts.note("prod", "ConnectTimeoutError")
    verdicts.clear("prod")
    assert verdicts.recent("prod") is None


class Population:
    def __init__(self) -> None:
        self.version, self.changed_at = 0, 0.0


def test_an_overlap_is_asked_again_only_when_the_replicas_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    monkeypatch.setattr(dr_roster, "overlap_conflict", lambda kube, body, spec: asked.append(1))
    now = [100.0]
    population = Population()
    check = dr_roster.OverlapCheck(population, clock=lambda: now[0])  # type: ignore[arg-type]
    body = {"metadata": {"name": "r", "namespace": "ns", "generation": 1}}
    for _ in range(20):
        check(None, body, SPEC)  # type: ignore[arg-type]
        now[0] += 1.0
    assert len(asked) == 1  # was once per run
    population.version, population.changed_at = 1, now[0]
    check(None, body, SPEC)  # type: ignore[arg-type]
    now[0] += 1.0
    check(None, body, SPEC)  # type: ignore[arg-type]  # the list may not hold the change yet
    assert len(asked) == 3
    now[0] += dr_roster.OVERLAP_SETTLE_S
    check(None, body, SPEC)  # type: ignore[arg-type]
    check(None, body, SPEC)  # type: ignore[arg-type]
    assert len(asked) == 4
    check(None, {"metadata": {**body["metadata"], "generation": 2}}, SPEC)  # type: ignore[arg-type]
    assert len(asked) == 5
    now[0] += dr_roster.OVERLAP_RECHECK_S
    check(None, {"metadata": {**body["metadata"], "generation": 2}}, SPEC)  # type: ignore[arg-type]
    assert len(asked) == 6


def test_the_roster_version_moves_with_the_population() -> None:
    roster: Roster[str, Any] = Roster("t", 1, lambda state, body: None, lambda state, deleted: None)
    versions = [roster.version]
    roster.attach("a", lambda: {}, dict)
    versions.append(roster.version)
    roster.wake("a")
    versions.append(roster.version)
    roster.wake("unknown")
    versions.append(roster.version)
    roster.detach("a", deleted=True)
    versions.append(roster.version)
    assert versions == [0, 1, 2, 2, 3]
    roster.lane.stop()


def test_fence_checks_stretch_beyond_the_rate() -> None:
    assert dr_roster.fence_every(10) == FENCE_CHECK_S
    assert dr_roster.fence_every(1000) == 1000 / dr_roster.FENCE_CHECKS_PER_S
    many = 1000
    assert many / dr_roster.fence_every(many) <= dr_roster.FENCE_CHECKS_PER_S


def test_a_centre_going_down_is_no_full_run_but_one_coming_back_is() -> None:
    rt = ReplicaRuntime(None, "ns", "r", lambda *e: None)  # type: ignore[arg-type]
    key = (1, "prod", 1)
    rt.full_for, rt.full_reachable = key, frozenset({"prod", "near"})
    rt.resync_at = time.monotonic() + 60
    assert not rt._full_run_due(key, frozenset({"near"}))  # prod went Down
    assert rt._full_run_due(key, frozenset({"prod", "near", "remote"}))  # remote answers again
    assert rt._full_run_due((1, "near", 2), frozenset({"near"}))  # failed over: fence at the new epoch
    assert rt._full_run_due((2, "prod", 1), frozenset({"prod", "near"}))  # a new spec


PLACES = st.tuples(
    st.sampled_from(["prod", "near", "far"]),
    st.sampled_from(["aaa", "bbb", "ccc"]),
    st.sampled_from(["", "x", "x/y", "z"]),
)


def replica_body(i: int, source: tuple[str, str, str], target: tuple[str, str, str]) -> dict[str, Any]:
    spec = {
        "source": {"centre": source[0], "bucket": source[1], "prefix": source[2]},
        "activeCentre": source[0],
        "targets": [
            {"name": "t", "centre": target[0], "bucket": target[1], "prefix": target[2], "mode": "Continuous"}
        ],
    }
    meta = {
        "name": f"r{i}",
        "namespace": "ns",
        "uid": str(uuid.uuid4()),  # each example's replicas are new objects, as after a delete and create
        "generation": 1,
        "creationTimestamp": f"2026-01-01T00:00:{i:02d}Z",
    }
    return {"metadata": meta, "spec": spec}


@given(st.lists(st.tuples(PLACES, PLACES), min_size=1, max_size=12))
def test_the_bucket_index_finds_the_same_overlaps(replicas: list[tuple[Any, Any]]) -> None:
    """Comparing only with replicas sharing a bucket answers as comparing with all of them."""
    bodies = [replica_body(i, s, t) for i, (s, t) in enumerate(replicas)]

    class Kube:
        def list(self, plural: str) -> list[dict[str, Any]]:
            return bodies

    original = dr_overlap.REPLICAS
    dr_overlap.REPLICAS = dr_overlap.ReplicaList()
    try:
        for b in bodies:
            spec = DRReplicaSpec.model_validate(b["spec"])
            kube: Any = Kube()
            assert dr_roster.overlap_conflict(kube, b, spec) == dr_overlap.conflict(kube, b, spec)
    finally:
        dr_overlap.REPLICAS = original


def test_after_a_failover_a_dead_centre_is_tried_once_for_many_replicas_fences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After promotion each replica fences its copies again; the copy on the dead centre is tried by one
    replica, and the others take its word while it is fresh (a black-holed store costs a timeout each)."""
    tried: list[str] = []

    def apply(endpoint: s3.S3Endpoint, *args: Any, **kwargs: Any) -> None:
        tried.append(endpoint.url)
        if "prod" in endpoint.url:
            raise EndpointConnectionError(endpoint_url=endpoint.url)

    monkeypatch.setattr(dr_writers.fencing, "apply", apply)
    monkeypatch.setattr(dr_writers, "UNREACHABLE", Unreachable())
    monkeypatch.setattr(dr_writers, "grant_lease", lambda *args: None)
    monkeypatch.setattr(dr_writers, "probe_write", lambda *args: (dr_writers.Writable.NO, ""))
    centres = {"prod": centre("prod", "Down"), "near": centre("near", "Up"), "far": centre("far", "Up")}
    for i in range(30):
        out = dr_writers.fence_and_measure("ns", f"r{i}", SPEC, centres, "near", 2)
        assert out.unreachable == ["prod"]
        assert "policy not written" in next(m for w, m in out.unmeasured.items() if w.startswith("prod"))
    assert sum("prod" in url for url in tried) == 1


def test_a_check_the_listing_answers_does_not_wait_behind_a_list_in_progress() -> None:
    """While hundreds of replicas are applied, each new one needs a fresh LIST; the runs of replicas the
    current listing already holds are answered from it, not queued behind that LIST."""
    old = replica_body(0, ("prod", "a", ""), ("near", "a", ""))
    new = replica_body(1, ("prod", "b", ""), ("near", "b", ""))
    listing_started, release = threading.Event(), threading.Event()

    class Kube:
        def __init__(self) -> None:
            self.lists = 0

        def list(self, plural: str) -> list[dict[str, Any]]:
            self.lists += 1
            if self.lists == 1:
                return [old]
            listing_started.set()
            release.wait()
            return [old, new]

    kube: Any = Kube()
    replicas = dr_overlap.ReplicaList()
    assert replicas.sharing(kube, ("ns", "r0"), frozenset({("prod", "a")})) == []
    newcomer = threading.Thread(
        target=replicas.sharing, args=(kube, ("ns", "r1"), frozenset({("prod", "b")}))
    )
    newcomer.start()
    try:
        assert listing_started.wait(10)
        answered = threading.Event()
        threading.Thread(
            target=lambda: (replicas.sharing(kube, ("ns", "r0"), frozenset({("prod", "a")})), answered.set()),
            daemon=True,
        ).start()
        # Not a timing bound: without the fix this never happens while the LIST is held up.
        assert answered.wait(10), "a replica the listing holds waited behind another's LIST"
    finally:
        release.set()
        newcomer.join()
    assert kube.lists == 2
    assert [b["metadata"]["name"] for b in replicas.items(kube, ("ns", "r1"))] == ["r0", "r1"]
