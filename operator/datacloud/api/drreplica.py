"""DRReplica: two-locations-three-centres protection of one object-store data set."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    DNS_SUBDOMAIN,
    HHMM,
    LABEL_VALUE_MAX,
    PLAIN_SEGMENTS,
    PREFIX_FIELD,
    Bandwidth,
    Cron,
    Duration,
    LooseModel,
    Model,
    Name,
    StatusBase,
    cel,
    name_rules,
    with_rules,
)
from .reserved import ReplicaBucket

Mode = Literal["Continuous", "Scheduled"]
DeletePolicy = Literal["Mirror", "Retain"]
VerifyMethod = Literal["None", "SizeETag", "SHA256"]
ActionType = Literal["Failover", "Switchover", "Failback"]
Phase = Literal[
    "Seeding",
    "Protected",
    "Degraded",
    "FailingOver",
    "FailedOver",
    "Switching",
    "Paused",
    "Invalid",
    "Overlapping",
]
KeyPrefix = Annotated[str, Field(max_length=512, **PREFIX_FIELD), PLAIN_SEGMENTS]


class Source(Model):
    """Where the data set lives in production."""

    centre: Name = Field(description="Name of the DataCentre holding the data.")
    bucket: ReplicaBucket = Field(description="Bucket holding the data set.")
    prefix: KeyPrefix = Field(default="", description="Key prefix of the data set; empty for all.")


class Window(Model):
    """A daily transfer window (local time of the operator); Scheduled syncs start only inside it."""

    start: str = Field(pattern=HHMM, description="Window start, HH:MM.")
    end: str = Field(
        pattern=HHMM, description="Window end, HH:MM; before start means the window spans midnight."
    )


class Verification(Model):
    """How copies are checked after a sync."""

    method: VerifyMethod = Field(
        default="SizeETag", description="None, SizeETag (size and source ETag) or SHA256 (content)."
    )
    sample_percent: int = Field(default=10, ge=0, le=100, description="Percentage of objects verified.")


# The endpoint Service `<name>-endpoint` (builders.dr.endpoint_name) must be a DNS-1035 label of at most 63
# characters: a replica named with a dot, a leading digit or over 54 characters was admitted, and then its
# endpoint was refused for good (nothing published, a failover's Publishing step stuck).
NAME_MAX = LABEL_VALUE_MAX - len("-endpoint")
NAME_RULES = name_rules(
    f"self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= {NAME_MAX}",
    f"metadata.name of a DRReplica must be a DNS-1035 label of at most {NAME_MAX} characters (lower-case "
    "letters, digits and '-', starting with a letter): the endpoint Service <name>-endpoint is named "
    "after it",
)
# A target's name is a label value on its sync Jobs (at most 63 characters); dots are allowed there.
TargetName = Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=63)]


class Target(Model):
    """One replication target."""

    model_config = with_rules(
        cel(
            "self.mode != 'Continuous' || has(self.rpoTarget)",
            "a Continuous target needs rpoTarget",
        ),
        cel(
            "self.mode != 'Scheduled' || has(self.schedule)",
            "a Scheduled target needs a cron schedule",
        ),
    )

    name: TargetName = Field(
        description="Target name, unique within the replica; at most 63 characters (a sync Job label)."
    )
    centre: Name = Field(description="Name of the DataCentre receiving the copy.")
    bucket: ReplicaBucket = Field(description="Bucket receiving the copy.")
    prefix: KeyPrefix = Field(default="", description="Key prefix at the target.")
    mode: Mode = Field(description="Continuous (real-time, same-city) or Scheduled (full, remote).")
    rpo_target: Duration | None = Field(
        default=None, description="Recovery point objective, e.g. 30s or 24h."
    )
    schedule: Cron | None = Field(default=None, description="Cron schedule of full syncs, e.g. '0 2 * * *'.")
    window: Window | None = Field(default=None, description="Daily transfer window for Scheduled syncs.")
    bandwidth_limit: Bandwidth | None = Field(
        default=None, description="Bytes per second at most, e.g. 100Mi; unset means unlimited."
    )
    delete_policy: DeletePolicy = Field(
        default="Retain", description="Mirror deletes at the target what the source deleted; Retain keeps it."
    )
    verification: Verification = Field(default_factory=Verification, description="Post-sync verification.")
    shards: int = Field(
        default=1, ge=1, le=64, description="Pods of the Indexed Job running a Scheduled sync."
    )


class FailoverPolicy(Model):
    """When the operator may fail over on its own."""

    policy: Literal["Manual", "Automatic"] = Field(
        default="Manual", description="Automatic fails over when the active centre is Down long enough."
    )
    down_for: Duration = Field(
        default="0s",
        description="How long the active centre must have been Down (it is Down only after its probe's "
        "failureThreshold) before automatic failover.",
    )
    max_data_loss: Duration | None = Field(
        default=None,
        description="Automatic failover only when the target's lag is below this (default: its rpoTarget).",
    )


class Action(Model):
    """A requested DR action. Changing requestId starts a new one."""

    type: ActionType = Field(description="Failover (unplanned), Switchover (planned, lossless) or Failback.")
    target_centre: Name = Field(description="The centre that becomes active.")
    request_id: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="Change or ticket id recorded in the audit trail."
    )
    requested_by: str | None = Field(
        default=None, max_length=128, description="Who asked, for the audit trail."
    )
    dry_run: bool = Field(default=False, description="Only plan and estimate data loss; change nothing.")


def _folder(var: str) -> str:
    """CEL for a target's prefix as a folder (api.overlap.folder): `a` → `a/`, the empty prefix stays."""
    p = f"(has({var}.prefix) ? {var}.prefix : '')"
    return f"({p} == '' || {p}.endsWith('/') ? {p} : {p} + '/')"


