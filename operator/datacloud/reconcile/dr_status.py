"""A DRReplica's status summary: per-target figures, the conditions and the phase, from what the runtime
observed (pure: the runtime writes what these return)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..api.drreplica import DRReplicaSpec
from ..builders.conditions import condition
from ..failover.topology import Flow
from ..replication.continuous import ReplicationStats
from .dr_actions import progress_condition

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
        if stats is not None:
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
    refs_ok = not problems
    status["estimatedDataLossSeconds"] = min(
        (
            float(targets[f.target]["lagSeconds"])
            for f in wanted
            if f.mode == "Continuous" and targets.get(f.target, {}).get("lagSeconds") is not None
        ),
        default=None,
    )
    conds = [
        condition(
            "ReferencesValid",
            refs_ok,
            problems[0][0] if problems else "Resolved",
            "; ".join(m for _, m in problems) or "all centres resolved",
            generation,
        ),
        _rpo_condition(breaches, parked, unknown, generation),
        _single_writer(status, generation),
    ]
    if publication is not None:
        conds.append({**publication, "observedGeneration": generation})
    progress = progress_condition(status.get("action") or {}, generation)
    if progress is not None:
        conds.append(progress)
    ready = refs_ok and not breaches and not parked and not spec.paused and not unusable
    if unusable and refs_ok and not spec.paused:
        reason, message = unusable[0][0], "; ".join(m for _, m in unusable)
    else:
        reason = (
            "Protected"
            if ready
            else ("Paused" if spec.paused else (problems[0][0] if problems else _rpo_reason(breaches)))
        )
        message = "replication running" if ready else "see the other conditions"
    conds.append(condition("Ready", ready, reason, message, generation))
    return conds, ready


def _over(target: dict[str, Any], rpo_s: float | None) -> bool:
    """Over its RPO by lag (a target not compliant only because keys are parked is not)."""
    lag = target.get("lagSeconds")
    return not target.get("parkedKeys") or rpo_s is None or lag is None or float(lag) > rpo_s


def _rpo_reason(breaches: list[str]) -> str:
    return "RPOBreached" if breaches else "KeysParked"


def _rpo_condition(
    breaches: list[str], parked: list[str], unknown: list[str], generation: int | None
) -> dict[str, Any]:
    """False while a target is over its RPO or has parked keys (those are not replicated, however small
    the lag); unknown while a target's lag is not measured yet."""
    if breaches or parked:
        notes = [f"over RPO: {', '.join(breaches)}"] if breaches else []
        if parked:
            notes.append("keys failing permanently, not replicated: " + ", ".join(parked))
        return condition("RPOCompliant", False, _rpo_reason(breaches), "; ".join(notes), generation)
    if unknown:
        return condition(
            "RPOCompliant", None, "NotMeasured", f"no lag measured yet for {', '.join(unknown)}", generation
        )
    return condition("RPOCompliant", True, "WithinRPO", "every target within its RPO", generation)


def _single_writer(status: dict[str, Any], generation: int | None) -> dict[str, Any]:
    """From what the stores accepted when probed: never True while a copy's writability is unknown."""
    writable = status.get("writableLocations") or []
    if status.get("writableCopies", 0) > 1:
        return condition(
            "SingleWriter",
            False,
            "SplitBrainSuspected",
            f"{status['writableCopies']} copies accept writes: {', '.join(writable)}",
            generation,
        )
    pending = status.get("unfencedUnreachable") or []
    unmeasured = status.get("unmeasuredCopies") or []
    if pending:
        return condition(
            "SingleWriter",
            None,
            "FencePending",
            f"{', '.join(pending)} will be fenced when reachable; until then it may accept writes",
            generation,
        )
    if unmeasured:
        return condition(
            "SingleWriter",
            None,
            "NotMeasured",
            "writability not measured: " + "; ".join(unmeasured),
            generation,
        )
    if not writable:
        return condition(
            "SingleWriter",
            True,
            "NoWritableCopy",
            "no copy accepts writes (the active one neither)",
            generation,
        )
    return condition(
        "SingleWriter", True, "Fenced", f"only {writable[0]} accepts writes (probed)", generation
    )


def phase(status: dict[str, Any], spec: DRReplicaSpec, ready: bool, action_running: bool) -> str:
    if spec.paused:
        return "Paused"
    if action_running:
        return "FailingOver" if status["action"]["type"] == "Failover" else "Switching"
    if status["activeCentre"] != spec.source.centre:
        return "FailedOver"
    return "Protected" if ready else "Degraded"
