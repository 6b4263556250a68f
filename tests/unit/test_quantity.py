"""The one quantity parser, held against the kubernetes client's `parse_quantity` on the whole grammar."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity as client_parse_quantity

from datacloud.api.common import QUANTITY
from datacloud.api.quantity import milli, parse_quantity

digits = st.text("0123456789", min_size=1, max_size=12)
numbers = st.one_of(
    digits,
    st.builds(lambda a, b: f"{a}.{b}", digits, st.text("0123456789", max_size=9)),
    st.builds(lambda b: f".{b}", digits),
)
suffixes = st.one_of(
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"]),
    st.builds(lambda e, s, n: f"{e}{s}{n}", st.sampled_from("eE"), st.sampled_from(["", "+", "-"]),
              st.integers(0, 30).map(str)),
)  # fmt: skip
quantities = st.builds(lambda sign, n, s: f"{sign}{n}{s}", st.sampled_from(["", "+", "-"]), numbers, suffixes)


@given(quantities)
def test_every_quantity_of_the_grammar_has_the_client_s_value(text: str) -> None:
    """The client computes in Python's default 28 digits; ours is exact, and the same once rounded so."""
    assert +parse_quantity(text) == client_parse_quantity(text)  # unary plus: rounded to 28 digits


@given(st.text("123456789", min_size=29, max_size=60), st.sampled_from(["", "m", "Ei", "k", "e40"]))
def test_quantities_beyond_28_digits_are_exact(digits: str, suffix: str) -> None:
    factor = {"": 1, "m": Fraction(1, 1000), "Ei": 2**60, "k": 1000, "e40": 10**40}[suffix]
    assert Fraction(parse_quantity(digits + suffix)) == int(digits) * factor
    assert milli(digits + suffix) == math.ceil(int(digits) * factor * 1000)


@pytest.mark.parametrize("text", ["1e100", "1e999999999", "1E-100", "5e+123"])
def test_an_exponent_beyond_two_digits_is_refused_not_computed(text: str) -> None:
    with pytest.raises(ValueError, match="exponent"):
        parse_quantity(text)


@given(st.text(max_size=12))
def test_what_the_parser_accepts_the_client_reads_the_same(text: str) -> None:
    try:
        ours = parse_quantity(text)
    except ValueError:
        return
    assert ours == client_parse_quantity(text)


@given(quantities.filter(lambda t: not t.startswith("-")))
def test_milli_is_the_value_in_thousandths_rounded_up(text: str) -> None:
    exact = Fraction(parse_quantity(text)) * 1000
    assert milli(text) >= exact > milli(text) - 1


@given(quantities)
def test_the_crd_pattern_admits_exactly_the_non_negative_quantities(text: str) -> None:
    admitted = re.fullmatch(QUANTITY, text) is not None
    assert admitted == (not text.startswith("-"))


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("2", "2"), ("4Gi", 4 * 2**30), ("1.5k", 1500), ("1e3", 1000), ("250n", "2.5e-7"),
     ("3u", "3e-6"), ("2E", 2 * 10**18), ("1E3", 1000), ("1e-3", "0.001")],
)  # fmt: skip
def test_parse_quantity_examples(text: str, value: int | str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    "bad", ["", "Gi", "4GB", "four", "1..2", "4 Gi", " 1", "1_000", "NaN", "Infinity", "1Ki2"]
)
def test_parse_quantity_refuses_what_the_api_server_would(bad: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(bad)


def test_milli_refuses_negative_quantities() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        milli("-1")
