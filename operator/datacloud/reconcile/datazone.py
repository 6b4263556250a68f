"""DataZone reconciler: observe (a snapshot the handler takes from its watch caches) → plan (namespaces to
create, keep, release; each child's rendering; the quota split) → apply (only what drifted) → status.

Ownership: a zone owns a namespace it created (recorded in status.namespaces) or one labelled with its zone
and managed-by labels. Namespaces are created with a plain POST, so when two zones race for one name only
one wins; anything else that exists under a listed name is never taken over, only reported.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from .. import API_VERSION, GROUP
from ..adapters.kube import Kube, NotFound
from ..api.conditions import ZoneReason, ZoneType, zone
from ..api.datazone import NAME_MAX, NAME_MSG, DataZoneSpec
from ..builders import datazone as build
from ..builders.conditions import merge_conditions, now_iso
from ..builders.datazone_compare import foreign_hard_keys, in_line
from ..builders.datazone_profile import (
    LABEL_MANAGED_BY,
    LABEL_ZONE,
    MANAGER,
    Profile,
    ReplicaTargets,
    dr_gaps,
    profile_for,
)
from ..builders.datazone_quota import Hard, plan_rebalance, split, summed, to_units
from ..builders.datazone_status import Findings, transition_events, zone_conditions, zone_phase

PLURAL = "datazones"
# Told of each object a reconcile wrote: (namespace, kind, name, the resourceVersion the write produced).
OnWrite = Callable[[str, str, str, str], None]
RESYNC_S = 120.0  # drift is repaired on watch events; the resync also catches DataCentre role changes
RETRY_S = 10.0  # something waits on others (conflicts, data to leave, a namespace terminating)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    labels: Mapping[str, str]
    terminating: bool
    annotations: Mapping[str, str] = field(default_factory=dict)  # only the operator's own


@dataclass(frozen=True)
class Claim:
    """A zone listing a namespace in its spec; the oldest zone may create it."""

    zone: str
    created: str


@dataclass
class Observed:
    """What the handler's caches know, for one zone."""

    namespaces: dict[str, NamespaceInfo] = field(default_factory=dict)
    children: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    claims: dict[str, list[Claim]] = field(default_factory=dict)
    zones: set[str] = field(default_factory=set)
    replicas: list[ReplicaTargets] = field(default_factory=list)
    centre_roles: dict[str, str] = field(default_factory=dict)


@dataclass
class ZoneReport:
    status: dict[str, Any]
    events: list[tuple[str, str, str]]
    requeue_after: float
    writes: int = 0
    created: list[tuple[str, str, str]] = field(default_factory=list)  # (namespace, kind, name) just made


# --- Projections the handler's caches store (small, so thousands of zones stay cheap) ---------------
def project_namespace(body: Mapping[str, Any]) -> NamespaceInfo:
    meta = body.get("metadata") or {}
    ours = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(GROUP + "/")}
    return NamespaceInfo(
        str(meta.get("name")), dict(meta.get("labels") or {}), bool(meta.get("deletionTimestamp")), ours
    )


