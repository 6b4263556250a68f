"""A one-node cluster for the dev stack: containerd and kubelet in namespaces of the stack's own.

The node runs under `unshare --net --pid --mount --fork` with `nodeinit` as its first process: its network
namespace holds the pods' bridge (`cni0`, carrying the node's address) and the pods' veths; its mount
namespace covers the fixed paths kubelet and containerd use (/var/lib/kubelet, /var/log/pods, ...) with
the node's own directories; its PID namespace makes sure no container, shim or daemon outlives it.
A forwarder (forward.py) makes the host's loopback servers reachable inside: the API server at the same
`https://127.0.0.1:PORT` for kubelet, and at the node's address for pods (through the `kubernetes`
Service's address); the centres at `http://NODE_IP:PORT` (`Node.endpoint`). The other way, it serves
the API server's egress proxy (HTTP CONNECT on a Unix socket, controlplane.py), opening connections to
the node's addresses inside its namespace: `kubectl logs`, `exec` and `port-forward` reach kubelet.
Pods get their network from the CNI bridge and host-local plugins. The pause image is built here
(image.py) and imported into containerd; other images are imported the same way (`Node.load_image`),
since no registry is reachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .controlplane import ControlPlane, write_kubeconfig
from .image import PAUSE_IMAGE, pause_image
from .process import Managed, StackError, tool, wait_for

NODE_IP = "10.88.0.1"
POD_SUBNET = "10.88.0.0/24"
SERVICE_IP = "10.0.0.1"  # the first address of the API server's --service-cluster-ip-range
BRIDGE = "cni0"
CNI_BIN = "/usr/lib/cni"
# Fixed paths kubelet and containerd write to whatever their configuration says; inside the node's mount
# namespace they are the node's own directories (the empty mount points stay on the host).
BOUND_PATHS = ("/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/cni")
TMPFS_PATHS = ("/run/containerd",)  # shim sockets and runc state
CGROUP_FS = Path("/sys/fs/cgroup")


class Node:
    """One kubelet node named `name`, registered with the control plane's main API server."""

    def __init__(self, workdir: Path, control_plane: ControlPlane, name: str = "datacloud-node") -> None:
        self.dir = workdir
        self.cp = control_plane
        self.name = name
        self.socket = self.dir / "containerd" / "containerd.sock"
        self.process: Managed | None = None
        self.forwarder: Managed | None = None
        self.init_pid: int | None = None  # process 1 of the node's namespaces, as the host sees it
        self.netns_inode: int | None = None
        self.forwarded: dict[int, str] = {}  # host loopback port → address inside the node

    # -- starting ---------------------------------------------------------------------------------------

    def start(self, forward_ports: tuple[int, ...] = (), timeout: float = 120) -> Node:
        """Start the node; `forward_ports` are host loopback ports pods reach at `NODE_IP:PORT`."""
        try:
            self._start(forward_ports, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, forward_ports: tuple[int, ...], timeout: float) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        api = self.cp.main
        port = int(api.url.rsplit(":", 1)[1])
        self._authorise_nodes()
        cfg = self._write_config(port)
        ready = Path(cfg["ready_file"])
        ready.unlink(missing_ok=True)
        self.process = Managed(
            f"node-{self.name}",
            [
                "unshare",
                "--net",
                "--pid",
                "--mount",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                sys.executable,
                "-m",
                "datacloud.devstack.nodeinit",
                str(self.dir / "node.json"),
            ],
            self.dir / "logs" / "node-init.log",
        ).start()
        wait_for(ready.exists, 60, "node namespaces (containerd)", self.process)
        self.init_pid = self._child_of(self.process.pid)
        netns = f"/proc/{self.init_pid}/ns/net"
        self.netns_inode = Path(netns).stat().st_ino
        rules = [f"127.0.0.1:{port}=127.0.0.1:{port}", f"{NODE_IP}:{port}=127.0.0.1:{port}"]
        rules += [f"{NODE_IP}:{p}=127.0.0.1:{p}" for p in forward_ports]
        self.forwarded = {p: f"{NODE_IP}:{p}" for p in forward_ports}
        self.forwarder = Managed(
            f"forward-{self.name}",
            [
                sys.executable,
                "-m",
                "datacloud.devstack.forward",
                netns,
                "--connect",
                str(self.cp.egress_socket),
                "--inside",
                POD_SUBNET,
                *rules,
            ],
            self.dir / "logs" / "forward.log",
        ).start()
        wait_for(lambda: "forwarding" in self.forwarder.tail(), 30, "node forwarder", self.forwarder)  # type: ignore[union-attr]
        self.load_image(pause_image(self.dir / "images" / "pause.tar"), PAUSE_IMAGE.rsplit(":", 1)[0])
        wait_for(self.ready, timeout, f"node {self.name} Ready", self.process)

    def _authorise_nodes(self) -> None:
        """Kubelets authenticate as system:node:NAME in group system:nodes; the API server authorises by
        RBAC alone (no Node authoriser), so the group gets the built-in system:node role."""
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "datacloud-dev:nodes"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:node",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}],
        }
        self.kubectl("apply", "-f", "-", stdin=json.dumps(binding))

    def _write_config(self, apiserver_port: int) -> dict[str, Any]:
        d = self.dir
        for sub in ("containerd", "cni", "kubelet", "logs", "images", "pods", "containers", "cni-state"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cred = self.cp.pki.issue(f"kubelet-{self.name}", f"system:node:{self.name}", org="system:nodes")
        kubeconfig = write_kubeconfig(
            d / "kubelet" / "kubeconfig",
            self.name,
            self.cp.main.url,
            self.cp.pki.cert_path,
            cred.cert,
            cred.key,
        )
        (d / "containerd" / "config.toml").write_text(
            containerd_config(d / "containerd", self.socket, d / "cni")
        )
        (d / "cni" / "10-datacloud.conflist").write_text(json.dumps(cni_config(d / "cni-state"), indent=2))
        (d / "kubelet" / "config.yaml").write_text(
            yaml.safe_dump(kubelet_config(self.socket, self.cp.pki.cert_path))
        )
        cfg = {
            "binds": [
                [str(d / "kubelet-root"), "/var/lib/kubelet"],
                [str(d / "pods"), "/var/log/pods"],
                [str(d / "containers"), "/var/log/containers"],
                [str(d / "cni-state"), "/var/lib/cni"],
            ],
            "tmpfs": list(TMPFS_PATHS),
            "bridge": BRIDGE,
            "node_ip": NODE_IP,
            "pod_prefix": POD_SUBNET.split("/")[1],
            "service_ip": SERVICE_IP,
            "apiserver_port": apiserver_port,
            "containerd": [
                shutil.which("containerd") or "containerd",
                "--config",
                str(d / "containerd" / "config.toml"),
            ],
            "containerd_socket": str(self.socket),
            "containerd_log": str(d / "logs" / "containerd.log"),
            "kubelet": [
                tool("kubelet"),
                "--config",
                str(d / "kubelet" / "config.yaml"),
                "--kubeconfig",
                str(kubeconfig),
                "--hostname-override",
                self.name,
                "--node-ip",
                NODE_IP,
                "--v",
                "1",
            ],
            "kubelet_log": str(d / "logs" / "kubelet.log"),
            "ready_file": str(d / "init.ready"),
        }
        (d / "node.json").write_text(json.dumps(cfg, indent=2))
        return cfg

    @staticmethod
    def _child_of(pid: int | None) -> int:
        """The one child of `unshare` (process 1 inside the namespaces)."""
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        raise StackError(f"unshare ({pid}) has no child")

    # -- using ------------------------------------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [tool("kubectl"), "--kubeconfig", str(self.cp.main.kubeconfig), *args],
            input=stdin, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise StackError(f"kubectl {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def ready(self) -> bool:
        """The node reports Ready and carries no taint that keeps pods off it."""
        node = json.loads(self.kubectl("get", "node", self.name, "-o", "json", "--ignore-not-found") or "{}")
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        taints = node.get("spec", {}).get("taints") or []
        return conditions.get("Ready") == "True" and not taints

    def ctr(self, *args: str) -> str:
        done = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise StackError(f"ctr {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def load_image(self, archive: Path, name: str) -> None:
        """Import an OCI archive into the node's containerd (pods use it with imagePullPolicy: Never)."""
        self.ctr("images", "import", "--base-name", name, str(archive))

    def endpoint(self, host_port: int, scheme: str = "http") -> str:
        """The address at which pods reach a host loopback port forwarded at start."""
        return f"{scheme}://{self.forwarded[host_port]}"

    # -- stopping ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop kubelet and containerd; the end of process 1 ends every container and mount with it."""
        if self.forwarder:
            self.forwarder.stop()
        if self.process and self.process.alive() and self.init_pid:
            try:
                os.kill(self.init_pid, signal.SIGTERM)
                self.process.proc.wait(30)  # type: ignore[union-attr]
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.process:
            self.process.stop()
        self._remove_cgroups()
        if self.init_pid and self.cp.servers.get("province"):
            # Gone for good: the scheduler must not place pods on a node that will never run them (the
            # pod garbage collector then removes the pods bound to it).
            with contextlib.suppress(StackError, subprocess.SubprocessError):
                self.kubectl("delete", "node", self.name, "--ignore-not-found", "--wait=false")

    def _cgroups(self) -> list[Path]:
        """The cgroup directories of the node's containers: containerd puts each under /k8s.io/ID (kubelet
        gives no parent without per-QoS cgroups); the IDs are the task directories in its state."""
        tasks = self.dir / "containerd" / "state" / "io.containerd.runtime.v2.task" / "k8s.io"
        ids = [t.name for t in tasks.iterdir()] if tasks.is_dir() else []
        return [h / "k8s.io" / i for h in CGROUP_FS.iterdir() for i in ids if (h / "k8s.io" / i).is_dir()]

    def _remove_cgroups(self) -> None:
        """Containers killed with the node leave their (empty) cgroup directories; remove them."""
        for group in self._cgroups():
            for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir(sub)
            _rmdir(group)
        for hierarchy in CGROUP_FS.iterdir():  # the shared parent, unless another node still uses it
            with contextlib.suppress(OSError):
                (hierarchy / "k8s.io").rmdir()

    def leftovers(self) -> list[str]:
        """What of the node is still on the host: processes in its network namespace, mounts under its
        directory, cgroups. Empty after a clean stop."""
        found: list[str] = []
        if self.netns_inode is not None:
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        if (proc / "ns" / "net").stat().st_ino == self.netns_inode:
                            found.append(f"process {proc.name}")
                    except OSError:
                        continue
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(str(self.dir)) or point in BOUND_PATHS or point in TMPFS_PATHS:
                found.append(f"mount {point}")
        found += [f"cgroup {g}" for g in self._cgroups()]
        return found


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # the kernel releases a cgroup a moment after its last process ends


def containerd_config(root: Path, socket: Path, cni_conf: Path) -> str:
    """containerd with its CRI plugin: state under `root`, the local pause image, and
    `restrict_oom_score_adj` because this sandbox refuses a negative oom_score_adj (no CAP_SYS_RESOURCE)."""
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"""


def cni_config(state: Path) -> dict[str, Any]:
    """Pods on the node's bridge, addresses from host-local; the bridge is their gateway (the node)."""
    return {
        "cniVersion": "1.0.0",
        "name": "datacloud",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(state / "networks"),
                },
            },
            {"type": "loopback"},
        ],
    }


def kubelet_config(socket: Path, client_ca: Path) -> dict[str, Any]:
    """What this machine kind needs from kubelet (see docs/packaging.md): no swap check, cgroupfs without
    per-QoS cgroups, no eviction or node-allocatable enforcement."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "evictionHard": {"memory.available": "1Mi"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "makeIPTablesUtilChains": False,
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "rotateCertificates": False,
        "registerNode": True,
    }
