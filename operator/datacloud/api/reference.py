"""The API reference and the condition tables under docs/reference/, generated from the typed models.

`python -m datacloud.api.reference --out docs/reference` writes them (`make crds` does too);
`--check` fails when they differ from what the models generate (`make lint`, and a unit test).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import GROUP, VERSION
from .conditions import CATALOGUES, condition_table
from .crdgen import crd
from .kinds import ALL_KINDS, Kind

HEADER = (
    "<!-- Generated from operator/datacloud/api by `python -m datacloud.api.reference`. Do not edit. -->\n"
)


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"[]{_type(node.get('items') or {})}"
    if kind == "object" and "additionalProperties" in node:
        return f"map[string]{_type(node['additionalProperties'])}"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    bounds = {"minimum": "≥", "maximum": "≤", "minLength": "length ≥", "maxLength": "length ≤",
              "minItems": "items ≥", "maxItems": "items ≤"}  # fmt: skip
    for key, word in bounds.items():
        if key in node:
            parts.append(f"{word} {node[key]}")
    if "default" in node:
        parts.append(f"default `{node['default']}`")
    return "; ".join(parts)


def _fields(node: dict[str, Any], path: str, required: bool) -> Iterator[tuple[str, str, str]]:
    desc = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
    notes = _constraints(node)
    text = desc + (f" ({notes})" if notes else "") + (" **Required.**" if required else "")
    yield path, _type(node), text
    if node.get("type") == "array":
        node = node.get("items") or {}
        path += "[]"
    if node.get("type") == "object":
        needed = set(node.get("required") or [])
        for name, child in (node.get("properties") or {}).items():
            yield from _fields(child, f"{path}.{name}", name in needed)


def _kind_section(kind: Kind) -> str:
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    scope = "namespaced" if kind.namespaced else "cluster-scoped"
    lines = [
        f"## {kind.kind}",
        "",
        f"`{GROUP}/{VERSION}`, {scope}, plural `{kind.plural}`. {kind.description}",
        "",
    ]
    for rule in kind.rules:  # on the whole object: what its name must be
        lines += [f"{rule['message']} (checked on create).", ""]
    for part in ("spec", "status"):
        lines += [f"### {part}", "", "| field | type | description |", "|---|---|---|"]
        top = schema["properties"][part]
        needed = set(top.get("required") or [])
        for name, child in (top.get("properties") or {}).items():
            for path, kind_, text in _fields(child, f"{part}.{name}", name in needed):
                lines.append(f"| `{path}` | {kind_} | {text} |")
        lines.append("")
    if kind.kind in CATALOGUES:
        lines += ["Conditions: see [conditions.md](conditions.md#" + kind.kind.lower() + ").", ""]
    return "\n".join(lines)


def rendered() -> dict[str, str]:
    """File name → Markdown text of every generated reference page."""
    api = [
        HEADER,
        "# API reference",
        "",
        "Every field of the five kinds, from the models in `operator/datacloud/api/`.",
    ]
    api += [""] + [_kind_section(k) for k in ALL_KINDS]
    source = "`operator/datacloud/api/conditions.py`"
    conditions = [HEADER, "# Conditions", "", f"Each kind's condition types and reasons, from {source}.", ""]
    for kind in CATALOGUES:
        conditions += [f"## {kind}", "", condition_table(kind)]
    return {"api.md": "\n".join(api).rstrip() + "\n", "conditions.md": "\n".join(conditions).rstrip() + "\n"}


def drift(directory: Path) -> list[str]:
    want = rendered()
    return sorted(
        n for n, text in want.items() if not (directory / n).is_file() or (directory / n).read_text() != text
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datacloud.api.reference", description=__doc__)
    parser.add_argument(
        "--out", default="docs/reference", help="directory to write (default: docs/reference)"
    )
    parser.add_argument("--check", action="store_true", help="only check that the directory is up to date")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.check:
        stale = drift(out)
        if stale:
            print(
                f"{out} is out of date with the models: {', '.join(stale)}; run `make crds`", file=sys.stderr
            )
            return 1
        print(f"{out} matches the models")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (out / name).write_text(text)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
