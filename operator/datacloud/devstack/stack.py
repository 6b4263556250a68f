"""The three-centre dev stack: a real control plane, one versitygw per provincial centre, CRDs, samples.

`make run` runs it in the foreground with the operator; `make up` keeps it in a background holder process
and `make down` stops that holder, which stops everything it started.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from .. import GROUP, RUN_NOW
from ..adapters import s3
from ..api.admission import FINALIZER, finalizer_policy
from ..api.peering import peering_object
from ..api.render import rendered
from ..builders.datazone import cluster_roles as zone_cluster_roles
from .cities import LiveCity, start_cities
from .controlplane import ControlPlane
from .node import Node
from .objectstore import Centre, app_policy
from .process import Managed, StackError, free_port, tool

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SAMPLES = PROJECT_ROOT / "samples"
OPERATOR_NAMESPACE = "datacloud-system"
CENTRES = ("fz-prod", "fz-samecity-dr", "xm-remote-dr")


@dataclass(frozen=True)
class AppAccount:
    """The application (non-root) account the dev stack creates in every centre: bucket policies bind it,
    so fencing refuses its writes where the root account would pass."""

    access_key: str = "datacloud-app"
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)


class DevStack:
    def __init__(
        self,
        workdir: Path,
        centres: Sequence[str] = CENTRES,
        chart_objects: bool = True,
        cities: int = 0,
        node: bool = False,
    ) -> None:
        """`cities`: the first N CityDataCloud samples get a live API server (the others are left out).
        `node`: also run a one-node cluster (node.py) where pods run, reaching the centres at
        `self.node.endpoint(port)`."""
        self.dir = workdir
        self.chart_objects = chart_objects
        self.city_count = cities
        self.cities: list[LiveCity] = []
        self.app = AppAccount()
        self.control_plane = ControlPlane(workdir / "cluster", workloads=node)
        self.node = Node(workdir / "node", self.control_plane) if node else None
        # Every centre posts bucket notifications to the operator's receiver on this port, with a token of
        # its own that the operator reads from the centre's Secret (key eventToken).
        self.events_port = free_port()
        self.centres = {name: self._centre(name) for name in centres}

    def _centre(self, name: str) -> Centre:
        token = secrets.token_urlsafe(24)
        centre = Centre(
            name,
            self.dir / "centres" / name,
            event_webhook=f"http://127.0.0.1:{self.events_port}/events/{token}",
        )
        centre.event_token = token
        return centre

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.main.kubeconfig

    def start(self, samples: bool = True) -> DevStack:
        try:
            self.control_plane.start()
            with stand_in_receiver(self.events_port):
                for centre in self.centres.values():
                    centre.start()
                    centre.add_user(self.app.access_key, self.app.secret_key)
            for centre in self.centres.values():
                centre.add_probe_user()
            if self.node:
                self.node.start(forward_ports=tuple(c.port for c in self.centres.values()))
            self.install_crds()
            self.apply_documents(
                [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}]
            )
            for centre in self.centres.values():
                self.apply_documents([centre_secret(centre)])
            if samples:
                self.apply_samples()
        except BaseException:
            self.stop()
            raise
        return self

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise StackError(f"kubectl {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done

    def apply_documents(self, docs: Iterable[dict[str, Any]]) -> str:
        text = "---\n".join(yaml.safe_dump(d, allow_unicode=True) for d in docs)
        return self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=text).stdout

    def install_crds(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in rendered().items():
                (Path(tmp) / name).write_text(text)
            self.kubectl("apply", "--server-side", "-f", tmp)
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        # What the Helm chart installs besides the CRDs: the peering object, the zone ClusterRoles and the
        # finalizer policy (left out when the chart itself will be installed, since helm adopts nothing it
        # did not create).
        if self.chart_objects:
            self.apply_documents([peering_object(), *zone_cluster_roles(), *finalizer_policy()])
            wait_until_admitted(self.kubeconfig)

    def apply_samples(self) -> None:
        """Apply samples/ with each provincial centre's endpoint pointed at its local versitygw."""
        docs: list[dict[str, Any]] = []
        for path in sorted(SAMPLES.glob("*.yaml")):
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
        for doc in docs:
            if doc["kind"] == "DataCentre" and doc["metadata"]["name"] in self.centres:
                doc["spec"]["objectStore"]["endpoint"] = self.centres[doc["metadata"]["name"]].endpoint
                doc["spec"]["objectStore"]["region"] = "us-east-1"
            if doc["kind"] == "ComputeCensus":
                # A first run at start-up, so the census has figures and a report before its schedule.
                annotations = doc["metadata"].setdefault("annotations", {})
                annotations[RUN_NOW] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        city_docs = [d for d in docs if d["kind"] == "CityDataCloud"]
        self.cities = start_cities(self.control_plane, city_docs[: self.city_count])
        live = {c.name for c in self.cities}
        # A city without a live cluster would only be Unavailable (and alert): it is left out.
        docs = [d for d in docs if d["kind"] != "CityDataCloud" or d["metadata"]["name"] in live]
        self._create_buckets(docs)
        namespaces = [d for d in docs if d["kind"] == "Namespace"]
        self.apply_documents(namespaces)
        if self.cities:
            self.apply_documents([c.secret for c in self.cities])
        self.apply_documents([d for d in docs if d["kind"] != "Namespace"])

    def _create_buckets(self, docs: list[dict[str, Any]]) -> None:
        """The buckets the samples' DR replicas protect exist in production, and the census bucket; every
        copy of a replica (source and targets) lets the application account read and write, as the
        applications' own accounts are set up beside a real DR replica."""
        copies = {
            (place["centre"], place["bucket"])
            for d in docs
            if d["kind"] == "DRReplica"
            for place in (d["spec"]["source"], *d["spec"]["targets"])
        }
        wanted = set(copies)
        for d in docs:
            store = (
                (d.get("spec", {}).get("reports") or {}).get("objectStore")
                if d["kind"] == "ComputeCensus"
                else None
            )
            if store:
                wanted.add((store["centre"], store["bucket"]))
        for centre_name, bucket in sorted(wanted):
            centre = self.centres.get(centre_name)
            if centre is None:
                continue
            client = s3.client(
                s3.S3Endpoint(
                    centre.endpoint, "us-east-1", s3.S3Credentials(centre.access_key, centre.secret_key)
                )
            )
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as e:
                if not e.response["Error"]["Code"].startswith("BucketAlready"):
                    raise
            try:
                if (centre_name, bucket) in copies:
                    client.put_bucket_policy(Bucket=bucket, Policy=app_policy(bucket, self.app.access_key))
            finally:
                client.close()

    def describe(self) -> dict[str, Any]:
        return {
            "kubeconfig": str(self.kubeconfig),
            "apiserver": self.control_plane.main.url,
            "centres": {n: c.endpoint for n, c in self.centres.items()},
            "cities": {c.name: c.server.url for c in self.cities},
            "app": {"accessKeyId": self.app.access_key, "secretAccessKey": self.app.secret_key},
            "pids": self.pids(),
        }

    def pids(self) -> list[int]:
        procs = (
            [self.control_plane.etcd]
            + [p for s in self.control_plane.servers.values() for p in s.processes()]
            + [c.process for c in self.centres.values()]
        )
        return [p.pid for p in procs if p is not None and p.pid is not None]

    def stop(self) -> None:
        if self.node:
            self.node.stop()
        for centre in self.centres.values():
            centre.stop()
        self.control_plane.stop()


