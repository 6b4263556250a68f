"""The docs say what is there: every relative link in README.md, docs/ and runbooks/ names a file that
exists (anchors aside), and the alert count in docs/monitoring.md is the rules file's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "runbooks").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files"


def test_the_alert_count_in_the_monitoring_page_is_the_rules_file_s() -> None:
    rules = (ROOT / "monitoring" / "rules" / "datacloud-alerts.yaml").read_text()
    count = len(re.findall(r"^\s*- alert:", rules, re.M))
    assert f"holds {count} alerts" in (ROOT / "docs" / "monitoring.md").read_text()
