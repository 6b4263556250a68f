"""Divergent writes: what a copy accepted that the active copy lacks, kept before anything overwrites it.

After an unplanned failover the old active may hold writes the new active never received (the lag at
the cut, and writes acknowledged before the fence took hold). Such a copy is marked pending; no flow
(continuous follower, scheduled Job, final sync) may write into it until it has been compared with the
active copy and every object it holds that the active lacks, or holds differently, has been copied —
bytes and metadata, server-side in its own store — to the quarantine bucket

    datacloud-divergent / <namespace>/<replica>/e<epoch>/<key relative to the copy's prefix>

with a manifest (`.../e<epoch>.manifest.json`). Nothing in the quarantine is ever deleted by the
operator; `datacloud dr divergent list|restore` shows and restores it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3
from ..api.drreplica import DRReplicaSpec
from ..api.overlap import folder
from ..api.reserved import QUARANTINE_BUCKET
from ..failover import fencing
from ..failover.topology import Copy, Flow, active_copy, copies, flows
from ..replication.errors import ReplicationError
from ..replication.listing import ObjectInfo, Relation, iter_objects, merge_join
from .centres import Centre
from .dr_context import ReplicaContext

log = logging.getLogger(__name__)
KEEP_RECORDS = 20
REVIEWED_ANNOTATION = "datacloud.fujian.gov.cn/divergent-reviewed"
STORE_TIME_RESOLUTION_S = 1.0  # S3 last-modified times have whole seconds


@dataclass
class Scan:
    found: list[dict[str, Any]] = field(default_factory=list)  # manifest entries
    bytes: int = 0
    # Objects the old copy no longer holds though it had them when the active copy last heard from it:
    # deletes it acknowledged that never reached the active copy (manifest entries; nothing to copy).
    deleted: list[dict[str, Any]] = field(default_factory=list)


def quarantine_prefix(namespace: str, replica: str, epoch: int) -> str:
    return f"{namespace}/{replica}/e{epoch}/"


def manifest_key(namespace: str, replica: str, epoch: int) -> str:
    return f"{namespace}/{replica}/e{epoch}.manifest.json"


def expect(status: dict[str, Any], spec: DRReplicaSpec, action: dict[str, Any]) -> None:
    """An unplanned failover begins: the copy it leaves must be checked before anything is written into it."""
    if action.get("type") != "Failover" or action.get("dryRun"):
        return
    old = active_copy(spec, str(action["fromCentre"]))
    record = {
        "epoch": int(action["fencingEpoch"]),
        "copy": old.name,
        "centre": old.centre,
        "bucket": old.bucket,
        "prefix": old.prefix,
        # The cut to the sub-second (startedAt has whole seconds), as object times are compared with it.
        "cutAt": datetime.fromtimestamp(float(action.get("startedEpoch") or 0), UTC).isoformat()
        if action.get("startedEpoch")
        else action["startedAt"],
        "state": "Pending",
    }
    # Records still owing something (a check, a review) are never dropped; of the others, the latest few.
    earlier = status.get("divergence") or []
    owing = [r for r in earlier if r.get("state") in ("Pending", "Preserved")]
    done = [r for r in earlier if r.get("state") not in ("Pending", "Preserved")]
    status["divergence"] = [record, *owing, *done[: max(0, KEEP_RECORDS - len(owing))]]


def pending(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in status.get("divergence") or [] if r.get("state") == "Pending"]


def blocked_copies(status: dict[str, Any]) -> set[str]:
    """Copies no flow may write into yet."""
    return {str(r["copy"]) for r in pending(status)}


def gate(status: dict[str, Any], wanted: Iterable[Flow]) -> list[Flow]:
    blocked = blocked_copies(status)
    return [f for f in wanted if f.dst.name not in blocked]


def _same_content(a: Any, a_bucket: str, a_key: str, b: Any, b_bucket: str, b_key: str) -> bool:
    def digest(client: Any, bucket: str, key: str) -> str:
        h = hashlib.sha256()
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()

    return digest(a, a_bucket, a_key) == digest(b, b_bucket, b_key)


def mirrors_deletes(spec: DRReplicaSpec, old: Copy, new: Copy) -> bool:
    """Whether the flow from the old active copy to the new one carried deletes over (the old source,
    fed by a promoted target, always does; a target by its deletePolicy)."""
    for flow in flows(spec, old.centre):
        if flow.dst == new:
            return flow.spec is None or flow.spec.delete_policy == "Mirror"
    return False


def scan(old_client: Any, old: Copy, new_client: Any, new: Copy, deletes_before: float | None = None) -> Scan:
    """Objects under the old copy that the active copy lacks or holds with other bytes; with
    `deletes_before` (the cut, when deletes were mirrored), also the objects the active copy holds from
    before it that the old copy no longer has: a delete the old copy acknowledged and never passed on."""
    out = Scan()
    old_prefix, new_prefix = folder(old.prefix), folder(new.prefix)
    src = iter_objects(old_client, old.bucket, old_prefix, where=f"{old.centre}/{old.bucket}")
    dst = iter_objects(new_client, new.bucket, new_prefix, where=f"{new.centre}/{new.bucket}")
    for pair in merge_join(src, dst):
        held = pair.target
        if pair.relation is Relation.ONLY_TARGET and held is not None and deletes_before is not None:
            # Written at the active copy after the cut: new, not deleted. From before: it came from the
            # old copy, which has deleted it since. Store times have whole seconds, so one from the
            # cut's own second cannot be placed: recorded as well, saying so (when in doubt, record).
            certain = held.modified + STORE_TIME_RESOLUTION_S <= deletes_before
            if held.modified <= deletes_before and not held.key.startswith(fencing.PROBE_DIR):
                out.deleted.append(
                    {
                        "key": held.key,
                        "size": held.size,
                        "etag": held.etag,
                        "lastModified": datetime.fromtimestamp(held.modified, UTC).isoformat(),
                        "why": "deleted at the old active copy; the active copy still holds it"
                        + ("" if certain else " (or written there in the second of the cut)"),
                    }
                )
            continue
        info: ObjectInfo | None = pair.source
        if info is None or info.key.startswith(fencing.PROBE_DIR) or pair.relation is Relation.SAME:
            continue
        if pair.relation is Relation.ETAG_DIFFERS and _same_content(
            old_client, old.bucket, old_prefix + info.key, new_client, new.bucket, new_prefix + info.key
        ):
            continue
        out.found.append(
            {
                "key": info.key,
                "size": info.size,
                "etag": info.etag,
                "lastModified": datetime.fromtimestamp(info.modified, UTC).isoformat(),
                "why": "missing at the active copy" if pair.relation is Relation.ONLY_SOURCE else "differs",
            }
        )
        out.bytes += info.size
    return out


def quarantine(client: Any, old: Copy, namespace: str, replica: str, epoch: int, found: Scan) -> None:
    """Copy every divergent object (bytes and metadata) into the quarantine bucket of the same store,
    then write the manifest; each copy is checked by size before the manifest says it is kept."""
    try:
        client.head_bucket(Bucket=QUARANTINE_BUCKET)
    except ClientError:
        client.create_bucket(Bucket=QUARANTINE_BUCKET)
    base = quarantine_prefix(namespace, replica, epoch)
    for entry in found.found:
        source_key = folder(old.prefix) + entry["key"]
        dest = base + entry["key"]
        client.copy_object(
            Bucket=QUARANTINE_BUCKET,
            Key=dest,
            CopySource={"Bucket": old.bucket, "Key": source_key},
            MetadataDirective="COPY",
        )
        kept = client.head_object(Bucket=QUARANTINE_BUCKET, Key=dest)
        if int(kept["ContentLength"]) != int(entry["size"]):
            raise ReplicationError(f"quarantined copy of {source_key} has {kept['ContentLength']} bytes")
        entry["quarantineKey"] = dest
    manifest = {
        "replica": f"{namespace}/{replica}",
        "epoch": epoch,
        "copy": {"name": old.name, "centre": old.centre, "bucket": old.bucket, "prefix": old.prefix},
        "objects": found.found,
        "deletedAtOldCopy": found.deleted,
    }
    client.put_object(
        Bucket=QUARANTINE_BUCKET,
        Key=manifest_key(namespace, replica, epoch),
        Body=json.dumps(manifest, ensure_ascii=False, indent=1).encode(),
        ContentType="application/json",
    )


def preserve(
    namespace: str,
    replica: str,
    spec: DRReplicaSpec,
    centres: dict[str, Centre],
    active: str,
    record: dict[str, Any],
    epoch: int,
) -> Scan | None:
    """Fence the pending copy, compare it with the active copy and quarantine what diverged; None when a
    store cannot be reached (the copy stays pending, and nothing is written into it)."""
    by_name = {c.name: c for c in copies(spec)}
    old, new = by_name.get(str(record["copy"])), active_copy(spec, active)
    old_centre, new_centre = centres.get(old.centre) if old else None, centres.get(new.centre)
    if old is None or old_centre is None or new_centre is None or old_centre.health == "Down":
        return None  # a Down centre is tried again once its probe sees it answer
    old_client = s3.client(old_centre.endpoint, connect_timeout=2, read_timeout=30, max_pool=2)
    new_client = s3.client(new_centre.endpoint, connect_timeout=2, read_timeout=30, max_pool=2)
    try:
        # No application write may land after the comparison: the copy is fenced first.
        fencing.fence(
            old_centre.endpoint,
            old.bucket,
            old.prefix,
            fencing.owner_id(namespace, replica, old.name),
            epoch,
            old_centre.probe.access_key_id if old_centre.probe else None,
            timeout_s=2.0,
        )
        cut = datetime.fromisoformat(str(record["cutAt"]).replace("Z", "+00:00")).timestamp()
        found = scan(old_client, old, new_client, new, cut if mirrors_deletes(spec, old, new) else None)
        if found.found or found.deleted:
            quarantine(old_client, old, namespace, replica, int(record["epoch"]), found)
        return found
    except (BotoCoreError, ClientError, ReplicationError, fencing.PolicyContended) as e:
        log.warning("divergence check of %s/%s in %s not done: %s", namespace, replica, old.centre, e)
        return None
    finally:
        old_client.close()
        new_client.close()


def settle(record: dict[str, Any], found: Scan, namespace: str, replica: str, now: str) -> None:
    record.update(
        state="Preserved" if found.found or found.deleted else "Clean",
        objects=len(found.found),
        bytes=found.bytes,
        deletes=len(found.deleted),
        checkedAt=now,
    )
    if found.found or found.deleted:
        record["quarantine"] = f"{record['centre']}/{QUARANTINE_BUCKET}/" + quarantine_prefix(
            namespace, replica, int(record["epoch"])
        )
    if found.found:
        record["quarantine"] = f"{record['centre']}/{QUARANTINE_BUCKET}/" + quarantine_prefix(
            namespace, replica, int(record["epoch"])
        )
        record["oldestWrite"] = min(e["lastModified"] for e in found.found)
        record["newestWrite"] = max(e["lastModified"] for e in found.found)


def measured_loss(record: dict[str, Any], estimated: float | None) -> float | None:
    """What the failover really cost: the writes the new active never got span from the oldest divergent
    write to the cut, or to the newest one when it came later (accepted before the fence took hold);
    at least the stores' time resolution when anything diverged, and never less than the lag measured
    at the cut."""
    if not record.get("oldestWrite"):
        return estimated
    cut = datetime.fromisoformat(str(record["cutAt"]).replace("Z", "+00:00"))
    oldest = datetime.fromisoformat(str(record["oldestWrite"]))
    newest = datetime.fromisoformat(str(record.get("newestWrite") or record["oldestWrite"]))
    span = (max(cut, newest) - oldest).total_seconds()
    return round(max(span, STORE_TIME_RESOLUTION_S, estimated or 0.0), 3)


def annotate_history(status: dict[str, Any], record: dict[str, Any]) -> None:
    """The failover's history entry learns what the check found."""
    for entry in [status.get("action") or {}, *(status.get("history") or [])]:
        if entry.get("type") == "Failover" and entry.get("fencingEpoch") == record["epoch"]:
            entry["divergentObjects"] = record["objects"]
            entry["measuredDataLossSeconds"] = measured_loss(record, entry.get("estimatedDataLossSeconds"))


