"""Every event of every datacloud kind feeds the unreconciled-objects metric (`metrics.unreconciled`),
independently of the runtimes that should have reconciled them."""

from __future__ import annotations

from typing import Any

import kopf

from .. import GROUP, VERSION
from ..metrics import unreconciled

KINDS = ("drreplicas", "datacentres", "citydataclouds", "computecensuses", "datazones")


def _watch(plural: str) -> None:
    unreconciled.track(plural)

    @kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-unreconciled")
    async def seen(event: kopf.RawEvent, name: str, namespace: str | None, body: kopf.Body, **_: Any) -> None:
        key = (namespace or "", name)
        if event.get("type") == "DELETED":
            unreconciled.forget(plural, key)
        else:
            unreconciled.observe(plural, key, body)


for _plural in KINDS:
    _watch(_plural)
