"""Starting the operator process: metrics endpoint, logging, kopf with peering and liveness."""

from __future__ import annotations

import asyncio
import logging

import kopf
from prometheus_client import disable_created_metrics, start_http_server

from . import handlers, logfilters, metrics
from .api.peering import PEERING_NAME
from .reconcile import dr_events


def run_operator(
    *,
    metrics_address: str = "127.0.0.1",
    metrics_port: int = 8000,
    liveness: str = "",
    standalone: bool = False,
    json_logs: bool = False,
    verbose: bool = False,
    stop_flag: asyncio.Event | None = None,
) -> int:
    assert handlers  # importing the package registers every handler with kopf
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.PLAIN)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logfilters.install()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series are not used
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_address, registry=metrics.REGISTRY)
    # Listen for object-store notifications from the start: a centre (re)starting posts a test event and
    # refuses to run when nobody answers.
    dr_events.receiver()
    kopf.run(
        clusterwide=True,
        standalone=standalone,
        peering_name=None if standalone else PEERING_NAME,
        liveness_endpoint=liveness or None,
        stop_flag=stop_flag,
    )
    return 0
