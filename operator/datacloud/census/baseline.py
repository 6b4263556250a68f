"""The provincial baseline (省级技术架构基线): a versioned profile of checks, evaluated purely on facts
gathered from a city's API.

A profile names checks; each check has an id, a severity, a description, a `check` (one of the built-in
kinds below, since a profile is data and carries no code) and its parameters. The built-in profile is
`fujian-provincial` v1; a ConfigMap can supply another profile or version in the same shape (README).
Only what the API can show is checked: a cluster-wide Pod Security default set in the API server's
admission configuration, for example, is invisible and so not credited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

SEVERITIES = ("critical", "high", "medium", "low")
ZONE_LABEL = "datacloud.fujian.gov.cn/zone"
CITY_LABEL = "datacloud.fujian.gov.cn/city"
CENTRE_LABEL = "datacloud.fujian.gov.cn/centre"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"]


class ProfileError(ValueError):
    """A profile that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class NetworkPolicyFacts:
    name: str
    selects_all: bool  # empty podSelector: applies to every pod in the namespace
    policy_types: tuple[str, ...]
    ingress_rules: int
    egress_rules: int


@dataclass(frozen=True)
class BaselineFacts:
    """What the checks may look at, all read from the city's API."""

    city_code: str
    kubernetes_version: str  # gitVersion, e.g. v1.34.4
    namespaces: dict[str, dict[str, str]]  # name → labels
    network_policies: dict[str, list[NetworkPolicyFacts]] = field(default_factory=dict)
    config_keys: dict[str, set[str]] = field(default_factory=dict)  # monitoring namespace → ConfigMap keys
    service_monitors: int | None = None  # None when the ServiceMonitor CRD is not installed
    node_labels: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    id: str
    check: str
    severity: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    checks: tuple[Check, ...]

    def monitoring_namespaces(self) -> set[str]:
        kinds = ("monitoring-namespace", "scrape-config")
        return {str(c.params.get("namespace", "monitoring")) for c in self.checks if c.check in kinds}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Evaluation:
    profile: str
    version: str
    findings: tuple[Finding, ...]

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.passed]

    @property
    def score(self) -> int:
        """Percentage of checks passed (100 for an empty profile)."""
        if not self.findings:
            return 100
        return round(100 * sum(f.passed for f in self.findings) / len(self.findings))

    @property
    def compliant(self) -> bool:
        return not self.failed


# --- The checks: each returns (passed, message) ------------------------------------------------
Result = tuple[bool, str]


def _minor(version: str) -> tuple[int, int] | None:
    m = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_kubernetes_version(facts: BaselineFacts, params: Mapping[str, Any]) -> Result:
    low, high = _minor(str(params.get("min", "1.32"))), _minor(str(params.get("max", "1.35")))
    have = _minor(facts.kubernetes_version)
    if have is None or low is None or high is None:
        return False, f"cannot compare version {facts.kubernetes_version!r} with the supported range"
    wanted = f"{params.get('min', '1.32')} to {params.get('max', '1.35')}"
    if low <= have <= high:
        return True, f"Kubernetes {facts.kubernetes_version} is within {wanted}"
    return False, f"Kubernetes {facts.kubernetes_version} is outside the supported range {wanted}"


