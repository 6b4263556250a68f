"""`datacloud status` (`kubectl datacloud status`): every kind at a glance, in the terminal's width.

One table per kind (centres, city clouds, zones, DR replicas, censuses), one row per object, and a REASON
wherever something is not well: the first condition that is not True, in the words the operator wrote. A
last section lists objects the operator has not reconciled yet, or whose status is behind their spec.
DR replicas follow kubectl: the kubeconfig context's namespace unless `-n` or `-A`.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..api.conditions import CensusType, CityType, DataCentreType, ZoneType
from .kubecontext import add_kube_arguments, client, namespace

Obj = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_kube_arguments(parser, all_namespaces=True)


# -- cells ---------------------------------------------------------------------------------------------


def conditions(obj: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def reason(obj: Obj, types: Sequence[str]) -> str:
    """`Reason: message` of the first of `types` that is not True; empty when all are."""
    conds = conditions(obj)
    for type_ in types:
        c = conds.get(type_)
        if c is not None and c.get("status") != "True":
            text = f"{c.get('reason') or c.get('status')}: {c.get('message') or ''}".rstrip(": ")
            return text if c.get("status") == "False" else f"{type_} unknown, {text}"
    return ""


def seconds(value: Any) -> str:
    if value is None:
        return "-"
    s = float(value)
    if s < 60:
        return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400 * 2:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.0f}d"


def age(stamp: Any, now: datetime | None = None) -> str:
    """How long ago an RFC 3339 time was, kubectl-style (`5m`, `3h`); `-` when unknown."""
    if not stamp:
        return "-"
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return str(stamp)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = ((now or datetime.now(UTC)) - when).total_seconds()
    return f"in {seconds(-delta)}" if delta < 0 else seconds(delta)


def _table(title: str, columns: Sequence[str]) -> Table:
    # kubectl's look: no borders, upper-case headers, columns two spaces apart.
    table = Table(
        title=title, title_justify="left", title_style="bold", box=None, padding=(0, 2, 0, 0), pad_edge=False
    )
    for col in columns:
        last = col == "REASON"  # the one column that wraps; the others keep their words whole
        table.add_column(col, no_wrap=not last, overflow="fold" if last else "ellipsis")
    return table


def _row(table: Table, *cells: str) -> None:
    """Cells as plain text: names, city names and condition messages are data, not rich markup (a message
    quoting `spec.hard[cpuz]` lost `[cpuz]`; a display name holding `[/]` stopped the command)."""
    table.add_row(*(Text(cell) for cell in cells))


# -- one table per kind --------------------------------------------------------------------------------


def centres_table(items: list[Obj]) -> Table:
    table = _table("Data centres 数据中心", ("NAME", "CITY", "ROLE", "HEALTH", "LATENCY", "REASON"))
    for dc in sorted(items, key=lambda o: o["metadata"]["name"]):
        s, spec = dc.get("status") or {}, dc["spec"]
        latency = s.get("lastProbeLatencyMs")
        _row(
            table,
            dc["metadata"]["name"],
            spec["city"],
            spec["role"],
            s.get("health", "Unknown"),
            "-" if latency is None else f"{latency}ms",
            reason(dc, tuple(DataCentreType)),
        )
    return table


def cities_table(items: list[Obj]) -> Table:
    table = _table(
        "City data clouds 市级数据云", ("NAME", "CITY", "AVAILABLE", "NODES", "BASELINE", "REASON")
    )
    for cdc in sorted(items, key=lambda o: o["spec"]["cityCode"]):
        s, spec = cdc.get("status") or {}, cdc["spec"]
        nodes = s.get("nodes") or {}
        score = (s.get("compliance") or {}).get("score")
        _row(
            table,
            cdc["metadata"]["name"],
            f"{spec['cityCode']} {spec['displayName']['zh']}",
            conditions(cdc).get("Available", {}).get("status", "-"),
            f"{nodes.get('ready', '-')}/{nodes.get('total', '-')}",
            "-" if score is None else f"{score}%",
            reason(cdc, tuple(CityType)),
        )
    return table


def zones_table(items: list[Obj]) -> Table:
    table = _table("Data zones 数据区", ("NAME", "CLASS", "PHASE", "NAMESPACES", "DR", "REASON"))
    for dz in sorted(items, key=lambda o: o["metadata"]["name"]):
        s, spec = dz.get("status") or {}, dz["spec"]
        _row(
            table,
            dz["metadata"]["name"],
            spec["classification"],
            s.get("phase", "-"),
            f"{len(s.get('namespaces') or [])}/{len(spec.get('namespaces') or [])}",
            conditions(dz).get("DRProtected", {}).get("status", "-"),
            reason(dz, tuple(ZoneType)),
        )
    return table


def worst_target(drr: Obj) -> tuple[str, Any]:
    """The target with the largest lag (the least protected copy), and that lag."""
    lags = [(t.get("lagSeconds"), t["name"]) for t in (drr.get("status") or {}).get("targets") or []]
    measured = [(lag, name) for lag, name in lags if lag is not None]
    if not measured:
        return "-", None
    lag, name = max(measured)
    return name, lag


REPLICA_CONDITIONS = (
    "ReferencesValid",
    "SingleWriter",
    "EndpointPublished",
    "RPOCompliant",
    "ActionProgressing",
    "Ready",
)


def replicas_table(items: list[Obj], all_namespaces: bool) -> Table:
    title = "DR replicas 灾备副本"
    table = _table(title, ("NAME", "PHASE", "ACTIVE", "WORST LAG", "RPO OK", "FULL SYNC", "REASON"))
    for drr in sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        s, meta = drr.get("status") or {}, drr["metadata"]
        target, lag = worst_target(drr)
        _row(
            table,
            f"{meta['namespace']}/{meta['name']}" if all_namespaces else meta["name"],
            s.get("phase", "-"),
            s.get("activeCentre", "-"),
            "-" if lag is None else f"{seconds(lag)} {target}",
            conditions(drr).get("RPOCompliant", {}).get("status", "-") + _parked(drr),
            age(_last_full_sync(drr)),
            reason(drr, REPLICA_CONDITIONS),
        )
    return table


def _parked(drr: Obj) -> str:
    """' (N parked)' when keys fail permanently on some target (they are not replicated)."""
    n = sum(int(t.get("parkedKeys") or 0) for t in (drr.get("status") or {}).get("targets") or [])
    return f" ({n} parked)" if n else ""


def _last_full_sync(drr: Obj) -> str | None:
    scheduled = {t["name"] for t in drr["spec"]["targets"] if t.get("mode") == "Scheduled"}
    times = [
        str(t["lastGoodSyncStart"])
        for t in (drr.get("status") or {}).get("targets") or []
        if t.get("name") in scheduled and t.get("lastGoodSyncStart")
    ]
    return max(times) if times else None


def censuses_table(items: list[Obj]) -> Table:
    table = _table("Compute census 算力普查", ("NAME", "SCHEDULE", "LAST RUN", "NEXT RUN", "NODES", "REASON"))
    for cc in sorted(items, key=lambda o: o["metadata"]["name"]):
        s = cc.get("status") or {}
        _row(
            table,
            cc["metadata"]["name"],
            cc["spec"]["schedule"],
            age(s.get("lastRunTime")),
            age(s.get("nextRunTime")),
            str((s.get("totals") or {}).get("nodes", "-")),
            # Every type the kind's catalogue lists, in its order: a name typed here went stale
            # (ReportsWritten, where the operator writes ReportsStored) and hid a failed report write.
            reason(cc, tuple(CensusType)),
        )
    return table


def behind(kinds: dict[str, list[Obj]]) -> Table | None:
    """Objects with no status yet, or a status written for an older generation of their spec."""
    table = _table("Not reconciled yet 尚未处理", ("KIND", "NAME", "REASON"))
    rows = 0
    for kind, items in kinds.items():
        for obj in items:
            meta, s = obj["metadata"], obj.get("status") or {}
            name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            generation, observed = meta.get("generation"), s.get("observedGeneration")
            if not s:
                why = "no status: the operator has not reconciled it (is it running?)"
            elif generation is not None and observed is not None and int(observed) < int(generation):
                why = f"status is for generation {observed}, the spec is at {generation}"
            elif generation is not None and observed is None:
                why = f"status names no generation; the spec is at {generation}"
            else:
                continue
            _row(table, kind, name, why)
            rows += 1
    return table if rows else None


def _empty(table: Table) -> str:
    return f"[bold]{table.title}[/bold]: none"


SECTIONS: tuple[tuple[str, str, Callable[[list[Obj]], Table]], ...] = (
    ("DataCentre", "datacentres", centres_table),
    ("CityDataCloud", "citydataclouds", cities_table),
    ("DataZone", "datazones", zones_table),
    ("ComputeCensus", "computecensuses", censuses_table),
)


def width() -> int:
    """$COLUMNS, else the terminal's width, else 120 (output to a pipe or file)."""
    return shutil.get_terminal_size((120, 24)).columns


def main(args: argparse.Namespace) -> int:
    kube = client(args)
    ns = namespace(args)
    console = Console(width=width(), highlight=False, soft_wrap=False)
    listed: dict[str, list[Obj]] = {kind: kube.list(plural) for kind, plural, _ in SECTIONS}
    listed["DRReplica"] = kube.list("drreplicas", ns)
    where = "all namespaces" if ns is None else f"namespace {ns}"
    replicas = replicas_table(listed["DRReplica"], ns is None)
    replicas.title = f"{replicas.title} ({where})"
    tables = [render(listed[kind]) for kind, _, render in SECTIONS[:3]]
    tables += [replicas, censuses_table(listed["ComputeCensus"])]
    late = behind(listed)
    for table in [*tables, *([late] if late is not None else [])]:
        console.print(table if table.row_count else _empty(table))
        console.print()
    return 0
