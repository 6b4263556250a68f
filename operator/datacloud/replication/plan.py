"""What to do about each pair of the merge-join: copy, check the recorded source ETag, delete or skip."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from .listing import ObjectInfo, Pair, Relation

DeletePolicy = Literal["mirror", "retain"]


class Step(Enum):
    COPY = "copy"
    CHECK = "check"  # read the target's recorded source ETag, copy only if it differs
    DELETE = "delete"
    SKIP = "skip"  # in sync already
    KEEP = "keep"  # exists only on the target and the policy retains it


@dataclass(frozen=True, slots=True)
class Action:
    step: Step
    key: str
    source: ObjectInfo | None = None
    target: ObjectInfo | None = None

    @property
    def size(self) -> int:
        return self.source.size if self.source else 0


def plan(pairs: Iterable[Pair], delete: DeletePolicy) -> Iterator[Action]:
    for pair in pairs:
        yield decide(pair, delete)


def decide(pair: Pair, delete: DeletePolicy) -> Action:
    key = pair.key
    match pair.relation:
        case Relation.ONLY_SOURCE | Relation.SIZE_DIFFERS:
            return Action(Step.COPY, key, pair.source, pair.target)
        case Relation.ETAG_DIFFERS:
            return Action(Step.CHECK, key, pair.source, pair.target)
        case Relation.SAME:
            return Action(Step.SKIP, key, pair.source, pair.target)
        case Relation.ONLY_TARGET:
            step = Step.DELETE if delete == "mirror" else Step.KEEP
            return Action(step, key, None, pair.target)
    raise AssertionError(pair.relation)
