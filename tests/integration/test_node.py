"""The dev stack's real node: kubelet on containerd turns Ready, runs an Indexed Job's pods to completion,
and leaves nothing behind when stopped (no process, mount, namespace or cgroup)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacloud.builders.dr import SYNC_RETRIES, sync_job
from datacloud.builders.job_health import Stuck, retried, shard_failures, why_stuck
from datacloud.devstack.controlplane import ControlPlane
from datacloud.devstack.image import PAUSE_IMAGE
from datacloud.devstack.node import Node
from datacloud.devstack.process import tool
from tests.support.cluster import wait_until

pytestmark = pytest.mark.integration

# The pause image carries busybox: the one image every node has without a registry.
BUSYBOX = PAUSE_IMAGE


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Node]]:
    work = tmp_path_factory.mktemp("node")
    cp = ControlPlane(work / "cluster", workloads=True).start()
    node = Node(work / "node", cp)
    try:
        node.start()
        yield cp, node
    finally:
        node.stop()
        cp.stop()


def kubectl(cp: ControlPlane, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubectl"), "--kubeconfig", str(cp.main.kubeconfig), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def get(cp: ControlPlane, *args: str) -> dict[str, Any]:
    done = kubectl(cp, "get", *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def indexed_job(name: str, completions: int, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": completions,
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "work",
                            "image": BUSYBOX,
                            "imagePullPolicy": "Never",
                            "command": ["/bin/busybox", "sh", "-c", script],
                        }
                    ],
                }
            },
        },
    }


def pod_output(node: Node, job: str) -> dict[str, str]:
    """Container output by pod name, read from the node's pod log directory (kubelet writes CRI logs)."""
    out = {}
    for log in (node.dir / "pods").glob(f"default_{job}-*/work/*.log"):
        pod = log.parts[-3].split("_")[1]
        out[pod] = "".join(line.split(" ", 3)[-1] for line in log.read_text().splitlines(keepends=True))
    return out


def test_node_is_ready_without_taints(cluster: tuple[ControlPlane, Node]) -> None:
    cp, node = cluster
    got = get(cp, "node", node.name)
    addresses = {a["type"]: a["address"] for a in got["status"]["addresses"]}
    assert addresses["InternalIP"] == "10.88.0.1"
    assert not got["spec"].get("taints")
    assert {c["type"]: c["status"] for c in got["status"]["conditions"]}["Ready"] == "True"


def test_indexed_job_runs_to_completion_on_the_node(cluster: tuple[ControlPlane, Node]) -> None:
    cp, node = cluster
    script = 'echo "index $JOB_COMPLETION_INDEX of 3 on $(hostname)"'
    done = kubectl(cp, "apply", "-f", "-", stdin=json.dumps(indexed_job("three", 3, script)))
    assert done.returncode == 0, done.stderr

    def complete() -> bool:
        status = get(cp, "job", "three").get("status", {})
        return status.get("succeeded") == 3

    wait_until(complete, 120, what="the Indexed Job's three pods Succeeded")
    pods = get(cp, "pods", "-l", "job-name=three")["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {node.name}
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods) == [
        "0", "1", "2",
    ]  # fmt: skip
    out = pod_output(node, "three")
    assert sorted(line.split()[1] for text in out.values() for line in text.splitlines()[:1]) == [
        "0",
        "1",
        "2",
    ]
    # Each pod had an address of its own on the node's bridge.
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 3
    assert all(ip.startswith("10.88.0.") for ip in ips)


def test_pod_reaches_the_api_server_as_an_in_cluster_client(cluster: tuple[ControlPlane, Node]) -> None:
    """Through the `kubernetes` Service's address, with the account token mounted by ServiceAccount
    admission and kubelet: what the operator's pod and the sync Jobs rely on."""
    cp, node = cluster
    script = (
        "t=/var/run/secrets/kubernetes.io/serviceaccount; test -s $t/token && test -s $t/ca.crt && "
        'echo "token mounted"; busybox nc -w 5 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT </dev/null '
        '&& echo "api reachable at $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"'
    )
    done = kubectl(cp, "apply", "-f", "-", stdin=json.dumps(indexed_job("incluster", 1, script)))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: get(cp, "job", "incluster").get("status", {}).get("succeeded") == 1, 120, what="done")
    (text,) = pod_output(node, "incluster").values()
    assert "token mounted" in text
    assert "api reachable at 10.0.0.1:443" in text


