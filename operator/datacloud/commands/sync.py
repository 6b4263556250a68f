"""`datacloud sync SRC DST`: the replication engine's CLI, with centres named from the cluster.

SRC and DST are `ENDPOINT_URL/BUCKET[/PREFIX]` with a credentials file, or `centre:NAME/BUCKET[/PREFIX]`,
resolved through the DataCentre NAME and its credentials Secret. `--report-configmap NS/NAME` writes the
JSON summary into a ConfigMap: that is how a DRReplica's scheduled Job reports back to the operator.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING, Any

from ..adapters.s3 import S3Endpoint
from ..api.overlap import odd_segment
from ..replication.cli import add_sync_arguments, run_sync

if TYPE_CHECKING:
    from ..adapters.kube import Kube

SCHEME = "centre:"
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sync_arguments(parser)
    parser.add_argument(
        "--report-configmap",
        metavar="NAMESPACE/NAME",
        help="also write the JSON summary into this ConfigMap (key summary-<run>-<shard>-<of>)",
    )
    parser.add_argument(
        "--report-run",
        metavar="RUN",
        help="the run the summary belongs to (its key in the ConfigMap), so overlapping runs keep theirs",
    )
    parser.add_argument("--kubeconfig", help="for centre:NAME locations (default: $KUBECONFIG or in-cluster)")


class ClusterCentres:
    """Resolves `centre:NAME/BUCKET[/PREFIX]` through the cluster, connecting only when first needed."""

    def __init__(self, kubeconfig: str | None) -> None:
        self.kubeconfig = kubeconfig
        self._kube: Kube | None = None

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            # Imported on first use: the Kubernetes client takes seconds to load on a busy machine, and
            # only `centre:` locations and --report-configmap need it.
            from ..adapters.kube import Kube

            self._kube = Kube.from_kubeconfig(self.kubeconfig) if self.kubeconfig else Kube.default()
        return self._kube

    def __call__(self, text: str) -> tuple[S3Endpoint, str, str]:
        if not text.startswith(SCHEME):
            raise ValueError("expected ENDPOINT_URL/BUCKET[/PREFIX] or centre:NAME/BUCKET[/PREFIX]")
        name, _, rest = text.removeprefix(SCHEME).partition("/")
        bucket, _, prefix = rest.partition("/")
        if not name or not bucket:
            raise ValueError("a centre location is centre:NAME/BUCKET[/PREFIX]")
        if odd_segment(prefix):
            raise ValueError(
                "the prefix has an empty, . or .. path segment; object stores keep such keys under another "
                "name or refuse them"
            )
        from ..reconcile.centres import CentreUnavailable, resolve

        try:
            centre = resolve(self.kube, name)
        except CentreUnavailable as e:
            raise ValueError(str(e)) from None
        return centre.endpoint, bucket, (prefix + "/" if prefix and not prefix.endswith("/") else prefix)


def reporter(target: str, centres: ClusterCentres, shard: str, run: str | None = None) -> Any:
    namespace, _, name = target.partition("/")
    if not namespace or not name:
        raise ValueError(f"--report-configmap takes NAMESPACE/NAME, not {target!r}")
    index, _, count = (shard or "0/1").partition("/")
    key = f"summary-{run}-{index}-{count}" if run is not None else f"summary-{index}-{count}"
    if run is not None and not (run and CONFIGMAP_KEY.fullmatch(key)):
        # Refused before anything is copied: the API server would refuse the key only after the run.
        raise ValueError(
            f"--report-run takes letters, digits, '-', '_' and '.' (a ConfigMap key), not {run!r}"
        )

    def report(summary: dict[str, Any]) -> None:
        centres.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "datacloud"},
                },
                "data": {key: json.dumps(summary)},
            },
            # Each shard owns its own key: with one field manager, a shard's apply would drop the others'.
            field_manager=f"datacloud-sync-shard-{index}",
        )

    return report


def main(args: argparse.Namespace) -> int:
    centres = ClusterCentres(args.kubeconfig)
    on_summary = None
    if args.report_configmap:
        try:
            on_summary = reporter(args.report_configmap, centres, args.shard, args.report_run)
        except ValueError as e:
            print(f"datacloud sync: error: {e}", file=sys.stderr)
            return 2
    return run_sync(args, resolve=centres, on_summary=on_summary)
