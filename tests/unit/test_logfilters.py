"""Routine daemon cancellations are not warnings."""

from __future__ import annotations

import logging

import pytest

from datacloud import logfilters


def test_a_cancelled_daemon_is_logged_at_info_and_other_warnings_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("kopf.objects")
    logfilters.install()
    try:
        with caplog.at_level(logging.DEBUG, logger="kopf.objects"):
            logger.warning("Daemon 'dr_daemon' is cancelled. Will escalate.")
            logger.warning("Handler 'x' failed temporarily: boom")
    finally:
        for f in [f for f in logger.filters if isinstance(f, logfilters.RoutineCancellation)]:
            logger.removeFilter(f)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [
        ("INFO", "Daemon 'dr_daemon' is cancelled. Will escalate."),
        ("WARNING", "Handler 'x' failed temporarily: boom"),
    ]
