"""The topology's entries: each a custom resource's spec model from the operator's API, plus the few
fields only the topology has (`name`, a centre's `buckets`, a replica's `namespace` and `zone`).

Subclassing the API models means an entry is validated exactly as the CRD validates the spec, and
`spec()` hands the program the API model itself, so it can only emit what the CRD accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_core import ErrorDetails

from datacloud.api.census import ComputeCensusSpec
from datacloud.api.citydatacloud import CityDataCloudSpec
from datacloud.api.common import DNS_LABEL, DNS_SUBDOMAIN, LABEL_VALUE_MAX, Bucket, Label, Model, Name
from datacloud.api.datacentre import DataCentreSpec, ObjectStore
from datacloud.api.datazone import NAME_MAX as ZONE_NAME_MAX
from datacloud.api.datazone import DataZoneSpec
from datacloud.api.drreplica import DRReplicaSpec

DR_NAMESPACE = "datacloud-dr"

Loc = tuple[str | int, ...]
S = TypeVar("S", bound=Model)


class TopologyError(ValueError):
    """A topology that must not be deployed; `problems` lists each as `path: message`."""

    def __init__(self, source: str, problems: Sequence[str], what: str = "malformed topology") -> None:
        self.source = source
        self.problems = list(problems)
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) != 1 else "")
        super().__init__(f"{source}: {what} ({count}):\n" + "\n".join(f"  - {p}" for p in problems))


def _spec_of(entry: Model, model: type[S], topology_fields: set[str]) -> S:
    """The entry's spec, validated again through the API model itself: what the program emits is exactly
    what the CRD accepts, whatever fields the entry adds."""
    return model.model_validate(entry.model_dump(exclude=topology_fields))


class CentreEntry(DataCentreSpec):
    """A DataCentre and the buckets its object store holds for DR and reports."""

    name: Name = Field(description="The DataCentre's name.")
    buckets: list[Bucket] = Field(default_factory=list, description="Buckets created on this centre.")

    def spec(self) -> DataCentreSpec:
        return _spec_of(self, DataCentreSpec, {"name", "buckets"})


class CityEntry(CityDataCloudSpec):
    """A CityDataCloud."""

    name: Name = Field(description="The CityDataCloud's name.")

    def spec(self) -> CityDataCloudSpec:
        return _spec_of(self, CityDataCloudSpec, {"name"})


class ZoneEntry(DataZoneSpec):
    """A DataZone."""

    # The CRD's rule on metadata.name: the zone's name is a label value.
    name: Name = Field(max_length=ZONE_NAME_MAX, description="The DataZone's name (at most 63 characters).")

    def spec(self) -> DataZoneSpec:
        return _spec_of(self, DataZoneSpec, {"name"})


class ReplicaEntry(DRReplicaSpec):
    """A DRReplica, with the namespace it lives in and the zone whose data it protects."""

    name: Name = Field(description="The DRReplica's name.")
    namespace: Label = Field(default=DR_NAMESPACE, description="Namespace of the DRReplica.")
    zone: Name | None = Field(default=None, description="The DataZone whose data this replica protects.")

    def spec(self) -> DRReplicaSpec:
        return _spec_of(self, DRReplicaSpec, {"name", "namespace", "zone"})


class CensusEntry(ComputeCensusSpec):
    """A ComputeCensus."""

    # The CRD's rule on metadata.name: the census's name labels its ConfigMaps.
    name: Name = Field(
        max_length=LABEL_VALUE_MAX, description="The ComputeCensus's name (at most 63 characters)."
    )

    def spec(self) -> ComputeCensusSpec:
        return _spec_of(self, ComputeCensusSpec, {"name"})


class Topology(Model):
    """The whole province: centres, city clouds, data zones, DR replicas and the census."""

    centres: list[CentreEntry] = Field(min_length=1, description="The data centres.")
    cities: list[CityEntry] = Field(description="The ten city data clouds.")
    data_zones: list[ZoneEntry] = Field(default_factory=list, description="Zones on the provincial cloud.")
    dr_replicas: list[ReplicaEntry] = Field(default_factory=list, description="DR-protected data sets.")
    census: CensusEntry | None = Field(default=None, description="The provincial compute census.")

    def centre(self, name: str) -> CentreEntry:
        return next(c for c in self.centres if c.name == name)

    def by_role(self, role: str) -> CentreEntry:
        return next(c for c in self.centres if c.role == role)

    def bucket_uses(self) -> dict[tuple[str, str], list[str]]:
        """(centre, bucket) → what uses it: `source:<ns>/<replica>`, `target:<ns>/<replica>`, `census`."""
        uses: dict[tuple[str, str], list[str]] = {(c.name, b): [] for c in self.centres for b in c.buckets}
        for r in self.dr_replicas:
            uses.setdefault((r.source.centre, r.source.bucket), []).append(f"source:{r.namespace}/{r.name}")
            for t in r.targets:
                uses.setdefault((t.centre, t.bucket), []).append(f"target:{r.namespace}/{r.name}")
        if self.census and self.census.reports.object_store:
            store = self.census.reports.object_store
            uses.setdefault((store.centre, store.bucket), []).append("census")
        return uses

    def with_object_stores(self, overrides: Mapping[str, Any], origin: str = "objectStores") -> Topology:
        """The topology with some centres' object-store fields (endpoint, region) replaced: a stack that
        runs against lab stores rather than the province's own."""
        problems: list[str] = []
        stores: dict[str, ObjectStore] = {}
        names = [c.name for c in self.centres]
        for centre, override in overrides.items():
            if centre not in names:
                problems.append(f"{origin}.{centre}: no such centre (known: {', '.join(names)})")
            elif not isinstance(override, Mapping) or set(override) - {"endpoint", "region"}:
                problems.append(
                    f"{origin}.{centre}: must be a mapping of endpoint and/or region (got {override!r})"
                )
            else:
                current = self.centre(centre).object_store.model_dump()
                try:
                    stores[centre] = ObjectStore.model_validate({**current, **override})
                except ValidationError as err:
                    problems += [
                        f"{origin}.{centre}.{format_path(e['loc'])}: {describe(e)}" for e in err.errors()
                    ]
        if problems:
            raise TopologyError("stack configuration", problems, "object-store overrides refused")
        centres = [
            c.model_copy(update={"object_store": stores[c.name]}) if c.name in stores else c
            for c in self.centres
        ]
        return self.model_copy(update={"centres": centres})


def describe(error: ErrorDetails) -> str:
    """A pydantic error in the words a person editing YAML needs."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    got = f" (got {value!r})" if kind not in ("missing", "extra_forbidden") else ""
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {choices}{got}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern")
        if pattern == DNS_SUBDOMAIN:
            return f"must be a lower-case DNS name such as fz-prod{got}"
        if pattern == DNS_LABEL:
            return f"must be a lower-case DNS label (letters, digits, hyphens; at most 63){got}"
        return f"must match {pattern}{got}"
    message = error["msg"].removeprefix("Value error, ")
    return message[:1].lower() + message[1:] + got


def format_path(loc: Loc) -> str:
    """('dataZones', 2, 'quota', 'hard', 'requests.cpu') → dataZones[2].quota.hard["requests.cpu"]."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "(top level)"
