"""ComputeCensus reconciler: decide (is a run due, scheduled or asked for?) → observe (the cities,
centres, zones and Prometheus in scope) → run (census/run.py) → apply (snapshot, reports, status).

A run never raises for what a city, a centre or Prometheus does: each problem becomes a line in the
report and in the LastRunSucceeded condition; only the census's own storage failing fails the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import CroniterBadDateError, croniter
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .. import GROUP, RUN_NOW, settings
from ..adapters.kube import Kube, KubeconfigError, NotFound
from ..api.census import ComputeCensusSpec
from ..api.citydatacloud import CityDataCloudSpec
from ..api.common import CITIES, parse_duration, parse_quantity
from ..api.conditions import CensusReason, CensusType, census, reason_of
from ..builders.conditions import merge_conditions, now_iso
from ..census.federation import city_owners, code_verdict
from ..census.report import CONTENT_TYPES, render
from ..census.run import CentreTarget, CityTarget, Collected, Progress, PrometheusSource, Zone, run
from ..census.snapshots import Bucket, Row, Snapshot, SnapshotStore
from ..census.trends import NOT_GROWING
from .centres import CentreUnavailable, resolve, secret_refused

PLURAL = "computecensuses"
CITY_LABEL = f"{GROUP}/city"  # on a DataZone: the city whose quota it commits (else the province's)
CONFIGMAP_BUDGET = 900 * 1024


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    reason: str | None  # "Requested", "Scheduled" or None (nothing to do)
    next_run: datetime | None
    request: str | None = None
    problem: str | None = None  # the spec cannot be run


def _time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


CRON_HELP = "five fields (minute hour day-of-month month day-of-week), e.g. '0 6 * * 1', or @daily, @weekly"


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time `schedule` fires after `after`; ValueError, naming the field and what would be valid,
    for a schedule that is not cron or that names no date that exists."""
    if not croniter.is_valid(schedule):
        raise ValueError(f"spec.schedule {schedule!r} is not a cron expression: use {CRON_HELP}")
    try:
        nxt: datetime = croniter(schedule, after).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            f"spec.schedule {schedule!r} never fires: no date matches it (such as 31 February or "
            f"31 April); use a day-of-month every chosen month has, e.g. '0 6 1 * *'"
        ) from None
    return nxt


