from __future__ import annotations

import threading
from typing import Any

import pytest

from datacloud.replication.errors import ListingOrderError, RetryPolicy
from datacloud.replication.listing import ObjectInfo, Relation, iter_objects, merge_join, prefetched


def obj(key: str, size: int = 1, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(key, size, etag)


def test_merge_join_pairs_every_key_once_in_order() -> None:
    source = [obj("a"), obj("b", 2), obj("c", etag="x"), obj("d"), obj("中")]
    target = [obj("0"), obj("b", 3), obj("c", etag="y"), obj("d"), obj("e"), obj("f")]

    pairs = list(merge_join(source, target))

    assert [(p.key, p.relation) for p in pairs] == [
        ("0", Relation.ONLY_TARGET),
        ("a", Relation.ONLY_SOURCE),
        ("b", Relation.SIZE_DIFFERS),
        ("c", Relation.ETAG_DIFFERS),
        ("d", Relation.SAME),
        ("e", Relation.ONLY_TARGET),
        ("f", Relation.ONLY_TARGET),
        ("中", Relation.ONLY_SOURCE),
    ]


@pytest.mark.parametrize(("source", "target"), [([], []), (["a"], []), ([], ["a"])])
def test_merge_join_with_empty_sides(source: list[str], target: list[str]) -> None:
    pairs = list(merge_join(map(obj, source), map(obj, target)))
    assert [p.key for p in pairs] == source + target


def test_merge_join_is_lazy() -> None:
    pulled: list[str] = []

    def endless(prefix: str) -> Any:
        i = 0
        while True:
            pulled.append(prefix)
            yield obj(f"{i:09d}")
            i += 1

    joined = merge_join(endless("s"), endless("t"))
    for _ in range(5):
        next(joined)
    assert len(pulled) <= 12  # memory stays bounded whatever the listing length


class PagedStore:
    """Just enough of an S3 client to serve ListObjectsV2 pages from a sorted key list."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.calls: list[dict[str, Any]] = []

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        start = int(kwargs.get("ContinuationToken", "0"))
        matching = [k for k in self.keys if k.startswith(kwargs["Prefix"])]
        page = matching[start : start + kwargs["MaxKeys"]]
        more = start + len(page) < len(matching)
        reply: dict[str, Any] = {
            "Contents": [{"Key": k, "Size": len(k), "ETag": f'"{k}"'} for k in page],
            "IsTruncated": more,
        }
        if more:
            reply["NextContinuationToken"] = str(start + len(page))
        return reply


def test_iter_objects_pages_and_strips_the_prefix() -> None:
    store = PagedStore(["other", *[f"p/{i:02d}" for i in range(10)]])

    listed = list(iter_objects(store, "b", "p/", where="test", page_size=3))

    assert [o.key for o in listed] == [f"{i:02d}" for i in range(10)]
    assert listed[0] == ObjectInfo("00", 4, "p/00")
    assert len(store.calls) == 4
    assert all(c["MaxKeys"] == 3 for c in store.calls)


def test_iter_objects_refuses_an_unsorted_listing() -> None:
    store = PagedStore(["b", "a"])
    with pytest.raises(ListingOrderError):
        list(iter_objects(store, "b", "", where="test", retry=RetryPolicy(attempts=1)))


def test_prefetched_passes_items_and_errors_through() -> None:
    def failing() -> Any:
        yield 1
        yield 2
        raise RuntimeError("listing broke")

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="listing broke"):
        seen.extend(prefetched(failing(), depth=1))
    assert seen == [1, 2]
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))


def test_prefetched_stops_when_asked() -> None:
    stop = threading.Event()

    def endless() -> Any:
        i = 0
        while True:
            yield i
            i += 1

    items = prefetched(endless(), depth=2, stop=stop)
    assert next(items) == 0
    stop.set()
    assert len(list(items)) <= 4  # drains what was buffered, then ends instead of blocking


def test_prefetched_hands_items_over_in_batches_in_order() -> None:
    def failing_mid_batch() -> Any:
        yield from range(250)
        raise RuntimeError("listing broke")

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="listing broke"):
        seen.extend(prefetched(failing_mid_batch(), depth=1000, batch=100))
    assert seen == list(range(250))  # the half batch before the failure too
    assert list(prefetched(iter(range(1234)), depth=300, batch=100)) == list(range(1234))
