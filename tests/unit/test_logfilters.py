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


@pytest.fixture
def filtered() -> logging.Logger:
    logger = logging.getLogger("kopf.objects")
    logfilters.install()
    yield logger
    for f in list(logger.filters):
        logger.removeFilter(f)


def loggers() -> tuple[logging.LoggerAdapter[logging.Logger], logging.LoggerAdapter[logging.Logger]]:
    """kopf's own per-object loggers: the local one of watching handlers, and the posting one."""
    import kopf
    from kopf._core.actions.loggers import LocalObjectLogger, ObjectLogger

    body = kopf.Body(
        {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "namespace": "ns", "uid": "u"}}
    )
    settings = kopf.OperatorSettings()
    return LocalObjectLogger(body=body, settings=settings), ObjectLogger(body=body, settings=settings)


def test_a_watching_handlers_success_is_dropped_unless_verbose(
    filtered: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    local, posting = loggers()
    with caplog.at_level(logging.INFO, logger="kopf.objects"):
        local.info("Handler 'drreplicas-wake' succeeded.")
        local.error("Handler 'drreplicas-wake' failed with an exception. Will ignore.")
        posting.info("Handler 'zone_deleted' succeeded.")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "Handler 'drreplicas-wake' failed with an exception. Will ignore."),
        ("INFO", "Handler 'zone_deleted' succeeded."),
    ]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="kopf.objects"):
        local.info("Handler 'drreplicas-wake' succeeded.")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "Handler 'drreplicas-wake' succeeded.")
    ]
