"""ComputeCensus: a scheduled census of compute for planners."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .common import (
    PLAIN_SEGMENTS,
    PREFIX_FIELD,
    Bucket,
    CityCode,
    Cron,
    Duration,
    Label,
    LooseModel,
    Model,
    Name,
    StatusBase,
    cel,
    durations_valid,
    name_label_rules,
    parse_duration,
    with_rules,
)
from .urls import url_check, url_field

ReportFormat = Literal["json", "csv", "html"]
Phase = Literal["Scheduled", "Suspended", "Succeeded", "Degraded", "Failed", "Invalid"]
# The census's name labels its report and snapshot ConfigMaps: a longer one made every run fail to store.
NAME_RULES = name_label_rules("ComputeCensus")
CensusPrefix = Annotated[str, Field(max_length=256, **PREFIX_FIELD), PLAIN_SEGMENTS]


class Scope(Model):
    """What the census covers; empty lists mean everything."""

    cities: list[CityCode] = Field(
        default_factory=list,
        max_length=10,
        description="City division codes to include.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    centres: list[Name] = Field(
        default_factory=list,
        max_length=64,
        description="DataCentre names to include.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class ConfigMapTarget(Model):
    """A ConfigMap receiving the latest report."""

    name: Name = Field(description="ConfigMap name.")
    namespace: Label = Field(description="ConfigMap namespace.")


class ObjectStoreTarget(Model):
    """A bucket receiving reports and snapshots."""

    centre: Name = Field(description="DataCentre whose object store receives them.")
    bucket: Bucket = Field(description="Bucket name.")
    prefix: CensusPrefix = Field(default="census/", description="Key prefix.")


class Reports(Model):
    """Where reports go."""

    formats: list[ReportFormat] = Field(
        default_factory=lambda: list[ReportFormat](["json", "csv", "html"]),
        description="Formats written: json, csv, html.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    config_map: ConfigMapTarget | None = Field(default=None, description="ConfigMap for the latest report.")
    object_store: ObjectStoreTarget | None = Field(
        default=None, description="Bucket for reports and snapshots."
    )


# A range query Prometheus answers: a step of at least a second, and at most 11,000 points per series
# (Prometheus refuses more: "exceeded maximum resolution of 11,000 points per timeseries").
STEP_MIN = "1s"
POINTS_MAX = 11_000
STEP_MIN_MSG = f"utilisation.step must be at least {STEP_MIN}"
POINTS_MSG = (
    f"utilisation.window must be at most {POINTS_MAX} steps (Prometheus answers at most {POINTS_MAX:,} "
    "points per series): raise step or shorten window"
)


class Utilisation(Model):
    """Measured use from Prometheus: one PromQL query per resource, each returning one series per node
    (label `nodeLabel`, and `cityLabel` when one Prometheus serves several cities)."""

    model_config = with_rules(
        cel(
            durations_valid("self.step") + f" || duration(self.step) >= duration('{STEP_MIN}')",
            STEP_MIN_MSG,
        ),
        cel(
            durations_valid("self.step", "self.window")
            + f" || duration(self.step) < duration('{STEP_MIN}')"
            + " || duration(self.window).getMilliseconds()"
            + f" <= {POINTS_MAX} * duration(self.step).getMilliseconds()",
            POINTS_MSG,
        ),
    )

    window: Duration = Field(default="24h", description="Period averaged over, ending at the run, e.g. 24h.")
    step: Duration = Field(default="5m", description="Resolution of the range query, e.g. 5m.")
    node_label: Label = Field(default="node", description="Series label holding the node name.")
    city_label: Label = Field(
        default="city", description="Series label holding the city (division code or CityDataCloud name)."
    )
    cpu: str = Field(
        default='sum by (city, node) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
        min_length=1,
        max_length=2048,
        description="Cores in use per node.",
    )
    memory: str = Field(
        default="sum by (city, node) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)",
        min_length=1,
        max_length=2048,
        description="Bytes of memory in use per node.",
    )
    gpu: str = Field(
        default="sum by (city, node) (DCGM_FI_DEV_GPU_UTIL) / 100",
        min_length=1,
        max_length=2048,
        description="GPUs busy per node (utilisation fractions summed over the node's GPUs).",
    )

    @model_validator(mode="after")
    def _answerable(self) -> Utilisation:
        step, window = parse_duration(self.step).total_seconds(), parse_duration(self.window).total_seconds()
        if step < parse_duration(STEP_MIN).total_seconds():
            raise ValueError(STEP_MIN_MSG)
        if round(window * 1000) > POINTS_MAX * round(step * 1000):
            raise ValueError(POINTS_MSG)
        return self


PROMETHEUS_USER_MSG = "must not carry a user or password: the census reads Prometheus without credentials"


class ComputeCensusSpec(Model):
    """A scheduled compute census."""

    schedule: Cron = Field(description="Cron schedule, e.g. '0 6 * * *'.")
    scope: Scope = Field(default_factory=Scope, description="Cities and centres covered.")
    retain: int = Field(default=12, ge=1, le=365, description="Snapshots kept for trends.")
    reports: Reports = Field(default_factory=Reports, description="Report destinations.")
    # A user and password in it would be shown in the UtilisationMeasured condition when Prometheus fails.
    prometheus_url: (
        Annotated[
            str,
            url_field(
                PROMETHEUS_USER_MSG,
                "Prometheus base URL for measured utilisation; unset means requests only.",
            ),
            url_check(PROMETHEUS_USER_MSG),
        ]
        | None
    ) = None
    utilisation: Utilisation = Field(
        default_factory=Utilisation, description="How utilisation is read from prometheusUrl."
    )
    suspend: bool = Field(default=False, description="Skip scheduled runs while true.")


class CityLine(LooseModel):
    """A short per-city summary."""

    city_code: str = Field(description="Division code.")
    name: str | None = Field(default=None, description="CityDataCloud name.")
    display: str | None = Field(default=None, description="City name in Chinese and English.")
    nodes: int | None = Field(default=None, description="All nodes.")
    schedulable_nodes: int | None = Field(default=None, description="Schedulable nodes.")
    cpu: str | None = Field(default=None, description="Allocatable CPU.")
    memory: str | None = Field(default=None, description="Allocatable memory.")
    gpus: int | None = Field(default=None, description="Allocatable GPUs.")
    cpu_requested_percent: int | None = Field(default=None, description="CPU requested / allocatable.")
    memory_requested_percent: int | None = Field(default=None, description="Memory requested / allocatable.")
    data_time: str | None = Field(default=None, description="When this city's figures were collected.")
    problem: str | None = Field(default=None, description="Why the figures are old or missing.")


class CensusTotals(LooseModel):
    """Province totals."""

    nodes: int | None = Field(default=None, description="All nodes.")
    schedulable_nodes: int | None = Field(default=None, description="Schedulable nodes.")
    cpu: str | None = Field(default=None, description="Allocatable CPU.")
    cpu_requested: str | None = Field(default=None, description="CPU requested by live pods.")
    memory: str | None = Field(default=None, description="Allocatable memory.")
    memory_requested: str | None = Field(default=None, description="Memory requested by live pods.")
    gpus: int | None = Field(default=None, description="Allocatable GPUs.")
    gpus_requested: int | None = Field(default=None, description="GPUs requested by live pods.")
    storage_bytes: int | None = Field(default=None, description="Object storage used.")


class ReportLocation(LooseModel):
    """Where one report or the snapshots are kept."""

    format: str = Field(description="json, csv, html or snapshots.")
    location: str = Field(description="configmap://namespace/name#key or s3://centre/bucket/key.")
    bytes: int | None = Field(default=None, description="Size written.")


class ComputeCensusStatus(StatusBase):
    """Conditions: Ready (the spec can be run), LastRunSucceeded, ReportsStored."""

    phase: Phase | None = Field(
        default=None,
        description="Scheduled or Suspended before the first run; then Succeeded, Degraded (a city "
        "missing) or Failed; Invalid when the spec is not.",
    )

    last_run_time: str | None = Field(default=None, description="When the last run finished.")
    next_run_time: str | None = Field(default=None, description="When the next scheduled run starts.")
    last_run_duration_seconds: float | None = Field(default=None, description="How long it took.")
    last_run_request: str | None = Field(
        default=None, description="The run-now annotation value the last on-demand run answered."
    )
    totals: CensusTotals | None = Field(default=None, description="Province totals.")
    cities: list[CityLine] | None = Field(default=None, description="Per-city summary.")
    report_locations: list[ReportLocation] | None = Field(default=None, description="Where the reports are.")
    snapshots: int | None = Field(default=None, description="Snapshots retained.")
