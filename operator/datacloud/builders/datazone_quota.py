"""The zone-wide quota, held by per-namespace ResourceQuotas whose hard limits always sum to the zone's.

Each reconcile splits the zone hard limit of every resource as: what each namespace uses now, plus an equal
share of the zone's headroom (zone hard minus total usage), units that do not divide evenly going to the
least-used namespaces. When usage already exceeds the zone hard (the
hard was lowered), the limit is split in proportion to usage, so every namespace sits at or below what it
uses and nothing new is admitted anywhere until the zone is back under its limit.

Moving limits between namespaces is done in two steps so that the sum never exceeds the zone hard, even for
a moment: first every namespace whose limit falls is lowered (and a namespace without a quota yet gets
zero), written with the resourceVersion the operator read, so a namespace that admitted something since
makes the write fail and the rebalance start again from fresh usage; only then are limits raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR

from ..api.quantity import milli, parse_quantity

_BINARY_SUFFIXES = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def _is_cpu(resource: str) -> bool:
    return resource == "cpu" or resource.endswith(".cpu")


def _is_bytes(resource: str) -> bool:
    return any(word in resource for word in ("memory", "storage"))


def to_units(resource: str, quantity: str | int | float) -> int:
    """An integer in the resource's smallest sensible unit: millicores for CPU (rounded up, as the API
    server does), else whole units (bytes, pods, GPUs) — integer arithmetic keeps the namespace shares
    summing exactly to the zone limit. Exact at any size: through a float, `1e100` came back as
    1000...19156750857346687362159551272651920111528035145993793242039887559612361451081803235328m."""
    if _is_cpu(resource):
        return milli(str(quantity))
    return int(parse_quantity(str(quantity)).to_integral_value(rounding=ROUND_FLOOR))


def from_units(resource: str, units: int) -> str:
    if _is_cpu(resource):
        return str(units // 1000) if units % 1000 == 0 else f"{units}m"
    if _is_bytes(resource) and units:
        for suffix, size in _BINARY_SUFFIXES:
            if units % size == 0:
                return f"{units // size}{suffix}"
    return str(units)


Hard = dict[str, str]


def split(
    zone_hard: Mapping[str, str], used: Mapping[str, Mapping[str, str]], namespaces: list[str]
) -> dict[str, Hard]:
    """Each namespace's hard limits; for every resource they sum exactly to the zone's."""
    names = sorted(namespaces)
    out: dict[str, Hard] = {n: {} for n in names}
    if not names:
        return out
    for resource, quantity in zone_hard.items():
        total = to_units(resource, quantity)
        usage = [max(0, to_units(resource, used.get(n, {}).get(resource, "0"))) for n in names]
        in_use = sum(usage)
        if in_use <= total:
            base, extra = divmod(total - in_use, len(names))
            shares = [u + base for u in usage]
            # Units that do not divide evenly go to the namespaces using least, so a busy namespace cannot
            # take the last unit from an idle one.
            for i in sorted(range(len(names)), key=lambda i: (usage[i], names[i]))[:extra]:
                shares[i] += 1
        else:
            shares = [total * u // in_use for u in usage]
            for i in range(total - sum(shares)):  # floor division leaves a remainder to hand out
                shares[i % len(shares)] += 1
        for n, share in zip(names, shares, strict=True):
            out[n][resource] = from_units(resource, share)
    return out


def summed(resource_maps: list[Mapping[str, str]]) -> dict[str, str]:
    """Sum quantities per resource (for the zone's `used`)."""
    totals: dict[str, int] = {}
    for m in resource_maps:
        for resource, q in m.items():
            totals[resource] = totals.get(resource, 0) + to_units(resource, q)
    return {r: from_units(r, u) for r, u in sorted(totals.items())}


def same_quantities(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Equal resource sets and values, whatever the spelling (1000m == 1, 1024Mi == 1Gi)."""
    if set(a) != set(b):
        return False
    try:
        return all(to_units(r, a[r]) == to_units(r, b[r]) for r in a)
    except ValueError:
        return False


@dataclass(frozen=True)
class Rebalance:
    """The two write steps: `lower` (namespace → interim hard, written with a resourceVersion precondition)
    then `target` (namespace → final hard, only for namespaces whose quota differs)."""

    lower: dict[str, Hard]
    target: dict[str, Hard]


def plan_rebalance(current: Mapping[str, Hard | None], target: Mapping[str, Hard]) -> Rebalance:
    """`current` is each namespace's quota hard as observed (None: no quota yet)."""
    lowering: dict[str, Hard] = {}
    for ns, want in target.items():
        have = current.get(ns)
        if have is not None and any(
            r in have and _safe_units(r, have[r]) > to_units(r, q) for r, q in want.items()
        ):
            lowering[ns] = {
                r: from_units(r, min(_safe_units(r, have[r]) if r in have else 0, to_units(r, q)))
                for r, q in want.items()
            }
    if lowering:
        # While some namespace gives up room, one without a quota must not take it unlimited.
        for ns, want in target.items():
            if current.get(ns) is None:
                lowering[ns] = {r: from_units(r, 0) for r in want}
    changed = {
        ns: want
        for ns, want in target.items()
        if not same_quantities(current.get(ns) or {}, want) or current.get(ns) is None
    }
    return Rebalance(lowering, changed)


def _safe_units(resource: str, quantity: str) -> int:
    try:
        return to_units(resource, quantity)
    except ValueError:  # a hand-edited nonsense value counts as "more than the target"
        return 2**62
