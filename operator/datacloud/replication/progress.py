"""Progress of a full sync on stderr: a live rich display on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .engine import SyncProgress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger("datacloud.sync")


def human_bytes(amount: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.1f} {unit}" if unit != "B" else f"{int(amount)} B"
        amount /= 1024
    raise AssertionError("unreachable")


class ProgressReporter:
    """Watches a `SyncProgress` from a background thread while a pass runs."""

    def __init__(self, *, interval: float = 10.0, tty: bool | None = None) -> None:
        self.progress = SyncProgress()
        self.interval = max(0.5, interval)
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._stop = threading.Event()
        self._started = time.monotonic()

    @contextmanager
    def running(self) -> Iterator[ProgressReporter]:
        self._started = time.monotonic()
        thread = threading.Thread(
            target=self._live if self.tty else self._lines, name="sync-progress", daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)

    def line(self) -> str:
        p = self.progress
        elapsed = max(1e-6, time.monotonic() - self._started)
        rate = p.transferred_bytes / elapsed
        text = (
            f"listed {p.listed_objects} objects{'' if p.listing_done else ' so far'}; "
            f"copied {p.done_objects}/{p.pending_objects} objects, "
            f"{human_bytes(p.done_bytes)}/{human_bytes(p.pending_bytes)}; {human_bytes(rate)}/s"
        )
        remaining = p.pending_bytes - p.done_bytes
        if p.listing_done and rate > 0 and remaining > 0:
            text += f"; ETA {remaining / rate:.0f}s"
        if p.verify_pending:
            text += (
                f"; verified {p.verify_done}/{p.verify_pending} objects ({human_bytes(p.verify_bytes)} read)"
            )
        return text

    def _lines(self) -> None:
        while not self._stop.wait(self.interval):
            log.info("progress: %s", self.line())

    def _live(self) -> None:
        # Imported here: rich takes a tenth of a second to load, which a run in a Job never needs.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=sys.stderr)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[objects]}"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("listing", total=None, objects="")
            while not self._stop.wait(0.2):
                self._update(bar, task)
            self._update(bar, task)

    def _update(self, bar: Progress, task: TaskID) -> None:
        p = self.progress
        bar.update(
            task,
            description="copying" if p.listing_done else "listing + copying",
            total=p.pending_bytes if p.listing_done else None,
            completed=p.done_bytes,
            objects=f"{p.done_objects}/{p.pending_objects} obj"
            + (f", verified {p.verify_done}/{p.verify_pending}" if p.verify_pending else ""),
        )
