"""The resources of the provincial topology: the operator's chart, the custom resources, the credential
Secrets and the DR buckets on every centre. `__main__` calls `deploy()`; the tests call it under mocks.

Order matters to a real `pulumi up`: namespaces, then the chart (which installs the CRDs), then Secrets,
then the custom resources that name them. DR replicas also wait for their source and target buckets, so
the operator never starts a sync into a bucket that does not exist yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from topology import CentreEntry, Topology, TopologyError, load

from datacloud import API_VERSION, GROUP
from datacloud.builders.datazone_profile import LABEL_ZONE

HERE = Path(__file__).resolve().parent
RELEASE = "datacloud-operator"
MANAGED = {"app.kubernetes.io/part-of": "datacloud", "app.kubernetes.io/managed-by": "pulumi"}


@dataclass(frozen=True)
class StackSettings:
    """Per-stack configuration (Pulumi.<stack>.yaml, namespace `datacloud`)."""

    topology: Path
    namespace: str = "datacloud-system"
    chart: str = "../charts/datacloud-operator"
    chart_values: Mapping[str, Any] = field(default_factory=dict)
    object_stores: Mapping[str, Any] = field(default_factory=dict)
    s3_path_style: bool = True
    bucket_versioning: bool = True
    protect: bool = True


@dataclass(frozen=True)
class CentreKeys:
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]


@dataclass(frozen=True)
class Credentials:
    """Secret config values: each centre's access key pair and each city's kubeconfig."""

    centres: Mapping[str, CentreKeys]
    kubeconfigs: Mapping[str, pulumi.Output[str]]


@dataclass
class Deployment:
    """Everything `build` declared, by name, for exports and tests."""

    namespaces: dict[str, k8s.core.v1.Namespace] = field(default_factory=dict)
    release: k8s.helm.v3.Release | None = None
    secrets: dict[tuple[str, str], k8s.core.v1.Secret] = field(default_factory=dict)
    providers: dict[str, aws.Provider] = field(default_factory=dict)
    buckets: dict[tuple[str, str], aws.s3.Bucket] = field(default_factory=dict)
    custom_resources: dict[str, k8s.apiextensions.CustomResource] = field(default_factory=dict)


# --- configuration ---------------------------------------------------------------------------------------


def read_settings(config: pulumi.Config) -> StackSettings:
    """The stack's settings; the topology path is relative to this directory."""
    return StackSettings(
        topology=HERE / (config.get("topology") or "topology.yaml"),
        namespace=config.get("namespace") or "datacloud-system",
        chart=config.get("chart") or "../charts/datacloud-operator",
        chart_values=config.get_object("chartValues") or {},
        object_stores=config.get_object("objectStores") or {},
        s3_path_style=_flag(config, "s3PathStyle", True),
        bucket_versioning=_flag(config, "bucketVersioning", True),
        protect=_flag(config, "protect", True),
    )


def _flag(config: pulumi.Config, key: str, default: bool) -> bool:
    value = config.get_bool(key)
    return default if value is None else value


def secret_keys(topology: Topology) -> list[str]:
    """The secret config keys the topology needs: each centre's key pair, each city's kubeconfig."""
    keys = []
    for centre in topology.centres:
        keys += [f"centre-{centre.name}-access-key-id", f"centre-{centre.name}-secret-access-key"]
    keys += [f"city-{city.name}-kubeconfig" for city in topology.cities]
    return keys


def read_credentials(config: pulumi.Config, topology: Topology) -> Credentials:
    """Every credential from secret config; all missing or plain-text ones reported together."""
    missing, plain = [], []
    for key in secret_keys(topology):
        full = f"{config.name}:{key}"
        if pulumi.runtime.get_config(full) is None:
            missing.append(key)
        elif not pulumi.runtime.is_config_secret(full):
            plain.append(key)
    if missing or plain:
        problems = [
            f"{config.name}:{k}: not set; run `pulumi config set --secret {config.name}:{k}`" for k in missing
        ]
        problems += [
            f"{config.name}:{k}: stored in plain text; set it again with `pulumi config set --secret`"
            for k in plain
        ]
        raise TopologyError(f"stack {pulumi.get_stack()}", problems, "credentials missing or unsafe")

    def secret(key: str) -> pulumi.Output[str]:
        return config.require_secret(key)

    return Credentials(
        centres={
            c.name: CentreKeys(
                secret(f"centre-{c.name}-access-key-id"), secret(f"centre-{c.name}-secret-access-key")
            )
            for c in topology.centres
        },
        kubeconfigs={city.name: secret(f"city-{city.name}-kubeconfig") for city in topology.cities},
    )


