"""CityDataCloud reconciler, run once per heartbeat: observe (the kubeconfig Secret, the city's API,
its mirrored nodes and pods, the baseline facts) → plan (availability, freshness, compliance) → the new
status and the Events to post. The caller (a daemon per city) writes both.

Nothing read from the Secret reaches status, Events or logs: messages name the Secret and say what is
wrong with it, never what it holds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from urllib3.exceptions import HTTPError

from .. import settings
from ..adapters.kube import ApiError, Kube, KubeconfigError, NotFound
from ..api.citydatacloud import PERIOD_MIN_S, CityDataCloudSpec
from ..api.common import parse_duration
from ..api.conditions import CityReason, CityType, city, reason_of
from ..builders.conditions import find, merge_conditions, now_iso
from ..census.aggregate import CitySummary
from ..census.baseline import PROFILE_KEY, Evaluation, Profile, ProfileError, choose_profile, evaluate
from ..census.collect import CityCollector, baseline_facts
from ..census.federation import (
    Contact,
    Verdict,
    availability,
    census_freshness,
    centres_verdict,
    city_owners,
    code_verdict,
)
from .centres import secret_refused

PLURAL = "citydataclouds"
# Where baseline-profile ConfigMaps live: the operator's own namespace.


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class HeartbeatReport:
    status: dict[str, Any]  # a merge patch for the status subresource
    period_s: float
    events: list[Event] = field(default_factory=list)


class CityLink:
    """The operator's connection to one city: a client from the kubeconfig Secret and the live mirror of
    its nodes and pods. A new kubeconfig (by content digest) replaces both; `close()` stops the mirror."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kube: Kube | None = None
        self.collector: CityCollector | None = None
        self._digest: str | None = None

    def client(self, kubeconfig: str, timeout_s: float) -> Kube:
        digest = hashlib.sha256(kubeconfig.encode()).hexdigest()
        if self.kube is None or digest != self._digest:
            self.close()
            self.kube = Kube.from_kubeconfig_text(kubeconfig, timeout_s=timeout_s)
            self._digest = digest
        return self.kube

    def collect(self) -> CityCollector:
        assert self.kube is not None
        if self.collector is None:
            self.collector = CityCollector(self.kube, self.name)
        return self.collector

    def close(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        if self.kube is not None:
            self.kube.close()
        self.kube, self.collector, self._digest = None, None, None


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _contact(kube: Kube, spec: CityDataCloudSpec, link: CityLink, timeout_s: float) -> tuple[Contact, str]:
    """Reach the city: read the Secret, build a client, ask for /version. Returns the contact and the
    Kubernetes version ('' when not reached)."""
    ref = spec.cluster.kubeconfig_secret_ref
    where = f"Secret {ref.namespace}/{ref.name}"
    try:
        data = kube.secret_data(ref.namespace, ref.name)
    except NotFound:
        return Contact(False, "SecretNotFound", f"kubeconfig {where} not found"), ""
    except ApiException as e:  # 403 for a namespace the operator may not read: a condition, not a traceback
        return Contact(
            False,
            "SecretUnreadable",
            secret_refused(f"kubeconfig {where}", e),
            e.status in (None, 0) or e.status >= 500,
        ), ""
    if not data.get(ref.key):
        return Contact(False, "SecretKeyMissing", f"{where} has no key {ref.key}"), ""
    try:
        city = link.client(data[ref.key], timeout_s)
    except KubeconfigError as e:
        return Contact(False, "KubeconfigInvalid", f"{where} key {ref.key}: {e}"), ""
    started = time.monotonic()
    try:
        version = str(city.get_json("/version").get("gitVersion", ""))
    except ApiError as e:
        return Contact(False, e.reason, e.message, transient=e.transient), ""
    ms = (time.monotonic() - started) * 1000
    return Contact(True, "HeartbeatSucceeded", f"Kubernetes {version} answered in {ms:.0f} ms"), version


class ProfileUnreadable(Exception):
    """The API server would not give the profile ConfigMap; the message says which and its answer."""


def _profile(kube: Kube, spec: CityDataCloudSpec) -> Profile:
    text = None
    if spec.baseline.config_map:
        namespace = settings.current().namespace
        where = f"ConfigMap {namespace}/{spec.baseline.config_map}"
        try:
            data = kube.config_map_data(namespace, spec.baseline.config_map)
        except NotFound:
            raise ProfileError(f"{where} not found") from None
        except ApiException as e:  # 403 from a narrowed Role, 5xx: says so, never a traceback per beat
            raise ProfileUnreadable(f"{where} could not be read: {e.status} {e.reason}") from None
        if PROFILE_KEY not in data:
            raise ProfileError(f"{where} has no key {PROFILE_KEY}")
        text = data[PROFILE_KEY]
    return choose_profile(spec.baseline.profile, spec.baseline.version, text)


def compliance_wire(evaluation: Evaluation, now: str) -> dict[str, Any]:
    failed = evaluation.failed
    return {
        "profile": evaluation.profile,
        "version": evaluation.version,
        "score": evaluation.score,
        "passed": len(evaluation.findings) - len(failed),
        "total": len(evaluation.findings),
        "evaluatedAt": now,
        "failedChecks": [{"id": f.id, "severity": f.severity, "message": f.message} for f in failed],
    }


def _failed_list(evaluation: Evaluation) -> str:
    return ", ".join(f"{f.id} ({f.severity})" for f in evaluation.failed)


def _verdict_condition(type_: CityType, v: Verdict, generation: int | None) -> dict[str, Any]:
    return city(type_, v.status, reason_of(CityReason, v.reason, CityReason.FAILED), v.message, generation)


def _replace_maps(old: Mapping[str, Any] | None, new: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """A merge patch replacing each map whole: keys the city no longer reports are set to null."""
    out: dict[str, Any] = {}
    for kind, values in new.items():
        gone = {k: None for k in ((old or {}).get(kind) or {}) if k not in values}
        out[kind] = {**gone, **values}
    return out


def _summary_status(summary: CitySummary, old: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "nodes": summary.nodes_wire(),
        "pods": {"live": summary.pods, "unscheduled": summary.unscheduled_pods},
        "resources": _replace_maps(old.get("resources"), summary.resources_wire()),
        "accelerators": summary.accelerators_wire(),
    }


def centre_cities(bodies: list[dict[str, Any]]) -> dict[str, str | None]:
    """DataCentre name → the city it stands in, None when its spec does not validate."""
    out: dict[str, str | None] = {}
    for body in bodies:
        spec = body.get("spec")
        city = spec.get("city") if isinstance(spec, dict) else None
        out[str(body["metadata"]["name"])] = city if isinstance(city, str) and city else None
    return out


def _placement(
    kube: Kube, name: str, spec: CityDataCloudSpec, generation: int | None
) -> list[dict[str, Any]]:
    """CentresResolved and CityCodeUnique: what the city names (its centres, its code) against the
    DataCentres and the other CityDataClouds. Unknown when they cannot be listed (not False: nothing
    was found wrong)."""
    try:
        centres = centre_cities(kube.list("datacentres"))
        owners = city_owners(kube.list(PLURAL))
    except (ApiException, HTTPError, OSError) as e:
        why = (
            f"could not list DataCentres and CityDataClouds: {getattr(e, 'reason', None) or type(e).__name__}"
        )
        return [
            city(CityType.CENTRES_RESOLVED, None, CityReason.NOT_CHECKED, why, generation),
            city(CityType.CITY_CODE_UNIQUE, None, CityReason.NOT_CHECKED, why, generation),
        ]
    return [
        _verdict_condition(
            CityType.CENTRES_RESOLVED, centres_verdict(spec.city_code, spec.centres, centres), generation
        ),
        _verdict_condition(CityType.CITY_CODE_UNIQUE, code_verdict(name, spec.city_code, owners), generation),
    ]


def _placement_events(old: Any, new: list[dict[str, Any]]) -> list[Event]:
    """A Warning when a placement condition turns False or says something new while False; Normal when it
    is True again after being False."""
    out = []
    for cond in new:
        was = find(old, cond["type"])
        if cond["status"] == "False" and (
            not was or was.get("status") != "False" or was.get("message") != cond["message"]
        ):
            out.append(Event("Warning", cond["reason"], cond["message"]))
        elif cond["status"] == "True" and was and was.get("status") == "False":
            out.append(Event("Normal", cond["type"], cond["message"]))
    return out


def heartbeat(
    kube: Kube, body: Mapping[str, Any], link: CityLink, now: datetime | None = None
) -> HeartbeatReport:
    """One heartbeat of one city; `kube` reaches the provincial API, `link` the city's."""
    meta, old = body.get("metadata") or {}, body.get("status") or {}
    generation = meta.get("generation")
    now = now or datetime.now(UTC)
    stamp = now_iso(now)
    try:
        spec = CityDataCloudSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        conds = [city(CityType.AVAILABLE, False, CityReason.INVALID_SPEC, msg, generation)]
        invalid = {"phase": "Invalid", "observedGeneration": generation,
                   "conditions": merge_conditions(old.get("conditions"), conds, stamp)}  # fmt: skip
        return HeartbeatReport(invalid, 60.0, [Event("Warning", "InvalidSpec", msg)])

    # Never back to back, even for a spec admitted before the rule on heartbeat.period.
    period = max(PERIOD_MIN_S, parse_duration(spec.heartbeat.period).total_seconds())
    grace = parse_duration(spec.heartbeat.grace)
    contact, version = _contact(kube, spec, link, timeout_s=min(10.0, max(2.0, period)))
    if not contact.ok and not contact.transient:
        link.close()  # the same credentials will not start working by themselves: stop the mirror

    status: dict[str, Any] = {"observedGeneration": generation}
    last_beat = _parse_time(old.get("lastHeartbeatTime"))
    summary_time = _parse_time(old.get("lastSummaryTime"))
    problem = contact.message if not contact.ok else ""
    summary: CitySummary | None = None
    if contact.ok:
        status["kubernetesVersion"] = version
        status["lastHeartbeatTime"] = stamp
        collector = link.collect()
        collector.wait_synced(min(period, 30.0))
        summary = collector.summary()
        if summary is not None and collector.current:
            status.update(_summary_status(summary, old))
            status["lastSummaryTime"] = stamp
            summary_time = now
        elif collector.error is not None:
            problem = f"listing nodes and pods failed: {collector.error.message}"

    available = availability(contact, last_beat, now, grace)
    fresh = census_freshness(summary_time, now, grace, problem)
    conds = [_verdict_condition(CityType.AVAILABLE, available, generation),
             _verdict_condition(CityType.CENSUS_FRESH, fresh, generation)]  # fmt: skip
    placement = _placement(kube, str(meta.get("name") or ""), spec, generation)
    conds += placement
    events: list[Event] = _placement_events(old.get("conditions"), placement)

    old_compliant = find(old.get("conditions"), "BaselineCompliant")
    if contact.ok and summary is not None:
        try:
            profile = _profile(kube, spec)
            facts = baseline_facts(
                link.collect().kube, spec.city_code, version, summary, profile.monitoring_namespaces()
            )
        except ProfileError as e:
            conds.append(
                city(CityType.BASELINE_COMPLIANT, None, CityReason.PROFILE_INVALID, str(e), generation)
            )
            if not old_compliant or old_compliant.get("message") != str(e):
                events.append(Event("Warning", "BaselineProfileInvalid", str(e)))
        except ProfileUnreadable as e:
            conds.append(
                city(CityType.BASELINE_COMPLIANT, None, CityReason.PROFILE_UNREADABLE, str(e), generation)
            )
            if not old_compliant or old_compliant.get("message") != str(e):
                events.append(Event("Warning", "BaselineProfileUnreadable", str(e)))
        except ApiError as e:
            conds.append(city(CityType.BASELINE_COMPLIANT, None, CityReason.CHECKS_NOT_RUN,
                                   f"could not read the city's API: {e.message}", generation))  # fmt: skip
        else:
            evaluation = evaluate(profile, facts)
            status["compliance"] = compliance_wire(evaluation, stamp)
            label = f"{evaluation.profile} {evaluation.version}: score {evaluation.score}%"
            if evaluation.compliant:
                conds.append(
                    city(CityType.BASELINE_COMPLIANT, True, CityReason.ALL_CHECKS_PASSED, label, generation)
                )
            else:
                message = f"{label}; failed {_failed_list(evaluation)}"
                conds.append(
                    city(CityType.BASELINE_COMPLIANT, False, CityReason.CHECKS_FAILED, message, generation)
                )
            was = old_compliant.get("status") if old_compliant else None
            if evaluation.compliant and was != "True":
                events.append(Event("Normal", "BaselineCompliant", f"{label}; every check passes"))
            elif not evaluation.compliant and was != "False":
                events.append(
                    Event("Warning", "BaselineNoncompliant", f"{label}; failed {_failed_list(evaluation)}")
                )
    elif old_compliant is None:
        not_yet = "the city has not been reached yet"
        conds.append(city(CityType.BASELINE_COMPLIANT, None, CityReason.NOT_EVALUATED, not_yet, generation))

    status["conditions"] = merge_conditions(old.get("conditions"), conds, stamp)
    status["phase"] = "Available" if available.status else "Unavailable"
    events[:0] = _availability_events(find(old.get("conditions"), "Available"), available)
    return HeartbeatReport(status, period, events)


def _availability_events(old: Mapping[str, Any] | None, new: Verdict) -> list[Event]:
    was = old.get("status") if old else None
    if new.status and was != "True":
        return [Event("Normal", "CityAvailable", new.message)]
    if new.status is False and (was != "False" or (old or {}).get("reason") != new.reason):
        return [Event("Warning", "CityUnavailable", f"{new.reason}: {new.message}")]
    return []
