"""The DataZone handler's bookkeeping: the status a reconcile starts from, kopf's diff base kept in memory,
and the quota usage carried over while the quota controller has not counted yet."""

from __future__ import annotations

from typing import Any, cast

import kopf

from datacloud import GROUP
from datacloud.adapters.kube import Kube
from datacloud.api.datazone import DataZoneSpec, DataZoneStatus
from datacloud.builders.datazone import QUOTA_NAME
from datacloud.builders.written import WrittenStatus
from datacloud.handlers.lifecycle import DIFF_BASE_IN_MEMORY, DiffBaseStorage, forget_diff_base
from datacloud.reconcile import datazone


def zone(version: str, status: dict[str, Any] | None = None, **meta: Any) -> kopf.Body:
    raw = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "DataZone",
        "metadata": {"name": "z", "uid": "u-1", "resourceVersion": version, **meta},
        "spec": {"namespaces": ["a"]},
        "status": status or {},
    }
    return kopf.Body(raw)  # type: ignore[arg-type]


def test_a_status_write_counts_until_kopf_has_seen_it() -> None:
    last = WrittenStatus.start(zone("10", {"phase": "Degraded"}), DataZoneStatus)
    last.wrote({"phase": "Ready"}, after="12")
    assert last.current(zone("10", {"phase": "Degraded"})) == {"phase": "Ready"}  # the write's starting body
    assert last.current(zone("11", {"phase": "Degraded"})) == {"phase": "Ready"}  # kopf's own patch between
    assert last.current(zone("12", {"phase": "Ready"})) == {"phase": "Ready"}
    assert last.current(zone("13", {"phase": "Degraded"})) == {"phase": "Degraded"}  # caught up: the truth


def test_zone_diff_base_lives_in_memory_other_kinds_in_annotations() -> None:
    assert "DataZone" in DIFF_BASE_IN_MEMORY
    storage = DiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    body = zone("1", labels={"a": "b"}, managedFields=[{"manager": "m"}])
    essence = storage.build(body=body)
    reference = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    assert essence == reference.build(body=body)  # the same essence, built from less
    assert storage.fetch(body=body) is None

    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=essence)
    assert not patch  # no PATCH of the zone for kopf's bookkeeping
    assert storage.fetch(body=body) == essence
    forget_diff_base("u-1")
    assert storage.fetch(body=body) is None

    other = kopf.Body({**dict(body), "kind": "DataCentre"})  # type: ignore[arg-type]
    storage.store(body=other, patch=patch, essence=essence)
    assert patch["metadata"]["annotations"][f"{GROUP}/last-handled-configuration"]


def test_quota_usage_not_counted_yet_keeps_the_last_reported_figure() -> None:
    body = {
        "metadata": {"name": "z", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1},
        "spec": {
            "department": {"name": "d"},
            "classification": "General",
            "namespaces": ["a"],
            "quota": {"hard": {"pods": "4"}},
        },
        "status": {
            "quota": {"namespaces": [{"namespace": "a", "hard": {"pods": "4"}, "used": {"pods": "3"}}]}
        },
    }
    spec = DataZoneSpec.model_validate(body["spec"])
    quota = {"kind": "ResourceQuota", "metadata": {"name": QUOTA_NAME}, "spec": {"hard": {"pods": "4"}}}

    def used(counted: dict[str, str]) -> dict[str, str]:
        rq = {**quota, "status": {"used": counted}}
        obs = datazone.Observed(children={"a": {("ResourceQuota", QUOTA_NAME): rq}})
        run = datazone._Run(cast(Kube, None), body, spec, obs)  # nothing to write: no client needed
        run.found.active.append("a")
        run.quota_targets()
        return run.quota_used["a"]

    assert used({}) == {"pods": "3"}
    assert used({"pods": "1"}) == {"pods": "1"}  # the controller's count wins once there is one


