"""Every kind's status goes through its pydantic `*Status` model before it is written: a status with a
wrong type or a phase the kind does not have never reaches the API server; the runtime logs it and posts
one Warning Event `StatusRefused` naming the field, and the next good status is written as usual."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.census import ComputeCensusStatus
from datacloud.api.citydatacloud import CityDataCloudStatus
from datacloud.api.datacentre import DataCentreStatus
from datacloud.api.datazone import DataZoneStatus
from datacloud.api.drreplica import DRReplicaStatus
from datacloud.builders.written import InvalidStatus, WrittenStatus, validated
from datacloud.reconcile import (
    census,
    census_runtime,
    centre_runtime,
    city_runtime,
    citydatacloud,
    datacentre,
    datazone,
    drreplica,
    zone_runtime,
)
from tests.support.recorder import StatusRecorder as Recorder

GOOD = {"phase": "Invalid", "observedGeneration": 1, "conditions": []}  # a phase every kind has
# (status, the field the refusal must name) per way of being wrong
BAD = [
    ({"phase": "Exploded"}, "status.phase"),
    ({"observedGeneration": "one"}, "status.observedGeneration"),
    ({"conditions": [{"type": "Ready", "status": "Maybe"}]}, "status.conditions.0.status"),
]
MODELS = [DataCentreStatus, DataZoneStatus, CityDataCloudStatus, ComputeCensusStatus, DRReplicaStatus]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize(("status", "field"), BAD, ids=["phase", "type", "condition"])
def test_every_kinds_model_refuses_a_wrong_status_by_field(model: Any, status: Any, field: str) -> None:
    assert validated(model, GOOD) == GOOD
    with pytest.raises(InvalidStatus, match=field.replace(".", r"\.")):
        validated(model, {**GOOD, **status})


def test_each_kind_has_only_its_own_phases() -> None:
    validated(DRReplicaStatus, {"phase": "FailedOver"})
    validated(DataCentreStatus, {"phase": "Down"})
    for model in (DataCentreStatus, DataZoneStatus, CityDataCloudStatus, ComputeCensusStatus):
        with pytest.raises(InvalidStatus):
            validated(model, {"phase": "FailedOver"})


PHASES = {
    DataCentreStatus: {"Up", "Degraded", "Down", "Unknown", "Invalid"},
    DataZoneStatus: {"Ready", "Degraded", "Conflict", "Invalid"},
    CityDataCloudStatus: {"Available", "Unavailable", "Invalid"},
    ComputeCensusStatus: {"Scheduled", "Suspended", "Succeeded", "Degraded", "Failed", "Invalid"},
}


@given(
    st.sampled_from(sorted(PHASES, key=lambda m: m.__name__)), st.text() | st.sampled_from(["Ready", "Up"])
)
def test_a_phase_is_accepted_exactly_when_the_kind_has_it(model: Any, phase: str) -> None:
    try:
        validated(model, {"phase": phase})
    except InvalidStatus:
        assert phase not in PHASES[model]
    else:
        assert phase in PHASES[model]


def test_a_refused_status_leaves_the_written_one_and_says_so_once() -> None:
    written = WrittenStatus.start({"status": {"phase": "Up"}}, DataCentreStatus)
    for repeated in (False, True):
        with pytest.raises(InvalidStatus) as e:
            written.checked({"phase": "Sideways"})
        assert e.value.repeated is repeated
    assert written.checked({"phase": "Down"}) == {"phase": "Down"}
    assert written.status == {"phase": "Up"}  # checked, not written
    with pytest.raises(InvalidStatus) as e:
        written.checked({"phase": "Sideways"})
    assert not e.value.repeated  # a good status in between: the refusal is news again


def test_a_patch_is_checked_as_the_status_it_leaves() -> None:
    written = WrittenStatus.start({"status": {"phase": "Scheduled", "snapshots": 3}}, ComputeCensusStatus)
    assert written.checked({"nextRunTime": None}) == {"nextRunTime": None}  # a null removes: fine
    written.status["snapshots"] = "three"  # what is stored counts too, not only the patch
    with pytest.raises(InvalidStatus, match=r"status\.snapshots"):
        written.checked({"phase": "Succeeded"})


# --- The runtimes: a refused status is never sent, and is said once --------------------------------------
def _events() -> tuple[list[tuple[str, str, str]], Any]:
    events: list[tuple[str, str, str]] = []
    return events, lambda *e: events.append(e)


def test_centre_runtime_refuses_before_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    statuses = iter([{"phase": "Sideways"}, {"phase": "Sideways"}, {"phase": "Up", "health": "Up"}])
    monkeypatch.setattr(
        datacentre, "probe_once", lambda kube, body: datacentre.ProbeReport(next(statuses), 1.0)
    )
    kube, (events, emit) = Recorder(), _events()
    rt = centre_runtime.CentreRuntime(kube, "c", emit, {})  # type: ignore[arg-type]
    for _ in range(3):
        rt.run({"metadata": {"name": "c"}, "spec": {}})
    assert kube.patches == [{"phase": "Up", "health": "Up"}]
    assert [(k, r) for k, r, _ in events] == [("Warning", "StatusRefused")]
    assert "status.phase" in events[0][2]


def test_city_runtime_refuses_before_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    report = citydatacloud.HeartbeatReport({"phase": "Available", "nodes": {"total": "many"}}, 30.0)
    monkeypatch.setattr(citydatacloud, "heartbeat", lambda kube, body, link: report)
    kube, (events, emit) = Recorder(), _events()
    rt = city_runtime.CityRuntime(kube, "fz", emit, {})  # type: ignore[arg-type]
    rt.run({"metadata": {"name": "fz"}, "spec": {}})
    rt.close(deleted=True)
    assert kube.patches == []
    assert [(k, r) for k, r, _ in events] == [("Warning", "StatusRefused")]
    assert "status.nodes.total" in events[0][2]


def test_census_runtime_refuses_before_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(census, "decide", lambda body, now: census.Decision(None, None))
    monkeypatch.setattr(census, "idle_status", lambda body, decision, now: {"phase": "Running"})
    kube, (events, emit) = Recorder(), _events()
    rt = census_runtime.CensusRuntime(kube, "province", emit, {})  # type: ignore[arg-type]
    rt.run({"metadata": {"name": "province"}, "spec": {}})
    assert kube.patches == []
    assert [(k, r) for k, r, _ in events] == [("Warning", "StatusRefused")]
    assert "status.phase" in events[0][2]


def test_zone_write_refuses_before_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = Recorder()
    report = datazone.ZoneReport({"phase": "Ready", "namespaces": "a,b"}, [], 10.0)
    monkeypatch.setattr(zone_runtime, "zone_kube", lambda: kube)
    monkeypatch.setattr(datazone, "reconcile", lambda kube, body, obs, on_write=None: report)
    last = WrittenStatus.start({}, DataZoneStatus)
    body = {"metadata": {"name": "z", "resourceVersion": "10"}, "status": {}}
    with pytest.raises(InvalidStatus, match=r"status\.namespaces"):
        zone_runtime.reconcile_and_write("z", body, datazone.Observed(), last)
    assert kube.patches == []
    report.status["namespaces"] = ["a", "b"]
    _, wrote = zone_runtime.reconcile_and_write("z", body, datazone.Observed(), last)
    assert kube.patches == [report.status]
    assert wrote == (report.status, "11")


def test_replica_runtime_refuses_before_the_api_server() -> None:
    kube, (events, emit) = Recorder(), _events()
    rt = drreplica.ReplicaRuntime(kube, "ns", "r", emit)  # type: ignore[arg-type]
    body: dict[str, Any] = {"metadata": {"name": "r", "namespace": "ns", "resourceVersion": "10"}}
    rt.status = {"phase": "Protected", "fencingEpoch": "second"}
    rt._write(body, force=True)
    assert kube.patches == []
    assert [(k, r) for k, r, _ in events] == [("Warning", "StatusRefused")]
    assert "status.fencingEpoch" in events[0][2]
    with pytest.raises(InvalidStatus):  # a step that must not run unrecorded does not run
        rt.write_now(body)
    rt.status = {"phase": "Protected", "fencingEpoch": 2}
    rt.write_now(body)
    assert kube.patches == [{"phase": "Protected", "fencingEpoch": 2}]
    assert rt.written.status == {"phase": "Protected", "fencingEpoch": 2}
