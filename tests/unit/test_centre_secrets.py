"""A centre's probes read its credentials Secret seldom, and again at once after a probe that failed."""

from __future__ import annotations

from typing import Any

import pytest

from datacloud.adapters.kube import NotFound
from datacloud.reconcile import centre_runtime, datacentre


class Secrets:
    def __init__(self) -> None:
        self.data: dict[str, str] | None = {"key": "v1"}
        self.reads = 0
        self.patches: list[dict[str, Any]] = []

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        self.reads += 1
        if self.data is None:
            raise NotFound(f"Secret {namespace}/{name} not found")
        return dict(self.data)

    def patch_status(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(patch)


def test_the_secret_is_read_once_per_ttl_and_a_missing_one_is_remembered_too() -> None:
    now = [0.0]
    kube = Secrets()
    cache = centre_runtime.SecretCache(kube, clock=lambda: now[0])  # type: ignore[arg-type]
    assert [cache.secret_data("ns", "s") for _ in range(5)] == [{"key": "v1"}] * 5
    assert kube.reads == 1
    kube.data = None
    now[0] += centre_runtime.SECRET_TTL_S
    for _ in range(3):
        with pytest.raises(NotFound):
            cache.secret_data("ns", "s")
    assert kube.reads == 2
    kube.data = {"key": "v2"}
    cache.clear()
    assert cache.secret_data("ns", "s") == {"key": "v2"}


@pytest.mark.parametrize("failures", [0, 1])
def test_a_failed_probe_makes_the_next_one_read_the_secret_again(
    monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    """Rotated credentials: the probe with the old ones fails, and the next one reads the new ones."""

    def probe(kube: Any, body: Any) -> datacentre.ProbeReport:
        kube.secret_data("ns", "creds")
        status = {"health": "Up" if not failures else "Degraded", "consecutiveFailures": failures}
        return datacentre.ProbeReport(status, 1.0)

    monkeypatch.setattr(datacentre, "probe_once", probe)
    kube = Secrets()
    rt = centre_runtime.CentreRuntime(kube, "c", lambda *e: None, {})  # type: ignore[arg-type]
    for _ in range(3):
        rt.run({"metadata": {"name": "c"}, "spec": {}})
    assert kube.reads == (3 if failures else 1)


@pytest.mark.parametrize(
    ("access", "secret", "said"),
    [
        ("AKID\n", "s3cr3t", "accessKeyId ends with a line break"),
        ("AKID", "s3cr3t\r\n", "secretAccessKey ends with a line break"),
        ("AKID", "s3\tcr3t", "secretAccessKey holds a control character"),
        ("AKID", " s3cr3t", "secretAccessKey begins or ends with a space"),
    ],
)
def test_a_key_as_a_file_left_it_is_refused_by_name(access: str, secret: str, said: str) -> None:
    from datacloud.api.conditions import DataCentreReason, ReplicaReason
    from datacloud.api.datacentre import DataCentreSpec
    from datacloud.reconcile.centres import CentreUnavailable, credentials

    kube = Secrets()
    kube.data = {"accessKeyId": access, "secretAccessKey": secret}
    spec = DataCentreSpec.model_validate(
        {
            "city": "350100",
            "role": "Production",
            "objectStore": {
                "endpoint": "http://127.0.0.1:7070",
                "credentialsSecretRef": {"name": "s", "namespace": "n"},
            },
        }
    )
    with pytest.raises(CentreUnavailable) as caught:
        credentials(kube, spec)  # type: ignore[arg-type]
    assert said in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    # Both kinds that report a centre lookup know the reason (an unknown one would read CentreInvalid).
    assert DataCentreReason(caught.value.reason)
    assert ReplicaReason(caught.value.reason)
