"""What the DR tests share: the stack's centres seen as the root and the app account, buckets the app may
write, the replica every DR test starts from, admission refusals a user's policy or quota would make,
actions asked through the spec, a steady application writer, Events and sync Jobs of a replica.

Fixtures built on these stay in `tests/integration/dr/conftest.py`, except `dr_centres`, which the
metrics catalogue uses too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from datacloud import GROUP, VERSION
from datacloud.adapters import s3
from datacloud.devstack import manifests
from datacloud.devstack.manifests import datacentre
from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster, wait_until

APP_KEY, APP_SECRET = "drapp", "drapp-secret-0123456789"
NAMESPACE = "dr-tests"
__all__ = ["APP_KEY", "APP_SECRET", "NAMESPACE", "Refusals", "allow_app", "app", "datacentre", "keys_at"]
__all__ += ["dr_centres", "replica", "restored", "root", "status"]
__all__ += ["SteadyWriter", "action", "can_write", "event_count", "finished", "jobs", "listening", "listing"]


def root(centre: Centre) -> Any:
    return s3.client(
        s3.S3Endpoint(centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key))
    )


def keys_at(centre: Centre, bucket: str) -> set[str]:
    """The keys in a bucket (its first 1,000), read as the store's root account."""
    return {o["Key"] for o in root(centre).list_objects_v2(Bucket=bucket).get("Contents", [])}


def app(centre: Centre) -> Any:
    """A client writing as an ordinary account, the way applications do (bound by fencing policies)."""
    return s3.client(s3.S3Endpoint(centre.endpoint, "us-east-1", s3.S3Credentials(APP_KEY, APP_SECRET)))


@pytest.fixture(scope="session")
def dr_centres(cluster: Cluster, operator: dict[str, Any]) -> dict[str, Centre]:
    centres = cluster.stack.centres
    for name, centre in centres.items():
        cluster.must_apply(datacentre(name, centre.endpoint))
        if not getattr(centre, "_app_user", False):
            centre.add_user(APP_KEY, APP_SECRET)
            centre._app_user = True  # type: ignore[attr-defined]
    cluster.kubectl("create", "namespace", NAMESPACE)
    for name in centres:
        wait_until(
            lambda n=name: (cluster.get("datacentres", n).get("status") or {}).get("health") == "Up",
            60,
            what=f"{name} Up",
        )
    return centres


def allow_app(centre: Centre, bucket: str, accounts: tuple[str, ...] = (APP_KEY,)) -> None:
    """Create the bucket if need be and give the app account (or `accounts`) rights on it; the operator's
    fence statement is added beside this one."""
    client = root(centre)
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as e:
        # The operator may have created it first (it creates target buckets).
        if not e.response["Error"]["Code"].startswith("BucketAlready"):
            raise
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "app",
                "Effect": "Allow",
                "Principal": {"AWS": list(accounts)},
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def replica(name: str, bucket: str, policy: str = "Manual", **extra: Any) -> dict[str, Any]:
    """The stack's replica (`devstack.manifests.replica`) in the test namespace, its same-city copy
    mirroring deletions and its nightly copy verified by SHA-256; `extra` adds or replaces spec fields."""
    doc = manifests.replica(name, NAMESPACE, bucket, policy)
    near, remote = doc["spec"]["targets"]
    near["deletePolicy"] = "Mirror"
    remote["verification"] = {"method": "SHA256", "samplePercent": 100}
    doc["spec"].update(extra)
    return doc


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.get("drreplicas", name, NAMESPACE).get("status") or {}


def restored(centre: Centre) -> Iterator[Centre]:
    """Yields `centre`; starts it again afterwards if it was stopped."""
    yield centre
    if not centre.alive():
        centre.restart()


