"""DR safety rules that need no store: overlapping replicas, schedules that never fire, cron fields in
range, and what divergent writes say about a failover's real loss."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from croniter import CroniterBadCronError, croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.api import cron
from datacloud.api.drreplica import DRReplicaSpec
from datacloud.failover.topology import Copy, Flow
from datacloud.reconcile import dr_divergent, dr_overlap, dr_specs


def spec(bucket: str = "data", prefix: str = "", **target: Any) -> DRReplicaSpec:
    return DRReplicaSpec.model_validate(
        {
            "source": {"centre": "prod", "bucket": bucket, "prefix": prefix},
            "activeCentre": "prod",
            "targets": [
                {
                    "name": "near",
                    "centre": "near",
                    "bucket": bucket,
                    "prefix": prefix,
                    "mode": "Continuous",
                    "rpoTarget": "10s",
                },
                {
                    "name": "far",
                    "centre": "far",
                    "bucket": bucket,
                    "prefix": prefix,
                    "mode": "Scheduled",
                    "schedule": "0 2 * * *",
                    **target,
                },
            ],
        }
    )


def body(name: str, created: str, s: DRReplicaSpec, namespace: str = "dr") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": s.model_dump(by_alias=True, exclude_none=True),
    }


def test_the_later_of_two_replicas_sharing_keys_names_the_earlier_and_the_earlier_runs() -> None:
    first = body("first", "2026-01-01T00:00:00Z", spec(prefix="records"))
    second = body("second", "2026-01-01T00:00:05Z", spec(prefix="records/2026"))
    s2 = DRReplicaSpec.model_validate(second["spec"])
    found = dr_overlap.between(second, s2, [first])
    assert found is not None
    assert found.reason == "OverlapsReplica"
    assert "dr/first" in found.message
    assert dr_overlap.between(first, DRReplicaSpec.model_validate(first["spec"]), [second]) is None


def test_prefixes_that_are_siblings_do_not_overlap() -> None:
    first = body("first", "2026-01-01T00:00:00Z", spec(prefix="records"))
    other = body("other", "2026-01-01T00:00:05Z", spec(prefix="records2"))
    assert dr_overlap.between(other, DRReplicaSpec.model_validate(other["spec"]), [first]) is None


def test_same_second_is_ordered_by_namespace_and_name_so_exactly_one_stands_aside() -> None:
    a = body("a", "2026-01-01T00:00:00Z", spec())
    b = body("b", "2026-01-01T00:00:00Z", spec())
    sa, sb = (DRReplicaSpec.model_validate(x["spec"]) for x in (a, b))
    assert (dr_overlap.between(a, sa, [b]) is None) != (dr_overlap.between(b, sb, [a]) is None)


def test_a_target_inside_another_target_is_an_overlap_of_the_replica_itself() -> None:
    s = DRReplicaSpec.model_validate(
        {
            "source": {"centre": "prod", "bucket": "data"},
            "activeCentre": "prod",
            "targets": [
                {"name": "a", "centre": "near", "bucket": "copy", "mode": "Continuous", "rpoTarget": "1m"},
                {
                    "name": "b",
                    "centre": "near",
                    "bucket": "copy",
                    "prefix": "inner",
                    "mode": "Continuous",
                    "rpoTarget": "1m",
                },
            ],
        }
    )
    found = dr_overlap.within(s)
    assert found is not None
    assert found.reason == "OverlapsItself"


def stores(**by_centre: str) -> dr_overlap.StoreOf:
    """Centre name → store, as the DataCentres' endpoints would say (others: their own store)."""
    return lambda centre: by_centre.get(centre, dr_overlap.by_name(centre))


def test_two_centres_on_one_store_make_a_target_in_its_own_source_an_overlap_named_as_such() -> None:
    s = spec()  # prod/data → near/data and far/data
    assert dr_overlap.within(s) is None
    one = stores(prod="http://127.0.0.1:7070", near="http://127.0.0.1:7070")
    found = dr_overlap.within(s, one)
    assert found is not None
    assert found.reason == "OverlapsItself"
    assert "centres prod and near are one object store, http://127.0.0.1:7070" in found.message
    # Centres on stores of their own stay apart.
    assert dr_overlap.within(spec(), stores(prod="s", near="s2", far="s3")) is None


def test_replicas_on_differently_named_centres_of_one_store_overlap() -> None:
    first = body("first", "2026-01-01T00:00:00Z", spec(prefix="records"))
    other = DRReplicaSpec.model_validate(
        {
            "source": {"centre": "alias", "bucket": "data", "prefix": "records/2026"},
            "activeCentre": "alias",
            "targets": [
                {"name": "t", "centre": "elsewhere", "bucket": "xyz", "mode": "Continuous", "rpoTarget": "1m"}
            ],
        }
    )
    second = body("second", "2026-01-01T00:00:05Z", other)
    assert dr_overlap.between(second, other, [first]) is None
    found = dr_overlap.between(second, other, [first], stores(prod="http://s:1", alias="http://s:1"))
    assert found is not None
    assert found.reason == "OverlapsReplica"
    assert "centres alias and prod are one object store" in found.message


