"""Scheduled full syncs whose runs overlap (a slow run still copying when the next cron time comes): each
run's shards report under the run's own key, and both runs' figures reach the metrics and status.

The shards report through the real `datacloud sync` reporter, parsed from the arguments the operator gives
the Job; only the ConfigMap store is in memory."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.api.drreplica import DRReplicaSpec
from datacloud.cli import _sync_parser
from datacloud.commands.sync import reporter
from datacloud.failover.topology import flows
from datacloud.metrics import REGISTRY
from datacloud.reconcile import dr_scheduled

SHARDS = 2
EXAMPLES = itertools.count()
SPEC = DRReplicaSpec.model_validate(
    {
        "source": {"centre": "prod", "bucket": "data"},
        "activeCentre": "prod",
        "targets": [
            {"name": "far", "centre": "remote", "bucket": "data-far", "mode": "Scheduled",
             "schedule": "0 * * * *", "shards": SHARDS},
        ],
    }
)  # fmt: skip
FLOW = next(f for f in flows(SPEC, "prod") if f.target == "far")


class FakeKube:
    """One namespace's ConfigMaps: server-side apply merges `data`, merge patch with null removes keys."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def apply(self, manifest: dict[str, Any], field_manager: str = "") -> dict[str, Any]:
        self.data.update(manifest["data"])
        return manifest

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return {"data": dict(self.data)}

    def merge_patch(
        self, api_version: str, kind: str, name: str, patch: dict[str, Any], namespace: str
    ) -> None:
        for key, value in patch["data"].items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


class Centres:
    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube


class Runtime:
    def __init__(self, name: str, kube: FakeKube) -> None:
        self.name, self.namespace, self.kube = name, "ns-overlap", kube
        self.results_read_at: dict[str, float] = {}
        self.events: list[tuple[str, str, str]] = []

    def emit(self, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def due_within(self, seconds: float) -> None:
        pass


def shard_reporter(rt: Runtime, run_id: str, index: int) -> Any:
    """What the Job's pod for shard `index` of run `run_id` runs, from the arguments the operator built."""
    argv = ["sync", *dr_scheduled.sync_arguments(rt.namespace, rt.name, FLOW, run_id)]
    argv += ["--shard", f"{index}/{SHARDS}"]
    args = _sync_parser().parse_args(argv)
    return reporter(args.report_configmap, Centres(rt.kube), args.shard, args.report_run)  # type: ignore[arg-type]


def summary(objects: int, started: str, finished: str) -> dict[str, Any]:
    return {"ok": True, "objects_copied": objects, "bytes_copied": objects * 100, "startedAt": started,
            "finishedAt": finished, "duration_seconds": 1.0}  # fmt: skip


def read(rt: Runtime, entry: dict[str, Any]) -> None:
    rt.results_read_at.clear()  # read now, whatever the poll interval
    dr_scheduled._read_result(rt, entry, FLOW, datetime(2026, 1, 1, 4, tzinfo=UTC))  # type: ignore[arg-type]


def copied_total(name: str) -> float:
    labels = {"namespace": "ns-overlap", "replica": name, "target": "far"}
    return REGISTRY.get_sample_value("datacloud_dr_bytes_copied_total", labels) or 0.0


T1, T2 = "2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"


def test_two_overlapping_runs_are_both_counted() -> None:
    """Run 1 (cron 01:00) is still copying when run 2 (02:00) starts; run 2 finishes first."""
    kube = FakeKube()
    rt = Runtime("overlap", kube)
    entry: dict[str, Any] = {"name": "far", "lastScheduledTime": T1}
    shard_reporter(rt, "r1", 0)(summary(10, "2026-01-01T01:00:01+00:00", "2026-01-01T01:30:00+00:00"))
    entry["lastScheduledTime"] = T2  # the second run is launched
    shard_reporter(rt, "r2", 0)(summary(3, "2026-01-01T02:00:01+00:00", "2026-01-01T02:05:00+00:00"))
    shard_reporter(rt, "r2", 1)(summary(4, "2026-01-01T02:00:01+00:00", "2026-01-01T02:06:00+00:00"))
    read(rt, entry)
    assert entry["objectsCopied"] == 7
    shard_reporter(rt, "r1", 1)(summary(20, "2026-01-01T01:00:01+00:00", "2026-01-01T02:30:00+00:00"))
    read(rt, entry)
    assert copied_total("overlap") == (10 + 3 + 4 + 20) * 100
    assert entry["lastSyncTime"] == "2026-01-01T02:30:00+00:00"  # the run that finished last
    assert entry["objectsCopied"] == 30
    assert kube.data == {}  # each run folded in once, its keys removed
    read(rt, entry)
    assert copied_total("overlap") == (10 + 3 + 4 + 20) * 100


@settings(max_examples=60, deadline=None)
@given(
    st.permutations([(run, shard) for run in range(3) for shard in range(SHARDS)]),
    st.sets(st.integers(0, 5)),
)
def test_every_run_is_counted_once_whatever_the_order_of_reports_and_reads(
    order: list[tuple[int, int]], reads_after: set[int]
) -> None:
    """Three runs' shards report in any order, the operator reads at any points in between."""
    name = f"overlap-{next(EXAMPLES)}"  # metrics of a replica of its own
    kube = FakeKube()
    rt = Runtime(name, kube)
    entry: dict[str, Any] = {"name": "far", "lastScheduledTime": "2026-01-01T03:00:00+00:00"}
    objects = {(run, shard): 1 + run * 10 + shard for run in range(3) for shard in range(SHARDS)}
    for step, (run, shard) in enumerate(order):
        at = f"2026-01-01T03:{step:02d}:00+00:00"
        started = f"2026-01-01T0{run}:00:01+00:00"
        shard_reporter(rt, f"r{run}", shard)(summary(objects[run, shard], started, at))
        if step in reads_after:
            read(rt, entry)
    read(rt, entry)
    assert copied_total(name) == sum(objects.values()) * 100
    assert kube.data == {}
    assert entry["objectsCopied"] in {objects[run, 0] + objects[run, 1] for run in range(3)}
