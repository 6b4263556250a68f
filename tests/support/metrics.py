"""Reading one sample from the operator's Prometheus endpoint, as a scrape would see it."""

from __future__ import annotations

import urllib.request


def metric(url: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of `name` carrying every one of `labels`; None when there is none."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()  # noqa: S310
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None
