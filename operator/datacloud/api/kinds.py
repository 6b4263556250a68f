"""The five kinds: their names, scope, printer columns and models, in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .census import NAME_RULES as CENSUS_NAME_RULES
from .census import ComputeCensusSpec, ComputeCensusStatus
from .citydatacloud import CityDataCloudSpec, CityDataCloudStatus
from .datacentre import DataCentreSpec, DataCentreStatus
from .datazone import NAME_RULES as ZONE_NAME_RULES
from .datazone import DataZoneSpec, DataZoneStatus
from .drreplica import NAME_RULES as REPLICA_NAME_RULES
from .drreplica import DRReplicaSpec, DRReplicaStatus


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[Column, ...] = field(default_factory=tuple)
    rules: tuple[dict[str, Any], ...] = ()  # CEL rules on the whole object (metadata.name)

    @property
    def singular(self) -> str:
        return self.kind.lower()


AGE = Column("Age", ".metadata.creationTimestamp", "date")
PHASE = Column("Phase", ".status.phase", description="One-word state.")

DATACENTRE = Kind(
    "DataCentre",
    "datacentres",
    ("dc",),
    False,
    DataCentreSpec,
    DataCentreStatus,
    "A physical data centre and the health of its object store.",
    (
        Column("City", ".spec.city", description="Division code."),
        Column("Role", ".spec.role"),
        Column("Health", ".status.health"),
        Column("Latency-ms", ".status.lastProbeLatencyMs", "integer"),
        Column(
            "Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Why it is (not) Ready."
        ),
        Column("Failures", ".status.consecutiveFailures", "integer", priority=1),
        Column("Message", '.status.conditions[?(@.type=="Ready")].message', priority=1),
        Column("Endpoint", ".spec.objectStore.endpoint", priority=1),
        AGE,
    ),
)
CITYDATACLOUD = Kind(
    "CityDataCloud",
    "citydataclouds",
    ("cdc",),
    False,
    CityDataCloudSpec,
    CityDataCloudStatus,
    "A city data cloud federated under the province and held to the provincial baseline.",
    (
        Column("City", ".spec.displayName.zh"),
        Column("Code", ".spec.cityCode"),
        Column("Available", '.status.conditions[?(@.type=="Available")].status'),
        Column(
            "Reason", '.status.conditions[?(@.type=="Available")].reason', description="Why (not) Available."
        ),
        Column("Nodes", ".status.nodes.ready", "integer", "Ready nodes."),
        Column("Baseline", ".status.compliance.score", "integer", "Baseline score, percent."),
        Column("Kubernetes", ".status.kubernetesVersion", priority=1),
        Column("Message", '.status.conditions[?(@.type=="Available")].message', priority=1),
        AGE,
    ),
)
DATAZONE = Kind(
    "DataZone",
    "datazones",
    ("dz",),
    False,
    DataZoneSpec,
    DataZoneStatus,
    "A logically isolated data zone on the provincial cloud.",
    (
        Column("Department", ".spec.department.name"),
        Column("Class", ".spec.classification"),
        Column("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        Column("DR", '.status.conditions[?(@.type=="DRProtected")].status', description="DRProtected."),
        PHASE,
        AGE,
    ),
    ZONE_NAME_RULES,
)
DRREPLICA = Kind(
    "DRReplica",
    "drreplicas",
    ("drr",),
    True,
    DRReplicaSpec,
    DRReplicaStatus,
    "Two-locations-three-centres DR protection of one object-store data set.",
    (
        Column("Source", ".spec.source.centre"),
        Column("Active", ".status.activeCentre"),
        PHASE,
        Column("Epoch", ".status.fencingEpoch", "integer", "Fencing epoch."),
        Column("RPO-OK", '.status.conditions[?(@.type=="RPOCompliant")].status'),
        Column("Worst-Lag-s", ".status.worstLagSeconds", "number", "The largest lag of any target, seconds."),
        Column("Last-Full-Sync", ".status.lastFullSyncTime", "date", "Oldest latest good full copy."),
        Column("Worst-Target", ".status.worstLagTarget", priority=1),
        Column("Est-Loss-s", ".status.estimatedDataLossSeconds", "number", "Loss of a failover now.", 1),
        Column("Reason", '.status.conditions[?(@.type=="Ready")].reason', priority=1),
        Column("Paused", ".spec.paused", "boolean", priority=1),
        AGE,
    ),
    REPLICA_NAME_RULES,
)
COMPUTECENSUS = Kind(
    "ComputeCensus",
    "computecensuses",
    ("census",),
    False,
    ComputeCensusSpec,
    ComputeCensusStatus,
    "A scheduled census of the province's compute, with reports for planners.",
    (
        Column("Schedule", ".spec.schedule"),
        Column("Last-Run", ".status.lastRunTime", "date"),
        Column("Next-Run", ".status.nextRunTime"),
        Column("Nodes", ".status.totals.nodes", "integer"),
        PHASE,
        AGE,
    ),
    CENSUS_NAME_RULES,
)

ALL_KINDS: tuple[Kind, ...] = (DATACENTRE, CITYDATACLOUD, DATAZONE, DRREPLICA, COMPUTECENSUS)
