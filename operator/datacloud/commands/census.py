"""`datacloud census run|report|place`: run a ComputeCensus now, write a report, ask where a request fits.

`report` and `place` collect afresh from the cities and centres in scope (a progress bar on stderr
while they do) and change nothing in the cluster; `report --latest` renders the last stored snapshot
without collecting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import RUN_NOW
from ..adapters.kube import Kube, NotFound
from ..api.census import ComputeCensusSpec
from ..api.common import CITIES
from ..api.quantity import milli
from ..census.placement import Advice, Request, advise
from ..census.report import render
from ..census.run import Collected, assemble, collect
from ..census.snapshots import Snapshot
from ..reconcile import census as reconcile
from .kubecontext import add_kube_arguments, client, wait_seconds

FORMATS = ("html", "csv", "json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="census_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="ask the operator to run a ComputeCensus now and wait for it")
    run.add_argument("name", help="ComputeCensus name")
    run.add_argument("--no-wait", action="store_true", help="return once the request is recorded")
    run.add_argument("--timeout", type=wait_seconds, default=600.0, help="seconds to wait (default 600)")
    report = sub.add_parser("report", help="collect now and write a report (changes nothing in the cluster)")
    report.add_argument(
        "name", nargs="?", help="ComputeCensus whose scope and snapshots to use (default: all)"
    )
    report.add_argument("--format", choices=FORMATS, default="html", help="report format (default html)")
    report.add_argument("-o", "--output", required=True, help="file to write ('-' for stdout)")
    report.add_argument(
        "--latest", action="store_true", help="render the census's last snapshot, no collecting"
    )
    place = sub.add_parser("place", help="rank the centres that can take a request, and say why others can't")
    place.add_argument("name", nargs="?", help="ComputeCensus whose scope to use (default: all)")
    place.add_argument("--cpu", required=True, help="cores, e.g. 64 or 500m")
    place.add_argument("--memory", required=True, help="memory, e.g. 256Gi")
    place.add_argument("--gpu", type=int, default=0, help="GPUs on the same node")
    place.add_argument("--gpu-model", default="", help="GPU model, matched as a substring: A100, L40S")
    place.add_argument("--city", default="", help="preferred city division code, e.g. 350200")
    place.add_argument("--json", action="store_true", help="print the advice as JSON")
    for p in (run, report, place):
        add_kube_arguments(p, namespaced=False)


def main(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        # bad input fails before anything is contacted
        request = _request(args) if args.census_command == "place" else None
        if args.census_command == "report":
            _check_output(args.output)
        kube = client(args)
        if args.census_command == "run":
            return run_now(kube, args, err)
        if args.census_command == "report":
            return report(kube, args, err)
        assert request is not None
        return place(kube, args, request, err)
    except _UsageError as e:
        err.print(f"datacloud census: {e}", markup=False)
        return 2


class _UsageError(Exception):
    pass


def _check_output(output: str) -> None:
    """A report goes where it can be written: said before collecting from every city, not after."""
    if output == "-":
        return
    path = Path(output)
    if path.is_dir():
        raise _UsageError(f"-o {output} is a directory; name a file in it")
    if not path.parent.is_dir():
        raise _UsageError(f"-o {output}: directory {path.parent} does not exist")


def _request(args: argparse.Namespace) -> Request:
    try:
        cpu = milli(args.cpu) / 1000
        memory = milli(args.memory) / 1000
    except ValueError as e:
        raise _UsageError(f"{e} (expected e.g. --cpu 64 or 500m, --memory 256Gi)") from None
    if args.gpu < 0:
        raise _UsageError("--gpu must not be negative")
    try:
        return Request(cpu, memory, args.gpu, args.gpu_model, args.city)
    except ValueError as e:
        raise _UsageError(str(e)) from None


def _spec(kube: Kube, name: str | None) -> ComputeCensusSpec:
    if not name:
        return ComputeCensusSpec(schedule="@weekly")
    try:
        body = kube.get(reconcile.PLURAL, name)
    except NotFound:
        raise _UsageError(f"ComputeCensus {name} not found") from None
    try:
        return ComputeCensusSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        raise _UsageError(f"ComputeCensus {name} has an invalid spec: {e.errors()[0]['msg']}") from None


@contextmanager
def progress_bar(err: Console, total: int) -> Iterator[Any]:
    """A rich progress bar on stderr; the callback advances it as each city, centre and query ends."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("collecting", total=total)

        def step(stage: str, name: str, outcome: str) -> None:
            # Outcomes quote servers (`spec.hard[cpuz]`): escaped, the description is text, not markup.
            if outcome:
                bar.update(task, advance=1, description=escape(f"{stage} {name}: {outcome}"))
            else:
                bar.update(task, description=escape(f"{stage} {name} …"))

        yield step


def _collect(kube: Kube, spec: ComputeCensusSpec, err: Console) -> tuple[Collected, reconcile.Scope]:
    scope = reconcile.observe(kube, spec)
    total = len(scope.cities) + len(scope.centres) + (1 if scope.prometheus else 0)
    try:
        with progress_bar(err, total) as step:
            collected = collect(scope.cities, scope.centres, scope.prometheus, step)
    finally:
        scope.close()
    return collected, scope


