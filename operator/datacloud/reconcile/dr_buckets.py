"""A DRReplica's buckets, checked on each full run: the targets made when missing (the operator owns
them), the source looked for (a missing source is reported, never created: it would hide the mistake).

Through the lean client (`s3_wire`): this runs for every replica applied, and a boto3 call costs several
times the CPU. Its transport failures come out as botocore's (`s3_wire.botocore_errors`): a store that
does not answer is skipped (its health probe reports it), an answer is acted on.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ..adapters import s3_wire
from ..api.drreplica import DRReplicaSpec
from ..failover.topology import copies
from . import dr_status
from .centres import Centre

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0


class CreateFailed(RuntimeError):
    """The store refused to create a target bucket that is not there."""


def ensure_target(client: s3_wire.WireClient, bucket: str, region: str) -> None:
    """The target bucket made if missing. Its creation is tried straight away (a bucket already there is
    answered as such): a HEAD first would cost every new replica a request more and save none. Only
    when the creation is refused is the bucket looked for (an operator allowed to use buckets but not to
    create them, say), so a bucket made by hand is used without a false problem."""
    try:
        s3_wire.create_bucket(client, bucket, region)
    except ClientError as refused:
        try:
            s3_wire.head_bucket(client, bucket)
        except ClientError:
            raise CreateFailed(str(refused)) from None


def ensure(spec: DRReplicaSpec, centres: dict[str, Centre], problems: list[tuple[str, str]]) -> None:
    """Targets created, the source looked for; what is wrong appended to `problems` as (reason, message)."""
    for copy in copies(spec):
        centre = centres.get(copy.centre)
        if centre is None or centre.health == "Down":
            continue
        client = s3_wire.shared_wire_timed(centre.endpoint, CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        source = copy.name == "source" and copy.centre == spec.active_centre
        try:
            with s3_wire.botocore_errors(centre.endpoint.url):
                if source:
                    s3_wire.head_bucket(client, copy.bucket)
                else:
                    ensure_target(client, copy.bucket, centre.endpoint.region)
        except CreateFailed as e:
            problems.append(("BucketCreateFailed", f"{copy.centre}/{copy.bucket}: {e}"))
        except ClientError as e:
            if source and e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                problems.append(
                    (dr_status.SOURCE_MISSING, f"bucket {copy.bucket} does not exist in {copy.centre}")
                )
        except BotoCoreError:
            continue  # no answer: the centre's probe reports it, and the next full run tries again