def decide(body: Mapping[str, Any], now: datetime) -> Decision:
    """Whether to run now: a new run-now annotation, or the schedule's next time since the last run
    (since creation for a census that never ran) has come, unless suspended."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    try:
        spec = ComputeCensusSpec.model_validate(body.get("spec") or {})
        base = _time(status.get("lastRunTime")) or _time(meta.get("creationTimestamp")) or now
        upcoming = next_run(spec.schedule, base)
    except (ValidationError, ValueError) as e:
        msg = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        return Decision(None, None, problem=msg)
    request = (meta.get("annotations") or {}).get(RUN_NOW)
    if request and request != status.get("lastRunRequest"):
        return Decision("Requested", upcoming, request)
    if not spec.suspend and now >= upcoming:
        return Decision("Scheduled", upcoming)
    return Decision(None, None if spec.suspend else upcoming)


# --- Observe ---------------------------------------------------------------------------------------
@dataclass
class Scope:
    cities: list[CityTarget]
    centres: list[CentreTarget]
    zones: list[Zone]
    prometheus: PrometheusSource | None
    bucket: Bucket | None
    problems: list[str] = field(default_factory=list)

    def close(self) -> None:
        for c in self.cities:
            if c.kube is not None:
                c.kube.close()


def _city_target(kube: Kube, name: str, spec: CityDataCloudSpec) -> CityTarget:
    ref = spec.cluster.kubeconfig_secret_ref
    zh, en = spec.display_name.zh, spec.display_name.en
    where = f"Secret {ref.namespace}/{ref.name}"
    try:
        text = kube.secret_data(ref.namespace, ref.name).get(ref.key)
    except NotFound:
        return CityTarget(name, spec.city_code, zh, en, None, f"SecretNotFound: kubeconfig {where} not found")
    except ApiException as e:
        return CityTarget(
            name,
            spec.city_code,
            zh,
            en,
            None,
            f"SecretUnreadable: {secret_refused(f'kubeconfig {where}', e)}",
        )
    if not text:
        return CityTarget(
            name, spec.city_code, zh, en, None, f"SecretKeyMissing: {where} has no key {ref.key}"
        )
    try:
        city = Kube.from_kubeconfig_text(text, timeout_s=30.0)
    except KubeconfigError as e:
        return CityTarget(name, spec.city_code, zh, en, None, f"KubeconfigInvalid: {where}: {e}")
    return CityTarget(name, spec.city_code, zh, en, city)


def zones(kube: Kube) -> list[Zone]:
    out = []
    for z in kube.list("datazones"):
        hard = ((z.get("spec") or {}).get("quota") or {}).get("hard") or {}
        labels = (z.get("metadata") or {}).get("labels") or {}
        amounts = {}
        for key, value in hard.items():
            try:
                amounts[str(key)] = parse_quantity(str(value))
            except ValueError:
                continue  # the CRD schema refuses malformed quantities; nothing to count
        out.append(Zone(str(z["metadata"]["name"]), str(labels.get(CITY_LABEL, "")), amounts))
    return out


def observe(kube: Kube, spec: ComputeCensusSpec) -> Scope:
    problems: list[str] = []
    wanted = set(spec.scope.cities)
    cities = []
    bodies = sorted(kube.list("citydataclouds"), key=lambda b: str(b["metadata"]["name"]))
    owners = city_owners(bodies)  # two clouds with one city code would count the city twice
    for body in bodies:
        name = str(body["metadata"]["name"])
        try:
            cdc = CityDataCloudSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            problems.append(f"city {name}: invalid CityDataCloud spec")
            continue
        if owners.get(cdc.city_code, name) != name:
            if not wanted or cdc.city_code in wanted:
                problems.append(f"city {name}: {code_verdict(name, cdc.city_code, owners).message}")
            continue
        if not wanted or cdc.city_code in wanted:
            cities.append(_city_target(kube, name, cdc))
    for code in sorted(wanted - {c.code for c in cities}):
        problems.append(f"city {code} ({CITIES[code][1]}): no CityDataCloud has this city code")
    names = spec.scope.centres or sorted(str(c["metadata"]["name"]) for c in kube.list("datacentres"))
    centres = []
    for name in names:
        try:
            c = resolve(kube, name)
            centres.append(CentreTarget(name, c.city, c.role, c.endpoint))
        except CentreUnavailable as e:
            centres.append(CentreTarget(name, "", "", None, f"{e.reason}: {e}"))
    prometheus = None
    if spec.prometheus_url:
        u = spec.utilisation
        prometheus = PrometheusSource(
            spec.prometheus_url,
            {"cpu": u.cpu, "memory": u.memory, "gpu": u.gpu},
            parse_duration(u.window),
            parse_duration(u.step),
            u.node_label,
            u.city_label,
        )
    bucket, problem = report_bucket(kube, spec)
    if problem:
        problems.append(problem)
    return Scope(cities, centres, zones(kube), prometheus, bucket, problems)


# --- Apply -----------------------------------------------------------------------------------------
@dataclass
class Stored:
    locations: list[dict[str, Any]] = field(default_factory=list)
    spilled: list[str] = field(default_factory=list)  # formats that did not fit the ConfigMap
    problems: list[str] = field(default_factory=list)


def why(error: Exception) -> str:
    """A failed run's cause for its condition and Event: an API error's status and message (its text as a
    whole starts with response headers, which took the 200 characters kept), else the error's text."""
    return failure(error) if isinstance(getattr(error, "status", None), int) else str(error)[:200]


