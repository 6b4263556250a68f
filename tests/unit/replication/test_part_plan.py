"""How an object is cut into parts: within S3's limits for every size S3 allows."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from datacloud.replication.copier import MAX_PARTS, MAX_PUT, MIB, CopySettings

TIB = 1024 * 1024 * MIB


@given(
    size=st.integers(min_value=1, max_value=5 * TIB),
    part_size=st.integers(min_value=5 * MIB, max_value=MAX_PUT),
)
def test_every_object_s3_allows_is_cut_into_at_most_10000_parts_that_cover_it(
    size: int, part_size: int
) -> None:
    settings = CopySettings(multipart_threshold=128 * MIB, part_size=part_size)
    ranges = settings.part_ranges(size)
    assert 1 <= len(ranges) <= MAX_PARTS
    assert [n for n, _, _ in ranges] == list(range(1, len(ranges) + 1))
    assert ranges[0][1] == 0
    assert ranges[-1][2] == size - 1
    for (_, _, last), (_, first, _) in itertools.pairwise(ranges):
        assert first == last + 1
    step = settings.part_size_for(size)
    assert step >= part_size
    assert step <= MAX_PUT
    assert all(last - first + 1 == step for _, first, last in ranges[:-1])


def test_the_configured_part_size_is_kept_while_it_fits() -> None:
    settings = CopySettings(part_size=8 * MIB)
    assert settings.part_size_for(10_000 * 8 * MIB) == 8 * MIB
    assert settings.part_size_for(10_000 * 8 * MIB + 1) == 9 * MIB
    assert len(settings.part_ranges(100 * 1024 * MIB)) == 9_310  # 11 MiB parts
