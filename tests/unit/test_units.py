"""Pure helpers of the API: durations, quantities."""

from datetime import timedelta

import pytest

from datacloud.api.common import parse_duration, parse_quantity


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1.5h", 5400), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "-5s", "5 s", "1d", "m5", "5sm"])
def test_parse_duration_refuses_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2), ("4Gi", 4 * 2**30), ("1.5k", 1500), ("1e3", 1000), ("128Mi", 128 * 2**20)],
)
def test_parse_quantity(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["", "Gi", "4GB", "four", "1..2", "4 Gi"])
def test_parse_quantity_refuses_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(bad)
