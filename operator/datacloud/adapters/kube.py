"""The Kubernetes adapter: a thin layer over the official client for the calls reconcilers make.

Reconcilers take a `Kube` so tests can point them at any API server (the provincial one or a city's).
Every write goes through the official client (typed API for our kinds and core objects, the dynamic
client for any other kind). Reads of a city's nodes and pods (large lists and watches) go through raw JSON
requests (`get_json`, `list_pages`, `watch`) that decode JSON only, without the client's model object
for every node and pod of a large city; their failures are classified as `ApiError` reasons.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any, cast
from urllib.parse import urlencode

import kubernetes
import urllib3
import yaml
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.discovery import LazyDiscoverer
from kubernetes.dynamic.exceptions import NotFoundError

from .. import GROUP, VERSION


class MemoryDiscoverer(LazyDiscoverer):
    """The dynamic client's discovery, kept in memory only. The client's default cache is one file per
    API server in the temporary directory, shared by every process and thread that talks to it and
    rewritten in place without a lock: a worker reading it while another wrote it logged
    `load cache error` at ERROR (harmless, it then discovered afresh), dozens of alarming lines each
    time the operator started its workers. Discovery costs each client a few requests instead."""

    def _write_cache(self) -> None:
        """Nothing is written: the cache of this client lives as long as the client."""


# Never created (MemoryDiscoverer writes nothing), so every client discovers afresh.
_NO_CACHE_FILE = "/nonexistent/datacloud-discovery.json"


class NotFound(LookupError):
    """The object does not exist."""


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used; the message never quotes the kubeconfig's contents."""


class ApiError(Exception):
    """A raw request that failed, classified: `reason` is one CamelCase word fit for a condition.

    Reasons: CertificateInvalid (the server's certificate is not signed by the kubeconfig's CA),
    Unauthorized (401: credentials rejected or expired), Forbidden (403), NotFound (404), Gone (410: a
    resourceVersion too old to list or watch from), ServerError (5xx), Unreachable (no answer in time).
    """

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status

    @property
    def transient(self) -> bool:
        """Whether waiting may cure it (a city that is down), unlike a bad CA or rejected credentials."""
        return self.reason in ("Unreachable", "ServerError")


_STATUS_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Gone"}


def _check_kubeconfig(config: object) -> dict[str, Any]:
    """Refuse what is not a kubeconfig, and credential plugins: a Secret must not make the operator
    run a program (`exec`) or call out to an identity provider (`auth-provider`)."""
    if not isinstance(config, dict) or not isinstance(config.get("clusters"), list):
        raise KubeconfigError("not a kubeconfig: no clusters list")
    for user in config.get("users") or []:
        details = user.get("user") if isinstance(user, dict) else None
        if isinstance(details, dict) and ("exec" in details or "auth-provider" in details):
            raise KubeconfigError(
                "credential plugins (exec, auth-provider) are not allowed in a city kubeconfig"
            )
    return config