def _listed(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_pod_security(facts: BaselineFacts, params: Mapping[str, Any]) -> Result:
    exclude = set(params.get("exclude", SYSTEM_NAMESPACES))
    levels = set(params.get("levels", ["baseline", "restricted"]))
    workload = [ns for ns in facts.namespaces if ns not in exclude]
    bad = [ns for ns in workload if facts.namespaces[ns].get(PSA_ENFORCE) not in levels]
    if bad:
        return False, (
            f"{len(bad)} of {len(workload)} workload namespace(s) do not enforce Pod Security "
            f"{' or '.join(sorted(levels))}: {_listed(bad)}"
        )
    return True, f"all {len(workload)} workload namespace(s) enforce Pod Security"


def _denies(p: NetworkPolicyFacts, direction: str) -> bool:
    rules = p.ingress_rules if direction == "Ingress" else p.egress_rules
    return p.selects_all and direction in p.policy_types and rules == 0


def check_zone_default_deny(facts: BaselineFacts, params: Mapping[str, Any]) -> Result:
    label = str(params.get("zoneLabel", ZONE_LABEL))
    directions = list(params.get("directions", ["Ingress"]))
    zoned = [ns for ns, labels in facts.namespaces.items() if label in labels]
    bad = [
        ns
        for ns in zoned
        if not all(any(_denies(p, d) for p in facts.network_policies.get(ns, [])) for d in directions)
    ]
    if bad:
        return False, (
            f"{len(bad)} zone-managed namespace(s) lack a default-deny {'/'.join(directions)} "
            f"NetworkPolicy: {_listed(bad)}"
        )
    return True, f"all {len(zoned)} zone-managed namespace(s) have a default-deny NetworkPolicy"


def check_monitoring_namespace(facts: BaselineFacts, params: Mapping[str, Any]) -> Result:
    ns = str(params.get("namespace", "monitoring"))
    if ns in facts.namespaces:
        return True, f"namespace {ns} exists"
    return False, f"monitoring namespace {ns} does not exist"


def check_scrape_config(facts: BaselineFacts, params: Mapping[str, Any]) -> Result:
    ns = str(params.get("namespace", "monitoring"))
    keys = set(params.get("configMapKeys", ["prometheus.yml", "prometheus.yaml"]))
    found = keys & facts.config_keys.get(ns, set())
    if found:
        return True, f"a ConfigMap in {ns} holds {sorted(found)[0]}"
    if facts.service_monitors:
        return True, f"{facts.service_monitors} ServiceMonitor(s) configure scraping"
    return False, f"no scrape configuration: no ConfigMap key {sorted(keys)[0]} in {ns} and no ServiceMonitor"


def check_node_labels(facts: BaselineFacts, params: Mapping[str, Any]) -> Result:
    required = list(params.get("labels", [CITY_LABEL, CENTRE_LABEL]))
    city_label = params.get("cityLabel", CITY_LABEL)
    bad = 0
    wrong_city = 0
    for labels in facts.node_labels:
        if any(not labels.get(key) for key in required):
            bad += 1
        elif city_label and labels.get(str(city_label), facts.city_code) != facts.city_code:
            wrong_city += 1
    total = len(facts.node_labels)
    if bad or wrong_city:
        parts = [f"{bad} of {total} node(s) lack {' or '.join(required)}"] if bad else []
        if wrong_city:
            parts.append(f"{wrong_city} node(s) carry a {city_label} other than {facts.city_code}")
        return False, "; ".join(parts)
    return True, f"all {total} node(s) carry {', '.join(required)}"


CHECKS: dict[str, Callable[[BaselineFacts, Mapping[str, Any]], Result]] = {
    "kubernetes-version": check_kubernetes_version,
    "pod-security-enforced": check_pod_security,
    "zone-default-deny": check_zone_default_deny,
    "monitoring-namespace": check_monitoring_namespace,
    "scrape-config": check_scrape_config,
    "node-labels": check_node_labels,
}

DEFAULT_PROFILE = Profile(
    "fujian-provincial",
    "v1",
    (
        Check("FJ-K8S-001", "kubernetes-version", "critical",
              "The Kubernetes version is inside the provincially supported range.",
              {"min": "1.32", "max": "1.35"}),
        Check("FJ-PSA-001", "pod-security-enforced", "high",
              "Pod Security admission is enforced (baseline or restricted) on every workload namespace.",
              {"exclude": SYSTEM_NAMESPACES, "levels": ["baseline", "restricted"]}),
        Check("FJ-NET-001", "zone-default-deny", "high",
              "Every zone-managed namespace has a default-deny ingress NetworkPolicy.",
              {"zoneLabel": ZONE_LABEL, "directions": ["Ingress"]}),
        Check("FJ-MON-001", "monitoring-namespace", "medium",
              "A monitoring namespace exists.", {"namespace": "monitoring"}),
        Check("FJ-MON-002", "scrape-config", "medium",
              "A Prometheus scrape configuration exists (ConfigMap key or ServiceMonitor).",
              {"namespace": "monitoring", "configMapKeys": ["prometheus.yml", "prometheus.yaml"]}),
        Check("FJ-NODE-001", "node-labels", "medium",
              "Every node carries the city and centre labels, and the city label is this city's code.",
              {"labels": [CITY_LABEL, CENTRE_LABEL], "cityLabel": CITY_LABEL}),
    ),
)  # fmt: skip


def evaluate(profile: Profile, facts: BaselineFacts) -> Evaluation:
    findings = []
    for c in profile.checks:
        passed, message = CHECKS[c.check](facts, c.params)
        findings.append(Finding(c.id, c.severity, passed, message))
    return Evaluation(profile.name, profile.version, tuple(findings))


# --- Profiles from ConfigMaps ------------------------------------------------------------------
PROFILE_KEY = "profile.yaml"

# Each check's parameters and what each must be. A profile is YAML a person writes: `min: 1.30` unquoted is
# the number 1.3 (Kubernetes 1.3), `exclude: kube-system` a string the check read letter by letter, `levels:
# 5` raised in the middle of a heartbeat, and a misspelt name (`exlude`) was silently the default.
_TEXT, _TEXTS, _SOME, _VERSION, _DIRECTIONS = "text", "list of text", "some text", "version", "directions"
PARAMS: dict[str, dict[str, str]] = {
    "kubernetes-version": {"min": _VERSION, "max": _VERSION},
    "pod-security-enforced": {"exclude": _TEXTS, "levels": _SOME},
    "zone-default-deny": {"zoneLabel": _TEXT, "directions": _DIRECTIONS},
    "monitoring-namespace": {"namespace": _TEXT},
    "scrape-config": {"namespace": _TEXT, "configMapKeys": _SOME},
    "node-labels": {"labels": _TEXTS, "cityLabel": _TEXT},
}


def _param_problem(kind: str, value: Any) -> str | None:
    """Why `value` cannot be a parameter of that kind; None when it can."""
    if kind == _VERSION:
        if not isinstance(value, str) or _minor(value) is None:
            return 'must be a quoted version such as "1.32" (unquoted, 1.30 is the number 1.3)'
    elif kind == _TEXT:
        if not isinstance(value, str):
            return "must be text"
    elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of text, e.g. [a, b]"
    elif kind == _DIRECTIONS and (not value or not set(value) <= {"Ingress", "Egress"}):
        return "must list Ingress, Egress or both"
    elif kind == _SOME and not value:
        return "must list at least one"
    return None


def _check_params(where: str, kind: str, params: Mapping[str, Any]) -> None:
    known = PARAMS[kind]
    for key, value in params.items():
        if key not in known:
            raise ProfileError(f"{where}.params.{key}: not a parameter of {kind} ({', '.join(known)})")
        problem = _param_problem(known[key], value)
        if problem:
            raise ProfileError(f"{where}.params.{key}: {problem}")


def parse_profile(text: str) -> Profile:
    """A profile from the YAML of a ConfigMap's `profile.yaml`; ProfileError says what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ProfileError(f"{PROFILE_KEY} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{PROFILE_KEY} must be a mapping with profile, version and checks")
    name, version, checks = raw.get("profile"), raw.get("version"), raw.get("checks")
    if not isinstance(name, str) or not name:
        raise ProfileError("profile: a name is required")
    if not isinstance(version, str) or not re.fullmatch(r"v[0-9]+(\.[0-9]+)*", version):
        raise ProfileError("version: must look like v1 or v1.2")
    if not isinstance(checks, list) or not checks:
        raise ProfileError("checks: a non-empty list is required")
    out: list[Check] = []
    for i, c in enumerate(checks):
        where = f"checks[{i}]"
        if not isinstance(c, dict):
            raise ProfileError(f"{where}: must be a mapping")
        cid, kind, severity = c.get("id"), c.get("check"), c.get("severity")
        if not isinstance(cid, str) or not cid:
            raise ProfileError(f"{where}.id: required")
        if kind not in CHECKS:
            raise ProfileError(f"{where}.check: {kind!r} is not one of {', '.join(sorted(CHECKS))}")
        if severity not in SEVERITIES:
            raise ProfileError(f"{where}.severity: must be one of {', '.join(SEVERITIES)}")
        params = c.get("params") or {}
        if not isinstance(params, dict):
            raise ProfileError(f"{where}.params: must be a mapping")
        _check_params(where, str(kind), params)
        if any(o.id == cid for o in out):
            raise ProfileError(f"{where}.id: {cid} appears twice")
        out.append(Check(cid, str(kind), str(severity), str(c.get("description", "")), params))
    return Profile(name, version, tuple(out))


def choose_profile(name: str, version: str, configmap_text: str | None) -> Profile:
    """The profile a city asked for: the ConfigMap's when one is given, else the built-in one; either
    must match the requested name and version, so a city never silently runs a different baseline."""
    profile = parse_profile(configmap_text) if configmap_text is not None else DEFAULT_PROFILE
    if (profile.name, profile.version) != (name, version):
        source = "the ConfigMap" if configmap_text is not None else "the built-in profile"
        raise ProfileError(
            f"{source} is {profile.name} {profile.version}, not the requested {name} {version}"
        )
    return profile
