"""Resolving DataCentre names to their object-store endpoints (credentials read from the Secret)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

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


def credentials(kube: Kube, spec: DataCentreSpec) -> s3.S3Credentials:
    ref = spec.object_store.credentials_secret_ref
    try:
        data = kube.secret_data(ref.namespace, ref.name)
    except NotFound:
        raise CentreUnavailable(
            "SecretNotFound", f"credentials Secret {ref.namespace}/{ref.name} not found"
        ) from None
    missing = [k for k in (ref.access_key_id_key, ref.secret_access_key_key) if not data.get(k)]
    if missing:
        raise CentreUnavailable(
            "SecretKeyMissing", f"Secret {ref.namespace}/{ref.name} has no key {', '.join(missing)}"
        )
    return s3.S3Credentials(data[ref.access_key_id_key], data[ref.secret_access_key_key])


def resolve(kube: Kube, name: str) -> Centre:
    """The centre's role, health and endpoint; CentreUnavailable with a reason when it can't be used."""
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
    return Centre(name, spec.city, spec.role, health, endpoint)
