"""Standard conditions, kept the Kubernetes way: lastTransitionTime moves only when status changes.

Conditions themselves are made by each kind's typed constructor in `api/conditions.py`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Iterable[Mapping[str, Any]] | None, updates: Iterable[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Apply `updates` over `existing`, keeping each condition's lastTransitionTime when its status holds."""
    merged = {c["type"]: dict(c) for c in existing or []}
    for update in updates:
        old = merged.get(update["type"])
        new = dict(update)
        if old and old.get("status") == new["status"] and old.get("lastTransitionTime"):
            new["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            new["lastTransitionTime"] = now
        merged[new["type"]] = new
    return sorted(merged.values(), key=lambda c: str(c["type"]))


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)
