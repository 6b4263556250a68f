"""The city mirror against a real API server: one paginated list, then only changes; a restart of the
city's API server costs one relist."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from datacloud.adapters.kube import Kube
from datacloud.census.collect import CityCollector, collect_city
from datacloud.devstack.controlplane import ApiServer
from datacloud.devstack.process import free_port
from tests.support.cluster import Cluster, wait_until
from tests.support.fleet import FleetPod, Writer, create_fleet, create_pod, embedded_kubeconfig, make_fleet

pytestmark = pytest.mark.integration


@pytest.fixture
def city(cluster: Cluster) -> Iterator[tuple[ApiServer, int]]:
    plane = cluster.stack.control_plane
    name, port = f"city-mirror-{os.urandom(2).hex()}", free_port()
    server = plane.add_apiserver(name, port=port)
    yield server, port
    plane.stop_apiserver(name)


def test_mirror_lists_in_pages_once_then_follows_changes(
    cluster: Cluster, city: tuple[ApiServer, int]
) -> None:
    server, port = city
    fleet = make_fleet("350900", 12, 130)
    create_fleet(server, fleet)
    kube = Kube.from_kubeconfig_text(embedded_kubeconfig(server))
    want = fleet.expected()
    # The one-shot collector (for census runs) agrees, with pages smaller than the collection.
    once = collect_city(kube, page_size=7)
    assert once.nodes_wire() == want["nodes"]
    assert once.pods == want["live_pods"]

    collector = CityCollector(kube, "mirror-test", page_size=25)  # several pages each
    try:
        assert collector.wait_synced(30)
        first = collector.summary()
        assert first is not None
        assert first.pods == want["live_pods"]
        assert collector.summary() is first  # nothing changed: not added up again

        w = Writer(server)
        extra = FleetPod("pod-extra", fleet.namespace, "node-1", 2000, 128, 0, "Running")
        create_pod(w, extra)
        ended = next(p for p in fleet.pods if not p.terminated)
        w.status(f"/api/v1/namespaces/{fleet.namespace}/pods/{ended.name}", {"phase": "Failed"})
        w.request("DELETE", "/api/v1/nodes/node-11", {})
        wait_until(
            lambda: (s := collector.summary()) and s.nodes.total == 11 and s.pods == want["live_pods"], 20
        )
        summary = collector.summary()
        assert summary is not None
        assert summary.requested["cpu"] == round(want["cpu_requested"] * 1000) + 2000 - ended.millicores
        assert (collector.nodes.lists, collector.pods.lists) == (1, 1)  # changes came by watch

        # The city's API server restarts at the same address: the mirror resumes from its version.
        cluster.stack.control_plane.stop_apiserver(server.name)
        wait_until(lambda: not collector.current, 20, what="mirror notices the outage")
        server = cluster.stack.control_plane.add_apiserver(server.name, port=port)
        create_pod(Writer(server), FleetPod("pod-after", fleet.namespace, "node-2", 1000, 64, 0, "Running"))
        wait_until(lambda: (s := collector.summary()) and s.pods == want["live_pods"] + 1, 30, what="resumed")
        assert collector.current
        # A restarted API server's watch cache starts after our version (410 Gone): one relist, no more.
        assert collector.nodes.lists <= 2
        assert collector.pods.lists <= 2
    finally:
        collector.stop()
