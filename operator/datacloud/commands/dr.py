"""`datacloud dr failover|switchover|failback NAME --to CENTRE [--dry-run]`: request a DR action and
follow it until it finishes, printing each step as it changes; `datacloud dr sync-now NAME`: full syncs
of the Scheduled targets now; `datacloud dr divergent ...` for the writes kept after an unplanned
failover."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from .. import RUN_NOW
from ..adapters.kube import Kube, NotFound
from . import dr_divergent
from .kubecontext import add_kube_arguments, client, namespace, wait_seconds

PLURAL = "drreplicas"


def requester() -> str:
    """Who asks, for the audit record: the login name, or the user id where there is none (a container
    running as an id without a passwd entry, where getpass raises)."""
    try:
        return getpass.getuser()[:128]  # the field's bound
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dr_command", required=True, metavar="ACTION")
    for kind, text in (
        ("failover", "unplanned: promote a copy now; writes not yet copied (the lag) are lost"),
        ("switchover", "planned: fence, copy until nothing is pending, then swap; nothing is lost"),
        ("failback", "planned: bring the service back to its home centre; nothing is lost"),
    ):
        p = sub.add_parser(kind, help=text, description=text)
        p.add_argument("name", help="DRReplica name")
        p.add_argument("--to", required=True, metavar="CENTRE", help="the centre that becomes active")
        p.add_argument(
            "--dry-run", action="store_true", help="print the plan and estimated loss; change nothing"
        )
        p.add_argument("--request-id", help="change/ticket id for the audit trail (default: generated)")
        p.add_argument("--no-wait", action="store_true", help="return once the request is recorded")
        p.add_argument("--timeout", type=wait_seconds, default=600.0, help="seconds to wait (default 600)")
        add_kube_arguments(p)
        p.set_defaults(action_type=kind.capitalize())
    text = "start a full sync of every Scheduled target now, whatever its schedule and transfer window"
    sync_now = sub.add_parser("sync-now", help=text, description=text)
    sync_now.add_argument("name", help="DRReplica name")
    sync_now.add_argument("--no-wait", action="store_true", help="return once the request is recorded")
    sync_now.add_argument(
        "--timeout",
        type=wait_seconds,
        default=60.0,
        help="seconds to wait for the operator to start the runs (default 60; the runs themselves are not "
        "waited for)",
    )
    add_kube_arguments(sync_now)
    divergent = sub.add_parser(
        "divergent", help="writes an old active copy accepted that the active lacked: list, restore"
    )
    dr_divergent.add_arguments(divergent)
    status = sub.add_parser("status", help="the replica's active centre, targets, lag and last action")
    status.add_argument("name")
    add_kube_arguments(status)


def main(args: argparse.Namespace) -> int:
    kube = client(args)
    args.namespace = namespace(args)
    try:
        body = kube.get(PLURAL, args.name, args.namespace)
    except NotFound:
        print(f"datacloud: DRReplica {args.namespace}/{args.name} not found", file=sys.stderr)
        return 1
    if args.dr_command == "divergent":
        return dr_divergent.main(kube, args, body)
    if args.dr_command == "status":
        print(json.dumps(body.get("status") or {}, indent=2, ensure_ascii=False))
        return 0
    if args.dr_command == "sync-now":
        return sync_now(kube, args, body)
    return request(kube, args, body)


def sync_now(kube: Kube, args: argparse.Namespace, body: dict[str, Any]) -> int:
    """Set the run-now annotation and wait until the operator answered it: each Scheduled target started
    a run for it (exit 0), or some did not (exit 1; the replica's Events say why)."""
    request_id = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # A refusal is worded by the CLI's failure handler (one line naming the server's message, exit 1).
    kube.patch(PLURAL, args.name, {"metadata": {"annotations": {RUN_NOW: request_id}}}, args.namespace)
    print(f"full syncs of {args.namespace}/{args.name} requested ({RUN_NOW}={request_id})")
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = kube.get(PLURAL, args.name, args.namespace).get("status") or {}
        if status.get("lastRunRequest") == request_id:
            return _started(body, status, request_id, args)
        time.sleep(0.5)
    print(
        f"datacloud: the operator has not answered after {args.timeout:g}s; see "
        f"`kubectl -n {args.namespace} describe drr {args.name}`",
        file=sys.stderr,
    )
    return 1


def _started(body: dict[str, Any], status: dict[str, Any], request_id: str, args: argparse.Namespace) -> int:
    """Which Scheduled targets (other than the active copy) started a run for the request."""
    active = status.get("activeCentre") or body["spec"].get("activeCentre")
    wanted = [
        t["name"]
        for t in body["spec"].get("targets") or []
        if t.get("mode") == "Scheduled" and t.get("centre") != active
    ]
    started = {t["name"]: t for t in status.get("targets") or [] if t.get("lastRunRequest") == request_id}
    for name, target in started.items():
        print(f"  {name:<12} full sync started at {target.get('lastScheduledTime')}")
    if started:
        print("each run's result reaches the target's status when it finishes (`datacloud dr status`)")
    missing = [name for name in wanted if name not in started]
    if missing or not started:
        print(
            f"datacloud: not started: {', '.join(missing) or 'no Scheduled target'}; the Event "
            f"SyncNotStarted says why (`kubectl -n {args.namespace} describe drr {args.name}`)",
            file=sys.stderr,
        )
        return 1
    return 0


def request(kube: Kube, args: argparse.Namespace, body: dict[str, Any]) -> int:
    centres = {body["spec"]["source"]["centre"], *(t["centre"] for t in body["spec"]["targets"])}
    if args.to not in centres:
        print(
            f"datacloud: {args.to} holds no copy of {args.name}; choose one of {', '.join(sorted(centres))}",
            file=sys.stderr,
        )
        return 2
    request_id = args.request_id or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    action = {
        "type": args.action_type,
        "targetCentre": args.to,
        "requestId": request_id,
        "requestedBy": requester(),
        "dryRun": bool(args.dry_run),
    }
    kube.patch(PLURAL, args.name, {"spec": {"action": action}}, args.namespace)  # refusals: as above
    print(f"{args.action_type} of {args.namespace}/{args.name} to {args.to} requested ({request_id})")
    if args.no_wait:
        return 0
    return follow(kube, args, request_id)


def follow(kube: Kube, args: argparse.Namespace, request_id: str) -> int:
    deadline = time.monotonic() + args.timeout
    shown: dict[str, str] = {}
    while time.monotonic() < deadline:
        status = kube.get(PLURAL, args.name, args.namespace).get("status") or {}
        action = status.get("action") or {}
        if action.get("requestId") == request_id:
            for step in action.get("steps", []):
                line = f"{step['state']}{': ' + step['message'] if step.get('message') else ''}"
                if shown.get(step["name"]) != line:
                    shown[step["name"]] = line
                    print(f"  {step['name']:<10} {line}", flush=True)
            if action.get("finishedAt"):
                if action.get("result") == "DryRun":
                    print("Dry run, nothing changed. The plan:")
                    for line in action.get("plan", []):
                        print(f"  - {line}")
                    return 0
                print(
                    f"{action.get('type')} {action.get('result', '').lower()}: active centre "
                    f"{status.get('activeCentre')}, fencing epoch {status.get('fencingEpoch')}"
                )
                return 0 if action.get("result") == "Succeeded" else 1
        time.sleep(0.5)
    print(
        f"datacloud: {request_id} not finished after {args.timeout:.0f}s; see "
        f"`kubectl -n {args.namespace} describe drr {args.name}`",
        file=sys.stderr,
    )
    return 1
