"""The dev stack's three centres as DataCentres, and a DRReplica protecting one bucket across them.

The DR tests and the replica benchmark declare these same objects; both build them here, so a change to
the API (a new required field, a renamed one) is made once."""

from __future__ import annotations

from typing import Any

from .. import API_VERSION
from .stack import OPERATOR_NAMESPACE

ROLES = {"fz-prod": "Production", "fz-samecity-dr": "SameCityDR", "xm-remote-dr": "RemoteDR"}
CITIES = {"fz-prod": "350100", "fz-samecity-dr": "350100", "xm-remote-dr": "350200"}


FAST_PROBE = {"interval": "1s", "timeout": "1s", "failureThreshold": 2}


def datacentre(name: str, endpoint: str, probe: dict[str, Any] | None = FAST_PROBE) -> dict[str, Any]:
    """One of the stack's centres, probed every second (Down after two failures; the CRD's default probe
    when `probe` is None), credentials from the Secret the stack writes (`centre-<name>`)."""
    centre: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataCentre",
        "metadata": {"name": name},
        "spec": {
            "city": CITIES[name],
            "role": ROLES[name],
            "objectStore": {
                "endpoint": endpoint,
                "credentialsSecretRef": {"name": f"centre-{name}", "namespace": OPERATOR_NAMESPACE},
            },
        },
    }
    if probe is not None:
        centre["spec"]["probe"] = dict(probe)
    return centre


def replica(
    name: str,
    namespace: str,
    bucket: str,
    policy: str = "Manual",
    rpo: str = "10s",
    *,
    centre: str = "fz-prod",
    target: str = "same-city",
    remote: bool = True,
    down_for: str | None = "2s",
) -> dict[str, Any]:
    """`bucket` at `centre`, copied continuously (within `rpo`) to the same-city centre as `target` and,
    with `remote`, nightly to the remote one; failover `policy` Manual or Automatic (after the source is
    down for `down_for`, or the CRD's default when None)."""
    targets: list[dict[str, Any]] = [
        {"name": target, "centre": "fz-samecity-dr", "bucket": bucket, "mode": "Continuous", "rpoTarget": rpo}
    ]
    if remote:
        targets.append(
            {
                "name": "remote",
                "centre": "xm-remote-dr",
                "bucket": bucket,
                "mode": "Scheduled",
                "schedule": "0 2 * * *",
                "rpoTarget": "24h",
            }
        )
    failover: dict[str, Any] = {"policy": policy}
    if down_for is not None:
        failover["downFor"] = down_for
    return {
        "apiVersion": API_VERSION,
        "kind": "DRReplica",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"centre": centre, "bucket": bucket},
            "activeCentre": centre,
            "targets": targets,
            "failover": failover,
        },
    }
