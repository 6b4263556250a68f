"""The operator as users run it: the image built here, `helm install`ed into a namespace enforcing Pod
Security `restricted`, running as a pod on the stack's real node; its DR sync Jobs run as pods too."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacloud import RUN_NOW
from datacloud.adapters import s3
from datacloud.adapters.kube import Kube
from datacloud.devstack.incluster import chart_values, install_operator, node_samples
from datacloud.devstack.scrape import (
    EndpointsDiscovery,
    NodePrometheus,
    from_servicemonitor,
    monitored_namespaces,
)
from datacloud.devstack.stack import OPERATOR_NAMESPACE, DevStack, wait_until_admitted
from tests.support.chart import rendered
from tests.support.cluster import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
IMAGE = "localhost/datacloud/operator:test"
DR_NAMESPACE = "datacloud-dr"  # the samples' DRReplicas live here
CHART_VALUES = chart_values(IMAGE)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    work = tmp_path_factory.mktemp("operator-on-node")
    stack = DevStack(work / "stack", chart_objects=False, node=True).start(samples=False)
    try:
        stack.kubectl(
            "label", "namespace", OPERATOR_NAMESPACE, "--overwrite",
            "pod-security.kubernetes.io/enforce=restricted",
        )  # fmt: skip
        stack.apply_documents([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DR_NAMESPACE}}])
        # No sync.namespaces: the operator gives DR_NAMESPACE its sync account when it starts a Job.
        install_operator(stack, work, IMAGE)
        wait_until_admitted(stack.kubeconfig)
        yield stack
    finally:
        stack.stop()


def get(stack: DevStack, *args: str) -> dict[str, Any]:
    return dict(json.loads(stack.kubectl("get", *args, "-o", "json").stdout))


def operator_pod(stack: DevStack) -> dict[str, Any] | None:
    pods = get(stack, "pods", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=datacloud-operator")
    running = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    return running[0] if running else None


def condition(stack: DevStack, ns: str, name: str, type_: str) -> dict[str, Any]:
    status = get(stack, "drreplica", "-n", ns, name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def pod_ready(pod: dict[str, Any] | None) -> bool:
    conditions = {c["type"]: c["status"] for c in ((pod or {}).get("status") or {}).get("conditions") or []}
    return conditions.get("Ready") == "True"


def test_operator_pod_becomes_ready_under_restricted(deployed: DevStack) -> None:
    stack = deployed
    pod = wait_until(
        lambda: (p := operator_pod(stack)) and pod_ready(p) and p, 240, what="operator pod Ready"
    )
    assert pod["spec"]["serviceAccountName"] == "datacloud-operator"
    assert pod["spec"]["containers"][0]["image"] == IMAGE
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True
    assert status["restartCount"] == 0
    events = stack.kubectl("-n", OPERATOR_NAMESPACE, "get", "events", "-o", "json").stdout
    assert "violates PodSecurity" not in events
    # Its log, as cloud ops read it: through the API server and kubelet (the chart's logFormat: json).
    lines = stack.kubectl("-n", OPERATOR_NAMESPACE, "logs", pod["metadata"]["name"]).stdout.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r.get("message") and r.get("severity") for r in records), lines[:5]


def test_prometheus_scrapes_the_operator_pod_through_the_servicemonitor(deployed: DevStack) -> None:
    """The chart's ServiceMonitor, turned into the scrape job the Prometheus Operator would make of it
    (Endpoints of the Service its selector matches), finds the operator's pod; a metric only the operator
    exports comes back with the pod's labels."""
    stack = deployed
    assert stack.node
    assert stack.node.init_pid
    pod = wait_until(
        lambda: (p := operator_pod(stack)) and pod_ready(p) and p, 240, what="operator pod Ready"
    )
    (monitor,) = [d for d in rendered(*CHART_VALUES) if d["kind"] == "ServiceMonitor"]
    work = stack.dir / "prometheus"
    work.mkdir(parents=True, exist_ok=True)
    targets = work / "targets.json"
    discovery = EndpointsDiscovery(
        Kube.from_kubeconfig(str(stack.kubeconfig)), monitored_namespaces(monitor), targets
    ).start()
    prometheus = NodePrometheus(
        work, f"/proc/{stack.node.init_pid}/ns/net", from_servicemonitor(monitor, targets)
    )
    try:
        prometheus.start()
        stack.apply_documents([d for d in node_samples(stack) if d["kind"] == "DataCentre"])
        found = wait_until(
            lambda: prometheus.query('datacloud_centre_up{job="datacloud-operator"}'),
            180,
            what="the operator's metric scraped",
        )
        labels = found[0]["metric"]
        assert labels["pod"] == pod["metadata"]["name"]
        assert labels["namespace"] == OPERATOR_NAMESPACE
        assert labels["service"] == "datacloud-operator"
        assert labels["endpoint"] == "metrics"
        assert labels["instance"].startswith(pod["status"]["podIP"] + ":")
        active = prometheus.api("targets")["data"]["activeTargets"]
        # The selector kept the operator Service's metrics port only (not its events port, no other
        # Service of the namespace), and the scrape works.
        assert [(t["labels"]["endpoint"], t["health"]) for t in active] == [("metrics", "up")]
    finally:
        prometheus.stop()
        discovery.stop()


