"""Resource names and limit orderings a DataZone's quota and container limits may hold: the API server's
own rules for ResourceQuota and LimitRange (Kubernetes 1.34), checked where the zone is written so that a
typo (`cpuz`, `request.cpu`) or a default above its maximum is refused by `kubectl apply` with the field
named, instead of surfacing later as a refused child object.

Each check exists twice from one definition: as a CEL rule the CRD carries and as a pydantic validator the
operator parses with (a zone stored before the rule existed gets an InvalidSpec condition). Names with a
`/` (`count/deployments.apps`, `requests.nvidia.com/gpu`) are left to the API server's qualified-name
grammar; every other name must be one of the standard ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from . import quantity
from .common import cel

# ResourceQuota names without a `/` that the API server accepts (each tried against kube-apiserver 1.34):
# hugepages-<size> and requests.hugepages-<size> besides these.
QUOTA_NAMES = (
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "services.nodeports",
    "services.loadbalancers",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
)
# LimitRange (type Container) names without a `/`, and hugepages-<size>.
CONTAINER_NAMES = ("cpu", "memory", "ephemeral-storage")
_SIZE = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
QUOTA_HUGEPAGES = rf"^(requests\.)?hugepages-{_SIZE}$"
CONTAINER_HUGEPAGES = rf"^hugepages-{_SIZE}$"

QUOTA_MSG = (
    "is not a quota resource: use pods, services, configmaps, secrets, persistentvolumeclaims, "
    "requests.cpu, requests.memory, limits.cpu, limits.memory, requests.storage, ... or a qualified "
    "name such as count/deployments.apps or requests.nvidia.com/gpu"
)
CONTAINER_MSG = (
    "is not a container resource: use cpu, memory, ephemeral-storage, hugepages-<size> or an extended "
    "resource such as nvidia.com/gpu"
)


def _cel_names(names: tuple[str, ...], hugepages: str) -> str:
    listed = ", ".join(repr(n) for n in names)
    return f"k.contains('/') || k in [{listed}] || k.matches({hugepages!r})"


_QUOTA_OK = _cel_names(QUOTA_NAMES, QUOTA_HUGEPAGES)
_CONTAINER_OK = _cel_names(CONTAINER_NAMES, CONTAINER_HUGEPAGES)


def _names_rule(ok: str, message: str) -> dict[str, str]:
    """A map's keys all pass `ok` (CEL, over `k`); the message names the first that does not."""
    rule = cel(f"self.all(k, {ok})", message)
    rule["messageExpression"] = f"'\"' + self.filter(k, !({ok}))[0] + '\" {message}'"
    return rule


QUOTA_NAMES_RULE = _names_rule(_QUOTA_OK, QUOTA_MSG)
CONTAINER_NAMES_RULE = _names_rule(_CONTAINER_OK, CONTAINER_MSG)


def not_overcommitted(name: str) -> bool:
    """Hugepages and extended resources (a `/` outside kubernetes.io): a container's default request must
    equal its default limit, which the API server takes from `max` when `default` is not set."""
    return name.startswith("hugepages-") or ("/" in name and "kubernetes.io/" not in name)


_NOT_OVERCOMMITTED = "(k.startsWith('hugepages-') || (k.contains('/') && !k.contains('kubernetes.io/')))"

# (lower map, upper map): the lower's value for a resource must not exceed the upper's.
ORDER = (("defaultRequest", "default"), ("default", "max"), ("defaultRequest", "max"))


def _q(side: str) -> str:
    return f"quantity(string(self.{side}[k]))"


def _valid(*sides: str) -> str:
    return " && ".join(f"isQuantity(string(self.{side}[k]))" for side in sides)


def _order_rule(low: str, high: str) -> dict[str, str]:
    bad = f"k in self.{high} && {_valid(low, high)} && {_q(low)}.compareTo({_q(high)}) > 0"
    rule = cel(
        f"!has(self.{low}) || !has(self.{high}) || !self.{low}.exists(k, {bad})",
        order_message(low, high, "<resource>"),
    )
    first = f"self.{low}.filter(k, {bad})[0]"
    rule["messageExpression"] = f"'{low}[' + {first} + '] must not exceed {high}[' + {first} + ']'"
    return rule


def _equal_rule() -> dict[str, str]:
    """defaultRequest == default (or max, with no default) for a resource that is not overcommitted."""

    def differs(high: str) -> str:
        return f"{_valid('defaultRequest', high)} && {_q('defaultRequest')}.compareTo({_q(high)}) != 0"

    from_default = "has(self.default) && k in self.default"
    from_max = f"has(self.max) && k in self.max && {differs('max')}"
    bad = f"{_NOT_OVERCOMMITTED} && ({from_default} ? {differs('default')} : {from_max})"
    rule = cel(
        f"!has(self.defaultRequest) || !self.defaultRequest.exists(k, {bad})", equal_message("<resource>")
    )
    first = f"self.defaultRequest.filter(k, {bad})[0]"
    rule["messageExpression"] = f"'defaultRequest[' + {first} + ']{EQUAL_TAIL}'"
    return rule


EQUAL_TAIL = (
    " must equal default (or max when default is not set): hugepages and extended resources are not "
    "overcommitted"
)


def order_message(low: str, high: str, name: str, low_value: str = "", high_value: str = "") -> str:
    return " ".join(
        filter(None, [f"{low}[{name}]", low_value, f"must not exceed {high}[{name}]", high_value])
    )


def equal_message(name: str) -> str:
    return f"defaultRequest[{name}]{EQUAL_TAIL}"


LIMITS_ORDER_RULES = [*(_order_rule(low, high) for low, high in ORDER), _equal_rule()]


def bad_quota_name(names: Mapping[str, object]) -> str | None:
    """The first quota key the API server would refuse as a name, None when all are names it takes."""
    return next((n for n in names if not _quota_name(n)), None)


def bad_container_name(names: Mapping[str, object]) -> str | None:
    return next((n for n in names if not _container_name(n)), None)


def _quota_name(name: str) -> bool:
    return "/" in name or name in QUOTA_NAMES or re.fullmatch(QUOTA_HUGEPAGES[1:-1], name) is not None


def _container_name(name: str) -> bool:
    return "/" in name or name in CONTAINER_NAMES or re.fullmatch(CONTAINER_HUGEPAGES[1:-1], name) is not None


def misordered(maps: Mapping[str, Mapping[str, str]]) -> str | None:
    """The first limit out of order (`LIMITS_ORDER_RULES`), worded as the CEL rule; None when all are in
    order. Values that are not quantities are left to their own rule."""

    def value(side: str, name: str) -> Decimal | None:
        text = maps.get(side, {}).get(name)
        try:
            return None if text is None else quantity.parse_quantity(text)
        except ValueError:
            return None

    for low, high in ORDER:
        for name in maps.get(low, {}):
            a, b = value(low, name), value(high, name)
            if a is not None and b is not None and a > b:
                return order_message(low, high, name, maps[low][name], maps[high][name])
    for name in maps.get("defaultRequest", {}):
        if not_overcommitted(name):
            upper = "default" if name in maps.get("default", {}) else "max"
            a, b = value("defaultRequest", name), value(upper, name)
            if a is not None and b is not None and a != b:
                return equal_message(name)
    return None
