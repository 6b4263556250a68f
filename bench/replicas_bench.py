"""Province scale for DRReplicas: N replicas protected at once, against a bound measured in the same run.

    .venv/bin/python bench/replicas_bench.py [--replicas 1000] [--threads 16] [--timeout 1800]
        [--lag-replicas 100 --lag-rate 100 --lag-seconds 60] [--zones 50] [--skip lag,failover,others]

Starts the dev stack (control plane, the three provincial centres as versitygw, the centres as
DataCentres), creates one source bucket per replica in production, then:
- (a) bound: a script does the irreducible work of protecting N replicas straight through the APIs with
  `--threads` writers — creates the DRReplica, its two target buckets, fences them (bucket policies),
  writes the active copy's write lease (a policy on the source bucket), lists source and same-city target
  once (the first comparison, without which no replica may say Protected), applies its endpoint ConfigMap
  and Service, writes its status once — with no operator running;
  operator: `datacloud run`; N DRReplicas (one Continuous and one Scheduled target, failover policy
  Automatic) are created by as many writers; the clock stops when every one is Protected;
- (b) the operator's peak RSS and thread count, sampled every 0.2 s throughout;
- (c) idle: once all are Protected and the API server is quiet, the operator's CPU and the API server's
  writes (by verb and resource, from apiserver_request_total) over 60 s (with `OPERATOR_PYSPY_IDLE=FILE`
  the operator's Python stacks over those seconds, as for the failover below);
- (f) while they stay protected: `--zones` DataZones created and deleted and a CityDataCloud added, each
  timed until done (zone Ready then gone; city status written for its generation);
- (d) lag: `--lag-rate` PUT/s spread over `--lag-replicas` source buckets for `--lag-seconds`; each
  object's lag is from the PUT's acknowledgement to the moment a HEAD on the target finds it, checked
  0.05 s after the acknowledgement and then every 0.05-0.1 s up to 1 s, later by listing its bucket every
  0.5 s (so a figure can be up to that much above the true lag: an upper bound); then up to 60 s for the
  followers to catch up;
- (e) mass failover: production is killed; time until each replica is FailedOver (p50, p99, max), and
  the acknowledged writes of (d) missing from the new active copy afterwards, and the CPU seconds of the
  API server, etcd, the operator, the gateways and the bench from the kill until the last one failed
  over; with `APISERVER_PPROF=FILE` the API server's CPU profile over the first
  `APISERVER_PPROF_SECONDS` (30) after the kill (`go tool pprof -top FILE`), with `OPERATOR_PYSPY=FILE`
  the operator's Python stacks over the same seconds (py-spy's raw format), and always the operator's CPU
  per thread over the failover.
JSON goes to bench/results/replicas.json (or --out).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import queue
import re
import shutil
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
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.zones_bench import SPEC as ZONE_SPEC  # noqa: E402
from bench.zones_bench import per_zone, request_counts, settle  # noqa: E402
from datacloud import GROUP, VERSION  # noqa: E402
from datacloud.adapters import s3, s3_wire  # noqa: E402
from datacloud.adapters.kube import Kube  # noqa: E402
from datacloud.builders import dr as build  # noqa: E402
from datacloud.devstack import manifests  # noqa: E402
from datacloud.devstack.manifests import datacentre  # noqa: E402
from datacloud.devstack.objectstore import Centre  # noqa: E402
from datacloud.devstack.process import free_port, tool  # noqa: E402
from datacloud.devstack.stack import OPERATOR_NAMESPACE, DevStack, operator_process  # noqa: E402
from datacloud.failover import fencing  # noqa: E402

G = "datacloud.fujian.gov.cn/v1alpha1"
WRITES = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def replica(name: str, namespace: str, bucket: str) -> dict[str, Any]:
    """The dev stack's replica (the DR tests' too), failing over by itself, RPO 30 s at the same city."""
    return manifests.replica(name, namespace, bucket, policy="Automatic", rpo="30s")


def endpoint(centre: Centre) -> s3.S3Endpoint:
    return s3.S3Endpoint(centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key))


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 3)

    return {
        "p50": q(0.5),
        "p90": q(0.9),
        "p95": q(0.95),
        "p99": q(0.99),
        "max": round(ordered[-1], 3),
        "count": len(ordered),
    }


class Sampler(threading.Thread):
    """Peak RSS and thread count of the operator, every 0.2 s; at each new peak of threads (at most every
    2 s), the threads by pool from the operator's metrics, so the breakdown is the peak's."""

    def __init__(self, pid: int, metrics_port: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.peak_rss = 0
        self.peak_threads = 0
        self.peak_pools: dict[str, int] = {}
        self.pools_for = 0  # the thread count the breakdown was taken at
        self.stop = threading.Event()

    def run(self) -> None:
        asked = 0.0
        while not self.stop.wait(0.2):
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
                self.peak_threads = max(self.peak_threads, self.proc.num_threads())
            except psutil.Error:
                return
            if self.peak_threads > self.pools_for and time.monotonic() - asked >= 2.0:
                asked = time.monotonic()
                pools = thread_pools(self.metrics_url)
                # Asked at this peak: not again before a higher one. (Only a kept breakdown counted, so
                # after a scrape that saw fewer threads than the kept one, the metrics page of 1,000
                # replicas, 0.33 s of the operator's CPU, was asked for every 2 s, the idle phase too.)
                self.pools_for = self.peak_threads
                if pools and sum(pools.values()) >= sum(self.peak_pools.values()):
                    self.peak_pools = pools

    def resources(self) -> dict[str, Any]:
        return {
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
            "peak_threads": self.peak_threads,
            "threads_by_pool_near_peak": dict(sorted(self.peak_pools.items(), key=lambda kv: -kv[1])),
        }

    def cpu(self) -> float:
        return float(sum(self.proc.cpu_times()[:2]))


def scrape(url: str) -> str | None:
    """The operator's metrics page; None if it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http://127.0.0.1 only)
            return str(response.read().decode())
    except OSError:
        return None


