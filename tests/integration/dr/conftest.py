"""DR fixtures: the session stack's three centres declared as DataCentres, buckets, an app account.

What the tests import (builders, clients, `Refusals`) is in `tests/support/dr.py`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from datacloud.devstack.objectstore import Centre
from tests.support.cluster import Cluster
from tests.support.dr import NAMESPACE, Refusals, dr_centres, restored

__all__ = ["dr_centres"]  # a fixture the DR tests and the metrics catalogue share


@pytest.fixture
def bucket() -> str:
    return f"dr-{os.urandom(4).hex()}"


@pytest.fixture
def cleanup(cluster: Cluster) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        cluster.kubectl("-n", NAMESPACE, "delete", "drreplica", name, "--wait=false")


@pytest.fixture
def prod_restored(dr_centres: dict[str, Centre]) -> Iterator[Centre]:
    """Production, started again after the test if the test stopped it."""
    yield from restored(dr_centres["fz-prod"])


@pytest.fixture
def near_restored(dr_centres: dict[str, Centre]) -> Iterator[Centre]:
    """The same-city centre, started again after the test if the test stopped it."""
    yield from restored(dr_centres["fz-samecity-dr"])


@pytest.fixture
def refusals(cluster: Cluster) -> Iterator[Refusals]:
    r = Refusals(cluster)
    yield r
    r.lift()
