"""Pure census arithmetic: quantities, pod requests as the scheduler counts them, city summaries."""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.census.aggregate import (
    format_quantity,
    milli,
    pod_requests,
    project_node,
    project_pod,
    summarise,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500m", 500), ("2", 2000), ("1.5", 1500), ("4Gi", 4 * 2**30 * 1000), ("1k", 10**6), ("1e3", 10**6),
     ("100n", 1), ("0", 0), ("128974848", 128974848000), ("2E", 2 * 10**21)],
)  # fmt: skip
def test_milli_parses_kubernetes_quantities_exactly(text: str, expected: int) -> None:
    assert milli(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1Xi", "-1", "1.2.3"])
def test_milli_refuses_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        milli(text)


@pytest.mark.parametrize(
    ("value", "resource", "expected"),
    [(1500, "cpu", "1500m"), (96000, "cpu", "96"), (512 * 2**30 * 1000, "memory", "512Gi"),
     (1000 * 1000, "memory", "1000"), (3 * 2**20 * 1000, "hugepages-2Mi", "3Mi"),
     (8000, "nvidia.com/gpu", "8")],
)  # fmt: skip
def test_format_quantity_is_canonical(value: int, resource: str, expected: str) -> None:
    assert format_quantity(value, resource) == expected
    assert milli(expected) == value


def c(cpu: str, mem: str | None = None, **extra: Any) -> dict[str, Any]:
    req = {"cpu": cpu, **({"memory": mem} if mem else {})}
    return {"name": "x", "resources": {"requests": req}, **extra}


def test_pod_requests_sum_app_containers() -> None:
    assert pod_requests({"containers": [c("250m", "1Gi"), c("750m")]}) == {
        "cpu": 1000,
        "memory": 2**30 * 1000,
    }


def test_one_off_init_container_counts_only_when_larger() -> None:
    spec = {"containers": [c("1")], "initContainers": [c("3"), c("500m")]}
    assert pod_requests(spec)["cpu"] == 3000
    spec = {"containers": [c("2")], "initContainers": [c("1")]}
    assert pod_requests(spec)["cpu"] == 2000


def test_sidecars_add_to_containers_and_to_later_init_containers() -> None:
    sidecar = c("500m", restartPolicy="Always")
    spec = {"containers": [c("1")], "initContainers": [sidecar, c("2")]}
    # app 1 + sidecar 0.5 = 1.5; the later init container runs beside the sidecar: 2 + 0.5 = 2.5
    assert pod_requests(spec)["cpu"] == 2500


def test_overhead_and_pod_level_requests() -> None:
    spec = {"containers": [c("1", "1Gi")], "overhead": {"cpu": "100m"}}
    assert pod_requests(spec)["cpu"] == 1100
    spec["resources"] = {"requests": {"memory": "4Gi"}}
    assert pod_requests(spec) == {"cpu": 1100, "memory": 4 * 2**30 * 1000}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_terminated_pods_are_not_counted(phase: str) -> None:
    assert project_pod({"spec": {"containers": [c("1")]}, "status": {"phase": phase}}) is None
    assert project_pod({"spec": {"containers": [c("1")]}, "status": {"phase": "Pending"}}) is not None


def node(
    name: str, ready: bool = True, cordoned: bool = False, gpus: int = 0, model: str | None = None
) -> Any:
    capacity = {"cpu": "8", "memory": "32Gi", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    labels = {"nvidia.com/gpu.product": model} if model else {}
    return project_node({
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": cordoned},
        "status": {"capacity": capacity, "allocatable": capacity,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    })  # fmt: skip


def pod(node_name: str, cpu: str, gpus: int = 0) -> Any:
    req = {"cpu": cpu, **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return project_pod({"spec": {"nodeName": node_name, "containers": [{"resources": {"requests": req}}]}})


def test_summary_counts_nodes_by_state_and_excludes_unusable_from_schedulable() -> None:
    s = summarise([node("a"), node("b", ready=False), node("c", cordoned=True), node("d", False, True)], [])
    assert s.nodes_wire() == {"total": 4, "ready": 2, "schedulable": 1, "cordoned": 2}
    assert s.capacity["cpu"] == 32000
    assert s.schedulable["cpu"] == 8000


def test_accelerators_by_model_with_requests_on_bound_nodes() -> None:
    nodes = [node("a", gpus=8, model="A100"), node("b", gpus=4, model="L40S"), node("c", gpus=2), node("d")]
    pods = [pod("a", "1", 2), pod("a", "1", 1), pod("b", "500m", 4), pod("", "1", 1), pod("d", "2")]
    s = summarise(nodes, pods)
    got = {(a.model, a.capacity, a.allocatable, a.requested) for a in s.accelerators}
    assert got == {("A100", 8, 8, 3), ("L40S", 4, 4, 4), ("unknown", 2, 2, 0)}
    assert s.requested == {"cpu": 5500, "nvidia.com/gpu": 8000}  # the unbound pod counts in the total
    assert (s.pods, s.unscheduled_pods) == (5, 1)
    assert s.resources_wire()["requested"] == {"cpu": "5500m", "nvidia.com/gpu": "8"}
