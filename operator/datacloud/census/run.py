"""One census run: collect from each city and centre, then turn what was found into report rows.

Collection is the only I/O here (each city's API, each centre's object store, Prometheus); everything
after it — grouping nodes by centre and GPU model, free capacity and fragmentation, committed quota,
carrying forward a city that could not be read, province totals — is plain functions over the facts.

Cities are collected afresh, not read from CityDataCloud status: the status holds per-city totals, and
the census needs per-node figures (rows per centre and GPU model, the largest request that still fits,
placement advice). Per city, nodes and pods are listed once (paginated), projected to compact records
as they arrive, reduced to rows, and dropped before the next city, so memory follows the largest city.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..adapters.kube import ApiError, Kube
from ..adapters.s3 import S3Endpoint
from ..api.common import CITIES
from .aggregate import GPU_RESOURCE, NodeFacts, PodFacts, model_label, summarise
from .collect import node_mirror, pod_mirror
from .snapshots import Row, Snapshot
from .trends import annotate, row_key
from .usage import Measured, StorageUsage, UsageError, aggregate, bucket_usage, query_range

CENTRE_LABEL = "datacloud.fujian.gov.cn/centre"
UNLABELLED = "(unlabelled)"  # nodes without a centre label form a row of their own
RESOURCES = {"cpu": "cpu", "memory": "memory", "gpu": GPU_RESOURCE}
# Quota keys that commit each resource, as a ResourceQuota writes them.
QUOTA_KEYS = {
    "cpu": ("requests.cpu", "cpu"),
    "memory": ("requests.memory", "memory"),
    "gpu": (f"requests.{GPU_RESOURCE}",),
}
Progress = Callable[[str, str, str], None]  # (stage, name, outcome): outcome "" when starting


def _no_progress(stage: str, name: str, outcome: str) -> None:
    return None


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Inputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CityTarget:
    name: str  # the CityDataCloud
    code: str
    zh: str
    en: str
    kube: Kube | None  # None when the city cannot be reached at all (`problem` says why)
    problem: str | None = None


@dataclass(frozen=True)
class CentreTarget:
    name: str
    city: str
    role: str
    endpoint: S3Endpoint | None
    problem: str | None = None


@dataclass(frozen=True)
class Zone:
    name: str
    city_code: str  # "" for a zone of the provincial cloud (counted in the province only)
    hard: Mapping[str, float]  # ResourceQuota key → amount (cores, bytes, devices)


@dataclass(frozen=True)
class PrometheusSource:
    url: str
    queries: Mapping[str, str]  # resource (cpu, memory, gpu) → PromQL, one series per node
    window: timedelta
    step: timedelta
    node_label: str = "node"
    city_label: str = "city"


# --- Facts reduced per city ------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeFree:
    """What is left on one schedulable node (for placement): cores, bytes, devices."""

    city_code: str
    centre: str
    node: str
    cpu: float
    memory: float
    gpu: int
    gpu_model: str


@dataclass
class CityResult:
    target: CityTarget
    rows: list[Row] = field(default_factory=list)
    free: list[NodeFree] = field(default_factory=list)
    node_centre: dict[str, tuple[str, str]] = field(default_factory=dict)  # node → (centre, gpu model)
    error: str | None = None


@dataclass
class Collected:
    cities: list[CityResult]
    storage: dict[str, StorageUsage]
    centres: list[CentreTarget]
    utilisation: dict[str, dict[tuple[str, ...], Measured]]  # resource → row key → measured
    problems: list[str]
    started: datetime
    finished: datetime
    prometheus_problem: tuple[str, str] | None = None  # (reason, message) when utilisation was not read

    @property
    def free(self) -> list[NodeFree]:
        return [f for c in self.cities for f in c.free]


def _centre_of(node: NodeFacts) -> str:
    return node.label(CENTRE_LABEL) or UNLABELLED


def _gpu_model(node: NodeFacts) -> str:
    return node.label(model_label(GPU_RESOURCE)) or "unknown"


def _get(values: Iterable[tuple[str, int]], key: str) -> int:
    return next((v for k, v in values if k == key), 0)


def _base_row(level: str, target: CityTarget | None, centre: str = "", model: str = "") -> Row:
    return {
        "level": level,
        "city_code": target.code if target else "",
        "city": target.name if target else "",
        "city_zh": target.zh if target else "福建省",
        "city_en": target.en if target else "Fujian Province",
        "centre": centre,
        "gpu_model": model,
    }


def _figures(
    row: Row, nodes: Sequence[NodeFacts], pods: Sequence[PodFacts], requested_on: Mapping[str, dict[str, int]]
) -> Row:
    """Counts and cpu/memory/gpu figures of a group of nodes and the pods requesting on them."""
    s = summarise(nodes, pods)
    row.update(
        nodes_total=s.nodes.total,
        nodes_ready=s.nodes.ready,
        nodes_schedulable=s.nodes.schedulable,
        nodes_cordoned=s.nodes.cordoned,
        pods_live=s.pods,
    )
    for res, key in RESOURCES.items():
        unit = 1000.0  # milli-values: thousandths of a core, of a byte, of a device
        for kind, values in (
            ("capacity", s.capacity),
            ("allocatable", s.allocatable),
            ("schedulable", s.schedulable),
            ("requested", s.requested),
        ):
            row[f"{res}_{kind}"] = _scaled(values.get(key, 0), unit)
        free = [
            max(0, _get(n.allocatable, key) - requested_on.get(n.name, {}).get(key, 0))
            for n in nodes
            if n.schedulable
        ]
        row[f"{res}_free"] = _scaled(sum(free), unit)
        row[f"{res}_largest_free"] = _scaled(max(free, default=0), unit)
    return row


def _scaled(value_milli: int, unit: float) -> float | int:
    scaled = value_milli / unit
    return int(scaled) if scaled == int(scaled) else round(scaled, 3)


def reduce_city(
    target: CityTarget, nodes: list[NodeFacts], pods: list[PodFacts], collected_at: str
) -> CityResult:
    """A city's nodes and live pods → its row, a row per centre and per centre × GPU model, and the
    free capacity of each schedulable node."""
    out = CityResult(target)
    requested_on: dict[str, dict[str, int]] = {}
    for p in pods:
        if p.node:
            into = requested_on.setdefault(p.node, {})
            for k, v in p.requests:
                into[k] = into.get(k, 0) + v
    by_centre: dict[str, list[NodeFacts]] = {}
    for n in nodes:
        centre, model = _centre_of(n), _gpu_model(n)
        by_centre.setdefault(centre, []).append(n)
        out.node_centre[n.name] = (centre, model if _get(n.capacity, GPU_RESOURCE) else "")
        if n.schedulable:
            used = requested_on.get(n.name, {})
            out.free.append(
                NodeFree(
                    target.code,
                    centre,
                    n.name,
                    max(0, _get(n.allocatable, "cpu") - used.get("cpu", 0)) / 1000,
                    max(0, _get(n.allocatable, "memory") - used.get("memory", 0)) / 1000,
                    max(0, _get(n.allocatable, GPU_RESOURCE) - used.get(GPU_RESOURCE, 0)) // 1000,
                    _gpu_model(n),
                )
            )
    pods_by_centre: dict[str, list[PodFacts]] = {}
    for p in pods:
        placed = out.node_centre.get(p.node)
        if placed:
            pods_by_centre.setdefault(placed[0], []).append(p)
    stamp = {"data_time": collected_at}
    out.rows.append({**_figures(_base_row("city", target), nodes, pods, requested_on), **stamp})
    for centre in sorted(by_centre):
        members = by_centre[centre]
        row = _figures(
            _base_row("centre", target, centre), members, pods_by_centre.get(centre, []), requested_on
        )
        out.rows.append({**row, **stamp})
        models: dict[str, list[NodeFacts]] = {}
        for n in members:
            if _get(n.capacity, GPU_RESOURCE):
                models.setdefault(_gpu_model(n), []).append(n)
        for model in sorted(models):
            names = {n.name for n in models[model]}
            row = _figures(
                _base_row("gpu", target, centre, model),
                models[model],
                [p for p in pods_by_centre.get(centre, []) if p.node in names],
                requested_on,
            )
            out.rows.append({**_gpu_only(row), **stamp})
    return out


def _gpu_only(row: Row) -> Row:
    return {k: v for k, v in row.items() if not k.startswith(("cpu_", "memory_", "pods_"))}


# --- Collection ------------------------------------------------------------------------------------
def collect_city(target: CityTarget, page_size: int = 500) -> CityResult:
    if target.kube is None:
        return CityResult(target, error=target.problem or "no client")
    nodes, pods = node_mirror(target.kube, page_size), pod_mirror(target.kube, page_size)
    try:
        nodes.sync_once()
        pods.sync_once()
    except ApiError as e:
        return CityResult(target, error=f"{e.reason}: {e.message}")
    except ValueError as e:  # a quantity the API server let through but we cannot read
        return CityResult(target, error=f"MalformedQuantity: {e}")
    return reduce_city(target, nodes.items(), pods.items(), iso(datetime.now(UTC)))


def collect(
    cities: Sequence[CityTarget],
    centres: Sequence[CentreTarget],
    prometheus: PrometheusSource | None,
    progress: Progress = _no_progress,
    page_size: int = 500,
) -> Collected:
    started = datetime.now(UTC)
    results: list[CityResult] = []
    problems: list[str] = []
    for target in cities:
        progress("city", target.name, "")
        result = collect_city(target, page_size)
        results.append(result)
        if result.error:
            problems.append(f"city {target.name} ({target.code}): {result.error}")
        progress("city", target.name, result.error or "ok")
    storage: dict[str, StorageUsage] = {}
    for c in centres:
        progress("centre", c.name, "")
        if c.endpoint is None:
            problems.append(f"centre {c.name}: {c.problem}")
            progress("centre", c.name, c.problem or "unavailable")
            continue
        try:
            storage[c.name] = bucket_usage(c.endpoint)
            progress("centre", c.name, "ok")
        except UsageError as e:
            problems.append(f"centre {c.name}: {e.reason}: {e.message}")
            progress("centre", c.name, e.reason)
    utilisation: dict[str, dict[tuple[str, ...], Measured]] = {}
    prometheus_problem = None
    if prometheus is not None:
        progress("prometheus", prometheus.url, "")
        try:
            utilisation, unmatched = measure(prometheus, results, datetime.now(UTC))
            if unmatched:
                problems.append(f"prometheus: {unmatched} series matched no census node")
            progress("prometheus", prometheus.url, "ok")
        except UsageError as e:
            problems.append(f"prometheus: {e.reason}: {e.message}")
            prometheus_problem = (e.reason, e.message)
            progress("prometheus", prometheus.url, e.reason)
    finished = datetime.now(UTC)
    return Collected(
        results, storage, list(centres), utilisation, problems, started, finished, prometheus_problem
    )


def measure(
    source: PrometheusSource, cities: Sequence[CityResult], end: datetime
) -> tuple[dict[str, dict[tuple[str, ...], Measured]], int]:
    """Average and p95 per row of each resource's query over the window ending at `end`."""
    by_city: dict[str, CityResult] = {}
    for c in cities:
        by_city[c.target.code] = by_city[c.target.name] = c
    owners: dict[str, list[CityResult]] = {}
    for c in cities:
        for node in c.node_centre:
            owners.setdefault(node, []).append(c)

    def locate(labels: Mapping[str, str]) -> tuple[tuple[str, ...], ...]:
        node = labels.get(source.node_label, "")
        city_value = labels.get(source.city_label)
        if city_value is not None:
            city = by_city.get(city_value)
        else:  # no city label: a node name the census knows in exactly one city
            found = owners.get(node, [])
            city = found[0] if len(found) == 1 else None
        placed = city.node_centre.get(node) if city else None
        if city is None or placed is None:
            return ()
        code, (centre, model) = city.target.code, placed
        keys: tuple[tuple[str, ...], ...] = (
            ("province", "", "", ""),
            ("city", code, "", ""),
            ("centre", code, centre, ""),
        )
        return (*keys, ("gpu", code, centre, model)) if model else keys

    out: dict[str, dict[tuple[str, ...], Measured]] = {}
    unmatched = 0
    for res, expr in source.queries.items():
        series = query_range(source.url, expr, end - source.window, end, source.step)
        out[res], missed = aggregate(series, locate)
        unmatched = max(unmatched, missed)
    return out, unmatched