def failure(e: Exception) -> str:
    """Why a report write failed, in words fit for a condition: the API server's status and message, or
    the S3 error code. Never the exception's text as a whole (it carries headers and bodies)."""
    status = getattr(e, "status", None)
    if isinstance(status, int):  # the Kubernetes client's ApiException
        try:
            message = json.loads(getattr(e, "body", None) or "{}").get("message")
        except (ValueError, AttributeError):
            message = None
        return f"{status} {getattr(e, 'reason', '')}: {message or 'no message'}"
    response = getattr(e, "response", None)
    code = (response.get("Error") or {}).get("Code") if isinstance(response, dict) else None
    return f"{type(e).__name__} {code}" if code else type(e).__name__


def publish(
    kube: Kube,
    census: str,
    spec: ComputeCensusSpec,
    bucket: Bucket | None,
    reports: Mapping[str, bytes],
    stamp: str,
) -> Stored:
    """Write each report to the ConfigMap while it fits (smallest first) and to the bucket; a report
    that fits nowhere in the cluster is named, with where it went instead."""
    out = Stored()
    if bucket is not None:
        try:
            bucket.ensure()
            for fmt, body in reports.items():
                bucket.put(f"{census}/{stamp}/report.{fmt}", body, CONTENT_TYPES[fmt])
                url = bucket.put(f"{census}/latest/report.{fmt}", body, CONTENT_TYPES[fmt])
                out.locations.append({"format": fmt, "location": url, "bytes": len(body)})
        except Exception as e:  # botocore errors of every kind: say so, keep the cluster copy
            out.problems.append(f"object store {bucket.centre}: {failure(e)}")
    target = spec.reports.config_map
    if target is not None:
        data: dict[str, str] = {}
        used = 0
        for fmt, body in sorted(reports.items(), key=lambda kv: len(kv[1])):
            if used + len(body) > CONFIGMAP_BUDGET:
                out.spilled.append(fmt)
                continue
            data[f"report.{fmt}"] = body.decode()
            used += len(body)
            out.locations.append(
                {
                    "format": fmt,
                    "location": f"configmap://{target.namespace}/{target.name}#report.{fmt}",
                    "bytes": len(body),
                }
            )
        data["where.json"] = json.dumps(
            {
                "takenAt": stamp,
                "elsewhere": {
                    fmt: [
                        loc["location"]
                        for loc in out.locations
                        if loc["format"] == fmt and loc["location"].startswith("s3:")
                    ]
                    for fmt in out.spilled
                },
            },
            indent=1,
        )
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": target.name,
                "namespace": target.namespace,
                "labels": {"app.kubernetes.io/managed-by": "datacloud", f"{GROUP}/census": census},
            },
            "data": data,
        }
        try:
            kube.apply(manifest)
        except Exception as e:
            out.problems.append(f"ConfigMap {target.namespace}/{target.name}: {failure(e)}")
    return out


def _quantity(value: object, resource: str) -> str | None:
    if not isinstance(value, int | float):
        return None
    if resource == "memory":
        return f"{round(value / 2**30)}Gi"
    return f"{value:g}"


def _percent(value: object) -> int | None:
    return round(value * 100) if isinstance(value, int | float) else None


def _totals(row: Row) -> dict[str, Any]:
    return {
        "nodes": row.get("nodes_total"),
        "schedulableNodes": row.get("nodes_schedulable"),
        "cpu": _quantity(row.get("cpu_allocatable"), "cpu"),
        "cpuRequested": _quantity(row.get("cpu_requested"), "cpu"),
        "memory": _quantity(row.get("memory_allocatable"), "memory"),
        "memoryRequested": _quantity(row.get("memory_requested"), "memory"),
        "gpus": row.get("gpu_allocatable"),
        "gpusRequested": row.get("gpu_requested"),
        "storageBytes": row.get("storage_bytes"),
    }


