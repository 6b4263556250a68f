"""The Pulumi program of the provincial topology (`pulumi up` in this directory; see README.md)."""

from program import deploy

deploy()
