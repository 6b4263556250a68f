"""kubectl's conventions for the cluster-facing commands: `--kubeconfig`, `--context`, and a namespace
taken from the kubeconfig's current context unless `-n NAMESPACE` or `-A` says otherwise."""

from __future__ import annotations

import argparse
import math

import kubernetes

from ..adapters.kube import Kube

DEFAULT_NAMESPACE = "default"  # what kubectl uses when the context names none


def add_kube_arguments(
    parser: argparse.ArgumentParser, *, namespaced: bool = True, all_namespaces: bool = False
) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context to use (default: the current context)")
    if namespaced:
        parser.add_argument(
            "-n",
            "--namespace",
            help="namespace (default: the namespace of the kubeconfig context, else default)",
        )
    if all_namespaces:
        parser.add_argument(
            "-A", "--all-namespaces", action="store_true", help="every namespace, not only the context's"
        )


def wait_seconds(text: str) -> float:
    """`--timeout`: a finite number of seconds above zero (nan, inf and 0 would never wait or never stop)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return seconds


def context_namespace(kubeconfig: str | None, context: str | None = None) -> str:
    """The namespace the kubeconfig's (current or named) context sets, else `default`, as kubectl does."""
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError):
        return DEFAULT_NAMESPACE
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else DEFAULT_NAMESPACE


def namespace(args: argparse.Namespace) -> str | None:
    """The namespace to work in; None for every namespace (`-A`)."""
    if getattr(args, "all_namespaces", False):
        return None
    given: str | None = getattr(args, "namespace", None)
    return given or context_namespace(args.kubeconfig, getattr(args, "context", None))


def client(args: argparse.Namespace) -> Kube:
    return Kube.from_kubeconfig(args.kubeconfig, context=getattr(args, "context", None))
