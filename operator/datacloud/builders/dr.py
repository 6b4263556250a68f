"""Pure renderers for DRReplica children: the published endpoint, sync Jobs, audit records."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

from .. import API_VERSION, GROUP

MANAGED_BY = {"app.kubernetes.io/managed-by": "datacloud"}


def owner(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "DRReplica",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def endpoint_name(replica: str) -> str:
    return f"{replica}-endpoint"


STALE = f"{GROUP}/stale"  # annotation: why a published endpoint is not to be used


def endpoint_configmap(
    body: dict[str, Any],
    centre: str,
    url: str,
    bucket: str,
    prefix: str,
    epoch: int,
    stale: str | None = None,
) -> dict[str, Any]:
    """What applications read to find the active copy; `stale` (why it is not to be used, e.g. its bucket
    was deleted) goes into the STALE annotation, and applying without it removes the annotation again."""
    meta = body["metadata"]
    metadata: dict[str, Any] = {
        "name": endpoint_name(meta["name"]),
        "namespace": meta["namespace"],
        "labels": {**MANAGED_BY, f"{GROUP}/drreplica": meta["name"]},
        "ownerReferences": [owner(body)],
    }
    if stale:
        metadata["annotations"] = {STALE: stale}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {
            "centre": centre,
            "endpoint": url,
            "bucket": bucket,
            "prefix": prefix,
            "fencingEpoch": str(epoch),
        },
    }


def endpoint_service(body: dict[str, Any], url: str) -> dict[str, Any]:
    """An ExternalName Service whose DNS name follows the active centre's object-store host."""
    meta = body["metadata"]
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": endpoint_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {**MANAGED_BY, f"{GROUP}/drreplica": meta["name"]},
            "ownerReferences": [owner(body)],
        },
        "spec": {"type": "ExternalName", "externalName": host, "ports": [{"name": "s3", "port": port}]},
    }


def job_name(replica: str, target: str, run_id: str) -> str:
    """`<replica>-<target>-<run>`, at most 63 characters (the Job's pods carry it in a label). When that is
    too long the replica-and-target part is shortened and a digest of it added, never the run cut off: two
    runs of one target must not share a name (the second would be refused as a change to the first)."""
    name = f"{replica}-{target}-{run_id}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(f"{replica}/{target}".encode()).hexdigest()[:8]
    head = f"{replica}-{target}"[: 63 - len(digest) - len(run_id) - 2].rstrip("-.")
    return f"{head}-{digest}-{run_id}"


SYNC_RETRIES = 3  # a sync pod that fails is started again this many times (per shard when sharded)


RUN_REQUEST = f"{GROUP}/run-request"  # on a sync Job started on request: the request, as status records it


def sync_job(
    body: dict[str, Any],
    target: str,
    run_id: str,
    image: str,
    args: list[str],
    shards: int,
    service_account: str,
    request: str | None = None,
) -> dict[str, Any]:
    """A Job running `datacloud sync` for one scheduled target; Indexed with one pod per shard. A run
    started on request carries the request (RUN_REQUEST), so an operator restarted before it recorded the
    start finds the Job instead of starting the run again."""
    meta = body["metadata"]
    labels = {**MANAGED_BY, f"{GROUP}/drreplica": meta["name"], f"{GROUP}/target": target}
    shard_args = ["--shard", "$(JOB_COMPLETION_INDEX)/" + str(shards)] if shards > 1 else []
    spec: dict[str, Any] = {
        "backoffLimit": SYNC_RETRIES,
        "ttlSecondsAfterFinished": 86400,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": service_account,
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "sync",
                        "image": image,
                        "args": ["sync", *args, *shard_args],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"memory": "1Gi"},
                        },
                        # The root file system is read-only; the Kubernetes client and boto3 need a
                        # temporary directory (the run fails reporting its figures without one).
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        },
    }
    if shards > 1:
        # Each shard has retries of its own: one failing shard neither spends the others' retries nor
        # stops them (the Job fails at the end, naming its failed indexes).
        spec.update(completionMode="Indexed", completions=shards, parallelism=shards)
        spec.pop("backoffLimit")
        spec["backoffLimitPerIndex"] = SYNC_RETRIES
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(meta["name"], target, run_id),
            "namespace": meta["namespace"],
            "labels": labels,
            **({"annotations": {RUN_REQUEST: request}} if request is not None else {}),
            "ownerReferences": [owner(body)],
        },
        "spec": spec,
    }


def audit_record(
    replica: str, namespace: str, action: dict[str, Any], epoch: int, when: str
) -> tuple[str, bytes]:
    """An append-only audit object and its JSON body. The key sorts by the action's start and is the same
    for every attempt to record one action: an operator killed, or refused its status write, after the
    record was stored records the action again, and finds it there instead of adding a second one."""
    request = action.get("requestId", "unknown")
    started, kind = action.get("startedAt") or when, action.get("type", "Action")
    key = f".datacloud/audit/{namespace}/{replica}/{started}-{kind}-{request}-{epoch}.json"
    body = {"replica": f"{namespace}/{replica}", "fencingEpoch": epoch, "recordedAt": when, **action}
    return key, json.dumps(body, sort_keys=True, ensure_ascii=False, indent=1).encode()
