"""Object-store centres for development and tests: one versitygw server per centre on a loopback port."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .process import Managed, StackError, free_port, tool, wait_for


def user_xattrs_work(directory: Path) -> bool:
    """Whether files under `directory` take user extended attributes (tmpfs before Linux 6.6 does not)."""
    probe = directory / ".xattr-probe"
    try:
        probe.touch()
        os.setxattr(probe, "user.datacloud", b"1")
        return os.getxattr(probe, "user.datacloud") == b"1"
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


@dataclass
class Centre:
    """A versitygw S3 server on local disk, standing in for one data centre's object store."""

    name: str
    root: Path
    port: int = 0
    access_key: str = field(default_factory=lambda: "dc" + secrets.token_hex(8))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    event_webhook: str | None = None
    event_token: str | None = field(default=None, repr=False)
    # An ordinary account the operator probes writability with (created by `add_probe_user`).
    probe_key: str = field(default_factory=lambda: "probe" + secrets.token_hex(6))
    probe_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    process: Managed | None = None
    # Internal IAM, so non-root users exist and bucket policies apply to them (the root user bypasses
    # policies, so fencing is only visible to applications writing as ordinary users).
    iam: bool = True
    # Run inside this network namespace, listening on `host` (a test host reached over a veth pair).
    netns: str | None = None
    host: str = "127.0.0.1"
    # Reuse connections between requests, as production stores do; without it versitygw answers every
    # request with `Connection: close` and each one pays a TCP handshake on both sides.
    keep_alive: bool = True
    # Object metadata in user xattrs where the filesystem has them (a PUT then costs versitygw about half
    # the CPU: no sidecar files to create), in sidecar files otherwise. None: decide by probing.
    sidecar: bool | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Centre:
        if not self.port:
            self.port = free_port()
        # Absolute paths: versitygw resolves a relative sidecar path against the data directory.
        self.root = self.root.resolve()
        data, meta = self.root / "data", self.root / "meta"
        data.mkdir(parents=True, exist_ok=True)
        meta.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ROOT_ACCESS_KEY": self.access_key, "ROOT_SECRET_KEY": self.secret_key}
        argv = [tool("versitygw"), "--port", f"{self.host}:{self.port}", "--quiet"]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        if self.keep_alive:
            argv.append("--keep-alive")
        if self.iam:
            (self.root / "iam").mkdir(parents=True, exist_ok=True)
            argv += ["--iam-dir", str(self.root / "iam")]
        if self.event_webhook:
            argv += ["--event-webhook-url", self.event_webhook]
        if self.sidecar is None:
            self.sidecar = not user_xattrs_work(data)
        argv += ["posix", *(["--sidecar", str(meta)] if self.sidecar else []), str(data)]
        self.process = Managed(f"versitygw-{self.name}", argv, self.root / "versitygw.log", env).start()
        wait_for(self._listening, 30, f"versitygw {self.name}", self.process)
        return self

    def _listening(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1):
            return True

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def restart(self) -> Centre:
        """Start again on the same port and data (after `stop`), as a centre coming back."""
        self.stop()
        return self.start()

    def add_user(self, access_key: str, secret_key: str, role: str = "user") -> None:
        """Create an ordinary (non-root) account through versitygw's admin API."""
        done = subprocess.run(
            [
                tool("versitygw"),
                "admin",
                "--access",
                self.access_key,
                "--secret",
                self.secret_key,
                "--endpoint-url",
                self.endpoint,
                "create-user",
                "--access",
                access_key,
                "--secret",
                secret_key,
                "--role",
                role,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise StackError(f"versitygw create-user failed: {done.stderr.strip() or done.stdout.strip()}")

    def add_probe_user(self) -> None:
        """The account the operator measures writability with (named in the centre's Secret)."""
        self.add_user(self.probe_key, self.probe_secret)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


def app_policy(bucket: str, access_key: str) -> str:
    """A bucket policy letting one ordinary account read and write the bucket (as an application's account
    is set up); the operator adds its fencing Deny beside it on copies that must not take writes."""
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    statement = {"Sid": "app", "Effect": "Allow", "Principal": {"AWS": [access_key]}, "Action": ["s3:*"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**statement, "Resource": resources}]})
