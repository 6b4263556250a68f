"""Trends over retained snapshots: change since the previous one, and days until exhaustion.

Days until exhaustion fits a least-squares line to a row's requested amount over the retained
snapshots and extends it to the allocatable amount of the latest one. Fewer than `MIN_POINTS`
snapshots, or all of them within `MIN_SPAN`, is "not enough history"; a flat or falling
line never exhausts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .snapshots import Row

RESOURCES = ("cpu", "memory", "gpu")
MIN_POINTS = 3
MIN_SPAN = timedelta(seconds=1)
NOT_ENOUGH_HISTORY = "not enough history"
NOT_GROWING = "not growing"


def row_key(row: Row) -> tuple[str, str, str, str]:
    return (
        str(row["level"]),
        str(row.get("city_code") or ""),
        str(row.get("centre") or ""),
        str(row.get("gpu_model") or ""),
    )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Forecast:
    days: float | None  # None with a reason
    reason: str = ""
    per_day: float = 0.0  # growth of requests per day, in the resource's unit

    @property
    def text(self) -> str:
        return f"{self.days:.1f}" if self.days is not None else self.reason


def slope_per_day(points: Sequence[tuple[datetime, float]]) -> float:
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 86400 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def forecast(points: Sequence[tuple[datetime, float]], allocatable: float | None) -> Forecast:
    """Days until the requested amount reaches `allocatable` at the fitted rate."""
    pts = sorted(points)
    if len(pts) < MIN_POINTS or pts[-1][0] - pts[0][0] < MIN_SPAN or allocatable is None:
        return Forecast(None, NOT_ENOUGH_HISTORY)
    rate = slope_per_day(pts)
    if allocatable <= 0:
        return Forecast(None, "none allocatable")
    headroom = allocatable - pts[-1][1]
    if headroom <= 0:
        return Forecast(0.0, "exhausted", rate)
    if rate <= 0:
        return Forecast(None, NOT_GROWING, rate)
    return Forecast(headroom / rate, "", rate)


def history(
    snapshots: Sequence[tuple[str, Sequence[Row]]], key: tuple[str, str, str, str], column: str
) -> list[tuple[datetime, float]]:
    """(time, value) of one column of one row across snapshots, skipping snapshots without it."""
    out = []
    for taken_at, rows in snapshots:
        for r in rows:
            if row_key(r) == key and isinstance(r.get(column), int | float) and not r.get("carried"):
                out.append((parse_time(taken_at), float(r[column])))
                break
    return out


def annotate(
    rows: list[Row], previous: Sequence[Row] | None, history_rows: Sequence[tuple[str, Sequence[Row]]]
) -> None:
    """Add to each row (in place) the change since `previous` and, for province and city rows, the days
    until exhaustion per resource over `history_rows` (oldest first, the current run included)."""
    before = {row_key(r): r for r in previous or []}
    for row in rows:
        old = before.get(row_key(row))
        for column in (
            "nodes_total",
            "cpu_requested",
            "memory_requested",
            "gpu_requested",
            "cpu_allocatable",
        ):
            now_v, old_v = row.get(column), (old or {}).get(column)
            ok = isinstance(now_v, int | float) and isinstance(old_v, int | float)
            row[f"delta_{column}"] = (now_v - old_v) if ok else None  # type: ignore[operator]
        if row["level"] not in ("province", "city"):
            continue
        for res in RESOURCES:
            points = history(history_rows, row_key(row), f"{res}_requested")
            alloc = row.get(f"{res}_allocatable")
            f = forecast(points, float(alloc) if isinstance(alloc, int | float) else None)
            row[f"{res}_days_until_exhaustion"] = float(f"{f.days:.4g}") if f.days is not None else None
            row[f"{res}_exhaustion_note"] = f.reason
            row[f"{res}_growth_per_day"] = round(f.per_day, 3) if f.days is not None or f.per_day else None
