"""A real Prometheus for the dev stack: scrapes the operator, evaluates the shipped alert rules.

The binary is the project's tool (`~/.cache/datacloud-tools/bin/prometheus`, Debian's Prometheus 2.42);
it listens on a free loopback port, with the configuration rendered from
`monitoring/prometheus/prometheus.dev.yml.tmpl` and the rules from `monitoring/rules/datacloud-alerts.yaml`.
"""

from __future__ import annotations

import json
import string
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .process import Managed, free_port, tool, wait_for
from .stack import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "monitoring"
CONFIG_TEMPLATE = MONITORING / "prometheus" / "prometheus.dev.yml.tmpl"
RULES_FILE = MONITORING / "rules" / "datacloud-alerts.yaml"
JOB = "datacloud-operator"


class Prometheus:
    """One Prometheus server in `workdir`, scraping `targets` (host:port) as the job `datacloud-operator`."""

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[str],
        *,
        rules_file: Path = RULES_FILE,
        interval: str = "1s",
        port: int = 0,
    ) -> None:
        self.dir = workdir
        self.targets = list(targets)
        self.rules_file = rules_file
        self.interval = interval
        self.port = port
        self.process: Managed | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def render_config(self) -> str:
        return string.Template(CONFIG_TEMPLATE.read_text()).substitute(
            scrape_interval=self.interval,
            scrape_timeout=self.interval,
            evaluation_interval=self.interval,
            rules_file=json.dumps(str(self.rules_file)),
            targets=json.dumps(self.targets),
        )

    def start(self) -> Prometheus:
        self.port = self.port or free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "prometheus.yml"
        config.write_text(self.render_config())
        argv = [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process = Managed("prometheus", argv, self.dir / "prometheus.log").start()
        wait_for(self._ready, 60, "prometheus", self.process)
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:  # noqa: S310 (loopback)
            return bool(resp.status == 200)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns the decoded JSON body (also for 4xx answers, which carry errors)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:  # noqa: S310
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def query(self, expr: str) -> Any:
        return self.api("query", query=expr)

    def firing(self) -> list[dict[str, Any]]:
        """Alerts in state firing, as `/api/v1/alerts` reports them."""
        alerts = self.api("alerts")["data"]["alerts"]
        return [a for a in alerts if a.get("state") == "firing"]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None
