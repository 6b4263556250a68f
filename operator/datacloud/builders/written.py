"""The status an object's reconciler last wrote, carried into its next reconcile.

A daemon's `body` can lag behind its own status writes (the write's watch event is still on its way, or
another patch landed in between); reconciling from that older status writes the same status again and
repeats its Events. Each kind used to carry "what I last wrote" its own way; this is the one way:

    written = WrittenStatus.start(body)                      # when the daemon starts
    status = written.current(body)                           # before each reconcile
    after = kube.patch_status(...)["metadata"]["resourceVersion"]
    written.wrote(patch, after)                              # after each successful write

`current` returns the body's status once the body has caught up with the write (its resourceVersion is
not older than the one the write produced), else the written one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .patch import apply_merge_patch


def older(version: str, than: str) -> bool:
    """Whether resourceVersion `version` precedes `than`. Versions of one resource compare as integers
    (KEP-5504, "comparable resource versions"); anything else is taken as not older."""
    if not (version.isdigit() and than.isdigit()) or version.startswith("0") or than.startswith("0"):
        return False
    return (len(version), version) < (len(than), than)


def _version(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class WrittenStatus:
    status: dict[str, Any] = field(default_factory=dict)
    after: str = ""  # the resourceVersion our last write produced; "" when unknown: keep ours
    pending: bool = False  # a write whose result the body may not show yet

    @classmethod
    def start(cls, body: Mapping[str, Any]) -> WrittenStatus:
        return cls(dict(body.get("status") or {}))

    def current(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status to reconcile from."""
        if self.pending and self.after:
            version = _version(body)
            if version and not older(version, self.after):
                self.status, self.pending = dict(body.get("status") or {}), False
        return self.status

    def wrote(self, patch: Mapping[str, Any], after: str = "") -> None:
        """Record a successful merge-patch write of `patch` (and the resourceVersion it produced)."""
        self.status = apply_merge_patch(self.status, patch)
        self.after, self.pending = after, True
