"""Operator start-up: identity of this operator's finalizer and annotations, peering, client timeouts."""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import Iterable
from typing import Any, cast

import kopf

from .. import GROUP
from .. import settings as datacloud_settings
from ..api.admission import FINALIZER

# Kinds whose only change-detecting kopf handler is @kopf.on.delete (their work is done by daemons). kopf
# still stores a diff base ("last-handled-configuration") on each new object once it has seen it created,
# which costs one more PATCH of every new object: for a thousand zones applied at once, a thousand writes of
# the custom resource the API server must validate and send to every watcher. For these kinds the diff
# base is kept in memory instead; after a restart kopf finds none, sees a "creation" it has no handler
# for, and keeps the new one, again in memory. Handler modules add their kind.
DIFF_BASE_IN_MEMORY: set[str] = set()
_diff_bases: dict[str, kopf.BodyEssence] = {}  # uid → essence, for the kinds above


def forget_diff_base(uid: str) -> None:
    """Drop an object's in-memory diff base (its DELETED event; deletion through the finalizer drops it
    already when it starts)."""
    _diff_bases.pop(uid, None)


class DiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """Annotations, except for the kinds in DIFF_BASE_IN_MEMORY (by uid, dropped when deletion starts)."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        """kopf's essence (spec, labels, annotations), built from only those parts: kopf copies the whole
        body (managedFields and status included) before dropping most of it, on every event of every object.
        With extra fields (a handler on a status field, say) kopf's own way is kept."""
        extra = list(extra_fields or [])
        if extra:
            return super().build(body=body, extra_fields=extra)
        meta = body.get("metadata") or {}
        slim: dict[str, Any] = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        slim["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, slim)))

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if body.get("kind") not in DIFF_BASE_IN_MEMORY:
            return super().fetch(body=body)
        uid = str(body.metadata.get("uid"))
        if body.metadata.get("deletionTimestamp"):  # from here on kopf goes by the deletion, not a diff
            return _diff_bases.pop(uid, None)
        return _diff_bases.get(uid)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if body.get("kind") not in DIFF_BASE_IN_MEMORY:
            super().store(body=body, patch=patch, essence=essence)
        elif not body.metadata.get("deletionTimestamp"):
            _diff_bases[str(body.metadata.get("uid"))] = essence


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    # Two replicas are safe through kopf peering: each run picks a random priority (or DATACLOUD_PRIORITY),
    # the highest one works and the others pause until its keep-alive record expires (`datacloud run
    # --standalone` turns peering off for a single process).
    wanted = datacloud_settings.current()
    settings.peering.priority = secrets.randbelow(10_000) if wanted.priority is None else wanted.priority
    settings.peering.stealth = True
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.posting.level = logging.INFO
    settings.execution.max_workers = wanted.workers
    # The cyclic GC cost a fifth of the operator's CPU while a thousand zones were applied at once (3.8 s of
    # 20 s, mostly full collections rescanning a heap that hardly holds cycles: garbage goes by reference
    # counting). Exempt what the imports built, and collect less often: 1 s of GC for the same run.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    logger.info("datacloud operator starting (peering priority %s)", settings.peering.priority)
