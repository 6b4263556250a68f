"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

Authentication is by client certificates from a local CA, authorisation is RBAC, admission is on
(the API server's default plugins, Pod Security included), and service-account tokens are signed.
Further API servers sharing the same etcd under their own prefix act as city clusters.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .pki import CertFiles, LocalCA, service_account_keys
from .process import Managed, free_port, stop_together, tool, wait_for

# On SIGTERM a kube-apiserver drains open requests and watches for up to a minute (measured: 60 s
# with the operator connected). It keeps no state of its own (etcd does), so it gets a short grace.
APISERVER_GRACE_S = 3.0


@dataclass
class ApiServer:
    """One kube-apiserver and the admin kubeconfig that reaches it."""

    name: str
    url: str
    kubeconfig: Path
    process: Managed
    admin: CertFiles
    ca_path: Path
    extra: list[Managed] = field(default_factory=list)

    def ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        ctx.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        with urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)

    def processes(self) -> list[Managed]:
        return [*reversed(self.extra), self.process]

    def stop(self) -> None:
        stop_together(self.processes(), APISERVER_GRACE_S)


def write_kubeconfig(
    path: Path,
    name: str,
    url: str,
    ca: Path,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
) -> Path:
    """A kubeconfig with the CA and credentials embedded as paths (client cert) or a bearer token."""
    user: dict[str, str] = {}
    if cert and key:
        user = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        user = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url, "certificate-authority": str(ca)}}],
        "users": [{"name": f"{name}-user", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-user"}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class ControlPlane:
    """etcd plus the provincial API server with its controller manager; more API servers on demand."""

    def __init__(self, workdir: Path, workloads: bool = False) -> None:
        """`workloads`: the control plane of a cluster with a node (see node.py): ServiceAccount admission
        (pods get their account's token), the controllers that manage nodes' taints, and a scheduler."""
        self.dir = workdir
        self.workloads = workloads
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = LocalCA(self.dir / "pki")
        self.sa = service_account_keys(self.pki.dir)
        self.etcd: Managed | None = None
        self.etcd_url = ""
        self.servers: dict[str, ApiServer] = {}
        # With a node: where the main API server sends its traffic to the cluster (kubelets, pods), an
        # HTTP CONNECT proxy the node's forwarder serves (node.py): `kubectl logs/exec` reach kubelet.
        self.egress_socket = self.dir / "egress.sock"

    @property
    def main(self) -> ApiServer:
        return self.servers["province"]

    def start(self, controller_manager: bool = True) -> ControlPlane:
        try:
            self._start_etcd()
            self.add_apiserver("province", controller_manager=controller_manager)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        data = self.dir / "etcd"
        self.etcd = Managed(
            "etcd",
            [
                tool("etcd"),
                "--name",
                "datacloud-dev",
                "--data-dir",
                str(data),
                "--listen-client-urls",
                self.etcd_url,
                "--advertise-client-urls",
                self.etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"datacloud-dev=http://127.0.0.1:{peer}",
                "--quota-backend-bytes",
                str(4 * 1024**3),
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            self.dir / "logs" / "etcd.log",
        ).start()

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=1) as r:  # noqa: S310
                return b'"true"' in r.read()

        wait_for(healthy, 30, "etcd", self.etcd)

    def add_apiserver(
        self, name: str, controller_manager: bool = False, port: int | None = None
    ) -> ApiServer:
        """Start another API server (a city cluster) on this etcd under its own prefix; `port` fixes
        its port, so a city stopped with `stop_apiserver` comes back at the same address."""
        port = port or free_port()
        url = f"https://127.0.0.1:{port}"
        serving = self.pki.issue(f"{name}-serving", "kube-apiserver", server=True)
        admin = self.pki.issue(f"{name}-admin", "datacloud-admin", org="system:masters")
        cfg = self.dir / name
        proc = Managed(
            f"kube-apiserver-{name}",
            [
                tool("kube-apiserver"),
                "--etcd-servers",
                self.etcd_url,
                "--etcd-prefix",
                f"/registry-{name}",
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                "--secure-port",
                str(port),
                "--tls-cert-file",
                str(serving.cert),
                "--tls-private-key-file",
                str(serving.key),
                "--client-ca-file",
                str(self.pki.cert_path),
                "--authorization-mode",
                "RBAC",
                "--service-account-issuer",
                "https://kubernetes.default.svc",
                "--service-account-key-file",
                str(self.sa.cert),
                "--service-account-signing-key-file",
                str(self.sa.key),
                "--service-cluster-ip-range",
                "10.0.0.0/24",
                "--allow-privileged=true",
                # Without a node nothing mounts tokens, and pods created right after their namespace
                # would be refused until its `default` account exists.
                *([] if self.workloads else ["--disable-admission-plugins", "ServiceAccount"]),
                "--cert-dir",
                str(cfg / "certs"),
                "--storage-media-type",
                "application/json",
                # The chart's finalizer policy (api/admission.py) needs the v1beta1 admission API.
                "--feature-gates",
                "MutatingAdmissionPolicy=true",
                "--runtime-config",
                "admissionregistration.k8s.io/v1beta1=true",
                *(self._node_flags(cfg) if self.workloads and name == "province" else []),
                "--v",
                "0",
            ],
            self.dir / "logs" / f"kube-apiserver-{name}.log",
        ).start()
        kubeconfig = write_kubeconfig(
            cfg / "kubeconfig", name, url, self.pki.cert_path, admin.cert, admin.key
        )
        server = ApiServer(name, url, kubeconfig, proc, admin, self.pki.cert_path)
        self.servers[name] = server
        wait_for(server.ready, 90, f"kube-apiserver {name}", proc)
        if controller_manager:
            server.extra.append(self._start_controller_manager(server))
            if self.workloads:
                server.extra.append(self._start_scheduler(server))
        return server

    def _node_flags(self, cfg: Path) -> list[str]:
        """Reaching kubelets: through the egress proxy, with a client certificate kubelet accepts."""
        cfg.mkdir(parents=True, exist_ok=True)
        egress = cfg / "egress.yaml"
        egress.write_text(
            json.dumps(
                {
                    "apiVersion": "apiserver.k8s.io/v1beta1",
                    "kind": "EgressSelectorConfiguration",
                    "egressSelections": [
                        {
                            "name": "cluster",
                            "connection": {
                                "proxyProtocol": "HTTPConnect",
                                "transport": {"uds": {"udsName": str(self.egress_socket)}},
                            },
                        }
                    ],
                }
            )
        )
        client = self.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client")
        return [
            "--egress-selector-config-file",
            str(egress),
            # The node's name resolves nowhere; its InternalIP is what the proxy opens inside the node.
            "--kubelet-preferred-address-types",
            "InternalIP",
            "--kubelet-client-certificate",
            str(client.cert),
            "--kubelet-client-key",
            str(client.key),
        ]

    def _start_scheduler(self, server: ApiServer) -> Managed:
        return self._start_component("kube-scheduler", server, [])

    def _start_controller_manager(self, server: ApiServer) -> Managed:
        return self._start_component(
            "kube-controller-manager",
            server,
            [
                "--service-account-private-key-file",
                str(self.sa.key),
                "--root-ca-file",
                str(self.pki.cert_path),
                "--use-service-account-credentials=false",
                "--controllers",
                # nodelifecycle clears a Ready node's not-ready taint; without a node it only watches.
                "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller"
                + ("" if self.workloads else ",-nodelifecycle"),
                "--concurrent-gc-syncs",
                "5",
            ],
        )

    def _start_component(self, command: str, server: ApiServer, extra: list[str]) -> Managed:
        """A control-plane component of `server` (scheduler, controller manager): the same kubeconfig for
        its API calls, authentication and authorisation, no leader election, a loopback port."""
        kubeconfig = str(server.kubeconfig)
        return Managed(
            f"{command}-{server.name}",
            [
                tool(command),
                "--kubeconfig",
                kubeconfig,
                "--authentication-kubeconfig",
                kubeconfig,
                "--authorization-kubeconfig",
                kubeconfig,
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
                *extra,
                "--v",
                "0",
            ],
            self.dir / "logs" / f"{command}-{server.name}.log",
        ).start()

    def stop_apiserver(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server:
            server.stop()

    def stop(self) -> None:
        stop_together([p for server in self.servers.values() for p in server.processes()], APISERVER_GRACE_S)
        self.servers.clear()
        if self.etcd:
            self.etcd.stop()
            self.etcd = None
