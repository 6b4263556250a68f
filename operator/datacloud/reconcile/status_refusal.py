"""What a runtime does when its kind's model refuses the status it built (`builders.written.checked`).

The status is not written: the object keeps its last good status, the operator log has the error, and a
Warning Event `StatusRefused` names the refused fields once per new refusal (not once per run)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..builders.written import InvalidStatus

REASON = "StatusRefused"


def refused(log: logging.Logger, emit: Callable[[str, str, str], None], what: str, e: InvalidStatus) -> None:
    log.error("status of %s not written: %s", what, e)
    if not e.repeated:
        emit("Warning", REASON, str(e))
