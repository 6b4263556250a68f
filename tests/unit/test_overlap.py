"""The overlap rule shared by the sync CLI and DRReplica admission/reconcile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.api.overlap import Place, contains, folder, odd_segment, overlap


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


# --- store identity: one name per store however its endpoint is spelled ---------------------------------

LOOPBACK = [
    *("localhost", "LocalHost", "localhost.", "s3.localhost", "127.0.0.1", "127.1", "127.0.0.2"),
    *("0x7f.0.0.1", "2130706433", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::]"),
    "0.0.0.0",  # noqa: S104 - an endpoint, not a bind address
]


def _spelled(draw: Callable[[Any], Any], host: str, port: int | None, scheme: str) -> str:
    """One of the ways a user writes the same endpoint."""
    host = "".join(c.upper() if draw(st.booleans()) else c for c in host)
    default = 443 if scheme == "https" else 80
    shown = port if port is not None else (default if draw(st.booleans()) else None)
    tail = draw(st.sampled_from(["", "/", "//", "/path/"]))
    return f"{scheme}://{host}{'' if shown is None else f':{shown}'}{tail}"


@st.composite
def loopback_pair(draw: st.DrawFn) -> tuple[str, str]:
    scheme = draw(st.sampled_from(["http", "https"]))
    port = draw(st.none() | st.integers(1, 65535))
    a, b = draw(st.sampled_from(LOOPBACK)), draw(st.sampled_from(LOOPBACK))
    return _spelled(draw, a, port, scheme), _spelled(draw, b, port, scheme)


@given(loopback_pair())
def test_every_loopback_spelling_of_one_port_is_one_store(pair: tuple[str, str]) -> None:
    from datacloud.api.overlap import store_name

    a, b = pair
    assert store_name(a) == store_name(b), pair


@given(
    st.sampled_from(["oss.fz-prod.fj.gov.cn", "10.0.0.1", "[2001:db8::1]", "例子.中国"]),
    st.integers(1, 65535),
    st.sampled_from(["http", "https"]),
    st.data(),
)
def test_a_store_is_one_name_however_spelled_and_other_ports_or_hosts_differ(
    host: str, port: int, scheme: str, data: st.DataObject
) -> None:
    from datacloud.api.overlap import store_name

    one = store_name(f"{scheme}://{host}:{port}")
    again = store_name(_spelled(data.draw, host, port, scheme))
    assert one == again
    assert store_name(f"{scheme}://{host}:{port % 65535 + 1}") != one  # another port
    assert store_name(f"{scheme}://localhost:{port}") != one  # a remote host is not this machine
    assert store_name(f"{scheme}://other-{host.strip('[]').replace(':', '-')}:{port}") != one


def test_unicode_host_and_its_punycode_are_one_store() -> None:
    from datacloud.api.overlap import store_name

    assert store_name("http://例子.中国:9000") == store_name("http://XN--fsqu00a.xn--fiqs8s:9000/")


@given(st.text())
def test_store_name_never_raises(url: str) -> None:
    from datacloud.api.overlap import store_name

    for text in (url, f"http://{url}", f"http://h:{url}", f"http://[{url}"):
        assert isinstance(store_name(text), str)


def test_no_user_or_password_in_a_store_name() -> None:
    from datacloud.api.overlap import store_name

    assert "secret" not in store_name("http://key:secret@h:9000")
    assert "secret" not in store_name("http://key:secret@h:abc")


def test_two_centres_on_one_loopback_store_are_one_store_for_the_replica_overlap() -> None:
    """A target bucket on centre b inside the source bucket on centre a, where a and b are one store
    spelled localhost and 127.0.0.1: a copy into itself, found."""
    from datacloud.api.drreplica import DRReplicaSpec
    from datacloud.api.overlap import store_name
    from datacloud.reconcile import dr_overlap

    endpoints = {"a": "http://localhost:7070", "b": "http://127.0.0.1:7070/", "c": "http://127.0.0.1:7071"}
    spec = DRReplicaSpec.model_validate(
        {
            "source": {"centre": "a", "bucket": "data"},
            "activeCentre": "a",
            "targets": [
                {"name": "same", "centre": "b", "bucket": "data", "prefix": "backup", "mode": "Continuous"}
            ],
        }
    )
    found = dr_overlap.within(spec, lambda centre: store_name(endpoints[centre]))
    assert found is not None
    assert found.reason == "OverlapsItself"
    assert "one object store, http://localhost:7070" in found.message
    elsewhere = spec.model_copy(update={"targets": [spec.targets[0].model_copy(update={"centre": "c"})]})
    assert dr_overlap.within(elsewhere, lambda centre: store_name(endpoints[centre])) is None


@given(st.lists(st.sampled_from(["", ".", "..", "...", "a", ".a", "a.", "数据"]), min_size=1, max_size=4))
def test_a_prefix_has_an_odd_segment_exactly_when_a_segment_is_empty_or_dots(parts: list[str]) -> None:
    """A final empty segment is the folder's trailing `/` (`a/`), and the empty prefix is every key."""
    prefix = "/".join(parts)
    assert odd_segment(prefix) == (any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."))


def test_a_centre_location_with_an_odd_prefix_is_refused_before_any_cluster_is_asked() -> None:
    from datacloud.commands.sync import ClusterCentres

    centres = ClusterCentres(None)
    with pytest.raises(ValueError, match=r"empty, \. or \.\. path segment"):
        centres("centre:fz-prod/bucket/a//b")
    assert centres._kube is None
