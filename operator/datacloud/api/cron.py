"""Cron fields checked in range at admission: one CEL rule per field, each naming the field.

The shape (five fields or a macro) is checked by common.CRON; these rules add that every value of a field
lies in its range (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-7 or
sun-sat), with lists, ranges and steps. Whether a valid schedule ever fires (`0 0 31 2 *`) is left to
the operator, which reports it.
"""

from __future__ import annotations

import re
from typing import Any

MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
DAYS = "sun|mon|tue|wed|thu|fri|sat"
# (name, allowed single value) per field, in order.
FIELDS = (
    ("minute", "[0-5]?[0-9]", "0-59"),
    ("hour", "[01]?[0-9]|2[0-3]", "0-23"),
    ("day of month", "0?[1-9]|[12][0-9]|3[01]|L", "1-31"),
    ("month", f"0?[1-9]|1[0-2]|(?i:{MONTHS})", "1-12 or jan-dec"),
    ("day of week", f"[0-7]|(?i:{DAYS})|[0-7]#[1-5]|L[0-7]", "0-7 or sun-sat"),
)
MACRO = r"^@[a-z]+$"


def field_regex(value: str) -> str:
    """One field: `*`, `?`, a value or a range, with an optional /step, comma-separated."""
    item = rf"(\*|\?|({value})(-({value}))?)(/[0-9]+)?"
    return rf"{item}(,{item})*"


def field_rule(index: int) -> tuple[str, str]:
    """(regex over the whole schedule checking field `index`, message)."""
    name, value, allowed = FIELDS[index]
    regex = rf"^\s*(\S+\s+){{{index}}}({field_regex(value)})(\s|$)"
    return regex, f"the {name} field (field {index + 1}) of the schedule must be in {allowed}"


def cel_rules() -> list[dict[str, Any]]:
    rules = []
    for i in range(len(FIELDS)):
        regex, message = field_rule(i)
        rules.append({"rule": f"self.matches({MACRO!r}) || self.matches({regex!r})", "message": message})
    return rules


def check(schedule: str) -> str:
    if re.match(MACRO, schedule):
        return schedule
    for i in range(len(FIELDS)):
        regex, message = field_rule(i)
        if not re.match(regex, schedule):
            raise ValueError(message)
    return schedule
