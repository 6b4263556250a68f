"""`datacloud dev run|up|down`: the local stack behind `make run`, `make up` and `make down`."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .incluster import apply_node_samples, install_operator
from .process import Managed, free_port, tool
from .prometheus import Prometheus
from .stack import OPERATOR_NAMESPACE, PROJECT_ROOT, DevStack, operator_process

START_TIMEOUT_S = 600  # ten city API servers and their fleets take a few minutes on a busy machine
DR_NAMESPACE = "datacloud-dr"  # where samples/40-drreplicas.yaml puts the replicas

TRY = """
The datacloud dev stack is up.
  kubeconfig: {kubeconfig}  (context namespace {namespace})
  API server: {apiserver}
  centres:    {centres}
  app account in every centre: {app_key} / {app_secret}  (rclone/AWS variables: {app_env})
  cities:     {cities}
  metrics:    http://127.0.0.1:{metrics}/metrics
Try:
  export KUBECONFIG={kubeconfig} PATH={bin}:$PATH
  kubectl datacloud status
  kubectl get datacloud
  kubectl get cdc,dc,drr -o wide
  kubectl explain drreplica.spec.targets
  kubectl get events -A --field-selector involvedObject.kind=DataCentre
A failover, step by step: docs/first-hour.md
"""


def city_count(text: str) -> int:
    """`--cities N`: 0 to 10 (a negative N would slice the samples from the end, not start none)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 10") from None
    if not 0 <= n <= 10:
        raise argparse.ArgumentTypeError(f"{n} is not from 0 to 10 (there are ten city samples)")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run", "up", "down", "serve"], help="what to do")
    parser.add_argument("--dir", default=str(PROJECT_ROOT / ".dev"), help="state directory (default: .dev)")
    parser.add_argument("--no-samples", action="store_true", help="do not apply samples/")
    parser.add_argument(
        "--cities",
        type=city_count,
        default=10,
        help="CityDataCloud samples given a live API server with a fleet (default: all 10; the rest are "
        "left out; about 290 MB each)",
    )
    parser.add_argument("--metrics-port", type=int, default=0, help="operator metrics port (default: free)")
    parser.add_argument(
        "--prometheus",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run Prometheus scraping the operator with the alert rules (default: on)",
    )
    parser.add_argument(
        "--node",
        action="store_true",
        help="also run a one-node cluster (kubelet on containerd) and the operator on it, helm-installed "
        "from the image built here, where the sync Jobs' pods run beside it (docs/packaging.md)",
    )


