"""What only the reconciler can judge in a DRReplica spec: schedules that never fire, windows that never
let a run start. A target with such a problem is left out (the others run on) and named in the
SpecUsable condition, an Event and the phase."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from croniter import CroniterError, croniter

from ..api.drreplica import DRReplicaSpec
from .dr_flows import in_window

# Enough cron times to see every minute of a week, or a monthly schedule's year.
FIRINGS_CHECKED = 400


@dataclass(frozen=True)
class TargetProblem:
    target: str
    field: str  # the spec path, e.g. spec.targets[1].schedule
    reason: str
    message: str


def problems(spec: DRReplicaSpec, now: datetime) -> list[TargetProblem]:
    out = []
    for i, target in enumerate(spec.targets):
        if target.mode != "Scheduled" or target.schedule is None:
            continue
        path = f"spec.targets[{i}]"
        window = (target.window.start, target.window.end) if target.window is not None else None
        # Judged once an hour per schedule and window, not at every run of every replica: up to
        # FIRINGS_CHECKED cron times each (the hour's start stands for now: what fires within the hour
        # does not change whether a schedule ever fires, nor whether a window ever lets it start).
        found = _judge(target.schedule, window, now.replace(minute=0, second=0, microsecond=0))
        if found is None:
            continue
        reason, detail = found
        if reason == "WindowNeverOpens":
            assert target.window is not None
            message = (
                f"{path}.window {target.window.start}-{target.window.end} contains none of the "
                f"times of schedule {target.schedule!r}: no run could ever start"
            )
            out.append(TargetProblem(target.name, f"{path}.window", reason, message))
        else:
            message = f"{path}.schedule {target.schedule!r} {detail}"
            out.append(TargetProblem(target.name, f"{path}.schedule", reason, message))
    return out


@dataclass(frozen=True)
class _Window:
    start: str
    end: str


@functools.lru_cache(maxsize=4096)
def _judge(schedule: str, window: tuple[str, str] | None, hour: datetime) -> tuple[str, str] | None:
    """(reason, what) when the schedule never fires, or fires only outside the window; else None."""
    try:
        it = croniter(schedule, hour)
        first: datetime = it.get_next(datetime)
    except CroniterError as e:
        if "next date" in str(e):
            return "ScheduleNeverFires", "never fires"
        return "ScheduleInvalid", f"cannot be used ({e})"
    if window is None:
        return None
    times = [first] + [it.get_next(datetime) for _ in range(FIRINGS_CHECKED - 1)]
    if not any(in_window(_Window(*window), t) for t in times):
        return "WindowNeverOpens", ""
    return None
