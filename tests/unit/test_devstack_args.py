"""The dev stack's command line refuses values it cannot use, naming the option."""

from __future__ import annotations

import argparse

import pytest

from datacloud.devstack.cli import add_arguments


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="datacloud dev")
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("value", ["-1", "11", "abc", "2.5", ""])
def test_cities_out_of_range_or_not_a_number_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        parse("up", "--cities", value)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--cities" in err
    assert "0 to 10" in err


@pytest.mark.parametrize("value", ["0", "1", "10"])
def test_cities_in_range_is_taken(value: str) -> None:
    assert parse("up", "--cities", value).cities == int(value)
