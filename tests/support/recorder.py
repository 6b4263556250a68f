"""A stand-in for the Kubernetes client where only status writes matter: each is recorded, and answered
with a new resourceVersion as the API server would."""

from __future__ import annotations

from typing import Any


class StatusRecorder:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_status(
        self, plural: str, name: str, status: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        self.patches.append(status)
        return {"metadata": {"resourceVersion": str(10 + len(self.patches))}, "status": status}