def wait_until_admitted(kubeconfig: Path, timeout: float = 60.0) -> None:
    """Wait until the finalizer policy acts on every kind: each sample, without finalizers, is created
    with `--dry-run=server` until the answer carries the policy's finalizer.

    Two delays sit between installing the policy and its working, and a create made inside either is
    refused with 503 "There can be a delay...": the API server loads the policy and its binding from a
    watch, and resolves a kind's schema for it a few seconds after the CRD is established (it refreshes
    every 5 s). A create admitted before the policy is loaded proves nothing about the second delay, so
    the finalizer in the answer, not the answer alone, is what ends the wait."""
    firsts: dict[str, dict[str, Any]] = {}
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith(GROUP):
                firsts.setdefault(doc["kind"], doc)
    deadline = time.monotonic() + timeout
    for doc in firsts.values():
        metadata = {k: v for k, v in doc["metadata"].items() if k != "finalizers"}
        if "namespace" in metadata:
            metadata["namespace"] = "default"
        doc = {**doc, "metadata": metadata}
        while True:
            done = subprocess.run(
                [
                    tool("kubectl"),
                    "--kubeconfig",
                    str(kubeconfig),
                    "create",
                    "--dry-run=server",
                    "-o",
                    "json",
                    "-f",
                    "-",
                ],
                input=json.dumps(doc),
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            if done.returncode == 0 and FINALIZER in json.loads(done.stdout)["metadata"].get(
                "finalizers", []
            ):
                break
            if done.returncode != 0 and "There can be a delay" not in done.stderr:
                raise StackError(f"creating a {doc['kind']} was refused: {done.stderr.strip()}")
            if time.monotonic() > deadline:
                said = done.stderr.strip() or "admitted without the finalizer policy's finalizer"
                raise StackError(
                    f"the finalizer policy did not act on a {doc['kind']} within {timeout:.0f} s: {said}"
                )
            time.sleep(0.5)


@contextlib.contextmanager
def stand_in_receiver(port: int) -> Iterator[None]:
    """Answer on the notification port while centres start: versitygw posts a test event at start-up and
    refuses to run if nobody answers. The operator's own receiver takes the port over later; events sent
    in between are lost, which the operator's listing pass makes up for."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def centre_secret(centre: Centre, namespace: str = OPERATOR_NAMESPACE) -> dict[str, Any]:
    """The credentials Secret a DataCentre sample refers to (`centre-<name>`)."""
    values = {
        "accessKeyId": centre.access_key,
        "secretAccessKey": centre.secret_key,
        "probeAccessKeyId": centre.probe_key,
        "probeSecretAccessKey": centre.probe_secret,
    }
    if centre.event_token:
        values["eventToken"] = centre.event_token
    enc = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"centre-{centre.name}", "namespace": namespace},
        "type": "Opaque",
        "data": enc,
    }


def operator_env(kubeconfig: Path) -> dict[str, str]:
    # As the image runs it (Dockerfile): few malloc arenas, whatever the number of threads.
    return {"MALLOC_ARENA_MAX": "2", **os.environ, "KUBECONFIG": str(kubeconfig)}


def operator_process(
    stack: DevStack,
    log: Path,
    metrics_port: int,
    liveness_port: int,
    *extra: str,
    kubeconfig: Path | None = None,
) -> Managed:
    """`datacloud run` (standalone) against the stack, receiving its centres' notifications; not started."""
    argv = [
        sys.executable,
        "-m",
        "datacloud",
        "run",
        "--standalone",
        "--metrics-port",
        str(metrics_port),
        "--liveness",
        f"http://127.0.0.1:{liveness_port}/healthz",
        "--events-port",
        str(stack.events_port),
        *extra,
    ]
    return Managed("operator", argv, log, operator_env(kubeconfig or stack.kubeconfig))
