"""The alert rules: valid for the real promtool, unit-tested, and each with a complete runbook page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from datacloud.devstack.process import tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules" / "datacloud-alerts.yaml"
RULE_TESTS = sorted((ROOT / "monitoring" / "rules" / "tests").glob("*.yaml"))
RUNBOOKS = ROOT / "runbooks"
RUNBOOK_BASE = "https://git.fujian.gov.cn/datacloud/datacloud/-/blob/main/runbooks/"
SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation")
# The alerts the project promises (issue 8); more may be added, none of these removed.
REQUIRED = {
    "DatacloudRPOBreachWarning",
    "DatacloudRPOBreachCritical",
    "DatacloudSyncFailing",
    "DatacloudVerificationMismatch",
    "DatacloudSplitBrainSuspected",
    "DatacloudFailoverStuck",
    "DatacloudReplicaPausedTooLong",
    "DatacloudCentreDown",
    "DatacloudCityUnavailable",
    "DatacloudBaselineNonCompliant",
    "DatacloudCensusStale",
    "DatacloudCapacityExhaustionForecast",
    "DatacloudOperatorDown",
    "DatacloudMetricsAbsent",
}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in alert_rules()]


def runbook_names() -> set[str]:
    return {p.stem for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool test files in monitoring/rules/tests"
    done = promtool("test", "rules", *(p.name for p in RULE_TESTS), cwd=RULE_TESTS[0].parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_promtool_would_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests are not vacuous: the same tests against a rule file with one threshold changed fail."""
    (tmp_path / "rules").mkdir()
    broken = RULES.read_text().replace(
        'datacloud_centre_health{state="Down"} == 1', "datacloud_centre_up == 2"
    )
    assert broken != RULES.read_text()
    (tmp_path / "rules" / "datacloud-alerts.yaml").write_text(broken)
    (tmp_path / "rules" / "tests").mkdir()
    for test in RULE_TESTS:
        (tmp_path / "rules" / "tests" / test.name).write_text(test.read_text())
    done = promtool("test", "rules", "infrastructure.yaml", cwd=tmp_path / "rules" / "tests")
    assert done.returncode != 0
    assert "DatacloudCentreDown" in done.stdout + done.stderr


def test_every_required_alert_exists_once() -> None:
    names = alert_names()
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= REQUIRED, f"missing alerts: {sorted(REQUIRED - set(names))}"
    for name in names:
        assert re.fullmatch(r"Datacloud[A-Z][A-Za-z0-9]+", name), name


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: str(r["alert"]))
def test_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{rule['alert']}.md"


def test_every_alert_is_unit_tested_both_ways() -> None:
    """Each alert appears in a promtool case expecting it to fire and in one expecting silence."""
    fires: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(alert_names())
    assert names <= fires, f"never shown firing: {sorted(names - fires)}"
    assert names <= silent, f"never shown silent: {sorted(names - silent)}"


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    names = set(alert_names())
    assert names - runbook_names() == set(), "alerts without a runbook"
    assert runbook_names() - names == set(), "runbooks without an alert"


@pytest.mark.parametrize("name", sorted(runbook_names()))
def test_runbook_has_the_five_sections(name: str) -> None:
    text = (RUNBOOKS / f"{name}.md").read_text()
    assert text.splitlines()[0] == f"# {name}"
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert tuple(headings) == SECTIONS, headings
    diagnosis = text.split("## Diagnosis", 1)[1].split("## Mitigation", 1)[0]
    assert "```sh" in diagnosis, "Diagnosis needs the exact commands"
    assert "kubectl " in diagnosis
    for section in SECTIONS:
        body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
        assert len(body.split()) >= 15, f"{section} is too thin"


def test_runbook_index_lists_every_alert() -> None:
    index = (RUNBOOKS / "README.md").read_text()
    for name in alert_names():
        assert f"[{name}.md]({name}.md)" in index, name