class DRReplicaSpec(Model):
    """DR protection for one data set."""

    model_config = with_rules(
        cel(
            "self.activeCentre == self.source.centre || "
            "self.targets.exists(t, t.centre == self.activeCentre)",
            "activeCentre must be the source centre or the centre of one of the targets",
            ".activeCentre",
        ),
        cel(
            "!has(self.action) || self.action.targetCentre == self.source.centre || "
            "self.targets.exists(t, t.centre == self.action.targetCentre)",
            "action.targetCentre must be the source centre or the centre of one of the targets",
            ".action.targetCentre",
        ),
        cel(
            "self.targets.all(t, t.centre != self.source.centre || t.bucket != self.source.bucket)",
            "a target must not be the source bucket itself",
            ".targets",
        ),
        cel(
            f"self.targets.all(a, self.targets.all(b, a.name == b.name || a.centre != b.centre || "
            f"a.bucket != b.bucket || !({_folder('a')}.startsWith({_folder('b')}) || "
            f"{_folder('b')}.startsWith({_folder('a')}))))",
            "two targets in one centre and bucket must have prefixes that do not contain one another",
            ".targets",
        ),
    )

    source: Source = Field(description="The data set in the production centre.")
    active_centre: Name = Field(description="The centre applications write to now.")
    targets: list[Target] = Field(
        min_length=1,
        max_length=8,
        description="Where copies go.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy, description="Failover policy.")
    paused: bool = Field(default=False, description="Stop all replication until unset.")
    action: Action | None = Field(default=None, description="A DR action to carry out.")


class ParkedKey(LooseModel):
    """A key the continuous follower cannot copy and has parked (retried with the longest backoff)."""

    key: str = Field(description="The object key at the source.")
    reason: str = Field(description="Why its copy fails (the target's refusal).")


class TargetStatus(LooseModel):
    """Replication state of one target."""

    name: str = Field(description="Target name.")
    last_sync_time: str | None = Field(default=None, description="When the last sync finished.")
    last_sync_duration_seconds: float | None = Field(default=None, description="How long it took.")
    last_sync_result: str | None = Field(default=None, description="Succeeded, Failed or Skipped.")
    last_scheduled_time: str | None = Field(
        default=None,
        description="Cron time of the last scheduled run (for a run asked for by the run-now annotation, "
        "when it started).",
    )
    last_run_request: str | None = Field(
        default=None,
        description="The run-now annotation value this target last started a run for (sha256:<hex> of a "
        "value over 128 characters).",
    )
    last_good_sync_start: str | None = Field(
        default=None, description="Start of the last successful full sync (a scheduled copy is this old)."
    )
    next_sync_time: str | None = Field(default=None, description="When the next Scheduled sync starts.")
    lag_seconds: float | None = Field(default=None, description="Age of the oldest change not yet copied.")
    objects_copied: int | None = Field(default=None, description="Objects copied by the last sync.")
    bytes_copied: int | None = Field(default=None, description="Bytes copied by the last sync.")
    pending: int | None = Field(default=None, description="Changes waiting to be copied.")
    missed_intervals: int | None = Field(default=None, description="Scheduled runs missed in a row.")
    last_verification_time: str | None = Field(default=None, description="When copies were last verified.")
    mismatches: int | None = Field(default=None, description="Mismatches found by the last verification.")
    repaired: int | None = Field(
        default=None,
        description="Copies the last sync's verification found wrong, copied again and proved right.",
    )
    parked_keys: int | None = Field(
        default=None,
        description="Keys the continuous follower cannot copy (failing permanently), parked and retried "
        "with the longest backoff; they are not replicated.",
    )
    parked: list[ParkedKey] | None = Field(
        default=None, description="The first few parked keys, each with why its copy fails."
    )
    rpo_compliant: bool | None = Field(
        default=None, description="Whether lag is within rpoTarget and no key is parked."
    )
    message: str | None = Field(default=None, description="Last error or note.")


class Endpoint(LooseModel):
    """Where clients find the active copy."""

    centre: str | None = Field(default=None, description="Active centre.")
    url: str | None = Field(default=None, description="S3 endpoint of the active centre.")
    bucket: str | None = Field(default=None, description="Active bucket.")
    prefix: str | None = Field(default=None, description="Key prefix of the active copy in its bucket.")
    copy_name: str | None = Field(
        default=None,
        description="The active copy (source or a target's name), whose write lease its bucket carries: "
        "released by an operator that finds, on starting, that the spec no longer has this copy.",
    )
    config_map: str | None = Field(default=None, description="ConfigMap publishing the endpoint.")
    service: str | None = Field(default=None, description="ExternalName Service publishing the endpoint.")
    stale: str | None = Field(
        default=None,
        description="Why the published endpoint is not to be used (its bucket was deleted); the ConfigMap "
        "is kept and carries the same text in the datacloud.fujian.gov.cn/stale annotation.",
    )


class ActionStep(LooseModel):
    """One step of an action's progression."""

    name: str = Field(description="Fencing, Promoting, Publishing, Reseeding, Done, ...")
    state: str = Field(description="Pending, Running, Succeeded or Failed.")
    time: str | None = Field(default=None, description="When the step last changed.")
    message: str | None = Field(default=None, description="What happened.")
    reason: str | None = Field(
        default=None,
        description="Why a Running step waits (e.g. PublicationRefused, ReseedRefused, OldActiveUnreachable);"
        " absent when it is not blocked.",
    )


class ActionStatus(LooseModel):
    """Progress of the current or last action."""

    type: str | None = Field(default=None, description="Action type.")
    request_id: str | None = Field(default=None, description="Request id.")
    requested_by: str | None = Field(default=None, description="Who asked (or automatic).")
    from_centre: str | None = Field(default=None, description="The centre that was active.")
    fencing_epoch: int | None = Field(default=None, description="The epoch this action fences with.")
    result: str | None = Field(default=None, description="Succeeded, DryRun or Rejected.")
    started_epoch: float | None = Field(default=None, description="Start, in seconds since 1970.")
    duration_seconds: float | None = Field(default=None, description="How long the action took.")
    measured_data_loss_seconds: float | None = Field(
        default=None,
        description="Writes the new active never received, in seconds: from the oldest divergent write "
        "found when the old copy returned to the cut, and never less than the lag at the cut.",
    )
    audit_record: str | None = Field(default=None, description="Where the audit record was written.")
    divergent_objects: int | None = Field(
        default=None,
        description="Objects the old active held that the new one lacked, found when it returned "
        "(preserved, see status.divergence).",
    )
    target_centre: str | None = Field(default=None, description="Centre being promoted.")
    dry_run: bool | None = Field(default=None, description="Whether it was a dry run.")
    started_at: str | None = Field(default=None, description="Start time.")
    finished_at: str | None = Field(default=None, description="End time.")
    estimated_data_loss_seconds: float | None = Field(default=None, description="Lag at the start.")
    steps: list[ActionStep] = Field(default_factory=list, description="Progression.")
    plan: list[str] = Field(default_factory=list, description="The plan, for dry runs.")


class DivergenceRecord(LooseModel):
    """A copy that was active before an unplanned failover, checked for writes the new active lacks."""

    epoch: int = Field(description="The fencing epoch of the failover that left this copy.")
    copy_: str = Field(alias="copy", description="The copy: source or a target name.")
    centre: str = Field(description="Its centre.")
    bucket: str = Field(description="Its bucket.")
    prefix: str | None = Field(default=None, description="Its prefix.")
    cut_at: str = Field(description="When the failover started (the cut).")
    state: str = Field(
        description="Pending (nothing is written into the copy until checked), Clean, Preserved, "
        "Reviewed, or Active (failed over back to it before the check)."
    )
    objects: int | None = Field(default=None, description="Divergent objects preserved.")
    bytes: int | None = Field(default=None, description="Their bytes.")
    deletes: int | None = Field(
        default=None,
        description="Objects the copy deleted (acknowledged) that the active copy still holds and keeps; "
        "listed in the manifest.",
    )
    quarantine: str | None = Field(default=None, description="centre/bucket/prefix holding them.")
    oldest_write: str | None = Field(default=None, description="Last-modified time of the oldest.")
    newest_write: str | None = Field(default=None, description="Last-modified time of the newest.")
    checked_at: str | None = Field(default=None, description="When the check ran.")


class DRReplicaStatus(StatusBase):
    """Conditions: Ready, RPOCompliant, ReferencesValid, SingleWriter, EndpointPublished and
    ActionProgressing."""

    phase: Phase | None = Field(default=None, description="One word summarising the state.")

    active_centre: str | None = Field(default=None, description="The centre applications write to.")
    fencing_epoch: int | None = Field(default=None, description="Increases with every change of writer.")
    endpoint: Endpoint | None = Field(default=None, description="Published endpoint.")
    targets: list[TargetStatus] | None = Field(default=None, description="Per-target state.")
    action: ActionStatus | None = Field(default=None, description="Current or last action.")
    history: list[ActionStatus] | None = Field(default=None, description="Recent actions, newest first.")
    handled_request_id: str | None = Field(
        default=None, description="The last spec.action.requestId taken up (a new id starts a new action)."
    )
    last_run_request: str | None = Field(
        default=None,
        description="The last run-now annotation value answered: every Scheduled target started a full "
        "sync for it, or an Event said why it could not (sha256:<hex> of a value over 128 characters).",
    )
    writable_copies: int | None = Field(
        default=None, description="Copies that accepted a probe write by an ordinary account; 1 is healthy."
    )
    writable_locations: list[str] | None = Field(
        default=None, description="centre/bucket/prefix of every copy that accepted the probe write."
    )
    unmeasured_copies: list[str] | None = Field(
        default=None, description="Copies whose writability could not be measured, and why."
    )
    unfenced_unreachable: list[str] | None = Field(
        default=None, description="Centres to fence as soon as they answer."
    )
    estimated_data_loss_seconds: float | None = Field(
        default=None, description="What a failover now would lose: the best Continuous target's lag."
    )
    worst_lag_seconds: float | None = Field(
        default=None, description="The largest measured lag of any target: the least protected copy."
    )
    worst_lag_target: str | None = Field(default=None, description="The target with that lag.")
    last_full_sync_time: str | None = Field(
        default=None,
        description="Start of the latest good full sync of the Scheduled target that is furthest behind "
        "(what the remote copy holds); unset until every Scheduled target has one.",
    )
    divergence: list[DivergenceRecord] | None = Field(
        default=None, description="Copies checked (or to check) for divergent writes, newest first."
    )
