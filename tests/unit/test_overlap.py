"""The overlap rule shared by the sync CLI and DRReplica admission/reconcile."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.overlap import Place, contains, folder, overlap


def test_prefix_is_a_folder() -> None:
    assert folder("a") == "a/"
    assert folder("a/") == "a/"
    assert folder("") == ""
    assert not overlap(Place("s", "b", "photos"), Place("s", "b", "photos2"))
    assert overlap(Place("s", "b", "photos"), Place("s", "b", "photos/2024"))
    assert overlap(Place("s", "b", ""), Place("s", "b", "x"))


def test_other_store_or_bucket_never_overlaps() -> None:
    assert not overlap(Place("s1", "b", ""), Place("s2", "b", ""))
    assert not overlap(Place("s", "b1", ""), Place("s", "b2", ""))


def test_target_inside_its_source() -> None:
    assert contains(Place("s", "b", ""), Place("s", "b", "backup"))
    assert not contains(Place("s", "b", "backup"), Place("s", "b", ""))


segment = st.text(
    st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=4
)
prefix = st.lists(segment, max_size=3).map("/".join)


@given(prefix, prefix)
def test_overlap_is_symmetric_and_means_a_shared_key(a: str, b: str) -> None:
    pa, pb = Place("s", "b", a), Place("s", "b", b)
    assert overlap(pa, pb) == overlap(pb, pa)
    # a key under both exists exactly when they overlap: the longer folder + "k" is such a key
    key = max(folder(a), folder(b), key=len) + "k"
    shared = key.startswith(folder(a)) and key.startswith(folder(b))
    assert overlap(pa, pb) == shared
