"""What the cluster-facing commands say when the cluster cannot be used: one line and an exit code,
never a traceback (an SRE runs `datacloud dr failover` when things are already going wrong).

Only the failures of reaching and asking the API server are worded here; anything else is a bug and
keeps its traceback. The traceback of a worded failure is logged at DEBUG."""

from __future__ import annotations

import json

# Exit codes: 2 the command cannot start as given (no usable kubeconfig), 1 the cluster said no or
# could not be reached.
BAD_CONFIG = 2
FAILED = 1


def describe(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one line) for a failure to reach or use the API server; None for anything else."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError, MaxRetryError

    if isinstance(exc, ConfigException):
        return BAD_CONFIG, f"cannot use the kubeconfig: {exc} (set --kubeconfig, --context or KUBECONFIG)"
    if isinstance(exc, MaxRetryError):
        where = f"{exc.pool.host}:{exc.pool.port}" if exc.pool is not None else "the API server"
        return FAILED, f"cannot reach the API server at {where}: {_cause(exc.reason)}"
    if isinstance(exc, HTTPError):
        return FAILED, f"cannot reach the API server: {_cause(exc)}"
    if isinstance(exc, ApiException):
        return FAILED, f"the API server answered {exc.status} {exc.reason}: {_message(exc)}"
    return None


def _cause(exc: BaseException | None) -> str:
    """The innermost reason, in a few words (`connection refused`, a TLS error, a timeout)."""
    while exc is not None and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc) if exc is not None else "no answer"
    for known in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "certificate verify failed",
    ):
        if known in text:
            return known.lower() if known != "Name or service not known" else "unknown host"
    return text.rsplit(": ", 1)[-1].strip("')\"") or type(exc).__name__


def _message(exc: object) -> str:
    body = getattr(exc, "body", None)
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    return str(message or getattr(exc, "reason", "") or "no message")
