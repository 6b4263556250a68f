"""DataZone: a logically isolated zone on the provincial cloud."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from . import resources
from .common import (
    DNS_SUBDOMAIN,
    LABEL_VALUE_MAX,
    NO_CONTROL,
    IntOrLimitQuantity,
    Label,
    LooseModel,
    Model,
    StatusBase,
    cel,
    name_label_msg,
    name_label_rules,
    with_rules,
)

Port = Annotated[int, Field(ge=1, le=65535)]
# Group names as identity providers issue them, in any script (RBAC takes any string as a Group subject, and
# Fujian's departments name theirs in Chinese, e.g. 省大数据管理局-管理员): no control or bidirectional
# override characters (as in display names), and no space at either end (a binding to " admins" would grant
# nothing, silently). Kubernetes' own `system:` groups are refused (binding zone roles to
# system:unauthenticated or system:masters would open the zone or mean nothing), except
# system:authenticated, the usual "every signed-in user" viewer group.
GROUP_MSG = "must not be a system: group other than system:authenticated"
GROUP_SPACE_MSG = "must not begin or end with a space"


def _no_outer_space(value: str) -> str:
    if value.strip() != value:
        raise ValueError(GROUP_SPACE_MSG)
    return value


def _not_system(value: str) -> str:
    if value.startswith("system:") and value != "system:authenticated":
        raise ValueError(GROUP_MSG)
    return value


Group = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=NO_CONTROL,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.trim() == self", GROUP_SPACE_MSG),
                cel("!self.startsWith('system:') || self == 'system:authenticated'", GROUP_MSG),
            ]
        },
    ),
    AfterValidator(_no_outer_space),
    AfterValidator(_not_system),
]
Classification = Literal["Core", "Important", "General"]
# A zone's name is the value of the zone label on every namespace and child it owns, and label values are at
# most 63 characters; a longer name (metadata.name admits 253) could own nothing, nor be deleted by label.
NAME_MAX = LABEL_VALUE_MAX
NAME_MSG = name_label_msg("DataZone")
NAME_RULES = name_label_rules("DataZone")
# The department code is a label value too: letters, digits and inner hyphens, starting and ending with a
# letter or digit (`-x-` would make every namespace create fail).
DEPARTMENT_CODE = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$"


class Department(Model):
    """The department or data domain that owns the zone."""

    name: str = Field(
        min_length=1,
        max_length=128,
        pattern=NO_CONTROL,
        description="Department name, e.g. 省大数据管理局 (no control or bidirectional override characters).",
    )
    code: str | None = Field(
        default=None,
        pattern=DEPARTMENT_CODE,
        description="Short department code used in labels: letters, digits and inner hyphens, 1 to 32.",
    )


def _names(
    bad: Callable[[dict[str, str]], str | None], message: str
) -> Callable[[dict[str, str]], dict[str, str]]:
    def check(value: dict[str, str]) -> dict[str, str]:
        name = bad(value)
        if name is not None:
            raise ValueError(f'"{name}" {message}')
        return value

    return check


QuotaMap = Annotated[
    dict[str, IntOrLimitQuantity],
    Field(max_length=32, json_schema_extra={"x-kubernetes-validations": [resources.QUOTA_NAMES_RULE]}),
    AfterValidator(_names(resources.bad_quota_name, resources.QUOTA_MSG)),
]
ContainerMap = Annotated[
    dict[str, IntOrLimitQuantity],
    Field(max_length=32, json_schema_extra={"x-kubernetes-validations": [resources.CONTAINER_NAMES_RULE]}),
    AfterValidator(_names(resources.bad_container_name, resources.CONTAINER_MSG)),
]


class Quota(Model):
    """Zone-wide hard limits, summed over all the zone's namespaces."""

    hard: QuotaMap = Field(
        default_factory=dict,
        description="Resource name to quantity, as in a ResourceQuota (requests.cpu, pods, ...).",
    )


class Limits(Model):
    """Container defaults written into each namespace's LimitRange."""

    model_config = with_rules(*resources.LIMITS_ORDER_RULES)

    default_request: ContainerMap = Field(
        default_factory=dict, description="Default container requests, e.g. cpu: 100m."
    )
    default: ContainerMap = Field(default_factory=dict, description="Default container limits.")
    max: ContainerMap = Field(default_factory=dict, description="Largest container limits allowed.")

    @model_validator(mode="after")
    def _in_order(self) -> Limits:
        wrong = resources.misordered(
            {"defaultRequest": self.default_request, "default": self.default, "max": self.max}
        )
        if wrong is not None:
            raise ValueError(wrong)
        return self


