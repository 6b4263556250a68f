"""The provincial topology: one YAML file, loaded into the operator's own API models and checked whole.

`parse` validates every entry with its API model (`entries.py`); once all are well-formed, the
cross-object checks run (`checks.py`). Every problem found is reported at once, in one `TopologyError`,
each as `path: what is wrong (got ...) [line N]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from checks import Problem, check
from entries import (
    DR_NAMESPACE,
    CensusEntry,
    CentreEntry,
    CityEntry,
    Loc,
    ReplicaEntry,
    Topology,
    TopologyError,
    ZoneEntry,
    describe,
    format_path,
)
from pydantic import ValidationError

__all__ = [
    "DR_NAMESPACE",
    "CensusEntry",
    "CentreEntry",
    "CityEntry",
    "ReplicaEntry",
    "Topology",
    "TopologyError",
    "ZoneEntry",
    "format_path",
    "load",
    "parse",
]


def load(path: str | Path) -> Topology:
    """Read, validate and cross-check a topology file; TopologyError lists every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TopologyError(str(path), [f"cannot be read: {err.strerror}"]) from None
    return parse(text, str(path))


def parse(text: str, source: str = "<topology>") -> Topology:
    """Validate topology YAML text; `source` names it in error messages."""
    try:
        raw = yaml.safe_load(text)
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise TopologyError(source, [f"not valid YAML{where}: {problem}"]) from None
    if not isinstance(raw, dict):
        raise TopologyError(source, ["must be a mapping with centres, cities, dataZones, drReplicas, census"])
    repeated = list(_repeated_keys(tree, ()))
    if repeated:  # YAML keeps the last of two equal keys without a word; a topology must not.
        raise TopologyError(source, _render(repeated, tree))
    try:
        topology = Topology.model_validate(raw)
    except ValidationError as err:
        problems = [(tuple(e["loc"]), describe(e)) for e in err.errors()]
        raise TopologyError(source, _render(problems, tree)) from None
    problems = list(check(topology))
    if problems:
        raise TopologyError(source, _render(problems, tree))
    return topology


def _repeated_keys(node: yaml.Node | None, at: Loc) -> Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.value in seen:
                line = key.start_mark.line + 1
                yield (*at, key.value), f"is given twice (lines {seen[key.value]} and {line})"
            seen.setdefault(key.value, key.start_mark.line + 1)
            yield from _repeated_keys(value, (*at, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _repeated_keys(item, (*at, i))


def _line(tree: yaml.Node | None, loc: Loc) -> int | None:
    """The line of the deepest YAML node along `loc` (the field itself, or its parent when it is missing)."""
    node, line = tree, (tree.start_mark.line + 1 if tree is not None else None)
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _render(problems: Iterable[Problem], tree: yaml.Node | None) -> list[str]:
    located = [(_line(tree, loc) or 0, format_path(loc), message) for loc, message in problems]
    return [
        f"{path}: {message}" + (f" [line {line}]" if line else "") for line, path, message in sorted(located)
    ]


if __name__ == "__main__":  # `python infra/topology.py infra/topology.yaml`: check a file without Pulumi.
    import sys

    try:
        loaded = load(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("topology.yaml"))
    except TopologyError as err:
        sys.exit(str(err))
    print(
        f"ok: {len(loaded.centres)} centres, {len(loaded.cities)} cities, {len(loaded.data_zones)} zones, "
        f"{len(loaded.dr_replicas)} DR replicas, census {'yes' if loaded.census else 'no'}"
    )