def test_operator_pod_reconciles_the_samples(deployed: DevStack) -> None:
    stack = deployed
    wait_until(lambda: pod_ready(operator_pod(stack)), 240, what="operator pod Ready")
    stack._create_buckets(node_samples(stack))
    docs = node_samples(stack)
    stack.apply_documents([d for d in docs if d["kind"] == "Namespace"])
    stack.apply_documents([d for d in docs if d["kind"] != "Namespace"])

    def items(kind: str) -> list[dict[str, Any]]:
        return list(get(stack, kind, "-A")["items"])

    wait_until(
        lambda: (
            len(items("datacentres")) == 3
            and all((d.get("status") or {}).get("health") == "Up" for d in items("datacentres"))
        ),
        120,
        what="centres Up, probed from the operator's pod",
    )
    wait_until(
        lambda: all((d.get("status") or {}).get("phase") == "Protected" for d in items("drreplicas")),
        180,
        what="DR replicas Protected",
    )


def test_scheduled_sharded_sync_runs_as_pods_and_reports(deployed: DevStack, tmp_path: Path) -> None:
    """A DRReplica's scheduled full copy to the remote centre, 4 shards, started by `datacloud dr
    sync-now`: an Indexed Job whose pods run on the node, read the centres from the cluster, copy the
    objects and report into the replica's status."""
    stack = deployed
    assert stack.node
    wait_until(lambda: pod_ready(operator_pod(stack)), 240, what="operator pod Ready")
    ns = DR_NAMESPACE
    stack.apply_documents([d for d in node_samples(stack) if d["kind"] in ("Namespace", "DataCentre")])
    src, dst = stack.centres["fz-prod"], stack.centres["xm-remote-dr"]
    client = s3.client(
        s3.S3Endpoint(src.endpoint, "us-east-1", s3.S3Credentials(src.access_key, src.secret_key))
    )
    remote = s3.client(
        s3.S3Endpoint(dst.endpoint, "us-east-1", s3.S3Credentials(dst.access_key, dst.secret_key))
    )
    for c, bucket in ((client, "node-src"), (remote, "node-dst")):
        c.create_bucket(Bucket=bucket)
    keys = [f"records/{i:03d}-数据.json" for i in range(40)]
    for key in keys:
        client.put_object(Bucket="node-src", Key=key, Body=key.encode() * 10)
    replica = {
        "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
        "kind": "DRReplica",
        "metadata": {"name": "node-sharded", "namespace": ns},
        "spec": {
            "source": {"centre": "fz-prod", "bucket": "node-src"},
            "activeCentre": "fz-prod",
            "targets": [
                {"name": "remote", "centre": "xm-remote-dr", "bucket": "node-dst", "mode": "Scheduled",
                 "schedule": "0 2 * * *", "shards": 4}
            ],
            "failover": {"policy": "Manual"},
        },
    }  # fmt: skip
    stack.apply_documents([replica])
    asked = subprocess.run(
        [sys.executable, "-m", "datacloud", "dr", "sync-now", "node-sharded", "-n", ns,
         "--kubeconfig", str(stack.kubeconfig), "--timeout", "120"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert "remote" in asked.stdout
    assert "full sync started" in asked.stdout

    def job() -> dict[str, Any] | None:
        jobs = get(stack, "jobs", "-n", ns, "-l", "datacloud.fujian.gov.cn/drreplica=node-sharded")["items"]
        done = [j for j in jobs if (j.get("status") or {}).get("succeeded") == 4]
        return done[0] if done else None

    finished = wait_until(job, 300, what="the sharded sync Job's 4 pods Succeeded")
    assert finished["spec"]["completionMode"] == "Indexed"
    pods = get(stack, "pods", "-n", ns, "-l", f"job-name={finished['metadata']['name']}")["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {stack.node.name}
    account = get(stack, "serviceaccount", "-n", ns, "datacloud-sync")
    assert account["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "datacloud"  # the operator's
    copied = {o["Key"] for o in remote.list_objects_v2(Bucket="node-dst").get("Contents", [])}
    assert copied == set(keys)

    def target_status() -> dict[str, Any] | None:
        status = get(stack, "drreplica", "-n", ns, "node-sharded").get("status") or {}
        entry = next((t for t in status.get("targets") or [] if t["name"] == "remote"), {})
        return entry if entry.get("lastSyncResult") else None

    entry = wait_until(target_status, 120, what="the run's figures in status")
    assert entry["lastSyncResult"] == "Succeeded"
    assert entry["objectsCopied"] == len(keys)
    stack.kubectl("delete", "drreplica", "-n", ns, "node-sharded", "--wait=false")


def test_sync_job_whose_pods_cannot_be_placed_is_named_then_runs(deployed: DevStack) -> None:
    """With the node cordoned, the scheduled sync's pod cannot be placed: the DRReplica names the Job and
    the reason in its target's message and a Warning Event, not a silent wait. Uncordoned, it runs."""
    stack = deployed
    assert stack.node
    wait_until(lambda: pod_ready(operator_pod(stack)), 240, what="operator pod Ready")
    ns = DR_NAMESPACE
    stack.apply_documents([d for d in node_samples(stack) if d["kind"] in ("Namespace", "DataCentre")])
    src, dst = stack.centres["fz-prod"], stack.centres["xm-remote-dr"]
    for centre, bucket in ((src, "cordon-src"), (dst, "cordon-dst")):
        creds = s3.S3Credentials(centre.access_key, centre.secret_key)
        s3.client(s3.S3Endpoint(centre.endpoint, "us-east-1", creds)).create_bucket(Bucket=bucket)
    stack.kubectl("cordon", stack.node.name)
    try:
        stack.apply_documents([
            {
                "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
                "kind": "DRReplica",
                "metadata": {"name": "cordoned", "namespace": ns, "annotations": {RUN_NOW: "cordoned-1"}},
                "spec": {
                    "source": {"centre": "fz-prod", "bucket": "cordon-src"},
                    "activeCentre": "fz-prod",
                    "targets": [{"name": "remote", "centre": "xm-remote-dr", "bucket": "cordon-dst",
                                 "mode": "Scheduled", "schedule": "0 2 * * *"}],
                    "failover": {"policy": "Manual"},
                },
            }
        ])  # fmt: skip

        def message() -> str:
            status = get(stack, "drreplica", "-n", ns, "cordoned").get("status") or {}
            entry = next((t for t in status.get("targets") or [] if t["name"] == "remote"), {})
            return str(entry.get("message") or "")

        text = wait_until(lambda: "not scheduled" in message() and message(), 180, what="the stuck Job named")
        assert text.startswith("sync Job cordoned-remote-")
        assert "unschedulable" in text
        job = text.split()[2].rstrip(":")
        events = get(stack, "events", "-n", ns, "--field-selector", "involvedObject.name=cordoned")["items"]
        warnings = [e for e in events if e["reason"] == "SyncPodUnschedulable"]
        assert warnings, [e["reason"] for e in events]
        assert warnings[0]["type"] == "Warning"
        assert f"sync Job {job}: pod " in warnings[0]["message"]
        jobs_healthy = condition(stack, ns, "cordoned", "JobsHealthy")
        assert (jobs_healthy["status"], jobs_healthy["reason"]) == ("False", "SyncPodUnschedulable")
        assert f"sync Job {job}: pod " in jobs_healthy["message"]
    finally:
        stack.kubectl("uncordon", stack.node.name)
    wait_until(
        lambda: (get(stack, "job", "-n", ns, job).get("status") or {}).get("succeeded") == 1,
        180,
        what="the Job runs once the node takes pods again",
    )
    wait_until(lambda: message() == "", 120, what="the message cleared")
    assert condition(stack, ns, "cordoned", "JobsHealthy")["reason"] == "NoJobStuck"
    stack.kubectl("delete", "drreplica", "-n", ns, "cordoned", "--wait=false")


def test_operator_pod_killed_mid_failover_is_replaced_and_the_replacement_finishes_it(
    deployed: DevStack,
) -> None:
    """A Failover held in Promoting (the new active centre is away); the operator's pod is deleted with
    no grace. The Deployment's replacement pod picks the action up where status says it was and, once the
    centre is back, finishes it once: one more fencing epoch, each step once, one history entry."""
    stack = deployed
    ns = DR_NAMESPACE
    first = wait_until(lambda: (p := operator_pod(stack)) and pod_ready(p) and p, 240, what="operator Ready")
    stack.apply_documents([d for d in node_samples(stack) if d["kind"] in ("Namespace", "DataCentre")])
    prod, near = stack.centres["fz-prod"], stack.centres["fz-samecity-dr"]
    for centre in (prod, near):
        creds = s3.S3Credentials(centre.access_key, centre.secret_key)
        s3.client(s3.S3Endpoint(centre.endpoint, "us-east-1", creds)).create_bucket(Bucket="failover-data")
    stack.apply_documents([
        {
            "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
            "kind": "DRReplica",
            "metadata": {"name": "node-failover", "namespace": ns},
            "spec": {
                "source": {"centre": "fz-prod", "bucket": "failover-data"},
                "activeCentre": "fz-prod",
                "targets": [{"name": "same-city", "centre": "fz-samecity-dr", "bucket": "failover-data",
                             "mode": "Continuous", "rpoTarget": "30s"}],
                "failover": {"policy": "Manual"},
            },
        }
    ])  # fmt: skip

    def status() -> dict[str, Any]:
        return dict(get(stack, "drreplica", "-n", ns, "node-failover").get("status") or {})

    wait_until(lambda: status().get("phase") == "Protected", 180, what="the replica Protected")
    epoch = int(status().get("fencingEpoch") or 1)
    near.stop()  # Promoting cannot open the new active for writes while it is away
    try:
        patch = {
            "spec": {
                "action": {"type": "Failover", "targetCentre": "fz-samecity-dr", "requestId": "CHG-NODE"}
            }
        }
        stack.kubectl(
            "-n", ns, "patch", "drreplica", "node-failover", "--type", "merge", "-p", json.dumps(patch)
        )

        def blocked() -> bool:
            action = status().get("action") or {}
            step = next((s for s in action.get("steps") or [] if s["name"] == "Promoting"), {})
            return action.get("requestId") == "CHG-NODE" and step.get("state") == "Running"

        wait_until(blocked, 120, what="the failover held in Promoting")
        killed = first["metadata"]["name"]
        stack.kubectl("-n", OPERATOR_NAMESPACE, "delete", "pod", killed, "--grace-period=0", "--force")
        second = wait_until(
            lambda: (p := operator_pod(stack)) and p["metadata"]["name"] != first["metadata"]["name"]
            and pod_ready(p) and p,
            240,
            what="the replacement pod Ready",
        )  # fmt: skip
        assert second["metadata"]["uid"] != first["metadata"]["uid"]
        assert blocked(), "the action is still where the first pod left it"
    finally:
        # Back without bucket notifications: they would go to a host port no operator listens on here
        # (the operator is in its pod), and versitygw refuses to start when its test notification fails.
        near.event_webhook = None
        near.restart()

    def finished() -> dict[str, Any] | None:
        s = status()
        action = s.get("action") or {}
        return s if action.get("requestId") == "CHG-NODE" and action.get("finishedAt") else None

    s = wait_until(finished, 240, what="the failover finished by the replacement")
    assert s["action"]["result"] == "Succeeded"
    assert s["activeCentre"] == "fz-samecity-dr"
    assert s["fencingEpoch"] == epoch + 1  # the kill did not take a second epoch
    names = [step["name"] for step in s["action"]["steps"]]
    assert len(names) == len(set(names))
    assert all(step["state"] == "Succeeded" for step in s["action"]["steps"])
    assert [h["requestId"] for h in s.get("history") or []].count("CHG-NODE") == 1
    started = get(stack, "events", "-n", ns, "--field-selector", "involvedObject.name=node-failover")["items"]
    assert sum(int(e.get("count") or 1) for e in started if e["reason"] == "FailoverStarted") == 1
    stack.kubectl("delete", "drreplica", "-n", ns, "node-failover", "--wait=false")
