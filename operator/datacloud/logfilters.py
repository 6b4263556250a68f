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


def install() -> None:
    """On kopf's per-object logger, whose records also become Events on the object."""
    logging.getLogger("kopf.objects").addFilter(RoutineCancellation())
