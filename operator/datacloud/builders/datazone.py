"""Pure renderers of a DataZone's children: namespace, quota, limit range, network policies, role bindings,
and the aggregated ClusterRoles the zone roles bind to.

Every child carries the zone and managed-by labels, which is how the operator (and a person) recognises
what a zone owns. Children get no ownerReferences: deleting the CRD or the zone must never let the garbage
collector remove namespaces or isolation behind the operator's back — the finalizer decides.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .. import GROUP
from ..api.datazone import Access, DataZoneSpec, EgressRule, Limits
from .datazone_profile import (
    ANNOTATION_DEPARTMENT_NAME,
    LABEL_CLASSIFICATION,
    LABEL_DEPARTMENT,
    LABEL_MANAGED_BY,
    LABEL_ZONE,
    MANAGER,
    Profile,
)

QUOTA_NAME = "datacloud-zone-quota"
LIMITS_NAME = "datacloud-zone-limits"
DENY_POLICY = "datacloud-default-deny"
ALLOW_POLICY = "datacloud-allow"
ROLES = ("admin", "editor", "viewer")
AGGREGATE_LABEL = f"{GROUP}/aggregate-to-zone-%s"
# The built-in aggregation labels whose rules the admin/edit/view ClusterRoles collect.
BUILTIN_AGGREGATE = {
    "admin": "rbac.authorization.k8s.io/aggregate-to-admin",
    "editor": "rbac.authorization.k8s.io/aggregate-to-edit",
    "viewer": "rbac.authorization.k8s.io/aggregate-to-view",
}
PSA = "pod-security.kubernetes.io"


def role_name(role: str) -> str:
    return f"datacloud-zone-{role}"


def child_labels(zone: str) -> dict[str, str]:
    return {LABEL_ZONE: zone, LABEL_MANAGED_BY: MANAGER}


def namespace(zone: str, name: str, spec: DataZoneSpec, profile: Profile) -> dict[str, Any]:
    labels = {**child_labels(zone), LABEL_CLASSIFICATION: spec.classification}
    if spec.department.code:
        labels[LABEL_DEPARTMENT] = spec.department.code
    for mode in ("enforce", "audit", "warn"):
        labels[f"{PSA}/{mode}"] = profile.pod_security
        labels[f"{PSA}/{mode}-version"] = "latest"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {ANNOTATION_DEPARTMENT_NAME: spec.department.name},
        },
    }


def _meta(zone: str, namespace_: str, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace_, "labels": child_labels(zone)}


def resource_quota(zone: str, namespace_: str, hard: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(zone, namespace_, QUOTA_NAME),
        "spec": {"hard": dict(sorted(hard.items()))},
    }


def limit_range(zone: str, namespace_: str, limits: Limits) -> dict[str, Any] | None:
    """None when the spec sets no container defaults (then no LimitRange is kept)."""
    item: dict[str, Any] = {"type": "Container"}
    for key, values in (
        ("defaultRequest", limits.default_request),
        ("default", limits.default),
        ("max", limits.max),
    ):
        if values:
            item[key] = dict(sorted(values.items()))
    if len(item) == 1:
        return None
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(zone, namespace_, LIMITS_NAME),
        "spec": {"limits": [item]},
    }


def _zone_peers(zones: list[str]) -> dict[str, Any]:
    """Namespaces of the named zones, as the operator labels them."""
    return {
        "namespaceSelector": {
            "matchLabels": {LABEL_MANAGED_BY: MANAGER},
            "matchExpressions": [{"key": LABEL_ZONE, "operator": "In", "values": sorted(zones)}],
        }
    }


def _egress_rule(rule: EgressRule) -> dict[str, Any]:
    # NetworkPolicy wants the network address; 10.20.0.1/16 means 10.20.0.0/16.
    cidr = str(ipaddress.ip_network(rule.cidr, strict=False))
    out: dict[str, Any] = {"to": [{"ipBlock": {"cidr": cidr}}]}
    if rule.ports:
        out["ports"] = [{"protocol": "TCP", "port": p} for p in sorted(set(rule.ports))]
    return out


DNS_EGRESS: dict[str, Any] = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def network_policies(
    zone: str, namespace_: str, spec: DataZoneSpec, profile: Profile
) -> list[dict[str, Any]]:
    """Default deny (directions from the profile), then one policy with everything allowed: the zone's own
    namespaces both ways, the listed zones inwards, and — when egress is restricted — DNS and the CIDRs."""
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(zone, namespace_, DENY_POLICY),
        "spec": {"podSelector": {}, "policyTypes": list(profile.default_deny)},
    }
    ingress: list[dict[str, Any]] = [{"from": [_zone_peers([zone])]}]
    peers = sorted(set(spec.network.allow_from) - {zone})
    if peers:
        ingress.append({"from": [_zone_peers(peers)]})
    allow_spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress}
    if profile.egress_restricted:
        egress = [{"to": [_zone_peers([zone])]}, DNS_EGRESS, *(_egress_rule(r) for r in spec.network.egress)]
        allow_spec["policyTypes"] = ["Ingress", "Egress"]
        allow_spec["egress"] = egress
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(zone, namespace_, ALLOW_POLICY),
        "spec": allow_spec,
    }
    return [deny, allow]


def role_bindings(zone: str, namespace_: str, access: Access) -> list[dict[str, Any]]:
    """One RoleBinding per role that has groups; a role without groups has no binding."""
    out = []
    for role, groups in (("admin", access.admins), ("editor", access.editors), ("viewer", access.viewers)):
        if not groups:
            continue
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(zone, namespace_, role_name(role)),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role_name(role),
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                    for g in sorted(set(groups))
                ],
            }
        )
    return out


def children(
    zone: str, namespace_: str, spec: DataZoneSpec, profile: Profile, hard: dict[str, str]
) -> list[dict[str, Any]]:
    """Every namespaced child of one zone namespace, in the order they are applied (quota before anything
    that could consume it, isolation before access)."""
    out: list[dict[str, Any]] = []
    if hard:
        out.append(resource_quota(zone, namespace_, hard))
    limits = limit_range(zone, namespace_, spec.limits)
    if limits:
        out.append(limits)
    out.extend(network_policies(zone, namespace_, spec, profile))
    out.extend(role_bindings(zone, namespace_, spec.access))
    return out


_DATACLOUD_READ = ["get", "list", "watch"]
_DATACLOUD_WRITE = ["create", "update", "patch", "delete"]


def cluster_roles() -> list[dict[str, Any]]:
    """The three zone roles, each aggregated from the built-in admin/edit/view rules plus the project's own
    rules (DRReplicas in the zone's namespaces); two rule-carrying roles feed them by label."""
    part_of = {"app.kubernetes.io/part-of": "datacloud", LABEL_MANAGED_BY: MANAGER}
    roles: list[dict[str, Any]] = []
    for role in ROLES:
        roles.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": role_name(role), "labels": dict(part_of)},
                "aggregationRule": {
                    "clusterRoleSelectors": [
                        {"matchLabels": {BUILTIN_AGGREGATE[role]: "true"}},
                        {"matchLabels": {AGGREGATE_LABEL % role: "true"}},
                    ]
                },
            }
        )
    read_labels = {**part_of, **{AGGREGATE_LABEL % r: "true" for r in ROLES}}
    write_labels = {**part_of, AGGREGATE_LABEL % "admin": "true"}
    for name, labels, verbs in (
        ("datacloud-zone-drreplicas-read", read_labels, _DATACLOUD_READ),
        ("datacloud-zone-drreplicas-write", write_labels, _DATACLOUD_WRITE),
    ):
        roles.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": labels},
                "rules": [{"apiGroups": [GROUP], "resources": ["drreplicas"], "verbs": verbs}],
            }
        )
    return roles
