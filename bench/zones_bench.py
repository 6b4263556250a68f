"""How fast the operator brings N DataZones to Ready, against the bound of creating their children directly.

    .venv/bin/python bench/zones_bench.py [--zones 1000] [--threads 16] [--timeout 1800]

Starts its own control plane (etcd, kube-apiserver, kube-controller-manager) and installs the CRDs, the
zone ClusterRoles and the finalizer policy (as the Helm chart does), then:
- bound: a script creates, for N namespaces, exactly the objects a zone gets (namespace, ResourceQuota,
  LimitRange, two NetworkPolicies, two RoleBindings, rendered by the same builders) straight through the
  API, with `--threads` concurrent writers — what the API server needs for that work and nothing else;
- operator: `datacloud run` as a subprocess; N DataZones (one namespace each) are created at once by the
  same number of writers, and the clock stops when a watch has seen every zone's Ready condition True.
Between the two, the bench waits until the API server has had no writes for a few seconds, so that the
controller manager's tail of work on the bound's namespaces does not fall into the operator phase.
Requests are counted from the API server's own `apiserver_request_total` (read with the admin client
certificate) before and after each phase; the operator phase's figure excludes the N DataZone creations
and the bench's one watch. The operator's peak RSS is sampled with psutil every 100 ms.
JSON goes to bench/results/zones.json; the targets are operator time within 2x the bound and peak RSS
under 300 MB. `--pprof DIR` also writes the API server's CPU profile of each phase's first seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import yaml
from kubernetes import watch

from datacloud import GROUP, VERSION
from datacloud.adapters.kube import Kube
from datacloud.api.admission import finalizer_policy
from datacloud.api.datazone import DataZoneSpec
from datacloud.api.render import rendered
from datacloud.builders import datazone as build
from datacloud.builders.datazone_profile import profile_for
from datacloud.devstack.controlplane import ApiServer, ControlPlane
from datacloud.devstack.process import free_port, tool
from datacloud.devstack.stack import wait_until_admitted

ROOT = Path(__file__).resolve().parents[1]
PPROF_SECONDS = 15
KINDS = (
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)
SPEC: dict[str, Any] = {
    "department": {"name": "省大数据管理局", "code": "FJ-DSJ"},
    "classification": "Important",
    "quota": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "20"}},
    "limits": {
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        "default": {"cpu": "1", "memory": "1Gi"},
    },
    "network": {"egress": [{"cidr": "10.20.0.0/16", "ports": [443]}]},
    "access": {"admins": ["fj-dsj-admins"], "viewers": ["fj-audit"]},
}


def admin_get(server: ApiServer, path: str, timeout: float = 30) -> bytes:
    """GET a path of the API server with the admin client certificate."""
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    ctx.load_cert_chain(str(server.admin.cert), str(server.admin.key))
    with urllib.request.urlopen(f"{server.url}{path}", context=ctx, timeout=timeout) as resp:  # noqa: S310
        return bytes(resp.read())


class ServerProfile:
    """With --pprof DIR: the API server's Go CPU profile over the first `seconds` of a phase, written to
    DIR/<phase>.pprof (read it with `go tool pprof -top`). It shows where the server's CPU goes."""

    def __init__(self, server: ApiServer, out: Path | None, phase: str, seconds: int) -> None:
        self.thread: threading.Thread | None = None
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)

        def fetch() -> None:
            data = admin_get(server, f"/debug/pprof/profile?seconds={seconds}", seconds + 30)
            (out / f"{phase}.pprof").write_bytes(data)

        self.thread = threading.Thread(target=fetch, daemon=True)
        self.thread.start()

    def wait(self) -> None:
        if self.thread:
            self.thread.join()


def request_counts(server: ApiServer) -> dict[str, float]:
    """`apiserver_request_total` by verb and resource ("PATCH datazones/status": n)."""
    text = admin_get(server, "/metrics").decode()
    out: dict[str, float] = {}
    for m in re.finditer(r"^apiserver_request_total\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = f"{labels.get('verb')} {labels.get('resource')}" + (
            f"/{labels['subresource']}" if labels.get("subresource") else ""
        )
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def request_total(server: ApiServer) -> float:
    return sum(request_counts(server).values())


