"""ComputeCensus: a scheduled census of compute for planners (DESIGN §3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Bucket, CityCode, Cron, Label, LooseModel, Model, Name, StatusBase

ReportFormat = Literal["json", "csv", "html"]


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
    prefix: str = Field(default="census/", max_length=256, description="Key prefix.")


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


class ComputeCensusSpec(Model):
    """A scheduled compute census."""

    schedule: Cron = Field(description="Cron schedule, e.g. '0 6 * * *'.")
    scope: Scope = Field(default_factory=Scope, description="Cities and centres covered.")
    retain: int = Field(default=12, ge=1, le=365, description="Snapshots kept for trends.")
    reports: Reports = Field(default_factory=Reports, description="Report destinations.")
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/.*)?$",
        description="Prometheus base URL for measured utilisation; unset means requests only.",
    )
    suspend: bool = Field(default=False, description="Skip scheduled runs while true.")


class CityLine(LooseModel):
    """A short per-city summary."""

    city_code: str = Field(description="Division code.")
    name: str | None = Field(default=None, description="City name.")
    nodes: int | None = Field(default=None, description="Schedulable nodes.")
    cpu: str | None = Field(default=None, description="Allocatable CPU.")
    memory: str | None = Field(default=None, description="Allocatable memory.")
    gpus: int | None = Field(default=None, description="Allocatable GPUs.")
    cpu_requested_percent: int | None = Field(default=None, description="CPU requested / allocatable.")


class CensusTotals(LooseModel):
    """Province totals."""

    nodes: int | None = Field(default=None, description="All nodes.")
    schedulable_nodes: int | None = Field(default=None, description="Schedulable nodes.")
    cpu: str | None = Field(default=None, description="Allocatable CPU.")
    memory: str | None = Field(default=None, description="Allocatable memory.")
    gpus: int | None = Field(default=None, description="Allocatable GPUs.")
    storage_bytes: int | None = Field(default=None, description="Object storage used.")


class ComputeCensusStatus(StatusBase):
    """Conditions: Ready, LastRunSucceeded."""

    last_run_time: str | None = Field(default=None, description="When the last run finished.")
    next_run_time: str | None = Field(default=None, description="When the next run starts.")
    last_run_duration_seconds: float | None = Field(default=None, description="How long it took.")
    totals: CensusTotals | None = Field(default=None, description="Province totals.")
    cities: list[CityLine] | None = Field(default=None, description="Per-city summary.")
    report_locations: list[str] | None = Field(default=None, description="Where the reports are.")
    snapshots: int | None = Field(default=None, description="Snapshots retained.")
