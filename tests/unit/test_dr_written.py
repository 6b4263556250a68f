"""A DRReplica's status carried through `WrittenStatus`: an unchanged status is not written again (an idle
replica costs no API writes), whether the runtime still holds its own write or the body has caught up."""

from __future__ import annotations

from typing import Any

from datacloud.reconcile.drreplica import ReplicaRuntime
from tests.support.recorder import StatusRecorder as Recorder


def body(version: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "r", "namespace": "ns", "resourceVersion": version}, "status": status or {}}


def built() -> dict[str, Any]:
    """A status as a run builds it: unset figures are None (the API server stores them as no key)."""
    return {
        "phase": "Protected",
        "fencingEpoch": 1,
        "worstLagSeconds": None,
        "action": {"type": None, "steps": []},
        "targets": [{"name": "near", "lagSeconds": 0.5}],
    }


def test_an_unchanged_status_is_written_once() -> None:
    kube = Recorder()
    rt = ReplicaRuntime(kube, "ns", "r", lambda *e: None)  # type: ignore[arg-type]
    rt.status = built()
    rt._write(body("10"))
    assert len(kube.patches) == 1
    for version in ("10", "11", "12"):  # behind the write, at it, past it (the body has caught up)
        stored = {
            "phase": "Protected",
            "fencingEpoch": 1,
            "action": {"steps": []},
            "targets": built()["targets"],
        }
        rt.status = rt.written.current(body(version, stored)) | built()
        rt._write(body(version))
    assert len(kube.patches) == 1
    rt.status = {**built(), "phase": "Degraded"}
    rt._write(body("12"))
    assert kube.patches[-1]["phase"] == "Degraded"
