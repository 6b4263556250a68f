"""Prometheus inside the dev node's network namespace, scraping what the chart's ServiceMonitor selects.

The dev stack has no Prometheus Operator; `from_servicemonitor` turns the chart's ServiceMonitor into the
scrape job the Prometheus Operator would generate from it: the monitor's namespaces' Service endpoints,
kept only when the Service's labels match `spec.selector.matchLabels` and the endpoint port has the
monitor's port name, with the same `interval` and `relabelings` and the target labels the Prometheus
Operator adds (namespace, service, pod, container, endpoint). The Prometheus Operator discovers them with
`kubernetes_sd_configs` (role endpoints); Debian's Prometheus is built without Kubernetes discovery, so
`EndpointsDiscovery` lists the same Endpoints from the API server and writes them, with the
`__meta_kubernetes_*` labels Kubernetes discovery gives, into a file Prometheus reads (`file_sd_configs`):
the relabelling that selects and labels the targets is the same either way.

Prometheus runs under `nsenter --net` in the node's namespace, where the pods' addresses are on the
bridge. Its web port is inside that namespace too; `NodePrometheus.api` reaches it from this process by
entering the namespace for the request (forward.inside).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from ..adapters.kube import Kube
from .forward import inside
from .process import Managed, tool, wait_for

PROMETHEUS_PORT = 9090  # inside the node's namespace, where nothing else listens on loopback


def _label(name: str) -> str:
    """A Kubernetes label name as Prometheus's service-discovery meta label spells it."""
    return "".join(c if c.isalnum() else "_" for c in name)


def monitored_namespaces(monitor: dict[str, Any]) -> list[str]:
    spec = monitor["spec"]
    return list((spec.get("namespaceSelector") or {}).get("matchNames") or [monitor["metadata"]["namespace"]])


def from_servicemonitor(monitor: dict[str, Any], targets_file: Path) -> list[dict[str, Any]]:
    """One scrape job per endpoint of `monitor`, as the Prometheus Operator generates them (its
    Kubernetes discovery replaced by `targets_file`, which EndpointsDiscovery keeps current)."""
    meta, spec = monitor["metadata"], monitor["spec"]
    keep_service = [
        {
            "source_labels": [f"__meta_kubernetes_service_label_{_label(k)}"],
            "regex": str(v),
            "action": "keep",
        }
        for k, v in sorted(spec["selector"]["matchLabels"].items())
    ]
    jobs = []
    for i, endpoint in enumerate(spec["endpoints"]):
        relabel: list[dict[str, Any]] = [
            *keep_service,
            {
                "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                "regex": endpoint["port"],
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"replacement": endpoint["port"], "target_label": "endpoint"},
        ]
        if spec.get("jobLabel"):
            relabel.append(
                {
                    "source_labels": [f"__meta_kubernetes_service_label_{_label(spec['jobLabel'])}"],
                    "target_label": "job",
                }
            )
        for rule in endpoint.get("relabelings") or []:
            relabel.append(
                {
                    {"sourceLabels": "source_labels", "targetLabel": "target_label"}.get(k, k): v
                    for k, v in rule.items()
                }
            )
        jobs.append(
            {
                "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{i}",
                "scrape_interval": endpoint.get("interval", "30s"),
                "metrics_path": endpoint.get("path", "/metrics"),
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}],
                "relabel_configs": relabel,
            }
        )
    return jobs


def endpoint_targets(
    services: list[dict[str, Any]], endpoints: list[dict[str, Any]], pods: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What Kubernetes discovery (role endpoints) reports: one target per ready address and port of each
    Service's Endpoints, with its meta labels. Pure."""
    by_name = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services}
    containers = {
        (p["metadata"]["namespace"], p["metadata"]["name"], port.get("containerPort")): c["name"]
        for p in pods
        for c in p["spec"]["containers"]
        for port in c.get("ports") or []
    }
    out = []
    for ep in endpoints:
        ns, name = ep["metadata"]["namespace"], ep["metadata"]["name"]
        service = by_name.get((ns, name))
        if service is None:
            continue
        service_labels = {
            f"__meta_kubernetes_service_label_{_label(k)}": v
            for k, v in (service["metadata"].get("labels") or {}).items()
        }
        for subset in ep.get("subsets") or []:
            for address in subset.get("addresses") or []:
                pod = (address.get("targetRef") or {}).get("name", "")
                for port in subset.get("ports") or []:
                    labels = {
                        "__meta_kubernetes_namespace": ns,
                        "__meta_kubernetes_service_name": name,
                        "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_name": pod,
                        "__meta_kubernetes_pod_container_name": containers.get((ns, pod, port["port"]), ""),
                        **service_labels,
                    }
                    out.append({"targets": [f"{address['ip']}:{port['port']}"], "labels": labels})
    return out


class EndpointsDiscovery:
    """Keeps `path` (a file_sd targets file) equal to the Endpoints of `namespaces`, every `every` s."""

    def __init__(self, kube: Kube, namespaces: list[str], path: Path, every: float = 2.0) -> None:
        self.kube, self.namespaces, self.path, self.every = kube, namespaces, path, every
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="endpoints-discovery", daemon=True)

    def start(self) -> EndpointsDiscovery:
        self.refresh()
        self._thread.start()
        return self

    def refresh(self) -> None:
        services, endpoints, pods = [], [], []
        for ns in self.namespaces:
            services += self.kube.read_all("v1", "Service", ns)
            endpoints += self.kube.read_all("v1", "Endpoints", ns)
            pods += self.kube.read_all("v1", "Pod", ns)
        text = json.dumps(endpoint_targets(services, endpoints, pods), indent=1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)  # Prometheus never reads a half-written file

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception as e:  # an API hiccup: the last file stays, tried again
                self.last_error = str(e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)


class NodePrometheus:
    """Prometheus in the network namespace `netns` (a /proc/PID/ns/net path) with `scrape_configs`."""

    def __init__(self, workdir: Path, netns: str, scrape_configs: list[dict[str, Any]]) -> None:
        self.dir = workdir
        self.netns = netns
        self.scrape_configs = scrape_configs
        self.process: Managed | None = None
        self.url = f"http://127.0.0.1:{PROMETHEUS_PORT}"

    def start(self) -> NodePrometheus:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump({"global": {"evaluation_interval": "5s"}, "scrape_configs": self.scrape_configs})
        )
        self.process = Managed(
            "prometheus-node",
            [
                "nsenter",
                f"--net={self.netns}",
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
            ],
            self.dir / "prometheus.log",
        ).start()
        wait_for(
            lambda: self.api("status/runtimeinfo").get("status") == "success", 60, "prometheus", self.process
        )
        return self

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path> inside the node's namespace; the decoded JSON (4xx answers carry errors)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with inside(self.netns):
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:  # noqa: S310
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                body = e.read()
                try:
                    return json.loads(body)
                except ValueError:  # "Service Unavailable" while it starts: not JSON
                    return {"status": "error", "error": body.decode(errors="replace")}

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["data"]["result"])

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None
