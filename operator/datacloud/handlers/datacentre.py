"""DataCentre: each centre's probes run on the centre roster (`reconcile.centre_runtime`)."""

from __future__ import annotations

import kopf

from ..reconcile import centre_runtime, datacentre
from . import roster


def _make(key: roster.Key, body: kopf.Body, emit: roster.Emit) -> centre_runtime.CentreRuntime:
    return centre_runtime.CentreRuntime(roster.thread_kube(), key[1], emit, dict(body.get("status") or {}))


roster.serve(datacentre.PLURAL, centre_runtime.roster, _make)
