"""The Kubernetes adapter: a thin layer over the official client for the calls reconcilers make.

Reconcilers take a `Kube` so tests can point them at any API server (the provincial one or a city's).
"""

from __future__ import annotations

import base64
import threading
from typing import Any, cast

import kubernetes
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from .. import GROUP, VERSION


class NotFound(LookupError):
    """The object does not exist."""


class Kube:
    """The API calls of the operator, against one cluster."""

    def __init__(self, api_client: ApiClient | None = None) -> None:
        self.api = api_client or ApiClient()
        self.core = CoreV1Api(self.api)
        self.custom = CustomObjectsApi(self.api)
        self._dynamic: DynamicClient | None = None

    @property
    def dynamic(self) -> DynamicClient:
        """Discovery-backed client for any kind; created on first use (discovery costs a few requests)."""
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api)
        return self._dynamic

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Kube:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=path, context=context, client_configuration=config)
        return cls(ApiClient(config))

    @classmethod
    def default(cls) -> Kube:
        """In-cluster credentials when running in a pod, else $KUBECONFIG / ~/.kube/config."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=config)
        return cls(ApiClient(config))

    # --- Any kind, by apiVersion and kind --------------------------------------------------------
    def apply(self, manifest: dict[str, Any], field_manager: str = "datacloud") -> dict[str, Any]:
        """Server-side apply: the operator owns exactly the fields it renders, nothing else."""
        resource = self.dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        meta = manifest["metadata"]
        out = resource.server_side_apply(
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=field_manager,
            force_conflicts=True,
        )
        return cast(dict[str, Any], out.to_dict())

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        try:
            return cast(dict[str, Any], resource.get(name=name, namespace=namespace).to_dict())
        except NotFoundError:
            raise NotFound(f"{kind} {namespace + '/' if namespace else ''}{name} not found") from None

    def read_all(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        out = resource.get(namespace=namespace, label_selector=label_selector)
        return [cast(dict[str, Any], i) for i in out.to_dict().get("items", [])]

    def remove(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        try:
            resource.delete(name=name, namespace=namespace)
        except NotFoundError:
            return False
        return True

    # --- Secrets -------------------------------------------------------------------------------
    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """The decoded data of a Secret; NotFound when it does not exist."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise NotFound(f"Secret {namespace}/{name} not found") from None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    # --- Custom resources ----------------------------------------------------------------------
    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        try:
            if namespace:
                obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            else:
                obj = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        except ApiException as e:
            if e.status == 404:
                raise NotFound(f"{plural}/{name} not found") from None
            raise
        return cast(dict[str, Any], obj)

    def list(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace:
            out = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        else:
            out = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
        return list(cast(dict[str, Any], out).get("items", []))

    def patch_status(
        self, plural: str, name: str, status: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch the status subresource."""
        body = {"status": status}
        if namespace:
            out = self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body
            )
        else:
            out = self.custom.patch_cluster_custom_object_status(GROUP, VERSION, plural, name, body)
        return cast(dict[str, Any], out)


_local = threading.local()


def shared() -> Kube:
    """One client per thread for the operator process (sync kopf handlers run in a thread pool)."""
    kube: Kube | None = getattr(_local, "kube", None)
    if kube is None:
        kube = Kube.default()
        _local.kube = kube
    return kube
