"""What a scheduled sync Job's pods run as, in the DRReplica's namespace: the ServiceAccount
`datacloud-sync`, bound to what the pods need. Pure manifests; `reconcile/dr_sync_account.py` applies them.

The pods resolve `centre:NAME/...` (get the cluster-scoped DataCentre, get its credentials Secret in the
operator namespace) and report their figures into a ConfigMap of their own namespace. The chart ships the
two ClusterRoles and the two shared bindings (`sync.namespaces` pre-fills their subjects); the operator
adds each namespace it starts Jobs in, so a namespace the chart was not told about works too.
"""

from __future__ import annotations

from typing import Any

SYNC_ACCOUNT = "datacloud-sync"
CENTRES_ROLE = "datacloud-sync"  # ClusterRole: get DataCentres (cluster-scoped)
REPORT_ROLE = "datacloud-sync-report"  # ClusterRole, bound per namespace: the run's result ConfigMap
CREDENTIALS_ROLE = "datacloud-operator-credentials"  # the chart's Role: get Secrets, operator namespace
CREDENTIALS_BINDING = "datacloud-sync-credentials"
MANAGED_BY = {"app.kubernetes.io/managed-by": "datacloud"}
RBAC = "rbac.authorization.k8s.io"


def subject(namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": SYNC_ACCOUNT, "namespace": namespace}


def service_account(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SYNC_ACCOUNT, "namespace": namespace, "labels": MANAGED_BY},
    }


def report_binding(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": REPORT_ROLE, "namespace": namespace, "labels": MANAGED_BY},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": REPORT_ROLE},
        "subjects": [subject(namespace)],
    }


def cluster_roles() -> list[dict[str, Any]]:
    """The chart's two ClusterRoles, for a cluster the operator runs in without the chart (the dev stack)."""
    rules = {
        CENTRES_ROLE: [
            {"apiGroups": ["datacloud.fujian.gov.cn"], "resources": ["datacentres"], "verbs": ["get"]}
        ],
        REPORT_ROLE: [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]}],
    }
    return [
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": n, "labels": MANAGED_BY},
            "rules": r,
        }
        for n, r in rules.items()
    ]


def shared_bindings(operator_namespace: str) -> list[dict[str, Any]]:
    """The two bindings every sync namespace's account joins, without subjects yet."""
    return [
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CENTRES_ROLE, "labels": MANAGED_BY},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": CENTRES_ROLE},
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": CREDENTIALS_BINDING, "namespace": operator_namespace, "labels": MANAGED_BY},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": CREDENTIALS_ROLE},
        },
    ]


def with_subject(binding: dict[str, Any], namespace: str) -> list[dict[str, str]] | None:
    """The binding's subjects with the namespace's sync account added; None when it is there already."""
    subjects = list(binding.get("subjects") or [])
    wanted = subject(namespace)
    if any({k: s.get(k) for k in wanted} == wanted for s in subjects):
        return None
    return [*subjects, wanted]
