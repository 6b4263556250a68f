"""Pods the operator creates run under a read-only root file system: each has a writable /tmp, since the
Kubernetes client and boto3 need a temporary directory (a sync shard that copied its objects failed
reporting its figures without one, on a real node)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.builders.dr import sync_job

BODY: dict[str, Any] = {"metadata": {"name": "r", "namespace": "ns", "uid": "u-1"}}


@given(shards=st.integers(min_value=1, max_value=64))
def test_sync_job_pods_have_a_writable_tmp(shards: int) -> None:
    pod = sync_job(BODY, "far", "20260101t0200", "img:1", ["a", "b"], shards, "datacloud-sync")["spec"][
        "template"
    ]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts
        assert "emptyDir" in volumes[mounts["/tmp"]]