def _city_line(row: Row) -> dict[str, Any]:
    return {
        "cityCode": row["city_code"],
        "name": row.get("city"),
        "display": f"{row.get('city_zh', '')} {row.get('city_en', '')}".strip(),
        "nodes": row.get("nodes_total"),
        "schedulableNodes": row.get("nodes_schedulable"),
        "cpu": _quantity(row.get("cpu_allocatable"), "cpu"),
        "memory": _quantity(row.get("memory_allocatable"), "memory"),
        "gpus": row.get("gpu_allocatable"),
        "cpuRequestedPercent": _percent(row.get("cpu_requested_ratio")),
        "memoryRequestedPercent": _percent(row.get("memory_requested_ratio")),
        "dataTime": row.get("data_time"),
        "problem": row.get("note"),
    }


@dataclass
class RunReport:
    status: dict[str, Any]
    events: list[Event]
    snapshot: Snapshot | None
    succeeded: bool
    collected: Collected | None = None


def run_once(
    kube: Kube,
    body: Mapping[str, Any],
    decision: Decision,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RunReport:
    """One census run for the ComputeCensus `body`; returns the status patch and the Events."""
    meta, old = body.get("metadata") or {}, body.get("status") or {}
    name, generation = str(meta["name"]), meta.get("generation")
    spec = ComputeCensusSpec.model_validate(body.get("spec") or {})
    scope = observe(kube, spec)
    store = SnapshotStore(kube, settings.current().namespace, name, scope.bucket)
    try:
        history, unreadable = store.load(spec.retain)
        snapshot, collected = run(
            name,
            scope.cities,
            scope.centres,
            scope.zones,
            scope.prometheus,
            history,
            **({"progress": progress} if progress else {}),
        )
    finally:
        scope.close()
    snapshot.problems[:0] = scope.problems + unreadable
    saved = store.save(snapshot, spec.retain)
    kept = kept_history(history, snapshot, spec.retain)
    reports: dict[str, bytes] = {fmt: render(fmt, snapshot, kept) for fmt in spec.reports.formats}
    stored = publish(kube, name, spec, scope.bucket, reports, snapshot.taken_at.replace(":", ""))
    finished = now or datetime.now(UTC)
    stamp = now_iso(finished)

    failed_cities = [c.target.name for c in collected.cities if c.error]
    events: list[Event] = []
    ok = saved.problem is None and not failed_cities and collected.cities != []
    summary = _summary(snapshot)
    if saved.problem:
        run_cond = census(
            CensusType.LAST_RUN_SUCCEEDED, False, CensusReason.SNAPSHOT_NOT_STORED, saved.problem, generation
        )
    elif not collected.cities:
        run_cond = census(
            CensusType.LAST_RUN_SUCCEEDED,
            False,
            CensusReason.NO_CITIES,
            "no CityDataCloud in scope",
            generation,
        )
    elif failed_cities:
        msg = (
            f"{len(failed_cities)} of {len(collected.cities)} cities not collected "
            f"({', '.join(failed_cities)}); their rows carry the previous figures"
        )
        run_cond = census(
            CensusType.LAST_RUN_SUCCEEDED, False, CensusReason.PARTIAL_COLLECTION, msg, generation
        )
        events.append(Event("Warning", "CensusPartial", msg))
    else:
        run_cond = census(CensusType.LAST_RUN_SUCCEEDED, True, CensusReason.SUCCEEDED, summary, generation)
    events.append(Event("Normal", "CensusCompleted", f"{decision.reason or 'Manual'} run: {summary}"))
    if saved.trimmed:
        events.append(
            Event(
                "Warning",
                "SnapshotsTrimmed",
                f"{saved.trimmed} old snapshot(s) dropped to fit "
                f"{saved.location}; configure reports.objectStore to keep {spec.retain}",
            )
        )
    where = [f"{loc['format']}: {loc['location']}" for loc in stored.locations]
    if stored.spilled:
        elsewhere = [w for w in where if w.split(":")[0] in stored.spilled and "s3://" in w]
        msg = f"{', '.join(stored.spilled)} too large for the ConfigMap" + (
            f"; in {', '.join(elsewhere)}" if elsewhere else "; configure reports.objectStore to keep it"
        )
        reports_cond = census(
            CensusType.REPORTS_STORED,
            bool(elsewhere),
            CensusReason.SPILLED if elsewhere else CensusReason.TOO_LARGE,
            msg,
            generation,
        )
        events.append(Event("Normal" if elsewhere else "Warning", "ReportSpilled", msg))
    elif stored.problems:
        reports_cond = census(
            CensusType.REPORTS_STORED,
            False,
            CensusReason.STORE_FAILED,
            "; ".join(stored.problems),
            generation,
        )
    else:
        reports_cond = census(
            CensusType.REPORTS_STORED,
            True,
            CensusReason.STORED,
            "; ".join(where) or "no destination set",
            generation,
        )
    conds = [
        census(CensusType.READY, True, CensusReason.SCHEDULE_VALID, f"runs on {spec.schedule!r}", generation),
        run_cond,
        reports_cond,
    ]
    if spec.prometheus_url:
        if collected.prometheus_problem:
            reason, message = collected.prometheus_problem
            conds.append(
                census(
                    CensusType.UTILISATION_MEASURED,
                    False,
                    reason_of(CensusReason, reason, CensusReason.QUERY_FAILED),
                    message,
                    generation,
                )
            )
            events.append(Event("Warning", "UtilisationNotMeasured", f"{reason}: {message}"))
        else:
            conds.append(
                census(
                    CensusType.UTILISATION_MEASURED,
                    True,
                    CensusReason.MEASURED,
                    f"average and p95 over {spec.utilisation.window} from {spec.prometheus_url}",
                    generation,
                )
            )
    snap_loc: dict[str, Any] = {"format": "snapshots", "location": saved.location}
    if saved.entry is not None and saved.entry.where != "configmap":
        snap_loc["location"] = f"{saved.location} (latest spilled to {saved.entry.where})"
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": "Succeeded" if ok else "Degraded",
        "lastRunTime": snapshot.taken_at,
        "lastRunDurationSeconds": round(snapshot.duration_s, 2),
        "nextRunTime": _next_iso(spec, finished),
        "totals": _totals(snapshot.rows[0]),
        "cities": [_city_line(r) for r in snapshot.rows if r["level"] == "city"],
        "reportLocations": [*stored.locations, snap_loc],
        "snapshots": saved.retained,
        "conditions": merge_conditions(old.get("conditions"), conds, stamp),
    }
    if decision.request:
        status["lastRunRequest"] = decision.request
    return RunReport(status, events, snapshot, ok, collected)


