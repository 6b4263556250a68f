"""kopf handlers: parse, call a reconciler, map errors. Importing this package registers them all."""

from . import datacentre, lifecycle

__all__ = ["datacentre", "lifecycle"]
