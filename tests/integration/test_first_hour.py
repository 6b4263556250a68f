"""A newcomer's first hour on `make up`: ten live cities with real figures, a census report, no alert
firing or pending in Prometheus, `datacloud status` within 120 columns, and docs/first-hour.md run as
written (write through the published endpoint, fail over, the fenced copy refuses the write)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from datacloud.devstack.cities import DEFAULT_SIZE, FLEET_SIZES
from datacloud.devstack.process import tool
from tests.support.cluster import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CITIES = 10
WALKTHROUGH = ROOT / "docs" / "first-hour.md"


class Dev:
    def __init__(self, home: Path) -> None:
        self.home = home  # stands for the top of a clone: .dev and .venv as `make up` leaves them
        self.dir = home / ".dev"
        self.state: dict[str, Any] = {}
        self.env = {
            **os.environ,
            "KUBECONFIG": str(self.dir / "kubeconfig"),
            "PATH": f"{Path(sys.executable).parent}:{Path(tool('kubectl')).parent}:{os.environ['PATH']}",
        }

    def run(self, *argv: str, columns: int = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**self.env, "COLUMNS": str(columns)},
            cwd=self.home,
        )

    def kubectl_json(self, *args: str) -> Any:
        done = self.run(tool("kubectl"), *args, "-o", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def prometheus(self, path: str, **params: str) -> Any:
        url = f"{self.state['prometheus']}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
            return json.loads(resp.read())["data"]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    d = Dev(tmp_path_factory.mktemp("clone"))
    (d.home / ".venv").symlink_to(Path(sys.executable).parents[1])
    up = d.run(sys.executable, "-m", "datacloud", "dev", "up", "--dir", str(d.dir), "--cities", str(CITIES))
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        d.state = json.loads((d.dir / "state.json").read_text())
        d.state["banner"] = up.stdout
        yield d
    finally:
        d.run(sys.executable, "-m", "datacloud", "dev", "down", "--dir", str(d.dir))


def conds(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def test_banner_names_the_application_account_and_the_live_cities(dev: Dev) -> None:
    banner = dev.state["banner"]
    assert f"{dev.state['app']['accessKeyId']} / {dev.state['app']['secretAccessKey']}" in banner
    assert f"{CITIES} of 10 live" in banner
    assert "(context namespace datacloud-dr)" in banner
    env = (dev.dir / "app.env").read_text()
    assert "RCLONE_CONFIG_APP_ACCESS_KEY_ID=datacloud-app" in env


def test_every_city_is_available_with_its_fleet_and_the_census_counts_them(dev: Dev) -> None:
    def available() -> list[dict[str, Any]] | None:
        items = dev.kubectl_json("get", "cdc")["items"]
        ok = len(items) == CITIES and all(
            conds(c).get("Available", {}).get("status") == "True" and (c.get("status") or {}).get("nodes")
            for c in items
        )
        return items if ok else None

    items = wait_until(available, 240, interval=2, what="every city Available with its nodes")
    for city in items:
        nodes, _ = FLEET_SIZES.get(city["spec"]["cityCode"], DEFAULT_SIZE)
        assert city["status"]["nodes"]["total"] == nodes
        assert city["status"]["compliance"]["score"] == 100, city["status"]["compliance"]
    want = sum(FLEET_SIZES.get(c["spec"]["cityCode"], DEFAULT_SIZE)[0] for c in items)

    def counted() -> dict[str, Any] | None:
        census = dev.kubectl_json("get", "census", "provincial")
        s = census.get("status") or {}
        return s if (s.get("totals") or {}).get("nodes") == want else None

    s = wait_until(counted, 240, interval=2, what=f"the census counting {want} nodes")
    assert conds({"status": s})["LastRunSucceeded"]["status"] == "True", s["conditions"]
    formats = {r["format"] for r in s["reportLocations"]}
    assert {"json", "csv", "html"} <= formats


def test_prometheus_has_no_alert_firing_or_pending_once_started(dev: Dev) -> None:
    """Pending counts too: an alert whose condition holds now fires once its `for:` has passed."""

    def scraped_healthy() -> bool:
        cities = dev.prometheus("query", query="datacloud_city_available")["result"]
        centres = dev.prometheus("query", query='datacloud_centre_health{state="Up"}')["result"]
        return (
            len(cities) == CITIES
            and all(r["value"][1] == "1" for r in cities)
            and sum(r["value"][1] == "1" for r in centres) == 3
        )

    wait_until(scraped_healthy, 240, interval=2, what="Prometheus seeing ten cities and three centres up")
    rules = dev.prometheus("rules")["groups"]
    assert sum(len(g["rules"]) for g in rules) > 10  # the shipped rules are loaded and evaluated
    # Several evaluation rounds (1 s each) after the figures are in: still nothing.
    last = dev.prometheus("query", query="time()")["result"][1]
    wait_until(
        lambda: float(dev.prometheus("query", query="time()")["result"][1]) > float(last) + 5, 30, what="5 s"
    )
    alerts = dev.prometheus("alerts")["alerts"]
    assert [(a["labels"]["alertname"], a["state"], a["labels"]) for a in alerts] == []


def test_status_fits_120_columns_and_covers_every_kind(dev: Dev) -> None:
    done = dev.run(sys.executable, "-m", "datacloud", "status", columns=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 120, max(lines, key=cell_len)
    for title in ("Data centres", "City data clouds", "Data zones", "DR replicas", "Compute census"):
        assert title in done.stdout
    for name in ("fz-prod", "pingtan", "population", "population-records", "provincial"):
        assert re.search(rf"^{re.escape(name)}\s", done.stdout, re.M), name
    assert "(namespace datacloud-dr)" in done.stdout
    narrow = dev.run(sys.executable, "-m", "datacloud", "status", columns=80)
    assert max(cell_len(line) for line in narrow.stdout.splitlines()) <= 80


def test_printer_columns_answer_the_first_question(dev: Dev) -> None:
    def get(*args: str) -> list[list[str]]:
        done = dev.run(tool("kubectl"), "get", *args)
        assert done.returncode == 0, done.stderr
        return [line.split() for line in done.stdout.splitlines()]

    cities = get("cdc")
    assert cities[0][:5] == ["NAME", "CITY", "CODE", "AVAILABLE", "REASON"]
    reasons = {
        c["metadata"]["name"]: conds(c)["Available"]["reason"]
        for c in dev.kubectl_json("get", "cdc")["items"]
    }
    assert {row[0]: row[4] for row in cities[1:]} == reasons
    centres = get("dc")
    assert "REASON" in centres[0]
    wide = get("drr", "-o", "wide")
    for header in ("WORST-LAG-S", "LAST-FULL-SYNC", "WORST-TARGET", "EST-LOSS-S", "REASON"):
        assert header in wide[0]
    row = next(r for r in wide if r[0] == "health-archive")
    assert "same-city" in row  # its worst (only measured) target


def bash_blocks(page: Path) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", page.read_text(), re.M | re.S)


def test_the_walkthrough_works_as_written(dev: Dev) -> None:
    """Every bash block of docs/first-hour.md, in one shell, in a directory laid out like a clone after
    `make up` (the fixture did that: the `make up` line is the one line not run)."""
    blocks = bash_blocks(WALKTHROUGH)
    assert blocks[0].strip() == "make up"
    script = "set -e\n" + "\n".join(blocks[1:])
    env = {k: v for k, v in dev.env.items() if k not in ("KUBECONFIG",)}
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
        cwd=dev.home,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    assert "first record" in out  # read back from the promoted copy
    assert "AccessDenied" in out  # the late write to the old copy refused
    lines = out.splitlines()
    assert lines.index("fz-prod") < lines.index("fz-samecity-dr")  # the published centre, before and after
    drr = dev.kubectl_json("get", "drr", "population-records", "-n", "datacloud-dr")
    assert (drr["status"]["activeCentre"], drr["status"]["fencingEpoch"]) == ("fz-samecity-dr", 2)
