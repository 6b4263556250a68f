"""CityDataCloud: one city's cloud, federated under the province and held to its baseline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import (
    CityCode,
    Duration,
    Label,
    LocalizedName,
    LooseModel,
    Model,
    Name,
    SecretKey,
    StatusBase,
    cel,
    durations_valid,
    with_rules,
)


class KubeconfigSecretRef(Model):
    """The Secret holding a kubeconfig for the city's Kubernetes API."""

    name: Name = Field(description="Name of the Secret.")
    namespace: Label = Field(description="Namespace of the Secret.")
    key: SecretKey = Field(default="kubeconfig", description="Key in the Secret holding the kubeconfig.")


class ClusterAccess(Model):
    """How the operator reaches the city's Kubernetes API."""

    kubeconfig_secret_ref: KubeconfigSecretRef = Field(description="Secret with the city's kubeconfig.")


class Baseline(Model):
    """Which provincial baseline profile the city is held to."""

    profile: Name = Field(default="fujian-provincial", description="Baseline profile name.")
    version: str = Field(
        default="v1", pattern=r"^v[0-9]+(\.[0-9]+)*$", description="Profile version, e.g. v1 or v1.2."
    )
    config_map: Name | None = Field(
        default=None,
        description="Optional ConfigMap in the operator namespace overriding the built-in profile checks.",
    )


PERIOD_MIN = "1s"
PERIOD_MIN_S = 1.0


class Heartbeat(Model):
    """How often the city is contacted and how long it may stay silent before it is unavailable."""

    model_config = with_rules(
        cel(
            durations_valid("self.grace", "self.period")
            + " || duration(self.grace) >= duration(self.period)",
            "heartbeat.grace must be at least heartbeat.period",
        ),
        # A period of 0s (or 1ms) ran the heartbeat back to back: the city's API server asked and the
        # status written as fast as one worker could.
        cel(
            durations_valid("self.period") + f" || duration(self.period) >= duration('{PERIOD_MIN}')",
            f"heartbeat.period must be at least {PERIOD_MIN}",
        ),
    )

    period: Duration = Field(default="30s", description="Time between heartbeats.")
    grace: Duration = Field(default="90s", description="Silence tolerated before the city is Unavailable.")


class CityDataCloudSpec(Model):
    """A city data cloud built to the provincial architecture."""

    city_code: CityCode = Field(description="Administrative division code of the city, e.g. 350200 (Xiamen).")
    display_name: LocalizedName = Field(description="The city's name in Chinese and English.")
    centres: list[Name] = Field(
        default_factory=list,
        max_length=16,
        description="Names of the DataCentres serving this city.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    cluster: ClusterAccess = Field(description="Access to the city's Kubernetes API.")
    baseline: Baseline = Field(default_factory=Baseline, description="Provincial baseline profile.")
    heartbeat: Heartbeat = Field(default_factory=Heartbeat, description="Heartbeat period and grace.")


class NodeSummary(LooseModel):
    """Node counts of the city cluster."""

    total: int = Field(default=0, description="All nodes.")
    ready: int = Field(default=0, description="Nodes whose Ready condition is True.")
    schedulable: int = Field(default=0, description="Ready nodes that are not cordoned.")
    cordoned: int = Field(default=0, description="Nodes marked unschedulable.")


class ResourceSummary(LooseModel):
    """Resource totals by resource name (cpu, memory, nvidia.com/gpu, ...), as quantities."""

    capacity: dict[str, str] = Field(default_factory=dict, description="Sum of node capacity.")
    allocatable: dict[str, str] = Field(default_factory=dict, description="Sum of node allocatable.")
    schedulable: dict[str, str] = Field(
        default_factory=dict, description="Sum of allocatable of nodes that are Ready and not cordoned."
    )
    requested: dict[str, str] = Field(
        default_factory=dict, description="Sum of requests of live (not terminated) pods."
    )
    used: dict[str, str] = Field(default_factory=dict, description="Measured use, where known.")


class PodSummary(LooseModel):
    """Pod counts of the city cluster."""

    live: int = Field(default=0, description="Pods not terminated (phase other than Succeeded or Failed).")
    unscheduled: int = Field(default=0, description="Live pods not yet bound to a node.")


class Accelerator(LooseModel):
    """Accelerators of one model."""

    model: str = Field(
        description="Product model from the node label <resource>.product (e.g. nvidia.com/gpu.product), "
        "or unknown."
    )
    resource: str = Field(description="Extended resource name, e.g. nvidia.com/gpu.")
    capacity: int = Field(default=0, description="Devices in capacity.")
    allocatable: int = Field(default=0, description="Devices allocatable.")
    requested: int = Field(default=0, description="Devices requested by live pods bound to such nodes.")


class FailedCheck(LooseModel):
    """A baseline check the city does not pass."""

    id: str = Field(description="Check id, e.g. FJ-K8S-001.")
    severity: str = Field(description="critical, high, medium or low.")
    message: str = Field(description="What was found.")


class Compliance(LooseModel):
    """Compliance with the provincial baseline."""

    profile: str | None = Field(default=None, description="Profile evaluated.")
    version: str | None = Field(default=None, description="Profile version evaluated.")
    score: int | None = Field(default=None, description="Percentage of checks passed, 0 to 100.")
    passed: int | None = Field(default=None, description="Checks passed.")
    total: int | None = Field(default=None, description="Checks evaluated.")
    evaluated_at: str | None = Field(default=None, description="When the checks last ran.")
    failed_checks: list[FailedCheck] = Field(default_factory=list, description="Checks not passed.")


class CityDataCloudStatus(StatusBase):
    """Conditions: Available, BaselineCompliant, CensusFresh."""

    phase: Literal["Available", "Unavailable", "Invalid"] | None = Field(
        default=None, description="Available when the city answers; Invalid when the spec is not."
    )

    kubernetes_version: str | None = Field(default=None, description="The city API server's version.")
    last_heartbeat_time: str | None = Field(default=None, description="Last successful contact.")
    last_summary_time: str | None = Field(
        default=None, description="When the node and resource summary was last known current."
    )
    nodes: NodeSummary | None = Field(default=None, description="Node counts.")
    pods: PodSummary | None = Field(default=None, description="Pod counts.")
    resources: ResourceSummary | None = Field(default=None, description="Resource totals.")
    accelerators: list[Accelerator] | None = Field(default=None, description="Accelerators by model.")
    compliance: Compliance | None = Field(default=None, description="Baseline compliance.")
