"""Pure parts of the census: trends, snapshot placement, placement advice, utilisation aggregation,
and the rows of a generated fleet checked against figures computed here, independently."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.census import report, report_rows
from datacloud.census.aggregate import project_node, project_pod
from datacloud.census.placement import Request, advise
from datacloud.census.run import CityTarget, Collected, NodeFree, Zone, assemble, reduce_city
from datacloud.census.snapshots import Entry, Snapshot, plan
from datacloud.census.trends import NOT_ENOUGH_HISTORY, NOT_GROWING, forecast
from datacloud.census.usage import aggregate, percentile
from tests.support.fleet import GIB, make_fleet

T0 = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)


def test_forecast_extends_the_fitted_line_to_allocatable() -> None:
    # 10 cores more every day, 100 of 200 requested now: 10 days left
    points = [(T0 + timedelta(days=d), 70.0 + 10 * d) for d in range(4)]
    f = forecast(points, 200.0)
    assert f.days == pytest.approx(10.0)
    assert f.per_day == pytest.approx(10.0)


def test_forecast_says_why_it_cannot() -> None:
    two = [(T0, 1.0), (T0 + timedelta(days=1), 2.0)]
    assert forecast(two, 10.0).text == NOT_ENOUGH_HISTORY
    flat = [(T0 + timedelta(days=d), 5.0) for d in range(5)]
    assert forecast(flat, 10.0).text == NOT_GROWING
    over = [(T0 + timedelta(days=d), 9.0 + d) for d in range(3)]
    assert forecast(over, 10.0).days == 0.0
    assert forecast(flat, 0.0).days is None  # a city without GPUs never "runs out" of them


def _entries(n: int, size: int, where: str = "configmap") -> list[Entry]:
    return [Entry(f"2025-01-0{i + 1}T00:00:00Z", f"k{i}", where, size) for i in range(n)]


def test_snapshots_stay_in_the_configmap_while_they_fit_and_retain_drops_the_oldest() -> None:
    placed = plan(
        _entries(3, 1000), "new", "2025-02-01T00:00:00Z", 1000, retain=3, budget=10_000, s3_location=None
    )
    assert [e.key for e in placed.keep] == ["k1", "k2", "new"]
    assert [e.key for e in placed.drop] == ["k0"]
    assert placed.keep[-1].where == "configmap"
    assert placed.trimmed == 0


def test_a_snapshot_that_does_not_fit_spills_to_the_object_store_and_says_where() -> None:
    placed = plan(
        _entries(3, 2000), "new", "2025-02-01T00:00:00Z", 2000, 10, budget=9000, s3_location="s3://c/b/p/"
    )
    assert placed.keep[-1].where == "s3://c/b/p/new"
    assert placed.drop == []
    assert placed.trimmed == 0


def test_without_an_object_store_old_snapshots_are_evicted_and_counted() -> None:
    placed = plan(_entries(3, 2000), "new", "2025-02-01T00:00:00Z", 2000, 10, budget=9000, s3_location=None)
    assert placed.trimmed == 1
    assert [e.key for e in placed.drop] == ["k0"]
    assert sum(4 * ((e.size + 2) // 3) for e in placed.keep) <= 9000
    too_big = plan([], "new", "2025-02-01T00:00:00Z", 10_000, 10, budget=9000, s3_location=None)
    assert too_big.problem
    assert "configure reports.objectStore" in too_big.problem


def _node(
    city: str, centre: str, name: str, cpu: float, mem_gib: float, gpu: int = 0, model: str = ""
) -> NodeFree:
    return NodeFree(city, centre, name, cpu, mem_gib * GIB, gpu, model)


def test_placement_ranks_preferred_city_then_headroom_and_explains_exclusions() -> None:
    free = [
        _node("350100", "fz-a", "a1", 128, 512, 8, "NVIDIA-A100-SXM4-80GB"),
        _node("350100", "fz-a", "a2", 128, 512, 8, "NVIDIA-A100-SXM4-80GB"),
        _node("350200", "xm-a", "b1", 80, 300, 4, "NVIDIA-A100-SXM4-80GB"),
        _node("350200", "xm-l", "c1", 128, 512, 8, "NVIDIA-L40S"),
        _node("350300", "pt-a", "d1", 32, 512, 8, "NVIDIA-A100-SXM4-80GB"),
        _node("350300", "pt-m", "e1", 128, 128, 8, "NVIDIA-A100-SXM4-80GB"),
    ]
    request = Request(cpu=64, memory=256 * GIB, gpu=4, gpu_model="a100", city="350200")
    advice = advise(request, free, [("350400", "sm-empty")])
    assert [(c.city_code, c.centre, c.fits) for c in advice.ranked] == [
        ("350200", "xm-a", 1),  # preferred city first, although Fuzhou has more room
        ("350100", "fz-a", 4),
    ]
    reasons = {centre: reason for _, centre, reason in advice.excluded}
    assert "no free GPU of model a100" in reasons["xm-l"]
    assert "NVIDIA-L40S" in reasons["xm-l"]
    assert reasons["pt-a"] == "at most 32 cores free on one node, 64 requested"
    assert reasons["pt-m"].startswith("at most 128Gi memory free on one node")
    assert reasons["sm-empty"] == "no schedulable nodes"


def test_placement_refuses_an_unknown_city() -> None:
    with pytest.raises(ValueError, match="unknown city '999999'"):
        Request(cpu=1, memory=GIB, city="999999")


def test_utilisation_is_the_p95_of_the_row_sum_not_a_sum_of_p95s() -> None:
    # two nodes peaking at different times: the row's p95 is 11, not 10 + 10
    series = [
        ({"node": "a"}, [(float(t), 10.0 if t == 3 else 1.0) for t in range(20)]),
        ({"node": "b"}, [(float(t), 10.0 if t == 7 else 1.0) for t in range(20)]),
        ({"node": "zz"}, [(0.0, 5.0)]),
    ]
    got, unmatched = aggregate(series, lambda labels: (("row",),) if labels["node"] in "ab" else ())
    assert unmatched == 1
    assert got[("row",)].p95 == 11.0
    assert got[("row",)].avg == pytest.approx((18 * 2 + 11 * 2) / 20)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10


def _fleet_rows() -> tuple[Snapshot, dict[str, object]]:
    fleet = make_fleet("350200", 40, 300)
    nodes = [project_node(n.manifest()) for n in fleet.nodes]
    pods = [
        p for p in (project_pod({**fp.manifest(), "status": {"phase": fp.phase}}) for fp in fleet.pods) if p
    ]
    target = CityTarget("xiamen", "350200", "厦门", "Xiamen", None)
    city = reduce_city(target, nodes, pods, "2025-01-06T06:00:00Z")
    collected = Collected([city], {}, [], {}, [], T0, T0 + timedelta(seconds=3))
    zones = [
        Zone("z1", "350200", {"requests.cpu": 100.0, "requests.memory": 64.0 * GIB}),
        Zone("z2", "", {"cpu": 50.0}),
    ]
    return assemble("unit", collected, zones, []), fleet.expected()


def test_rows_match_the_generated_fleet_and_the_csv_reads_back() -> None:
    snapshot, want = _fleet_rows()
    parsed = list(csv.DictReader(io.StringIO(report.to_csv(snapshot))))
    assert [r["level"] for r in parsed][:2] == ["province", "city"]
    city = next(r for r in parsed if r["level"] == "city")
    nodes = want["nodes"]
    assert isinstance(nodes, dict)
    assert int(city["nodes_total"]) == nodes["total"]
    assert int(city["nodes_schedulable"]) == nodes["schedulable"]
    assert float(city["cpu_allocatable"]) == want["cpu_allocatable"]
    assert float(city["cpu_requested"]) == want["cpu_requested"]
    assert float(city["memory_requested"]) == want["memory_requested"]
    assert float(city["cpu_committed"]) == 100.0
    assert float(city["cpu_overcommit_ratio"]) == pytest.approx(100.0 / want["cpu_allocatable"], abs=1e-4)  # type: ignore[operator]
    province = parsed[0]
    assert float(province["cpu_committed"]) == 150.0  # the province counts its own zone too
    assert city["data_age_seconds"] == "3"
    assert city["cpu_exhaustion_note"] == NOT_ENOUGH_HISTORY
    # centre rows add up to the city's node counts; GPU rows per model add up to the fleet's GPUs
    centres = [r for r in parsed if r["level"] == "centre"]
    assert sum(int(r["nodes_total"]) for r in centres) == nodes["total"]
    gpus = want["gpus"]
    assert isinstance(gpus, dict)
    for model, figures in gpus.items():
        rows = [r for r in parsed if r["level"] == "gpu" and r["gpu_model"] == model]
        assert sum(int(r["gpu_allocatable"]) for r in rows) == figures["allocatable"]
        assert sum(int(r["gpu_requested"]) for r in rows) == figures["requested"]
    doc = json.loads(report.to_json(snapshot, [snapshot]))
    assert doc["rows"][1]["cpu_requested"] == want["cpu_requested"]
    assert {c["id"] for c in doc["columns"]} == set(parsed[0])


def test_largest_free_is_the_biggest_single_node_remainder() -> None:
    fleet = make_fleet("350100", 9, 0)
    nodes = [project_node(n.manifest()) for n in fleet.nodes]
    target = CityTarget("fz", "350100", "福州", "Fuzhou", None)
    rows = reduce_city(target, nodes, [], "2025-01-06T06:00:00Z").rows
    sched = [n for n in fleet.nodes if n.ready and not n.cordoned]
    assert rows[0]["cpu_largest_free"] == max(n.alloc_millicores for n in sched) / 1000
    assert rows[0]["cpu_free"] == sum(n.alloc_millicores for n in sched) / 1000


def test_a_city_that_cannot_be_read_carries_its_previous_rows() -> None:
    first, _ = _fleet_rows()
    target = CityTarget("xiamen", "350200", "厦门", "Xiamen", None, "Unreachable: no answer")
    from datacloud.census.run import CityResult

    collected = Collected(
        [CityResult(target, error="Unreachable: no answer")],
        {},
        [],
        {},
        ["city xiamen: down"],
        T0 + timedelta(days=1),
        T0 + timedelta(days=1, seconds=1),
    )
    second = assemble("unit", collected, [], [first])
    city = next(r for r in second.rows if r["level"] == "city")
    assert city["carried"] is True
    assert "Unreachable" in city["note"]
    assert city["data_time"] == "2025-01-06T06:00:00Z"
    aged = next(r for r in report_rows.with_age(second) if r["level"] == "city")
    assert aged["data_age_seconds"] == 86401


def _census(status: dict[str, object] | None = None, **spec: object) -> dict[str, object]:
    return {"metadata": {"name": "c", "creationTimestamp": "2025-01-06T05:00:00Z", "annotations": {}},
            "spec": {"schedule": "0 6 * * *", **spec}, "status": status or {}}  # fmt: skip


def test_a_run_is_due_on_the_schedule_since_the_last_run() -> None:
    from datacloud.reconcile.census import decide

    before = decide(_census(), datetime(2025, 1, 6, 5, 59, tzinfo=UTC))
    assert before.reason is None
    assert before.next_run == datetime(2025, 1, 6, 6, 0, tzinfo=UTC)
    assert decide(_census(), datetime(2025, 1, 6, 6, 0, tzinfo=UTC)).reason == "Scheduled"
    ran = _census({"lastRunTime": "2025-01-06T06:00:05Z"})
    assert decide(ran, datetime(2025, 1, 6, 12, 0, tzinfo=UTC)).reason is None
    assert decide(_census(suspend=True), datetime(2025, 1, 7, tzinfo=UTC)).reason is None


def test_a_new_run_now_annotation_asks_for_one_run() -> None:
    from datacloud import RUN_NOW
    from datacloud.reconcile.census import decide

    body = _census({"lastRunTime": "2025-01-06T06:00:05Z"}, suspend=True)
    body["metadata"]["annotations"] = {RUN_NOW: "r1"}  # type: ignore[index]
    asked = decide(body, datetime(2025, 1, 6, 7, tzinfo=UTC))
    assert asked.reason == "Requested"
    assert asked.request == "r1"
    body["status"]["lastRunRequest"] = "r1"  # type: ignore[index]
    assert decide(body, datetime(2025, 1, 6, 7, tzinfo=UTC)).reason is None


def test_a_schedule_croniter_refuses_is_a_problem_not_a_crash() -> None:
    from datacloud.reconcile.census import decide

    bad = decide(_census(schedule="61 * * * *"), datetime(2025, 1, 6, tzinfo=UTC))
    assert bad.reason is None
    assert bad.problem
    assert "minute field" in bad.problem  # the range check names the field


def test_a_schedule_that_never_fires_names_the_field_and_gets_one_event() -> None:
    """31 February passes cron's syntax but names no date: said in the user's terms, not croniter's."""
    from datacloud.reconcile.census import decide, idle_status, spec_events

    body = _census(schedule="0 6 31 2 *")
    now = datetime(2025, 1, 6, tzinfo=UTC)
    bad = decide(body, now)
    assert bad.problem is not None
    assert "spec.schedule '0 6 31 2 *' never fires" in bad.problem
    assert "failed to find" not in bad.problem
    patch = idle_status(body, bad, now)
    assert patch is not None
    events = spec_events(body["status"], patch)  # type: ignore[arg-type]
    assert [(e.type, e.reason) for e in events] == [("Warning", "InvalidSpec")]
    assert "never fires" in events[0].message
    assert spec_events(patch, patch) == []  # the same problem again: no second Event


