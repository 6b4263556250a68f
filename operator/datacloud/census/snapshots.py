"""Census snapshots: what one run found (rows of figures), kept as `spec.retain` says.

A snapshot is a small JSON document — its size grows with cities × centres × GPU models, not with
nodes — stored gzipped. Its home is a ConfigMap in the operator namespace; when a snapshot would push
that ConfigMap past `BUDGET_BYTES` (the API server refuses objects over 1 MiB) it spills to the census's
object store, and the ConfigMap's `index.json` records where each snapshot is. Without an object store
the oldest snapshots are dropped to make room and the run says so: nothing is lost silently.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..adapters import s3
from ..adapters.kube import Kube

SCHEMA = "datacloud.fujian.gov.cn/census-snapshot/v1"
# A ConfigMap must stay under 1 MiB in total (keys, metadata, base64 of binaryData); keep a margin.
BUDGET_BYTES = 900 * 1024
INDEX_KEY = "index.json"

Row = dict[str, Any]  # one report row: flat, JSON-ready (see report.COLUMNS)


@dataclass
class Snapshot:
    census: str
    taken_at: str  # RFC 3339, the end of the run
    duration_s: float
    rows: list[Row]
    problems: list[str] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)  # what was read: cities, centres, prometheus

    def wire(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "census": self.census,
            "takenAt": self.taken_at,
            "durationSeconds": round(self.duration_s, 3),
            "problems": self.problems,
            "sources": self.sources,
            "rows": self.rows,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Snapshot:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a census snapshot (schema {data.get('schema')!r})")
        return cls(
            census=str(data["census"]),
            taken_at=str(data["takenAt"]),
            duration_s=float(data.get("durationSeconds") or 0),
            rows=list(data.get("rows") or []),
            problems=list(data.get("problems") or []),
            sources=dict(data.get("sources") or {}),
        )

    def encode(self) -> bytes:
        return gzip.compress(json.dumps(self.wire(), ensure_ascii=False, sort_keys=True).encode(), 6)

    @classmethod
    def decode(cls, blob: bytes) -> Snapshot:
        return cls.from_wire(json.loads(gzip.decompress(blob)))


def snapshot_key(taken_at: str) -> str:
    """ConfigMap keys allow [-._a-zA-Z0-9]: `snapshot-20250101T060000Z.json.gz`."""
    return "snapshot-" + taken_at.replace("-", "").replace(":", "") + ".json.gz"


# --- Where each snapshot goes: a pure plan ---------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One retained snapshot in the index: `where` is "configmap" or an `s3://centre/bucket/key`."""

    taken_at: str
    key: str
    where: str
    size: int

    def wire(self) -> dict[str, Any]:
        return {"takenAt": self.taken_at, "key": self.key, "where": self.where, "bytes": self.size}


@dataclass
class Placement:
    keep: list[Entry]  # oldest first, the new one last
    drop: list[Entry]  # beyond `retain`, or evicted for room
    trimmed: int = 0  # evicted only for room (retain not reached): the run must say so
    problem: str | None = None  # the new snapshot could not be kept anywhere


