"""Kubeconfigs from Secrets: refused with a reason that never quotes their contents."""

from __future__ import annotations

import pytest

from datacloud.adapters.kube import Kube, KubeconfigError

SECRET = "s3cr3t-t0ken-value-that-must-not-leak"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"users: [{{name: u, user: {{token: {SECRET}}}}}\nclusters: [", "not valid YAML"),
        (f"token: {SECRET}", "not a kubeconfig"),
        (f"clusters: []\nusers: [{{name: u, user: {{token: {SECRET}}}}}]", "unusable kubeconfig"),
        (
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
            f"users: [{{name: u, user: {{exec: {{command: /bin/sh, args: ['-c', 'echo {SECRET}']}}}}}}]",
            "credential plugins",
        ),
    ],
)
def test_unusable_kubeconfigs_are_refused_without_quoting_them(text: str, message: str) -> None:
    with pytest.raises(KubeconfigError, match=message) as e:
        Kube.from_kubeconfig_text(text)
    assert SECRET not in str(e.value)


def test_a_token_kubeconfig_loads_with_short_timeouts() -> None:
    text = (
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
        f"users: [{{name: u, user: {{token: {SECRET}}}}}]"
    )
    kube = Kube.from_kubeconfig_text(text, timeout_s=2.0)
    assert kube.timeout_s == 2.0
    with pytest.raises(Exception, match="Unreachable") as e:
        kube.get_json("/version")  # nothing listens on port 1
    assert SECRET not in str(e.value)