def thread_pools(url: str) -> dict[str, int]:
    """The operator's threads by pool (`datacloud_operator_threads`); empty if the metrics cannot be read."""
    found: dict[str, int] = {}
    for line in (scrape(url) or "").splitlines():
        if line.startswith("datacloud_operator_threads{"):
            labels, _, value = line.rpartition(" ")
            found[labels.split('pool="', 1)[1].rsplit('"', 1)[0]] = int(float(value))
    return found


def notification_counts(url: str) -> dict[str, float]:
    """The operator's notifications accepted and misnamed (`datacloud_notifications_*`); {} if unread."""
    names = {'datacloud_notifications_total{result="accepted"}': "accepted"}
    names["datacloud_notifications_misnamed_total"] = "misnamed"
    found: dict[str, float] = {}
    for line in (scrape(url) or "").splitlines():
        metric, _, value = line.rpartition(" ")
        if metric in names:
            found[names[metric]] = float(value)
    return found


def listen_drops() -> dict[str, int]:
    """The kernel's count of connection attempts a full accept queue dropped (the whole machine's)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=False))
            return {k: row.get(k, 0) for k in ("ListenOverflows", "ListenDrops")}
    return {}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def writes(counts: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in counts.items() if k.split()[0] in WRITES}


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    out = {k: round(after.get(k, 0.0) - before.get(k, 0.0), 1) for k in after}
    return {k: v for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0}


def phases(kube: Kube, namespace: str) -> dict[str, str]:
    """Every replica's phase; an overloaded API server breaking the large list is asked again."""
    for attempt in range(5):
        try:
            items = kube.list("drreplicas", namespace)
        except Exception as e:  # a list cut off mid-read (urllib3 ProtocolError) or refused
            print(f"listing replicas failed ({type(e).__name__}); again", file=sys.stderr)
            time.sleep(1 + attempt)
            continue
        return {i["metadata"]["name"]: str((i.get("status") or {}).get("phase") or "none") for i in items}
    return {}