def plan(
    index: Sequence[Entry],
    new_key: str,
    new_taken: str,
    new_size: int,
    retain: int,
    budget: int,
    s3_location: str | None,
) -> Placement:
    """Where the new snapshot goes and which old ones go: the ConfigMap while it stays within `budget`
    (base64 inflates binaryData by 4/3), else `s3_location` (a prefix); without one, the oldest
    ConfigMap snapshots are evicted until it fits."""
    old = sorted(index, key=lambda e: e.taken_at)
    drop = old[: max(0, len(old) + 1 - retain)]
    kept = old[len(drop) :]

    def inline(entries: Iterable[Entry]) -> int:
        return sum(4 * ((e.size + 2) // 3) for e in entries if e.where == "configmap")

    need = 4 * ((new_size + 2) // 3)
    if inline(kept) + need <= budget:
        return Placement([*kept, Entry(new_taken, new_key, "configmap", new_size)], drop)
    if s3_location:
        return Placement([*kept, Entry(new_taken, new_key, s3_location + new_key, new_size)], drop)
    if need > budget:
        return Placement(
            kept,
            drop,
            problem=f"a snapshot of {new_size} bytes exceeds the ConfigMap "
            f"budget of {budget} bytes; configure reports.objectStore",
        )
    trimmed = 0
    while inline(kept) + need > budget:
        victim = next(e for e in kept if e.where == "configmap")
        kept.remove(victim)
        drop.append(victim)
        trimmed += 1
    return Placement([*kept, Entry(new_taken, new_key, "configmap", new_size)], drop, trimmed)


# --- The store -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    """A census's object store: the DataCentre's endpoint, a bucket and a key prefix."""

    centre: str
    endpoint: s3.S3Endpoint
    bucket: str
    prefix: str

    def url(self, key: str) -> str:
        return f"s3://{self.centre}/{self.bucket}/{self.prefix}{key}"

    def client(self) -> Any:
        return s3.client(self.endpoint, connect_timeout=3.0, read_timeout=30.0, max_pool=4)

    def ensure(self) -> None:
        c = self.client()
        try:
            c.head_bucket(Bucket=self.bucket)
        except c.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            c.create_bucket(Bucket=self.bucket)

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.client().put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=body, ContentType=content_type
        )
        return self.url(key)

    def get(self, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read())

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=self.prefix + key)


@dataclass
class SaveResult:
    entry: Entry | None
    retained: int
    trimmed: int
    problem: str | None
    location: str  # where the index is, for status


class SnapshotStore:
    """Snapshots of one census: the ConfigMap `<namespace>/census-<name>-snapshots` (index + inline
    snapshots) and, for those that spilled, `<prefix><name>/snapshots/` in the census's bucket."""

    def __init__(
        self, kube: Kube, namespace: str, census: str, bucket: Bucket | None, budget: int = BUDGET_BYTES
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.census = census
        self.name = f"census-{census}-snapshots"
        self.bucket = bucket
        self.budget = budget

    @property
    def location(self) -> str:
        return f"configmap://{self.namespace}/{self.name}"

    def _read(self) -> tuple[list[Entry], dict[str, str]]:
        try:
            cm = self.kube.core.read_namespaced_config_map(self.name, self.namespace)
        except Exception as e:  # the client raises ApiException; 404 means "no snapshots yet"
            if getattr(e, "status", None) == 404:
                return [], {}
            raise
        data = dict(cm.data or {})
        binary = {str(k): str(v) for k, v in (cm.binary_data or {}).items()}
        index = [
            Entry(str(e["takenAt"]), str(e["key"]), str(e["where"]), int(e.get("bytes") or 0))
            for e in json.loads(data.get(INDEX_KEY) or "[]")
        ]
        return index, binary

    def index(self) -> list[Entry]:
        return self._read()[0]

    def load(self, limit: int | None = None) -> tuple[list[Snapshot], list[str]]:
        """Retained snapshots, oldest first, and a problem line for each that could not be read."""
        index, binary = self._read()
        out: list[Snapshot] = []
        problems: list[str] = []
        for e in index[-limit:] if limit else index:
            try:
                if e.where == "configmap":
                    out.append(Snapshot.decode(base64.b64decode(binary[e.key])))
                elif self.bucket is not None:
                    out.append(Snapshot.decode(self.bucket.get(self._s3_key(e.key))))
                else:
                    problems.append(f"snapshot {e.taken_at} is in {e.where}, but no object store is set")
            except Exception as err:  # one unreadable snapshot costs a trend point, not the run
                problems.append(f"snapshot {e.taken_at} in {e.where} unreadable: {type(err).__name__}")
        return out, problems

    def _s3_key(self, key: str) -> str:
        return f"{self.census}/snapshots/{key}"

    def save(self, snapshot: Snapshot, retain: int) -> SaveResult:
        index, binary = self._read()
        blob = snapshot.encode()
        key = snapshot_key(snapshot.taken_at)
        spill = self.bucket.url(self._s3_key("")) if self.bucket else None
        placed = plan(index, key, snapshot.taken_at, len(blob), retain, self.budget, spill)
        if placed.problem:
            return SaveResult(None, len(placed.keep), 0, placed.problem, self.location)
        new = placed.keep[-1]
        if new.where != "configmap":
            assert self.bucket is not None
            self.bucket.ensure()
            self.bucket.put(self._s3_key(key), blob, "application/gzip")
        else:
            binary[key] = base64.b64encode(blob).decode()
        for gone in placed.drop:
            if gone.where == "configmap":
                binary.pop(gone.key, None)
            elif self.bucket is not None:
                # an orphaned old snapshot is harmless: the index no longer names it
                with contextlib.suppress(Exception):
                    self.bucket.delete(self._s3_key(gone.key))
        self._write([e.wire() for e in placed.keep], binary)
        return SaveResult(new, len(placed.keep), placed.trimmed, None, self.location)

    def _write(self, index: list[dict[str, Any]], binary: dict[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "datacloud",
                    "datacloud.fujian.gov.cn/census": self.census,
                },
            },
            "data": {INDEX_KEY: json.dumps(index, indent=1)},
            "binaryData": binary,
        }
        try:
            self.kube.core.replace_namespaced_config_map(self.name, self.namespace, body)  # type: ignore[arg-type]
        except Exception as e:
            if getattr(e, "status", None) != 404:
                raise
            self.kube.core.create_namespaced_config_map(self.namespace, body)  # type: ignore[arg-type]
