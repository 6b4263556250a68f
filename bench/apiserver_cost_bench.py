"""The API server's CPU per request of each kind a failover makes, on one real DRReplica.

    .venv/bin/python bench/apiserver_cost_bench.py [--requests 300] [--out bench/results/apiserver-cost.json]

Starts the dev stack, protects one DRReplica with the operator (so its status is the operator's own),
stops the operator, then makes `--requests` requests of each kind one after another and divides the CPU
seconds the API server, etcd and kube-controller-manager used by the count: the replica's status merge
PATCH (a condition's message changed, as a run does), server-side apply and merge PATCH of an endpoint
ConfigMap and Service, an Event POST. Then the same status PATCH with the DRReplica CRD changed in
place: without any CEL rule, and with the status schema left open (x-kubernetes-preserve-unknown-fields),
to see what of a status write is the schema's. The ratio to a ConfigMap merge PATCH is the figure to
compare between runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from kubernetes.client import ApiextensionsV1Api

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replicas_bench import load_average  # noqa: E402
from datacloud import GROUP, VERSION  # noqa: E402
from datacloud.adapters import s3, s3_wire  # noqa: E402
from datacloud.adapters.kube import Kube  # noqa: E402
from datacloud.devstack import manifests  # noqa: E402
from datacloud.devstack.manifests import datacentre  # noqa: E402
from datacloud.devstack.process import free_port  # noqa: E402
from datacloud.devstack.stack import DevStack, operator_process  # noqa: E402
from datacloud.reconcile.drreplica import PLURAL  # noqa: E402

CRD = f"{PLURAL}.{GROUP}"
NS, NAME, BUCKET = "bench", "costly", "apiserver-cost"


def cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def strip_cel(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("x-kubernetes-validations", None)
        for value in node.values():
            strip_cel(value)
    elif isinstance(node, list):
        for value in node:
            strip_cel(value)


def open_status(schema: dict[str, Any]) -> None:
    schema["properties"]["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def protected_replica(stack: DevStack, kube: Kube, workdir: Path) -> dict[str, Any]:
    stack.apply_documents(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            *(datacentre(name, c.endpoint) for name, c in stack.centres.items()),
        ]
    )
    for centre in stack.centres.values():
        endpoint = s3.S3Endpoint(
            centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key)
        )
        s3_wire.create_bucket(s3_wire.WireClient(endpoint), BUCKET, "us-east-1")
    stack.apply_documents([manifests.replica(NAME, NS, BUCKET, policy="Automatic", rpo="30s")])
    proc = operator_process(stack, workdir / "operator.log", free_port(), free_port()).start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            body = kube.read(f"{GROUP}/{VERSION}", "DRReplica", NAME, NS)
            if (body.get("status") or {}).get("phase") == "Protected":
                time.sleep(5)  # its first runs' writes settled
                break
            time.sleep(1)
        else:
            raise RuntimeError("the replica was not protected within 180 s")
    finally:
        proc.stop()
    return kube.read(f"{GROUP}/{VERSION}", "DRReplica", NAME, NS)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench/results/apiserver-cost.json"))
    args = parser.parse_args()
    n = args.requests
    with tempfile.TemporaryDirectory(prefix="apiserver-cost-") as tmp:
        stack = DevStack(Path(tmp)).start(samples=False)
        try:
            kube = Kube.from_kubeconfig(str(stack.kubeconfig))
            body = protected_replica(stack, kube, Path(tmp))
            server = stack.control_plane.main
            found = {"kube-apiserver": server.process.pid, "etcd": stack.control_plane.etcd.pid}
            found |= {c.name: c.pid for c in server.extra}
            pids = {k: p for k, p in found.items() if p is not None}
            results: dict[str, dict[str, float]] = {}

            def measure(label: str, request: Callable[[int], Any]) -> None:
                time.sleep(1.0)
                before = {k: cpu(p) for k, p in pids.items()}
                started = time.perf_counter()
                for i in range(n):
                    request(i)
                wall = time.perf_counter() - started
                time.sleep(1.5)  # the watchers' and controllers' share of the last requests
                ms = {k: round((cpu(p) - before[k]) / n * 1000, 2) for k, p in pids.items()}
                results[label] = {**ms, "wall_ms": round(wall / n * 1000, 2)}
                print(label, results[label], file=sys.stderr)

            conditions = body["status"]["conditions"]

            def status_patch(i: int) -> None:
                changed = copy.deepcopy(conditions)
                changed[0]["message"] = f"run {i}"
                kube.patch_status(PLURAL, NAME, {"conditions": changed}, NS)

            owner = {
                "apiVersion": body["apiVersion"],
                "kind": body["kind"],
                "name": NAME,
                "uid": body["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
            meta = {"name": f"{NAME}-cost", "namespace": NS, "ownerReferences": [owner]}

            def configmap(i: int) -> dict[str, Any]:
                data = {"centre": "fz-prod", "bucket": BUCKET, "fencingEpoch": str(i)}
                return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

            def service(i: int) -> dict[str, Any]:
                spec = {
                    "type": "ExternalName",
                    "externalName": "127.0.0.1",
                    "ports": [{"port": 9000 + i % 2}],
                }
                return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}

            def event(i: int) -> None:
                involved = {
                    "kind": "DRReplica",
                    "name": NAME,
                    "namespace": NS,
                    "uid": body["metadata"]["uid"],
                }
                kube.core.create_namespaced_event(
                    NS,
                    {  # type: ignore[arg-type]
                        "metadata": {"generateName": f"{NAME}."},
                        "involvedObject": involved,
                        "reason": "FailoverCompleted",
                        "message": f"event {i}",
                        "type": "Normal",
                    },
                )

            measure("drreplica_status_merge_patch", status_patch)
            measure("configmap_server_side_apply", lambda i: kube.apply(configmap(i)))
            measure(
                "configmap_merge_patch",
                lambda i: kube.merge_patch(
                    "v1", "ConfigMap", meta["name"], {"data": {"fencingEpoch": f"m{i}"}}, NS
                ),
            )
            measure("service_server_side_apply", lambda i: kube.apply(service(i)))
            measure("event_post", event)

            crds = ApiextensionsV1Api(kube.api)
            for label, change in (
                ("drreplica_status_merge_patch_without_cel_rules", strip_cel),
                ("drreplica_status_merge_patch_with_open_status_schema", open_status),
            ):
                crd = kube.api.sanitize_for_serialization(crds.read_custom_resource_definition(CRD))  # type: ignore[no-untyped-call]
                for version in crd["spec"]["versions"]:
                    change(version["schema"]["openAPIV3Schema"])
                crds.replace_custom_resource_definition(CRD, crd)
                time.sleep(4)  # the API server serves the changed schema
                measure(label, status_patch)
            unit = results["configmap_merge_patch"]["kube-apiserver"] or 1.0
            out = {
                "benchmark": "apiserver_cost",
                "command": " ".join(["bench/apiserver_cost_bench.py", *sys.argv[1:]]),
                "requests_each": n,
                "object_bytes": len(json.dumps(body)),
                "status_bytes": len(json.dumps(body["status"])),
                "managed_fields_bytes": len(json.dumps(body["metadata"].get("managedFields"))),
                "load_average_1_5_15": load_average(),
                "cpu_ms_per_request": results,
                "apiserver_ratio_to_configmap_merge_patch": {
                    k: round(v["kube-apiserver"] / unit, 2) for k, v in results.items()
                },
            }
        finally:
            stack.stop()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["apiserver_ratio_to_configmap_merge_patch"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
