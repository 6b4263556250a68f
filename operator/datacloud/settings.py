"""The operator's settings from its environment: every `DATACLOUD_*` variable, defined in one place.

Read when asked (`current()`), never at import, so the command line (which may set a variable before
starting the operator) and tests that set one see it take effect. A malformed value is refused with the
variable's name, at the first read, rather than surfacing later as a bare `int()` error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import __version__

DEFAULT_IMAGE = f"datacloud/operator:{__version__}"  # what the Dockerfile builds for this version


class SettingsError(ValueError):
    """A DATACLOUD_* variable holds a value the operator cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    namespace: str
    """DATACLOUD_NAMESPACE: the operator's own Secrets and ConfigMaps (baselines, census reports)."""
    image: str
    """DATACLOUD_IMAGE: the image of the sync Jobs a DRReplica starts (the operator's own)."""
    priority: int | None
    """DATACLOUD_PRIORITY: this replica's kopf peering priority; unset, a random one is drawn at start."""
    workers: int
    """DATACLOUD_WORKERS: kopf's handler thread pool (handlers only hand objects to the runtimes' lanes)."""
    zone_workers: int
    """DATACLOUD_ZONE_WORKERS: threads reconciling DataZones in parallel."""
    replica_workers: int
    """DATACLOUD_REPLICA_WORKERS: threads driving DRReplicas."""
    centre_workers: int
    """DATACLOUD_CENTRE_WORKERS: threads probing DataCentres."""
    city_workers: int
    """DATACLOUD_CITY_WORKERS: threads heartbeating CityDataClouds."""
    census_workers: int
    """DATACLOUD_CENSUS_WORKERS: threads running ComputeCensuses."""
    follow_workers: int
    """DATACLOUD_FOLLOW_WORKERS: threads copying for every replica's continuous followers."""
    scan_workers: int
    """DATACLOUD_SCAN_WORKERS: threads listing for those followers."""
    log_level: str
    """DATACLOUD_LOG_LEVEL: the log level of `datacloud sync` (the replication command)."""
    events_port: int | None
    """DATACLOUD_EVENTS_PORT: where centres' bucket notifications are received; unset, none are."""
    events_address: str
    """DATACLOUD_EVENTS_ADDRESS: the address that receiver listens on."""
    tools_bin: Path
    """DATACLOUD_TOOLS_BIN: the real components the dev stack and tests run (kube-apiserver, versitygw…)."""
    tools_cache: Path
    """DATACLOUD_TOOLS_CACHE: where tools/build.sh builds those components and the dev stack its images;
    the default of DATACLOUD_TOOLS_BIN is its bin/."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        cache = Path(env.get("DATACLOUD_TOOLS_CACHE") or Path.home() / ".cache/datacloud-tools")
        return cls(
            namespace=env.get("DATACLOUD_NAMESPACE") or "datacloud-system",
            image=env.get("DATACLOUD_IMAGE") or DEFAULT_IMAGE,
            priority=_integer(env, "DATACLOUD_PRIORITY", None),
            workers=_integer(env, "DATACLOUD_WORKERS", 4, minimum=1) or 4,
            zone_workers=_integer(env, "DATACLOUD_ZONE_WORKERS", 12, minimum=1) or 12,
            replica_workers=_integer(env, "DATACLOUD_REPLICA_WORKERS", 16, minimum=1) or 16,
            centre_workers=_integer(env, "DATACLOUD_CENTRE_WORKERS", 2, minimum=1) or 2,
            city_workers=_integer(env, "DATACLOUD_CITY_WORKERS", 2, minimum=1) or 2,
            census_workers=_integer(env, "DATACLOUD_CENSUS_WORKERS", 1, minimum=1) or 1,
            follow_workers=_integer(env, "DATACLOUD_FOLLOW_WORKERS", 8, minimum=1) or 8,
            scan_workers=_integer(env, "DATACLOUD_SCAN_WORKERS", 4, minimum=1) or 4,
            log_level=(env.get("DATACLOUD_LOG_LEVEL") or "INFO").upper(),
            events_port=_integer(env, "DATACLOUD_EVENTS_PORT", None, minimum=0, maximum=65535),
            events_address=env.get("DATACLOUD_EVENTS_ADDRESS") or "127.0.0.1",
            tools_bin=Path(env.get("DATACLOUD_TOOLS_BIN") or cache / "bin"),
            tools_cache=cache,
        )


def _integer(
    env: Mapping[str, str],
    name: str,
    default: int | None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not an integer") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SettingsError(f"{name}={value} must be {bounds}")
    return value


def current() -> Settings:
    """The settings as the environment holds them now."""
    return Settings.from_env(os.environ)
