from __future__ import annotations

import pytest

from datacloud.replication.shard import Shard, parse_shard, shard_of

KEYS = [f"obj/{i}" for i in range(3000)] + ["福建/数据", "a b", "+%#?", ""]


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_partition_the_key_space(count: int) -> None:
    owned = [{k for k in KEYS if Shard(i, count).owns(k)} for i in range(count)]
    assert set().union(*owned) == set(KEYS)  # no gap
    assert sum(len(o) for o in owned) == len(KEYS)  # no overlap
    if count > 1:
        assert all(len(o) > len(KEYS) / count / 2 for o in owned)  # roughly even


def test_ownership_is_pinned() -> None:
    # A change of hash would silently move keys between the pods of a running sharded Job.
    assert [shard_of(k, 4) for k in ("a", "b", "福建/数据", "obj/1")] == [0, 1, 0, 1]
    assert shard_of("obj/1", 1_000_003) == 797820


@pytest.mark.parametrize("text", ["3/2", "2/2", "1", "a/b", "-1/3", "1/0", "", "1/2/3", " / "])
def test_malformed_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_parse_shard() -> None:
    assert parse_shard("0/1") == Shard(0, 1)
    assert parse_shard(" 2/5 ") == Shard(2, 5)
    assert str(Shard(2, 5)) == "2/5"
    with pytest.raises(ValueError, match="shard"):
        Shard(5, 5)
