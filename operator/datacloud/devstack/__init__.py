"""The development and test stack: a real control plane and real object stores on loopback ports.

Used by `make run` / `make up` and by the pytest fixtures; nothing here is imported by the operator's
reconcilers.
"""
