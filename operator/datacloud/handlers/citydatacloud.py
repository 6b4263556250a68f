"""CityDataCloud: each city's heartbeat runs on the city roster (`reconcile.city_runtime`)."""

from __future__ import annotations

import kopf

from ..reconcile import city_runtime, citydatacloud
from . import roster


def _make(key: roster.Key, body: kopf.Body, emit: roster.Emit) -> city_runtime.CityRuntime:
    return city_runtime.CityRuntime(roster.thread_kube(), key[1], emit, dict(body.get("status") or {}))


roster.serve(citydatacloud.PLURAL, city_runtime.roster, _make)