def project_child(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {
        "kind": body.get("kind"),
        "metadata": {
            k: meta.get(k)
            for k in ("name", "namespace", "labels", "annotations", "resourceVersion")
            if meta.get(k)
        },
    }
    for key in ("spec", "roleRef", "subjects"):
        if key in body:
            out[key] = json.loads(json.dumps(body[key]))  # plain data, detached from kopf's body
    if body.get("kind") == "ResourceQuota":
        out["status"] = {"used": dict((body.get("status") or {}).get("used") or {})}
    return out


def project_replica(body: Mapping[str, Any]) -> ReplicaTargets:
    meta = body.get("metadata") or {}
    targets = (body.get("spec") or {}).get("targets") or []
    return ReplicaTargets(
        f"{meta.get('namespace')}/{meta.get('name')}",
        tuple((str(t.get("mode", "")), str(t.get("centre", ""))) for t in targets),
    )


# --- The aggregated ClusterRoles the zone RoleBindings point at ---------------------------------------
# They ship with the Helm chart (and the dev stack installs them): creating a ClusterRole with an
# aggregationRule takes cluster-admin rights, which the operator does not have. It only checks they exist.
_roles_lock = threading.Lock()
_roles_checked_at = 0.0
_roles_missing: list[str] = []
ROLES_EVERY_S = 300.0


def missing_cluster_roles(kube: Kube) -> list[str]:
    """Names of the zone ClusterRoles that do not exist (checked at most every ROLES_EVERY_S)."""
    global _roles_checked_at, _roles_missing
    with _roles_lock:
        if time.monotonic() - _roles_checked_at >= ROLES_EVERY_S or _roles_missing:
            missing = []
            for role in build.cluster_roles():
                try:
                    kube.read("rbac.authorization.k8s.io/v1", "ClusterRole", role["metadata"]["name"])
                except NotFound:
                    missing.append(role["metadata"]["name"])
            _roles_missing, _roles_checked_at = missing, time.monotonic()
        return list(_roles_missing)


def api_error(e: ApiException) -> str:
    """What a person reads when a reconcile stopped on an API error: status, reason, the server's message."""
    return f"reconcile stopped on API error {e.status} {e.reason}: {_api_message(e)}; retrying"


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)