# --- Assembly --------------------------------------------------------------------------------------
ADDITIVE = (
    "nodes_total",
    "nodes_ready",
    "nodes_schedulable",
    "nodes_cordoned",
    "pods_live",
    *(
        f"{r}_{k}"
        for r in RESOURCES
        for k in ("capacity", "allocatable", "schedulable", "requested", "free", "committed")
    ),
    "storage_bytes",
    "storage_objects",
    "storage_buckets",
)


def committed(zones: Iterable[Zone], city_code: str | None) -> dict[str, float]:
    """Quota committed to DataZones: every zone for the province (None), a city's own zones otherwise."""
    out = {res: 0.0 for res in RESOURCES}
    for z in zones:
        if city_code is not None and z.city_code != city_code:
            continue
        for res, keys in QUOTA_KEYS.items():
            out[res] += next((z.hard[k] for k in keys if k in z.hard), 0.0)
    return out


def _ratios(row: Row) -> None:
    for res in RESOURCES:
        alloc = row.get(f"{res}_allocatable")
        ok = isinstance(alloc, int | float) and alloc > 0

        def ratio(column: str, alloc: Any = alloc, ok: bool = ok) -> float | None:
            value = row.get(column)
            return round(value / alloc, 4) if ok and isinstance(value, int | float) else None

        row[f"{res}_requested_ratio"] = ratio(f"{res}_requested")
        row[f"{res}_used_ratio"] = ratio(f"{res}_used_avg")
        row[f"{res}_used_p95_ratio"] = ratio(f"{res}_used_p95")
        if f"{res}_committed" in row:
            row[f"{res}_overcommit_ratio"] = ratio(f"{res}_committed")
        free, largest = row.get(f"{res}_free"), row.get(f"{res}_largest_free")
        if isinstance(free, int | float) and isinstance(largest, int | float):
            # 0 when all free capacity sits on one node; near 1 when it is scattered in crumbs
            row[f"{res}_fragmentation"] = round(1 - largest / free, 4) if free > 0 else None


