"""Every metric the operator exports, in one place (prefix `datacloud_`), one module per area.

Values are recomputed from resource status by the reconcilers, so they are right after a restart, and
each area's `forget_*` drops the series of an object that is gone. All share one registry, served by
`datacloud run` on its metrics port.
"""

from .registry import REGISTRY

__all__ = ["REGISTRY"]
