"""Child processes of the dev stack: started in their own session, logged to a file, always reaped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .. import settings


class StackError(RuntimeError):
    """A component of the dev stack could not be started."""


def tool(name: str) -> str:
    """Path of a real component: the project's tool cache first, then PATH."""
    tools_bin = settings.current().tools_bin
    cached = tools_bin / name
    if cached.exists():
        return str(cached)
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name} not found in {tools_bin} or PATH; run tools/build.sh first")
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: Managed | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise StackError(f"{what}: process exited with {proc.returncode}; last log lines:\n{proc.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise StackError(f"{what}: not ready after {timeout:.0f}s" + (f"; log:\n{proc.tail()}" if proc else ""))


class Managed:
    """One child process in its own process group, so stopping it stops everything it spawned."""

    def __init__(
        self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Managed:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        stop_together([self], grace)

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def _reap(self, deadline: float) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stray children of the group, if any
        if self.proc.poll() is None:
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL at once (to test crash recovery)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def stop_together(processes: Sequence[Managed], grace: float = 10.0) -> None:
    """Stop several processes as one: SIGTERM them all, then give them one `grace` between them.

    A kube-apiserver takes a second or more to shut down; a province with ten city servers stopped
    one after another spent most of a minute doing it."""
    for p in processes:
        p._terminate()
    deadline = time.monotonic() + grace
    for p in processes:
        p._reap(deadline)