def _sum_rows(rows: Sequence[Row], into: Row) -> Row:
    for column in ADDITIVE:
        values = [r[column] for r in rows if isinstance(r.get(column), int | float)]
        if values:
            into[column] = _scaled(round(sum(values) * 1000), 1000)
    for res in RESOURCES:
        largest = [
            r[f"{res}_largest_free"] for r in rows if isinstance(r.get(f"{res}_largest_free"), int | float)
        ]
        into[f"{res}_largest_free"] = max(largest, default=None)
    times = [str(r["data_time"]) for r in rows if r.get("data_time")]
    into["data_time"] = min(times) if times else None
    return into


def assemble(
    census: str,
    collected: Collected,
    zones: Sequence[Zone],
    history: Sequence[Snapshot],
) -> Snapshot:
    """The snapshot of this run: rows for every city (carried from the previous snapshot when a city
    could not be read), storage per centre, committed quota, measured use, trends; province first."""
    previous = history[-1] if history else None
    rows: list[Row] = []
    problems = list(collected.problems)
    for result in collected.cities:
        if result.error is None:
            rows.extend(result.rows)
            continue
        old = [r for r in (previous.rows if previous else []) if r.get("city_code") == result.target.code]
        note = f"not collected this run ({result.error})"
        if old:
            rows.extend(
                {**r, "carried": True, "note": f"{note}; figures from {r.get('data_time')}"} for r in old
            )
        else:
            rows.append({**_base_row("city", result.target), "data_time": None, "note": note})
    _attach_storage(rows, collected)
    for row in rows:
        if row["level"] == "city" and not row.get("carried"):
            for res, amount in committed(zones, row["city_code"]).items():
                row[f"{res}_committed"] = _scaled(round(amount * 1000), 1000)
    province = _sum_rows([r for r in rows if r["level"] == "city"], _base_row("province", None))
    for res, amount in committed(zones, None).items():
        province[f"{res}_committed"] = _scaled(round(amount * 1000), 1000)
    rows.insert(0, province)
    for res, measured in collected.utilisation.items():
        for row in rows:
            m = measured.get(row_key(row))
            if m is not None:
                row[f"{res}_used_avg"], row[f"{res}_used_p95"] = round(m.avg, 3), round(m.p95, 3)
    for row in rows:
        _ratios(row)
    taken = iso(collected.finished)
    annotate(
        rows, previous.rows if previous else None, [*((s.taken_at, s.rows) for s in history), (taken, rows)]
    )
    sources = {
        "cities": [c.target.name for c in collected.cities],
        "centres": [c.name for c in collected.centres],
        "zones": len(zones),
        "prometheus": bool(collected.utilisation),
    }
    duration = (collected.finished - collected.started).total_seconds()
    return Snapshot(census, taken, duration, rows, problems, sources)


