"""Settings the operator reads from its environment (the chart sets them from its values)."""

from __future__ import annotations

import os

from . import __version__


def job_image() -> str:
    """The image DR sync Jobs run: the operator's own, as the chart's `image` value names it
    (DATACLOUD_IMAGE); outside the chart, the image the Dockerfile builds for this version."""
    return os.environ.get("DATACLOUD_IMAGE") or f"datacloud/operator:{__version__}"