def _next_iso(spec: ComputeCensusSpec, after: datetime) -> str | None:
    return None if spec.suspend else now_iso(next_run(spec.schedule, after))


def _summary(s: Snapshot) -> str:
    p = s.rows[0]
    return (
        f"{len([r for r in s.rows if r['level'] == 'city'])} cities, {p.get('nodes_total', 0)} nodes, "
        f"CPU {_percent(p.get('cpu_requested_ratio'))}% requested, {len(s.problems)} problem(s)"
    )


def spec_events(old: Mapping[str, Any], patch: Mapping[str, Any]) -> list[Event]:
    """A Warning Event when a status patch turns Ready False for an invalid spec (or changes why): once
    per change, since an unchanged status gives no patch."""

    def invalid(conds: Any) -> tuple[str, str] | None:
        ready = next((c for c in conds or [] if c.get("type") == "Ready"), None)
        if ready and ready.get("status") == "False" and ready.get("reason") == "InvalidSpec":
            return str(ready["reason"]), str(ready.get("message") or "")
        return None

    new = invalid(patch.get("conditions"))
    if new is None or new == invalid(old.get("conditions")):
        return []
    return [Event("Warning", *new)]


def idle_status(body: Mapping[str, Any], decision: Decision, now: datetime) -> dict[str, Any] | None:
    """Status between runs: the next run time and Ready, or why the spec cannot run. None: unchanged."""
    meta, old = body.get("metadata") or {}, body.get("status") or {}
    generation = meta.get("generation")
    if decision.problem:
        ready = census(CensusType.READY, False, CensusReason.INVALID_SPEC, decision.problem, generation)
        patch: dict[str, Any] = {"phase": "Invalid", "nextRunTime": None}
    else:
        spec = ComputeCensusSpec.model_validate(body.get("spec") or {})
        what = "suspended" if spec.suspend else f"runs on {spec.schedule!r}"
        ready = census(
            CensusType.READY,
            True,
            CensusReason.SUSPENDED if spec.suspend else CensusReason.SCHEDULE_VALID,
            what,
            generation,
        )
        nxt = now_iso(decision.next_run) if decision.next_run else None
        patch = {
            "nextRunTime": nxt,
            "phase": old.get("phase") or ("Suspended" if spec.suspend else "Scheduled"),
        }
        if spec.suspend:
            patch["phase"] = "Suspended"
    patch["observedGeneration"] = generation
    patch["conditions"] = merge_conditions(old.get("conditions"), [ready], now_iso(now))
    same = all(old.get(k) == v for k, v in patch.items())
    return None if same else patch


