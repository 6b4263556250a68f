"""Log records reworded or re-levelled so that operators read routine events as routine."""

from __future__ import annotations

import logging

CANCELLED = "is cancelled. Will escalate."


class RoutineCancellation(logging.Filter):
    """kopf logs a daemon it cancels (its object was deleted, or the operator is stopping) as a warning,
    "Daemon '…' is cancelled. Will escalate."; that is the ordinary end of a daemon, logged at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).endswith(CANCELLED):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


class RoutineWatchSuccess(logging.Filter):
    """kopf logs "Handler '…' succeeded." at INFO after every run of a watching handler (`on.event`),
    that is for every watch event of every object: a thousand replicas writing their status would fill the
    log with them. Those records are local (kopf marks them `k8s_skip`, never posted as Events); they are
    logged at DEBUG, and kept only when the logger is verbose. A watching handler that fails is still
    logged as kopf logs it, and change handlers' successes (posted as Events) are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.INFO
            and getattr(record, "k8s_skip", False)
            and str(record.msg).startswith("Handler '")
            and str(record.msg).endswith("' succeeded.")
        ):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def install() -> None:
    """On kopf's per-object logger, whose records also become Events on the object."""
    objects = logging.getLogger("kopf.objects")
    objects.addFilter(RoutineCancellation())
    objects.addFilter(RoutineWatchSuccess())
