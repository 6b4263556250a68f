"""Watch caches of what zones own: namespaces and children carrying `managed-by: datacloud`.

The API server filters by label, so the operator receives and holds only its own objects (a few hundred
bytes each), however many other namespaces, quotas, policies and bindings the cluster has. Each cache is a
thread that lists, then watches from the list's resourceVersion, and lists again when the watch expires.

A zone's own writes come back as watch events. Each write's resourceVersion is handed to the cache
(`ZoneCaches.expect`) and its echo updates the cache without waking the zone: the zone already knows
that state, and waking it would only run a reconcile that finds nothing to do. Any other change (another
resourceVersion: the quota controller's status, an edit, a deletion) wakes it as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.kube import ApiError, Kube
from ..builders.datazone_profile import LABEL_MANAGED_BY, LABEL_ZONE, MANAGER

log = logging.getLogger(__name__)
SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
CHILD_PATHS = {
    "ResourceQuota": "/api/v1/resourcequotas",
    "LimitRange": "/api/v1/limitranges",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/networkpolicies",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/rolebindings",
}
NAMESPACES = "/api/v1/namespaces"


Entry = tuple[str | None, Any]  # (zone label, projection)


@dataclass(frozen=True)
class Change:
    """One watch event on an object labelled with a zone. `usage` is set when only a ResourceQuota's usage
    changed (status.used, the quota controller counting): the zone runtime may find it already reported."""

    kind: str
    namespace: str
    name: str
    version: str
    usage: Mapping[str, str] | None = None


Changed = Callable[[str | None, Change | None], None]  # (zone, the change; None: a relist found it)
ECHOES_MAX = 10_000


def _usage_only(old: Entry | None, new: Entry | None) -> Mapping[str, str] | None:
    """The new usage when a quota's usage is all that changed between two cache entries, else None."""
    if old is None or new is None or not isinstance(new[1], Mapping) or "status" not in new[1]:
        return None
    if old[0] != new[0] or _without_usage(old[1]) != _without_usage(new[1]):
        return None
    return dict((new[1].get("status") or {}).get("used") or {})


def _without_usage(projection: Any) -> Any:
    if not isinstance(projection, Mapping):
        return projection
    meta = {k: v for k, v in (projection.get("metadata") or {}).items() if k != "resourceVersion"}
    return {**{k: v for k, v in projection.items() if k != "status"}, "metadata": meta}


def _version(projection: Any) -> str | None:
    """The resourceVersion a projection carries (children's do; namespaces' do not)."""
    if isinstance(projection, Mapping):
        return (projection.get("metadata") or {}).get("resourceVersion")
    return None


