"""YAML rendering of the generated CRDs, shared by `datacloud crds`, the chart and the drift test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .crdgen import all_crds
from .peering import peering_documents

HEADER = "# Generated from operator/datacloud/api by `datacloud crds --out crds`. Do not edit.\n"


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


def rendered() -> dict[str, str]:
    """File name → YAML text of every CRD the project ships."""
    files = {name: HEADER + dump(doc) for name, doc in all_crds().items()}
    files["kopf-peering.yaml"] = HEADER + "---\n".join(dump(d) for d in peering_documents())
    return files


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text)
        out.append(path)
    return out


def drift(directory: Path) -> list[str]:
    """Names of files in `directory` that differ from what the models generate (or are missing/extra)."""
    want = rendered()
    have = {p.name: p.read_text() for p in directory.glob("*.yaml")} if directory.is_dir() else {}
    return sorted(n for n in want.keys() | have.keys() if want.get(n) != have.get(n))