@given(url=st.sampled_from(["http://Host", "HTTP://host:80", "http://host:80/", "http://HOST/"]))
def test_one_store_however_its_url_is_spelled(url: str) -> None:
    from datacloud.api.overlap import store_name

    assert store_name(url) == "http://host:80"
    assert store_name("https://host") == "https://host:443" != store_name("http://host:443")


NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_schedule_that_never_fires_is_named_by_field_and_leaves_the_other_targets_alone() -> None:
    found = dr_specs.problems(spec(schedule="0 0 31 2 *"), NOW)
    assert [(p.target, p.field, p.reason) for p in found] == [
        ("far", "spec.targets[1].schedule", "ScheduleNeverFires")
    ]
    assert dr_specs.problems(spec(), NOW) == []


def test_a_window_containing_none_of_the_schedule_times_is_named() -> None:
    found = dr_specs.problems(spec(window={"start": "03:00", "end": "04:00"}), NOW)
    assert [(p.field, p.reason) for p in found] == [("spec.targets[1].window", "WindowNeverOpens")]
    assert dr_specs.problems(spec(window={"start": "01:00", "end": "05:00"}), NOW) == []


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("99 99 * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 0 32 * *", "day of month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * * 8", "day of week"),
    ],
)
def test_out_of_range_cron_fields_are_refused_naming_the_field(schedule: str, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        cron.check(schedule)


value = st.one_of(st.integers(0, 99).map(str), st.sampled_from(["*", "?", "jan", "MON", "L", "5#2"]))
item = st.one_of(
    value,
    st.tuples(value, value).map("-".join),
    st.tuples(value, st.integers(1, 30)).map(lambda t: f"{t[0]}/{t[1]}"),
)
field_text = st.lists(item, min_size=1, max_size=3).map(",".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(field_text, min_size=5, max_size=5).map(" ".join))
def test_what_admission_lets_through_croniter_can_read(schedule: str) -> None:
    try:
        cron.check(schedule)
    except ValueError:
        return
    try:
        croniter(schedule, NOW)
    except CroniterBadCronError as e:  # pragma: no cover - the failure this test looks for
        if "range" in str(e):
            raise


def test_the_measured_loss_spans_from_the_oldest_kept_write_to_the_cut_and_never_below_the_lag() -> None:
    record = {"cutAt": "2026-01-01T00:00:10+00:00", "oldestWrite": "2026-01-01T00:00:07.500000+00:00"}
    assert dr_divergent.measured_loss(record, 0.0) == 2.5
    assert dr_divergent.measured_loss(record, 4.0) == 4.0
    assert dr_divergent.measured_loss({"cutAt": "x"}, None) is None
    # Writes accepted after the cut, before the fence: lost all the same, never a flattering zero.
    late = {
        "cutAt": "2026-01-01T00:00:10+00:00",
        "oldestWrite": "2026-01-01T00:00:11+00:00",
        "newestWrite": "2026-01-01T00:00:13+00:00",
    }
    assert dr_divergent.measured_loss(late, 0.0) == 2.0
    same_second = {"cutAt": "2026-01-01T00:00:10.2+00:00", "oldestWrite": "2026-01-01T00:00:10+00:00"}
    assert dr_divergent.measured_loss(same_second, 0.0) == 1.0


def test_no_flow_writes_into_a_copy_waiting_for_its_check() -> None:
    s = spec()
    action = {
        "type": "Failover",
        "fromCentre": "prod",
        "targetCentre": "near",
        "fencingEpoch": 2,
        "startedAt": "t",
    }
    status: dict[str, Any] = {}
    dr_divergent.expect(status, s, action)
    prod = Copy("source", "prod", "data", "")
    near = Copy("near", "near", "data", "")
    far = Copy("far", "far", "data", "")
    flows = [
        Flow("source", near, prod, "Continuous", 10, None, None),
        Flow("far", near, far, "Scheduled", None, "0 2 * * *", None),
    ]
    assert [f.target for f in dr_divergent.gate(status, flows)] == ["far"]
    status["divergence"][0]["state"] = "Preserved"
    assert len(dr_divergent.gate(status, flows)) == 2
    dr_divergent.expect(status, s, {**action, "type": "Switchover"})
    assert len(status["divergence"]) == 1  # a planned action fences first and loses nothing


def test_records_still_owing_a_review_are_never_dropped_from_status() -> None:
    s = spec()
    status: dict[str, Any] = {}
    for epoch in range(2, 40):
        action = {
            "type": "Failover",
            "fromCentre": "prod",
            "targetCentre": "near",
            "fencingEpoch": epoch,
            "startedAt": "t",
        }
        dr_divergent.expect(status, s, action)
        status["divergence"][0]["state"] = "Preserved" if epoch % 2 else "Clean"
    states = [r["state"] for r in status["divergence"]]
    assert states.count("Preserved") == 19  # every unreviewed one
    assert len(status["divergence"]) <= dr_divergent.KEEP_RECORDS + 1  # the new one, then the rest
