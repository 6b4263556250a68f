"""DataCentre: one physical centre and the health of its object store."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    Duration,
    LocalizedName,
    Model,
    Region,
    SecretKey,
    SecretRef,
    StatusBase,
    cel,
    durations_valid,
    with_rules,
)
from .urls import AT_ROOT, EXTRA_MSG, HOST_MSG, PATH_MSG, PORT_MSG, URL_MSG, url_check, url_field

Role = Literal["Production", "SameCityDR", "RemoteDR", "Compute"]
Health = Literal["Up", "Degraded", "Down", "Unknown"]
Phase = Literal["Up", "Degraded", "Down", "Unknown", "Invalid"]  # the health, or Invalid for a bad spec


class CredentialsRef(SecretRef):
    """The Secret holding the object store's access key pair."""

    access_key_id_key: SecretKey = Field(
        default="accessKeyId", description="Key in the Secret holding the access key id."
    )
    secret_access_key_key: SecretKey = Field(
        default="secretAccessKey", description="Key in the Secret holding the secret access key."
    )


# A user and password in the URL would be shown wherever the endpoint is (status, Events, logs).
USER_MSG = (
    "must not carry a user or password: put credentials in the Secret named by "
    "objectStore.credentialsSecretRef"
)


class ObjectStore(Model):
    """The centre's S3-compatible object store."""

    model_config = with_rules(
        cel(
            "!has(self.accessKeyId) && !has(self.secretAccessKey)",
            "credentials must not be written inline: put them in a Secret and name it in "
            "objectStore.credentialsSecretRef",
        )
    )

    endpoint: Annotated[
        str,
        url_field(
            USER_MSG,
            "S3 endpoint URL, e.g. https://oss.fz-prod.fj.gov.cn or http://127.0.0.1:7070: a host and "
            "optional port (1 to 65535), no path, user, password, query or fragment.",
            root_only=True,
        ),
        url_check(USER_MSG),
        AT_ROOT,
    ]
    region: Region = Field(
        default="us-east-1",
        description="S3 signing region: letters, digits and inner hyphens, e.g. us-east-1 or cn-fujian-1.",
    )
    credentials_secret_ref: CredentialsRef = Field(
        description="Secret with the access key pair (keys accessKeyId and secretAccessKey by default)."
    )
    access_key_id: str | None = Field(
        default=None, description="Refused: credentials belong in the Secret named by credentialsSecretRef."
    )
    secret_access_key: str | None = Field(
        default=None, description="Refused: credentials belong in the Secret named by credentialsSecretRef."
    )


class Probe(Model):
    """How the operator probes the centre's object store."""

    model_config = with_rules(
        cel(
            durations_valid("self.timeout", "self.interval")
            + " || duration(self.timeout) <= duration(self.interval)",
            "probe.timeout must not be longer than probe.interval",
        ),
        cel(
            durations_valid("self.interval") + " || duration(self.interval) >= duration('1s')",
            "probe.interval must be at least 1s",
        ),
    )

    interval: Duration = Field(default="2s", description="Time between probes, e.g. 2s.")
    timeout: Duration = Field(default="1s", description="How long one probe may take before it fails.")
    failure_threshold: int = Field(
        default=3, ge=1, le=100, description="Consecutive failed probes before the centre is Down."
    )
    degraded_latency: Duration = Field(
        default="500ms", description="A successful probe slower than this marks the centre Degraded."
    )


class DataCentreSpec(Model):
    """A physical data centre of the provincial topology."""

    city: str = Field(
        pattern=r"^35[0-9]{4}$",
        description="Administrative division code of the city the centre stands in, e.g. 350100 (Fuzhou).",
    )
    role: Role = Field(
        description="Production, SameCityDR (real-time DR), RemoteDR (scheduled full DR) or Compute."
    )
    display_name: LocalizedName | None = Field(default=None, description="Name shown in reports.")
    object_store: ObjectStore = Field(description="The centre's S3-compatible object store.")
    probe: Probe = Field(default_factory=Probe, description="Health probing of the object store.")


class DataCentreStatus(StatusBase):
    """Observed health of the centre. Conditions: Ready (the store answers), Probing."""

    phase: Phase | None = Field(default=None, description="The health, or Invalid when the spec is not.")
    health: Health | None = Field(default=None, description="Up, Degraded, Down or Unknown.")
    last_probe_time: str | None = Field(default=None, description="When the last probe finished.")
    last_probe_latency_ms: int | None = Field(
        default=None, description="Latency of the last probe in milliseconds."
    )
    consecutive_failures: int | None = Field(default=None, description="Failed probes in a row.")
    last_transition_time: str | None = Field(default=None, description="When health last changed.")


__all__ = [
    "EXTRA_MSG",
    "HOST_MSG",
    "PATH_MSG",
    "PORT_MSG",
    "URL_MSG",
    "USER_MSG",
    "DataCentreSpec",
    "DataCentreStatus",
    "Health",
    "Phase",
    "Role",
]
