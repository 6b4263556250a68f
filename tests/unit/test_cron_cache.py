"""The cron firings remembered per schedule (`dr_flows.next_run`, `dr_specs.problems`) answer exactly as
croniter asked afresh, whatever was asked before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.reconcile import dr_flows, dr_specs

SCHEDULES = [
    "* * * * *",
    "*/7 * * * *",
    "0 2 * * *",
    "30 1 * * 1-5",
    "15 */3 * * *",
    "0 0 1 * *",
    "0 0 29 2 *",
    "@hourly",
    "@weekly",
    "5,35 9-17 * * *",
]
START = datetime(2026, 1, 1, tzinfo=UTC)
times = st.integers(min_value=0, max_value=4 * 365 * 24 * 3600).map(lambda s: START + timedelta(seconds=s))


def fresh_next(schedule: str, after: datetime) -> datetime:
    found: datetime = croniter(schedule, after).get_next(datetime)
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SCHEDULES), times), min_size=1, max_size=20))
def test_next_run_is_croniters_answer_after_any_earlier_questions(asked: list[tuple[str, datetime]]) -> None:
    for schedule, after in asked:
        assert dr_flows.next_run(schedule, after) == fresh_next(schedule, after)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SCHEDULES), times, st.integers(min_value=0, max_value=3 * 24 * 3600), times)
def test_due_runs_lists_every_firing_between_last_and_now(
    schedule: str, last: datetime, span: int, earlier: datetime
) -> None:
    dr_flows.next_run(schedule, earlier)  # whatever the schedule remembers from before
    now = last + timedelta(seconds=span)
    expected = []
    it = croniter(schedule, last)
    while len(expected) < 1000 and (nxt := it.get_next(datetime)) <= now:
        expected.append(nxt)
    assert dr_flows.due_runs(schedule, last, now) == expected


def test_a_firing_instant_asks_for_the_one_after_it() -> None:
    at = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    dr_flows.next_run("0 2 * * *", at - timedelta(hours=1))  # remembers (previous day 02:00, 02:00 today)
    assert dr_flows.next_run("0 2 * * *", at) == at + timedelta(days=1)


def spec(schedule: str, window: tuple[str, str] | None = None) -> DRReplicaSpec:
    target: dict[str, object] = {"name": "far", "centre": "remote", "bucket": "data-copy"}
    target |= {"mode": "Scheduled", "schedule": schedule}
    if window is not None:
        target["window"] = {"start": window[0], "end": window[1]}
    return DRReplicaSpec.model_validate(
        {"source": {"centre": "prod", "bucket": "data"}, "activeCentre": "prod", "targets": [target]}
    )


def test_problems_are_the_same_when_asked_again_within_the_hour() -> None:
    now = datetime(2026, 5, 4, 10, 17, tzinfo=UTC)
    never = spec("0 0 30 2 *")
    closed = spec("0 2 * * *", ("03:00", "04:00"))
    fine = spec("0 2 * * *", ("01:00", "04:00"))
    for attempt in range(2):
        later = now + timedelta(minutes=attempt * 30)
        assert [p.reason for p in dr_specs.problems(never, later)] == ["ScheduleNeverFires"]
        assert [p.field for p in dr_specs.problems(never, later)] == ["spec.targets[0].schedule"]
        assert [p.reason for p in dr_specs.problems(closed, later)] == ["WindowNeverOpens"]
        assert "03:00-04:00" in dr_specs.problems(closed, later)[0].message
        assert dr_specs.problems(fine, later) == []
