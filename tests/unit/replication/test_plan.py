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
