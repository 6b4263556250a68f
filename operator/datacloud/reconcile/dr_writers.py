"""Fences and the single-writer measurement of one DRReplica.

Every copy but the active one is fenced at the current epoch (its own bucket+prefix statement, beside
other replicas' statements on a shared bucket), the active one is opened under a write lease the
operator keeps renewing (failover/lease.py); then each copy is probed with a write by the centre's probe
account, so `writableCopies` counts what the stores really accept.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..api.common import parse_duration
from ..api.drreplica import DRReplicaSpec
from ..failover import fencing
from ..failover.lease import LEASES, Held, length_s
from ..failover.topology import Copy, active_copy, copies
from ..failover.writable import Writable, probe_write
from .centres import Centre
from .verdicts import UNREACHABLE


@dataclass
class Measurement:
    writable: list[str] = field(default_factory=list)  # "centre/bucket/prefix" of copies accepting writes
    refusing: list[str] = field(default_factory=list)
    unmeasured: dict[str, str] = field(default_factory=dict)  # copy → why its writability is unknown
    unreachable: list[str] = field(default_factory=list)  # centres whose fence could not be written

    def status(self) -> dict[str, Any]:
        return {
            "writableCopies": len(self.writable),
            "writableLocations": self.writable,
            "unmeasuredCopies": [f"{k}: {v}" for k, v in self.unmeasured.items()],
            "unfencedUnreachable": self.unreachable,
        }


def where(copy: Copy) -> str:
    return f"{copy.centre}/{copy.bucket}/{copy.prefix}".rstrip("/")


def lease_length(spec: DRReplicaSpec) -> float:
    return length_s(parse_duration(spec.failover.down_for).total_seconds())


def grant_lease(owner: str, centre: Centre, copy: Copy, spec: DRReplicaSpec, replica: tuple[str, str]) -> int:
    """The active copy's write lease, held (renewed) from now on; the expiry to write now. `replica`
    (namespace, name) is woken when the store refuses a renewal."""
    principal = centre.probe.access_key_id if centre.probe else None
    held = Held(centre.endpoint, copy.bucket, copy.prefix, principal, lease_length(spec), replica)
    return LEASES.grant(owner, held)


def follow_credentials(
    namespace: str, name: str, spec: DRReplicaSpec, centres: dict[str, Centre], active: str
) -> None:
    """Renew the active copy's lease with the centre's credentials as resolved now: a rotated key is
    used from the next renewal, not from the next full run (the old key, revoked, had every renewal
    refused until then, and the copy refused writes once its lease ended)."""
    centre = centres.get(active_copy(spec, active).centre)
    if centre is not None:
        LEASES.follow(fencing.owner_id(namespace, name, active_copy(spec, active).name), centre.endpoint)


def keep_lease(
    namespace: str, name: str, spec: DRReplicaSpec, centres: dict[str, Centre], active: str
) -> None:
    """A replica that writes no fences now (paused) still holds its active copy's lease: pausing stops
    replication, not the applications' writes."""
    writer = active_copy(spec, active)
    centre = centres.get(writer.centre)
    owner = fencing.owner_id(namespace, name, writer.name)
    if centre is None or LEASES.holds(owner):
        return
    until = grant_lease(owner, centre, writer, spec, (namespace, name))
    principal = centre.probe.access_key_id if centre.probe else None
    # A store that does not answer gets the lease from the renewal as soon as it does.
    with contextlib.suppress(
        BotoCoreError, ClientError, fencing.PolicyContended, fencing.ProbeAccountRejected
    ):
        fencing.apply(centre.endpoint, writer.bucket, writer.prefix, owner, None, principal, 2.0, until)


def drop_lease(
    namespace: str, name: str, spec: DRReplicaSpec, centres: dict[str, Centre], active: str
) -> None:
    """The replica is gone: its active copy is left open for good (no lease, no probe Allow), as it
    was before the replica existed; the fences on the other copies stay (an SRE lifts them)."""
    writer = active_copy(spec, active)
    owner = fencing.owner_id(namespace, name, writer.name)
    LEASES.release(owner, 0.0)
    centre = centres.get(writer.centre)
    if centre is not None:
        fencing.apply_many(centre.endpoint, writer.bucket, {owner: []}, 2.0)