def per_zone(before: dict[str, float], after: dict[str, float], zones: int) -> dict[str, float]:
    """The biggest per-zone request counts by verb and resource between two readings."""
    delta = {k: (after.get(k, 0.0) - before.get(k, 0.0)) / zones for k in after}
    return {k: round(v, 2) for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v >= 0.05}


class CpuMeter:
    """CPU seconds (user + system) of the control plane's processes and of this bench process, so a result
    shows where the machine's cores went in each phase (not part of any target)."""

    def __init__(self, plane: ControlPlane) -> None:
        server = plane.main
        pids = {"apiserver": server.process.pid, "etcd": plane.etcd.pid if plane.etcd else None}
        if server.extra:
            pids["controller_manager"] = server.extra[0].pid
        pids["bench"] = os.getpid()
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items() if pid}

    def read(self) -> dict[str, float]:
        return {name: sum(p.cpu_times()[:2]) for name, p in self.procs.items()}

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: round(after[name] - before[name], 2) for name in before}


def settle(server: ApiServer, timeout: float = 300.0) -> float:
    """Wait until the API server has had no writes for a few seconds; returns how long that took.

    After the bound, kube-controller-manager keeps reacting to its thousand namespaces for tens of seconds
    (a ConfigMap and a ServiceAccount in each, every quota's status): started at once, the operator phase
    would pay for that tail of the bound's work.
    """
    start = time.perf_counter()

    def writes() -> float:
        counts = request_counts(server)
        return sum(v for k, v in counts.items() if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE"))

    last, quiet = writes(), 0
    while quiet < 3 and time.perf_counter() - start < timeout:
        time.sleep(1.0)
        now = writes()
        quiet = quiet + 1 if now - last < 5 else 0
        last = now
    return round(time.perf_counter() - start, 1)


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages at the end of a phase: on a shared machine they say
    how much else was running beside the measurement."""
    return [round(x, 2) for x in os.getloadavg()]


def bound_objects(i: int) -> list[dict[str, Any]]:
    """What zone i gets, under a bench-only label so the operator later neither indexes nor adopts it."""
    name = f"bound-{i:05d}"
    spec = DataZoneSpec.model_validate({**SPEC, "namespaces": [name]})
    profile = profile_for(spec.classification, len(spec.network.egress))
    docs = [
        build.namespace(name, name, spec, profile),
        *build.children(name, name, spec, profile, SPEC["quota"]["hard"]),
    ]
    for d in docs:
        d["metadata"]["labels"] = {
            "bench": "bound",
            **{k: v for k, v in d["metadata"]["labels"].items() if GROUP not in k},
        }
    return docs


def warm_clients(server: ApiServer, threads: int) -> queue.SimpleQueue[Kube]:
    """One client per writer with API discovery done before the clock starts."""
    pool: queue.SimpleQueue[Kube] = queue.SimpleQueue()
    for _ in range(threads):
        kube = Kube.from_kubeconfig(str(server.kubeconfig))
        for api_version, kind in KINDS:
            kube.dynamic.resources.get(api_version=api_version, kind=kind)
        pool.put(kube)
    return pool


def run_bound(
    server: ApiServer, zones: int, threads: int, cpu: CpuMeter, pprof: Path | None = None
) -> dict[str, Any]:
    clients = warm_clients(server, threads)

    def create(i: int) -> int:
        kube = clients.get()
        try:
            docs = bound_objects(i)
            for d in docs:
                kube.create(d)
        finally:
            clients.put(kube)
        return len(docs)

    before = request_counts(server)
    cpu_before = cpu.read()
    profile = ServerProfile(server, pprof, "bound", PPROF_SECONDS)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        objects = sum(pool.map(create, range(zones)))
    seconds = time.perf_counter() - start
    cpu_spent = cpu.spent(cpu_before, cpu.read())
    profile.wait()
    after = request_counts(server)
    return {
        "seconds": round(seconds, 2),
        "load_average": load_average(),
        "objects": objects,
        "cpu_seconds": cpu_spent,
        "requests_per_zone": round((sum(after.values()) - sum(before.values())) / zones, 2),
        "requests_by_kind_per_zone": per_zone(before, after, zones),
    }


def timeline(seconds: list[float]) -> dict[str, float]:
    """When the first 10%, half, 90% and all of the zones were Ready, from the first creation."""
    if not seconds:
        return {}
    return {
        f"p{q}": round(seconds[min(len(seconds) - 1, len(seconds) * q // 100)], 2) for q in (10, 50, 90)
    } | {"p100": round(seconds[-1], 2)}


def zone_events(kube: Kube) -> dict[str, int]:
    """Events about DataZones by reason (a reason seen more often than zones were created points at
    repeated Events)."""
    out: dict[str, int] = {}
    items = kube.core.list_event_for_all_namespaces(field_selector="involvedObject.kind=DataZone").items
    for event in items:
        reason = str(event.reason)
        out[reason] = out.get(reason, 0) + (event.count or 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return


def run_operator(
    server: ApiServer,
    zones: int,
    threads: int,
    timeout: float,
    workdir: Path,
    meter: CpuMeter,
    pprof: Path | None = None,
) -> dict[str, Any]:
    live = free_port()
    log = open(workdir / "operator.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datacloud",
            "run",
            "--standalone",
            "--metrics-port",
            str(free_port()),
            "--liveness",
            f"http://127.0.0.1:{live}/healthz",
            "--log-format",
            "json",
        ],
        env={**os.environ, "KUBECONFIG": str(server.kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("operator did not become live") from None
                time.sleep(0.2)
        idle_rss = sampler.peak
        kube = Kube.from_kubeconfig(str(server.kubeconfig))
        ready: set[str] = set()
        ready_at: dict[str, float] = {}  # when the watch first saw each zone Ready (for the timeline)
        all_ready = threading.Event()
        watches = [0]

        def watch_ready() -> None:
            """Follow every zone's Ready condition; a watch the server ends is simply resumed."""
            version = ""
            while not all_ready.is_set():
                w = watch.Watch()
                try:
                    for event in w.stream(
                        kube.custom.list_cluster_custom_object,
                        GROUP,
                        VERSION,
                        "datazones",
                        resource_version=version,
                        timeout_seconds=300,
                    ):
                        obj = event["object"]
                        version = obj["metadata"]["resourceVersion"]
                        conds = (obj.get("status") or {}).get("conditions") or []
                        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                            ready.add(obj["metadata"]["name"])
                            ready_at.setdefault(obj["metadata"]["name"], time.perf_counter())
                        if len(ready) >= zones:
                            all_ready.set()
                            w.stop()
                except Exception as e:
                    print(f"watch restarted: {e}", file=sys.stderr)
                    version = ""
                watches[0] += 1

        watcher = threading.Thread(target=watch_ready, daemon=True)
        watcher.start()
        time.sleep(1.0)
        before = request_counts(server)
        writers = threading.local()

        def create(i: int) -> None:
            k = getattr(writers, "k", None) or Kube.from_kubeconfig(str(server.kubeconfig))
            writers.k = k
            name = f"zone-{i:05d}"
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "DataZone",
                "metadata": {"name": name},
                "spec": {**SPEC, "namespaces": [name]},
            }
            k.custom.create_cluster_custom_object(GROUP, VERSION, "datazones", body)

        cpu_before = sum(psutil.Process(proc.pid).cpu_times()[:2])
        others_before = meter.read()
        profile = ServerProfile(server, pprof, "operator", PPROF_SECONDS)
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(create, range(zones)))
        created = time.perf_counter() - start
        finished = all_ready.wait(timeout)
        seconds = time.perf_counter() - start
        cpu = sum(psutil.Process(proc.pid).cpu_times()[:2]) - cpu_before
        others = meter.spent(others_before, meter.read())
        profile.wait()
        time.sleep(2.0)  # let the last status writes land before counting
        after = request_counts(server)
        requests = sum(after.values()) - sum(before.values()) - zones - watches[0]
        events = zone_events(kube)  # read after the count, so not counted
        return {
            "seconds": round(seconds, 2),
            "load_average": load_average(),
            "create_seconds": round(created, 2),
            "ready": len(ready),
            "ready_seconds_quantiles": timeline(sorted(t - start for t in ready_at.values())),
            "all_ready": finished,
            "requests_per_zone": round(requests / zones, 2),
            "requests_by_kind_per_zone": per_zone(before, after, zones),
            "events_per_zone": {reason: round(n / zones, 2) for reason, n in events.items()},
            "operator_cpu_seconds": round(cpu, 2),
            "cpu_seconds": {"operator": round(cpu, 2), **others},
            "peak_rss_mb": round(sampler.peak / 2**20, 1),
            "idle_rss_mb": round(idle_rss / 2**20, 1),
        }
    finally:
        sampler.stop.set()
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def install_crds(server: ApiServer) -> None:
    """The CRDs and what the Helm chart ships with them: the aggregated ClusterRoles the zone RoleBindings
    point at (the operator only checks they exist; without them no zone becomes Ready) and the finalizer
    policy (each zone is created with the operator's finalizer, which spares kopf a PATCH of every zone)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in rendered().items():
            (Path(tmp) / name).write_text(text)
        shipped = [*build.cluster_roles(), *finalizer_policy()]
        docs = "---\n".join(yaml.safe_dump(r, allow_unicode=True) for r in shipped)
        (Path(tmp) / "chart-objects.yaml").write_text(docs)
        kubectl = [tool("kubectl"), "--kubeconfig", str(server.kubeconfig)]
        subprocess.run([*kubectl, "apply", "--server-side", "-f", tmp], check=True, capture_output=True)
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"],
            check=True,
            capture_output=True,
        )
    wait_until_admitted(server.kubeconfig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zones", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", type=Path, help="copy the operator log here")
    parser.add_argument(
        "--pprof",
        type=Path,
        help=f"write the API server's CPU profile of each phase's first {PPROF_SECONDS} s here",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "zones.json")
    args = parser.parse_args()
    # Ctrl-C or a kill still stops the control plane and the operator (their finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="zones-bench-") as tmp:
        workdir = Path(tmp)
        plane = ControlPlane(workdir / "cluster").start()
        try:
            server = plane.main
            install_crds(server)
            meter = CpuMeter(plane)
            bound = run_bound(server, args.zones, args.threads, meter, args.pprof)
            print(f"bound: {json.dumps(bound)}", flush=True)
            bound["settled_after_seconds"] = settle(server)  # not part of either measurement
            operator = run_operator(
                server, args.zones, args.threads, args.timeout, workdir, meter, args.pprof
            )
            print(f"operator: {json.dumps(operator)}", flush=True)
            if not operator["all_ready"]:
                print((workdir / "operator.log").read_text()[-4000:], file=sys.stderr)
            if args.keep:
                args.keep.write_bytes((workdir / "operator.log").read_bytes())
        finally:
            plane.stop()

    ratio = operator["seconds"] / bound["seconds"]
    result = {
        "benchmark": "zones",
        "zones": args.zones,
        "threads": args.threads,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": load_before,
        },
        "bound": bound,
        "operator": operator,
        "ratio": round(ratio, 2),
        "targets": {"ratio_max": 2.0, "rss_mb_max": 300},
        "met": {
            "all_ready": operator["all_ready"],
            "ratio": operator["all_ready"] and ratio <= 2.0,
            "rss": operator["peak_rss_mb"] < 300,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(yaml.safe_dump(result, sort_keys=False))
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