def test_a_reconcile_tells_of_each_object_it_writes_with_the_version_it_produced() -> None:
    class Writes:
        def __init__(self) -> None:
            self.version = 100

        def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
            self.version += 1
            return {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": str(self.version)}}

        def read(self, *args: Any) -> dict[str, Any]:
            return {}

    told: list[tuple[str, str, str, str]] = []
    body = {
        "metadata": {"name": "z", "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "department": {"name": "省大数据管理局", "code": "FJ-DSJ"},
            "classification": "General",
            "namespaces": ["a"],
            "quota": {"hard": {"pods": "5"}},
            "access": {"admins": ["admins"]},
        },
    }
    report = datazone.reconcile(cast(Kube, Writes()), body, datazone.Observed(), lambda *w: told.append(w))
    assert report.status["phase"] != "Invalid"
    assert told[0] == ("", "Namespace", "a", "101")
    assert {(ns, kind) for ns, kind, _, _ in told[1:]} >= {("a", "ResourceQuota"), ("a", "NetworkPolicy")}
    assert [v for *_, v in told] == [str(101 + i) for i in range(len(told))]
    assert len(told) == report.writes


def test_a_new_zone_wakes_the_handler_only_when_another_zone_waits_on_it() -> None:
    from datacloud.handlers.datazone import _zone_event_matters

    def matters(kind: str, index: dict[Any, Any]) -> bool:
        body = kopf.Body({"metadata": {"name": "z", "generation": 1}, "spec": {"namespaces": ["a"]}})  # type: ignore[arg-type]
        return _zone_event_matters({"type": kind, "object": {}}, "z", body, dz_zones=index)  # type: ignore[arg-type]

    mine = {("zone", "z"): ["z"], ("ns", "a"): [datazone.Claim("z", "t1")]}
    assert not matters("ADDED", mine)  # nobody else names it or lists its namespace
    assert not matters("MODIFIED", mine)  # its status, kopf's finalizer
    assert matters("DELETED", mine)
    assert matters("ADDED", {**mine, ("peer", "z"): ["other"]})  # another zone's allowFrom names it
    assert matters("ADDED", {**mine, ("ns", "a"): [datazone.Claim("z", "t1"), datazone.Claim("y", "t0")]})


def test_what_changed_while_a_zone_reconciled_is_known_to_it_or_wakes_it_again() -> None:
    from datacloud.reconcile import zone_runtime
    from datacloud.reconcile.datazone_cache import Change

    reported = {"quota": {"hard": {"pods": "5"}, "namespaces": [{"namespace": "a", "used": {"pods": "0"}}]}}
    zone_runtime.written["z"] = WrittenStatus(DataZoneStatus, reported)
    own = {("NetworkPolicy", "a", "deny"): "7"}
    try:
        explained = zone_runtime.explained
        assert explained("z", [Change("NetworkPolicy", "a", "deny", "7")], own)  # its own write's echo
        assert not explained("z", [Change("NetworkPolicy", "a", "deny", "8")], own)  # edited after it
        assert not explained("z", [Change("NetworkPolicy", "a", "allow", "7")], own)  # another object
        assert not explained("z", [None], own)  # a relist found something
        counted = Change("ResourceQuota", "a", QUOTA_NAME, "9", {"pods": "0"})
        assert explained("z", [counted], own)  # usage it already reports
        assert not explained("z", [Change("ResourceQuota", "a", QUOTA_NAME, "9", {"pods": "1"})], own)
        assert not explained("z", [Change("ResourceQuota", "a", QUOTA_NAME, "9")], own)  # not usage only
        assert not explained("z", [Change("ResourceQuota", "b", QUOTA_NAME, "9", {"pods": "0"})], own)
        assert not explained("y", [counted], own)  # a zone with nothing written
    finally:
        zone_runtime.written.pop("z", None)


def test_a_zone_name_too_long_for_a_label_is_invalid_not_retried_forever() -> None:
    """A zone admitted before the name rule: its name cannot label a namespace, so the reconcile says so
    (Invalid, the rule's message) before writing anything."""
    body = {
        "metadata": {"name": "z" * 64, "generation": 3},
        "spec": {"department": {"name": "省"}, "classification": "General", "namespaces": ["a"]},
    }
    report = datazone.reconcile(cast(Kube, None), body, datazone.Observed())
    assert report.status["phase"] == "Invalid"
    ready = report.status["conditions"][0]
    assert (ready["reason"], ready["status"]) == ("InvalidSpec", "False")
    assert "at most 63 characters" in ready["message"]
    assert report.events[0][:2] == ("Warning", "InvalidSpec")


def test_a_quota_exponent_no_one_can_compute_is_invalid_not_a_crash() -> None:
    """`1e999999999` crashed the zone daemon (decimal.InvalidOperation) every minute; now it is Invalid."""
    spec = {
        "department": {"name": "省"},
        "classification": "General",
        "namespaces": ["a"],
        "quota": {"hard": {"pods": "1e999999999"}},
    }
    report = datazone.reconcile(
        cast(Kube, None), {"metadata": {"name": "z"}, "spec": spec}, datazone.Observed()
    )
    assert report.status["phase"] == "Invalid"
    assert "exponent" in report.status["conditions"][0]["message"]


def test_a_department_code_that_is_no_label_value_is_invalid() -> None:
    for code in ("-x", "x-", "-"):
        spec = {"department": {"name": "省", "code": code}, "classification": "General", "namespaces": ["a"]}
        report = datazone.reconcile(
            cast(Kube, None), {"metadata": {"name": "z"}, "spec": spec}, datazone.Observed()
        )
        assert report.status["phase"] == "Invalid", code
