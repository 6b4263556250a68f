"""DRReplica: each replica is run by the DRReplica roster (`reconcile.dr_roster`) on a fixed pool."""

from __future__ import annotations

import kopf

from ..reconcile import dr_roster
from ..reconcile.drreplica import PLURAL, ReplicaRuntime
from . import roster


def _make(key: roster.Key, body: kopf.Body, emit: roster.Emit) -> ReplicaRuntime:
    return dr_roster.make(roster.thread_kube(), key, emit)


# A new run-now annotation (`datacloud dr sync-now`) wakes a replica: its Scheduled targets sync now.
roster.serve(PLURAL, dr_roster.roster, _make, wake_on=roster.generation_or_run_now)