# --- resources -------------------------------------------------------------------------------------------


def build(topology: Topology, settings: StackSettings, credentials: Credentials) -> Deployment:
    """Declare every resource of the topology."""
    out = Deployment()
    for ns in _namespaces(topology, settings):
        out.namespaces[ns] = k8s.core.v1.Namespace(
            f"namespace-{ns}", metadata=k8s.meta.v1.ObjectMetaArgs(name=ns, labels=MANAGED)
        )
    release = out.release = k8s.helm.v3.Release(
        RELEASE,
        k8s.helm.v3.ReleaseArgs(
            name=RELEASE,
            chart=settings.chart,
            namespace=settings.namespace,
            create_namespace=False,
            values=dict(settings.chart_values),
            atomic=True,
            cleanup_on_fail=True,
        ),
        opts=pulumi.ResourceOptions(depends_on=[out.namespaces[settings.namespace]]),
    )
    _secrets(topology, credentials, out)
    _buckets(topology, settings, credentials, out)

    def custom(
        kind: str,
        name: str,
        spec: Mapping[str, Any],
        deps: Sequence[pulumi.Resource],
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        key = f"{kind.lower()}-{namespace}-{name}" if namespace else f"{kind.lower()}-{name}"
        out.custom_resources[key] = k8s.apiextensions.CustomResource(
            key,
            api_version=API_VERSION,
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=namespace, labels={**MANAGED, **(labels or {})}
            ),
            spec=dict(spec),
            opts=pulumi.ResourceOptions(depends_on=[release, *deps]),
        )

    for c in topology.centres:
        ref = c.object_store.credentials_secret_ref
        custom("DataCentre", c.name, c.spec().wire(), [out.secrets[(ref.namespace, ref.name)]])
    for city in topology.cities:
        kref = city.cluster.kubeconfig_secret_ref
        custom("CityDataCloud", city.name, city.spec().wire(), [out.secrets[(kref.namespace, kref.name)]])
    for z in topology.data_zones:
        custom("DataZone", z.name, z.spec().wire(), [])
    for r in topology.dr_replicas:
        ends = [(r.source.centre, r.source.bucket), *((t.centre, t.bucket) for t in r.targets)]
        labels = {LABEL_ZONE: r.zone} if r.zone else {}
        deps = [out.namespaces[r.namespace], *(out.buckets[e] for e in dict.fromkeys(ends))]
        custom("DRReplica", r.name, r.spec().wire(), deps, namespace=r.namespace, labels=labels)
    if topology.census:
        census = topology.census
        store = census.reports.object_store
        census_deps: list[pulumi.Resource] = [out.buckets[(store.centre, store.bucket)]] if store else []
        if census.reports.config_map:
            census_deps.append(out.namespaces[census.reports.config_map.namespace])
        custom("ComputeCensus", census.name, census.spec().wire(), census_deps)
    return out


def _namespaces(topology: Topology, settings: StackSettings) -> list[str]:
    """Namespaces this program owns: the operator's, the Secrets', the DR replicas' and the census report's.
    Zone namespaces are not among them: each DataZone creates and owns its own."""
    names = [settings.namespace]
    names += [c.object_store.credentials_secret_ref.namespace for c in topology.centres]
    names += [city.cluster.kubeconfig_secret_ref.namespace for city in topology.cities]
    names += [r.namespace for r in topology.dr_replicas]
    if topology.census and topology.census.reports.config_map:
        names.append(topology.census.reports.config_map.namespace)
    return list(dict.fromkeys(names))


