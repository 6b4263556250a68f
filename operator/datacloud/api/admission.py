"""The operator's finalizer, and an admission policy that puts it on new objects of the five kinds.

Every kind has a kopf daemon, so kopf keeps its finalizer on each object (the daemon must be stopped
before the object goes). Without help, kopf adds it with a PATCH as soon as it sees the object: one more
write of every new custom resource, which the API server validates and sends to every watcher. When the
API server serves MutatingAdmissionPolicy (admissionregistration.k8s.io/v1beta1, Kubernetes 1.34 with the
MutatingAdmissionPolicy feature gate on), this policy adds the finalizer in the create request itself and
kopf finds it already there. The policy only saves that write: with `failurePolicy: Ignore`, or on a
cluster without the API, kopf adds the finalizer as before.
"""

from __future__ import annotations

from typing import Any

from .. import GROUP
from .kinds import ALL_KINDS

FINALIZER = f"{GROUP}/finalizer"
POLICY_NAME = "datacloud-finalizer"
POLICY_API = "admissionregistration.k8s.io/v1beta1"

# JSON Patch cannot append to a list that is absent, so the expression adds the list or appends to it;
# an object created with the finalizer already on it is left as it is.
_EXPRESSION = f"""
!has(object.metadata.finalizers) ?
  [JSONPatch{{op: "add", path: "/metadata/finalizers", value: ["{FINALIZER}"]}}] :
  ("{FINALIZER}" in object.metadata.finalizers ? [] :
    [JSONPatch{{op: "add", path: "/metadata/finalizers/-", value: "{FINALIZER}"}}])
""".strip()


def finalizer_policy() -> list[dict[str, Any]]:
    """The MutatingAdmissionPolicy and its binding (cluster-scoped; installing them takes cluster-admin
    rights, so they ship with the Helm chart like the CRDs)."""
    labels = {"app.kubernetes.io/part-of": "datacloud"}
    policy = {
        "apiVersion": POLICY_API,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": labels},
        "spec": {
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "Never",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": sorted(k.plural for k in ALL_KINDS),
                    }
                ]
            },
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": _EXPRESSION}}],
        },
    }
    binding = {
        "apiVersion": POLICY_API,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": labels},
        "spec": {"policyName": POLICY_NAME},
    }
    return [policy, binding]
