"""DataCentre reconciler: observe (credentials, a probe) → plan (next health) → apply (status, event)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..adapters import s3
from ..adapters.kube import Kube
from ..api.common import parse_duration
from ..api.conditions import DataCentreReason, DataCentreType, datacentre, reason_of
from ..api.datacentre import DataCentreSpec
from ..builders.conditions import merge_conditions, now_iso
from ..failover.health import HealthState, ProbeOutcome, next_health
from ..failover.probe import probe_store
from .centres import CentreUnavailable, credentials

PLURAL = "datacentres"


@dataclass
class ProbeReport:
    status: dict[str, Any]
    interval_s: float
    transition: tuple[str, str] | None = None  # (old, new) health when it changed
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (reason, message) for Events


def probe_once(kube: Kube, body: dict[str, Any]) -> ProbeReport:
    """Probe the centre once and compute its new status; the caller patches it and posts events."""
    meta, old = body.get("metadata", {}), body.get("status") or {}
    generation = meta.get("generation")
    now = now_iso()
    previous = HealthState(str(old.get("health") or "Unknown"), int(old.get("consecutiveFailures") or 0))
    try:
        spec = DataCentreSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        conds = [datacentre(DataCentreType.READY, False, DataCentreReason.INVALID_SPEC, msg, generation)]
        invalid = {
            "health": "Unknown",
            "phase": "Invalid",
            "observedGeneration": generation,
            "conditions": merge_conditions(old.get("conditions"), conds, now),
        }
        return ProbeReport(invalid, 60.0, warnings=[("InvalidSpec", msg)])

    interval = parse_duration(spec.probe.interval).total_seconds()
    timeout = parse_duration(spec.probe.timeout).total_seconds()
    degraded = parse_duration(spec.probe.degraded_latency).total_seconds()
    probing_reason, probing_msg = (
        DataCentreReason.PROBING,
        f"probing {spec.object_store.endpoint} every {spec.probe.interval}",
    )
    try:
        creds = credentials(kube, spec)
    except CentreUnavailable as e:
        outcome = ProbeOutcome(False, 0.0, "", attempted=False)
        probing_reason = reason_of(DataCentreReason, e.reason, DataCentreReason.SECRET_NOT_FOUND)
        probing_msg = str(e)
    else:
        endpoint = s3.S3Endpoint(spec.object_store.endpoint, spec.object_store.region, creds)
        outcome = probe_store(endpoint, timeout)

    state = next_health(previous, outcome, spec.probe.failure_threshold, degraded)
    if not outcome.attempted:
        ready = datacentre(DataCentreType.READY, None, probing_reason, probing_msg, generation)
    elif outcome.ok:
        slow = state.health == "Degraded"
        ready = datacentre(
            DataCentreType.READY,
            True,
            DataCentreReason.SLOW_RESPONSE if slow else DataCentreReason.ANSWERING,
            # No figure in the message: a message that changed with every probe made every probe a
            # status write (the latency is in lastProbeLatencyMs and the metrics).
            "object store answered" + (" slowly" if slow else ""),
            generation,
        )
    else:
        ready = datacentre(
            DataCentreType.READY,
            False,
            reason_of(DataCentreReason, outcome.error.split(":")[0], DataCentreReason.S3_ERROR),
            f"probe failed ({outcome.error}); {state.consecutive_failures} failure(s) in a row, "
            f"Down at {spec.probe.failure_threshold}",
            generation,
        )
    probing = datacentre(DataCentreType.PROBING, outcome.attempted, probing_reason, probing_msg, generation)
    status: dict[str, Any] = {
        "health": state.health,
        "phase": state.health,
        "consecutiveFailures": state.consecutive_failures,
        "lastProbeTime": now,
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions"), [ready, probing], now),
    }
    if outcome.ok:
        status["lastProbeLatencyMs"] = round(outcome.latency_s * 1000)
    transition = None
    if state.health != previous.health:
        status["lastTransitionTime"] = now
        transition = (previous.health, state.health)
    warnings = [(str(probing_reason), probing_msg)] if not outcome.attempted else []
    return ProbeReport(status, interval, transition, warnings)