def _secrets(topology: Topology, credentials: Credentials, out: Deployment) -> None:
    for c in topology.centres:
        ref = c.object_store.credentials_secret_ref
        keys = credentials.centres[c.name]
        data = {ref.access_key_id_key: keys.access_key_id, ref.secret_access_key_key: keys.secret_access_key}
        out.secrets[(ref.namespace, ref.name)] = _secret(
            out, ref.namespace, ref.name, data, f"centre {c.name}"
        )
    for city in topology.cities:
        kref = city.cluster.kubeconfig_secret_ref
        data = {kref.key: credentials.kubeconfigs[city.name]}
        out.secrets[(kref.namespace, kref.name)] = _secret(
            out, kref.namespace, kref.name, data, f"city {city.name}"
        )


def _secret(
    out: Deployment, namespace: str, name: str, data: Mapping[str, pulumi.Output[str]], owner: str
) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        f"secret-{namespace}-{name}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            namespace=namespace,
            labels=MANAGED,
            annotations={f"{GROUP}/credentials-of": owner},
        ),
        type="Opaque",
        string_data=dict(data),
        opts=pulumi.ResourceOptions(depends_on=[out.namespaces[namespace]]),
    )


def _buckets(topology: Topology, settings: StackSettings, credentials: Credentials, out: Deployment) -> None:
    """One AWS provider per centre, pointed at its S3-compatible store, and the buckets declared there."""
    uses = topology.bucket_uses()
    for c in topology.centres:
        if not c.buckets:
            continue
        provider = out.providers[c.name] = _provider(c, settings, credentials.centres[c.name])
        for name in c.buckets:
            roles = sorted({use.split(":")[0] for use in uses.get((c.name, name), [])}) or ["unused"]
            opts = pulumi.ResourceOptions(provider=provider, protect=settings.protect)
            bucket = out.buckets[(c.name, name)] = aws.s3.Bucket(
                f"bucket-{c.name}-{name}",
                bucket=name,
                force_destroy=False,
                tags={f"{GROUP}/centre": c.name, f"{GROUP}/uses": " ".join(roles), "managed-by": "pulumi"},
                opts=opts,
            )
            if settings.bucket_versioning:
                aws.s3.BucketVersioning(
                    f"versioning-{c.name}-{name}",
                    bucket=bucket.id,
                    versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                        status="Enabled"
                    ),
                    opts=opts,
                )


def _provider(c: CentreEntry, settings: StackSettings, keys: CentreKeys) -> aws.Provider:
    # An S3-compatible store, not AWS: no STS, no account id, no instance metadata, any region name.
    return aws.Provider(
        f"s3-{c.name}",
        region=c.object_store.region,
        access_key=keys.access_key_id,
        secret_key=keys.secret_access_key,
        endpoints=[aws.ProviderEndpointArgs(s3=c.object_store.endpoint)],
        s3_use_path_style=settings.s3_path_style,
        skip_credentials_validation=True,
        skip_requesting_account_id=True,
        skip_metadata_api_check=True,
        skip_region_validation=True,
    )


# --- the program -----------------------------------------------------------------------------------------


def deploy(config: pulumi.Config | None = None) -> Deployment:
    """The whole program: read the stack's settings and topology, declare everything, export a summary.
    A malformed topology or missing credential stops it with one clear message and no stack trace."""
    config = config or pulumi.Config("datacloud")
    try:
        settings = read_settings(config)
        topology = load(settings.topology).with_object_stores(
            settings.object_stores, f"{config.name}:objectStores"
        )
        credentials = read_credentials(config, topology)
    except TopologyError as err:
        raise pulumi.RunError(str(err)) from None
    out = build(topology, settings, credentials)
    pulumi.export("centres", {c.name: c.role for c in topology.centres})
    pulumi.export("cities", {city.city_code: city.name for city in topology.cities})
    pulumi.export("buckets", {c.name: list(c.buckets) for c in topology.centres})
    pulumi.export("endpoints", {c.name: c.object_store.endpoint for c in topology.centres})
    pulumi.export("operatorRelease", out.release.name if out.release else None)
    return out
