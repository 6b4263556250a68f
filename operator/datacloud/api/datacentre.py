"""DataCentre: one physical centre and the health of its object store."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from .common import (
    Duration,
    LocalizedName,
    Model,
    SecretRef,
    StatusBase,
    cel,
    durations_valid,
    new_value_rule,
    with_rules,
)

Role = Literal["Production", "SameCityDR", "RemoteDR", "Compute"]
Health = Literal["Up", "Degraded", "Down", "Unknown"]
Phase = Literal["Up", "Degraded", "Down", "Unknown", "Invalid"]  # the health, or Invalid for a bad spec


class CredentialsRef(SecretRef):
    """The Secret holding the object store's access key pair."""

    access_key_id_key: str = Field(
        default="accessKeyId", min_length=1, description="Key in the Secret holding the access key id."
    )
    secret_access_key_key: str = Field(
        default="secretAccessKey",
        min_length=1,
        description="Key in the Secret holding the secret access key.",
    )


ENDPOINT = r"^https?://[^\s/]+(/.*)?$"
PORT = r"^0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
# An endpoint whose port, if any, is 1 to 65535 (the host is judged by the host rule).
WITH_PORT = r"^https?://(\[[^\]/]*\]|[^/:\[\]]*)(:" + PORT[1:-1] + r")?(/.*)?$"
PORT_MSG = "must have a port from 1 to 65535, e.g. http://127.0.0.1:7070"
URL_MSG = "must be a URL: a host name or address and an optional port, e.g. http://127.0.0.1:7070"
HOST_MSG = "must name a host, e.g. https://oss.fz-prod.fj.gov.cn"
# A user and password in the URL would be shown wherever the endpoint is (status, Events, logs).
USER_MSG = (
    "must not carry a user or password: put credentials in the Secret named by "
    "objectStore.credentialsSecretRef"
)
EXTRA_MSG = "must not carry a query or fragment (? or #)"


def _usable_endpoint(url: str) -> str:
    """What the schema's rules hold, checked again when the operator reads a centre admitted before them:
    the port was read first by the probe (`http://h:abc` raised on every probe, with no status)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        raise ValueError(URL_MSG) from None
    try:
        port = parts.port
    except ValueError:
        raise ValueError(PORT_MSG) from None
    if "@" in parts.netloc:
        raise ValueError(USER_MSG)
    if parts.netloc.endswith(":") or (
        port is not None and not re.fullmatch(PORT, parts.netloc.rpartition(":")[2])
    ):
        raise ValueError(PORT_MSG)
    if not parts.hostname:
        raise ValueError(HOST_MSG)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError(EXTRA_MSG)
    return url


Endpoint = Annotated[
    str,
    Field(
        pattern=ENDPOINT,
        max_length=512,
        json_schema_extra={
            "x-kubernetes-validations": [
                new_value_rule("!self.matches('^https?://[^/]*@')", USER_MSG),
                new_value_rule("!self.matches('[?#]')", EXTRA_MSG),
                new_value_rule(
                    f"!self.matches({ENDPOINT!r}) || self.matches('^https?://[^/]*@') || isURL(self)",
                    URL_MSG,
                ),
                new_value_rule("!isURL(self) || url(self).getHostname() != ''", HOST_MSG),
                # On the whole text: a regex on url(self).getPort(), of no known length, cost too much.
                new_value_rule(
                    f"!isURL(self) || self.matches('^https?://[^/]*@|[?#]') || self.matches({WITH_PORT!r})",
                    PORT_MSG,
                ),
            ]
        },
    ),
    AfterValidator(_usable_endpoint),
]


class ObjectStore(Model):
    """The centre's S3-compatible object store."""

    model_config = with_rules(
        cel(
            "!has(self.accessKeyId) && !has(self.secretAccessKey)",
            "credentials must not be written inline: put them in a Secret and name it in "
            "objectStore.credentialsSecretRef",
        )
    )

    endpoint: Endpoint = Field(
        description="S3 endpoint URL, e.g. https://oss.fz-prod.fj.gov.cn or http://127.0.0.1:7070: a host "
        "and optional port (1 to 65535), no user, password, query or fragment.",
    )
    region: str = Field(default="us-east-1", min_length=1, max_length=64, description="S3 signing region.")
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


__all__ = ["DataCentreSpec", "DataCentreStatus", "Health", "Phase", "Role"]
