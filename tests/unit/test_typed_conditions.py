"""Typed conditions: every catalogued pair builds a valid condition, others are refused, the reasons other
modules classify are all catalogued, and docs/reference/ is what the models generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacloud.adapters import kube
from datacloud.api import conditions as c
from datacloud.api.common import Condition
from datacloud.api.reference import drift

ROOT = Path(__file__).resolve().parents[2]
MAKERS = {
    "DataCentre": c.datacentre,
    "CityDataCloud": c.city,
    "ComputeCensus": c.census,
    "DataZone": c.zone,
    "DRReplica": c.replica,
}
PAIRS = [
    (kind, type_, status, reason)
    for kind, types in c.CATALOGUES.items()
    for type_, reasons in types.items()
    for status, by in reasons.by_status().items()
    for reason in by
]


@pytest.mark.parametrize(("kind", "type_", "status", "reason"), PAIRS)
def test_every_catalogued_pair_builds_a_valid_condition(
    kind: str, type_: str, status: str, reason: str
) -> None:
    ok = {"True": True, "False": False, "Unknown": None}[status]
    made = MAKERS[kind](type_, ok, reason, "why", 3)  # type: ignore[operator]
    assert made == {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "why",
        "observedGeneration": 3,
    }
    assert Condition.model_validate(made).reason == reason


def test_a_reason_its_type_does_not_list_is_refused() -> None:
    with pytest.raises(ValueError, match="Ready=True has no reason Unreachable"):
        c.datacentre(c.DataCentreType.READY, True, c.DataCentreReason.UNREACHABLE, "down")
    with pytest.raises(ValueError, match="LastRunSucceeded=True has no reason RunFailed"):
        c.census(c.CensusType.LAST_RUN_SUCCEEDED, True, c.CensusReason.RUN_FAILED, "x")


def test_every_reason_of_every_kind_is_documented_somewhere() -> None:
    for kind, enum in (("DataCentre", c.DataCentreReason), ("CityDataCloud", c.CityReason),
                       ("ComputeCensus", c.CensusReason), ("DataZone", c.ZoneReason),
                       ("DRReplica", c.ReplicaReason)):  # fmt: skip
        used = {
            r for reasons in c.CATALOGUES[kind].values() for by in reasons.by_status().values() for r in by
        }
        assert set(enum) == used, kind


def test_the_api_error_vocabulary_is_catalogued_for_cities() -> None:
    words = {*kube._STATUS_REASONS.values(), "ServerError", "Failed", "Unreachable", "CertificateInvalid"}
    assert words <= set(c.CityReason)


def test_every_refusal_the_zone_reconciler_can_report_is_catalogued() -> None:
    from datacloud.reconcile.datazone import _AREA

    assert {f"{kind}Rejected" for kind in [*_AREA, "Namespace"]} <= set(c.ZoneReason)


def test_every_dr_step_and_reference_reason_is_catalogued() -> None:
    import re

    from datacloud.reconcile import centres, dr_actions, dr_overlap, dr_scheduled, dr_specs, drreplica

    words: set[str] = set()
    for module in (centres, dr_actions, dr_overlap, dr_scheduled, dr_specs, drreplica):
        text = Path(module.__file__ or "").read_text()
        words |= set(re.findall(r'(?:StepBlocked|CentreUnavailable)\(\s*"([A-Z][A-Za-z]+)"', text))
        words |= {
            f"{w}{kind}"
            for w in re.findall(r'refused\(\s*"([A-Z][A-Za-z]+)"', text)
            for kind in ("Refused", "Failed")
        }
    assert words <= set(c.ReplicaReason), words - set(c.ReplicaReason)


def test_the_dr_conditions_still_written_with_literals_use_catalogued_words() -> None:
    import ast

    from datacloud.reconcile import dr_status, drreplica

    def words(node: ast.expr) -> set[str]:
        return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}

    seen = 0
    for module in (dr_status, drreplica):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and getattr(call.func, "id", "") == "condition"
                and len(call.args) > 2
            ):
                seen += 1
                assert words(call.args[0]) <= set(c.ReplicaType)
                reasons = {w for w in words(call.args[2]) if w.isalpha()}
                assert reasons <= set(c.ReplicaReason), reasons - set(c.ReplicaReason)
    assert seen  # the check looked at something


def test_an_unknown_classified_word_falls_back_rather_than_failing_the_write() -> None:
    assert c.reason_of(c.CityReason, "Teapot", c.CityReason.FAILED) is c.CityReason.FAILED
    assert c.reason_of(c.CityReason, "Gone", c.CityReason.FAILED) is c.CityReason.GONE


def test_docs_reference_matches_the_models() -> None:
    assert drift(ROOT / "docs" / "reference") == [], "run `make crds`"
