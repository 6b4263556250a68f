"""Each kind's condition types and reasons, typed: the one list the reconcilers build from and the docs print.

A condition is made with its kind's constructor (`datacentre`, `city`, `census`, `zone`, `replica`), which
takes the kind's enums, refuses a reason its type does not list (a programming error, caught by the unit
tests that walk every pair), and validates the result through the `Condition` model. `docs/conditions.md`
is generated from `CATALOGUES` (`python -m datacloud docs --out docs`) and a test keeps it so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from .common import Condition

# --- DataCentre -------------------------------------------------------------------------------------


class DataCentreType(StrEnum):
    READY = "Ready"
    PROBING = "Probing"


class DataCentreReason(StrEnum):
    INVALID_SPEC = "InvalidSpec"
    ANSWERING = "Answering"
    SLOW_RESPONSE = "SlowResponse"
    PROBING = "Probing"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    SECRET_VALUE_INVALID = "SecretValueInvalid"
    SECRET_UNREADABLE = "SecretUnreadable"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    S3_ERROR = "S3Error"
    UNREACHABLE = "Unreachable"


# --- CityDataCloud ----------------------------------------------------------------------------------


class CityType(StrEnum):
    AVAILABLE = "Available"
    CENSUS_FRESH = "CensusFresh"
    BASELINE_COMPLIANT = "BaselineCompliant"
    CENTRES_RESOLVED = "CentresResolved"
    CITY_CODE_UNIQUE = "CityCodeUnique"


class CityReason(StrEnum):
    INVALID_SPEC = "InvalidSpec"
    HEARTBEAT_SUCCEEDED = "HeartbeatSucceeded"
    HEARTBEAT_MISSED = "HeartbeatMissed"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    SECRET_UNREADABLE = "SecretUnreadable"
    KUBECONFIG_INVALID = "KubeconfigInvalid"
    CERTIFICATE_INVALID = "CertificateInvalid"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    NOT_FOUND = "NotFound"
    GONE = "Gone"
    UNREACHABLE = "Unreachable"
    SERVER_ERROR = "ServerError"
    FAILED = "Failed"
    CURRENT = "Current"
    STALE = "Stale"
    NO_SUMMARY = "NoSummary"
    ALL_CHECKS_PASSED = "AllChecksPassed"
    CHECKS_FAILED = "ChecksFailed"
    PROFILE_INVALID = "ProfileInvalid"
    PROFILE_UNREADABLE = "ProfileUnreadable"
    CHECKS_NOT_RUN = "ChecksNotRun"
    NOT_EVALUATED = "NotEvaluated"
    RESOLVED = "Resolved"
    NO_CENTRES = "NoCentres"
    CENTRE_NOT_FOUND = "CentreNotFound"
    CENTRE_IN_OTHER_CITY = "CentreInOtherCity"
    CENTRE_INVALID = "CentreInvalid"
    UNIQUE = "Unique"
    CITY_CODE_TAKEN = "CityCodeTaken"
    NOT_CHECKED = "NotChecked"


# --- ComputeCensus ----------------------------------------------------------------------------------


class CensusType(StrEnum):
    READY = "Ready"
    LAST_RUN_SUCCEEDED = "LastRunSucceeded"
    REPORTS_STORED = "ReportsStored"
    UTILISATION_MEASURED = "UtilisationMeasured"


class CensusReason(StrEnum):
    SCHEDULE_VALID = "ScheduleValid"
    SUSPENDED = "Suspended"
    INVALID_SPEC = "InvalidSpec"
    SUCCEEDED = "Succeeded"
    PARTIAL_COLLECTION = "PartialCollection"
    NO_CITIES = "NoCities"
    SNAPSHOT_NOT_STORED = "SnapshotNotStored"
    RUN_FAILED = "RunFailed"
    STORED = "Stored"
    SPILLED = "Spilled"
    TOO_LARGE = "TooLarge"
    STORE_FAILED = "StoreFailed"
    MEASURED = "Measured"
    PROMETHEUS_UNREACHABLE = "PrometheusUnreachable"
    QUERY_FAILED = "QueryFailed"
    OBJECT_STORE_UNREACHABLE = "ObjectStoreUnreachable"


# --- DataZone ---------------------------------------------------------------------------------------


class ZoneType(StrEnum):
    READY = "Ready"
    NAMESPACES_SYNCED = "NamespacesSynced"
    ISOLATED = "Isolated"
    QUOTA_ENFORCED = "QuotaEnforced"
    ACCESS_SYNCED = "AccessSynced"
    DR_PROTECTED = "DRProtected"


class ZoneReason(StrEnum):
    ZONE_IN_LINE = "ZoneInLine"
    INVALID_SPEC = "InvalidSpec"
    UNKNOWN_ZONE_REFERENCE = "UnknownZoneReference"
    IN_LINE = "InLine"
    NAMESPACE_EXISTS = "NamespaceExists"
    OWNED_BY_OTHER_ZONE = "OwnedByOtherZone"
    CLAIMED_BY_OTHER_ZONE = "ClaimedByOtherZone"
    NAMESPACE_TERMINATING = "NamespaceTerminating"
    NAMESPACE_RETAINED = "NamespaceRetained"
    CHILD_NOT_WRITTEN = "ChildNotWritten"
    NAMESPACE_REJECTED = "NamespaceRejected"
    POLICIES_IN_PLACE = "PoliciesInPlace"
    NO_NAMESPACES = "NoNamespaces"
    NETWORK_POLICY_REJECTED = "NetworkPolicyRejected"
    QUOTA_IN_PLACE = "QuotaInPlace"
    REBALANCING = "Rebalancing"
    NO_QUOTA_SET = "NoQuotaSet"
    OVER_QUOTA = "OverQuota"
    RESOURCE_QUOTA_REJECTED = "ResourceQuotaRejected"
    LIMIT_RANGE_REJECTED = "LimitRangeRejected"
    BINDINGS_IN_PLACE = "BindingsInPlace"
    NO_GROUPS = "NoGroups"
    ROLE_BINDING_REJECTED = "RoleBindingRejected"
    CLUSTER_ROLES_MISSING = "ClusterRolesMissing"
    CLUSTER_ROLES_UNREADABLE = "ClusterRolesUnreadable"
    REQUIREMENT_MET = "RequirementMet"
    NO_DR_REPLICAS = "NoDRReplicas"
    REQUIREMENT_NOT_MET = "RequirementNotMet"


# --- DRReplica --------------------------------------------------------------------------------------


class ReplicaType(StrEnum):
    READY = "Ready"
    REFERENCES_VALID = "ReferencesValid"
    RPO_COMPLIANT = "RPOCompliant"
    SINGLE_WRITER = "SingleWriter"
    ACTION_PROGRESSING = "ActionProgressing"
    ENDPOINT_PUBLISHED = "EndpointPublished"
    LOCATIONS_EXCLUSIVE = "LocationsExclusive"
    SPEC_USABLE = "SpecUsable"
    JOBS_HEALTHY = "JobsHealthy"
    RESEEDED = "Reseeded"


class ReplicaReason(StrEnum):
    PROTECTED = "Protected"
    SEEDING = "Seeding"
    PAUSED = "Paused"
    INVALID_SPEC = "InvalidSpec"
    RESOLVED = "Resolved"
    CENTRE_NOT_FOUND = "CentreNotFound"
    CENTRE_INVALID = "CentreInvalid"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    SECRET_VALUE_INVALID = "SecretValueInvalid"
    SECRET_UNREADABLE = "SecretUnreadable"
    ROLE_MISMATCH = "RoleMismatch"
    SOURCE_BUCKET_MISSING = "SourceBucketMissing"
    BUCKET_CREATE_FAILED = "BucketCreateFailed"
    WITHIN_RPO = "WithinRPO"
    NO_RPO_TARGET = "NoRPOTarget"
    RPO_BREACHED = "RPOBreached"
    KEYS_PARKED = "KeysParked"
    NOT_MEASURED = "NotMeasured"
    FENCED = "Fenced"
    NO_WRITABLE_COPY = "NoWritableCopy"
    SPLIT_BRAIN_SUSPECTED = "SplitBrainSuspected"
    FENCE_PENDING = "FencePending"
    COMPLETED = "Completed"
    STEP_RUNNING = "StepRunning"
    CENTRE_UNRESOLVED = "CentreUnresolved"
    OLD_ACTIVE_UNREACHABLE = "OldActiveUnreachable"
    WRITE_LEASE_RUNNING = "WriteLeaseRunning"
    NEW_ACTIVE_UNREACHABLE = "NewActiveUnreachable"
    FINAL_SYNC_FAILED = "FinalSyncFailed"
    FINAL_SYNC_INCOMPLETE = "FinalSyncIncomplete"
    FINAL_SYNC_MISMATCH = "FinalSyncMismatch"
    DIVERGENCE_CHECK_PENDING = "DivergenceCheckPending"
    RESEED_REFUSED = "ReseedRefused"
    RESEED_FAILED = "ReseedFailed"
    PUBLISHED = "Published"
    PUBLICATION_REFUSED = "PublicationRefused"
    PUBLICATION_FAILED = "PublicationFailed"
    NO_OVERLAP = "NoOverlap"
    OVERLAPS_REPLICA = "OverlapsReplica"
    OVERLAPS_ITSELF = "OverlapsItself"
    USABLE = "Usable"
    SCHEDULE_INVALID = "ScheduleInvalid"
    SCHEDULE_NEVER_FIRES = "ScheduleNeverFires"
    WINDOW_NEVER_OPENS = "WindowNeverOpens"
    NO_JOB_STUCK = "NoJobStuck"
    SYNC_JOB_FAILED = "SyncJobFailed"
    SYNC_POD_CANNOT_START = "SyncPodCannotStart"
    SYNC_POD_UNSCHEDULABLE = "SyncPodUnschedulable"
    SYNC_PODS_NOT_CREATED = "SyncPodsNotCreated"
    SEED_JOBS_CREATED = "SeedJobsCreated"
    SEED_JOB_PENDING = "SeedJobPending"


# --- The catalogue: what each type means and when each reason is given --------------------------------


@dataclass(frozen=True)
class Reasons:
    """One condition type: what True means, and its reasons by status ("True", "False", "Unknown")."""

    meaning: str
    true: Mapping[StrEnum, str]
    false: Mapping[StrEnum, str]
    unknown: Mapping[StrEnum, str] = field(default_factory=dict)

    def by_status(self) -> dict[str, Mapping[StrEnum, str]]:
        return {"True": self.true, "False": self.false, "Unknown": self.unknown}


_D, _C, _N, _Z, _R = DataCentreReason, CityReason, CensusReason, ZoneReason, ReplicaReason
_HEARTBEAT_FAILED = "the city's API server did not answer (after the grace)"

CATALOGUES: dict[str, dict[StrEnum, Reasons]] = {
    "DataCentre": {
        DataCentreType.READY: Reasons(
            "the centre's object store answered the last probe",
            {_D.ANSWERING: "answered within spec.probe.degradedLatency",
             _D.SLOW_RESPONSE: "answered, slower than spec.probe.degradedLatency (health Degraded)"},
            {_D.INVALID_SPEC: "the spec does not validate; the message names the field",
             _D.AUTHENTICATION_FAILED: "the store refused the credentials",
             _D.S3_ERROR: "the store answered with another S3 error",
             _D.UNREACHABLE: "the store did not answer within spec.probe.timeout"},
            {_D.SECRET_NOT_FOUND: "no probe was made: the credentials Secret does not exist",
             _D.SECRET_KEY_MISSING: "no probe was made: the Secret lacks a key",
             _D.SECRET_VALUE_INVALID: "no probe was made: a key's value has a line break, control "
                                      "character or surrounding space",
             _D.SECRET_UNREADABLE: "no probe was made: the API server refused to give the Secret"},
        ),
        DataCentreType.PROBING: Reasons(
            "the operator can probe the centre (its credentials are readable)",
            {_D.PROBING: "probing spec.objectStore.endpoint every spec.probe.interval"},
            {_D.SECRET_NOT_FOUND: "the credentials Secret does not exist",
             _D.SECRET_KEY_MISSING: "the credentials Secret lacks the access or secret key",
             _D.SECRET_VALUE_INVALID: "the access or secret key has a line break, control character or "
                                      "surrounding space (a file's last newline, say)",
             _D.SECRET_UNREADABLE: "the API server refused to give the Secret (e.g. 403: another namespace)"},
        ),
    },
    "CityDataCloud": {
        CityType.AVAILABLE: Reasons(
            "the city's Kubernetes API answers the heartbeat",
            {_C.HEARTBEAT_SUCCEEDED: "the last heartbeat was answered",
             _C.HEARTBEAT_MISSED: "a silent city within spec.heartbeat.grace of its last heartbeat"},
            {_C.INVALID_SPEC: "the spec does not validate",
             _C.SECRET_NOT_FOUND: "the kubeconfig Secret does not exist (at once)",
             _C.SECRET_KEY_MISSING: "the Secret lacks the kubeconfig key (at once)",
             _C.SECRET_UNREADABLE: "the API server refused to give the Secret, e.g. 403 (at once)",
             _C.KUBECONFIG_INVALID: "the kubeconfig is unusable or asks to run a credential plugin (at once)",
             _C.CERTIFICATE_INVALID: "the server's certificate is not from the kubeconfig's CA (at once)",
             _C.UNAUTHORIZED: "the credentials are expired or rejected (at once)",
             _C.FORBIDDEN: "the credentials may not read /version (at once)",
             _C.NOT_FOUND: "the server has no /version (at once)",
             _C.GONE: "the server answered 410 (at once)",
             _C.UNREACHABLE: _HEARTBEAT_FAILED,
             _C.SERVER_ERROR: "the server answered 5xx (after the grace)",
             _C.FAILED: "the server answered another 4xx (at once)"},
        ),
        CityType.CENSUS_FRESH: Reasons(
            "the node and resource summary is younger than spec.heartbeat.grace",
            {_C.CURRENT: "the summary is younger than the grace"},
            {_C.STALE: "the summary is older than the grace", _C.NO_SUMMARY: "the city was never summarised"},
        ),
        CityType.BASELINE_COMPLIANT: Reasons(
            "every check of the baseline profile passes",
            {_C.ALL_CHECKS_PASSED: "every check passed"},
            {_C.CHECKS_FAILED: "one or more checks failed; status.compliance lists them"},
            {_C.PROFILE_INVALID: "the profile ConfigMap is missing or malformed",
             _C.PROFILE_UNREADABLE: "the API server would not give the profile ConfigMap (403, 5xx)",
             _C.CHECKS_NOT_RUN: "the city's API could not be read for the checks",
             _C.NOT_EVALUATED: "the city has not been reached yet"},
        ),
        CityType.CENTRES_RESOLVED: Reasons(
            "every DataCentre in spec.centres exists and stands in this city (spec.city is the city code)",
            {_C.RESOLVED: "every listed centre exists and stands in this city",
             _C.NO_CENTRES: "spec.centres lists none"},
            {_C.CENTRE_NOT_FOUND: "a listed DataCentre does not exist; the message names each",
             _C.CENTRE_IN_OTHER_CITY: "a listed DataCentre stands in another city; the message says which",
             _C.CENTRE_INVALID: "a listed DataCentre's spec does not validate"},
            {_C.NOT_CHECKED: "the DataCentres or CityDataClouds could not be listed"},
        ),
        CityType.CITY_CODE_UNIQUE: Reasons(
            "no older CityDataCloud has the same spec.cityCode (the census counts one cloud per city)",
            {_C.UNIQUE: "the only CityDataCloud of its city, or the oldest"},
            {_C.CITY_CODE_TAKEN: "an older CityDataCloud is this city: the census leaves this one out"},
            {_C.NOT_CHECKED: "the DataCentres or CityDataClouds could not be listed"},
        ),
    },
    "ComputeCensus": {
        CensusType.READY: Reasons(
            "the spec is valid and the schedule will run",
            {_N.SCHEDULE_VALID: "runs on spec.schedule", _N.SUSPENDED: "spec.suspend is set"},
            {_N.INVALID_SPEC: "the spec or the schedule does not validate"},
        ),
        CensusType.LAST_RUN_SUCCEEDED: Reasons(
            "the last run collected every city in scope and stored its snapshot",
            {_N.SUCCEEDED: "every city collected, snapshot stored"},
            {_N.PARTIAL_COLLECTION: "some cities were not collected; their rows carry the previous figures",
             _N.NO_CITIES: "no CityDataCloud is in scope",
             _N.SNAPSHOT_NOT_STORED: "the snapshot could not be stored",
             _N.RUN_FAILED: "the run raised an error; the message names it"},
        ),
        CensusType.REPORTS_STORED: Reasons(
            "every report is where spec.reports says",
            {_N.STORED: "stored in the ConfigMap (and object store if set)",
             _N.SPILLED: "too large for the ConfigMap, stored in the object store"},
            {_N.TOO_LARGE: "too large for the ConfigMap and no object store is set",
             _N.STORE_FAILED: "a destination refused the report"},
        ),
        CensusType.UTILISATION_MEASURED: Reasons(
            "average and p95 use were read from spec.prometheusUrl (only when it is set)",
            {_N.MEASURED: "read over spec.utilisation.window"},
            {_N.PROMETHEUS_UNREACHABLE: "Prometheus did not answer",
             _N.QUERY_FAILED: "Prometheus refused or mangled the query",
             _N.OBJECT_STORE_UNREACHABLE: "a centre's object store could not be measured"},
        ),
    },
    "DataZone": {
        ZoneType.READY: Reasons(
            "every child of every namespace is in line (DR protection aside)",
            {_Z.ZONE_IN_LINE: "every child is in line"},
            {_Z.INVALID_SPEC: "the spec does not validate",
             _Z.UNKNOWN_ZONE_REFERENCE: "spec.network.allowFrom names a zone that does not exist",
             **{r: "as the condition of that area says" for r in (
                 _Z.NAMESPACE_EXISTS, _Z.OWNED_BY_OTHER_ZONE, _Z.CLAIMED_BY_OTHER_ZONE,
                 _Z.NAMESPACE_TERMINATING, _Z.NAMESPACE_RETAINED, _Z.CHILD_NOT_WRITTEN, _Z.NAMESPACE_REJECTED,
                 _Z.NETWORK_POLICY_REJECTED, _Z.RESOURCE_QUOTA_REJECTED, _Z.LIMIT_RANGE_REJECTED,
                 _Z.ROLE_BINDING_REJECTED, _Z.CLUSTER_ROLES_MISSING, _Z.CLUSTER_ROLES_UNREADABLE)}},
        ),
        ZoneType.NAMESPACES_SYNCED: Reasons(
            "every listed namespace exists, is the zone's and carries its labels",
            {_Z.IN_LINE: "created and labelled"},
            {_Z.NAMESPACE_EXISTS: "a listed namespace exists and is not the zone's: not taken over",
             _Z.OWNED_BY_OTHER_ZONE: "a listed namespace belongs to another zone",
             _Z.CLAIMED_BY_OTHER_ZONE: "an older zone lists the same namespace",
             _Z.NAMESPACE_TERMINATING: "a namespace is being deleted; it is created again once gone",
             _Z.NAMESPACE_RETAINED: "a namespace left the spec but still holds data; it stays governed",
             _Z.CHILD_NOT_WRITTEN: "a write was refused (namespace terminating, or a race); retried",
             _Z.NAMESPACE_REJECTED: "the API server refused the namespace; the message quotes it"},
        ),
        ZoneType.ISOLATED: Reasons(
            "default-deny and allow NetworkPolicies are in place in every namespace",
            {_Z.POLICIES_IN_PLACE: "the profile's policies are in place"},
            {_Z.NO_NAMESPACES: "the zone owns no namespace yet",
             _Z.NETWORK_POLICY_REJECTED: "the API server refused a NetworkPolicy"},
        ),
        ZoneType.QUOTA_ENFORCED: Reasons(
            "spec.quota.hard is split over per-namespace ResourceQuotas summing to it",
            {_Z.QUOTA_IN_PLACE: "limits split over the namespaces",
             _Z.REBALANCING: "usage changed while limits were moved; retrying"},
            {_Z.NO_QUOTA_SET: "spec.quota.hard is empty: no limits",
             _Z.NO_NAMESPACES: "the zone owns no namespace (a conflict, or none yet): nothing enforced",
             _Z.OVER_QUOTA: "usage exceeds the zone limit; nothing new is admitted until it falls",
             _Z.RESOURCE_QUOTA_REJECTED: "the API server refused a ResourceQuota (e.g. an unknown resource)",
             _Z.LIMIT_RANGE_REJECTED: "the API server refused the LimitRange"},
        ),
        ZoneType.ACCESS_SYNCED: Reasons(
            "the access groups are bound to the zone ClusterRoles in every namespace",
            {_Z.BINDINGS_IN_PLACE: "every group is bound", _Z.NO_GROUPS: "spec.access names no group"},
            {_Z.NO_NAMESPACES: "the zone owns no namespace (a conflict, or none yet): nothing bound",
             _Z.ROLE_BINDING_REJECTED: "the API server refused a RoleBinding",
             _Z.CLUSTER_ROLES_MISSING: "a zone ClusterRole is missing: install it with the Helm chart",
             _Z.CLUSTER_ROLES_UNREADABLE: "the zone ClusterRoles could not be read"},
        ),
        ZoneType.DR_PROTECTED: Reasons(
            "every DRReplica of the zone has the targets its classification needs",
            {_Z.REQUIREMENT_MET: "each replica has the targets"},
            {_Z.NO_DR_REPLICAS: "no DRReplica is labelled with the zone or lives in its namespaces",
             _Z.REQUIREMENT_NOT_MET: "a replica lacks a target; the message names it and what it lacks"},
        ),
    },
    "DRReplica": {
        ReplicaType.READY: Reasons(
            "references resolve, every target is within its RPO, the spec is usable and nothing is paused",
            {_R.PROTECTED: "replication running"},
            {_R.PAUSED: "spec.paused is set",
             _R.INVALID_SPEC: "the spec does not validate",
             _R.RPO_BREACHED: "a target's lag is over its rpoTarget",
             _R.KEYS_PARKED: "keys fail permanently on a target: they are not replicated",
             _R.SEEDING: "a Continuous target's first scan has not finished: the initial copy is running",
             **{r: "as ReferencesValid, LocationsExclusive or SpecUsable says" for r in (
                 _R.CENTRE_NOT_FOUND, _R.CENTRE_INVALID, _R.SECRET_NOT_FOUND, _R.SECRET_KEY_MISSING,
                 _R.SECRET_VALUE_INVALID, _R.SECRET_UNREADABLE,
                 _R.ROLE_MISMATCH, _R.SOURCE_BUCKET_MISSING, _R.BUCKET_CREATE_FAILED, _R.OVERLAPS_REPLICA,
                 _R.OVERLAPS_ITSELF, _R.SCHEDULE_INVALID, _R.SCHEDULE_NEVER_FIRES, _R.WINDOW_NEVER_OPENS)}},
        ),
        ReplicaType.REFERENCES_VALID: Reasons(
            "every centre resolves, with the role its target mode needs, and the buckets exist",
            {_R.RESOLVED: "all centres resolved"},
            {_R.CENTRE_NOT_FOUND: "a named DataCentre does not exist",
             _R.CENTRE_INVALID: "a DataCentre's spec does not validate",
             _R.SECRET_NOT_FOUND: "a centre's credentials Secret does not exist",
             _R.SECRET_KEY_MISSING: "a centre's credentials Secret lacks a key",
             _R.SECRET_VALUE_INVALID: "a centre's access or secret key has a line break, control "
                                      "character or surrounding space",
             _R.SECRET_UNREADABLE: "the API server refused to give a centre's credentials Secret (e.g. 403)",
             _R.ROLE_MISMATCH: "a Continuous target not on SameCityDR, or a Scheduled one not on RemoteDR",
             _R.SOURCE_BUCKET_MISSING: "the source bucket does not exist",
             _R.BUCKET_CREATE_FAILED: "a target bucket could not be created"},
        ),
        ReplicaType.RPO_COMPLIANT: Reasons(
            "every target's lag is within its rpoTarget",
            {_R.WITHIN_RPO: "every target within its RPO",
             _R.NO_RPO_TARGET: "no target has an rpoTarget: nothing to breach"},
            {_R.RPO_BREACHED: "the message names the targets over their RPO",
             _R.KEYS_PARKED: "keys fail permanently on a target (parkedKeys): they are not replicated"},
            {_R.NOT_MEASURED: "no lag measured yet for a target",
             _R.SOURCE_BUCKET_MISSING: "nothing to measure: the source bucket does not exist"},
        ),
        ReplicaType.SINGLE_WRITER: Reasons(
            "at most the active copy accepts writes, as measured by a probe write",
            {_R.FENCED: "only the active copy accepted the probe",
             _R.NO_WRITABLE_COPY: "no copy accepts writes (the active one neither)"},
            {_R.SPLIT_BRAIN_SUSPECTED: "two or more copies accepted the probe"},
            {_R.FENCE_PENDING: "a copy could not be fenced yet (its store is unreachable)",
             _R.NOT_MEASURED: "no probe account, or the probe got no answer"},
        ),
        ReplicaType.ACTION_PROGRESSING: Reasons(
            "the action advances (or completed); absent before any action",
            {_R.COMPLETED: "the action completed", _R.STEP_RUNNING: "a step is running"},
            {_R.CENTRE_UNRESOLVED: "a centre the step needs cannot be resolved",
             _R.OLD_ACTIVE_UNREACHABLE: "the old active copy cannot be fenced",
             _R.WRITE_LEASE_RUNNING: "the old active copy cannot be fenced and its write lease has "
             "not run out yet",
             _R.NEW_ACTIVE_UNREACHABLE: "the new active copy cannot be opened for writes",
             _R.FINAL_SYNC_FAILED: "the final sync failed",
             _R.FINAL_SYNC_INCOMPLETE: "the final sync is still copying after its passes",
             _R.FINAL_SYNC_MISMATCH: "objects differ after the final sync",
             _R.DIVERGENCE_CHECK_PENDING: "the copy must be compared with the active one first",
             _R.PUBLICATION_REFUSED: "the API server refused the endpoint (4xx)",
             _R.PUBLICATION_FAILED: "the API server failed the endpoint (5xx)"},
        ),
        ReplicaType.ENDPOINT_PUBLISHED: Reasons(
            "the endpoint ConfigMap and Service name the active copy",
            {_R.PUBLISHED: "published"},
            {_R.PUBLICATION_REFUSED: "the API server refused them (a policy, a webhook, RBAC)",
             _R.PUBLICATION_FAILED: "the API server failed them (5xx)",
             _R.CENTRE_UNRESOLVED: "the active centre cannot be resolved",
             _R.SOURCE_BUCKET_MISSING: "not published: the source bucket does not exist (an endpoint "
             "published before it went is kept, marked stale)"},
        ),
        ReplicaType.LOCATIONS_EXCLUSIVE: Reasons(
            "no other replica (and no copy of this one) shares these keys",
            {_R.NO_OVERLAP: "no other replica shares these keys"},
            {_R.OVERLAPS_REPLICA: "an older replica covers the same keys: this one stands aside",
             _R.OVERLAPS_ITSELF: "two copies of this replica overlap"},
        ),
        ReplicaType.SPEC_USABLE: Reasons(
            "every target can be carried out",
            {_R.USABLE: "every target can be carried out"},
            {_R.SCHEDULE_INVALID: "a target's schedule cannot be used",
             _R.SCHEDULE_NEVER_FIRES: "a target's schedule never fires",
             _R.WINDOW_NEVER_OPENS: "a target's window never contains a scheduled time"},
        ),
        ReplicaType.JOBS_HEALTHY: Reasons(
            "each Scheduled target's newest sync Job runs or finished well (absent without Scheduled ones)",
            {_R.NO_JOB_STUCK: "no sync Job is stuck"},
            {_R.SYNC_JOB_FAILED: "a sync Job failed (backoff spent); the message names the Job",
             _R.SYNC_POD_CANNOT_START: "a sync pod's container cannot start (image missing, crash loop, "
                                       "bad configuration); the message names the Job and the pod",
             _R.SYNC_POD_UNSCHEDULABLE: "no node takes a sync pod; the message names the Job and the pod",
             _R.SYNC_PODS_NOT_CREATED: "a sync Job created no pod within 2 minutes (quota, admission, Pod "
                                       "Security); the message names the Job"},
        ),
        ReplicaType.RESEEDED: Reasons(
            "after the last change of active centre, each Scheduled target has its seed Job from the new "
            "active (or waits for its next scheduled run); absent before any action",
            {_R.SEED_JOBS_CREATED: "every seed Job owed was created; the message names them"},
            {_R.SEED_JOB_PENDING: "a seed Job is owed: made by the run after the action's end, or once "
                                  "the target's centre answers; the message says which",
             _R.RESEED_REFUSED: "the API server refused a seed Job (4xx); tried again on the next run",
             _R.RESEED_FAILED: "the API server failed to create a seed Job (5xx); tried again"},
        ),
    },
}  # fmt: skip


R = TypeVar("R", bound=StrEnum)


def reason_of(enum: type[R], text: str, fallback: R) -> R:
    """A reason another module classified (an API error, a probe outcome) as the kind's enum; a word the
    catalogue does not know becomes `fallback` rather than failing the status write."""
    try:
        return enum(text)
    except ValueError:
        return fallback


def _make(
    kind: str, type_: StrEnum, ok: bool | None, reason: StrEnum, message: str, generation: int | None
) -> dict[str, Any]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    if reason not in CATALOGUES[kind][type_].by_status()[status]:
        raise ValueError(f"{kind} condition {type_}={status} has no reason {reason}")
    model = Condition(
        type=str(type_), status=status, reason=str(reason), message=message, observed_generation=generation
    )
    return model.wire()


def datacentre(
    type_: DataCentreType,
    ok: bool | None,
    reason: DataCentreReason,
    message: str,
    generation: int | None = None,
) -> dict[str, Any]:
    return _make("DataCentre", type_, ok, reason, message, generation)


def city(
    type_: CityType, ok: bool | None, reason: CityReason, message: str, generation: int | None = None
) -> dict[str, Any]:
    return _make("CityDataCloud", type_, ok, reason, message, generation)


def census(
    type_: CensusType, ok: bool | None, reason: CensusReason, message: str, generation: int | None = None
) -> dict[str, Any]:
    return _make("ComputeCensus", type_, ok, reason, message, generation)


def zone(
    type_: ZoneType, ok: bool | None, reason: ZoneReason, message: str, generation: int | None = None
) -> dict[str, Any]:
    return _make("DataZone", type_, ok, reason, message, generation)


def replica(
    type_: ReplicaType, ok: bool | None, reason: ReplicaReason, message: str, generation: int | None = None
) -> dict[str, Any]:
    return _make("DRReplica", type_, ok, reason, message, generation)


def condition_table(kind: str) -> str:
    """The kind's conditions as a Markdown table: type, what True means, reasons by status."""
    lines = ["| type | True means | reasons |", "|---|---|---|"]
    for type_, reasons in CATALOGUES[kind].items():
        parts = [
            f"{status}: " + "; ".join(f"`{r}` — {why}" for r, why in by.items())
            for status, by in reasons.by_status().items()
            if by
        ]
        lines.append(f"| `{type_}` | {reasons.meaning} | {'<br>'.join(parts)} |")
    return "\n".join(lines) + "\n"