# Objects that keep a namespace the spec no longer lists: user workloads and data.
CONTENT_KINDS = (
    ("v1", "Pod"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    (API_VERSION, "DRReplica"),
)


def namespace_contents(kube: Kube, namespace: str) -> dict[str, int]:
    """Kind → count of what the users left in the namespace; the operator's own objects and the
    cluster's CA bundle ConfigMap do not count."""
    out: dict[str, int] = {}
    for api_version, kind in CONTENT_KINDS:
        items = kube.read_all(api_version, kind, namespace)
        mine = [
            i
            for i in items
            if ((i.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY) != MANAGER
            and not (kind == "ConfigMap" and i["metadata"]["name"] == "kube-root-ca.crt")
        ]
        if mine:
            out[kind] = len(mine)
    return out


class _Run:
    """One reconcile of one zone."""

    def __init__(
        self,
        kube: Kube,
        body: Mapping[str, Any],
        spec: DataZoneSpec,
        obs: Observed,
        on_write: OnWrite | None = None,
    ) -> None:
        self.kube, self.spec, self.obs, self.on_write = kube, spec, obs, on_write
        meta = body.get("metadata") or {}
        self.name = str(meta["name"])
        self.created = str(meta.get("creationTimestamp") or "")
        self.old = dict(body.get("status") or {})
        self.recorded = set(self.old.get("namespaces") or [])
        self.was_ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in self.old.get("conditions") or []
        )
        self.profile: Profile = profile_for(spec.classification, len(spec.network.egress))
        self.found = Findings()
        self.owned: list[str] = []  # present namespaces the zone owns (status.namespaces)
        self.conflicts: list[dict[str, str]] = []
        self.retained: list[dict[str, str]] = []
        self.repaired: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.writes = 0
        self.retry = False
        self.quota_used: dict[str, dict[str, str]] = {}
        self.fresh: set[str] = set()  # namespaces created by this reconcile: empty by construction
        self.made: list[tuple[str, str, str]] = []
        self.quota_hard: dict[str, Hard] = {}

    def wrote(self, desired: Mapping[str, Any], out: Mapping[str, Any], count: bool = True) -> None:
        """Count a write and pass on the resourceVersion it produced (its watch event is then known as the
        echo of this write)."""
        self.writes += int(count)
        version = (out.get("metadata") or {}).get("resourceVersion")
        if self.on_write is not None and version:
            meta = desired["metadata"]
            self.on_write(str(meta.get("namespace") or ""), desired["kind"], meta["name"], str(version))

    # -- ownership ------------------------------------------------------------------------------
    def owns(self, ns: str) -> bool:
        info = self.obs.namespaces.get(ns)
        if info is None:
            return False
        zone = info.labels.get(LABEL_ZONE)
        if zone == self.name and info.labels.get(LABEL_MANAGED_BY) == MANAGER:
            return True
        # Created by this zone (recorded in status) but its labels were edited away: repair, do not give up.
        return ns in self.recorded and zone in (None, self.name)

    def conflict(self, ns: str, reason: str, message: str) -> None:
        self.conflicts.append({"namespace": ns, "reason": reason, "message": message})
        self.found.namespaces.append((reason, message))
        self.retry = True

    def namespaces(self) -> None:
        for ns in self.spec.namespaces:
            info = self.obs.namespaces.get(ns)
            if info is None:
                # The cache holds only namespaces the operator labelled; anything else shows up as a
                # refused create, and is then read to say whose it is.
                info = self.create_namespace(ns)
                if info is None:
                    continue
                self.obs.namespaces[ns] = info
            if self.owns(ns):
                self.owned.append(ns)
                if info.terminating:
                    msg = f"namespace {ns} is being deleted; it is created again once it is gone"
                    self.found.namespaces.append(("NamespaceTerminating", msg))
                    self.retry = True
                else:
                    self.found.active.append(ns)
                    self.keep(build.namespace(self.name, ns, self.spec, self.profile), ns, existing=True)
            else:
                other = info.labels.get(LABEL_ZONE)
                if other and info.labels.get(LABEL_MANAGED_BY) == MANAGER:
                    self.conflict(
                        ns,
                        "OwnedByOtherZone",
                        f"namespace {ns} belongs to zone {other}; it is not taken over",
                    )
                else:
                    self.conflict(
                        ns,
                        "NamespaceExists",
                        f"namespace {ns} already exists and was not created by this zone; "
                        "it is not taken over",
                    )
        self.release_unlisted()

    def create_namespace(self, ns: str) -> NamespaceInfo | None:
        """Create a listed namespace; the existing namespace when the name is taken, else None."""
        older = sorted(
            (c.created, c.zone)
            for c in self.obs.claims.get(ns, [])
            if c.zone != self.name and (c.created, c.zone) < (self.created, self.name)
        )
        if older:
            self.conflict(
                ns,
                "ClaimedByOtherZone",
                f"namespace {ns} is also listed by zone {older[0][1]}, which came first",
            )
            return None
        try:
            manifest = build.namespace(self.name, ns, self.spec, self.profile)
            self.wrote(manifest, self.kube.create(manifest))
            self.made.append((ns, "Namespace", ns))
        except ApiException as e:
            if e.status in (400, 403, 422):  # invalid, or refused by an admission policy or RBAC
                self.conflict(
                    ns, "NamespaceRejected", f"the API server refused namespace {ns}: {_api_message(e)}"
                )
                return None
            if e.status != 409:
                raise
            try:
                return project_namespace(self.kube.read("v1", "Namespace", ns))
            except NotFound:  # deleted again in between: try next time
                self.retry = True
                return None
        if ns in self.recorded:
            self.repaired.append(f"Namespace {ns}")
        self.owned.append(ns)
        self.found.active.append(ns)
        self.fresh.add(ns)
        return None

    def release_unlisted(self) -> None:
        """Namespaces the zone owns but the spec no longer lists go only when nothing of the users is left."""
        labelled = {n for n, i in self.obs.namespaces.items() if i.labels.get(LABEL_ZONE) == self.name}
        for ns in sorted((self.recorded | labelled) - set(self.spec.namespaces)):
            info = self.obs.namespaces.get(ns)
            if info is None or not self.owns(ns):
                continue
            self.owned.append(ns)
            if info.terminating:
                self.retry = True
                continue
            contents = namespace_contents(self.kube, ns)
            if contents:
                what = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in sorted(contents.items()))
                msg = (
                    f"namespace {ns} is no longer listed but still holds {what}; "
                    "it is kept until they are gone"
                )
                self.retained.append({"namespace": ns, "reason": "HoldsUserObjects", "message": msg})
                self.found.retained.append(("NamespaceRetained", msg))
                self.found.active.append(ns)  # still isolated, limited and accessible while it is kept
                self.retry = True
            else:
                self.kube.remove("v1", "Namespace", ns)
                self.writes += 1
                self.events.append(
                    ("Normal", "NamespaceReleased", f"deleted namespace {ns}: no longer listed, empty")
                )
                self.retry = True

    # -- children -------------------------------------------------------------------------------
    def keep(self, desired: dict[str, Any], ns: str, existing: bool, area: str = "namespaces") -> bool:
        """Write `desired` when the observed object drifted; False when the API server refused it."""
        if desired["kind"] == "Namespace":
            info = self.obs.namespaces[ns]
            observed: dict[str, Any] | None = {
                "metadata": {"labels": dict(info.labels), "annotations": dict(info.annotations)}
            }
        else:
            observed = self.observed(desired)
        if in_line(desired, observed):
            return True
        try:
            if observed is None:
                self.wrote(desired, self.create_or_apply(desired))
            else:
                self.wrote(desired, self.kube.apply(desired))
            if desired["kind"] == "ResourceQuota" and observed:
                extra = foreign_hard_keys(desired, observed)
                if extra:
                    patch = {"spec": {"hard": dict.fromkeys(extra)}}
                    out = self.kube.merge_patch("v1", "ResourceQuota", build.QUOTA_NAME, patch, ns)
                    self.wrote(desired, out, count=False)  # one write of this child, counted once
        except ApiException as e:
            return self.refused(e, desired, ns, area)
        if existing and (observed is not None or self.was_ready):
            self.repaired.append(f"{desired['kind']} {ns}/{desired['metadata']['name']}")
        return True

    def create_or_apply(self, desired: dict[str, Any]) -> dict[str, Any]:
        """A missing child is created (cheaper for the API server than an apply); if the cache was behind
        and it exists after all, it is applied. Returns the object as written."""
        try:
            out = self.kube.create(desired)
        except ApiException as e:
            if e.status != 409:
                raise
            out = self.kube.apply(desired)
        meta = desired["metadata"]
        self.made.append((meta["namespace"], desired["kind"], meta["name"]))
        return out

    def refused(self, e: ApiException, desired: dict[str, Any], ns: str, area: str) -> bool:
        what = f"{desired['kind']} {ns}/{desired['metadata']['name']}"
        if e.status in (400, 422):
            note = (f"{desired['kind']}Rejected", f"the API server refused {what}: {_api_message(e)}")
            getattr(self.found, area).append(note)
            return False
        if e.status in (403, 404, 409):  # namespace terminating or gone, or a resourceVersion race
            self.found.namespaces.append(("ChildNotWritten", f"could not write {what}: {_api_message(e)}"))
            self.retry = True
            return False
        raise e

    def observed(self, desired: dict[str, Any]) -> dict[str, Any] | None:
        meta = desired["metadata"]
        return self.obs.children.get(meta["namespace"], {}).get((desired["kind"], meta["name"]))

    def children(self) -> None:
        hard = self.quota_targets()
        for ns in self.found.active:
            desired = build.children(self.name, ns, self.spec, self.profile, hard.get(ns, {}))
            wanted = {(d["kind"], d["metadata"]["name"]) for d in desired}
            if ns not in hard:
                wanted.add(("ResourceQuota", build.QUOTA_NAME))  # kept as is while the rebalance retries
            for d in desired:
                if d["kind"] == "ResourceQuota" and ns not in hard:
                    continue  # the rebalance could not lower others first; leave this quota as it is
                self.keep(d, ns, existing=True, area=_AREA[d["kind"]])
            for (kind, name), obj in sorted(self.obs.children.get(ns, {}).items()):
                labels = obj.get("metadata", {}).get("labels") or {}
                if (kind, name) not in wanted and labels.get(LABEL_ZONE) == self.name:
                    self.kube.remove(_API_VERSION[kind], kind, name, ns)
                    self.writes += 1

    def quota_targets(self) -> dict[str, Hard]:
        """Each active namespace's share of the zone quota, with the interim lowering written first; a
        namespace missing from the result keeps its quota this round (the lowering lost a race)."""
        zone_hard = dict(self.spec.quota.hard)
        active = self.found.active
        current: dict[str, Hard | None] = {}
        for ns in active:
            quota = self.obs.children.get(ns, {}).get(("ResourceQuota", build.QUOTA_NAME))
            current[ns] = dict((quota or {}).get("spec", {}).get("hard") or {}) if quota else None
            used = dict((quota or {}).get("status", {}).get("used") or {})
            if ns in self.fresh:  # the quota controller has not counted yet, but there is nothing to count
                used = dict.fromkeys(zone_hard, "0")
            elif quota is not None:
                # Until the quota controller has counted a new quota (or a resource just added to it), the
                # figure last reported stands: reporting nothing in between would flip the status back and
                # forth, each flip one more status write.
                for resource, q in self.reported_used(ns).items():
                    used.setdefault(resource, q)
            self.quota_used[ns] = {r: q for r, q in used.items() if r in zone_hard}
        if not zone_hard:
            return {ns: {} for ns in active}
        target = split(zone_hard, self.quota_used, active)
        plan = plan_rebalance(current, target)
        for ns, interim in plan.lower.items():
            manifest = build.resource_quota(self.name, ns, interim)
            quota = self.obs.children.get(ns, {}).get(("ResourceQuota", build.QUOTA_NAME))
            if quota and quota["metadata"].get("resourceVersion"):
                manifest["metadata"]["resourceVersion"] = quota["metadata"]["resourceVersion"]
            try:
                self.wrote(manifest, self.kube.apply(manifest))
            except ApiException as e:
                if e.status == 409:
                    self.found.rebalancing = True
                    self.retry = True
                    self.quota_hard = {n: current[n] or {} for n in active}
                    return {}
                if e.status in (400, 422):
                    self.refused(e, manifest, ns, "quota")
                    return {}
                raise
        self.quota_hard = target
        return target

    def reported_used(self, ns: str) -> dict[str, str]:
        """A namespace's usage as the zone's status last reported it."""
        for entry in (self.old.get("quota") or {}).get("namespaces") or []:
            if entry.get("namespace") == ns:
                return dict(entry.get("used") or {})
        return {}

    # -- status ---------------------------------------------------------------------------------
    def references(self) -> None:
        unknown = sorted(set(self.spec.network.allow_from) - self.obs.zones - {self.name})
        if unknown:
            names = ", ".join(unknown)
            msg = f"network.allowFrom names zone(s) that do not exist: {names}; no traffic comes from them"
            self.found.references.append(("UnknownZoneReference", msg))

    def quota_status(self) -> dict[str, Any]:
        zone_hard = dict(self.spec.quota.hard)
        used = summed(list(self.quota_used.values()))
        self.found.over_quota = sorted(
            r for r, q in used.items() if r in zone_hard and to_units(r, q) > to_units(r, zone_hard[r])
        )
        per_ns = [
            {
                "namespace": ns,
                "hard": dict(self.quota_hard.get(ns, {})),
                "used": dict(self.quota_used.get(ns, {})),
            }
            for ns in self.found.active
        ]
        return {"hard": summed([zone_hard]), "used": used, "namespaces": per_ns}

    def status(self, generation: int | None) -> dict[str, Any]:
        self.references()
        quota = self.quota_status()
        gaps = dr_gaps(self.profile, self.obs.replicas, self.obs.centre_roles)
        conds = zone_conditions(self.found, self.name, self.profile, self.spec, gaps, generation)
        merged = merge_conditions(self.old.get("conditions"), conds, now_iso())
        self.events.extend(transition_events(self.old.get("conditions"), merged))
        if self.repaired:
            self.events.append(("Normal", "DriftRepaired", "restored " + ", ".join(self.repaired)))
        return {
            "observedGeneration": generation,
            "phase": zone_phase(merged),
            "profile": self.profile.wire(),
            "namespaces": sorted(set(self.owned)),
            "retained": self.retained or None,
            "conflicts": self.conflicts or None,
            "quota": quota,
            "drReplicas": sorted(gaps) or None,
            "conditions": merged,
        }


