"""Real versitygw centres for the replication tests, started once per session; fresh buckets per test.

What the tests import (`Store`, `BucketPair`, `wait_until`) is in `tests/support/replication.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.replication import BucketPair, Store, start_centre


@pytest.fixture(scope="session")
def centres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """Two centres (Fuzhou and Xiamen stand-ins) shared by the whole replication suite."""
    root = tmp_path_factory.mktemp("replication-centres")
    started = [start_centre("fz", root), start_centre("xm", root)]
    yield Store(started[0]), Store(started[1])
    for centre in started:
        centre.stop()


@pytest.fixture
def pair(centres: tuple[Store, Store]) -> BucketPair:
    src, dst = centres
    return BucketPair(src, dst, src.bucket("src"), dst.bucket("dst"))


@pytest.fixture
def spare_centre(tmp_path: Path) -> Iterator[Store]:
    """A centre of the test's own, for tests that stop and restart it."""
    centre = start_centre("spare", tmp_path)
    yield Store(centre)
    centre.stop()