class EgressRule(Model):
    """Egress allowed to a network block."""

    cidr: str = Field(
        max_length=64,
        description="Destination block in CIDR notation, e.g. 10.20.0.0/16.",
        json_schema_extra={
            "x-kubernetes-validations": [cel("isCIDR(self)", "must be a CIDR block such as 10.20.0.0/16")]
        },
    )
    ports: list[Port] = Field(
        default_factory=list, max_length=32, description="TCP ports allowed; empty means all ports."
    )


# A zone named in allowFrom is matched by the zone label's value in a NetworkPolicy selector: a name longer
# than a label value (no zone can have one) made the API server refuse the whole allow policy, cutting the
# zone's own namespaces off from each other.
ZoneName = Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=LABEL_VALUE_MAX)]


class Network(Model):
    """Who may reach the zone and where it may reach."""

    allow_from: list[ZoneName] = Field(
        default_factory=list,
        max_length=64,
        description="Names of other DataZones whose namespaces may open connections into this zone.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    egress: list[EgressRule] = Field(default_factory=list, max_length=64, description="Allowed egress.")


class Access(Model):
    """Groups bound to the zone's admin, editor and viewer roles in every zone namespace."""

    admins: list[Group] = Field(
        default_factory=list,
        max_length=32,
        description="Groups granted datacloud-zone-admin.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    editors: list[Group] = Field(
        default_factory=list,
        max_length=32,
        description="Groups granted datacloud-zone-editor.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    viewers: list[Group] = Field(
        default_factory=list,
        max_length=32,
        description="Groups granted datacloud-zone-viewer.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class DataZoneSpec(Model):
    """A data zone: namespaces, quota, network isolation and access, profiled by classification."""

    department: Department = Field(description="The owning department or data domain.")
    classification: Classification = Field(
        description="Core, Important or General; drives Pod Security, network defaults and DR needs."
    )
    namespaces: list[Label] = Field(
        min_length=1,
        max_length=32,
        description="Namespaces the zone creates and owns.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    quota: Quota = Field(default_factory=Quota, description="Zone-wide resource quota.")
    limits: Limits = Field(default_factory=Limits, description="Container defaults.")
    network: Network = Field(default_factory=Network, description="Network isolation.")
    access: Access = Field(default_factory=Access, description="Group access.")


class ZoneProfile(LooseModel):
    """The effective profile the classification (and the spec) gives."""

    pod_security: str | None = Field(
        default=None, description="Pod Security level enforced, audited, warned."
    )
    default_deny: list[str] = Field(
        default_factory=list, description="Traffic directions denied unless allowed (Ingress, Egress)."
    )
    dr_requirement: str | None = Field(
        default=None, description="DR targets each of the zone's data sets needs."
    )


class NamespaceNote(LooseModel):
    """A namespace the zone cannot take, or keeps although the spec no longer lists it."""

    namespace: str = Field(description="Namespace name.")
    reason: str = Field(description="One CamelCase word.")
    message: str = Field(default="", description="Why, for people.")


class NamespaceQuota(LooseModel):
    """One namespace's share of the zone quota."""

    namespace: str = Field(description="Namespace name.")
    hard: dict[str, str] = Field(default_factory=dict, description="Its ResourceQuota's hard limits now.")
    used: dict[str, str] = Field(default_factory=dict, description="Its ResourceQuota's usage.")


class QuotaStatus(LooseModel):
    """Zone quota: hard limits and usage summed over the zone's namespaces."""

    hard: dict[str, str] = Field(default_factory=dict, description="Zone hard limits.")
    used: dict[str, str] = Field(default_factory=dict, description="Usage summed over the zone's namespaces.")
    namespaces: list[NamespaceQuota] = Field(
        default_factory=list, description="Per-namespace share (hard) and usage."
    )


class DataZoneStatus(StatusBase):
    """Conditions: Ready, NamespacesSynced, Isolated, QuotaEnforced, AccessSynced, DRProtected."""

    phase: Literal["Ready", "Degraded", "Conflict", "Invalid"] | None = Field(
        default=None, description="Ready, Degraded, Conflict (a namespace it cannot take) or Invalid."
    )

    profile: ZoneProfile | None = Field(default=None, description="Effective profile.")
    namespaces: list[str] | None = Field(default=None, description="Namespaces the zone owns now.")
    retained: list[NamespaceNote] | None = Field(
        default=None,
        description="Namespaces removed from the spec but kept because they still hold something.",
    )
    conflicts: list[NamespaceNote] | None = Field(
        default=None, description="Listed namespaces the zone does not own and will not take over."
    )
    quota: QuotaStatus | None = Field(default=None, description="Quota hard vs used.")
    dr_replicas: list[str] | None = Field(
        default=None, description="DRReplicas (namespace/name) counted for this zone's DR protection."
    )
