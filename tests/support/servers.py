"""A server that misbehaves on purpose, for the lean HTTP clients' tests."""

from __future__ import annotations

import socket
import threading

from datacloud.adapters.s3 import S3Credentials, S3Endpoint


class OneShotServer:
    """Answers every connection with the same raw bytes, then closes it: a store misbehaving."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    @property
    def endpoint(self) -> S3Endpoint:
        port = self.sock.getsockname()[1]
        return S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", S3Credentials("AK", "SK"))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()
