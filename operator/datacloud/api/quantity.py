"""Kubernetes quantities (`500m`, `4Gi`, `1e3`, `250n`): the one parser the operator uses.

The grammar is the API server's (`resource.Quantity`): a signed decimal number and an optional suffix —
binary (`Ki` … `Ei`), decimal (`n u m k M G T P E`) or an exponent (`e3`, `E-2`). Values are exact
`Decimal`s, equal to what the kubernetes client's `parse_quantity` returns for the same text (a property
test holds the two together); unlike the client, text outside the grammar (`NaN`, ` 1`, `1_000`) is refused.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Context, Decimal, localcontext
from functools import lru_cache

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_GRAMMAR = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")

# The same grammar, non-negative, as a CRD pattern (the API server refuses the rest before the operator).
NON_NEGATIVE = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
# The largest exponent a quantity may carry (`1e99`). The grammar admits any; the API server itself does
# not finish a request holding `1e999999999` (it times out), and exact arithmetic on it would not either.
EXPONENT_MAX = 99
EXPONENT_MSG = f"must have an exponent of at most two digits (e{EXPONENT_MAX})"
LONG_EXPONENT = r"[eE][+-]?[0-9]{3,}$"
# Exact arithmetic for every value the grammar (64 characters, binary suffixes, e±99) can spell: the default
# context keeps 28 digits, which rounded 370370370370370370370370370334m to another number.
_EXACT = Context(prec=300, Emax=999, Emin=-999)


def parse_quantity(text: str) -> Decimal:
    """The exact value of a quantity; ValueError (naming the text) on anything outside the grammar."""
    m = _GRAMMAR.fullmatch(text)
    if not m:
        raise ValueError(f"not a quantity: {text!r} (expected e.g. 500m, 4Gi, 2)")
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    with localcontext(_EXACT):
        if suffix in _BINARY:
            return number * _BINARY[suffix]
        if suffix in _DECIMAL:
            return number * _DECIMAL[suffix]
        if abs(int(suffix[1:])) > EXPONENT_MAX:
            raise ValueError(f"not a usable quantity: {text!r} {EXPONENT_MSG}")
        return number.scaleb(int(suffix[1:]))


@lru_cache(maxsize=8192)
def milli(text: str) -> int:
    """A non-negative quantity in thousandths, rounded up as the API server does (`500m` → 500,
    `4Gi` → 4294967296000, `1n` → 1); ValueError on a negative or malformed one."""
    value = parse_quantity(text)
    if value < 0:
        raise ValueError(f"not a non-negative quantity: {text!r}")
    with localcontext(_EXACT):
        return int((value * 1000).to_integral_value(rounding=ROUND_CEILING))