class Informer(threading.Thread):
    """List + watch one kind by label. Two indexes, by namespace and by zone label; their inner dicts are
    replaced, never changed, so readers on other threads can iterate what they got while this one writes."""

    def __init__(
        self,
        kube: Kube,
        kind: str,
        path: str,
        project: Callable[[dict[str, Any]], Any],
        changed: Changed,
    ) -> None:
        super().__init__(name=f"zone-cache-{kind}", daemon=True)
        self.kube, self.kind, self.path, self.project, self.changed = kube, kind, path, project, changed
        self.by_ns: dict[str, dict[str, Entry]] = {}
        self.by_zone: dict[str, dict[tuple[str, str], Any]] = {}
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self._resp: Any = None
        self._echoes: dict[tuple[str, str], str] = {}  # (namespace, name) → resourceVersion of our write
        self._echoes_lock = threading.Lock()

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace") or ""), str(meta.get("name"))

    def _entry(self, obj: dict[str, Any]) -> Entry:
        obj.setdefault("kind", self.kind)
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return labels.get(LABEL_ZONE), self.project(obj)

    def get(self, namespace: str, name: str) -> Any:
        entry = self.by_ns.get(namespace, {}).get(name)
        return entry[1] if entry else None

    def _put(self, key: tuple[str, str], entry: Entry | None) -> Entry | None:
        ns, name = key
        inner = dict(self.by_ns.get(ns, {}))
        old = inner.pop(name, None)
        if entry is not None:
            inner[name] = entry
        self.by_ns[ns] = inner
        for zone, add in ((old[0] if old else None, False), (entry[0] if entry else None, True)):
            if zone:
                members = dict(self.by_zone.get(zone, {}))
                members.pop(key, None)
                if add and entry is not None:
                    members[key] = entry[1]
                self.by_zone[zone] = members
        return old

    def expect(self, namespace: str, name: str, version: str) -> None:
        """The zone wrote this object and got `version` back: its watch event is an echo. A write whose
        event is already in (the cache holds that version) has nothing left to expect."""
        entry = self.by_ns.get(namespace, {}).get(name)
        if entry is not None and _version(entry[1]) == version:
            return
        with self._echoes_lock:
            if len(self._echoes) >= ECHOES_MAX:  # events that never came (a watch restarted): forget them
                self._echoes.clear()
            self._echoes[(namespace, name)] = version

    def _echo(self, key: tuple[str, str], version: str) -> bool:
        with self._echoes_lock:
            if self._echoes.get(key) != version:
                return False
            del self._echoes[key]
            return True

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                version = self._list()
                failures = 0
                while version and not self.stopping.is_set():
                    version = self._watch(version)
            except ApiError as e:
                if self.stopping.is_set():
                    return  # stop() closed the watch: the break is ours, not the API server's
                failures += 1
                log.warning("zone cache of %s: %s; retrying", self.kind, e)
                self.stopping.wait(min(30.0, 0.5 * 2**failures))

    def _list(self) -> str:
        fresh: dict[tuple[str, str], Entry] = {}
        version = ""
        for page in self.kube.list_pages(self.path, {"labelSelector": SELECTOR}):
            for obj in page.get("items") or []:
                fresh[self._key(obj)] = self._entry(obj)
            version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        before = {(ns, name): e for ns, inner in self.by_ns.items() for name, e in inner.items()}
        for key in before.keys() | fresh.keys():  # whatever changed while nobody watched
            if before.get(key) != fresh.get(key):
                old = self._put(key, fresh.get(key))
                for entry in (old, fresh.get(key)):
                    if entry:
                        self.changed(entry[0], None)
        with self._echoes_lock:  # the list above compared everything itself
            self._echoes.clear()
        self.synced.set()
        return version

    def _watch(self, version: str) -> str:
        """Follow changes; returns the version to resume from, or "" when a fresh list is needed."""
        query = {"labelSelector": SELECTOR, "resourceVersion": version}
        self._resp, events = self.kube.watch(self.path, query, 290)
        for event in events:
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # typically 410 Gone: the version is too old to resume from
                return ""
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            key = self._key(obj)
            entry = None if kind == "DELETED" else self._entry(obj)
            old = self._put(key, entry)
            echo = entry is not None and self._echo(key, version)  # the zone's own write coming back
            change = Change(self.kind, key[0], key[1], version, _usage_only(old, entry))
            if old and not (echo and entry and old[0] == entry[0]):
                self.changed(old[0], change)
            if entry and not echo and not (old and old[0] == entry[0]):
                self.changed(entry[0], change)
        return version

    def stop(self) -> None:
        self.stopping.set()
        resp = self._resp
        if resp is not None:
            resp.shutdown() if hasattr(resp, "shutdown") else resp.close()


class ZoneCaches:
    """The namespaces and children of every zone, by namespace and by zone."""

    def __init__(
        self,
        make_kube: Callable[[], Kube],
        changed: Changed,
        project_namespace: Callable[[dict[str, Any]], Any],
        project_child: Callable[[dict[str, Any]], Any],
    ) -> None:
        self.namespaces = Informer(make_kube(), "Namespace", NAMESPACES, project_namespace, changed)
        self.children = {
            kind: Informer(make_kube(), kind, path, project_child, changed)
            for kind, path in CHILD_PATHS.items()
        }

    @property
    def informers(self) -> list[Informer]:
        return [self.namespaces, *self.children.values()]

    def start(self, timeout: float = 120.0) -> None:
        for informer in self.informers:
            informer.start()
        for informer in self.informers:
            if not informer.synced.wait(timeout):
                raise TimeoutError(f"the zone cache of {informer.kind} did not sync in {timeout:.0f}s")

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    def namespace(self, name: str) -> Any:
        return self.namespaces.get("", name)

    def zone_namespaces(self, zone: str) -> list[Any]:
        return list(self.namespaces.by_zone.get(zone, {}).values())

    def children_of(self, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (kind, name): entry[1]
            for kind, informer in self.children.items()
            for name, entry in informer.by_ns.get(namespace, {}).items()
        }

    def expect(self, namespace: str, kind: str, name: str, version: str) -> None:
        """A zone wrote this object (`version` is the resourceVersion it got back): see `Informer.expect`."""
        if kind == "Namespace":
            self.namespaces.expect("", name, version)
        elif kind in self.children:
            self.children[kind].expect(namespace, name, version)

    def has(self, namespace: str, kind: str, name: str) -> bool:
        if kind == "Namespace":
            return self.namespace(namespace) is not None
        return self.children[kind].get(namespace, name) is not None
