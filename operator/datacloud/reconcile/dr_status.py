"""A DRReplica's status summary: per-target figures, the conditions and the phase, from what the runtime
observed (pure: the runtime writes what these return)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..api.conditions import ReplicaReason, ReplicaType, reason_of, replica
from ..api.drreplica import DRReplicaSpec
from ..failover.topology import Flow
from ..replication.continuous import ReplicationStats
from .dr_actions import progress_condition

SOURCE_MISSING = ReplicaReason.SOURCE_BUCKET_MISSING
PARKED_NAMED = 10  # parked keys named in a target's status (all are counted)
REASON_CHARS = 200  # a parked key's reason is cut to this many characters in status


def target_entries(
    previous: list[dict[str, Any]],
    wanted: list[Flow],
    stats_for: Callable[[str], ReplicationStats | None],
) -> list[dict[str, Any]]:
    """One entry per wanted target: the follower's figures for Continuous ones (parked keys among them),
    RPO compliance where an RPO is set (never while a key is parked: it is not replicated at all); what
    an entry held before (a scheduled run's result) is kept."""
    by_name = {t["name"]: t for t in previous}
    out = []
    for flow in wanted:
        entry = dict(by_name.get(flow.target, {"name": flow.target}))
        entry["name"] = flow.target
        stats = stats_for(flow.target) if flow.mode == "Continuous" else None
        if stats is not None and not stats.scans:
            # No scan has compared source and target yet: a lag of 0 would only mean nothing is known.
            for key in ("lagSeconds", "rpoCompliant"):
                entry.pop(key, None)
            entry["message"] = stats.last_error or "lag not measured yet: the first scan has not finished"
        elif stats is not None:
            entry.update(
                lagSeconds=round(stats.current_lag_seconds, 3),
                pending=stats.pending,
                objectsCopied=stats.objects_copied,
                bytesCopied=stats.bytes_copied,
                message=stats.last_error,
                parkedKeys=stats.parked,
                parked=parked_entries(stats) or None,
            )
            if not stats.parked:
                entry.pop("parked", None)
            if stats.last_scan_at:
                entry["lastSyncTime"] = datetime.fromtimestamp(stats.last_scan_at).astimezone().isoformat()
        if flow.rpo_s is not None and entry.get("lagSeconds") is not None:
            entry["rpoCompliant"] = float(entry["lagSeconds"]) <= flow.rpo_s and not entry.get("parkedKeys")
        elif "lagSeconds" not in entry:
            entry.pop("rpoCompliant", None)
        out.append({k: v for k, v in entry.items() if v is not None})
    return out


def parked_entries(stats: ReplicationStats) -> list[dict[str, str]]:
    """The first PARKED_NAMED parked keys with their reasons, as status shows them (bounded)."""
    return [{"key": key, "reason": reason[:REASON_CHARS]} for key, reason in stats.parked_keys[:PARKED_NAMED]]


def parked_targets(status: dict[str, Any]) -> list[str]:
    """'<target> (<n> parked)' for every target with parked keys."""
    return [
        f"{t['name']} ({t['parkedKeys']} parked)" for t in status.get("targets") or [] if t.get("parkedKeys")
    ]


def summary(
    status: dict[str, Any],
    spec: DRReplicaSpec,
    wanted: list[Flow],
    problems: list[tuple[str, str]],
    publication: dict[str, Any] | None,
    generation: int | None,
    unusable: list[tuple[str, str]] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The conditions (ReferencesValid, RPOCompliant, SingleWriter, the endpoint's publication, action
    progress, Ready) and whether the replica is Ready. Sets `estimatedDataLossSeconds` in `status`: the
    smallest lag of a Continuous target."""
    targets = {t["name"]: t for t in status.get("targets") or []}
    parked = parked_targets(status)
    rpos = {f.target: f.rpo_s for f in wanted}
    breaches = [n for n, t in targets.items() if t.get("rpoCompliant") is False and _over(t, rpos.get(n))]
    unknown = [
        f.target for f in wanted if f.rpo_s is not None and "rpoCompliant" not in targets.get(f.target, {})
    ]
    source_missing = next((m for r, m in problems if r == SOURCE_MISSING), None)
    if source_missing:
        # Nothing is replicated from a bucket that does not exist: no lag to compare with an RPO.
        unknown = [f.target for f in wanted if f.rpo_s is not None and f.target not in breaches]
    refs_ok = not problems
    status["estimatedDataLossSeconds"] = min(
        (
            float(targets[f.target]["lagSeconds"])
            for f in wanted
            if f.mode == "Continuous" and targets.get(f.target, {}).get("lagSeconds") is not None
        ),
        default=None,
    )
    status.update(headline(status, wanted))
    # No target with an rpoTarget has nothing to breach; said as such, not as a measurement.
    within = (
        ReplicaReason.WITHIN_RPO if any(f.rpo_s is not None for f in wanted) else ReplicaReason.NO_RPO_TARGET
    )
    conds = [
        replica(
            ReplicaType.REFERENCES_VALID,
            refs_ok,
            _reason(problems[0][0]) if problems else ReplicaReason.RESOLVED,
            "; ".join(m for _, m in problems) or "all centres resolved",
            generation,
        ),
        _rpo_condition(breaches, parked, unknown, generation, within, source_missing, wanted, targets),
        _single_writer(status, generation),
    ]
    if source_missing:
        stale = (status.get("endpoint") or {}).get("stale")
        configmap = (status.get("endpoint") or {}).get("configMap")
        kept = f"; ConfigMap {configmap} kept, marked stale" if stale == source_missing else ""
        conds.append(
            replica(
                ReplicaType.ENDPOINT_PUBLISHED,
                False,
                ReplicaReason.SOURCE_BUCKET_MISSING,
                f"not published: {source_missing}; applications are not sent to a bucket that does not "
                f"exist{kept}",
                generation,
            )
        )
    elif publication is not None:
        conds.append({**publication, "observedGeneration": generation})
    progress = progress_condition(status.get("action") or {}, generation)
    if progress is not None:
        conds.append(progress)
    # Until a Continuous target's first scan has compared source and target, the initial copy may still
    # be running: nothing is known to be protected yet.
    seeding = [
        f.target
        for f in wanted
        if f.mode == "Continuous" and targets.get(f.target, {}).get("lagSeconds") is None
    ]
    ready = refs_ok and not breaches and not parked and not spec.paused and not unusable and not seeding
    if unusable and refs_ok and not spec.paused:
        reason, message = _reason(unusable[0][0]), "; ".join(m for _, m in unusable)
    else:
        reason = (
            ReplicaReason.PROTECTED
            if ready
            else (
                ReplicaReason.PAUSED
                if spec.paused
                else (
                    _reason(problems[0][0])
                    if problems
                    else (_rpo_reason(breaches) if breaches or parked else ReplicaReason.SEEDING)
                )
            )
        )
        if ready:
            message = "replication running"
        elif reason == ReplicaReason.SEEDING:
            message = f"initial copy running: the first scan of {', '.join(seeding)} has not finished"
        else:
            message = "see the other conditions"
    conds.append(replica(ReplicaType.READY, ready, reason, message, generation))
    return conds, ready


def headline(status: dict[str, Any], wanted: list[Flow]) -> dict[str, Any]:
    """The figures `kubectl get drr` shows: the worst measured lag and its target, and the oldest of the
    Scheduled targets' last good full syncs (None until every Scheduled target has had one)."""
    targets = {t["name"]: t for t in status.get("targets") or []}
    lags = [(float(t["lagSeconds"]), n) for n, t in targets.items() if t.get("lagSeconds") is not None]
    worst = max(lags, default=None)
    fulls = [targets.get(f.target, {}).get("lastGoodSyncStart") for f in wanted if f.mode == "Scheduled"]
    return {
        "worstLagSeconds": worst[0] if worst else None,
        "worstLagTarget": worst[1] if worst else None,
        "lastFullSyncTime": min(fulls) if fulls and all(fulls) else None,
    }


def source_missing(problems: list[tuple[str, str]]) -> bool:
    """Whether the active copy's bucket is missing: then no endpoint may be published for it."""
    return any(reason == SOURCE_MISSING for reason, _ in problems)


def _within(wanted: list[Flow], targets: dict[str, dict[str, Any]]) -> str:
    measured = [
        f"{f.target} {float(targets[f.target]['lagSeconds']):.1f}s of {f.rpo_s:g}s"
        for f in wanted
        if f.rpo_s is not None and targets.get(f.target, {}).get("lagSeconds") is not None
    ]
    if not measured:
        return "no target sets an rpoTarget: nothing to measure against"
    return "measured lag within the RPO: " + ", ".join(measured)


def _unmeasured_reason(source_missing: str | None) -> ReplicaReason:
    return ReplicaReason.SOURCE_BUCKET_MISSING if source_missing else ReplicaReason.NOT_MEASURED


def _unmeasured(targets: list[str], source_missing: str | None) -> str:
    if source_missing:
        return f"nothing to measure for {', '.join(targets)}: {source_missing}"
    return f"no lag measured yet for {', '.join(targets)}"


def _over(target: dict[str, Any], rpo_s: float | None) -> bool:
    """Over its RPO by lag (a target not compliant only because keys are parked is not)."""
    lag = target.get("lagSeconds")
    return not target.get("parkedKeys") or rpo_s is None or lag is None or float(lag) > rpo_s


def _rpo_reason(breaches: list[str]) -> ReplicaReason:
    return ReplicaReason.RPO_BREACHED if breaches else ReplicaReason.KEYS_PARKED


def _rpo_condition(
    breaches: list[str],
    parked: list[str],
    unknown: list[str],
    generation: int | None,
    within: ReplicaReason,
    source_missing: str | None,
    wanted: list[Flow],
    targets: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """False while a target is over its RPO or has parked keys (those are not replicated, however small
    the lag); unknown while a target's lag is not measured yet."""
    if breaches or parked:
        notes = [f"over RPO: {', '.join(breaches)}"] if breaches else []
        if parked:
            notes.append("keys failing permanently, not replicated: " + ", ".join(parked))
        return replica(ReplicaType.RPO_COMPLIANT, False, _rpo_reason(breaches), "; ".join(notes), generation)
    if unknown:
        return replica(
            ReplicaType.RPO_COMPLIANT,
            None,
            _unmeasured_reason(source_missing),
            _unmeasured(unknown, source_missing),
            generation,
        )
    return replica(ReplicaType.RPO_COMPLIANT, True, within, _within(wanted, targets), generation)


def _reason(text: str) -> ReplicaReason:
    """A reason another module found (a centre lookup, a spec check) as the typed reason."""
    return reason_of(ReplicaReason, text, ReplicaReason.CENTRE_INVALID)


def _single_writer(status: dict[str, Any], generation: int | None) -> dict[str, Any]:
    """From what the stores accepted when probed: never True while a copy's writability is unknown."""
    writable = status.get("writableLocations") or []
    if status.get("writableCopies", 0) > 1:
        return replica(
            ReplicaType.SINGLE_WRITER,
            False,
            ReplicaReason.SPLIT_BRAIN_SUSPECTED,
            f"{status['writableCopies']} copies accept writes: {', '.join(writable)}",
            generation,
        )
    pending = status.get("unfencedUnreachable") or []
    unmeasured = status.get("unmeasuredCopies") or []
    if pending:
        return replica(
            ReplicaType.SINGLE_WRITER,
            None,
            ReplicaReason.FENCE_PENDING,
            f"{', '.join(pending)} will be fenced when reachable; until then it may accept writes",
            generation,
        )
    if unmeasured:
        return replica(
            ReplicaType.SINGLE_WRITER,
            None,
            ReplicaReason.NOT_MEASURED,
            "writability not measured: " + "; ".join(unmeasured),
            generation,
        )
    if not writable:
        return replica(
            ReplicaType.SINGLE_WRITER,
            True,
            ReplicaReason.NO_WRITABLE_COPY,
            "no copy accepts writes (the active one neither)",
            generation,
        )
    return replica(
        ReplicaType.SINGLE_WRITER,
        True,
        ReplicaReason.FENCED,
        f"only {writable[0]} accepts writes (probed)",
        generation,
    )


def phase(status: dict[str, Any], spec: DRReplicaSpec, ready: bool, action_running: bool) -> str:
    if spec.paused:
        return "Paused"
    if action_running:
        return "FailingOver" if status["action"]["type"] == "Failover" else "Switching"
    if status["activeCentre"] != spec.source.centre:
        return "FailedOver"
    if ready:
        return "Protected"
    seeding = any(
        c.get("type") == "Ready" and c.get("reason") == ReplicaReason.SEEDING
        for c in status.get("conditions") or []
    )
    return "Seeding" if seeding else "Degraded"