class PhaseWatch:
    """When each replica first reaches `phase`, from a watch on the namespace's DRReplicas: what a
    dashboard would do. Listing 1,000 replicas every half second instead cost the API server (which
    the operator waits on) a serialisation of every status each time, and inflated what it measured."""

    def __init__(self, kube: Kube, namespace: str, phase: str) -> None:
        self.kube, self.phase = kube, phase
        self.path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/drreplicas"
        self.reached: dict[str, float] = {}
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PhaseWatch:
        first = self.kube.get_json(self.path)
        self.version = str(first["metadata"]["resourceVersion"])
        self._note(first.get("items", []))
        self.thread.start()
        return self

    def _note(self, items: list[dict[str, Any]]) -> None:
        now = time.perf_counter()
        with self.changed:
            for item in items:
                name = item["metadata"]["name"]
                if (item.get("status") or {}).get("phase") == self.phase and name not in self.reached:
                    self.reached[name] = now
            self.changed.notify_all()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.response, events = self.kube.watch(self.path, {"resourceVersion": self.version}, 60)
                for event in events:
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":  # too old a version: start again from a listing
                        first = self.kube.get_json(self.path)
                        self.version = str(first["metadata"]["resourceVersion"])
                        self._note(first.get("items", []))
                        break
                    self.version = str((obj.get("metadata") or {}).get("resourceVersion") or self.version)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._note([obj])
            except Exception as e:  # a broken stream: open another from the last version seen
                if not self.stop.is_set():
                    print(f"watching replicas broke ({type(e).__name__}); again", file=sys.stderr)
                    time.sleep(0.5)

    def wait(self, n: int, timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        with self.changed:
            while len(self.reached) < n and time.perf_counter() < deadline:
                self.changed.wait(max(0.0, min(1.0, deadline - time.perf_counter())))

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        response = getattr(self, "response", None)
        if response is not None:
            response.close()
        self.thread.join(5)


# --- (a) the bound ---------------------------------------------------------------------------------
def run_bound(stack: DevStack, n: int, threads: int) -> dict[str, Any]:
    """Protecting n replicas by hand: the operator's irreducible work, and nothing else."""
    ns = "bench-bound"
    stack.apply_documents([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}])
    near, remote = (endpoint(stack.centres[c]) for c in ("fz-samecity-dr", "xm-remote-dr"))
    clients: queue.SimpleQueue[Kube] = queue.SimpleQueue()
    for _ in range(threads):
        clients.put(Kube.from_kubeconfig(str(stack.kubeconfig)))
    near_s3, remote_s3 = s3.shared_client(near), s3.shared_client(remote)
    url = stack.centres["fz-prod"].endpoint
    prod = endpoint(stack.centres["fz-prod"])
    prod_s3 = s3.shared_client(prod)
    for i in range(n):  # the sources exist before, as for the operator's replicas (not timed)
        prod_s3.create_bucket(Bucket=f"bound-{i:05d}")

    def protect(i: int) -> None:
        kube = clients.get()
        try:
            bucket = f"bound-{i:05d}"
            body = kube.create(replica(bucket, ns, bucket))
            for client, ep, copy in ((near_s3, near, "same-city"), (remote_s3, remote, "remote")):
                client.create_bucket(Bucket=bucket)
                fencing.fence(ep, bucket, "", fencing.owner_id(ns, bucket, copy), 1)
            source = fencing.owner_id(ns, bucket, "source")
            until = int(time.time()) + 11
            fencing.apply_many(
                prod, bucket, {source: fencing.desired(bucket, "", source, None, None, until)}, 5.0
            )
            prod_s3.list_objects_v2(Bucket=bucket)
            near_s3.list_objects_v2(Bucket=bucket)
            kube.apply(build.endpoint_configmap(body, "fz-prod", url, bucket, "", 1))
            kube.apply(build.endpoint_service(body, url))
            kube.patch_status("drreplicas", bucket, {"phase": "Protected", "observedGeneration": 1}, ns)
        finally:
            clients.put(kube)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(protect, range(n)))
    seconds = time.perf_counter() - start
    # Gone again before the operator starts (their finalizer is the operator's: taken off by hand).
    kube = clients.get()
    for i in range(n):
        name = f"bound-{i:05d}"
        kube.merge_patch(G, "DRReplica", name, {"metadata": {"finalizers": None}}, ns)
        kube.remove(G, "DRReplica", name, ns)
    # ... and so are the endpoint objects they owned, which the garbage collector deletes: left to it,
    # a thousand ConfigMaps and Services were deleted while the operator ran (0.56 DELETEs per replica).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        left = [o for kind in ("ConfigMap", "Service") for o in kube.read_all("v1", kind, ns)]
        if not [o for o in left if o["metadata"]["name"] != "kube-root-ca.crt"]:
            break
        time.sleep(1.0)
    return {"seconds": round(seconds, 2), "replicas": n, "threads": threads}


