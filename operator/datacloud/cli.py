"""The `datacloud` command (also installed as the kubectl plugin `kubectl-datacloud`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    if args.events_port:
        os.environ["DATACLOUD_EVENTS_PORT"] = str(args.events_port)
    return run_operator(
        metrics_address=args.metrics_address,
        metrics_port=args.metrics_port,
        liveness=args.liveness,
        standalone=args.standalone,
        json_logs=args.log_format == "json",
        verbose=args.verbose,
    )


def _cmd_crds(args: argparse.Namespace) -> int:
    from .api.render import drift, write

    out = Path(args.out)
    if args.check:
        stale = drift(out)
        if stale:
            print(
                f"crds/ is out of date with the models: {', '.join(stale)}; run `make crds`", file=sys.stderr
            )
            return 1
        print("crds/ matches the models")
        return 0
    for path in write(out):
        print(path)
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    from .devstack import cli as dev

    return dev.main(args)


def _cmd_dr(args: argparse.Namespace) -> int:
    from .commands import dr

    return dr.main(args)


def _cmd_census(args: argparse.Namespace) -> int:
    from .commands import census

    return census.main(args)


def _cmd_status(args: argparse.Namespace) -> int:
    from .commands import status

    return status.main(args)


def _cmd_sync(args: argparse.Namespace) -> int:
    from .commands import sync

    return sync.main(args)


def _add_sync(sub: Any) -> None:
    sync = sub.add_parser("sync", help="copy a bucket to another centre: full or continuous replication")
    from .commands.sync import add_arguments as add_sync_arguments

    add_sync_arguments(sync)
    sync.set_defaults(func=_cmd_sync)


def _sync_parser() -> argparse.ArgumentParser:
    """Only the sync command: the other commands' parsers load the Kubernetes client (seconds on a busy
    machine), which a sync between two endpoints never needs."""
    parser = argparse.ArgumentParser(prog="datacloud")
    _add_sync(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datacloud",
        description="Operator and tools for Fujian's provincial public-data compute infrastructure.",
    )
    parser.add_argument("--version", action="version", version=f"datacloud {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the operator (kopf) against the current kubeconfig or in-cluster")
    run.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    run.add_argument("--metrics-address", default="127.0.0.1", help="address of the /metrics endpoint")
    run.add_argument("--metrics-port", type=int, default=8000, help="port of the /metrics endpoint (0: off)")
    run.add_argument(
        "--liveness", default="http://127.0.0.1:8080/healthz", help="liveness endpoint URL ('' to disable)"
    )
    run.add_argument(
        "--events-port",
        type=int,
        default=0,
        help="port of the object-store notification receiver (0: off, centres are polled)",
    )
    run.add_argument("--standalone", action="store_true", help="no peering: this is the only replica")
    run.add_argument("--log-format", choices=["plain", "json"], default="plain", help="log line format")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)

    crds = sub.add_parser("crds", help="write the CRDs generated from the typed models")
    crds.add_argument("--out", default="crds", help="directory to write (default: crds)")
    crds.add_argument("--check", action="store_true", help="only check that the directory is up to date")
    crds.set_defaults(func=_cmd_crds)

    status = sub.add_parser("status", help="centres, city clouds and DR replicas at a glance")
    from .commands.status import add_arguments as add_status_arguments

    add_status_arguments(status)
    status.set_defaults(func=_cmd_status)

    _add_sync(sub)

    dr = sub.add_parser("dr", help="DR actions: failover, switchover, failback, status")
    from .commands.dr import add_arguments as add_dr_arguments

    add_dr_arguments(dr)
    dr.set_defaults(func=_cmd_dr)

    census = sub.add_parser(
        "census", help="compute census: run now, reports (html/csv/json), placement advice"
    )
    from .commands.census import add_arguments as add_census_arguments

    add_census_arguments(census)
    census.set_defaults(func=_cmd_census)

    dev = sub.add_parser("dev", help="the local dev stack: control plane, three centres, samples")
    from .devstack.cli import add_arguments as add_dev_arguments

    add_dev_arguments(dev)
    dev.set_defaults(func=_cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _sync_parser() if argv[:1] == ["sync"] else build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except Exception as exc:
        if "kubernetes" not in sys.modules:  # no cluster was asked: not a failure worded below
            raise
        from .commands.failures import describe

        said = describe(exc)
        if said is None:
            raise
        logging.getLogger("datacloud").debug("the command failed", exc_info=True)
        command = " ".join(argv[:2] if argv[0] in {"dr", "census", "dev"} else argv[:1])
        print(f"datacloud {command}: {said[1]}", file=sys.stderr)
        return said[0]
    return code


if __name__ == "__main__":
    sys.exit(main())
