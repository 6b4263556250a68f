"""The CRDs generated from the models: drift, descriptions, names, structural shape."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.crdgen import all_crds
from datacloud.api.kinds import ALL_KINDS
from datacloud.api.render import drift

ROOT = Path(__file__).resolve().parents[2]
CRDS = all_crds()


def test_crds_directory_matches_the_models() -> None:
    assert drift(ROOT / "crds") == [], "crds/ drifted from operator/datacloud/api: run `make crds`"


def test_drift_is_detected(tmp_path: Path) -> None:
    from datacloud.api.render import write

    write(tmp_path)
    (tmp_path / "datazones.yaml").write_text(
        (tmp_path / "datazones.yaml").read_text().replace("Core", "Kore")
    )
    assert drift(tmp_path) == ["datazones.yaml"]


def _fields(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from _fields(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _fields(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _fields(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("file", sorted(CRDS))
def test_every_field_has_a_description_and_a_type(file: str) -> None:
    schema = CRDS[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing = [p for p, s in _fields(schema, "") if p != ".metadata" and not s.get("description")]
    untyped = [p for p, s in _fields(schema, "") if "type" not in s]
    assert missing == []
    assert untyped == []


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_names_category_status_and_columns(kind: Any) -> None:
    crd = CRDS[f"{kind.plural}.yaml"]
    names = crd["spec"]["names"]
    version = crd["spec"]["versions"][0]
    assert names["categories"] == ["datacloud"]
    assert names["shortNames"] == list(kind.short_names)
    assert version["subresources"] == {"status": {}}
    assert len(version["additionalPrinterColumns"]) >= 4
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions", "phase"} <= set(status)
    condition = status["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(
        condition
    )


def test_no_unions_or_refs_leak_into_schemas() -> None:
    text = repr(CRDS)
    assert "$ref" not in text
    assert "'title'" not in text

    def unions(node: Any) -> list[Any]:
        """Every anyOf, except the one structural form: an int-or-string field."""
        if isinstance(node, list):
            return [u for n in node for u in unions(n)]
        if not isinstance(node, dict):
            return []
        found = [node] if "anyOf" in node else []
        if node.get("x-kubernetes-int-or-string") and node.get("anyOf") == [
            {"type": "integer"},
            {"type": "string"},
        ]:
            found = []
        return found + [u for v in node.values() for u in unions(v)]

    assert unions(CRDS) == []


@given(st.from_regex(r"[0-9]{1,25}(\.[0-9]{1,5})?(ms|s|m|h)", fullmatch=True))
def test_every_duration_the_model_admits_is_one_the_operator_can_use(text: str) -> None:
    """A duration either parses to at most a year or is refused by the model: never an overflow later."""
    from datetime import timedelta

    from pydantic import TypeAdapter, ValidationError

    from datacloud.api.common import DURATION_MAX_S, Duration, parse_duration

    try:
        TypeAdapter(Duration).validate_python(text)
    except ValidationError:
        with pytest.raises(ValueError, match="at most"):
            parse_duration(text)
        return
    assert parse_duration(text) <= timedelta(seconds=DURATION_MAX_S)