# --- (a)-(c) the operator ----------------------------------------------------------------------------
def run_operator(
    stack: DevStack, kube: Kube, n: int, threads: int, timeout: float, ns: str
) -> dict[str, Any]:
    names = [f"r-{i:05d}" for i in range(n)]
    writers: queue.SimpleQueue[Kube] = queue.SimpleQueue()
    for _ in range(threads):
        writers.put(Kube.from_kubeconfig(str(stack.kubeconfig)))

    def create(name: str) -> None:
        client = writers.get()
        try:
            client.create(replica(name, ns, name))
        finally:
            writers.put(client)

    server = stack.control_plane.main
    requests_before = request_counts(server)
    with PhaseWatch(kube, ns, "Protected") as watch:
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(create, names))
        created = time.perf_counter() - start
        watch.wait(n, timeout)
    everyone = len(watch.reached) == n
    seconds = (max(watch.reached.values()) if everyone else time.perf_counter()) - start
    seen = phases(kube, ns)
    counts: dict[str, int] = {}
    for name in names:
        counts[seen.get(name, "none")] = counts.get(seen.get(name, "none"), 0) + 1
    return {
        "seconds": round(seconds, 2),
        "create_seconds": round(created, 2),
        "protected": counts.get("Protected", 0),
        "phases": counts,
        # Everyone's requests (the bench's creates and its watch too), per replica.
        "api_requests_per_replica": per_zone(requests_before, request_counts(server), n),
    }


def thread_ticks(pid: int) -> dict[int, int]:
    """CPU clock ticks (user + system) of each thread of a process, from /proc (costs it nothing)."""
    ticks: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the thread ended
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def thread_names(pid: int) -> dict[int, str]:
    """Python's names of a process's threads by thread id, from one `py-spy dump` (a pause of a few
    milliseconds); {} without py-spy (`PY_SPY` or on the PATH)."""
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not py_spy:
        return {}
    dump = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
    found = re.findall(r'^Thread (\d+) \([^)]*\): "(.*)"$', dump.stdout, re.MULTILINE)
    return {int(tid): re.sub(r"[-_]\d+$", "", name) for tid, name in found}


def cpu_by_thread(
    pid: int, before: dict[int, int], after: dict[int, int], seconds: float
) -> dict[str, float]:
    """Percent of one core per thread pool over an interval (threads named by py-spy, else by id)."""
    names = thread_names(pid)
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid, ticks in after.items():
        name = names.get(tid, f"thread {tid}")
        out[name] = out.get(name, 0.0) + 100 * (ticks - before.get(tid, 0)) / hz / seconds
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0}


def run_idle(stack: DevStack, sampler: Sampler, seconds: float) -> dict[str, Any]:
    server = stack.control_plane.main
    settled = settle(server, 300)
    ticks_before = thread_ticks(sampler.proc.pid)
    before, cpu_before = writes(request_counts(server)), sampler.cpu()
    stacks = os.environ.get("OPERATOR_PYSPY_IDLE")
    recording = py_spy_record(sampler.proc.pid, int(seconds), Path(stacks)) if stacks else None
    time.sleep(seconds)
    after, cpu_after = writes(request_counts(server)), sampler.cpu()
    by_thread = cpu_by_thread(sampler.proc.pid, ticks_before, thread_ticks(sampler.proc.pid), seconds)
    by_kind = delta(before, after)
    if recording is not None:
        recording.wait(120)
    # Not the operator's: kube-controller-manager renews its leader lease every 2 s, and kube-apiserver
    # reconciles its own Endpoints every 10 s.
    operator_writes = sum(v for k, v in by_kind.items() if k not in ("PUT leases", "POST endpoints"))
    return {
        "seconds": seconds,
        "settled_after_seconds": settled,
        "operator_cpu_percent_of_one_core": round(100 * (cpu_after - cpu_before) / seconds, 2),
        "api_writes_per_second": round(operator_writes / seconds, 3),
        "api_writes_by_kind": by_kind,
        "cpu_percent_by_thread": by_thread,
    }


