"""Operator start-up: identity of this operator's finalizer and annotations, peering, client timeouts."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

import kopf

from .. import GROUP

FINALIZER = f"{GROUP}/finalizer"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Two replicas are safe through kopf peering: each run picks a random priority, the highest one
    # works and the others pause until its keep-alive record expires (DATACLOUD_PEERING=standalone
    # turns it off for a single process).
    settings.peering.priority = int(os.environ.get("DATACLOUD_PRIORITY", secrets.randbelow(10_000)))
    settings.peering.stealth = True
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.posting.level = logging.INFO
    settings.execution.max_workers = int(os.environ.get("DATACLOUD_WORKERS", "32"))
    logger.info("datacloud operator starting (peering priority %s)", settings.peering.priority)
