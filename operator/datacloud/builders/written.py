"""The status an object's reconciler last wrote, carried into its next reconcile.

A daemon's `body` can lag behind its own status writes (the write's watch event is still on its way, or
another patch landed in between); reconciling from that older status writes the same status again and
repeats its Events. Each kind used to carry "what I last wrote" its own way; this is the one way:

    written = WrittenStatus.start(body, DataZoneStatus)      # when the daemon starts
    status = written.current(body)                           # before each reconcile
    patch = written.checked(patch)                           # InvalidStatus: never sent
    after = kube.patch_status(...)["metadata"]["resourceVersion"]
    written.wrote(patch, after)                              # after each successful write

`current` returns the body's status once the body has caught up with the write (its resourceVersion is
not older than the one the write produced), else the written one. `checked` validates the whole status
the patch would leave through the kind's pydantic `*Status` model (the model the CRD schema is generated
from), so a reconciler bug (a wrong type, a phase the kind does not have) is stopped here, named, rather
than written or refused by the API server with a less readable message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .patch import apply_merge_patch


class InvalidStatus(ValueError):
    """A status its kind's model refuses: a reconciler bug, stopped before it reaches the API server.
    `repeated` is set when the same refusal was the last one (one Event per new refusal, not per run)."""

    repeated = False


def validated(model: type[BaseModel], status: Mapping[str, Any]) -> dict[str, Any]:
    """`status` as it is, once `model` accepts it; InvalidStatus naming every refused field if not."""
    try:
        model.model_validate(status)
    except ValidationError as e:
        problems = "; ".join(
            f"status.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_url=False)
        )
        raise InvalidStatus(f"{model.__name__} refused: {problems}") from None
    return dict(status)


def older(version: str, than: str) -> bool:
    """Whether resourceVersion `version` precedes `than`. Versions of one resource compare as integers
    (KEP-5504, "comparable resource versions"); anything else is taken as not older."""
    if not (version.isdigit() and than.isdigit()) or version.startswith("0") or than.startswith("0"):
        return False
    return (len(version), version) < (len(than), than)


def resource_version(body: Mapping[str, Any]) -> str:
    """The object's metadata.resourceVersion, "" when it has none."""
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class WrittenStatus:
    model: type[BaseModel]  # the kind's *Status model every write is checked against
    status: dict[str, Any] = field(default_factory=dict)
    after: str = ""  # the resourceVersion our last write produced; "" when unknown: keep ours
    pending: bool = False  # a write whose result the body may not show yet
    refused: str = ""  # the last refusal by `checked`, "" once a status is accepted

    @classmethod
    def start(cls, body: Mapping[str, Any], model: type[BaseModel]) -> WrittenStatus:
        return cls(model, dict(body.get("status") or {}))

    def current(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status to reconcile from: the body's, unless a write of ours may not show in it yet."""
        if self.pending and self.after:
            version = resource_version(body)
            self.pending = not version or older(version, self.after)
        if not self.pending:
            self.status = dict(body.get("status") or {})
        return self.status

    def checked(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """`patch`, once the whole status it leaves is one the kind's model accepts; else InvalidStatus."""
        try:
            validated(self.model, apply_merge_patch(self.status, patch))
        except InvalidStatus as e:
            e.repeated, self.refused = str(e) == self.refused, str(e)
            raise
        self.refused = ""
        return dict(patch)

    def wrote(self, patch: Mapping[str, Any], after: str = "") -> None:
        """Record a successful merge-patch write of `patch` (and the resourceVersion it produced)."""
        self.status = apply_merge_patch(self.status, patch)
        self.after, self.pending = after, True
