"""The city fleet generator, kept at this path for the tests and benchmarks that import it from here."""

from datacloud.devstack.fleet import (
    CENTRE_LABEL,
    CITY_LABEL,
    GIB,
    GPU,
    GPU_LABEL,
    GPU_MODELS,
    OTHER_DEVICE,
    Fleet,
    FleetNode,
    FleetPod,
    Writer,
    create_fleet,
    create_node,
    create_pod,
    embedded_kubeconfig,
    make_fleet,
)

__all__ = [
    "CENTRE_LABEL",
    "CITY_LABEL",
    "GIB",
    "GPU",
    "GPU_LABEL",
    "GPU_MODELS",
    "OTHER_DEVICE",
    "Fleet",
    "FleetNode",
    "FleetPod",
    "Writer",
    "create_fleet",
    "create_node",
    "create_pod",
    "embedded_kubeconfig",
    "make_fleet",
]
