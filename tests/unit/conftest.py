"""Fixtures of the unit tests: servers that misbehave on purpose, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import OneShotServer


@pytest.fixture
def serve() -> Iterator[list[OneShotServer]]:
    servers: list[OneShotServer] = []
    yield servers
    for server in servers:
        server.close()