def _fresh(directory: Path) -> Path:
    state = directory / "state.json"
    if state.exists():
        raise SystemExit(f"a dev stack is already recorded in {state}; run `make down` first")
    shutil.rmtree(directory / "stack", ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _start(directory: Path, args: argparse.Namespace) -> tuple[DevStack, Managed | None, int]:
    """The stack and the operator: a process on the host, or (with --node) a pod on the node, since
    the sync Jobs' pods reach the centres only at the node's address, not the host's loopback."""
    samples, metrics_port = not args.no_samples, args.metrics_port
    if args.node:
        # No cities: their API servers listen on the host's loopback, which pods do not reach.
        # The chart brings the peering object, zone roles and finalizer policy (helm adopts nothing).
        stack = DevStack(directory / "stack", cities=0, node=True, chart_objects=False).start(samples=False)
        try:
            dev_kubeconfig(stack.kubeconfig, directory / "kubeconfig")
            app_env(stack, directory / "app.env")
            install_operator(stack, directory / "image")
            if samples:
                apply_node_samples(stack)
        except BaseException:
            stack.stop()
            raise
        return stack, None, 0
    stack = DevStack(directory / "stack", cities=args.cities, node=args.node).start(samples=samples)
    dev_kubeconfig(stack.kubeconfig, directory / "kubeconfig")
    app_env(stack, directory / "app.env")
    port = metrics_port or free_port()
    operator = operator_process(
        stack, directory / "operator.log", port, free_port(), kubeconfig=directory / "kubeconfig"
    )
    return stack, operator, port


def dev_kubeconfig(source: Path, dest: Path, namespace: str = DR_NAMESPACE) -> Path:
    """The stack's admin kubeconfig with its context set to the samples' DR namespace, so `kubectl get drr`
    and `datacloud dr ...` find the sample replicas without `-n`, as a team's kubeconfig would."""
    config = yaml.safe_load(source.read_text())
    for entry in config.get("contexts") or []:
        entry.setdefault("context", {})["namespace"] = namespace
    dest.write_text(yaml.safe_dump(config))
    dest.chmod(0o600)
    return dest


def app_env(stack: DevStack, path: Path) -> Path:
    """Shell variables for the application account: an rclone remote `app:` (its endpoint given with
    --s3-endpoint) and the AWS variables other S3 tools read."""
    values = {
        "RCLONE_CONFIG_APP_TYPE": "s3",
        "RCLONE_CONFIG_APP_PROVIDER": "Other",
        "RCLONE_CONFIG_APP_ACCESS_KEY_ID": stack.app.access_key,
        "RCLONE_CONFIG_APP_SECRET_ACCESS_KEY": stack.app.secret_key,
        "RCLONE_CONFIG_APP_REGION": "us-east-1",
        "RCLONE_S3_NO_CHECK_BUCKET": "true",
        "AWS_ACCESS_KEY_ID": stack.app.access_key,
        "AWS_SECRET_ACCESS_KEY": stack.app.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    lines = [
        "# The dev stack's application account (not root): bucket policies and fencing apply to it.",
        *(f"export {k}={shlex.quote(v)}" for k, v in values.items()),
        "# The centres speak plain HTTP; rclone's S3 client fails on a CA bundle it cannot load into its",
        "# transport (LoadCustomCABundleError), so none is passed to it.",
        "unset AWS_CA_BUNDLE",
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


IN_CLUSTER = f"""  operator:   a pod (--node): kubectl -n {OPERATOR_NAMESPACE} logs deploy/datacloud-operator
  metrics:    kubectl -n {OPERATOR_NAMESPACE} port-forward deploy/datacloud-operator 8000
"""


def _banner(directory: Path, stack: DevStack, port: int, prometheus: Prometheus | None = None) -> str:
    info = stack.describe()
    live = info["cities"]
    cities = f"{len(live)} of 10 live: {', '.join(live)}" if live else "none live (--cities 0)"
    if 0 < len(live) < 10:
        cities += " (the other samples are left out: --cities 10 starts them all)"
    text = TRY.format(
        kubeconfig=directory / "kubeconfig",
        namespace=DR_NAMESPACE,
        apiserver=info["apiserver"],
        centres=", ".join(f"{n} {u}" for n, u in info["centres"].items()),
        app_key=info["app"]["accessKeyId"],
        app_secret=info["app"]["secretAccessKey"],
        app_env=directory / "app.env",
        cities=cities,
        metrics=port,
        bin=f"{Path(sys.executable).parent}:{Path(tool('kubectl')).parent}",
    )
    at = f"  metrics:    http://127.0.0.1:{port}/metrics\n"
    if not port:
        return text.replace(at, IN_CLUSTER)
    if prometheus is None:
        return text
    return text.replace(at, f"{at}  prometheus: {prometheus.url}  (alerts: {prometheus.url}/api/v1/alerts)\n")


def _prometheus(directory: Path, args: argparse.Namespace, port: int) -> Prometheus | None:
    """Prometheus scraping the operator's metrics port, when asked for (`--prometheus`, the default) and the
    operator runs on the host (with --node its metrics are in the pod: docs/packaging.md)."""
    if not args.prometheus or not port:
        return None
    return Prometheus(directory / "prometheus", [f"127.0.0.1:{port}"]).start()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _stop_like_ctrl_c() -> None:
    """SIGTERM, SIGHUP (the terminal closed) and, on Linux, the end of the parent process (`make run`
    killed: make does not pass signals on) stop the stack as Ctrl-C does, instead of leaving it running."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run(args: argparse.Namespace) -> int:
    _stop_like_ctrl_c()
    directory = _fresh(Path(args.dir).resolve())
    stack, operator, port = _start(directory, args)
    prometheus = None
    try:
        prometheus = _prometheus(directory, args, port)
        print(_banner(directory, stack, port, prometheus), flush=True)
        print("Operator logs follow; Ctrl-C stops everything.\n", flush=True)
        if operator is None:  # in the cluster: its log, through the API server and kubelet
            argv = [tool("kubectl"), "--kubeconfig", str(stack.kubeconfig), "-n", OPERATOR_NAMESPACE]
            subprocess.run(
                [*argv, "rollout", "status", "deploy/datacloud-operator", "--timeout=300s"], check=False
            )
            proc = subprocess.Popen(
                [*argv, "logs", "-f", "deploy/datacloud-operator"], start_new_session=True
            )
        else:  # the operator runs in the foreground of this terminal, its output straight to it
            operator.log = Path("/dev/stdout")
            proc = subprocess.Popen(operator.argv, env=operator.env, start_new_session=True)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            return 0
    finally:
        if prometheus is not None:
            prometheus.stop()
        stack.stop()
        print("dev stack stopped", flush=True)


def serve(args: argparse.Namespace) -> int:
    """The background holder of `make up`: start everything, write state, wait for SIGTERM."""
    directory = Path(args.dir).resolve()
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    stack, operator, port = _start(directory, args)
    prometheus = None
    try:
        if operator is not None:
            operator.start()
        prometheus = _prometheus(directory, args, port)
        info = {
            **stack.describe(),
            "holder": os.getpid(),
            "operator": operator.pid if operator is not None else None,
            "metrics_port": port,
            "banner": _banner(directory, stack, port, prometheus),
        }
        if prometheus is not None:
            info["pids"] = [*info["pids"], prometheus.pid]
            info["prometheus"] = prometheus.url
        (directory / "state.json").write_text(json.dumps(info, indent=2))
        while not stopping:
            if operator is not None and not operator.alive():
                operator.start()  # keep the operator up like a Deployment would
            time.sleep(0.5)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if operator is not None:
            operator.stop()
        stack.stop()
        (directory / "state.json").unlink(missing_ok=True)
    return 0


def up(args: argparse.Namespace) -> int:
    directory = _fresh(Path(args.dir).resolve())
    argv = (
        [
            sys.executable,
            "-m",
            "datacloud",
            "dev",
            "serve",
            "--dir",
            str(directory),
            "--metrics-port",
            str(args.metrics_port),
            "--cities",
            str(args.cities),
        ]
        + (["--no-samples"] if args.no_samples else [])
        + ([] if args.prometheus else ["--no-prometheus"])
        + (["--node"] if args.node else [])
    )
    log = (directory / "serve.log").open("ab")
    holder = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    state = directory / "state.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not state.exists():
        if holder.poll() is not None or time.monotonic() > deadline:
            print(f"dev stack failed to start; see {directory / 'serve.log'}", file=sys.stderr)
            print((directory / "serve.log").read_text()[-3000:], file=sys.stderr)
            if holder.poll() is None:
                holder.terminate()
            return 1
        time.sleep(0.3)
    print(json.loads(state.read_text())["banner"])
    print("Stop it with `make down`.")
    return 0


def down(args: argparse.Namespace) -> int:
    state = Path(args.dir).resolve() / "state.json"
    if not state.exists():
        print("no dev stack is running")
        return 0
    info = json.loads(state.read_text())
    holder = int(info["holder"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(holder, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(holder) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in [holder, info.get("operator"), *info.get("pids", [])]:
        if pid and _alive(int(pid)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
    state.unlink(missing_ok=True)
    print("dev stack stopped")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours would still "exist"; it is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def main(args: argparse.Namespace) -> int:
    action = {"run": run, "up": up, "down": down, "serve": serve}[args.action]
    return action(args)