class Kube:
    """The API calls of the operator, against one cluster."""

    def __init__(self, api_client: ApiClient | None = None, timeout_s: float = 30.0) -> None:
        self.api = api_client or ApiClient()
        self.core = CoreV1Api(self.api)
        self.custom = CustomObjectsApi(self.api)
        self._dynamic: DynamicClient | None = None
        self.timeout_s = timeout_s
        self._pool: urllib3.PoolManager | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_kubeconfig_text(cls, text: str, timeout_s: float = 5.0) -> Kube:
        """A client from a kubeconfig held in memory (a city's Secret), with short timeouts so a dead
        city fails fast. Raises KubeconfigError with a message that quotes nothing from `text`."""
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise KubeconfigError(f"not valid YAML{where}") from None
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config_from_dict(
                _check_kubeconfig(raw), client_configuration=config, persist_config=False
            )
        except KubeconfigError:
            raise
        except (kubernetes.config.ConfigException, ValueError, TypeError, KeyError, AttributeError) as e:
            # The loader's messages name keys and paths (kube-config/clusters[name=x]/...), not values.
            detail = str(e) if isinstance(e, kubernetes.config.ConfigException) else type(e).__name__
            raise KubeconfigError(f"unusable kubeconfig: {detail[:200]}") from None
        return cls(ApiClient(config), timeout_s=timeout_s)

    @property
    def dynamic(self) -> DynamicClient:
        """Discovery-backed client for any kind; created on first use (discovery costs a few requests)."""
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api, cache_file=_NO_CACHE_FILE, discoverer=MemoryDiscoverer)
        return self._dynamic

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Kube:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=path, context=context, client_configuration=config)
        return cls(ApiClient(config))

    @classmethod
    def default(cls, pool_size: int | None = None) -> Kube:
        """In-cluster credentials when running in a pod, else $KUBECONFIG / ~/.kube/config. `pool_size`
        sizes the connection pool of a client shared by many threads."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=config)
        if pool_size:
            config.connection_pool_maxsize = pool_size
        return cls(ApiClient(config))

    # --- Raw JSON requests (large lists and watches, without model deserialisation) -------------
    def _raw_pool(self) -> urllib3.PoolManager:
        with self._pool_lock:
            if self._pool is None:
                c = self.api.configuration
                self._pool = urllib3.PoolManager(
                    num_pools=2,
                    maxsize=4,
                    retries=False,
                    cert_reqs=ssl.CERT_REQUIRED if c.verify_ssl else ssl.CERT_NONE,
                    ca_certs=c.ssl_ca_cert,
                    cert_file=c.cert_file,
                    key_file=c.key_file,
                    server_hostname=c.tls_server_name,
                )
            return self._pool

    def _raw_request(
        self, path: str, query: Mapping[str, str | int] | None, read_timeout: float
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": "application/json"}
        auth = self.api.configuration.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            headers["Authorization"] = str(auth["value"])
        url = self.api.configuration.host + path + ("?" + urlencode(query) if query else "")
        connect = min(self.timeout_s, 5.0)
        try:
            resp = self._raw_pool().request(
                "GET",
                url,
                headers=headers,
                preload_content=False,
                timeout=urllib3.Timeout(connect=connect, read=read_timeout),
            )
        except urllib3.exceptions.SSLError as e:
            text = str(e)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                raise ApiError(
                    "CertificateInvalid",
                    "the server's certificate is not trusted by the CA in the kubeconfig",
                ) from None
            raise ApiError("Unreachable", f"TLS handshake failed: {text[:160]}") from None
        except urllib3.exceptions.HTTPError as e:
            raise ApiError(
                "Unreachable", f"{self.api.configuration.host} did not answer ({type(e).__name__})"
            ) from None
        if resp.status >= 400:
            body = resp.read(4096)
            resp.release_conn()
            try:
                message = str(json.loads(body).get("message", ""))
            except ValueError:
                message = ""
            reason = _STATUS_REASONS.get(resp.status, "ServerError" if resp.status >= 500 else "Failed")
            raise ApiError(reason, f"HTTP {resp.status} for {path}: {message[:200] or reason}", resp.status)
        return resp

    def get_json(self, path: str, query: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        """GET a path (`/version`, `/api/v1/nodes`) as decoded JSON; ApiError when it fails."""
        resp = self._raw_request(path, query, self.timeout_s)
        try:
            data = resp.data
        except urllib3.exceptions.HTTPError as e:
            raise ApiError("Unreachable", f"reading {path} failed ({type(e).__name__})") from None
        finally:
            resp.release_conn()
        return cast(dict[str, Any], json.loads(data))

    def list_pages(
        self, path: str, query: Mapping[str, str | int] | None = None, page: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Each page of a paginated list (limit/continue); all pages share the first page's snapshot."""
        params: dict[str, str | int] = {**(query or {}), "limit": page}
        while True:
            out = self.get_json(path, params)
            yield out
            token = (out.get("metadata") or {}).get("continue")
            if not token:
                return
            params["continue"] = token

    def watch(
        self, path: str, query: Mapping[str, str | int], server_timeout_s: int
    ) -> tuple[urllib3.BaseHTTPResponse, Iterator[dict[str, Any]]]:
        """Open a watch; returns the response (close it to stop from another thread) and its events."""
        params = {**query, "watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": server_timeout_s}
        resp = self._raw_request(path, params, server_timeout_s + 10.0)

        def events() -> Iterator[dict[str, Any]]:
            try:
                for line in resp:
                    if line.strip():
                        yield cast(dict[str, Any], json.loads(line))
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
                raise ApiError("Unreachable", f"watch on {path} broke ({type(e).__name__})") from None
            finally:
                resp.release_conn()

        return resp, events()

    def close(self) -> None:
        """Drop pooled connections (a city whose kubeconfig changed or which was deleted)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.clear()
                self._pool = None
        self.api.close()

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

    def create(self, manifest: dict[str, Any], field_manager: str = "datacloud") -> dict[str, Any]:
        """Create only (POST): ApiException 409 when the name is taken, so two creators cannot both win."""
        resource = self.dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        out = resource.create(
            body=manifest, namespace=manifest["metadata"].get("namespace"), field_manager=field_manager
        )
        return cast(dict[str, Any], out.to_dict())

    def merge_patch(
        self, api_version: str, kind: str, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch (null removes a key, including keys another field manager set)."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        out = resource.patch(
            body=patch, name=name, namespace=namespace, content_type="application/merge-patch+json"
        )
        return cast(dict[str, Any], out.to_dict())

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        try:
            return cast(dict[str, Any], resource.get(name=name, namespace=namespace).to_dict())
        except NotFoundError:
            raise NotFound(f"{kind} {namespace + '/' if namespace else ''}{name} not found") from None

    def read_all(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        cached: bool = False,
    ) -> list[dict[str, Any]]:
        """`cached`: from the API server's watch cache (resourceVersion 0), which may be a moment behind,
        instead of a read through to etcd, which reads every object of the kind in the namespace to
        filter by label: cheap when many callers list a kind with many objects."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        extra = {"resource_version": "0"} if cached else {}
        out = resource.get(namespace=namespace, label_selector=label_selector, **extra)
        return [cast(dict[str, Any], i) for i in out.to_dict().get("items", [])]

    def remove(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone. `propagation` "Background" also deletes what the object
        owns (a Job's pods: the API's default for Jobs leaves them running)."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        body = {"propagationPolicy": propagation} if propagation else None
        try:
            resource.delete(name=name, namespace=namespace, body=body)
        except NotFoundError:
            return False
        return True

    # --- Secrets -------------------------------------------------------------------------------
    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """The decoded data of a Secret; NotFound when it does not exist. A value that is not UTF-8 (a
        binary key beside the one wanted, e.g. a .p12 bundle) is decoded with U+FFFD replacements: it
        cannot be a kubeconfig or an access key anyway, and raising here failed every read of the Secret."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise NotFound(f"Secret {namespace}/{name} not found") from None
            raise
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()}

    def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        """The data of a ConfigMap; NotFound when it does not exist."""
        try:
            cm = self.core.read_namespaced_config_map(name, namespace)
        except ApiException as e:
            if e.status == 404:
                raise NotFound(f"ConfigMap {namespace}/{name} not found") from None
            raise
        return dict(cm.data or {})

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

    def patch(self, plural: str, name: str, patch: dict[str, Any], namespace: str | None = None) -> None:
        """Merge-patch a custom resource (an annotation, a spec field): what the CLI asks of the operator."""
        if namespace:
            self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch)
        else:
            self.custom.patch_cluster_custom_object(GROUP, VERSION, plural, name, patch)

    def patch_status(
        self, plural: str, name: str, status: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch the status subresource, as field manager `datacloud`."""
        body = {"status": status}
        if namespace:
            out = self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body, field_manager="datacloud"
            )
        else:
            out = self.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, name, body, field_manager="datacloud"
            )
        return cast(dict[str, Any], out)


_local = threading.local()


def shared() -> Kube:
    """One client per thread for the operator process (sync kopf handlers run in a thread pool)."""
    kube: Kube | None = getattr(_local, "kube", None)
    if kube is None:
        kube = Kube.default()
        _local.kube = kube
    return kube