def test_second_node_stops_leaving_nothing_behind(cluster: tuple[ControlPlane, Node], tmp_path: Path) -> None:
    """A node stopped while its pod still runs: no process in its namespaces, no mount, no cgroup stays."""
    cp, _ = cluster
    other = Node(tmp_path / "other", cp, name="datacloud-node-b").start()
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper", "namespace": "default"},
            "spec": {
                "nodeName": other.name,
                "containers": [
                    {"name": "work", "image": BUSYBOX, "imagePullPolicy": "Never",
                     "command": ["/bin/busybox", "sleep", "3600"]}
                ],
            },
        }  # fmt: skip
        assert kubectl(cp, "apply", "-f", "-", stdin=json.dumps(pod)).returncode == 0
        wait_until(lambda: get(cp, "pod", "sleeper")["status"].get("phase") == "Running", 120, what="Running")
        assert other.leftovers(), "a running node is seen by leftovers()"
    finally:
        other.stop()
    assert other.leftovers() == []
    # Nor does the API keep a node that will never run what is placed on it.
    assert "NotFound" in kubectl(cp, "get", "node", other.name).stderr
    kubectl(cp, "delete", "pod", "sleeper", "--force", "--grace-period=0")


def test_jobs_that_cannot_progress_are_named_with_their_reason(cluster: tuple[ControlPlane, Node]) -> None:
    """What kubelet and the scheduler really report for a missing image, no fitting node and a failing
    pod is what `why_stuck` turns into a reason naming the Job (for the DRReplica's condition and Event)."""
    cp, _ = cluster
    missing = indexed_job("no-image", 1, "true")
    missing["spec"]["template"]["spec"]["containers"][0]["image"] = "localhost/datacloud/absent:1"
    nowhere = indexed_job("no-node", 1, "true")
    nowhere["spec"]["template"]["spec"]["nodeSelector"] = {"datacloud.fujian.gov.cn/centre": "nowhere"}
    failing = indexed_job("exits-1", 1, "exit 1")
    for job in (missing, nowhere, failing):
        done = kubectl(cp, "apply", "-f", "-", stdin=json.dumps(job))
        assert done.returncode == 0, done.stderr

    def stuck(name: str) -> Stuck | None:
        pods = get(cp, "pods", "-l", f"job-name={name}")["items"]
        return why_stuck(get(cp, "job", name), pods)

    image = wait_until(lambda: stuck("no-image"), 120, what="the missing image reported")
    assert image.reason == "SyncPodCannotStart"
    assert image.message.startswith("sync Job no-image: pod no-image-0-")
    assert "ErrImageNeverPull" in image.message
    node = wait_until(lambda: stuck("no-node"), 120, what="the unschedulable pod reported")
    assert node.reason == "SyncPodUnschedulable"
    assert "sync Job no-node" in node.message
    assert "node(s) didn't match Pod's node affinity/selector" in node.message
    failed = wait_until(lambda: stuck("exits-1"), 120, what="the failed Job reported")
    assert failed.reason == "SyncJobFailed"
    assert "sync Job exits-1 failed (BackoffLimitExceeded" in failed.message
    # A Job that completes is not stuck.
    assert why_stuck(get(cp, "job", "three"), get(cp, "pods", "-l", "job-name=three")["items"]) is None


