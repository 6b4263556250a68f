"""Helpers the tests import (clusters, waiting, fixture data, misbehaving servers).

Fixtures stay in the `conftest.py` files, which pytest loads by itself; anything a test module imports
lives here, so no test imports a conftest or another test module: `cluster` (the API server, polling),
`dr` and `replication` (stores, buckets, replicas), `zones`, `chart`, `fleet`, `servers`.
"""
