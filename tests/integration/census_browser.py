"""Open a page in headless Chromium (Debian's `chromium`) over the DevTools protocol: console errors,
uncaught exceptions, a JavaScript probe of the rendered page, and a screenshot."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console.error, uncaught exceptions, failed loads
    probe: Any = None  # what the probe expression returned
    screenshot: Path | None = None


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Session:
    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(json.loads(self.ws.recv()))


def open_page(url: str, probe: str, screenshot: Path, width: int = 1400, height: int = 2400) -> PageResult:
    """Load `url`, wait until it has loaded and settled, evaluate `probe` and save a PNG."""
    binary = chromium()
    assert binary, "chromium is not installed (apt-get install -y chromium)"
    profile = Path(tempfile.mkdtemp(prefix="census-chromium-"))
    proc = subprocess.Popen(
        [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "chromium did not start its DevTools endpoint"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(
            subprocess.run(
                ["curl", "-s", f"http://127.0.0.1:{port}/json/list"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        page = next(t for t in targets if t.get("type") == "page")
        s = _Session(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            s.call(f"{domain}.enable")
        s.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        s.call("Page.navigate", url=url)
        s.wait_event("Page.loadEventFired", 60)
        time.sleep(1.0)  # let plotly finish its first layout pass
        result = PageResult()
        value = s.call("Runtime.evaluate", expression=probe, returnByValue=True)
        result.probe = value.get("result", {}).get("value")
        shot = s.call("Page.captureScreenshot", format="png")
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        result.screenshot = screenshot
        for e in s.events:
            params = e.get("params") or {}
            if e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.errors.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif e.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails") or {}
                result.errors.append(
                    str((details.get("exception") or {}).get("description") or details.get("text"))
                )
            elif e.get("method") == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
                result.errors.append(str(params["entry"].get("text")))
        s.ws.close()
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(profile, ignore_errors=True)
