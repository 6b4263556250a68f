"""Process 1 of the dev node's namespaces: sets up its mounts and network, runs containerd and kubelet.

`node.Node` starts this under `unshare --net --pid --mount --fork`, so it is process 1 of a PID namespace
and the only holder of a mount and a network namespace of the stack's own. When it ends, the kernel kills
every process left in the namespace (containers, shims, kubelet), and the mounts (container root file
systems, pod network namespaces, the bind mounts below) and the network namespace (bridge, veths, iptables
rules) go with them: nothing of the node outlives it on the host. Run as
`python -m datacloud.devstack.nodeinit CONFIG.json`; the config is written by `node.Node`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class Stop(Exception):
    """SIGTERM or SIGINT arrived: stop kubelet, then containerd, then end (and so the namespace)."""


def _raise_stop(*_: object) -> None:
    raise Stop


def sh(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"node init: {' '.join(argv)} failed: {done.stderr.strip()}")


def mounts(cfg: dict[str, Any]) -> None:
    """Paths kubelet and containerd use whatever their flags say are covered by the node's own directories,
    visible only inside this mount namespace."""
    for source, target in cfg["binds"]:
        Path(target).mkdir(parents=True, exist_ok=True)
        Path(source).mkdir(parents=True, exist_ok=True)
        sh("mount", "--bind", source, target)
    for target in cfg["tmpfs"]:
        Path(target).mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", target)


def network(cfg: dict[str, Any]) -> None:
    """Loopback, the pods' bridge carrying the node's address, and the API server's service address."""
    bridge, node_ip, prefix = cfg["bridge"], cfg["node_ip"], cfg["pod_prefix"]
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", f"{node_ip}/{prefix}", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    # Pods reach the API server as in-cluster clients do, at the `kubernetes` Service's address; with no
    # kube-proxy on the node, one DNAT rule sends it to the forwarder listening on the node's address.
    host, port = cfg["service_ip"], cfg["apiserver_port"]
    sh("iptables", "-t", "nat", "-A", "PREROUTING", "-d", f"{host}/32", "-p", "tcp", "--dport", "443",
       "-j", "DNAT", "--to-destination", f"{node_ip}:{port}")  # fmt: skip
    sh("iptables", "-t", "nat", "-A", "OUTPUT", "-d", f"{host}/32", "-p", "tcp", "--dport", "443",
       "-j", "DNAT", "--to-destination", f"{node_ip}:{port}")  # fmt: skip


def start(argv: list[str], log: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_for_socket(path: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"node init: containerd did not open {path}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[0]).read_text())
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    running: list[subprocess.Popen[bytes]] = []
    try:
        mounts(cfg)
        network(cfg)
        containerd = start(cfg["containerd"], cfg["containerd_log"])
        running.append(containerd)
        wait_for_socket(cfg["containerd_socket"], containerd)
        running.append(start(cfg["kubelet"], cfg["kubelet_log"]))
        Path(cfg["ready_file"]).write_text(str(os.getpid()))
        watched = {containerd.pid: "containerd", running[-1].pid: "kubelet"}
        while True:  # process 1 reaps every orphan (shims re-parent here); a watched one ending ends the node
            pid, status = os.wait()
            if pid in watched:
                print(f"node init: {watched[pid]} ended ({status})", file=sys.stderr, flush=True)
                return 1
    except Stop:
        for proc in reversed(running):  # kubelet first, so it does not see containerd vanish under it
            stop(proc, 10)
        return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