def _attach_storage(rows: list[Row], collected: Collected) -> None:
    """Object-store usage on the row of the centre of that name in its city (a centre row of its own
    when no node carries that centre's label), and added into the city row."""
    cities = {r["city_code"]: r for r in rows if r["level"] == "city"}
    centre_rows = {(r["city_code"], r["centre"]): r for r in rows if r["level"] == "centre"}
    for c in collected.centres:
        usage = collected.storage.get(c.name)
        if usage is None:
            continue
        row = centre_rows.get((c.city, c.name))
        if row is None:
            city = cities.get(c.city)
            target = CityTarget(city["city"] if city else "", c.city, *(CITIES.get(c.city, ("", ""))), None)
            row = {
                **_base_row("centre", target, c.name),
                "data_time": iso(collected.finished),
                "nodes_total": 0,
            }
            rows.append(row)
            centre_rows[(c.city, c.name)] = row
        row.update(storage_bytes=usage.bytes, storage_objects=usage.objects, storage_buckets=usage.buckets)
        if c.city in cities and not cities[c.city].get("carried"):
            city_row = cities[c.city]
            for k, v in (
                ("storage_bytes", usage.bytes),
                ("storage_objects", usage.objects),
                ("storage_buckets", usage.buckets),
            ):
                city_row[k] = int(city_row.get(k) or 0) + v
    # Keep rows grouped: each city's row, then its centres and their GPU models.
    rows.sort(
        key=lambda r: (
            str(r["city_code"]),
            {"city": 0, "centre": 1, "gpu": 1}[r["level"]],
            str(r.get("centre") or ""),
            str(r.get("gpu_model") or ""),
        )
    )


def run(
    census: str,
    cities: Sequence[CityTarget],
    centres: Sequence[CentreTarget],
    zones: Sequence[Zone],
    prometheus: PrometheusSource | None,
    history: Sequence[Snapshot],
    progress: Progress = _no_progress,
) -> tuple[Snapshot, Collected]:
    started = time.monotonic()
    collected = collect(cities, centres, prometheus, progress)
    snapshot = assemble(census, collected, zones, history)
    snapshot.duration_s = time.monotonic() - started
    return snapshot, collected
