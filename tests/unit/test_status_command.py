"""`datacloud status` rendering and kubectl's namespace conventions, without a cluster."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from datacloud.cli import build_parser
from datacloud.commands import kubecontext
from datacloud.commands import status as cmd


def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def centre(name: str, health: str, *conds: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 1},
        "spec": {"city": "350100", "role": "SameCityDR"},
        "status": {
            "health": health,
            "lastProbeLatencyMs": 12,
            "observedGeneration": 1,
            "conditions": list(conds),
        },
    }


def city(name: str, message: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 2},
        "spec": {"cityCode": "350300", "displayName": {"zh": "莆田", "en": "Putian"}},
        "status": {
            "observedGeneration": 1,
            "conditions": [cond("Available", "False", "SecretNotFound", message)],
        },
    }


def replica(name: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "datacloud-dr", "generation": 1},
        "spec": {
            "targets": [{"name": "same-city", "mode": "Continuous"}, {"name": "remote", "mode": "Scheduled"}]
        },
        "status": {
            "observedGeneration": 1,
            "phase": "Degraded",
            "activeCentre": "fz-prod",
            "targets": targets,
            "conditions": [
                cond("ReferencesValid", "False", "SourceBucketMissing", "bucket x does not exist in fz-prod"),
                cond("RPOCompliant", "Unknown", "SourceBucketMissing", "nothing to measure"),
            ],
        },
    }


def render(width: int, **kinds: list[dict[str, Any]]) -> list[str]:
    console = Console(width=width, record=True, highlight=False, soft_wrap=False, file=io.StringIO())
    console.print(cmd.centres_table(kinds.get("centres", [])))
    console.print(cmd.cities_table(kinds.get("cities", [])))
    console.print(cmd.replicas_table(kinds.get("replicas", []), True))
    late = cmd.behind({"CityDataCloud": kinds.get("cities", []), "DataCentre": kinds.get("centres", [])})
    if late is not None:
        console.print(late)
    return console.export_text().splitlines()


def words(lines: list[str]) -> str:
    """The text with wrapping undone, to look for a phrase the REASON column may have wrapped."""
    return " ".join(" ".join(lines).split())


def test_a_city_that_is_not_available_says_why_and_that_it_is_behind() -> None:
    lines = render(120, cities=[city("putian", "Secret datacloud-system/city-putian-kubeconfig not found")])
    text = words(lines)
    assert "SecretNotFound: Secret datacloud-system/city-putian-kubeconfig" in text
    assert "status is for generation 1, the spec is at 2" in text
    assert max(cell_len(line) for line in lines) <= 120


def test_every_condition_the_operator_writes_can_be_the_reason_shown() -> None:
    """A census whose reports could not be stored, a city whose centre does not exist, a zone whose
    quota was refused: each says why, whatever condition type it is (a type the table did not list was
    never shown: ReportsStored was looked up as ReportsWritten)."""
    census = {
        "metadata": {"name": "weekly", "generation": 1},
        "spec": {"schedule": "@weekly"},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                cond("Ready", "True", "ScheduleValid", ""),
                cond("LastRunSucceeded", "True", "Succeeded", ""),
                cond("ReportsStored", "False", "StoreFailed", "ConfigMap ns/x: 404 Not Found"),
            ],
        },
    }
    fuzhou = city("fuzhou", "")
    fuzhou["status"]["conditions"] = [
        cond("Available", "True", "HeartbeatSucceeded", ""),
        cond("CentresResolved", "False", "CentreNotFound", "DataCentre gone does not exist"),
    ]
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(cmd.censuses_table([census]))
    console.print(cmd.cities_table([fuzhou]))
    text = words(console.export_text().splitlines())
    assert "StoreFailed: ConfigMap ns/x: 404 Not Found" in text
    assert "CentreNotFound: DataCentre gone does not exist" in text


def test_a_replica_shows_its_worst_lag_and_the_first_problem() -> None:
    targets = [{"name": "same-city", "lagSeconds": 0.4}, {"name": "remote", "lagSeconds": 7200.0}]
    text = words(render(120, replicas=[replica("r", targets)]))
    assert "2.0h remote" in text
    assert "SourceBucketMissing: bucket x does not exist in fz-prod" in text
    assert "datacloud-dr/r" in text


@settings(max_examples=30, deadline=None)
@given(
    message=st.text(min_size=0, max_size=400),
    name=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60
    ),
)
def test_every_line_fits_in_120_columns_whatever_the_messages(message: str, name: str) -> None:
    """Long messages, CJK, combining marks and emoji in names and messages: still ≤ 120 cells a line."""
    lines = render(
        120,
        centres=[centre(name, "Down", cond("Ready", "False", "ProbeFailed", message))],
        cities=[city(name, message)],
        replicas=[replica(name, [{"name": "same-city", "lagSeconds": 1e9}])],
    )
    assert max(cell_len(line) for line in lines) <= 120


_MARKUP_LIKE = st.lists(
    st.sampled_from(
        ["[/]", "[bold]", "[/bold]", "[cpuz]", "spec.hard[cpuz]", "[link=x]", "厦门", "\u0301", "x"]
    ),
    min_size=1,
    max_size=6,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(message=_MARKUP_LIKE, display=_MARKUP_LIKE)
def test_text_that_looks_like_markup_is_shown_as_written(message: str, display: str) -> None:
    """Condition messages quote servers (`spec.hard[cpuz]`) and display names are free text: rich markup
    in them dropped words (`[cpuz]`) or stopped the command (`[/]`: MarkupError)."""
    dc = centre("fz", "Down", cond("Ready", "False", "ProbeFailed", message))
    cdc = city("putian", message)
    cdc["spec"]["displayName"]["zh"] = display
    lines = render(600, centres=[dc], cities=[cdc])
    assert any(f"ProbeFailed: {message}" in line for line in lines)
    assert any(f"350300 {display}" in line for line in lines)


def write_kubeconfig(path: Path, namespace: str | None) -> Path:
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "dev", "context": context},
            {"name": "other", "context": {**context, "namespace": "ops"}},
        ],
        "current-context": "dev",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_namespace_comes_from_the_context_unless_n_or_a(tmp_path: Path) -> None:
    kc = str(write_kubeconfig(tmp_path / "kc", "datacloud-dr"))
    assert kubecontext.namespace(parse("dr", "status", "r", "--kubeconfig", kc)) == "datacloud-dr"
    assert kubecontext.namespace(parse("dr", "status", "r", "--kubeconfig", kc, "-n", "x")) == "x"
    assert (
        kubecontext.namespace(parse("dr", "status", "r", "--kubeconfig", kc, "--context", "other")) == "ops"
    )
    assert kubecontext.namespace(parse("status", "--kubeconfig", kc)) == "datacloud-dr"
    for sub in ("list", "dismiss --epoch 2", "restore --epoch 2"):
        args = parse("dr", "divergent", *sub.split(), "r", "--kubeconfig", kc)
        assert kubecontext.namespace(args) == "datacloud-dr", sub
    assert kubecontext.namespace(parse("status", "--kubeconfig", kc, "-A")) is None
    plain = str(write_kubeconfig(tmp_path / "plain", None))
    assert (
        kubecontext.namespace(parse("dr", "failover", "r", "--to", "c", "--kubeconfig", plain)) == "default"
    )
