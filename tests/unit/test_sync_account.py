"""The sync Jobs' account: created where missing, each namespace added once to the shared bindings with
the subjects already there kept, and the version read sent along (two writers conflict, not overwrite)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datacloud.adapters.kube import NotFound
from datacloud.builders import sync_account as build
from datacloud.reconcile import dr_sync_account
from datacloud.reconcile.dr_sync_account import ensure


class Kube:
    def __init__(self, objects: dict[tuple[str, str | None], dict[str, Any]]) -> None:
        self.objects = objects
        self.patches: list[dict[str, Any]] = []

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        try:
            return self.objects[(f"{kind}/{name}", namespace)]
        except KeyError:
            raise NotFound(name) from None

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        stored = {**manifest, "metadata": {**meta, "resourceVersion": "1"}}
        self.objects[(f"{manifest['kind']}/{meta['name']}", meta.get("namespace"))] = stored
        return stored

    def merge_patch(
        self, api_version: str, kind: str, name: str, patch: dict[str, Any], namespace: str | None
    ) -> None:
        self.patches.append(patch)
        live = self.objects[(f"{kind}/{name}", namespace)]
        assert patch["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
        live["subjects"] = patch["subjects"]
        live["metadata"]["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) + 1)


def chart_objects(*namespaces: str) -> dict[tuple[str, str | None], dict[str, Any]]:
    """What the chart installs with `sync.namespaces` = namespaces."""
    objects = {}
    for binding in build.shared_bindings("ops"):
        meta = binding["metadata"]
        binding = {**binding, "metadata": {**meta, "resourceVersion": "7"}}
        binding["subjects"] = [build.subject(n) for n in namespaces]
        objects[(f"{binding['kind']}/{meta['name']}", meta.get("namespace"))] = binding
    return objects


NAMESPACE = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@given(st.lists(NAMESPACE, unique=True, max_size=4), st.lists(NAMESPACE, min_size=1, max_size=6))
def test_each_namespace_joins_once_and_others_stay(listed: list[str], used: list[str]) -> None:
    kube = Kube(chart_objects(*listed))
    dr_sync_account._ensured.clear()  # a fresh API server in each example
    for namespace in used + used:  # every Job launch ensures; the second time changes nothing
        ensure(kube, namespace, "ops")  # type: ignore[arg-type]
    for binding in build.shared_bindings("ops"):
        live = kube.read(
            "", binding["kind"], binding["metadata"]["name"], binding["metadata"].get("namespace")
        )
        names = [s["namespace"] for s in live["subjects"]]
        assert names == listed + [n for n in dict.fromkeys(used) if n not in listed]
    for namespace in used:
        assert kube.read("v1", "ServiceAccount", build.SYNC_ACCOUNT, namespace)
        report = kube.read("", "RoleBinding", build.REPORT_ROLE, namespace)
        assert report["roleRef"]["name"] == build.REPORT_ROLE
    assert len(kube.patches) == 2 * len(set(used) - set(listed))


def test_without_the_chart_its_roles_and_bindings_are_created() -> None:
    dr_sync_account._ensured.clear()
    kube = Kube({})
    ensure(kube, "dr", "ops")  # type: ignore[arg-type]
    assert kube.read("", "ClusterRole", build.CENTRES_ROLE)["rules"][0]["resources"] == ["datacentres"]
    assert kube.read("", "ClusterRole", build.REPORT_ROLE)
    assert kube.read("", "ClusterRoleBinding", build.CENTRES_ROLE)["subjects"] == [build.subject("dr")]
    assert kube.read("", "RoleBinding", build.CREDENTIALS_BINDING, "ops")["subjects"] == [build.subject("dr")]


class CountingKube(Kube):
    def __init__(self, objects: dict[tuple[str, str | None], dict[str, Any]]) -> None:
        super().__init__(objects)
        self.reads = 0

    def read(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.reads += 1
        return super().read(api_version, kind, name, namespace)


def test_a_namespace_found_complete_is_not_read_again_for_each_job(monkeypatch: Any) -> None:
    """A mass failover launches one seed Job per replica in the same namespace: the account is looked at
    once, not three or four reads per Job; after ENSURED_FOR_S it is looked at (and mended) again."""
    dr_sync_account._ensured.clear()
    kube = CountingKube(chart_objects())
    ensure(kube, "dr", "ops")  # type: ignore[arg-type]
    first = kube.reads
    assert first > 0
    for _ in range(100):
        ensure(kube, "dr", "ops")  # type: ignore[arg-type]
    assert kube.reads == first
    kube.objects = {k: v for k, v in kube.objects.items() if not k[0].startswith("ServiceAccount/")}
    clock = dr_sync_account.time.monotonic() + dr_sync_account.ENSURED_FOR_S
    monkeypatch.setattr(dr_sync_account.time, "monotonic", lambda: clock)
    ensure(kube, "dr", "ops")  # type: ignore[arg-type]
    assert ("ServiceAccount/" + build.service_account("dr")["metadata"]["name"], "dr") in kube.objects
