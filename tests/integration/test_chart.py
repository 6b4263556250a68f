"""The Helm chart on a real API server: lint, template, install under Pod Security `restricted`, the
operator running with the chart's ServiceAccount through the samples, and SubjectAccessReviews."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from datacloud.devstack.controlplane import write_kubeconfig
from datacloud.devstack.process import Managed, free_port, tool
from datacloud.devstack.stack import OPERATOR_NAMESPACE, DevStack, wait_until_admitted
from tests.support.chart import CHART, helm, rendered
from tests.support.cluster import wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SA = f"system:serviceaccount:{OPERATOR_NAMESPACE}:datacloud-operator"


def test_helm_lint_passes() -> None:
    done = helm("lint", str(CHART), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_chart_copies_match_their_sources() -> None:
    for crd in (ROOT / "crds").glob("*.yaml"):
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text(), (
            f"{crd.name}: run `make chart-files`"
        )
    assert {p.name for p in (CHART / "crds").glob("*.yaml")} == {
        p.name for p in (ROOT / "crds").glob("*.yaml")
    }
    rules = ROOT / "monitoring" / "rules" / "datacloud-alerts.yaml"
    assert (CHART / "files" / "datacloud-alerts.yaml").read_text() == rules.read_text()


def test_template_renders_a_restricted_deployment_and_the_rules() -> None:
    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in rendered("--set", "runbookBaseUrl=https://wiki.example/rb/")
    }
    pod = docs[("Deployment", "datacloud-operator")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["image"] == "datacloud/operator:0.1.0"
    rules = docs[("PrometheusRule", "datacloud-operator")]["spec"]["groups"]
    urls = [r["annotations"]["runbook_url"] for g in rules for r in g["rules"] if "alert" in r]
    assert urls
    assert all(u.startswith("https://wiki.example/rb/") and u.endswith(".md") for u in urls)
    assert ("ServiceMonitor", "datacloud-operator") in docs
    role = docs[("ClusterRole", "datacloud-operator")]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert not {"escalate", "impersonate"} & set(rule["verbs"])


@pytest.mark.parametrize(
    ("namespace", "values", "expect"),
    [("team-ops", [], "team-ops"), ("team-ops", ["--set", "operatorNamespace=dc-secrets"], "dc-secrets")],
)
def test_the_operator_looks_for_its_secrets_where_the_chart_lets_it_read_them(
    namespace: str, values: list[str], expect: str
) -> None:
    """The credentials Role is in operatorNamespace (default: the release's); the operator's own
    namespace setting must be the same, or it reads Secrets, baseline profiles and census snapshots in
    datacloud-system, where it may not."""
    done = helm("template", "datacloud", str(CHART), "-n", namespace, *values)
    assert done.returncode == 0, done.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(done.stdout) if d}
    role = docs[("Role", "datacloud-operator-credentials")]
    assert role["metadata"]["namespace"] == expect
    env = docs[("Deployment", "datacloud-operator")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "DATACLOUD_NAMESPACE", "value": expect} in env


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=-1"], "replicaCount"),
        (["--set", "logFormat=xml"], "logFormat"),
        (["--set", "metrics.port=80"], "/metrics/port"),
        (["--set", "runbookBaseUrl=not-a-url"], "runbookBaseUrl"),
        (["--set", "finalizerPolicy.enabled=maybe"], "/finalizerPolicy/enabled"),
        (["--set", "unknownKey=1"], "unknownKey"),
        # sync.namespaces: a list of distinct namespace names (DNS labels).
        (["--set", "sync.namespaces=datacloud-dr"], "at '/sync/namespaces': got string, want array"),
        (["--set", "sync.namespaces={Bad_NS}"], "at '/sync/namespaces/0': 'Bad_NS' does not match"),
        (["--set", "sync.namespaces={dr,-dr}"], "at '/sync/namespaces/1': '-dr' does not match"),
        (["--set", "sync.namespaces={数据}"], "at '/sync/namespaces/0'"),
        (["--set", f"sync.namespaces={{{'n' * 64}}}"], "at '/sync/namespaces/0'"),
        (["--set", "sync.namespaces={dr,dr}"], "at '/sync/namespaces': items at 0 and 1 are equal"),
        # Three servers, three ports: a shared one fails the second bind at start (a crash loop).
        (["--set", "events.port=8000"], "metrics.port (8000), events.port (8000) and the health port 8080"),
        (["--set", "metrics.port=8080"], "must all differ"),
    ],
)
def test_values_schema_refuses_malformed_values(values: list[str], message: str) -> None:
    done = helm("template", "datacloud", str(CHART), *values)
    assert done.returncode != 0
    assert message in done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevStack, dict[str, Any]]]:
    """A separate stack: CRDs and centres, then the chart installed into a restricted namespace."""
    # The chart brings its own peering object and zone roles.
    stack = DevStack(tmp_path_factory.mktemp("chart"), chart_objects=False, cities=1).start(samples=False)
    proc: Managed | None = None
    try:
        stack.kubectl(
            "label",
            "namespace",
            OPERATOR_NAMESPACE,
            "--overwrite",
            "pod-security.kubernetes.io/enforce=restricted",
        )
        done = helm(
            "install",
            "datacloud",
            str(CHART),
            "-n",
            OPERATOR_NAMESPACE,
            "--set",
            "metrics.serviceMonitor.enabled=false",
            "--set",
            "metrics.prometheusRule.enabled=false",
            kubeconfig=stack.kubeconfig,
        )
        assert done.returncode == 0, done.stderr
        wait_until_admitted(stack.kubeconfig)  # the chart's finalizer policy, on its first seconds
        token = stack.kubectl(
            "-n", OPERATOR_NAMESPACE, "create", "token", "datacloud-operator", "--duration=2h"
        ).stdout.strip()
        cp = stack.control_plane
        kc = write_kubeconfig(stack.dir / "sa-kubeconfig", "sa", cp.main.url, cp.pki.cert_path, token=token)
        log = stack.dir / "operator-as-sa.log"
        proc = Managed(
            "operator-sa",
            [
                sys.executable,
                "-m",
                "datacloud",
                "run",
                "--metrics-port",
                str(free_port()),
                "--liveness",
                f"http://127.0.0.1:{free_port()}/healthz",
            ],
            log,
            {**os.environ, "KUBECONFIG": str(kc)},
        ).start()
        stack.apply_samples()
        yield stack, {"log": log, "kubeconfig": kc}
    finally:
        if proc:
            proc.stop()
        stack.stop()


def test_install_passes_pod_security_restricted(installed: tuple[DevStack, dict[str, Any]]) -> None:
    stack, _ = installed
    # No kubelet runs pods here, but the ReplicaSet's pod is created only if admission lets it in.
    wait_until(
        lambda: (
            "datacloud-operator"
            in stack.kubectl("-n", OPERATOR_NAMESPACE, "get", "pods", "-o", "name").stdout
        ),
        60,
        what="operator pod admitted under restricted",
    )
    events = stack.kubectl("-n", OPERATOR_NAMESPACE, "get", "events", "-o", "json").stdout
    assert "violates PodSecurity" not in events


def test_operator_with_the_chart_service_account_reconciles_the_samples(
    installed: tuple[DevStack, dict[str, Any]],
) -> None:
    stack, info = installed

    def get(kind: str) -> list[dict[str, Any]]:
        return list(json.loads(stack.kubectl("get", kind, "-A", "-o", "json").stdout)["items"])

    wait_until(
        lambda: (
            all((d.get("status") or {}).get("health") == "Up" for d in get("datacentres"))
            and len(get("datacentres")) == 3
        ),
        90,
        what="centres Up",
    )
    wait_until(
        lambda: all((d.get("status") or {}).get("phase") == "Protected" for d in get("drreplicas")),
        120,
        what="DR replicas Protected",
    )
    wait_until(
        lambda: all((d.get("status") or {}).get("observedGeneration") for d in get("datazones")),
        120,
        what="zones reconciled",
    )
    wait_until(
        lambda: all((d.get("status") or {}).get("conditions") for d in get("citydataclouds")),
        120,
        what="cities reconciled",
    )
    log = info["log"].read_text()
    forbidden = [ln for ln in log.splitlines() if "Forbidden" in ln or " 403" in ln]
    assert forbidden == []
    everything = json.dumps(get("datacloud"))
    assert "Forbidden" not in everything


def sar(
    stack: DevStack,
    verb: str,
    resource: str,
    namespace: str | None = None,
    group: str = "",
    name: str | None = None,
) -> bool:
    attrs: dict[str, Any] = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attrs["namespace"] = namespace
    if name:
        attrs["name"] = name
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SA,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
                "system:authenticated",
            ],
            "resourceAttributes": attrs,
        },
    }
    done = stack.kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return bool(json.loads(done.stdout)["status"].get("allowed"))


def test_subject_access_reviews_show_it_is_not_too_much(installed: tuple[DevStack, dict[str, Any]]) -> None:
    stack, _ = installed
    assert sar(stack, "get", "secrets", OPERATOR_NAMESPACE)  # its own credentials
    assert sar(stack, "delete", "jobs", "default", group="batch")  # sync Jobs from an old active
    assert not sar(stack, "get", "secrets", "kube-system")
    assert not sar(stack, "get", "secrets", "default")
    assert not sar(stack, "watch", "secrets")
    assert not sar(stack, "escalate", "clusterroles", group="rbac.authorization.k8s.io")
    assert not sar(stack, "bind", "clusterroles", group="rbac.authorization.k8s.io", name="cluster-admin")
    assert sar(stack, "bind", "clusterroles", group="rbac.authorization.k8s.io", name="datacloud-zone-viewer")
    assert not sar(stack, "impersonate", "users")
    assert not sar(stack, "impersonate", "serviceaccounts")
    assert not sar(stack, "create", "pods", "default")
    assert not sar(stack, "delete", "datacentres", group="datacloud.fujian.gov.cn")
    assert not sar(stack, "delete", "customresourcedefinitions", group="apiextensions.k8s.io")
    assert not sar(stack, "patch", "clusterroles", group="rbac.authorization.k8s.io", name="admin")
    # Sync accounts: created where missing and added to the chart's one binding, no other.
    assert sar(stack, "create", "serviceaccounts", "datacloud-dr")
    rbac = "rbac.authorization.k8s.io"
    assert sar(stack, "patch", "clusterrolebindings", group=rbac, name="datacloud-sync")
    assert not sar(stack, "patch", "clusterrolebindings", group=rbac, name="cluster-admin")
    assert not sar(stack, "create", "clusterrolebindings", group=rbac)


def test_chart_ships_the_zone_roles_the_operator_binds_to() -> None:
    from datacloud.builders.datazone import cluster_roles

    def shape(role: dict[str, Any]) -> tuple[Any, ...]:
        return (
            role["metadata"]["name"],
            role["metadata"]["labels"],
            role.get("aggregationRule"),
            role.get("rules") or [],
        )

    shipped = {
        d["metadata"]["name"]: shape(d)
        for d in rendered()
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].startswith("datacloud-zone-")
    }
    assert shipped == {r["metadata"]["name"]: shape(r) for r in cluster_roles()}


MAP_API = "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy"


def test_chart_ships_the_finalizer_policy_where_the_api_server_serves_it() -> None:
    from datacloud.api.admission import finalizer_policy

    def policies(*values: str) -> list[dict[str, Any]]:
        return [d for d in rendered(*values) if d["kind"].startswith("MutatingAdmissionPolicy")]

    assert policies("--api-versions", MAP_API) == finalizer_policy()
    assert policies() == []  # a cluster without the v1beta1 API: kopf adds the finalizer itself
    assert policies("--api-versions", MAP_API, "--set", "finalizerPolicy.enabled=false") == []


def test_installed_chart_creates_objects_with_the_finalizer(
    installed: tuple[DevStack, dict[str, Any]],
) -> None:
    stack, _ = installed
    policy = json.loads(
        stack.kubectl("get", "mutatingadmissionpolicy", "datacloud-finalizer", "-o", "json").stdout
    )
    assert policy["metadata"]["annotations"]["meta.helm.sh/release-name"] == "datacloud"
    objects = json.loads(stack.kubectl("get", "datacloud", "-A", "-o", "json").stdout)["items"]
    assert {o["kind"] for o in objects} >= {"DataCentre", "DataZone", "DRReplica", "CityDataCloud"}
    for obj in objects:
        # Admitted with the finalizer, so the operator never had to write it (no field manager owns it).
        assert "datacloud.fujian.gov.cn/finalizer" in obj["metadata"].get("finalizers", []), obj["kind"]
        writers = [
            m["manager"]
            for m in obj["metadata"].get("managedFields") or []
            if "f:finalizers" in (m.get("fieldsV1") or {}).get("f:metadata", {})
        ]
        assert writers == [], (obj["kind"], writers)


def test_servicemonitor_becomes_a_scrape_job_prometheus_accepts(tmp_path: Path) -> None:
    """The chart's ServiceMonitor, translated as the Prometheus Operator would (devstack/scrape.py), is a
    configuration the real Prometheus accepts, selecting by the monitor's labels and port name."""
    from datacloud.devstack.scrape import from_servicemonitor

    (monitor,) = [d for d in rendered() if d["kind"] == "ServiceMonitor"]
    jobs = from_servicemonitor(monitor, tmp_path / "targets.json")
    (tmp_path / "targets.json").write_text("[]")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": jobs}))
    done = subprocess.run([tool("promtool"), "check", "config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (job,) = jobs
    rules = job["relabel_configs"]
    keeps = {tuple(r["source_labels"]): r["regex"] for r in rules if r.get("action") == "keep"}
    assert keeps == {
        ("__meta_kubernetes_service_label_app_kubernetes_io_name",): "datacloud-operator",
        ("__meta_kubernetes_service_label_app_kubernetes_io_instance",): "datacloud",
        ("__meta_kubernetes_endpoint_port_name",): "metrics",
    }
    assert job["relabel_configs"][-1] == {"target_label": "job", "replacement": "datacloud-operator"}
