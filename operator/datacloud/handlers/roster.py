"""kopf glue for the kinds run on a roster (`reconcile.runtime`): kopf says which objects exist, the
roster's fixed pool of workers does the work.

Per object, an async daemon (a coroutine, not a thread) attaches the object to its kind's roster and
waits; when the object is deleted, or this operator pauses for a peer, it detaches it and returns at once,
so deletion never waits on a worker. An event handler wakes the object when its generation (or, for some
kinds, an annotation) changes. kopf keeps the daemon's `body` current; the workers copy it on each run.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Hashable
from typing import Any, cast

import kopf

from .. import GROUP, RUN_NOW, VERSION
from ..adapters.kube import Kube, shared
from ..reconcile.runtime import Roster

Key = tuple[str, str]  # (namespace or "", name)
Emit = Callable[[str, str, str], None]  # (type, reason, message) → an Event on the object


class ThreadKube:
    """The calling thread's API client (`adapters.kube.shared`): a state made on one worker is run on any,
    and each worker thread keeps its own client, so clients stay as many as workers."""

    def __getattr__(self, name: str) -> Any:
        return getattr(shared(), name)


def thread_kube() -> Kube:
    return cast(Kube, ThreadKube())  # duck-typed: every attribute is the current thread's Kube's


def emitter(body: kopf.Body, logger: kopf.Logger | None = None) -> Emit:
    """Events posted from a worker thread. kopf finds its event queue through context variables, which a
    worker thread lacks: the daemon's context is carried over. Each Event is also logged through the
    daemon's `logger` (kopf's local per-object logger: the record names the object and is not posted
    again), so the log keeps what Events, which the API server drops after an hour, said."""
    context = contextvars.copy_context()

    def emit(kind: str, reason: str, message: str) -> None:
        context.copy().run(kopf.event, body, type=kind, reason=reason, message=message)
        if logger is not None:
            logger.log(logging.WARNING if kind == "Warning" else logging.INFO, "%s: %s", reason, message)

    return emit


def generation(body: kopf.Body) -> Hashable:
    found: Hashable = body.get("metadata", {}).get("generation")
    return found


def generation_or_run_now(body: kopf.Body) -> Hashable:
    """For kinds that also run on request: a new value of the run-now annotation wakes the object too."""
    meta = body.get("metadata", {})
    return (meta.get("generation"), (meta.get("annotations") or {}).get(RUN_NOW))


def serve(
    plural: str,
    roster: Callable[[], Roster[Key, Any]],
    make: Callable[[Key, kopf.Body, Emit], Any],
    wake_on: Callable[[kopf.Body], Hashable] = generation,
) -> None:
    """Register the daemon and the wake-up handler of one kind (`roster()` gives the kind's roster)."""
    seen: dict[Key, Hashable] = {}

    @kopf.daemon(GROUP, VERSION, plural, id=f"{plural}-roster", cancellation_timeout=10.0)
    async def attach(
        stopped: kopf.DaemonStopped,
        name: str,
        namespace: str | None,
        body: kopf.Body,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        key = (namespace or "", name)
        emit = emitter(body, logger)
        seen[key] = wake_on(body)
        roster().attach(key, lambda: body, lambda: make(key, body, emit))
        try:
            await stopped.wait()
        finally:
            deleted = bool(stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)
            roster().detach(key, deleted)

    @kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-wake")
    async def wake(event: kopf.RawEvent, name: str, namespace: str | None, body: kopf.Body, **_: Any) -> None:
        key = (namespace or "", name)
        if event.get("type") == "DELETED":
            seen.pop(key, None)
            return
        mark = wake_on(body)
        if key in seen and seen[key] != mark:
            roster().wake(key)
        seen[key] = mark
