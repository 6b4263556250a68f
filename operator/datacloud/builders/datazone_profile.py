"""What a DataZone's classification means: Pod Security level, default-deny directions, DR needs.

Pure: the reconciler renders children and judges DR protection from these answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import GROUP

LABEL_ZONE = f"{GROUP}/zone"
LABEL_DEPARTMENT = f"{GROUP}/department"
LABEL_CLASSIFICATION = f"{GROUP}/classification"
LABEL_MANAGED_BY = f"{GROUP}/managed-by"
MANAGER = "datacloud"
ANNOTATION_DEPARTMENT_NAME = f"{GROUP}/department-name"

# A DR requirement: (target mode, role of the target's DataCentre).
SAME_CITY_CONTINUOUS = ("Continuous", "SameCityDR")
REMOTE_SCHEDULED = ("Scheduled", "RemoteDR")


@dataclass(frozen=True)
class Profile:
    classification: str
    pod_security: str
    default_deny: tuple[str, ...]
    dr_needs: tuple[tuple[str, str], ...]

    @property
    def egress_restricted(self) -> bool:
        return "Egress" in self.default_deny

    @property
    def dr_requirement(self) -> str:
        return " and ".join(f"a {mode} target on a {role} centre" for mode, role in self.dr_needs)

    def wire(self) -> dict[str, object]:
        return {
            "podSecurity": self.pod_security,
            "defaultDeny": list(self.default_deny),
            "drRequirement": self.dr_requirement,
        }


def profile_for(classification: str, egress_rules: int = 0) -> Profile:
    """Core and Important: restricted pods, no traffic either way unless allowed, real-time same-city plus
    scheduled remote DR. General: baseline pods, ingress denied unless allowed, scheduled remote DR; its
    egress is open unless the spec lists egress rules, which then become the only way out (besides DNS and
    the zone itself) — a General zone that names its egress means to restrict it."""
    if classification in ("Core", "Important"):
        return Profile(
            classification, "restricted", ("Ingress", "Egress"), (SAME_CITY_CONTINUOUS, REMOTE_SCHEDULED)
        )
    deny = ("Ingress", "Egress") if egress_rules else ("Ingress",)
    return Profile(classification, "baseline", deny, (REMOTE_SCHEDULED,))


@dataclass(frozen=True)
class ReplicaTargets:
    """What DR evaluation needs from one DRReplica: its name and each target's (mode, centre)."""

    name: str  # namespace/name
    targets: tuple[tuple[str, str], ...]


def dr_gaps(
    profile: Profile, replicas: Iterable[ReplicaTargets], centre_roles: Mapping[str, str]
) -> dict[str, list[str]]:
    """For each replica, the requirements it misses (empty list when it meets the profile)."""
    out: dict[str, list[str]] = {}
    for replica in replicas:
        have = {(mode, centre_roles.get(centre, "")) for mode, centre in replica.targets}
        missing = []
        for mode, role in profile.dr_needs:
            if (mode, role) not in have:
                unknown = sorted(c for m, c in replica.targets if m == mode and c not in centre_roles)
                hint = f" (centre {', '.join(unknown)} not found)" if unknown else ""
                missing.append(f"a {mode} target on a {role} centre{hint}")
        out[replica.name] = missing
    return out