_AREA = {
    "ResourceQuota": "quota",
    "LimitRange": "quota",
    "NetworkPolicy": "isolation",
    "RoleBinding": "access",
}
_API_VERSION = {
    "ResourceQuota": "v1",
    "LimitRange": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
}


def reconcile(
    kube: Kube, body: Mapping[str, Any], observed: Observed, on_write: OnWrite | None = None
) -> ZoneReport:
    """Bring one zone's children in line and compute its status (the caller writes it). `on_write` is told
    of each object written, as it is written."""
    meta = body.get("metadata") or {}
    generation = meta.get("generation")
    old = dict(body.get("status") or {})
    try:
        spec = DataZoneSpec.model_validate(body.get("spec") or {})
        msg = "" if len(str(meta.get("name") or "")) <= NAME_MAX else NAME_MSG  # admitted before the rule
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
    if msg:
        conds = merge_conditions(
            old.get("conditions"),
            [zone(ZoneType.READY, False, ZoneReason.INVALID_SPEC, msg, generation)],
            now_iso(),
        )
        status = {"observedGeneration": generation, "phase": "Invalid", "conditions": conds}
        return ZoneReport(status, [("Warning", "InvalidSpec", msg)], RESYNC_S)
    run = _Run(kube, body, spec, observed, on_write)
    try:
        missing = missing_cluster_roles(kube)
    except ApiException as e:
        missing = []
        run.found.access.append(
            ("ClusterRolesUnreadable", f"cannot read the zone ClusterRoles: {_api_message(e)}")
        )
        run.retry = True
    if missing:
        run.found.access.append(
            ("ClusterRolesMissing", f"{', '.join(missing)} missing: install them with the Helm chart")
        )
        run.retry = True
    run.namespaces()
    run.children()
    status = run.status(generation)
    return ZoneReport(status, run.events, RETRY_S if run.retry else RESYNC_S, run.writes, run.made)


def owned_namespaces(kube: Kube, zone: str, recorded: list[str]) -> list[str]:
    """Namespaces to delete with the zone: labelled with it, or recorded in its status and not labelled for
    another zone."""
    # A name too long for a label value labels nothing (and the API server refuses it in a selector).
    found = (
        {
            i["metadata"]["name"]: i
            for i in kube.read_all(
                "v1", "Namespace", label_selector=f"{LABEL_ZONE}={zone},{LABEL_MANAGED_BY}={MANAGER}"
            )
        }
        if len(zone) <= NAME_MAX
        else {}
    )
    for name in recorded:
        if name in found:
            continue
        try:
            ns = kube.read("v1", "Namespace", name)
        except LookupError:
            continue
        if ((ns.get("metadata") or {}).get("labels") or {}).get(LABEL_ZONE) in (None, zone):
            found[name] = ns
    return sorted(found)


def delete_zone(kube: Kube, zone: str, recorded: list[str]) -> list[str]:
    """Delete what the zone owns; returns the namespaces still present (the caller retries until none)."""
    remaining = owned_namespaces(kube, zone, recorded)
    for ns in remaining:
        kube.remove("v1", "Namespace", ns)
    return remaining
