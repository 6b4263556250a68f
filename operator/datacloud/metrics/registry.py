"""The one registry all datacloud metrics live in (not the global default, so tests see only ours)."""

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)
