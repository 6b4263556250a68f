"""Checks across the whole topology: what no single CRD schema can see (the ten cities once each, one
centre per DR role, references that resolve, buckets declared where DR needs them), and the CRDs'
cross-field CEL rules, which pydantic does not run, mirrored so a bad topology fails before `pulumi up`.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

from entries import CensusEntry, CentreEntry, CityEntry, Loc, ReplicaEntry, Topology, ZoneEntry

from datacloud.api.common import CITIES, parse_duration
from datacloud.api.datacentre import Role
from datacloud.api.datazone import GROUP_MSG
from datacloud.api.overlap import Place, overlap
from datacloud.builders.datazone_profile import ReplicaTargets, dr_gaps, profile_for

DR_ROLES: tuple[Role, ...] = ("Production", "SameCityDR", "RemoteDR")
Problem = tuple[Loc, str]


def check(t: Topology) -> Iterator[Problem]:
    """Every problem no single CRD schema can see."""
    yield from _unique(t.centres, "centres")
    yield from _unique(t.cities, "cities")
    yield from _unique(t.data_zones, "dataZones")
    yield from _unique_replicas(t.dr_replicas)
    yield from _secret_refs(t)
    yield from _centres(t)
    yield from _cities(t)
    yield from _zones(t)
    yield from _replicas(t)
    if t.census:
        yield from _census(t, t.census)


def _unique(entries: Sequence[CentreEntry | CityEntry | ZoneEntry], where: str) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.name in first:
            yield (where, i, "name"), f"{e.name} is already the name of {where}[{first[e.name]}]"
        first.setdefault(e.name, i)


def _unique_replicas(replicas: Sequence[ReplicaEntry]) -> Iterator[Problem]:
    first: dict[tuple[str, str], int] = {}
    for i, r in enumerate(replicas):
        key = (r.namespace, r.name)
        if key in first:
            yield ("drReplicas", i, "name"), f"{r.namespace}/{r.name} is already drReplicas[{first[key]}]"
        first.setdefault(key, i)


def _secret_refs(t: Topology) -> Iterator[Problem]:
    """The program writes each centre's and city's Secret from its own secret config: one owner each."""
    owners: dict[tuple[str, str], str] = {}
    refs: list[tuple[Loc, str, str, str]] = []
    for i, c in enumerate(t.centres):
        ref = c.object_store.credentials_secret_ref
        refs.append(
            (
                ("centres", i, "objectStore", "credentialsSecretRef"),
                ref.namespace,
                ref.name,
                f"centre {c.name}",
            )
        )
    for i, city in enumerate(t.cities):
        kref = city.cluster.kubeconfig_secret_ref
        refs.append(
            (("cities", i, "cluster", "kubeconfigSecretRef"), kref.namespace, kref.name, f"city {city.name}")
        )
    for at, namespace, name, owner in refs:
        if (namespace, name) in owners:
            yield at, f"Secret {namespace}/{name} is already the Secret of {owners[(namespace, name)]}"
        owners.setdefault((namespace, name), owner)


def _centres(t: Topology) -> Iterator[Problem]:
    roles = Counter(c.role for c in t.centres)
    for role in DR_ROLES:
        if roles[role] != 1:
            found = ", ".join(c.name for c in t.centres if c.role == role) or "none"
            yield ("centres",), f"needs exactly one {role} centre (found {found})"
    for i, c in enumerate(t.centres):
        if c.city not in CITIES:
            yield ("centres", i, "city"), f"{c.city} is not one of the ten Fujian city codes"
        if c.object_store.access_key_id is not None or c.object_store.secret_access_key is not None:
            yield (
                ("centres", i, "objectStore"),
                "credentials must not be written inline: they come from Pulumi secret config into the "
                "Secret named by objectStore.credentialsSecretRef",
            )
        yield from _duration_order(
            ("centres", i, "probe"),
            c.probe.timeout,
            c.probe.interval,
            "timeout must not be longer than interval",
        )
        interval = _seconds(c.probe.interval)
        if interval is not None and interval < 1:
            yield ("centres", i, "probe", "interval"), f"must be at least 1s (got {c.probe.interval!r})"
        yield from _set(("centres", i, "buckets"), c.buckets)
    if roles["Production"] == 1:
        prod = t.by_role("Production")
        for i, c in enumerate(t.centres):
            if c.role == "SameCityDR" and c.city != prod.city:
                yield (
                    ("centres", i, "city"),
                    f"a SameCityDR centre must stand in the production centre's city {prod.city} "
                    f"(got {c.city})",
                )
            if c.role == "RemoteDR" and c.city == prod.city:
                yield (
                    ("centres", i, "city"),
                    f"a RemoteDR centre must stand in another city than the production centre ({prod.city})",
                )


def _cities(t: Topology) -> Iterator[Problem]:
    centres = {c.name for c in t.centres}
    first: dict[str, int] = {}
    for i, city in enumerate(t.cities):
        code = city.city_code
        if code in first:
            yield ("cities", i, "cityCode"), f"{code} is already the city of cities[{first[code]}]"
        first.setdefault(code, i)
        zh, en = CITIES[code]
        if (city.display_name.zh, city.display_name.en) != (zh, en):
            named = f"{city.display_name.zh} / {city.display_name.en}"
            yield ("cities", i, "displayName"), f"{code} is {zh} / {en} (got {named})"
        for j, centre in enumerate(city.centres):
            if centre not in centres:
                yield ("cities", i, "centres", j), f"no centre named {centre}"
        yield from _set(("cities", i, "centres"), city.centres)
        yield from _duration_order(
            ("cities", i, "heartbeat"),
            city.heartbeat.period,
            city.heartbeat.grace,
            "grace must be at least period",
        )
        period = _seconds(city.heartbeat.period)
        if period is not None and period < 1:
            yield (
                ("cities", i, "heartbeat", "period"),
                f"must be at least 1s (got {city.heartbeat.period!r})",
            )
    missing = [f"{code} ({CITIES[code][0]})" for code in CITIES if code not in first]
    if missing:
        yield ("cities",), f"every Fujian city needs its city data cloud; missing {', '.join(missing)}"


def _zones(t: Topology) -> Iterator[Problem]:
    zones = {z.name for z in t.data_zones}
    owner: dict[str, str] = {}
    for i, z in enumerate(t.data_zones):
        for j, peer in enumerate(z.network.allow_from):
            if peer not in zones:
                yield ("dataZones", i, "network", "allowFrom", j), f"no data zone named {peer}"
        for j, rule in enumerate(z.network.egress):
            if not _is_cidr(rule.cidr):
                yield (
                    ("dataZones", i, "network", "egress", j, "cidr"),
                    f"must be a CIDR block such as 10.20.0.0/16 (got {rule.cidr!r})",
                )
        for role in ("admins", "editors", "viewers"):
            for j, group in enumerate(getattr(z.access, role)):
                if group.startswith("system:") and group != "system:authenticated":
                    yield ("dataZones", i, "access", role, j), f"{GROUP_MSG} (got {group!r})"
        for j, ns in enumerate(z.namespaces):
            if ns in owner and owner[ns] != z.name:
                yield ("dataZones", i, "namespaces", j), f"namespace {ns} already belongs to zone {owner[ns]}"
            owner.setdefault(ns, z.name)
        yield from _set(("dataZones", i, "namespaces"), z.namespaces)
        yield from _set(("dataZones", i, "network", "allowFrom"), z.network.allow_from)


def _replicas(t: Topology) -> Iterator[Problem]:
    centres = {c.name: c for c in t.centres}
    zones = {z.name: z for z in t.data_zones}
    roles = {c.name: c.role for c in t.centres}
    for i, r in enumerate(t.dr_replicas):
        at: Loc = ("drReplicas", i)
        yield from _centre_bucket(centres, (*at, "source"), r.source.centre, r.source.bucket)
        for j, target in enumerate(r.targets):
            yield from _centre_bucket(centres, (*at, "targets", j), target.centre, target.bucket)
            if target.mode == "Continuous" and target.rpo_target is None:
                yield (*at, "targets", j, "rpoTarget"), "a Continuous target needs rpoTarget"
            if target.mode == "Scheduled" and target.schedule is None:
                yield (*at, "targets", j, "schedule"), "a Scheduled target needs a cron schedule"
            if (target.centre, target.bucket) == (r.source.centre, r.source.bucket):
                yield (*at, "targets", j), "a target must not be the source bucket itself"
        for j, name in _duplicates([target.name for target in r.targets]):
            yield (*at, "targets", j, "name"), f"target name {name} is used twice"
        places = [Place(target.centre, target.bucket, target.prefix) for target in r.targets]
        for j, place in enumerate(places):
            if any(overlap(place, other) for other in places[:j]):
                yield (
                    (*at, "targets", j),
                    "two targets in one centre and bucket must have prefixes that do not contain one another",
                )
        ends = {r.source.centre, *(target.centre for target in r.targets)}
        if r.active_centre not in ends:
            yield (*at, "activeCentre"), "must be the source centre or the centre of one of the targets"
        if r.action and r.action.target_centre not in ends:
            yield (
                (*at, "action", "targetCentre"),
                "must be the source centre or the centre of one of the targets",
            )
        if r.zone is not None and r.zone not in zones:
            yield (*at, "zone"), f"no data zone named {r.zone}"
        elif r.zone is not None:
            zone = zones[r.zone]
            plan = ReplicaTargets(r.name, tuple((target.mode, target.centre) for target in r.targets))
            missing = dr_gaps(profile_for(zone.classification), [plan], roles)[r.name]
            if missing:
                yield (
                    (*at, "targets"),
                    f"zone {zone.name} is {zone.classification} and needs {' and '.join(missing)}",
                )


def _census(t: Topology, census: CensusEntry) -> Iterator[Problem]:
    centres = {c.name: c for c in t.centres}
    yield from _set(("census", "scope", "cities"), census.scope.cities)
    yield from _set(("census", "scope", "centres"), census.scope.centres)
    yield from _set(("census", "reports", "formats"), census.reports.formats)
    for j, name in enumerate(census.scope.centres):
        if name not in centres:
            yield ("census", "scope", "centres", j), f"no centre named {name}"
    store = census.reports.object_store
    if store:
        yield from _centre_bucket(centres, ("census", "reports", "objectStore"), store.centre, store.bucket)


def _centre_bucket(
    centres: Mapping[str, CentreEntry], at: Loc, centre: str, bucket: str
) -> Iterator[Problem]:
    if centre not in centres:
        yield (*at, "centre"), f"no centre named {centre} (known: {', '.join(sorted(centres))})"
    elif bucket not in centres[centre].buckets:
        index = list(centres).index(centre)
        yield (
            (*at, "bucket"),
            f"bucket {bucket} is not declared on centre {centre}: add it to centres[{index}].buckets",
        )


def _duration_order(at: Loc, shorter: str, longer: str, message: str) -> Iterator[Problem]:
    low, high = _seconds(shorter), _seconds(longer)
    if low is not None and high is not None and low > high:
        yield at, f"{message} (got {shorter} and {longer})"


def _seconds(text: str) -> float | None:
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        return None


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _duplicates(values: Iterable[str]) -> Iterator[tuple[int, str]]:
    seen: set[str] = set()
    for j, value in enumerate(values):
        if value in seen:
            yield j, value
        seen.add(value)


def _set(at: Loc, values: Iterable[str]) -> Iterator[Problem]:
    """A list the CRD declares a set (x-kubernetes-list-type: set): the API server refuses duplicates."""
    for j, value in _duplicates(values):
        yield (*at, j), f"{value} is listed twice"
