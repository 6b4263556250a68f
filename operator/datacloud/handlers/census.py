"""ComputeCensus: each census runs on the census roster (`reconcile.census_runtime`), on its cron
schedule or at once when the annotation `datacloud.fujian.gov.cn/run-now` gets a new value."""

from __future__ import annotations

import kopf

from ..reconcile import census, census_runtime
from . import roster


def _make(key: roster.Key, body: kopf.Body, emit: roster.Emit) -> census_runtime.CensusRuntime:
    return census_runtime.CensusRuntime(roster.thread_kube(), key[1], emit, dict(body.get("status") or {}))


roster.serve(census.PLURAL, census_runtime.roster, _make, wake_on=roster.generation_or_run_now)