def days_until_exhaustion(snapshot: Snapshot) -> list[tuple[str, str, float]]:
    """(city, resource, days) for the metric: the forecast, +Inf when requests are not growing; nothing
    without enough history (or for a resource the city has none of)."""
    out = []
    for r in snapshot.rows:
        if r["level"] != "city" or r.get("carried"):
            continue
        for res, resource in (("cpu", "cpu"), ("memory", "memory"), ("gpu", "nvidia.com/gpu")):
            days = r.get(f"{res}_days_until_exhaustion")
            if isinstance(days, int | float):
                out.append((str(r.get("city")), resource, float(days)))
            elif r.get(f"{res}_exhaustion_note") == NOT_GROWING:
                out.append((str(r.get("city")), resource, math.inf))
    return out


def report_bucket(kube: Kube, spec: ComputeCensusSpec) -> tuple[Bucket | None, str | None]:
    """The census's object store, or why it cannot be used (then everything stays in the cluster)."""
    target = spec.reports.object_store
    if target is None:
        return None, None
    try:
        centre = resolve(kube, target.centre)
    except CentreUnavailable as e:
        return (
            None,
            f"report store {target.centre}: {e.reason}: {e}; reports and snapshots stay in the cluster",
        )
    return Bucket(target.centre, centre.endpoint, target.bucket, target.prefix), None


def history_for_cli(
    kube: Kube, name: str, spec: ComputeCensusSpec, limit: int | None = None
) -> tuple[list[Snapshot], list[str]]:
    """The retained snapshots of census `name` (for `datacloud census report`)."""
    bucket, problem = report_bucket(kube, spec)
    snapshots, problems = SnapshotStore(kube, settings.current().namespace, name, bucket).load(limit)
    return snapshots, [problem, *problems] if problem else problems


def kept_history(history: Sequence[Snapshot], snapshot: Snapshot, retain: int) -> list[Snapshot]:
    return [*history[-(retain - 1) :], snapshot] if retain > 1 else [snapshot]


def failed_status(old: Mapping[str, Any], decision: Decision, error: Exception) -> dict[str, Any]:
    """Status after a run that raised (a bug, or the provincial API failing mid-run)."""
    cond = census(
        CensusType.LAST_RUN_SUCCEEDED,
        False,
        CensusReason.RUN_FAILED,
        f"{type(error).__name__}: {why(error)}",
    )
    patch: dict[str, Any] = {
        "phase": "Failed",
        "conditions": merge_conditions(old.get("conditions"), [cond], now_iso()),
    }
    if decision.request:
        patch["lastRunRequest"] = decision.request
    return patch