# --- (f) other kinds while the replicas are protected ----------------------------------------------
def run_others(stack: DevStack, kube: Kube, zones: int) -> dict[str, Any]:
    names = [f"bench-zone-{i:03d}" for i in range(zones)]
    start = time.perf_counter()
    for name in names:
        kube.create(
            {
                "apiVersion": G,
                "kind": "DataZone",
                "metadata": {"name": name},
                "spec": {**ZONE_SPEC, "namespaces": [name]},
            }
        )
    city = {
        "apiVersion": G,
        "kind": "CityDataCloud",
        "metadata": {"name": "bench-city"},
        "spec": {
            "cityCode": "350300",
            "displayName": {"zh": "莆田", "en": "Putian"},
            "cluster": {
                "kubeconfigSecretRef": {"name": "bench-city-kubeconfig", "namespace": OPERATOR_NAMESPACE}
            },
        },
    }
    kube.create(city)
    ready_at: dict[str, float] = {}
    city_at: float | None = None
    while time.perf_counter() - start < 300 and (len(ready_at) < zones or city_at is None):
        for item in kube.list("datazones"):
            name = item["metadata"]["name"]
            conds = (item.get("status") or {}).get("conditions") or []
            if (
                name in names
                and name not in ready_at
                and any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
            ):
                ready_at[name] = time.perf_counter() - start
        if city_at is None:
            body = kube.get("citydataclouds", "bench-city")
            if (body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"]:
                city_at = time.perf_counter() - start
        time.sleep(0.5)
    deleting = time.perf_counter()
    for name in names:
        kube.remove(G, "DataZone", name)
    gone_at: dict[str, float] = {}
    while time.perf_counter() - deleting < 300 and len(gone_at) < zones:
        present = {i["metadata"]["name"] for i in kube.list("datazones")}
        for name in names:
            if name not in present and name not in gone_at:
                gone_at[name] = time.perf_counter() - deleting
        time.sleep(0.5)
    return {
        "zones": zones,
        "zones_ready": len(ready_at),
        "zone_ready_seconds": quantiles(list(ready_at.values())),
        "zones_deleted": len(gone_at),
        "zone_deleted_seconds": quantiles(list(gone_at.values())),
        "city_status_seconds": round(city_at, 2) if city_at is not None else None,
        "city_note": "its kubeconfig Secret does not exist: done = status written for its generation",
    }


# --- (d) lag -----------------------------------------------------------------------------------------
# After the acknowledgement, an object is looked for by HEAD at these times: finer where the tail is
# (each HEAD after the first is made only for an object not found yet, so the extra steps add about 0.1
# HEAD per PUT; `probe_heads_per_put` in the JSON says what the probe cost).
HEAD_CHECKS_S = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LATE_LIST_EVERY_S = 0.5  # later, by listing its bucket: the probe's load stays bounded however far behind


def run_lag(
    stack: DevStack, buckets: list[str], rate: float, seconds: float, metrics_url: str
) -> dict[str, Any]:
    """Each object is looked for on the target at HEAD_CHECKS_S after its PUT was acknowledged, then by
    listings of its bucket every LATE_LIST_EVERY_S. (Polling each late object every 0.25 s made the probe
    the target store's heaviest client once the operator fell behind, and the lag it measured grew with
    its own load.) The probe speaks through the lean S3 client, which costs a sixth of boto3's CPU."""
    prod, near = stack.centres["fz-prod"], stack.centres["fz-samecity-dr"]
    writer = s3.client(endpoint(prod), max_pool=32)
    reader = s3_wire.WireClient(endpoint(near))
    acked: list[tuple[str, str]] = []
    lags: list[float] = []
    copied: list[tuple[str, str]] = []
    lock = threading.Lock()
    heads = [0]  # HEADs the probe made
    checks: list[tuple[float, int, float, str, str]] = []  # (next check, checks done, acked at, bucket, key)
    late: dict[str, dict[str, float]] = {}  # bucket → key → acked at
    cond = threading.Condition()
    stop = threading.Event()

    def put(i: int) -> None:
        bucket, key = buckets[i % len(buckets)], f"lag/{i:07d}"
        writer.put_object(Bucket=bucket, Key=key, Body=os.urandom(1024))
        now = time.perf_counter()
        with lock:
            acked.append((bucket, key))
        with cond:
            heapq.heappush(checks, (now + HEAD_CHECKS_S[0], 0, now, bucket, key))
            cond.notify()

    def check() -> None:
        while True:
            with cond:
                while not checks or checks[0][0] > time.perf_counter():
                    if stop.is_set() and not checks:
                        return
                    cond.wait(0.01 if checks else 0.1)
                _, done, at, bucket, key = heapq.heappop(checks)
                heads[0] += 1
            try:
                reader.head_object(Bucket=bucket, Key=key)
            except ClientError:
                with cond:
                    if done + 1 < len(HEAD_CHECKS_S):
                        heapq.heappush(checks, (at + HEAD_CHECKS_S[done + 1], done + 1, at, bucket, key))
                    else:
                        late.setdefault(bucket, {})[key] = at
                continue
            with lock:
                lags.append(time.perf_counter() - at)
                copied.append((bucket, key))

    def list_late() -> None:
        while True:
            started = time.perf_counter()
            with cond:
                waiting = [b for b, keys in late.items() if keys]
                if stop.is_set() and not checks and not waiting:
                    return
            for bucket in waiting:
                found: set[str] = set()
                token = ""
                while True:
                    page = reader.list_objects_v2(Bucket=bucket, Prefix="lag/", ContinuationToken=token)
                    found.update(o["Key"] for o in page.get("Contents") or [])
                    token = page.get("NextContinuationToken") or ""
                    if not token:
                        break
                now = time.perf_counter()
                with cond:
                    for key, at in list(late[bucket].items()):
                        if key in found:
                            del late[bucket][key]
                            with lock:
                                lags.append(now - at)
                                copied.append((bucket, key))
                        elif now - at > 60:
                            del late[bucket][key]  # counted as never copied within 60 s
            time.sleep(max(0.0, started + LATE_LIST_EVERY_S - time.perf_counter()))

    notified_before, drops_before = notification_counts(metrics_url), listen_drops()
    checkers = [threading.Thread(target=check, daemon=True) for _ in range(8)]
    lister = threading.Thread(target=list_late, daemon=True)
    for t in [*checkers, lister]:
        t.start()
    total = int(rate * seconds)
    start = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(put, i)
    stop.set()
    for t in checkers:
        t.join(120)
    lister.join(120)
    notified_after, drops_after = notification_counts(metrics_url), listen_drops()
    seen = set(copied)
    return {
        "puts": total,
        "acknowledged": len(acked),
        "replicas": len(buckets),
        "rate_per_second": rate,
        "lag_seconds": quantiles(lags),
        "never_copied_within_60s": len(acked) - len(lags),
        "probe_heads_per_put": round(heads[0] / max(1, total), 3),
        "never_copied_keys": [f"{b}/{k}" for b, k in acked if (b, k) not in seen][:20],
        # Each PUT makes one notification; fewer accepted means some were lost before the operator.
        # Misnamed: records whose bucket name disagreed with their ARN (a store's bug; both followed).
        "notifications": {k: int(v - notified_before.get(k, 0)) for k, v in notified_after.items()},
        "kernel_listen_drops": {k: drops_after.get(k, 0) - v for k, v in drops_before.items()},
        "resolution_seconds": f"HEAD at {', '.join(map(str, HEAD_CHECKS_S))} s after the acknowledgement, "
        f"then a listing of the bucket every {LATE_LIST_EVERY_S} s (each figure an upper bound)",
        "_acked": acked,
    }


# --- (e) mass failover ---------------------------------------------------------------------------------
def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """User+system CPU seconds of each named process so far (0 for one that is gone)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            out[name] = float(sum(psutil.Process(pid).cpu_times()[:2])) if pid else 0.0
        except psutil.Error:
            out[name] = 0.0
    return out


def pprof(stack: DevStack, seconds: int, out: Path) -> threading.Thread:
    """The API server's CPU profile over the next `seconds` (`APISERVER_PPROF`: where to keep it)."""

    def fetch() -> None:
        done = subprocess.run(
            [tool("kubectl"), "--kubeconfig", str(stack.kubeconfig), "get", "--raw",
             f"/debug/pprof/profile?seconds={seconds}"],
            capture_output=True, check=False, timeout=seconds + 60,
        )  # fmt: skip
        out.write_bytes(done.stdout)

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    return thread


def py_spy_record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """The operator's Python stacks while it holds the GIL (its own CPU, roughly) over the next `seconds`
    (`OPERATOR_PYSPY`: where to keep them, as
    py-spy's raw collapsed stacks), sampled without pausing it; None without py-spy."""
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not py_spy:
        return None
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking", "--gil", "--format", "raw",
         "--duration", str(seconds), "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_failover(
    stack: DevStack, kube: Kube, ns: str, n: int, acked: list[tuple[str, str]], operator_pid: int
) -> dict[str, Any]:
    server = stack.control_plane.main
    requests_before = request_counts(server)
    control = stack.control_plane
    pids = {
        "kube-apiserver": server.process.pid,
        "etcd": control.etcd.pid if control.etcd else None,
        "operator": operator_pid,
        **{
            f"gateway {name}": centre.process.pid if centre.process else None
            for name, centre in stack.centres.items()
        },
        # kube-controller-manager: its garbage collector follows every object with an owner (the
        # endpoint ConfigMaps and Services) and the Jobs controller the sync Jobs.
        **{component.name: component.pid for component in server.extra},
        "bench": os.getpid(),
    }
    profile = os.environ.get("APISERVER_PPROF")
    stacks = os.environ.get("OPERATOR_PYSPY")
    with PhaseWatch(kube, ns, "FailedOver") as watch:
        cpu_before = cpu_seconds(pids)
        ticks_before = thread_ticks(operator_pid)
        stack.centres["fz-prod"].stop()
        killed, killed_at = time.perf_counter(), time.time()
        profiling = (
            pprof(stack, int(os.environ.get("APISERVER_PPROF_SECONDS", "30")), Path(profile))
            if profile
            else None
        )
        recording = (
            py_spy_record(operator_pid, int(os.environ.get("APISERVER_PPROF_SECONDS", "30")), Path(stacks))
            if stacks
            else None
        )
        watch.wait(n, 300)
        cpu_after = cpu_seconds(pids)
        ticks_after = thread_ticks(operator_pid)
        elapsed = time.perf_counter() - killed
    if profiling is not None:
        profiling.join(120)
    if recording is not None:
        recording.wait(120)
    done = {name: at - killed for name, at in watch.reached.items()}
    requests = per_zone(requests_before, request_counts(server), n)
    # Where the time went: from the kill to each failover's start (detection, downFor, a worker), and the
    # failover itself (the write lease's wait, then the steps), from what each replica recorded.
    actions = [a for a in (action_of(i) for i in kube.list("drreplicas", ns)) if a.get("startedEpoch")]
    started = [float(a["startedEpoch"]) - killed_at for a in actions]
    took = [float(a["durationSeconds"]) for a in actions if a.get("durationSeconds") is not None]
    near = s3.client(endpoint(stack.centres["fz-samecity-dr"]), max_pool=32)

    def present(item: tuple[str, str]) -> bool:
        try:
            near.head_object(Bucket=item[0], Key=item[1])
            return True
        except ClientError:
            return False

    with ThreadPoolExecutor(16) as pool:
        lost = sum(1 for ok in pool.map(present, acked) if not ok)
    return {
        "replicas": n,
        "failed_over": len(done),
        "failed_over_seconds": quantiles(list(done.values())),
        "acknowledged_writes_checked": len(acked),
        "lost_acknowledged_writes": lost,
        "api_requests_per_replica": requests,  # from the kill until the last one failed over (or 300 s)
        "action_started_after_kill_seconds": quantiles(started),
        "action_duration_seconds": quantiles(took),
        # From the kill until the last one failed over: where the machine's two cores went.
        # (None: the process was gone by the end, as the killed centre's gateway.)
        "cpu_seconds_by_process": {
            k: round(cpu_after[k] - cpu_before[k], 2) if cpu_after[k] >= cpu_before[k] else None for k in pids
        },
        "cpu_window_seconds": round(elapsed, 2),
        "operator_cpu_percent_by_thread": cpu_by_thread(operator_pid, ticks_before, ticks_after, elapsed),
    }


