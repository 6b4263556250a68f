"""Shared field types of the datacloud API: names, durations, quantities, cron, conditions.

Every model is a pydantic model whose JSON schema becomes the CRD schema (see `crdgen`), so a field's
constraints and description here are exactly what the API server enforces and `kubectl explain` prints.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from . import cron, quantity
from .overlap import odd_segment
from .s3names import DIGITS, REGION, REGION_MSG, is_region

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Go-style durations as Kubernetes users write them: 30s, 5m, 1h30m, 250ms.
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
# A non-negative Kubernetes quantity: 500m, 2, 4Gi, 1.5T, 1e3, 250n.
QUANTITY = quantity.NON_NEGATIVE
# Five cron fields (numbers, names, * / , - ?) or a macro; croniter checks the rest in the operator.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|hourly)"
    r"|([0-9A-Za-z*/,?-]+\s+){4}[0-9A-Za-z*/,?-]+)$"
)
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# Names shown in reports and tables: any script, but no control characters (a carriage return split a CSV
# row, a tab or escape sequence garbles a terminal) and no bidirectional embedding, override or isolate
# (U+202A-U+202E, U+2066-U+2069: one in a name reversed the rest of its `kubectl get` line). Marks such as
# U+200F, which right-to-left text may need, stay allowed.
NO_CONTROL = r"^[^\x00-\x1F\x7F\x{202A}-\x{202E}\x{2066}-\x{2069}]*$"
# S3 bucket names as the S3 rules allow them (lower case, digits, dots, hyphens; 3 to 63 characters).
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"

# The ten city data clouds of Fujian and their administrative division codes.
CITIES: dict[str, tuple[str, str]] = {
    "350100": ("福州", "Fuzhou"),
    "350200": ("厦门", "Xiamen"),
    "350300": ("莆田", "Putian"),
    "350400": ("三明", "Sanming"),
    "350500": ("泉州", "Quanzhou"),
    "350600": ("漳州", "Zhangzhou"),
    "350700": ("南平", "Nanping"),
    "350800": ("龙岩", "Longyan"),
    "350900": ("宁德", "Ningde"),
    "350128": ("平潭综合实验区", "Pingtan Comprehensive Experimental Zone"),
}
CityCode = Literal[
    "350100", "350200", "350300", "350400", "350500", "350600", "350700", "350800", "350900", "350128"
]

Name = Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)]
Label = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` rule; the message is what a person sees when it fails."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


LABEL_VALUE_MAX = 63


def name_label_msg(kind: str) -> str:
    return f"metadata.name of a {kind} must be at most {LABEL_VALUE_MAX} characters: it is a label value"


def name_rules(check: str, message: str) -> tuple[dict[str, Any], ...]:
    """A rule on metadata.name, for a kind the operator names other objects after (metadata.name admits a
    DNS subdomain of 253 characters). At the root, the only place CEL sees the name; checked on create
    only (names are immutable): on update it would refuse even the finalizer's removal, or any status
    write, of an object admitted before the rule."""
    return ({**cel(f"oldSelf.hasValue() || ({check})", message), "optionalOldSelf": True},)


def new_value_rule(check: str, message: str) -> dict[str, Any]:
    """A field rule a value is held to when it is set or changed; a value admitted before the rule is left
    alone (the operator reports it) so that an update of another field, or the finalizer's removal, is
    not refused for it."""
    return {
        **cel(f"(oldSelf.hasValue() && oldSelf.value() == self) || ({check})", message),
        "optionalOldSelf": True,
    }


def name_label_rules(kind: str) -> tuple[dict[str, Any], ...]:
    """For a kind whose name labels what the operator writes for it (label values are at most 63)."""
    return name_rules(f"self.metadata.name.size() <= {LABEL_VALUE_MAX}", name_label_msg(kind))


def regex_field(pattern: str, message: str, max_length: int, *more: dict[str, Any]) -> Any:
    """Schema part of a regex-checked string: a CEL rule, so `kubectl apply` shows `message`, then any
    `more` rules (each guarded by the pattern where it needs a well-formed value)."""
    rule: dict[str, Any] = {"rule": f"self.matches({pattern!r})", "message": message}
    return Field(max_length=max_length, json_schema_extra={"x-kubernetes-validations": [rule, *more]})


def _regex_check(pattern: str, message: str) -> AfterValidator:
    """The same regex, checked by pydantic when the operator parses a spec."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


