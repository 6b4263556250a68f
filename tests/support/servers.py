"""Servers that misbehave on purpose, for the lean HTTP clients' tests."""

from __future__ import annotations

import socket
import threading

from datacloud.adapters.s3 import S3Credentials, S3Endpoint


class Listener:
    """A server on 127.0.0.1 handing each accepted connection to `handle` (on its own thread when
    `threaded`, one after another otherwise) until closed."""

    threaded = False

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(self.url, "us-east-1", S3Credentials("AK", "SK"))

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.threaded:
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            else:
                self.handle(conn)

    def close(self) -> None:
        self.sock.close()


class OneShotServer(Listener):
    """Answers every connection with the same raw bytes, then closes it: a store misbehaving."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(self.reply)
