"""A DRReplica's key prefixes on a real store: every prefix the schema admits names keys that the store
keeps under exactly that name, so a listing of the prefix finds what was written under it (and a fence on
`prefix*` matches it). versitygw stores `a//b/k` as `a/b/k` and `./k` as `k`, and refuses `../k`: prefixes
with such segments are refused at admission."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from datacloud.api.common import PREFIX_SEGMENTS_MSG
from datacloud.api.drreplica import KeyPrefix
from tests.support.replication import Store

pytestmark = pytest.mark.integration
PREFIX = TypeAdapter(KeyPrefix)
segments = st.one_of(
    st.sampled_from(["", ".", "..", "...", ".a", "a.", "数据", "a b", "+", "%41", "~"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"), max_size=6),
)
prefixes = st.builds(
    lambda parts, tail: "/".join(parts) + ("/" if tail else ""),
    st.lists(segments, min_size=1, max_size=4),
    st.booleans(),
)


def admitted(prefix: str) -> bool:
    """Whether the model (and so the schema, whose rules it mirrors) admits the prefix; refused only for
    the segments or a leading `/`."""
    try:
        PREFIX.validate_python(prefix)
    except ValidationError as e:
        said = str(e)
    else:
        return True
    assert PREFIX_SEGMENTS_MSG in said or "should match pattern" in said, said
    return False


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=prefixes)
def test_what_is_written_under_an_admitted_prefix_is_listed_under_it(
    centres: tuple[Store, Store], prefix: str
) -> None:
    if not admitted(prefix) or len((prefix + "k").encode()) > 1024:
        return
    bucket = centres[0].bucket("prefixes")  # a bucket per example: nothing left by another
    store = centres[0].s3
    key = f"{prefix}k"
    try:
        store.put_object(Bucket=bucket, Key=key, Body=b"x")
    except ClientError as e:  # a store refusing a key is loud, not a silent rename: still a failure here
        pytest.fail(f"the store refused {key!r}: {e}")
    listed = store.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert [o["Key"] for o in listed] == [key]
    seen.append(prefix)


seen: list[str] = []


def test_the_property_saw_prefixes_with_dots_and_several_segments() -> None:
    """Runs after the property (file order): it tried more than the trivial prefixes."""
    assert any("." in p for p in seen), seen
    assert any(p.count("/") >= 2 for p in seen), seen


@pytest.mark.parametrize("prefix", ["a//b/", "./", "../x/", "a/./b/", "a/.."])
def test_prefixes_the_store_renames_or_refuses_are_refused(prefix: str) -> None:
    assert not admitted(prefix)