_DURATION_MSG = "must be a duration such as 30s, 5m or 1h30m"
_QUANTITY_MSG = "must be a non-negative quantity such as 500m, 2 or 4Gi"
_CRON_MSG = "must be a cron schedule of five fields such as '0 2 * * *', or a macro like @daily"
_BUCKET_MSG = "must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots or hyphens"
# The longest duration any field takes. Without a bound the pattern admits `99999999999999999999h`,
# which no clock or timer can hold (Python's timedelta and wait timeouts overflow).
DURATION_MAX = "8760h"
DURATION_MAX_S = 8760 * 3600.0
_DURATION_MAX_MSG = f"must be at most {DURATION_MAX} (one year)"


def _within_max(value: str) -> str:
    parse_duration(value)  # ValueError beyond DURATION_MAX
    return value


Duration = Annotated[
    str,
    regex_field(
        DURATION,
        _DURATION_MSG,
        32,
        cel(
            f"!self.matches({DURATION!r}) || duration(self) <= duration({DURATION_MAX!r})", _DURATION_MAX_MSG
        ),
    ),
    _regex_check(DURATION, _DURATION_MSG),
    AfterValidator(_within_max),
]
Quantity = Annotated[str, regex_field(QUANTITY, _QUANTITY_MSG, 64), _regex_check(QUANTITY, _QUANTITY_MSG)]


def _usable_exponent(value: str) -> str:
    if re.search(quantity.LONG_EXPONENT, value):
        raise ValueError(quantity.EXPONENT_MSG)
    return value


# A quantity the operator computes with and writes into Kubernetes objects (zone quotas and limits): the
# exponent at most two digits, which the API server can hold (`1e999999999` times its request out).
LimitQuantity = Annotated[
    str,
    regex_field(
        QUANTITY, _QUANTITY_MSG, 64, cel(f"!self.matches({quantity.LONG_EXPONENT!r})", quantity.EXPONENT_MSG)
    ),
    _regex_check(QUANTITY, _QUANTITY_MSG),
    AfterValidator(_usable_exponent),
]


def _number_as_text(value: Any) -> Any:
    """A whole number written unquoted (`pods: 10`) as the quantity text it means; `yes`/`no` (YAML
    booleans) are not numbers."""
    if isinstance(value, bool):
        raise ValueError(_QUANTITY_MSG)
    return str(value) if isinstance(value, int) else value


# A LimitQuantity that may also be written as a bare whole number, as Kubernetes' own ResourceQuota and
# LimitRange take it (`pods: 10`, `cpu: 2`): the schema is int-or-string and the rules read either as text.
# A fraction written bare (`cpu: 0.5`) is refused by the API server as neither (quote it: "0.5" or 500m).
IntOrLimitQuantity = Annotated[
    str,
    BeforeValidator(_number_as_text),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": 64,
            "x-kubernetes-validations": [
                cel(f"string(self).matches({QUANTITY!r})", _QUANTITY_MSG),
                cel(f"!string(self).matches({quantity.LONG_EXPONENT!r})", quantity.EXPONENT_MSG),
            ],
        },
        mode="validation",
    ),
    _regex_check(QUANTITY, _QUANTITY_MSG),
    AfterValidator(_usable_exponent),
]
_BANDWIDTH_MIN_MSG = "must be at least 1Ki (bytes per second); leave it unset for no limit"


def _at_least_1ki(value: str) -> str:
    if quantity.parse_quantity(value) < 1024:
        raise ValueError(_BANDWIDTH_MIN_MSG)
    return value


# Bytes per second. Below 1Ki it was taken as no limit at all: 0 and 500m are falsy once made whole bytes.
Bandwidth = Annotated[
    str,
    regex_field(
        QUANTITY,
        _QUANTITY_MSG,
        64,
        cel(f"!self.matches({quantity.LONG_EXPONENT!r})", quantity.EXPONENT_MSG),
        cel(
            f"!self.matches({QUANTITY!r}) || self.matches({quantity.LONG_EXPONENT!r}) || !isQuantity(self) "
            "|| quantity(self).compareTo(quantity('1Ki')) >= 0",
            _BANDWIDTH_MIN_MSG,
        ),
    ),
    _regex_check(QUANTITY, _QUANTITY_MSG),
    AfterValidator(_usable_exponent),
    AfterValidator(_at_least_1ki),
]
Cron = Annotated[
    str,
    regex_field(CRON, _CRON_MSG, 128, *cron.cel_rules()),  # then each field in its range, named
    _regex_check(CRON, _CRON_MSG),
    AfterValidator(cron.check),
]
Bucket = Annotated[str, regex_field(BUCKET, _BUCKET_MSG, 63), _regex_check(BUCKET, _BUCKET_MSG)]