class Refusals:
    """Objects that make the API server itself refuse a write, as a user's policy or quota would."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.made: list[tuple[str, str, str | None]] = []

    def _apply(self, *docs: dict[str, Any]) -> None:
        self.cluster.must_apply(*docs)
        self.made += [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs]

    def _deny(
        self,
        name: str,
        resource: tuple[str, str],
        operations: list[str],
        expression: str,
        message: str,
        version: str = "v1",
    ) -> None:
        """A ValidatingAdmissionPolicy (CEL in the API server) refusing, in the replica namespace, the
        `operations` on `resource` (group, plural) where `expression` is false."""
        api = "admissionregistration.k8s.io/v1"
        group, plural = resource
        self._apply(
            {
                "apiVersion": api,
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                        "resourceRules": [
                            {
                                "apiGroups": [group],
                                "apiVersions": [version],
                                "operations": operations,
                                "resources": [plural],
                            }
                        ],
                    },
                    "validations": [{"expression": expression, "message": message, "reason": "Forbidden"}],
                },
            },
            {
                "apiVersion": api,
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {"policyName": name, "validationActions": ["Deny"]},
            },
        )

    def freeze_endpoint(self, replica_name: str) -> None:
        """Writes to the replica's endpoint ConfigMap refused."""
        self._deny(
            f"freeze-{replica_name}-endpoint",
            ("", "configmaps"),
            ["CREATE", "UPDATE"],
            f"object.metadata.name != '{replica_name}-endpoint'",
            f"change freeze: the endpoint of {replica_name} may not change",
        )
        # The API server loads policies asynchronously: wait until it refuses a (dry-run) write itself.
        wait_until(
            lambda: "change freeze" in self._dry_run("create", "configmap", f"{replica_name}-endpoint"),
            30,
            what="the admission policy in force",
        )

    def hold_end(self, replica_name: str) -> None:
        """Status writes of the replica that finish an action refused: the operator is held after its
        last step, before the action's end is written."""
        self._deny(
            f"hold-{replica_name}-end",
            (GROUP, "drreplicas/status"),
            ["UPDATE"],
            f"object.metadata.name != '{replica_name}' || !has(object.status.action) "
            "|| !has(object.status.action.finishedAt)",
            f"change freeze: no action of {replica_name} may be recorded as finished",
            version=VERSION,
        )
        probe = {"status": {"action": {"requestId": "probe", "finishedAt": "2026-01-01T00:00:00Z"}}}
        wait_until(
            lambda: "change freeze" in self._dry_run(
                "patch", "drreplica", replica_name, "--subresource=status", "--type=merge",
                "-p", json.dumps(probe),
            ),
            30,
            what="the admission policy in force",
        )  # fmt: skip

    def keep_jobs(self, replica_name: str, job: str) -> None:
        """Deleting the replica's Jobs refused; `job` is one that exists, to see the policy in force."""
        label = "datacloud.fujian.gov.cn/drreplica"
        self._deny(
            f"keep-{replica_name}-jobs",
            ("batch", "jobs"),
            ["DELETE"],
            f"oldObject.metadata.?labels[?'{label}'].orValue('') != '{replica_name}'",
            f"audit hold: the Jobs of {replica_name} are kept",
        )
        wait_until(
            lambda: "audit hold" in self._dry_run("delete", "job", job),
            30,
            what="the admission policy in force",
        )

    def no_room_for_jobs(self) -> None:
        """A ResourceQuota allowing no Job in the replica's namespace."""
        self._apply(
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "no-room-for-jobs", "namespace": NAMESPACE},
                "spec": {"hard": {"count/jobs.batch": "0"}},
            }
        )
        wait_until(
            lambda: "quota" in self._dry_run("create", "job", "quota-probe", "--image=datacloud/probe"),
            30,
            what="the quota in force",
        )

    def _dry_run(self, *args: str) -> str:
        return self.cluster.kubectl("-n", NAMESPACE, *args, "--dry-run=server").stderr

    def lift(self) -> None:
        for kind, name, namespace in reversed(self.made):
            where = ["-n", namespace] if namespace else []
            self.cluster.kubectl(*where, "delete", kind, name, "--ignore-not-found", "--wait=false")
        self.made.clear()


def action(cluster: Cluster, name: str, kind: str, to: str, request: str, dry_run: bool = False) -> None:
    """Ask for an action through spec.action, as `datacloud dr` does; the patch must be accepted."""
    patch = {"spec": {"action": {"type": kind, "targetCentre": to, "requestId": request, "dryRun": dry_run}}}
    done = cluster.kubectl(
        "-n", NAMESPACE, "patch", "drreplica", name, "--type", "merge", "-p", json.dumps(patch)
    )
    assert done.returncode == 0, done.stderr


def finished(cluster: Cluster, name: str, request: str) -> dict[str, Any] | None:
    s = status(cluster, name)
    a = s.get("action") or {}
    return s if a.get("requestId") == request and a.get("finishedAt") else None


def can_write(client: Any, bucket: str) -> bool:
    try:
        client.put_object(Bucket=bucket, Key="probe-write", Body=b"1")
    except ClientError as e:
        if e.response["Error"]["Code"] == "AccessDenied":
            return False
        raise
    return True


class SteadyWriter:
    """Writes one object every 50 ms and remembers when each write was acknowledged."""

    def __init__(self, centre: Centre, bucket: str) -> None:
        self.client, self.bucket = app(centre), bucket
        self.acked: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            key = f"steady/{i:05d}"
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=key.encode())
                self.acked[key] = time.time()
            except (BotoCoreError, ClientError):
                pass
            i += 1
            self._stop.wait(0.05)

    def __enter__(self) -> SteadyWriter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def listing(client: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys


def listening(port: int) -> bool:
    """Whether something accepts connections on the loopback port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def event_count(cluster: Cluster, name: str, reason: str) -> int:
    return sum(int(e.get("count") or 1) for e in cluster.events_for(name) if e["reason"] == reason)


def jobs(cluster: Cluster, replica_name: str) -> list[dict[str, Any]]:
    return cluster.kube.read_all(
        "batch/v1", "Job", NAMESPACE, label_selector=f"datacloud.fujian.gov.cn/drreplica={replica_name}"
    )


def patch(cluster: Cluster, name: str, spec: dict[str, Any]) -> None:
    done = cluster.kubectl(
        "-n", NAMESPACE, "patch", "drreplica", name, "--type", "merge", "-p", json.dumps({"spec": spec})
    )
    assert done.returncode == 0, done.stderr


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "datacloud", "dr", "divergent", *args, "-n", NAMESPACE],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
