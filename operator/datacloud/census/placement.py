"""Placement advice for unified scheduling: which centres can take a request, best first, and why each
other centre cannot.

A request (cores, bytes, GPUs of a model) is one unit that must fit on one schedulable node, as a pod
would. A centre can take it when at least one of its nodes has that much free at once; it ranks by the
preferred city first, then by how many such units it could take, then by how busy it would be after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..api.common import CITIES
from .aggregate import format_quantity
from .run import NodeFree


@dataclass(frozen=True)
class Request:
    cpu: float  # cores
    memory: float  # bytes
    gpu: int = 0
    gpu_model: str = ""  # matched case-insensitively as a substring of the model label, e.g. A100
    city: str = ""  # preferred division code; other cities still qualify, ranked after it

    def __post_init__(self) -> None:
        if self.cpu < 0 or self.memory < 0 or self.gpu < 0:
            raise ValueError("cpu, memory and gpu must not be negative")
        if self.city and self.city not in CITIES:
            known = ", ".join(f"{code} {zh}" for code, (zh, _) in CITIES.items())
            raise ValueError(f"unknown city {self.city!r}; the division codes are: {known}")

    def model_matches(self, model: str) -> bool:
        return not self.gpu_model or self.gpu_model.lower() in model.lower()


@dataclass
class Candidate:
    city_code: str
    centre: str
    fits: int  # how many such requests the centre could take, one per node-sized slot
    nodes: int  # nodes that can take at least one
    cpu_after: float | None  # requested / allocatable after one placement, where known
    why: str


@dataclass
class Advice:
    ranked: list[Candidate] = field(default_factory=list)
    excluded: list[tuple[str, str, str]] = field(default_factory=list)  # (city, centre, reason)


def _copies(node: NodeFree, r: Request) -> int:
    limits = []
    if r.cpu:
        limits.append(int(node.cpu // r.cpu))
    if r.memory:
        limits.append(int(node.memory // r.memory))
    if r.gpu:
        limits.append(node.gpu // r.gpu if r.model_matches(node.gpu_model) else 0)
    return min(limits) if limits else 1


def _bytes(value: float) -> str:
    return format_quantity(int(value) * 1000, "memory")


def _why_not(nodes: Sequence[NodeFree], r: Request) -> str:
    """The first thing no node of the centre has enough of."""
    if not nodes:
        return "no schedulable nodes"
    if r.gpu:
        models = [n for n in nodes if n.gpu and r.model_matches(n.gpu_model)]
        if not models:
            have = sorted({n.gpu_model for n in nodes if n.gpu}) or ["none"]
            return f"no free GPU of model {r.gpu_model or 'any'} (free models: {', '.join(have)})"
        most = max(n.gpu for n in models)
        if most < r.gpu:
            return f"at most {most} free {r.gpu_model or 'GPU'} on one node, {r.gpu} requested"
        nodes = [n for n in models if n.gpu >= r.gpu]
    most_cpu = max(n.cpu for n in nodes)
    if most_cpu < r.cpu:
        return f"at most {most_cpu:g} cores free on one node, {r.cpu:g} requested"
    most_mem = max(n.memory for n in nodes)
    if most_mem < r.memory:
        return f"at most {_bytes(most_mem)} memory free on one node, {_bytes(r.memory)} requested"
    best = max(
        nodes, key=lambda n: min(n.cpu / r.cpu if r.cpu else 1e18, n.memory / r.memory if r.memory else 1e18)
    )
    return f"no node has all of it at once: the closest has {best.cpu:g} cores and {_bytes(best.memory)} free"


def advise(
    request: Request,
    free: Iterable[NodeFree],
    centres: Iterable[tuple[str, str]] = (),
    ratios: Mapping[tuple[str, str], tuple[float, float]] | None = None,
) -> Advice:
    """Rank centres for `request`. `centres` lists (city, centre) pairs to consider besides those with
    free nodes (so a centre with none is reported, not forgotten); `ratios` gives a centre's CPU
    (requested, allocatable) for the busy-after figure."""
    by_centre: dict[tuple[str, str], list[NodeFree]] = {key: [] for key in centres}
    for n in free:
        by_centre.setdefault((n.city_code, n.centre), []).append(n)
    advice = Advice()
    for (city, centre), nodes in sorted(by_centre.items()):
        copies = [_copies(n, request) for n in nodes]
        fits = sum(copies)
        if fits == 0:
            advice.excluded.append((city, centre, _why_not(nodes, request)))
            continue
        after = None
        if ratios and (city, centre) in ratios:
            requested, allocatable = ratios[(city, centre)]
            after = round((requested + request.cpu) / allocatable, 4) if allocatable else None
        taking = sum(1 for c in copies if c)
        why = f"fits {fits}× on {taking} node(s)"
        if request.city and city == request.city:
            why = "preferred city; " + why
        if after is not None:
            why += f"; CPU {after:.0%} requested after placement"
        advice.ranked.append(Candidate(city, centre, fits, taking, after, why))
    advice.ranked.sort(
        key=lambda c: (
            0 if request.city and c.city_code == request.city else 1,
            -c.fits,
            c.cpu_after if c.cpu_after is not None else 1.0,
            c.city_code,
            c.centre,
        )
    )
    return advice