def action_of(item: dict[str, Any]) -> dict[str, Any]:
    return dict((item.get("status") or {}).get("action") or {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--zones", type=int, default=50)
    parser.add_argument("--lag-replicas", type=int, default=100)
    parser.add_argument("--lag-rate", type=float, default=100)
    parser.add_argument("--lag-seconds", type=float, default=60)
    parser.add_argument("--skip", default="", help="comma-separated: others, lag, failover")
    parser.add_argument("--keep-log", type=Path, help="copy the operator's log here at the end")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replicas.json")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    n = args.replicas
    result: dict[str, Any] = {
        "benchmark": "replicas",
        "command": " ".join(["bench/replicas_bench.py", *sys.argv[1:]]),
        "replicas": n,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {
            "a_ratio_to_bound_at_most": 2.0,
            "b_peak_rss_mb_at_most": 500,
            "b_peak_threads_at_most": 64,
            "c_cpu_percent_at_most": 5.0,
            "c_api_writes_per_second_at_most": 1.0,
            "d_lag_p99_seconds_at_most": 1.0,
            "e_failover_p99_seconds_at_most": 30.0,
            "f_each_done_within_seconds": 60.0,
        },
    }
    with tempfile.TemporaryDirectory(prefix="replicas-bench-") as tmp:
        stack = DevStack(Path(tmp)).start(samples=False)
        proc = None
        try:
            kube = Kube.from_kubeconfig(str(stack.kubeconfig))
            prod = s3.shared_client(endpoint(stack.centres["fz-prod"]))
            for i in range(n):
                prod.create_bucket(Bucket=f"r-{i:05d}")
            print(f"bound: protecting {n} replicas by hand", file=sys.stderr)
            result["bound"] = run_bound(stack, n, args.threads)
            ns = "bench-replicas"
            stack.apply_documents(
                [
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                    *(datacentre(name, c.endpoint) for name, c in stack.centres.items()),
                ]
            )
            metrics_port = free_port()
            proc = operator_process(stack, Path(tmp) / "operator.log", metrics_port, free_port()).start()
            assert proc.pid is not None
            sampler = Sampler(proc.pid, metrics_port)
            sampler.start()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                health = {(i.get("status") or {}).get("health") for i in kube.list("datacentres")}
                if health == {"Up"}:
                    break
                time.sleep(0.5)
            print(f"operator: {n} replicas applied at once", file=sys.stderr)
            result["load_average_1_5_15"] = {"start": load_average()}
            result["operator"] = run_operator(stack, kube, n, args.threads, args.timeout, ns)
            result["load_average_1_5_15"]["protected"] = load_average()
            result["operator"]["ratio_to_bound"] = round(
                result["operator"]["seconds"] / result["bound"]["seconds"], 2
            )
            print(json.dumps(result["operator"]), file=sys.stderr)
            result["resources"] = sampler.resources()
            save(args.out, result)
            result["idle"] = run_idle(stack, sampler, args.idle_seconds)
            result["load_average_1_5_15"]["idle"] = load_average()
            print(json.dumps(result["idle"]), file=sys.stderr)
            save(args.out, result)
            if "others" not in skip:
                result["others"] = run_others(stack, kube, args.zones)
                result["load_average_1_5_15"]["others"] = load_average()
                print(json.dumps(result["others"]), file=sys.stderr)
                save(args.out, result)
            acked: list[tuple[str, str]] = []
            if "lag" not in skip:
                buckets = [f"r-{i:05d}" for i in range(min(n, args.lag_replicas))]
                lag = run_lag(stack, buckets, args.lag_rate, args.lag_seconds, sampler.metrics_url)
                acked = lag.pop("_acked")
                result["lag"] = lag
                result["load_average_1_5_15"]["lag"] = load_average()
                print(json.dumps(result["lag"]), file=sys.stderr)
                save(args.out, result)
            result["resources"] = sampler.resources()
            if "failover" not in skip:
                result["failover"] = run_failover(stack, kube, ns, n, acked, proc.pid)
                result["load_average_1_5_15"]["failover"] = load_average()
                print(json.dumps(result["failover"]), file=sys.stderr)
            result["resources"] = sampler.resources()
            sampler.stop.set()
        finally:
            if proc is not None:
                proc.stop()
            stack.stop()
            if args.keep_log is not None:
                shutil.copy(Path(tmp) / "operator.log", args.keep_log)
    result["complete"] = True
    save(args.out, result)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def save(out: Path, result: dict[str, Any]) -> None:
    """Written after each phase too, so a run cut short keeps what it measured (without "complete")."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