def reviewed(status: dict[str, Any], annotations: dict[str, str]) -> None:
    """Epochs an SRE marked reviewed (`datacloud dr divergent restore`/`dismiss`) stop counting."""
    done = {e.strip() for e in (annotations.get(REVIEWED_ANNOTATION) or "").split(",") if e.strip()}
    for record in status.get("divergence") or []:
        if record.get("state") == "Preserved" and str(record["epoch"]) in done:
            record["state"] = "Reviewed"


def unreviewed_objects(status: dict[str, Any]) -> int:
    return sum(
        int(r.get("objects") or 0) + int(r.get("deletes") or 0)
        for r in status.get("divergence") or []
        if r.get("state") == "Preserved"
    )


def run(
    rt: ReplicaContext, body: dict[str, Any], spec: DRReplicaSpec, centres: dict[str, Centre], now: str
) -> None:
    """Check every pending copy that can be reached; record, announce and count what was preserved."""
    reviewed(rt.status, body["metadata"].get("annotations") or {})
    active = str(rt.status["activeCentre"])
    writer = active_copy(spec, active)
    changed = False
    for record in pending(rt.status):
        if record["copy"] == writer.name:
            # Failed over back to it before it was checked: its writes are on the active copy.
            record.update(state="Active", checkedAt=now)
            changed = True
            continue
        found = preserve(rt.namespace, rt.name, spec, centres, active, record, int(rt.status["fencingEpoch"]))
        if found is None:
            # Not reachable yet: the record says Pending, the failover's outcome Event says it is checked
            # once it answers (an Event here too doubled a mass failover's Events).
            continue
        settle(record, found, rt.namespace, rt.name, now)
        annotate_history(rt.status, record)
        changed = True
        if found.deleted:
            rt.emit(
                "Warning",
                "DivergentDeletesRecorded",
                f"{len(found.deleted)} objects deleted at {record['centre']} before epoch {record['epoch']} "
                "are still held by the active copy and kept there; listed in the manifest — see "
                f"`datacloud dr divergent list {rt.name} -n {rt.namespace} --objects`",
            )
        if found.found:
            rt.emit(
                "Warning",
                "DivergentWritesPreserved",
                f"{len(found.found)} objects ({found.bytes} bytes) accepted by {record['centre']} before "
                f"epoch {record['epoch']} are missing or different at the active copy; kept in "
                f"{record['quarantine']} — see `datacloud dr divergent list {rt.name} -n {rt.namespace}`",
            )
        elif not found.deleted:
            rt.emit(
                "Normal",
                "NoDivergentWrites",
                f"{record['centre']} holds nothing the active copy lacks (epoch {record['epoch']})",
            )
    if changed:
        rt.write_now(body)