def removed(old: Copy, spec: DRReplicaSpec, active: str) -> Copy | None:
    """`old`, an active copy the replica had, when `spec` no longer has it and it is not in the bucket
    of the new active copy (whose lease replaced its statements); else None."""
    new = active_copy(spec, active)
    kept = {(c.centre, c.bucket, c.prefix) for c in copies(spec)}
    if (old.centre, old.bucket, old.prefix) in kept or (old.centre, old.bucket) == (new.centre, new.bucket):
        return None
    return old


def published_copy(endpoint: dict[str, Any] | None) -> Copy | None:
    """The active copy `status.endpoint` says was published last; None when status does not say which
    copy it was (nothing published yet, or published by an operator that did not record the copy)."""
    endpoint = endpoint or {}
    name, centre, bucket = (endpoint.get(k) for k in ("copyName", "centre", "bucket"))
    if not (name and centre and bucket):
        return None
    return Copy(str(name), str(centre), str(bucket), str(endpoint.get("prefix") or ""))


def release(namespace: str, name: str, old: Copy, spec: DRReplicaSpec, active: str, centre: Centre) -> None:
    """The old active copy's statements removed from its bucket policy (left open, as at deletion)."""
    owner = fencing.owner_id(namespace, name, old.name)
    if owner != fencing.owner_id(namespace, name, active_copy(spec, active).name):
        LEASES.release(owner, 0.0)  # a lease of its own: no longer renewed (the same owner was re-granted)
    fencing.apply_many(centre.endpoint, old.bucket, {owner: []}, 2.0)


def fence_and_measure(
    namespace: str, name: str, spec: DRReplicaSpec, centres: dict[str, Centre], active: str, epoch: int
) -> Measurement:
    out = Measurement()
    writer = active_copy(spec, active)
    for copy in copies(spec):
        centre = centres.get(copy.centre)
        if centre is None:
            out.unmeasured[where(copy)] = "centre unresolved"
            continue
        owner = fencing.owner_id(namespace, name, copy.name)
        principal = centre.probe.access_key_id if centre.probe else None
        is_active = copy == writer
        down = centre.health == "Down"
        why_unreachable = UNREACHABLE.recent(centre.name) if down and not is_active else None
        if why_unreachable is not None:
            # Another replica has just waited out this dead (or cut-off) store: after a mass failover a
            # thousand replicas each trying it would hold every worker for a timeout apiece.
            out.unreachable.append(copy.centre)
            out.unmeasured[where(copy)] = f"policy not written: {why_unreachable}"
            continue
        try:
            fencing.apply(
                centre.endpoint,
                copy.bucket,
                copy.prefix,
                owner,
                None if is_active else epoch,
                principal,
                timeout_s=2.0,
                lease_until=grant_lease(owner, centre, copy, spec, (namespace, name)) if is_active else None,
            )
        except fencing.ProbeAccountRejected as e:
            out.unmeasured[where(copy)] = str(e)  # fenced (or opened) as wanted, but not measurable
            continue
        except (BotoCoreError, ClientError, fencing.PolicyContended) as e:
            if not is_active:
                out.unreachable.append(copy.centre)
                if down and isinstance(e, BotoCoreError):
                    UNREACHABLE.note(centre.name, type(e).__name__)
            out.unmeasured[where(copy)] = f"policy not written: {type(e).__name__}"
            continue
        if centre.probe is None:
            out.unmeasured[where(copy)] = "no probe account in the centre's Secret"
            continue
        answer, why = probe_write(centre.endpoint, centre.probe, copy.bucket, copy.prefix, owner)
        if answer is Writable.YES:
            out.writable.append(where(copy))
        elif answer is Writable.NO:
            out.refusing.append(where(copy))
        else:
            out.unmeasured[where(copy)] = why
    return out


def fences_in_place(
    namespace: str, name: str, spec: DRReplicaSpec, centres: dict[str, Centre], active: str, epoch: int
) -> bool:
    """A cheap check between full runs: one policy read per copy that should be fenced. False when a
    statement went missing (someone re-applied the bucket policy): the caller fences again at once."""
    writer = active_copy(spec, active)
    for copy in copies(spec):
        centre = centres.get(copy.centre)
        if copy == writer or centre is None or centre.health == "Down":
            continue
        principal = centre.probe.access_key_id if centre.probe else None
        owner = fencing.owner_id(namespace, name, copy.name)
        if not fencing.in_place(centre.endpoint, copy.bucket, copy.prefix, owner, epoch, principal):
            return False
    return True
