"""Events about keys a continuous follower parked: one per newly parked set of keys, not one per tick.

The runtime ticks every second or so and rewrites the same figures; an Event is due only when a target
parks a key it did not have parked at the last look (or its count of parked keys rises past the keys
status names). What was parked at the first look comes from the stored status, so an operator restart
does not repeat the Events of keys already reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAMED_IN_EVENT = 3  # keys an Event names; status names more, the count covers all
SHOWN_CHARS = 150  # of each key and reason in an Event, so the message stays short whatever the keys


@dataclass(frozen=True)
class _Seen:
    count: int
    keys: frozenset[str]


def _seen(entry: dict[str, Any]) -> _Seen:
    keys = frozenset(str(p.get("key")) for p in entry.get("parked") or [])
    return _Seen(int(entry.get("parkedKeys") or 0), keys)


class ParkedNotices:
    """Remembers each target's parked keys between ticks and says what is newly parked."""

    def __init__(self) -> None:
        self.seen: dict[str, _Seen] | None = None  # None until the first look

    def news(self, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
        """Event messages for targets in `after` that parked keys not parked in the last look (the
        first look is `before`, the status stored when the runtime started)."""
        if self.seen is None:
            self.seen = {str(t["name"]): _seen(t) for t in before}
        out = []
        current = {}
        for entry in after:
            name = str(entry["name"])
            now = _seen(entry)
            current[name] = now
            was = self.seen.get(name, _Seen(0, frozenset()))
            fresh = sorted(now.keys - was.keys)
            if now.count and (fresh or now.count > was.count):
                out.append(_message(name, now.count, entry, fresh))
        self.seen = current
        return out


def _message(target: str, count: int, entry: dict[str, Any], fresh: list[str]) -> str:
    reasons = {str(p.get("key")): str(p.get("reason")) for p in entry.get("parked") or []}
    named = fresh or sorted(reasons)
    shown = "; ".join(f"{_cut(repr(key))}: {_cut(reasons.get(key, ''))}" for key in named[:NAMED_IN_EVENT])
    more = f" and {len(named) - NAMED_IN_EVENT} more" if len(named) > NAMED_IN_EVENT else ""
    return (
        f"{count} key(s) on target {target} fail permanently and are parked (not replicated; retried "
        f"with the longest backoff): {shown}{more}"
    )


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
