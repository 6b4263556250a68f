"""The Pulumi program in infra/, run in-process under Pulumi's mocks (no CLI, engine or plugins needed):
what it declares for the dev and prod stacks, and how it refuses a malformed topology or missing secrets."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from datacloud.api import resources
from datacloud.api.census import ComputeCensusSpec
from datacloud.api.citydatacloud import CityDataCloudSpec
from datacloud.api.common import CITIES, PREFIX_SEGMENTS_MSG
from datacloud.api.crdgen import all_crds
from datacloud.api.datacentre import DataCentreSpec
from datacloud.api.datazone import DataZoneSpec
from datacloud.api.drreplica import DRReplicaSpec
from datacloud.api.reserved import RESERVED_MESSAGE
from datacloud.api.s3names import REGION_MSG

# pulumi_aws warns about its own deprecated V2 resources when its s3 module is imported; none are used here.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated in favor of:DeprecationWarning")

INFRA = Path(__file__).resolve().parents[2] / "infra"
sys.path.insert(0, str(INFRA))

import program  # noqa: E402
import topology  # noqa: E402

CR = "kubernetes:datacloud.fujian.gov.cn/v1alpha1:"
SPECS: dict[str, Any] = {
    "DataCentre": DataCentreSpec,
    "CityDataCloud": CityDataCloudSpec,
    "DataZone": DataZoneSpec,
    "DRReplica": DRReplicaSpec,
    "ComputeCensus": ComputeCensusSpec,
}
TOPOLOGY = yaml.safe_load((INFRA / "topology.yaml").read_text(encoding="utf-8"))
PROVINCE = topology.load(INFRA / "topology.yaml")


# --- running the program under mocks ---------------------------------------------------------------------


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: dict[str, MockResourceArgs] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources[args.name] = args
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class Monitor(MockMonitor):
    """The mock engine, also noting what `new_resource` does not see: protect and depends_on."""

    def __init__(self, mocks: Recorder) -> None:
        super().__init__(mocks)
        self.protect: dict[str, bool] = {}
        self.depends_on: dict[str, set[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.protect[request.name] = bool(request.protect)
        self.depends_on[request.name] = {urn.rsplit("::", 1)[-1] for urn in request.dependencies}
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


@dataclass
class Run:
    resources: dict[str, MockResourceArgs]
    protect: dict[str, bool]
    depends_on: dict[str, set[str]]
    secrets: dict[str, str] = field(default_factory=dict)

    def of(self, typ: str) -> dict[str, dict[str, Any]]:
        return {name: r.inputs for name, r in self.resources.items() if r.typ == typ}

    def crs(self, kind: str) -> dict[str, dict[str, Any]]:
        return {i["metadata"]["name"]: i for i in self.of(CR + kind).values()}


def stack_config(stack: str) -> dict[str, str]:
    """A stack file's config as the engine hands it to a program: strings, objects as JSON."""
    config = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def credentials(t: topology.Topology = PROVINCE) -> dict[str, str]:
    return {f"datacloud:{key}": f"value-of-{key}" for key in program.secret_keys(t)}


