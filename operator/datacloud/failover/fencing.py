"""Fencing: bucket-policy statements that deny writes to a copy that is no longer active.

A fence covers exactly what one copy of one replica owns: its bucket and prefix. Each statement's Sid
names its owner (a digest of namespace, replica and copy) and the fencing epoch that set it, so several
replicas sharing a bucket each keep their own statements and never touch another's. A policy is changed
read-modify-write: only the owner's statements are replaced, everything else is kept, and the result is
read back (another writer may have raced us; the next reconcile repairs what a race undid).

The operator's own credentials are the store's root account, which policies do not bind; applications
write as ordinary accounts, which the deny stops. The optional probe account gets an Allow on one key
under the copy's prefix, so that a PUT by it measures what the store really accepts there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3, s3_wire
from ..api.overlap import folder

FENCE_SID_PREFIX = "datacloud-fence-"
PROBE_SID_PREFIX = "datacloud-probe-"
# The active copy's write lease (failover/lease.py): a Deny that takes effect when the lease runs out.
LEASE_SID_PREFIX = "datacloud-lease-"
# Written by earlier versions: one whole-bucket fence per bucket, with no owner. Removed by any owner's
# write (it denies every prefix, so it would fence an active copy that shares the bucket).
LEGACY_FENCE = re.compile(r"^datacloud-fence-epoch-(\d+)$")
OWNED_FENCE = re.compile(r"^datacloud-fence-([0-9a-f]{16})-epoch-(\d+)$")
PROBE_DIR = ".datacloud-probe/"
WRITE_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
ATTEMPTS = 3

# One read-modify-write at a time per bucket within this process (replicas share the operator).
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()
# The policy this process last wrote to (or read from) a bucket, and how many renewals wrote on top of it
# without reading (see `renew_many`). Forgotten before any write whose outcome is unknown, and whenever a
# read finds something else there.
_known: dict[tuple[str, str], tuple[str | None, int]] = {}
# Every READ_EVERY-th renewal of a bucket reads its policy first. 1 (every renewal reads): a blind write
# would drop a statement someone added by hand since the last read (an application's Allow, say), and
# skipping reads saves only a fifth of a renewal's CPU (bench/results/lease.json).
READ_EVERY = 1


def owner_id(namespace: str, replica: str, copy: str) -> str:
    """A short stable id for one copy of one replica (Sids allow few characters)."""
    return hashlib.sha256(f"{namespace}/{replica}/{copy}".encode()).hexdigest()[:16]


def probe_key(prefix: str, owner: str) -> str:
    return f"{folder(prefix)}{PROBE_DIR}{owner}"


def resource(bucket: str, prefix: str) -> str:
    return f"arn:aws:s3:::{bucket}/{folder(prefix)}*"


def fence_statement(bucket: str, prefix: str, owner: str, epoch: int) -> dict[str, Any]:
    return {
        "Sid": f"{FENCE_SID_PREFIX}{owner}-epoch-{epoch}",
        "Effect": "Deny",
        "Principal": {"AWS": ["*"]},
        "Action": WRITE_ACTIONS,
        "Resource": [resource(bucket, prefix)],
    }


def lease_statement(bucket: str, prefix: str, owner: str, until: int) -> dict[str, Any]:
    """Writes under the copy are denied from the second `until` (Unix time, the store's clock) on: the
    operator keeps moving it forward while the copy is active, so a copy cut off from the operator (dead,
    or partitioned away) stops accepting writes by itself, and comes back from the dead refusing them."""
    return {
        "Sid": f"{LEASE_SID_PREFIX}{owner}",
        "Effect": "Deny",
        "Principal": {"AWS": ["*"]},
        "Action": WRITE_ACTIONS,
        "Resource": [resource(bucket, prefix)],
        "Condition": {"NumericGreaterThanEquals": {"aws:EpochTime": str(until)}},
    }


def probe_statement(bucket: str, prefix: str, owner: str, principal: str) -> dict[str, Any]:
    return {
        "Sid": f"{PROBE_SID_PREFIX}{owner}",
        "Effect": "Allow",
        "Principal": {"AWS": [principal]},
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/{probe_key(prefix, owner)}"],
    }


def statements(policy: str | None) -> list[dict[str, Any]]:
    return list(json.loads(policy).get("Statement", [])) if policy else []


def _owned(statement: dict[str, Any], owner: str) -> bool:
    sid = str(statement.get("Sid", ""))
    match = OWNED_FENCE.match(sid)
    return bool(LEGACY_FENCE.match(sid) or (match and match.group(1) == owner)) or (
        sid in (f"{PROBE_SID_PREFIX}{owner}", f"{LEASE_SID_PREFIX}{owner}")
    )


def desired(
    bucket: str,
    prefix: str,
    owner: str,
    epoch: int | None,
    principal: str | None,
    lease_until: int | None = None,
) -> list[dict[str, Any]]:
    """The owner's statements: the probe's Allow (when there is a probe account), the fence when fenced,
    else the write lease when one is given (an open copy without a lease is writable for good)."""
    out = [probe_statement(bucket, prefix, owner, principal)] if principal else []
    if epoch is not None:
        out.append(fence_statement(bucket, prefix, owner, epoch))
    elif lease_until is not None:
        out.append(lease_statement(bucket, prefix, owner, lease_until))
    return out


def rewritten(existing: str | None, owner: str, wanted: list[dict[str, Any]]) -> str | None:
    """The policy with the owner's statements replaced by `wanted`, every other statement kept in place;
    None when nothing is left (the policy is then deleted)."""
    return rewritten_for(existing, {owner: wanted})


def rewritten_for(existing: str | None, wanted: dict[str, list[dict[str, Any]]]) -> str | None:
    """`rewritten` for several owners at once (one write renews every lease held on a bucket)."""
    kept = [s for s in statements(existing) if not any(_owned(s, owner) for owner in wanted)]
    out = kept + [s for owner in wanted for s in wanted[owner]]
    return json.dumps({"Version": "2012-10-17", "Statement": out}) if out else None


def foreign(policy: str | None) -> str:
    """The statements of a policy that no replica wrote (an SRE's Deny, an application's Allow), in a
    canonical form: what can change whether a copy accepts writes without the operator knowing."""
    ours = (FENCE_SID_PREFIX, PROBE_SID_PREFIX, LEASE_SID_PREFIX)
    kept = [s for s in statements(policy) if not str(s.get("Sid", "")).startswith(ours)]
    return json.dumps(sorted(json.dumps(s, sort_keys=True) for s in kept))


def fence_epoch(policy: str | None, owner: str) -> int | None:
    """The epoch of the owner's fence in a policy; None when the owner's copy is not fenced."""
    for s in statements(policy):
        match = OWNED_FENCE.match(str(s.get("Sid", "")))
        if match and match.group(1) == owner and s.get("Effect") == "Deny":
            return int(match.group(2))
    return None


def _settled(policy: str | None, owner: str, wanted: list[dict[str, Any]]) -> bool:
    return _settled_for(policy, {owner: wanted})


def _settled_for(policy: str | None, wanted: dict[str, list[dict[str, Any]]]) -> bool:
    present = statements(policy)
    for owner, theirs in wanted.items():
        ours = [s for s in present if _owned(s, owner)]
        if sorted(json.dumps(s, sort_keys=True) for s in ours) != sorted(
            json.dumps(s, sort_keys=True) for s in theirs
        ):
            return False
    return True


def read_policy(client: Any, bucket: str) -> str | None:
    """The bucket's policy, None when it has none; through the lean client or a boto3 one."""
    if isinstance(client, s3_wire.WireClient):
        return s3_wire.get_bucket_policy(client, bucket)
    try:
        return str(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchBucketPolicy", "NoSuchPolicy"):
            return None
        raise


def _write_policy(client: Any, bucket: str, policy: str | None) -> None:
    """Put the policy, or delete it when None."""
    if isinstance(client, s3_wire.WireClient):
        if policy is None:
            s3_wire.delete_bucket_policy(client, bucket)
        else:
            s3_wire.put_bucket_policy(client, bucket, policy)
    elif policy is None:
        client.delete_bucket_policy(Bucket=bucket)
    else:
        client.put_bucket_policy(Bucket=bucket, Policy=policy)


def wire(endpoint: s3.S3Endpoint, timeout_s: float) -> s3_wire.WireClient:
    """The lean client the fences are read and written with: a policy call through boto3 costs several
    times its CPU, and a thousand replicas protected at once make a dozen such calls each. Its transport
    failures are raised as botocore's (`s3_wire.botocore_errors`) by the functions here."""
    return s3_wire.shared_wire_timed(endpoint, timeout_s, timeout_s)


def lock(endpoint: s3.S3Endpoint, bucket: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((endpoint.url, bucket), threading.Lock())


def apply(
    endpoint: s3.S3Endpoint,
    bucket: str,
    prefix: str,
    owner: str,
    epoch: int | None,
    principal: str | None = None,
    timeout_s: float = 5.0,
    lease_until: int | None = None,
) -> bool:
    """Make the owner's statements on `bucket` what they should be (fenced at `epoch`, or open when it
    is None, under a write lease ending at `lease_until` when given); True when a write was needed.
    Raises when the store cannot be reached, or when another writer kept undoing the change (ATTEMPTS
    times in a row)."""
    wanted = desired(bucket, prefix, owner, epoch, principal, lease_until)
    try:
        return apply_many(endpoint, bucket, {owner: wanted}, timeout_s)
    except ClientError as e:
        if principal is None or e.response.get("Error", {}).get("Code") != "MalformedPolicy":
            raise
    # The store refuses a policy naming an account it does not know: the fence matters more than the
    # probe, so it is written without the probe's statement, and the caller is told.
    apply_many(endpoint, bucket, {owner: desired(bucket, prefix, owner, epoch, None, lease_until)}, timeout_s)
    raise ProbeAccountRejected(f"the store does not accept the probe account {principal} in a policy")


Wanted = dict[str, list[dict[str, Any]]]  # owner → its statements


def apply_many(
    endpoint: s3.S3Endpoint,
    bucket: str,
    wanted: Wanted | Callable[[], Wanted],
    timeout_s: float,
    client: Any = None,
    confirm: bool = True,
) -> bool:
    """Several owners' statements on one bucket made what they should be in one read-modify-write.
    `wanted` may be a function, called once under the bucket's lock (the write leases are decided there).
    Without `confirm`, a write is not read back. The policy written (or found settled) is remembered for
    the lease renewals (`renew_many`). A store that does not answer raises a `BotoCoreError`, an answer
    (AccessDenied, NoSuchBucket, ...) a `ClientError`, whichever client is used."""
    client = client or wire(endpoint, timeout_s)
    key = (endpoint.url, bucket)
    with lock(endpoint, bucket), s3_wire.botocore_errors(endpoint.url):
        if callable(wanted):
            wanted = wanted()
        if not wanted:
            return False
        _known.pop(key, None)
        wrote = False
        for _ in range(ATTEMPTS):
            current = read_policy(client, bucket)
            if _settled_for(current, wanted):
                _known[key] = (current, 0)
                return wrote
            policy = rewritten_for(current, wanted)
            _write_policy(client, bucket, policy)
            wrote = True
            _known[key] = (policy, 0)
            if not confirm:
                return True
        if _settled_for(read_policy(client, bucket), wanted):
            return True
        raise PolicyContended(f"the policy of bucket {bucket} kept changing under us")


def renew_many(
    endpoint: s3.S3Endpoint,
    bucket: str,
    wanted: Callable[[], Wanted],
    client: s3_wire.WireClient,
    seen: Callable[[str | None, str | None, bool], None] | None = None,
) -> bool:
    """Write leases renewed: `wanted` (called under the bucket's lock) put into the bucket's policy in one
    write, through the lean client. The read before the write is skipped when this process wrote (or
    read) the policy last under this lock and fewer than READ_EVERY renewals have written blind since:
    no writer of this process can have changed it, and another writer (an SRE editing the policy) is
    caught by the next read, or by a fence check (`in_place`) finding something unexpected. A failure
    leaves the policy unknown, so the next renewal reads. `seen` is given the policy when it was read, the
    one this process last wrote or read there, and whether it knew that one. True when a write was sent."""
    key = (endpoint.url, bucket)
    with lock(endpoint, bucket):
        owners = wanted()
        if not owners:
            return False
        known = _known.pop(key, None)  # forgotten until this write is known to have landed
        blind = known is not None and known[1] + 1 < READ_EVERY
        current = known[0] if known is not None and blind else s3_wire.get_bucket_policy(client, bucket)
        if seen is not None and not blind:
            seen(current, known[0] if known is not None else None, known is not None)
        policy = rewritten_for(current, owners)
        if policy is None:
            s3_wire.delete_bucket_policy(client, bucket)
        else:
            s3_wire.put_bucket_policy(client, bucket, policy)
        _known[key] = (policy, known[1] + 1 if known is not None and blind else 0)
        return True


def observed(endpoint: s3.S3Endpoint, bucket: str, policy: str | None) -> None:
    """A policy read outside a write: if it is not what this process last wrote, the next renewal reads
    before it writes (someone else changed the policy; their statements are kept)."""
    key = (endpoint.url, bucket)
    known = _known.get(key)
    if known is not None and known[0] != policy:
        _known.pop(key, None)


class PolicyContended(RuntimeError):
    """Another writer changed the bucket policy between every read and write."""


class ProbeAccountRejected(RuntimeError):
    """The owner's statements are in force, but without the probe's Allow (the store refused it)."""


def fence(
    endpoint: s3.S3Endpoint,
    bucket: str,
    prefix: str,
    owner: str,
    epoch: int,
    principal: str | None = None,
    timeout_s: float = 5.0,
) -> None:
    """Deny writes under `bucket/prefix`; idempotent. Raises when the store cannot be reached."""
    with contextlib.suppress(ProbeAccountRejected):  # the fence itself is in force
        apply(endpoint, bucket, prefix, owner, epoch, principal, timeout_s)


def unfence(
    endpoint: s3.S3Endpoint,
    bucket: str,
    prefix: str,
    owner: str,
    principal: str | None = None,
    timeout_s: float = 5.0,
    lease_until: int | None = None,
) -> None:
    """Allow writes again (the copy becomes active), until `lease_until` when given; idempotent."""
    with contextlib.suppress(ProbeAccountRejected):  # the fence is gone all the same
        apply(endpoint, bucket, prefix, owner, None, principal, timeout_s, lease_until)


def in_place(
    endpoint: s3.S3Endpoint,
    bucket: str,
    prefix: str,
    owner: str,
    epoch: int | None,
    principal: str | None = None,
    timeout_s: float = 2.0,
) -> bool:
    """Whether the owner's statements are as they should be (one read; a store that cannot be read
    counts as not in place, so the caller tries the full write and reports what fails)."""
    try:
        with s3_wire.botocore_errors(endpoint.url):
            policy = read_policy(wire(endpoint, timeout_s), bucket)
        observed(endpoint, bucket, policy)
        return _settled(policy, owner, desired(bucket, prefix, owner, epoch, principal))
    except (ClientError, BotoCoreError):
        return False


def is_fenced(endpoint: s3.S3Endpoint, bucket: str, owner: str, timeout_s: float = 5.0) -> int | None:
    with s3_wire.botocore_errors(endpoint.url):
        policy = read_policy(wire(endpoint, timeout_s), bucket)
    observed(endpoint, bucket, policy)
    return fence_epoch(policy, owner)