def report(kube: Kube, args: argparse.Namespace, err: Console) -> int:
    spec = _spec(kube, args.name)
    history: list[Snapshot] = []
    if args.name:
        history, unreadable = reconcile.history_for_cli(kube, args.name, spec, spec.retain)
        for line in unreadable:
            err.print(f"warning: {line}", markup=False)
    if args.latest:
        if not history:
            raise _UsageError(f"ComputeCensus {args.name or '(none given)'} has no stored snapshot yet")
        snapshot, kept = history[-1], history
    else:
        collected, scope = _collect(kube, spec, err)
        snapshot = assemble(args.name or "adhoc", collected, scope.zones, history)
        snapshot.problems[:0] = scope.problems
        kept = reconcile.kept_history(history, snapshot, spec.retain)
    body = render(args.format, snapshot, kept)
    if args.output == "-":
        sys.stdout.buffer.write(body)
    else:
        try:
            Path(args.output).write_bytes(body)
        except OSError as e:  # e.g. no permission, disk full: the report is lost, say so plainly
            raise _UsageError(f"could not write {args.output}: {e.strerror or e}") from None
        err.print(
            f"wrote {args.output} ({len(body):,} bytes, {args.format}); {len(snapshot.problems)} problem(s)",
            markup=False,
        )
    for line in snapshot.problems:
        err.print(f"  problem: {line}", markup=False)
    return 0


def place(kube: Kube, args: argparse.Namespace, request: Request, err: Console) -> int:
    spec = _spec(kube, args.name)
    collected, _ = _collect(kube, spec, err)
    snapshot = assemble("placement", collected, [], [])
    ratios = {
        (r["city_code"], r["centre"]): (
            float(r.get("cpu_requested") or 0),
            float(r.get("cpu_allocatable") or 0),
        )
        for r in snapshot.rows
        if r["level"] == "centre"
    }
    advice = advise(request, collected.free, ratios.keys(), ratios)
    if args.json:
        print(json.dumps(_advice_wire(advice, snapshot.problems), ensure_ascii=False, indent=1))
    else:
        _print_advice(advice, request, snapshot.problems)
    return 0 if advice.ranked else 1


def _city(code: str) -> str:
    zh, en = CITIES.get(code, ("", ""))
    return f"{code} {zh} {en}".strip()


def _advice_wire(advice: Advice, problems: list[str]) -> dict[str, Any]:
    return {
        "ranked": [
            {
                "rank": i,
                "city": c.city_code,
                "centre": c.centre,
                "fits": c.fits,
                "nodes": c.nodes,
                "cpuRequestedAfter": c.cpu_after,
                "why": c.why,
            }
            for i, c in enumerate(advice.ranked, 1)
        ],
        "excluded": [
            {"city": city, "centre": centre, "reason": reason} for city, centre, reason in advice.excluded
        ],
        "problems": problems,
    }


def _print_advice(advice: Advice, r: Request, problems: list[str]) -> None:
    out = Console()
    gpu = f", {r.gpu}× GPU {r.gpu_model}".rstrip() if r.gpu else ""
    ranked = Table(
        title=escape(f"可承接的数据中心 Centres that can take {r.cpu:g} cores, {r.memory / 2**30:g}Gi{gpu}"),
        title_justify="left",
    )
    for col in ("#", "城市 city", "中心 centre", "可放置 fits", "原因 why"):
        ranked.add_column(col)
    for i, c in enumerate(advice.ranked, 1):
        ranked.add_row(*map(Text, (str(i), _city(c.city_code), c.centre, str(c.fits), c.why)))
    out.print(ranked)
    excluded = Table(title="排除 Excluded", title_justify="left")
    for col in ("城市 city", "中心 centre", "原因 reason"):
        excluded.add_column(col)
    for city, centre, reason in advice.excluded:
        excluded.add_row(*map(Text, (_city(city), centre, reason)))
    out.print(excluded)
    for line in problems:
        out.print(f"problem: {line}", markup=False)


def run_now(kube: Kube, args: argparse.Namespace, err: Console) -> int:
    try:
        kube.get(reconcile.PLURAL, args.name)
    except NotFound:
        raise _UsageError(f"ComputeCensus {args.name} not found") from None
    request = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"metadata": {"annotations": {RUN_NOW: request}}}
    try:
        kube.patch(reconcile.PLURAL, args.name, patch)
    except ApiException as e:
        raise _UsageError(f"could not annotate ComputeCensus {args.name}: {e.status} {e.reason}") from None
    err.print(f"requested a run of census {args.name} ({RUN_NOW}={request})", markup=False)
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    with err.status(f"waiting for the operator to run census {args.name} …"):
        while time.monotonic() < deadline:
            status = kube.get(reconcile.PLURAL, args.name).get("status") or {}
            if status.get("lastRunRequest") == request:
                break
            time.sleep(1.0)
        else:
            err.print(
                f"timed out after {args.timeout:g}s; the operator has not answered the request", markup=False
            )
            return 1
    conds = status.get("conditions") or []
    cond: dict[str, Any] = next((c for c in conds if c.get("type") == "LastRunSucceeded"), {})
    print(
        json.dumps(
            {
                k: status.get(k)
                for k in ("lastRunTime", "lastRunDurationSeconds", "nextRunTime", "totals", "reportLocations")
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    err.print(f"{cond.get('reason')}: {cond.get('message')}", markup=False)
    return 0 if cond.get("status") == "True" else 1
