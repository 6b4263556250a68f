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
    # Read the target's recorded source ETag (and, when the source changed after the copy was made,
    # both sides' metadata); copy only if they differ.
    CHECK = "check"
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


def source_newer(source: ObjectInfo | None, target: ObjectInfo | None) -> bool:
    """Was the source modified after the copy was written? Then same size and ETag may still hide a
    metadata-only change. (Listings give whole seconds on some stores, so a change within the same
    second as the copy is left to the next notification or write.)"""
    return source is not None and target is not None and source.modified > target.modified > 0


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
        case Relation.SAME if source_newer(pair.source, pair.target):
            return Action(Step.CHECK, key, pair.source, pair.target)
        case Relation.SAME:
            return Action(Step.SKIP, key, pair.source, pair.target)
        case Relation.ONLY_TARGET:
            step = Step.DELETE if delete == "mirror" else Step.KEEP
            return Action(step, key, None, pair.target)
    raise AssertionError(pair.relation)
