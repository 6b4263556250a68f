"""What a DRReplica's parts (scheduled copies, divergence checks) may use of the replica's runtime.

`drreplica.ReplicaRuntime` is the one implementation; its parts are typed against this protocol instead,
so they need not import the reconciler that calls them (import-linter keeps `reconcile/` layered)."""

from __future__ import annotations

from typing import Any, Protocol

from ..adapters.kube import Kube


class ReplicaContext(Protocol):
    kube: Kube
    namespace: str
    name: str
    job_image: str  # the image of the sync Jobs
    status: dict[str, Any]  # the status being built this run; the runtime writes it at the end
    results_read_at: dict[str, float]  # scheduled target → when its sync result was last read
    jobs_checked_at: dict[str, float]  # scheduled target → when its newest Job was looked at
    jobs_stuck: dict[str, Any]  # scheduled target → why its newest Job is stuck (None: it is not)
    seeds_owed: dict[str, int]  # scheduled target → epoch of the seed Job owed once its centre answers

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        """A Kubernetes Event, once per distinct message (or `key`) of a reason."""

    def due_within(self, seconds: float) -> None:
        """Run the replica again within `seconds`."""

    def write_now(self, body: dict[str, Any]) -> None:
        """Write the status at once (before a step whose effect must not precede its record)."""
