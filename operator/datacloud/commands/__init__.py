"""Subcommands of the `datacloud` CLI that talk to a cluster (also reached as `kubectl datacloud ...`)."""
