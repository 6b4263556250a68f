"""Is an observed child still what the zone rendered? Pure comparison, so drift repair writes only what
drifted instead of re-applying every child on every reconcile.

The rendered object must be contained in the observed one: every key the operator sets is present with the
same value (quantities compared by value, since the API server rewrites 1000m as 1), lists match item by
item and in length. Keys the API server or others add (defaults, extra labels) are not drift; a
ResourceQuota's `hard` is compared exactly, because an extra limit there would change the zone's quota.
"""

from __future__ import annotations

from typing import Any

from ..api.quantity import parse_quantity
from .datazone_quota import same_quantities


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str) and isinstance(have, str):
        try:
            return parse_quantity(want) == parse_quantity(have)  # exact: floats merge large values
        except ValueError:
            return False
    return False


def contained(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and contained(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(contained(w, h) for w, h in zip(want, have, strict=True))
        )
    return _same_scalar(want, have)


def in_line(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    """True when `observed` (None: missing) needs no write to match `desired`."""
    if observed is None:
        return False
    meta_want = {k: desired["metadata"].get(k, {}) for k in ("labels", "annotations")}
    if not contained(meta_want, {k: observed.get("metadata", {}).get(k) or {} for k in meta_want}):
        return False
    if desired["kind"] == "ResourceQuota":
        have_hard = (observed.get("spec") or {}).get("hard") or {}
        return same_quantities(desired["spec"]["hard"], have_hard)
    body = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "metadata")}
    return contained(body, {k: observed.get(k) for k in body})


def foreign_hard_keys(desired: dict[str, Any], observed: dict[str, Any]) -> list[str]:
    """Limits someone added by hand to a zone ResourceQuota (server-side apply leaves other managers' keys
    alone, so they are removed explicitly)."""
    have = (observed.get("spec") or {}).get("hard") or {}
    return sorted(set(have) - set(desired["spec"]["hard"]))
