"""A DRReplica spec the model refuses (what the CRD schema let through): a condition naming the field under
spec., and one Warning Event, not a crash."""

from __future__ import annotations

from datacloud.reconcile.drreplica import ReplicaRuntime
from tests.support.recorder import StatusRecorder as Recorder


def test_an_invalid_spec_names_the_field_and_posts_one_event() -> None:
    kube, events = Recorder(), []
    rt = ReplicaRuntime(kube, "ns", "r", lambda *e: events.append(e))  # type: ignore[arg-type]
    body = {
        "metadata": {"name": "r", "namespace": "ns", "generation": 2},
        "spec": {"source": {"centre": "a"}},
    }
    for _ in range(3):
        assert rt.tick(body) == 30.0
    ready = next(c for c in kube.patches[0]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.source.bucket" in ready["message"]
    assert "spec.targets" in ready["message"]
    assert [(kind, reason) for kind, reason, _ in events] == [("Warning", "InvalidSpec")]
