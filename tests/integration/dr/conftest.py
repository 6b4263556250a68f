"""DR fixtures: the session stack's three centres declared as DataCentres, buckets, an app account.

What the tests import (builders, clients, `Refusals`) is in `tests/support/dr.py`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacloud.devstack.netns import Link
from datacloud.devstack.objectstore import Centre
from datacloud.devstack.stack import OPERATOR_NAMESPACE, centre_secret
from tests.support.cluster import Cluster
from tests.support.dr import APP_KEY, APP_SECRET, NAMESPACE, Refusals, dr_centres, restored
from tests.support.partition import partition

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


@pytest.fixture
def partitioned_prod(
    cluster: Cluster, dr_centres: dict[str, Centre], tmp_path: Path
) -> Iterator[tuple[Link, Centre]]:
    with partition() as link:
        centre = Centre("part-prod", tmp_path / "part-prod", netns=link.netns, host=link.centre_ip).start()
        try:
            centre.add_user(APP_KEY, APP_SECRET)
            centre.add_probe_user()
            cluster.must_apply(centre_secret(centre, OPERATOR_NAMESPACE))
            cluster.must_apply(
                {
                    "apiVersion": "datacloud.fujian.gov.cn/v1alpha1",
                    "kind": "DataCentre",
                    "metadata": {"name": "part-prod"},
                    "spec": {
                        "city": "350100",
                        "role": "Production",
                        "objectStore": {
                            "endpoint": centre.endpoint,
                            "credentialsSecretRef": {
                                "name": "centre-part-prod",
                                "namespace": OPERATOR_NAMESPACE,
                            },
                        },
                    },
                }
            )
            yield link, centre
        finally:
            cluster.kubectl("delete", "datacentre", "part-prod", "--wait=false")
            centre.stop()