def _region(value: str) -> str:
    if not is_region(value):
        raise ValueError(REGION_MSG)
    return value


Region = Annotated[
    str,
    regex_field(REGION, REGION_MSG, 63, cel(f"!self.matches({DIGITS!r})", REGION_MSG)),
    AfterValidator(_region),
]
# A key of a Secret's data as the API server admits it (letters, digits, '-', '_', '.'; not '.' and not
# starting with '..'). A key outside these can never be in the Secret the field names.
SECRET_KEY = r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
SECRET_KEY_MSG = (
    "must be a Secret data key: letters, digits, '-', '_' or '.', not '.' and not starting with '..'"
)
SecretKey = Annotated[
    str, regex_field(SECRET_KEY, SECRET_KEY_MSG, 253), _regex_check(SECRET_KEY, SECRET_KEY_MSG)
]


class Model(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, unset optional fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def durations_valid(*fields: str) -> str:
    """A CEL guard, false when every field parses as a duration: `guard || rule` leaves malformed
    durations to their own readable message instead of a second, confusing one."""
    return "(" + " || ".join(f"!{f}.matches({DURATION!r})" for f in fields) + ")"


def with_rules(*rules: dict[str, Any]) -> ConfigDict:
    """Model config carrying object-level CEL rules (cross-field checks the API server runs)."""
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"x-kubernetes-validations": list(rules)},
    )


class LooseModel(Model):
    """Status models: the operator writes them; extra keys from newer versions are tolerated on read."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SecretRef(Model):
    """A reference to a Secret; credentials are never written into a custom resource."""

    name: Name = Field(description="Name of the Secret.")
    namespace: Label = Field(description="Namespace of the Secret.")


class LocalizedName(Model):
    """A display name in Chinese and English; reports show both."""

    zh: str = Field(
        min_length=1,
        max_length=64,
        pattern=NO_CONTROL,
        description="Chinese name, e.g. 厦门 (no control characters).",
    )
    en: str = Field(
        min_length=1,
        max_length=128,
        pattern=NO_CONTROL,
        description="English name, e.g. Xiamen (no control characters).",
    )


class Condition(LooseModel):
    """A standard Kubernetes condition."""

    type: str = Field(description="Condition type, e.g. Ready or Available.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="One CamelCase word saying why.")
    message: str = Field(default="", description="A sentence for people.")
    last_transition_time: str | None = Field(
        default=None, description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed from."
    )


class StatusBase(LooseModel):
    """Fields every kind's status carries."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the operator last reconciled."
    )
    phase: str | None = Field(default=None, description="One word summarising the state.")
    conditions: list[Condition] | None = Field(
        default=None, description="Standard conditions; see each kind's documentation for the types."
    )


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration such as `1h30m` or `250ms`; ValueError on anything else."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if not seconds <= DURATION_MAX_S:
        raise ValueError(f"{text!r} {_DURATION_MAX_MSG}")
    return timedelta(seconds=seconds)


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity (`500m`, `4Gi`, `1e3`) as a float, for gauges and comparisons; the exact
    value and the grammar are in `quantity`. ValueError on anything that is not a quantity."""
    return float(quantity.parse_quantity(text))


PREFIX = r"^([^/].*)?$"
# A key prefix is a folder path in most stores: versitygw stores `a//b/k` as `a/b/k` and `./k` as `k`, and
# refuses `../k`, so a prefix with an empty, `.` or `..` segment names keys that are not where it says
# (a listing of `a//b/` misses them, a fence on `a//b/*` does not match `a/b/k`) or cannot be written.
PREFIX_SEGMENTS_MSG = (
    "must not contain an empty, . or .. path segment (a//b, ./, ../): object stores keep such keys under "
    "another name or refuse them"
)
_DOT_SEGMENT = r"(^|/)\.{1,2}(/|$)"  # the CEL twin of overlap.odd_segment (a leading `/`: PREFIX)


def _plain_segments(value: str) -> str:
    if odd_segment(value):
        raise ValueError(PREFIX_SEGMENTS_MSG)
    return value


# What a key prefix field carries: `Annotated[str, Field(max_length=N, **PREFIX_FIELD), PLAIN_SEGMENTS]`.
PREFIX_FIELD: dict[str, Any] = {
    "pattern": PREFIX,
    "json_schema_extra": {
        "x-kubernetes-validations": [
            cel(f"!self.contains('//') && !self.matches({_DOT_SEGMENT!r})", PREFIX_SEGMENTS_MSG)
        ]
    },
}
PLAIN_SEGMENTS = AfterValidator(_plain_segments)
