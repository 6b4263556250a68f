"""The operator as users run it, in the dev stack's cluster: the image built here and loaded into the
node, the chart `helm install`ed into the operator namespace, the samples' centres at addresses pods reach.

With the node, the operator runs in its pod and the DR sync Jobs' pods run beside it: both reach the
centres at the node's address (`Node.endpoint`), through the node's forwarder, and not at the host's
loopback, which is the pods' own loopback. `make run DEV_FLAGS=--node` and the node tests use this.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .image import operator_image
from .process import StackError, tool
from .stack import OPERATOR_NAMESPACE, PROJECT_ROOT, SAMPLES, DevStack

CHART = PROJECT_ROOT / "charts" / "datacloud-operator"
IMAGE = "localhost/datacloud/operator:dev"


def chart_values(image: str = IMAGE) -> tuple[str, ...]:
    """The image from the one chart value the Jobs' image comes from too; pulled never (it is loaded)."""
    repository, tag = image.rsplit(":", 1)
    return ("--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never")  # fmt: skip


def helm(
    *args: str, kubeconfig: Path | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """helm with its cache and configuration under `home` (not the user's)."""
    home = home or Path("/tmp/datacloud-helm")
    env = {**os.environ, **{f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}
    extra = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    return subprocess.run(
        [tool("helm"), *args, *extra], capture_output=True, text=True, timeout=180, env=env, check=False
    )


def install_operator(stack: DevStack, work: Path, image: str = IMAGE, *values: str) -> None:
    """Build the image, load it into the node, `helm install` the chart (no ServiceMonitor or
    PrometheusRule: no Prometheus Operator's CRDs here)."""
    if stack.node is None:
        raise StackError("the operator runs in the cluster only with the node (--node)")
    work.mkdir(parents=True, exist_ok=True)
    stack.node.load_image(operator_image(work / "operator.tar", image), image.rsplit(":", 1)[0])
    done = helm(
        "install", "datacloud", str(CHART), "-n", OPERATOR_NAMESPACE, *chart_values(image), *values,
        "--set", "metrics.serviceMonitor.enabled=false", "--set", "metrics.prometheusRule.enabled=false",
        kubeconfig=stack.kubeconfig, home=work / "helm",
    )  # fmt: skip
    if done.returncode != 0:
        raise StackError(f"helm install: {done.stderr.strip()}")


def node_samples(stack: DevStack) -> list[dict[str, Any]]:
    """samples/ with each centre's endpoint where pods on the node reach it; CityDataClouds left out (their
    API servers listen on the host's loopback, which pods do not reach)."""
    if stack.node is None:
        raise StackError("node samples need the node (--node)")
    docs = [d for p in sorted(SAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "DataCentre" and doc["metadata"]["name"] in stack.centres:
            centre = stack.centres[doc["metadata"]["name"]]
            doc["spec"]["objectStore"]["endpoint"] = stack.node.endpoint(centre.port)
            doc["spec"]["objectStore"]["region"] = "us-east-1"
    return [d for d in docs if d["kind"] != "CityDataCloud"]


def apply_node_samples(stack: DevStack) -> None:
    docs = node_samples(stack)
    stack._create_buckets(docs)
    stack.apply_documents([d for d in docs if d["kind"] == "Namespace"])
    stack.apply_documents([d for d in docs if d["kind"] != "Namespace"])
