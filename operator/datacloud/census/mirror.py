"""A list-then-watch mirror of one collection of a city cluster, holding compact projections.

The first pass lists the collection in pages; from then on a watch from the list's resourceVersion
brings only what changed, so a heartbeat never refetches 50,000 unchanged pods. When the watch breaks
the mirror resumes from the last resourceVersion it saw, and relists only when the server says that
version is gone (410). A mirror runs in its own daemon thread; `stop()` closes the open watch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import urllib3

from ..adapters.kube import ApiError, Kube

T = TypeVar("T")
log = logging.getLogger(__name__)

PAGE_SIZE = 500
WATCH_SECONDS = 240  # the server ends a watch after this; the mirror reopens it from its last version
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)


class Mirror(Generic[T]):
    """Items of `path` (e.g. /api/v1/pods) keyed by namespace/name, projected by `project`; an item
    projected to None is left out (a terminated pod)."""

    def __init__(
        self,
        kube: Kube,
        path: str,
        project: Callable[[Mapping[str, Any]], T | None],
        field_selector: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.kube = kube
        self.path = path
        self.project = project
        self.query: dict[str, str | int] = {"fieldSelector": field_selector} if field_selector else {}
        self.page_size = page_size
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()
        self._resource_version: str | None = None
        self._stop = threading.Event()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()  # set after the first complete list
        self.revision = 0  # bumped on every change, so callers can skip re-aggregating
        self.error: ApiError | None = None  # the last failure; None while the watch is healthy
        self.lists = 0  # full lists done (1 unless the server expired our resourceVersion)

    # --- Reading -------------------------------------------------------------------------------
    def items(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

    @property
    def healthy(self) -> bool:
        return self.synced.is_set() and self.error is None

    # --- Running -------------------------------------------------------------------------------
    def start(self, name: str) -> Mirror[T]:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(OSError, AttributeError):
                response.shutdown()

    def sync_once(self) -> None:
        """List everything now (the census's one-shot collection uses this without a thread)."""
        self._relist()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self._resource_version is None:
                    self._relist()
                self._watch()
                failures = 0
            except ApiError as e:
                if e.reason == "Gone":
                    self._resource_version = None  # too old: list again
                    continue
                if self._stop.is_set():
                    return
                self.error = e
                self._stop.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
            except Exception as e:  # a thread that dies silently would freeze the census: log and retry
                log.warning("mirror of %s failed: %s", self.path, type(e).__name__)
                self.error = ApiError("Failed", f"unexpected {type(e).__name__}")
                self._stop.wait(RETRY_SECONDS[-1])

    def _relist(self) -> None:
        items: dict[str, T] = {}
        version = None
        for page in self.kube.list_pages(self.path, self.query, self.page_size):
            version = version or (page.get("metadata") or {}).get("resourceVersion")
            for obj in page.get("items") or []:
                projected = self.project(obj)
                if projected is not None:
                    items[_key(obj)] = projected
        with self._lock:
            self._items = items
            self.revision += 1
        self._resource_version = version
        self.lists += 1
        self.error = None
        self.synced.set()

    def _watch(self) -> None:
        assert self._resource_version is not None
        query = {**self.query, "resourceVersion": self._resource_version}
        response, events = self.kube.watch(self.path, query, WATCH_SECONDS)
        self._response = response
        self.error = None
        try:
            for event in events:
                if self._stop.is_set():
                    return
                self._apply(event)
        finally:
            self._response = None

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            raise ApiError("Gone" if code == 410 else "ServerError", str(obj.get("message", ""))[:200], code)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            key = _key(obj)
            projected = None if kind == "DELETED" else self.project(obj)
            with self._lock:
                if projected is None:
                    self._items.pop(key, None)
                else:
                    self._items[key] = projected
                self.revision += 1
        if version:
            self._resource_version = version


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def wait_synced(mirrors: list[Mirror[Any]], timeout_s: float) -> bool:
    """Wait until every mirror has listed once, or one has failed, or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(m.synced.is_set() for m in mirrors):
            return True
        if any(m.error is not None and not m.synced.is_set() for m in mirrors):
            return False
        time.sleep(0.02)
    return all(m.synced.is_set() for m in mirrors)
