"""Before a sync Job is created: its namespace has the ServiceAccount `datacloud-sync` and the bindings
its pods need (builders/sync_account.py). Without them the Job's pods are never created and the run
waits for ever; a refusal here is reported by the caller as the Job's (condition, Event)."""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..adapters.kube import Kube, NotFound
from ..builders import sync_account as build

# A namespace found complete is not looked at again for this long: a mass failover launched one seed Job
# per replica, each preceded by three or four reads of the same account and bindings. Something deleted
# meanwhile is recreated at the next Job after that (until then a Job's pods wait, which the replica's
# JobsHealthy condition reports).
ENSURED_FOR_S = 60.0
_ensured: dict[tuple[str, str], float] = {}  # (namespace, operator namespace) → when found complete


def ensure(kube: Kube, namespace: str, operator_namespace: str) -> None:
    """Create what is missing, add the namespace to the shared bindings; ApiException when refused."""
    key = (namespace, operator_namespace)
    if time.monotonic() - _ensured.get(key, -ENSURED_FOR_S) < ENSURED_FOR_S:
        return
    _complete(kube, namespace, operator_namespace)
    _ensured[key] = time.monotonic()


def _complete(kube: Kube, namespace: str, operator_namespace: str) -> None:
    _create_missing(kube, build.service_account(namespace))
    _create_missing(kube, build.report_binding(namespace))
    for binding in build.shared_bindings(operator_namespace):
        meta = binding["metadata"]
        try:
            live = kube.read(binding["apiVersion"], binding["kind"], meta["name"], meta.get("namespace"))
        except NotFound:
            if binding["kind"] == "ClusterRoleBinding":
                for role in build.cluster_roles():  # no chart (the dev stack): its roles too
                    _create_missing(kube, role)
            live = _create_missing(kube, binding)
        subjects = build.with_subject(live, namespace)
        if subjects is not None:
            # With the version read: two replicas' reconcilers adding at once conflict (409), not overwrite.
            patch = {
                "metadata": {"resourceVersion": live["metadata"]["resourceVersion"]},
                "subjects": subjects,
            }
            kube.merge_patch(
                binding["apiVersion"], binding["kind"], meta["name"], patch, meta.get("namespace")
            )


def _create_missing(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    meta = manifest["metadata"]
    try:
        return kube.read(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
    except NotFound:
        pass
    try:
        return kube.create(manifest)
    except ApiException as e:
        if e.status != 409:  # created by someone else meanwhile: read it
            raise
    return kube.read(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace"))
