"""`datacloud status` (`kubectl datacloud status`): centres, city clouds and DR replicas at a glance."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from ..adapters.kube import Kube


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG)")


def _condition(obj: dict[str, Any], kind: str) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return "-"


def centres_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Data centres 数据中心", title_justify="left")
    for col in ("Centre", "City", "Role", "Health", "Latency ms", "Failures"):
        table.add_column(col)
    for dc in sorted(items, key=lambda o: o["metadata"]["name"]):
        s, spec = dc.get("status") or {}, dc["spec"]
        table.add_row(
            dc["metadata"]["name"],
            spec["city"],
            spec["role"],
            s.get("health", "Unknown"),
            str(s.get("lastProbeLatencyMs", "-")),
            str(s.get("consecutiveFailures", "-")),
        )
    return table


def cities_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="City data clouds 市级数据云", title_justify="left")
    for col in ("City", "Code", "Available", "Nodes ready/total", "Baseline %", "Kubernetes"):
        table.add_column(col)
    for cdc in sorted(items, key=lambda o: o["spec"]["cityCode"]):
        s = cdc.get("status") or {}
        nodes = s.get("nodes") or {}
        table.add_row(
            f"{cdc['spec']['displayName']['zh']} {cdc['spec']['displayName']['en']}",
            cdc["spec"]["cityCode"],
            _condition(cdc, "Available"),
            f"{nodes.get('ready', '-')}/{nodes.get('total', '-')}",
            str((s.get("compliance") or {}).get("score", "-")),
            s.get("kubernetesVersion", "-"),
        )
    return table


def replicas_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="DR replicas 灾备副本", title_justify="left")
    for col in ("Replica", "Phase", "Active", "Epoch", "Target", "Mode", "Lag s", "RPO", "RPO ok"):
        table.add_column(col)
    for drr in sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        s = drr.get("status") or {}
        by_name = {t["name"]: t for t in s.get("targets") or []}
        first = True
        for target in drr["spec"]["targets"]:
            t = by_name.get(target["name"], {})
            lag = t.get("lagSeconds")
            table.add_row(
                f"{drr['metadata']['namespace']}/{drr['metadata']['name']}" if first else "",
                s.get("phase", "-") if first else "",
                s.get("activeCentre", "-") if first else "",
                str(s.get("fencingEpoch", "-")) if first else "",
                f"{target['name']} → {target['centre']}",
                target["mode"],
                "-" if lag is None else f"{lag:.1f}",
                target.get("rpoTarget", "-"),
                {True: "yes", False: "NO"}.get(t.get("rpoCompliant"), "-")
                + (f" ({t['parkedKeys']} parked)" if t.get("parkedKeys") else ""),
            )
            first = False
    return table


def main(args: argparse.Namespace) -> int:
    kube = Kube.from_kubeconfig(args.kubeconfig)
    console = Console(width=160)
    console.print(centres_table(kube.list("datacentres")))
    console.print(cities_table(kube.list("citydataclouds")))
    console.print(replicas_table(kube.list("drreplicas")))
    return 0
