"""Resolving DataCentre names to their object-store endpoints (credentials read from the Secret)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .. import settings
from ..adapters import s3
from ..adapters.kube import Kube, NotFound
from ..api.datacentre import DataCentreSpec

PLURAL = "datacentres"


class CentreUnavailable(LookupError):
    """A centre cannot be used: `reason` is one CamelCase word for conditions, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Centre:
    name: str
    city: str
    role: str
    health: str
    endpoint: s3.S3Endpoint
    # An ordinary account of the store (Secret keys probeAccessKeyId/probeSecretAccessKey), with which
    # the operator measures whether a copy accepts writes; None when the Secret names none.
    probe: s3.S3Credentials | None = None


PROBE_KEYS = ("probeAccessKeyId", "probeSecretAccessKey")


class CentreReader(Protocol):
    """Where DataCentres and their Secrets are read from: the API server (`Kube`) or a `CentreCache`."""

    def get(self, plural: str, name: str) -> dict[str, Any]: ...

    def secret_data(self, namespace: str, name: str) -> dict[str, str]: ...


def secret_refused(where: str, e: ApiException) -> str:
    """Why the API server would not give a Secret, in words fit for a condition: its status and, for a
    403, the likely cause (the chart lets the operator read Secrets in its own namespace only)."""
    said = f"{where} could not be read: {e.status} {e.reason}"
    if e.status == 403:
        said += (
            f" (the operator reads Secrets in its namespace, {settings.current().namespace}: put it there)"
        )
    return said


def credentials(kube: CentreReader, spec: DataCentreSpec) -> s3.S3Credentials:
    ref = spec.object_store.credentials_secret_ref
    try:
        data = kube.secret_data(ref.namespace, ref.name)
    except NotFound:
        raise CentreUnavailable(
            "SecretNotFound", f"credentials Secret {ref.namespace}/{ref.name} not found"
        ) from None
    except ApiException as e:  # 403 for a namespace the operator may not read, 5xx: never a traceback
        raise CentreUnavailable(
            "SecretUnreadable", secret_refused(f"credentials Secret {ref.namespace}/{ref.name}", e)
        ) from None
    missing = [k for k in (ref.access_key_id_key, ref.secret_access_key_key) if not data.get(k)]
    if missing:
        raise CentreUnavailable(
            "SecretKeyMissing", f"Secret {ref.namespace}/{ref.name} has no key {', '.join(missing)}"
        )
    for key in (ref.access_key_id_key, ref.secret_access_key_key):
        flaw = s3.key_flaw(data[key])
        if flaw:
            raise CentreUnavailable(
                "SecretValueInvalid", f"Secret {ref.namespace}/{ref.name}: the value of {key} {flaw}"
            )
    return s3.S3Credentials(data[ref.access_key_id_key], data[ref.secret_access_key_key])


def probe_credentials(kube: CentreReader, spec: DataCentreSpec) -> s3.S3Credentials | None:
    """The probe account's key pair, when the centre's Secret holds one."""
    ref = spec.object_store.credentials_secret_ref
    try:
        data = kube.secret_data(ref.namespace, ref.name)
    except (NotFound, ApiException):
        return None
    if not all(data.get(k) for k in PROBE_KEYS):
        return None
    return s3.S3Credentials(data[PROBE_KEYS[0]], data[PROBE_KEYS[1]])


def resolve(kube: CentreReader, name: str) -> Centre:
    """The centre's role, health and endpoint; CentreUnavailable with a reason when it can't be used."""
    if isinstance(kube, CentreCache):
        return kube.resolve(name)
    return _resolve(kube, name)


def _resolve(kube: CentreReader, name: str) -> Centre:
    try:
        body = kube.get(PLURAL, name)
    except NotFound:
        raise CentreUnavailable("CentreNotFound", f"DataCentre {name} does not exist") from None
    try:
        spec = DataCentreSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        raise CentreUnavailable(
            "CentreInvalid", f"DataCentre {name} has an invalid spec: {e.errors()[0]['msg']}"
        ) from None
    health = str((body.get("status") or {}).get("health") or "Unknown")
    endpoint = s3.S3Endpoint(spec.object_store.endpoint, spec.object_store.region, credentials(kube, spec))
    return Centre(name, spec.city, spec.role, health, endpoint, probe_credentials(kube, spec))


class HealthChanges:
    """A counter of centre health transitions seen by this operator's probes. Subscribers (the DRReplica
    roster) are told at once, so a failover starts when a centre goes Down, not at a replica's next run."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = 0
        self._subscribers: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None], first: bool = False) -> None:
        """`first`: before the others (a cache to drop before the replicas that read it are woken)."""
        with self._cond:
            self._subscribers.insert(0 if first else len(self._subscribers), callback)

    def changed(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback()

    def wait(self, seen: int, timeout: float) -> bool:
        """True when a change newer than `seen` happened, within `timeout` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self.version != seen, timeout)


HEALTH_CHANGES = HealthChanges()


class CentreCache:
    """DataCentres and their Secrets as read lately, for readers that need them on every run: a thousand
    DRReplicas must not each read the same three centres from the API server every time. An entry is
    read again after `ttl` seconds (a rotated Secret, a changed role), and everything is read again after
    a health change (the probe writes the new health before it announces the change).

    A read that was in flight when the cache was cleared is returned to its caller but not kept: it may
    hold the health from before the change, and kept it would be served for `ttl` seconds to the runs
    the change woke (a replica created while its target centre came back then saw the centre Down
    until a timer ran it again, a minute later)."""

    def __init__(self, kube: Kube, ttl: float = 10.0) -> None:
        self.kube, self.ttl = kube, ttl
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._cleared = 0  # how many times the cache was cleared: a read started before a clear is not kept

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._cleared += 1

    def _cached(self, key: tuple[str, str, str], read: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            cleared = self._cleared
        if hit is not None and now - hit[0] < self.ttl:
            if isinstance(hit[1], LookupError):
                raise hit[1]
            return hit[1]
        try:
            value = read()
        except LookupError as e:  # NotFound, remembered too: a missing centre is asked about every ttl
            value = e
        with self._lock:
            if self._cleared == cleared:
                self._entries[key] = (now, value)
        if isinstance(value, LookupError):
            raise value
        return value

    def resolve(self, name: str) -> Centre:
        """`resolve` through the cache, the result (or why the centre cannot be used) cached too."""
        centre: Centre = self._cached(("centre", "", name), lambda: _resolve(self, name))
        return centre

    def get(self, plural: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self._cached(("get", plural, name), lambda: self.kube.get(plural, name))
        return body

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        data: dict[str, str] = self._cached(
            ("secret", namespace, name), lambda: self.kube.secret_data(namespace, name)
        )
        return data
