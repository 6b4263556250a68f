"""The operator's Helm chart as the tests reach it: rendered by the real helm (the chart folder and the helm
wrapper are the dev stack's own, `datacloud.devstack.incluster`)."""

from __future__ import annotations

from typing import Any

import yaml

from datacloud.devstack.incluster import CHART, helm
from datacloud.devstack.stack import OPERATOR_NAMESPACE

__all__ = ["CHART", "helm", "rendered"]


def rendered(*values: str) -> list[dict[str, Any]]:
    """The chart's manifests as `helm template` renders them with `values` (`--set k=v` pairs)."""
    done = helm("template", "datacloud", str(CHART), "-n", OPERATOR_NAMESPACE, *values)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]
