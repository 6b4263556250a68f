"""A census's utilisation query settings, generated, against the real API server: its schema (CEL) and
the operator's model admit exactly the same step and window pairs, and what they admit is a range query
Prometheus answers (a step of at least a second, at most 11,000 points per series)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from datacloud.api.census import POINTS_MAX, Utilisation
from datacloud.api.common import parse_duration
from tests.support.cluster import Cluster, refusal
from tests.support.zones import G

pytestmark = pytest.mark.integration
durations = st.builds(
    lambda n, unit: f"{n}{unit}", st.integers(0, 3000), st.sampled_from(["ms", "s", "m", "h"])
)


@st.composite
def step_and_window(draw: st.DrawFn) -> tuple[str, str]:
    """Any two durations, or a window a number of steps long around the 11,000-point limit."""
    step = draw(durations)
    if draw(st.booleans()):
        return step, draw(durations)
    steps = draw(st.integers(POINTS_MAX - 3, POINTS_MAX + 3))
    return step, f"{int(parse_duration(step).total_seconds() * 1000) * steps}ms"


def schema_says(cluster: Cluster, utilisation: dict[str, str]) -> str | None:
    doc = {
        "apiVersion": f"{G}/v1alpha1",
        "kind": "ComputeCensus",
        "metadata": {"name": "census-schema-probe"},
        "spec": {"schedule": "0 6 * * 1", "utilisation": utilisation},
    }
    return refusal(
        lambda: cluster.kube.custom.create_cluster_custom_object(
            G, "v1alpha1", "computecensuses", doc, dry_run="All"
        )
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=step_and_window())
def test_the_schema_and_the_model_admit_the_same_range_queries(
    cluster: Cluster, pair: tuple[str, str]
) -> None:
    step, window = pair
    said = schema_says(cluster, {"step": step, "window": window})
    try:
        Utilisation(step=step, window=window)
    except ValidationError as e:
        refused = str(e)
    else:
        refused = ""
    if refused:
        assert said is not None, f"the schema admitted what the model refuses: {refused}"
        return
    assert said is None, said
    step_s, window_s = (parse_duration(d).total_seconds() for d in (step, window))
    assert step_s >= 1
    assert window_s / step_s <= POINTS_MAX
