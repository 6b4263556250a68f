"""What only the reconciler can judge in a DRReplica spec: schedules that never fire, windows that never
let a run start. A target with such a problem is left out (the others run on) and named in the
SpecUsable condition, an Event and the phase."""

from __future__ import annotations

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
        try:
            it = croniter(target.schedule, now)
            first: datetime = it.get_next(datetime)
        except CroniterError as e:
            reason = "ScheduleNeverFires" if "next date" in str(e) else "ScheduleInvalid"
            what = "never fires" if reason == "ScheduleNeverFires" else f"cannot be used ({e})"
            out.append(
                TargetProblem(
                    target.name, f"{path}.schedule", reason, f"{path}.schedule {target.schedule!r} {what}"
                )
            )
            continue
        if target.window is None:
            continue
        times = [first] + [it.get_next(datetime) for _ in range(FIRINGS_CHECKED - 1)]
        if not any(in_window(target.window, t) for t in times):
            out.append(
                TargetProblem(
                    target.name,
                    f"{path}.window",
                    "WindowNeverOpens",
                    f"{path}.window {target.window.start}-{target.window.end} contains none of the "
                    f"times of schedule {target.schedule!r}: no run could ever start",
                )
            )
    return out
