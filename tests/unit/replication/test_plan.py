from __future__ import annotations

import pytest

from datacloud.replication.listing import ObjectInfo, Pair, Relation
from datacloud.replication.plan import Step, decide

SRC = ObjectInfo("k", 3, "s")
DST = ObjectInfo("k", 3, "t")


@pytest.mark.parametrize(
    ("relation", "source", "target", "mirror", "retain"),
    [
        (Relation.ONLY_SOURCE, SRC, None, Step.COPY, Step.COPY),
        (Relation.SIZE_DIFFERS, SRC, DST, Step.COPY, Step.COPY),
        (Relation.ETAG_DIFFERS, SRC, DST, Step.CHECK, Step.CHECK),
        (Relation.SAME, SRC, DST, Step.SKIP, Step.SKIP),
        (Relation.ONLY_TARGET, None, DST, Step.DELETE, Step.KEEP),
    ],
)
def test_decide(
    relation: Relation, source: ObjectInfo | None, target: ObjectInfo | None, mirror: Step, retain: Step
) -> None:
    pair = Pair(relation, source, target)
    assert decide(pair, "mirror").step is mirror
    assert decide(pair, "retain").step is retain
    assert decide(pair, "mirror").key == "k"


@pytest.mark.parametrize(
    ("source_modified", "target_modified", "step"),
    [
        (100.0, 200.0, Step.SKIP),  # copied after the source was written: in sync
        (200.0, 200.0, Step.SKIP),  # the same second: nothing to tell them apart
        (300.0, 200.0, Step.CHECK),  # the source changed after the copy, maybe only its metadata
        (300.0, 0.0, Step.SKIP),  # a store that gives no time: trust size and ETag
    ],
)
def test_same_content_is_checked_when_the_source_changed_after_the_copy(
    source_modified: float, target_modified: float, step: Step
) -> None:
    pair = Pair(
        Relation.SAME, ObjectInfo("k", 3, "e", source_modified), ObjectInfo("k", 3, "e", target_modified)
    )
    assert decide(pair, "mirror").step is step