@settings(max_examples=80, deadline=None)
@given(
    zh=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20).map(
        lambda t: "=" + t
    )
    | st.sampled_from(['=HYPERLINK("http://x","厦门")', "+1+1", "-2+3", "@SUM(A1)", "＝1+1", "\t=1", "厦门"]),
)
def test_a_display_name_never_reaches_a_spreadsheet_as_a_formula(zh: str) -> None:
    """City display names are free text from the CityDataCloud spec and go into the CSV as they are: one
    starting with = + - @ (or their full-width forms) is written with a leading apostrophe."""
    snapshot, _ = _fleet_rows()
    for row in snapshot.rows:
        if row["level"] == "city":
            row["city_zh"] = zh
    parsed = list(csv.DictReader(io.StringIO(report.to_csv(snapshot))))
    cell = next(r for r in parsed if r["level"] == "city")["city_zh"]
    assert not cell.startswith(report.FORMULA_START)
    assert cell in (zh, "'" + zh)
    assert float(next(r for r in parsed if r["level"] == "city")["cpu_allocatable"]) > 0  # numbers untouched


def test_a_run_that_failed_on_an_api_error_says_the_servers_message() -> None:
    """The condition kept the first 200 characters of the ApiException's text, which are its response
    headers: the reason (here, a label value too long) was cut off."""
    from kubernetes.client.exceptions import ApiException

    from datacloud.reconcile import census as census_reconcile

    error = ApiException(status=422, reason="Unprocessable Entity")
    error.headers = {"Audit-Id": "0" * 36, "Cache-Control": "no-cache, private", "X-Kubernetes-Pf": "x" * 80}
    error.body = json.dumps(
        {"message": 'ConfigMap "census-x-snapshots" is invalid: metadata.labels: Too long'}
    )
    decision = census_reconcile.Decision(reason="Scheduled", request=None, next_run=None)
    patch = census_reconcile.failed_status({}, decision, error)
    message = patch["conditions"][0]["message"]
    assert message == (
        'ApiException: 422 Unprocessable Entity: ConfigMap "census-x-snapshots" is invalid: '
        "metadata.labels: Too long"
    )
    assert "Audit-Id" not in message


@settings(max_examples=60, deadline=None)
@given(nodes=st.integers(1, 60), pods=st.integers(0, 2000))
def test_the_dev_fleet_never_binds_more_devices_to_a_node_than_it_has(nodes: int, pods: int) -> None:
    """The dev stack's cities are what a new user first reads a census of: a node showing more GPUs
    requested than it has would read as a census bug (it did: 14 L40S requested of 8)."""
    fleet = make_fleet("350100", nodes, pods)
    held: dict[str, int] = {}
    for pod in fleet.pods:
        if pod.phase == "Running":
            held[pod.node] = held.get(pod.node, 0) + pod.gpus
    gpus = {n.name: n.gpus for n in fleet.nodes}
    assert all(count <= gpus[node] for node, count in held.items())
    for model, figures in fleet.expected()["gpus"].items():
        assert figures["requested"] <= figures["allocatable"], model
