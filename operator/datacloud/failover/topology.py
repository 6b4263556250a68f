"""Which copy is active and where data flows, from a DRReplica spec and the current active centre.

The spec names a source (the production copy) and targets. While the source is active, data flows from it
to each target as the spec says. After a failover to a target, the promoted copy feeds every other copy:
the old source becomes a Continuous target (so failback can be lossless), the other targets keep their
own mode and schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.common import parse_duration
from ..api.drreplica import DRReplicaSpec, Target

SOURCE = "source"
DEFAULT_RPO_S = 60.0


@dataclass(frozen=True)
class Copy:
    """One copy of the data set: the source or a target."""

    name: str
    centre: str
    bucket: str
    prefix: str


@dataclass(frozen=True)
class Flow:
    """Replication from the active copy to one other copy."""

    target: str  # the name of the receiving copy: a target name, or "source"
    src: Copy
    dst: Copy
    mode: str  # Continuous | Scheduled
    rpo_s: float | None
    schedule: str | None
    spec: Target | None  # the spec's target entry, when the receiving copy is a spec target


def copies(spec: DRReplicaSpec) -> list[Copy]:
    out = [Copy(SOURCE, spec.source.centre, spec.source.bucket, spec.source.prefix)]
    out += [Copy(t.name, t.centre, t.bucket, t.prefix) for t in spec.targets]
    return out


def active_copy(spec: DRReplicaSpec, active_centre: str) -> Copy:
    """The copy at the active centre; the source when the centre holds several copies (never ambiguous
    for writers: the source wins, then the first target)."""
    for copy in copies(spec):
        if copy.centre == active_centre:
            return copy
    raise ValueError(f"no copy of the data set lives in centre {active_centre!r}")


def rpo_seconds(target: Target) -> float | None:
    return parse_duration(target.rpo_target).total_seconds() if target.rpo_target else None


def flows(spec: DRReplicaSpec, active_centre: str) -> list[Flow]:
    active = active_copy(spec, active_centre)
    by_name = {t.name: t for t in spec.targets}
    promoted = by_name.get(active.name)
    out: list[Flow] = []
    for copy in copies(spec):
        if copy == active:
            continue
        target = by_name.get(copy.name)
        if target is not None:
            out.append(
                Flow(copy.name, active, copy, target.mode, rpo_seconds(target), target.schedule, target)
            )
        else:  # the old source, fed continuously by the promoted target
            rpo = rpo_seconds(promoted) if promoted else None
            out.append(Flow(SOURCE, active, copy, "Continuous", rpo or DEFAULT_RPO_S, None, None))
    return out
