"""What a DRReplica's parts (scheduled copies, divergence checks) may use of the replica's runtime.

`drreplica.ReplicaRuntime` is the one implementation; its parts are typed against this protocol instead,
so they need not import the reconciler that calls them (import-linter keeps `reconcile/` layered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..adapters.kube import Kube


@dataclass
class OwedSeeds:
    """The seed Jobs owed after the change of active centre to `epoch` (`dr_reseed`)."""

    epoch: int
    cut: str  # the action's start: the replica's sync Jobs made until then were started from the old active
    targets: dict[str, str]  # Scheduled target → why its seed Job is not made yet
    created: list[str] = field(default_factory=list)  # the seed Jobs made
    skipped: list[str] = field(default_factory=list)  # targets left to their next scheduled run
    cancelled: bool = False  # the old active's unfinished Jobs were cancelled (or the refusal reported)
    refusal: str | None = None  # the reason of the last refusal by the API server, while one is owed


class ReplicaContext(Protocol):
    kube: Kube
    namespace: str
    name: str
    job_image: str  # the image of the sync Jobs
    status: dict[str, Any]  # the status being built this run; the runtime writes it at the end
    results_read_at: dict[str, float]  # scheduled target → when its sync result was last read
    jobs_checked_at: dict[str, float]  # scheduled target → when its newest Job was looked at
    jobs_stuck: dict[str, Any]  # scheduled target → why its newest Job is stuck (None: it is not)
    reseed: OwedSeeds | None  # the seed Jobs of the last change of active centre (dr_reseed)

    def emit(self, kind: str, reason: str, message: str, key: str | None = None) -> None:
        """A Kubernetes Event, once per distinct message (or `key`) of a reason."""

    def due_within(self, seconds: float) -> None:
        """Run the replica again within `seconds`."""

    def write_now(self, body: dict[str, Any]) -> None:
        """Write the status at once (before a step whose effect must not precede its record)."""
