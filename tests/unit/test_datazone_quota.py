"""The zone quota split: shares sum to the zone limit, follow usage, and never overshoot in transit."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.api.quantity import parse_quantity
from datacloud.builders.datazone_quota import (
    from_units,
    plan_rebalance,
    same_quantities,
    split,
    summed,
    to_units,
)


def total(shares: dict[str, dict[str, str]], resource: str) -> int:
    return sum(to_units(resource, h[resource]) for h in shares.values())


def test_units_round_trip() -> None:
    assert to_units("requests.cpu", "1500m") == 1500
    assert to_units("limits.cpu", "2") == 2000
    assert to_units("requests.memory", "1Gi") == 2**30
    assert from_units("requests.cpu", 2000) == "2"
    assert from_units("requests.cpu", 250) == "250m"
    assert from_units("requests.memory", 3 * 2**29) == "1536Mi"
    assert from_units("pods", 7) == "7"
    assert same_quantities({"cpu": "1000m", "memory": "1024Mi"}, {"cpu": "1", "memory": "1Gi"})
    assert not same_quantities({"cpu": "1"}, {"cpu": "1", "pods": "3"})


def test_idle_namespaces_share_equally_and_remainders_go_to_the_least_used() -> None:
    shares = split({"pods": "7", "requests.cpu": "1"}, {}, ["b", "a"])
    assert shares == {"a": {"pods": "4", "requests.cpu": "500m"}, "b": {"pods": "3", "requests.cpu": "500m"}}
    shares = split({"pods": "6"}, {"a": {"pods": "5"}}, ["a", "b"])
    assert shares == {"a": {"pods": "5"}, "b": {"pods": "1"}}


def test_headroom_follows_usage() -> None:
    shares = split({"requests.memory": "8Gi"}, {"a": {"requests.memory": "6Gi"}}, ["a", "b"])
    assert shares["a"]["requests.memory"] == "7Gi"
    assert shares["b"]["requests.memory"] == "1Gi"


def test_over_usage_splits_in_proportion_below_usage() -> None:
    shares = split({"pods": "4"}, {"a": {"pods": "5"}, "b": {"pods": "1"}}, ["a", "b"])
    assert total(shares, "pods") == 4
    assert to_units("pods", shares["a"]["pods"]) <= 5
    assert to_units("pods", shares["b"]["pods"]) <= 1


@pytest.mark.parametrize("seed", range(50))
def test_shares_always_sum_to_the_zone_limit(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"ns{i}" for i in range(rng.randint(1, 6))]
    hard = {
        "requests.cpu": f"{rng.randint(0, 64000)}m",
        "pods": str(rng.randint(0, 100)),
        "requests.memory": "10Gi",
    }
    used = {n: {"requests.cpu": f"{rng.randint(0, 20000)}m", "pods": str(rng.randint(0, 30))} for n in names}
    shares = split(hard, used, names)
    for resource, quantity in hard.items():
        assert total(shares, resource) == to_units(resource, quantity)
    for n in names:  # nobody is squeezed below what it uses unless the zone as a whole is over
        for resource in ("requests.cpu", "pods"):
            zone_over = sum(to_units(resource, used[m][resource]) for m in names) > to_units(
                resource, hard[resource]
            )
            assert zone_over or to_units(resource, shares[n][resource]) >= to_units(
                resource, used[n][resource]
            )


@pytest.mark.parametrize("seed", range(50))
def test_rebalance_never_exceeds_the_zone_limit_between_steps(seed: int) -> None:
    """After the lowering step and after the final step, the hard limits (a missing quota counting as
    unlimited) sum to at most the zone limit."""
    rng = random.Random(seed)
    names = [f"ns{i}" for i in range(rng.randint(2, 5))]
    zone = {"pods": str(rng.randint(5, 50))}
    before = split(zone, {n: {"pods": str(rng.randint(0, 5))} for n in names}, names)
    current: dict[str, dict[str, str] | None] = dict(before)
    if rng.random() < 0.3:
        current[names[-1]] = None  # a namespace just added to the zone
    target = split(zone, {n: {"pods": str(rng.randint(0, 5))} for n in names}, names)
    plan = plan_rebalance(current, target)
    state = {n: (h if h is not None else None) for n, h in current.items()}
    if plan.lower:
        state.update(plan.lower)
        assert all(h is not None for h in state.values())
        assert sum(to_units("pods", h["pods"]) for h in state.values() if h) <= to_units("pods", zone["pods"])
    for n, h in plan.target.items():
        state[n] = h
    assert sum(to_units("pods", h["pods"]) for h in state.values() if h) == to_units("pods", zone["pods"])
    assert all(same_quantities(state[n] or {}, target[n]) for n in names)


def test_summed() -> None:
    assert summed([{"requests.cpu": "500m", "pods": "2"}, {"requests.cpu": "1500m"}]) == {
        "pods": "2",
        "requests.cpu": "2",
    }


_DIGITS = st.text("0123456789", min_size=1, max_size=40).map(lambda d: d.lstrip("0") or "0")
_QUANTITIES = st.one_of(
    st.builds(
        lambda d, s: d + s, _DIGITS, st.sampled_from(["", "k", "M", "G", "T", "P", "E", "Ki", "Gi", "Ei"])
    ),
    st.builds(lambda d, e: f"{d}e{e}", _DIGITS, st.integers(0, 99)),
    st.builds(lambda d, f, s: f"{d}.{f}{s}", _DIGITS, _DIGITS, st.sampled_from(["", "m", "Mi", "T"])),
)


@settings(max_examples=300, deadline=None)
@given(
    q=_QUANTITIES,
    resource=st.sampled_from(["requests.cpu", "limits.memory", "pods", "requests.nvidia.com/gpu"]),
    n=st.integers(1, 7),
)
def test_any_admitted_quantity_is_split_and_reported_exactly(q: str, resource: str, n: int) -> None:
    """Whatever size the schema admits: the shares sum to the zone limit exactly, and the status reports the
    limit the spec set (through floats, 1e100 and 2^53+1 came back as other numbers)."""
    exact = Fraction(parse_quantity(q)) * (1000 if resource.endswith("cpu") else 1)
    units = to_units(resource, q)
    assert units == (math.ceil(exact) if resource.endswith("cpu") else math.floor(exact))
    shares = split({resource: q}, {}, [f"ns{i}" for i in range(n)])
    assert total(shares, resource) == units
    assert to_units(resource, summed([{resource: q}])[resource]) == units
    assert same_quantities({resource: q}, {resource: from_units(resource, units)}) or exact != units