def run(
    stack: str,
    config: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    plain: dict[str, str] | None = None,
) -> Run:
    """Run the whole program (`program.deploy`, what __main__ runs) for a stack, under mocks."""
    mocks = Recorder()
    monitor = Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="datacloud", stack=stack, preview=False, monitor=monitor)
    secrets = credentials() if secrets is None else secrets
    pulumi.runtime.set_all_config(
        {**stack_config(stack), **(config or {}), **secrets, **(plain or {})}, secret_keys=list(secrets)
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def deploy() -> None:
        program.deploy()

    deploy()
    return Run(mocks.resources, monitor.protect, monitor.depends_on, secrets)


@pytest.fixture(scope="module")
def dev() -> Run:
    return run("dev")


@pytest.fixture(scope="module")
def prod() -> Run:
    return run("prod")


# --- what the stacks declare -----------------------------------------------------------------------------


def test_the_topology_file_is_the_province() -> None:
    assert [(c.name, c.role, c.city) for c in PROVINCE.centres] == [
        ("fz-prod", "Production", "350100"),
        ("fz-samecity-dr", "SameCityDR", "350100"),
        ("xm-remote-dr", "RemoteDR", "350200"),
    ]
    assert sorted(c.city_code for c in PROVINCE.cities) == sorted(CITIES)
    assert isinstance(PROVINCE.centres[0].spec(), DataCentreSpec)
    assert "buckets" not in PROVINCE.centres[0].spec().wire()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_both_stacks_load_and_declare_the_whole_topology(stack: str, request: pytest.FixtureRequest) -> None:
    out: Run = request.getfixturevalue(stack)
    assert {n: i["spec"]["role"] for n, i in out.crs("DataCentre").items()} == {
        "fz-prod": "Production",
        "fz-samecity-dr": "SameCityDR",
        "xm-remote-dr": "RemoteDR",
    }
    cities = out.crs("CityDataCloud")
    assert len(cities) == 10
    assert {i["spec"]["cityCode"] for i in cities.values()} == set(CITIES)
    assert cities["pingtan"]["spec"]["displayName"] == {"zh": "平潭综合实验区", "en": CITIES["350128"][1]}
    assert {n: i["spec"]["classification"] for n, i in out.crs("DataZone").items()} == {
        "population": "Core",
        "health": "Important",
        "open-data": "General",
    }
    assert set(out.crs("DRReplica")) == {"population-records", "health-archive", "open-data-catalogue"}
    assert out.crs("ComputeCensus")["provincial"]["spec"]["schedule"] == "0 6 * * 1"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_custom_resource_is_one_the_crd_accepts_and_waits_for_the_chart(
    stack: str, request: pytest.FixtureRequest
) -> None:
    out: Run = request.getfixturevalue(stack)
    crs = {n: r for n, r in out.resources.items() if r.typ.startswith(CR)}
    assert len(crs) == 3 + 10 + 3 + 3 + 1
    for name, r in crs.items():
        kind = r.typ.removeprefix(CR)
        assert r.inputs["apiVersion"] == "datacloud.fujian.gov.cn/v1alpha1"
        assert r.inputs["kind"] == kind
        SPECS[kind].model_validate(r.inputs["spec"])  # raises if the CRD's model would refuse it
        assert "datacloud-operator" in out.depends_on[name], f"{name} must wait for the chart (its CRDs)"
        assert r.inputs["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pulumi"


def test_the_operator_chart_is_a_release_with_the_stack_values(dev: Run, prod: Run) -> None:
    release = dev.of("kubernetes:helm.sh/v3:Release")["datacloud-operator"]
    assert release["chart"] == "../charts/datacloud-operator"
    assert (INFRA / release["chart"]).resolve() == INFRA.parent / "charts" / "datacloud-operator"
    assert release["namespace"] == "datacloud-system"
    assert release["createNamespace"] is False
    assert release["values"]["image"]["tag"] == "dev"
    assert release["values"]["replicaCount"] == 1
    assert prod.of("kubernetes:helm.sh/v3:Release")["datacloud-operator"]["values"]["replicaCount"] == 2
    assert "namespace-datacloud-system" in dev.depends_on["datacloud-operator"]


def test_dr_replicas_protect_each_zone_on_the_right_centres(dev: Run) -> None:
    roles = {n: i["spec"]["role"] for n, i in dev.crs("DataCentre").items()}
    for name, replica in dev.crs("DRReplica").items():
        assert replica["metadata"]["namespace"] == "datacloud-dr"
        zone = replica["metadata"]["labels"]["datacloud.fujian.gov.cn/zone"]
        classification = dev.crs("DataZone")[zone]["spec"]["classification"]
        assert roles[replica["spec"]["source"]["centre"]] == "Production"
        targets = {(t["mode"], roles[t["centre"]]) for t in replica["spec"]["targets"]}
        assert ("Scheduled", "RemoteDR") in targets, name
        assert (("Continuous", "SameCityDR") in targets) == (classification != "General"), name
        # The replica waits for every bucket it reads or writes.
        buckets = {f"bucket-{replica['spec']['source']['centre']}-{replica['spec']['source']['bucket']}"}
        buckets |= {f"bucket-{t['centre']}-{t['bucket']}" for t in replica["spec"]["targets"]}
        assert buckets <= dev.depends_on[f"drreplica-datacloud-dr-{name}"]


def test_buckets_per_centre_on_that_centres_store(dev: Run) -> None:
    buckets = dev.of("aws:s3/bucket:Bucket")
    by_centre: dict[str, set[str]] = {}
    for name, inputs in buckets.items():
        centre = inputs["tags"]["datacloud.fujian.gov.cn/centre"]
        by_centre.setdefault(centre, set()).add(inputs["bucket"])
        assert dev.resources[name].provider.startswith(  # type: ignore[union-attr]
            f"urn:pulumi:dev::datacloud::pulumi:pulumi:Stack$pulumi:providers:aws::s3-{centre}::"
        )
        assert inputs["forceDestroy"] is False
    assert by_centre == {
        "fz-prod": {"population-records", "health-archive", "open-data", "census-reports"},
        "fz-samecity-dr": {"population-records", "health-archive"},
        "xm-remote-dr": {"population-records", "health-archive", "open-data"},
    }
    uses = {n: i["tags"]["datacloud.fujian.gov.cn/uses"] for n, i in buckets.items()}
    assert uses["bucket-fz-prod-population-records"] == "source"
    assert uses["bucket-fz-samecity-dr-population-records"] == "target"
    assert uses["bucket-fz-prod-census-reports"] == "census"


def test_dev_points_at_lab_stores_and_prod_at_the_provinces(dev: Run, prod: Run) -> None:
    dev_provider = dev.of("pulumi:providers:aws")["s3-fz-prod"]
    assert json.loads(dev_provider["endpoints"]) == [{"s3": "http://127.0.0.1:7070"}]
    assert dev_provider["region"] == "us-east-1"
    assert dev.crs("DataCentre")["fz-prod"]["spec"]["objectStore"]["endpoint"] == "http://127.0.0.1:7070"
    prod_provider = prod.of("pulumi:providers:aws")["s3-xm-remote-dr"]
    assert json.loads(prod_provider["endpoints"]) == [{"s3": "https://oss.xm-dr.dc.fujian.gov.cn"}]
    assert prod_provider["region"] == "fj-xiamen-1"
    assert prod_provider["s3UsePathStyle"] == "true"
    assert prod_provider["skipCredentialsValidation"] == "true"


def test_prod_buckets_are_versioned_and_protected_dev_buckets_are_not(dev: Run, prod: Run) -> None:
    prod_buckets = prod.of("aws:s3/bucket:Bucket")
    versioning = prod.of("aws:s3/bucketVersioning:BucketVersioning")
    assert len(prod_buckets) == 9
    assert {n.removeprefix("versioning-") for n in versioning} == {
        n.removeprefix("bucket-") for n in prod_buckets
    }
    assert all(v["versioningConfiguration"] == {"status": "Enabled"} for v in versioning.values())
    assert all(prod.protect[n] for n in [*prod_buckets, *versioning])
    assert dev.of("aws:s3/bucketVersioning:BucketVersioning") == {}
    assert not any(dev.protect[n] for n in dev.of("aws:s3/bucket:Bucket"))


def _unwrap_secret(value: Any) -> Any:
    assert isinstance(value, dict), "expected a Pulumi secret"
    assert value.get(rpc._special_sig_key) == rpc._special_secret_sig, "expected a Pulumi secret"
    return value["value"]


def test_credentials_become_secrets_and_nothing_else_carries_them(dev: Run) -> None:
    secrets = dev.of("kubernetes:core/v1:Secret")
    centre = secrets["secret-datacloud-system-centre-fz-prod"]
    assert centre["metadata"] == {
        "name": "centre-fz-prod",
        "namespace": "datacloud-system",
        "labels": program.MANAGED,
        "annotations": {"datacloud.fujian.gov.cn/credentials-of": "centre fz-prod"},
    }
    assert _unwrap_secret(centre["stringData"]) == {
        "accessKeyId": "value-of-centre-fz-prod-access-key-id",
        "secretAccessKey": "value-of-centre-fz-prod-secret-access-key",
    }
    city = secrets["secret-datacloud-system-city-ningde-kubeconfig"]
    assert _unwrap_secret(city["stringData"]) == {"kubeconfig": "value-of-city-ningde-kubeconfig"}
    assert len(secrets) == 3 + 10
    provider = dev.of("pulumi:providers:aws")["s3-fz-prod"]
    assert _unwrap_secret(provider["secretKey"]) == "value-of-centre-fz-prod-secret-access-key"
    # Each DataCentre/CityDataCloud waits for its Secret; no credential reaches any other resource.
    assert "secret-datacloud-system-centre-fz-prod" in dev.depends_on["datacentre-fz-prod"]
    assert "secret-datacloud-system-city-xiamen-kubeconfig" in dev.depends_on["citydatacloud-xiamen"]
    for name, r in dev.resources.items():
        if r.typ not in ("kubernetes:core/v1:Secret", "pulumi:providers:aws"):
            text = json.dumps(r.inputs, ensure_ascii=False)
            assert "value-of-" not in text, f"{name} carries a credential"


def test_missing_and_plain_text_credentials_are_refused_with_the_command_to_fix_them() -> None:
    secrets = credentials()
    del secrets["datacloud:centre-xm-remote-dr-secret-access-key"]
    del secrets["datacloud:city-pingtan-kubeconfig"]
    plain = {"datacloud:city-fuzhou-kubeconfig": secrets.pop("datacloud:city-fuzhou-kubeconfig")}
    with pytest.raises(pulumi.RunError) as err:
        run("dev", secrets=secrets, plain=plain)
    message = str(err.value)
    assert (
        "datacloud:centre-xm-remote-dr-secret-access-key: not set; run `pulumi config set --secret" in message
    )
    assert "datacloud:city-pingtan-kubeconfig: not set" in message
    assert "datacloud:city-fuzhou-kubeconfig: stored in plain text" in message
    assert "value-of-" not in message


def test_object_store_overrides_name_real_centres_and_urls() -> None:
    stores = json.dumps({"fz-prd": {"endpoint": "http://127.0.0.1:1"}, "fz-prod": {"endpoint": "ftp://x"}})
    with pytest.raises(pulumi.RunError) as err:
        run("dev", config={"datacloud:objectStores": stores})
    message = str(err.value)
    assert "datacloud:objectStores.fz-prd: no such centre" in message
    assert "datacloud:objectStores.fz-prod.endpoint: must match" in message


# --- a malformed topology --------------------------------------------------------------------------------


def _mutate(change: Callable[[dict[str, Any]], None]) -> str:
    raw = copy.deepcopy(TOPOLOGY)
    change(raw)
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


def _split(path: str) -> list[str]:
    """`a.b\\.c.0` → ['a', 'b.c', '0']: a backslash keeps a dot inside a key such as requests.cpu."""
    return [p.replace("\0", ".") for p in path.replace("\\.", "\0").split(".")]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting the value at a dotted path such as `dataZones.2.classification`."""

    def change(raw: dict[str, Any]) -> None:
        *parents, last = _split(path)
        node: Any = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


_DELETE = object()


def _delete_remote_dr(raw: dict[str, Any]) -> None:
    raw["centres"] = [c for c in raw["centres"] if c["role"] != "RemoteDR"]


MALFORMED = {
    "duplicate city": (
        _set("cities.9.cityCode", "350100"),
        ["cities[9].cityCode: 350100 is already the city of cities[0]", "missing 350128 (平潭综合实验区)"],
    ),
    "unknown centre in a DR replica": (
        _set("drReplicas.1.targets.1.centre", "xm-dr"),
        [
            "drReplicas[1].targets[1].centre: no centre named xm-dr "
            "(known: fz-prod, fz-samecity-dr, xm-remote-dr)"
        ],
    ),
    "a DR replica on a bucket the operator keeps its records in": (
        _set("drReplicas.1.targets.0.bucket", "datacloud-divergent"),
        ["drReplicas[1].targets[0].bucket", RESERVED_MESSAGE],
    ),
    "missing remote DR centre": (
        _delete_remote_dr,
        ["centres: needs exactly one RemoteDR centre (found none)"],
    ),
    "two production centres": (
        _set("centres.1.role", "Production"),
        ["centres: needs exactly one Production centre (found fz-prod, fz-samecity-dr)"],
    ),
    "bad quantity": (
        _set("dataZones.1.quota.hard.requests\\.cpu", "lots"),
        ['dataZones[1].quota.hard["requests.cpu"]: must be a non-negative quantity such as 500m, 2 or 4Gi'],
    ),
    "bad classification": (
        _set("dataZones.2.classification", "Secret"),
        ["dataZones[2].classification: must be one of Core, Important, General (got 'Secret')"],
    ),
    "bucket not declared on the target centre": (
        _set("centres.2.buckets", ["population-records", "open-data"]),
        ["drReplicas[1].targets[1].bucket: bucket health-archive is not declared on centre xm-remote-dr"],
    ),
    "allowFrom an unknown zone": (
        _set("dataZones.1.network.allowFrom", ["open-data", "tax"]),
        ["dataZones[1].network.allowFrom[1]: no data zone named tax"],
    ),
    "inline credentials": (
        _set("centres.0.objectStore.secretAccessKey", "hunter2"),
        ["centres[0].objectStore: credentials must not be written inline"],
    ),
    "continuous target without an RPO": (
        _set("drReplicas.0.targets.0.rpoTarget", _DELETE),
        ["drReplicas[0].targets[0].rpoTarget: a Continuous target needs rpoTarget"],
    ),
    "scheduled target without a schedule": (
        _set("drReplicas.2.targets.0.schedule", _DELETE),
        ["drReplicas[2].targets[0].schedule: a Scheduled target needs a cron schedule"],
    ),
    "active centre outside the replica": (
        _set("drReplicas.2.activeCentre", "fz-samecity-dr"),
        ["drReplicas[2].activeCentre: must be the source centre or the centre of one of the targets"],
    ),
    "action on a centre outside the replica": (
        _set(
            "drReplicas.2.action",
            {"type": "Failover", "targetCentre": "fz-samecity-dr", "requestId": "CHG-1"},
        ),
        ["drReplicas[2].action.targetCentre: must be the source centre or the centre of one of the targets"],
    ),
    "target is the source bucket": (
        _set("drReplicas.2.targets.0.centre", "fz-prod"),
        ["drReplicas[2].targets[0]: a target must not be the source bucket itself"],
    ),
    "two targets nested in one bucket": (
        _set(
            "drReplicas.0.targets.1",
            {
                "name": "again",
                "centre": "fz-samecity-dr",
                "bucket": "population-records",
                "prefix": "2024",
                "mode": "Scheduled",
                "schedule": "0 2 * * *",
            },
        ),
        [
            "drReplicas[0].targets[1]: two targets in one centre and bucket must have prefixes that do not "
            "contain one another"
        ],
    ),
    "heartbeat grace shorter than period": (
        _set("cities.4.heartbeat", {"period": "60s", "grace": "30s"}),
        ["cities[4].heartbeat: grace must be at least period (got 60s and 30s)"],
    ),
    "probe interval under a second": (
        _set("centres.0.probe", {"interval": "500ms", "timeout": "100ms"}),
        ["centres[0].probe.interval: must be at least 1s (got '500ms')"],
    ),
    "egress to a non-CIDR": (
        _set("dataZones.1.network.egress.0.cidr", "10.20.0.0"),
        ["dataZones[1].network.egress[0].cidr: must be a CIDR block such as 10.20.0.0/16 (got '10.20.0.0')"],
    ),
    "system group granted access": (
        _set("dataZones.0.access.admins", ["system:masters"]),
        ["dataZones[0].access.admins[0]: must not be a system: group other than system:authenticated"],
    ),
    "core zone without same-city DR": (
        _set("drReplicas.0.targets.0.centre", "xm-remote-dr"),
        [
            "drReplicas[0].targets: zone population is Core and needs "
            "a Continuous target on a SameCityDR centre"
        ],
    ),
    "remote DR in the production city": (
        _set("centres.2.city", "350100"),
        ["centres[2].city: a RemoteDR centre must stand in another city than the production centre (350100)"],
    ),
    "unknown field": (
        _set("census.retention", 12),
        ["census.retention: is not a known field"],
    ),
    "missing required field": (
        _set("cities.3.cluster", _DELETE),
        ["cities[3].cluster: is required"],
    ),
    "bad DNS name": (
        _set("centres.0.name", "FZ_Prod"),
        ["centres[0].name: must be a lower-case DNS name such as fz-prod (got 'FZ_Prod')"],
    ),
    "probe timeout longer than interval": (
        _set("centres.1.probe.timeout", "30s"),
        ["centres[1].probe: timeout must not be longer than interval (got 30s and 10s)"],
    ),
    "shared secret": (
        _set("cities.1.cluster.kubeconfigSecretRef.name", "city-fuzhou-kubeconfig"),
        ["Secret datacloud-system/city-fuzhou-kubeconfig is already the Secret of city fuzhou"],
    ),
    "duplicate zone namespace": (
        _set("dataZones.2.namespaces", ["zone-health"]),
        ["dataZones[2].namespaces[0]: namespace zone-health already belongs to zone health"],
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_topology_is_refused_with_the_path_and_the_problem(case: str) -> None:
    change, expected = MALFORMED[case]
    with pytest.raises(topology.TopologyError) as err:
        topology.parse(_mutate(change), "topology.yaml")
    message = str(err.value)
    assert message.startswith("topology.yaml: malformed topology")
    for text in expected:
        assert text in message
    assert "Traceback" not in message
    assert all(": " in p and "[line " in p for p in err.value.problems), "each problem has a path and a line"


def test_the_line_of_the_problem_is_given() -> None:
    text = (
        (INFRA / "topology.yaml")
        .read_text(encoding="utf-8")
        .replace("classification: General", "classification: Secret")
    )
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "classification: Secret" in s)
    with pytest.raises(topology.TopologyError) as err:
        topology.parse(text, "topology.yaml")
    assert err.value.problems == [
        f"dataZones[2].classification: must be one of Core, Important, General (got 'Secret') [line {line}]"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("centres: [\n  {name: a\n", "not valid YAML at line"),
        ("- just a list\n", "must be a mapping with centres, cities"),
        ("centres: []\ncities: []\ncentres: []\n", r"centres: is given twice \(lines 1 and 3\)"),
    ],
)
def test_text_that_is_not_a_topology_is_refused(text: str, expected: str) -> None:
    with pytest.raises(topology.TopologyError, match=expected):
        topology.parse(text, "topology.yaml")


def test_the_program_stops_on_a_malformed_topology_before_declaring_anything(tmp_path: Path) -> None:
    bad = tmp_path / "topology.yaml"
    bad.write_text(_mutate(_set("cities.9.cityCode", "350100")), encoding="utf-8")
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, project="datacloud", stack="dev", preview=False)
    pulumi.runtime.set_all_config({**stack_config("dev"), "datacloud:topology": str(bad)})
    with pytest.raises(
        pulumi.RunError, match=r"cities\[9\]\.cityCode: 350100 is already the city of cities\[0\]"
    ):
        program.deploy()
    assert mocks.resources == {}


def test_every_cel_rule_of_the_crds_is_mirrored_by_the_topology_checks() -> None:
    """The API server runs CEL rules the pydantic models cannot; topology.py mirrors each one. A new rule
    in operator/datacloud/api fails this test until topology.py checks it too (then list it here)."""
    from datacloud.api import census as census_api
    from datacloud.api import datacentre as datacentre_api
    from datacloud.api import datazone as datazone_api

    mirrored = {
        "credentials must not be written inline: put them in a Secret and name it in "
        "objectStore.credentialsSecretRef",
        "probe.timeout must not be longer than probe.interval",
        "probe.interval must be at least 1s",
        "heartbeat.period must be at least 1s",
        "heartbeat.grace must be at least heartbeat.period",
        "must not be a system: group other than system:authenticated",
        "must be a CIDR block such as 10.20.0.0/16",
        "a Continuous target needs rpoTarget",
        "a Scheduled target needs a cron schedule",
        "activeCentre must be the source centre or the centre of one of the targets",
        "action.targetCentre must be the source centre or the centre of one of the targets",
        "a target must not be the source bucket itself",
        "two targets in one centre and bucket must have prefixes that do not contain one another",
        # A pydantic validator on the bucket type (api/reserved.py): ReplicaEntry is a DRReplicaSpec.
        RESERVED_MESSAGE,
        # A pydantic validator on the Duration type (api/common.py), which the topology's models use.
        "must be at most 8760h (one year)",
        # A pydantic validator on the LimitQuantity type (api/common.py) of the zone quota and limits.
        "must have an exponent of at most two digits (e99)",
        # A pydantic validator on the Bandwidth type (api/common.py) of a target's bandwidthLimit.
        "must be at least 1Ki (bytes per second); leave it unset for no limit",
        # Pydantic validators on the Endpoint type (api/datacentre.py) of a centre's object store.
        datacentre_api.USER_MSG,
        datacentre_api.EXTRA_MSG,
        datacentre_api.URL_MSG,
        datacentre_api.HOST_MSG,
        datacentre_api.PATH_MSG,
        datacentre_api.PORT_MSG,
        # A pydantic validator on the Region type (api/common.py): not digits alone.
        REGION_MSG,
        # The same URL validators (api/urls.py) on a census's prometheusUrl.
        census_api.PROMETHEUS_USER_MSG,
        # A pydantic validator on the Group type (api/datazone.py) of a zone's access groups.
        datazone_api.GROUP_SPACE_MSG,
        # The quantity pattern of the int-or-string IntOrLimitQuantity (api/common.py), read as text.
        "must be a non-negative quantity such as 500m, 2 or 4Gi",
        # A pydantic validator on the key_prefix types (api/common.py) of a replica's and a census's prefixes.
        PREFIX_SEGMENTS_MSG,
        # A model validator on a census's utilisation (api/census.py): a range query Prometheus answers.
        census_api.STEP_MIN_MSG,
        census_api.POINTS_MSG,
        # Pydantic validators on a zone's quota and limits (api/resources.py, used by api/datazone.py).
        resources.QUOTA_MSG,
        resources.CONTAINER_MSG,
        *(resources.order_message(low, high, "<resource>") for low, high in resources.ORDER),
        resources.equal_message("<resource>"),
    }

    def rules(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield from node.get("x-kubernetes-validations", [])
            for value in node.values():
                yield from rules(value)
        elif isinstance(node, list):
            for value in node:
                yield from rules(value)

    found = set()
    for crd in all_crds().values():
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        # Regex rules (self.matches) pair with a pydantic validator on the same type: already enforced.
        found |= {r["message"] for r in rules(spec) if not r["rule"].startswith("self.matches(")}
    assert found - mirrored == set(), "mirror these CEL rules in infra/topology.py"
