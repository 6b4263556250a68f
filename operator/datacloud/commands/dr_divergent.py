"""`datacloud dr divergent list|restore|dismiss NAME`: the writes an old active copy accepted that the
active copy lacked, kept in the quarantine bucket after an unplanned failover (see docs/dr.md).

list     the checked copies (epoch, state, objects, deletes, where they are kept); --objects reads the
         manifests (the kept objects, and the keys the old copy deleted that the active copy still holds)
restore  copies an epoch's kept objects (or --key ones) back into the active copy; a key the active copy
         holds now is skipped unless --overwrite (the newer write wins by default); a full restore marks
         the epoch reviewed
dismiss  marks an epoch reviewed without restoring (the kept objects stay in quarantine)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3
from ..adapters.kube import Kube
from ..api.drreplica import DRReplicaSpec
from ..api.overlap import folder
from ..api.reserved import QUARANTINE_BUCKET
from ..failover.topology import active_copy
from ..reconcile.centres import CentreUnavailable, resolve
from ..reconcile.dr_divergent import REVIEWED_ANNOTATION, manifest_key
from .kubecontext import add_kube_arguments

PLURAL = "drreplicas"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="divergent_command", required=True, metavar="COMMAND")
    lst = sub.add_parser("list", help="copies checked for divergent writes and what was kept")
    lst.add_argument("--objects", action="store_true", help="also list every kept object (reads manifests)")
    lst.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    restore = sub.add_parser("restore", help="copy kept objects back into the active copy")
    restore.add_argument("--epoch", type=int, required=True, help="the failover's fencing epoch")
    restore.add_argument("--key", action="append", default=[], help="only this key (repeatable)")
    restore.add_argument(
        "--overwrite", action="store_true", help="replace what the active copy holds under the same key"
    )
    restore.add_argument("--dry-run", action="store_true", help="say what would be restored; change nothing")
    dismiss = sub.add_parser("dismiss", help="mark an epoch reviewed without restoring")
    dismiss.add_argument("--epoch", type=int, required=True, help="the failover's fencing epoch")
    for p in (lst, restore, dismiss):
        p.add_argument("name", help="DRReplica name")
        add_kube_arguments(p)  # -n from the kubeconfig context unless given, as for the other commands


def main(kube: Kube, args: argparse.Namespace, body: dict[str, Any]) -> int:
    records = (body.get("status") or {}).get("divergence") or []
    if args.divergent_command == "list":
        return _list(kube, args, records)
    record = next((r for r in records if r.get("epoch") == args.epoch), None)
    if record is None:
        epochs = ", ".join(str(r.get("epoch")) for r in records) or "none"
        print(f"datacloud: no divergence record for epoch {args.epoch} (epochs: {epochs})", file=sys.stderr)
        return 2
    if args.divergent_command == "dismiss":
        return _mark_reviewed(kube, args, body)
    return _restore(kube, args, body, record)


def _manifest(kube: Kube, args: argparse.Namespace, record: dict[str, Any]) -> dict[str, Any]:
    centre = resolve(kube, str(record["centre"]))
    client = s3.client(centre.endpoint, connect_timeout=5, read_timeout=30)
    try:
        key = manifest_key(args.namespace, args.name, int(record["epoch"]))
        data: dict[str, Any] = json.loads(client.get_object(Bucket=QUARANTINE_BUCKET, Key=key)["Body"].read())
        return data
    finally:
        client.close()


def _list(kube: Kube, args: argparse.Namespace, records: list[dict[str, Any]]) -> int:
    out = []
    for record in records:
        entry = dict(record)
        if args.objects and record.get("state") in ("Preserved", "Reviewed"):
            try:
                manifest = _manifest(kube, args, record)
                entry["kept"] = manifest["objects"]
                entry["deletedAtOldCopy"] = manifest.get("deletedAtOldCopy") or []
            except (CentreUnavailable, BotoCoreError, ClientError) as e:
                entry["kept"] = f"manifest not readable: {e}"
        out.append(entry)
    if args.output == "json":
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if not out:
        print(f"{args.namespace}/{args.name}: no copy has been checked for divergent writes")
        return 0
    print(f"{'EPOCH':>5}  {'STATE':<9} {'CENTRE':<20} {'OBJECTS':>7} {'BYTES':>10} {'DELETES':>7}  KEPT IN")
    for r in out:
        print(
            f"{r['epoch']:>5}  {r['state']:<9} {r['centre']:<20} {r.get('objects', '-'):>7} "
            f"{r.get('bytes', '-'):>10} {r.get('deletes', '-'):>7}  {r.get('quarantine', '-')}"
        )
        kept = r.get("kept")
        if isinstance(kept, str):
            print(f"       {kept}")
        for obj in kept if isinstance(kept, list) else []:
            print(f"       {obj['key']}  {obj['size']} bytes  {obj['lastModified']}  ({obj['why']})")
        for obj in r.get("deletedAtOldCopy") or []:
            print(f"       {obj['key']}  deleted at {r['centre']}; still held by the active copy")
    return 0


def _restore(kube: Kube, args: argparse.Namespace, body: dict[str, Any], record: dict[str, Any]) -> int:
    if record.get("state") not in ("Preserved", "Reviewed"):
        print(f"datacloud: epoch {args.epoch} is {record.get('state')}: nothing kept", file=sys.stderr)
        return 2
    spec = DRReplicaSpec.model_validate(body["spec"])
    active = active_copy(spec, str((body.get("status") or {}).get("activeCentre") or spec.active_centre))
    try:
        manifest = _manifest(kube, args, record)
        src_centre, dst_centre = resolve(kube, str(record["centre"])), resolve(kube, active.centre)
    except (CentreUnavailable, BotoCoreError, ClientError) as e:
        print(f"datacloud: cannot read what was kept: {e}", file=sys.stderr)
        return 1
    wanted = set(args.key)
    objects = [o for o in manifest["objects"] if not wanted or o["key"] in wanted]
    unknown = wanted - {o["key"] for o in objects}
    if unknown:
        print(f"datacloud: not kept in epoch {args.epoch}: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    src = s3.client(src_centre.endpoint, connect_timeout=5, read_timeout=60)
    dst = s3.client(dst_centre.endpoint, connect_timeout=5, read_timeout=60)
    restored, skipped = 0, 0
    try:
        for obj in objects:
            key = folder(active.prefix) + obj["key"]
            where = f"{active.centre}/{active.bucket}/{key}"
            if not args.overwrite and _exists(dst, active.bucket, key):
                print(f"skipped  {where}: the active copy holds a newer write (use --overwrite)")
                skipped += 1
                continue
            if args.dry_run:
                print(f"would restore  {where}")
                continue
            kept = src.get_object(Bucket=QUARANTINE_BUCKET, Key=obj["quarantineKey"])
            extra = {"Metadata": kept.get("Metadata") or {}}
            if kept.get("ContentType"):
                extra["ContentType"] = kept["ContentType"]
            dst.upload_fileobj(kept["Body"], active.bucket, key, ExtraArgs=extra)
            print(f"restored {where} ({obj['size']} bytes)")
            restored += 1
    except (BotoCoreError, ClientError) as e:
        print(f"datacloud: restore stopped after {restored} objects: {e}", file=sys.stderr)
        return 1
    finally:
        src.close()
        dst.close()
    print(f"epoch {args.epoch}: {restored} restored, {skipped} skipped into {active.centre}/{active.bucket}")
    if args.dry_run or wanted:
        return 0
    return _mark_reviewed(kube, args, body)


def _exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise
    return True


def _mark_reviewed(kube: Kube, args: argparse.Namespace, body: dict[str, Any]) -> int:
    annotations = body["metadata"].get("annotations") or {}
    done = {e for e in (annotations.get(REVIEWED_ANNOTATION) or "").split(",") if e}
    done.add(str(args.epoch))
    value = ",".join(sorted(done, key=int))
    kube.patch(PLURAL, args.name, {"metadata": {"annotations": {REVIEWED_ANNOTATION: value}}}, args.namespace)
    print(f"epoch {args.epoch} marked reviewed on {args.namespace}/{args.name}")
    return 0