def test_a_failing_shard_is_retried_as_the_sync_jobs_backoff_says(cluster: tuple[ControlPlane, Node]) -> None:
    """The sync Job's own retry settings (builders.dr.sync_job, 4 shards), its container swapped for
    busybox: shard 1 fails its first attempt only, shard 2 every attempt. Kubernetes retries each shard as
    the Job's backoffLimitPerIndex says while the others complete; the retries are reported naming the
    shards, and the Job's failure names the shard out of retries."""
    cp, _ = cluster
    body = {"apiVersion": "datacloud.fujian.gov.cn/v1alpha1", "kind": "DRReplica",
            "metadata": {"name": "retry", "namespace": "default", "uid": "u-1"}}  # fmt: skip
    job = sync_job(body, "far", "20260101t0200", BUSYBOX, [], 4, "default")
    del job["metadata"]["ownerReferences"]  # no such DRReplica here: the collector would delete the Job
    pod_spec = job["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    container.update(
        imagePullPolicy="Never",
        command=["/bin/busybox", "sh", "-c",
                 'i=$JOB_COMPLETION_INDEX; [ "$i" = 2 ] && exit 3; '
                 '[ "$i" = 1 ] && [ "$FAILURES" = 0 ] && exit 1; echo "shard $i done"'],
        env=[{"name": "FAILURES", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"}}}],
    )  # fmt: skip
    container.pop("args")
    container["securityContext"]["runAsUser"] = 65534  # busybox's image runs as root otherwise
    assert job["spec"]["backoffLimitPerIndex"] == SYNC_RETRIES
    done = kubectl(cp, "apply", "-f", "-", stdin=json.dumps(job))
    assert done.returncode == 0, done.stderr
    name = job["metadata"]["name"]

    def state() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return get(cp, "job", name), get(cp, "pods", "-l", f"job-name={name}")["items"]

    report = wait_until(lambda: retried(*state()), 120, what="a retry reported")
    assert report.startswith(f"sync Job {name}: shard ")
    assert report.endswith(f"retried ({SYNC_RETRIES} retries per shard)")
    final = wait_until(
        lambda: (s := state()) and _true(s[0], "Failed") and s,
        400,
        what="the Job failed (shard 2 out of retries)",
    )
    status = final[0]["status"]
    assert status["failedIndexes"] == "2"
    assert status["completedIndexes"] == "0,1,3"
    assert shard_failures(final[1]) == {1: 1, 2: 1 + SYNC_RETRIES}  # each shard retried as the Job says
    stuck = why_stuck(*final)
    assert stuck is not None
    assert stuck.reason == "SyncJobFailed"
    assert stuck.message.endswith("shard(s) 2 out of retries)")
    kubectl(cp, "delete", "job", name, "--cascade=background")


def _true(job: dict[str, Any], kind: str) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


def test_kubectl_logs_and_exec_reach_kubelet(cluster: tuple[ControlPlane, Node]) -> None:
    """The API server (host loopback) reaches kubelet inside the node's namespace through its egress
    proxy: `kubectl logs` returns the container's lines and `kubectl exec` runs a command in it."""
    cp, node = cluster
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talker", "namespace": "default"},
        "spec": {
            "nodeName": node.name,
            "containers": [
                {"name": "work", "image": BUSYBOX, "imagePullPolicy": "Never",
                 "command": ["/bin/busybox", "sh", "-c", "echo 'line one 数据'; echo line two; sleep 3600"]}
            ],
        },
    }  # fmt: skip
    assert kubectl(cp, "apply", "-f", "-", stdin=json.dumps(pod)).returncode == 0
    try:
        wait_until(lambda: get(cp, "pod", "talker")["status"].get("phase") == "Running", 120, what="Running")
        logs = wait_until(lambda: (d := kubectl(cp, "logs", "talker")).returncode == 0 and d, 60, what="logs")
        assert logs.stdout.splitlines() == ["line one 数据", "line two"]
        done = kubectl(cp, "exec", "talker", "--", "/bin/busybox", "cat", "/proc/1/cmdline")
        assert done.returncode == 0, done.stderr
        assert "sleep 3600" in done.stdout.replace("\0", " ")
    finally:
        kubectl(cp, "delete", "pod", "talker", "--force", "--grace-period=0")
