from __future__ import annotations

from datacloud.replication.copier import SOURCE_ETAG_META
from datacloud.replication.verify import copy_matches, sampled


def test_sample_is_deterministic_and_proportional() -> None:
    keys = [f"k{i}" for i in range(10_000)]
    picked = [k for k in keys if sampled(k, 10)]
    assert picked == [k for k in keys if sampled(k, 10)]
    assert 800 < len(picked) < 1200
    assert all(sampled(k, 100) for k in keys[:100])
    assert not any(sampled(k, 0) for k in keys[:100])
    assert set(picked) <= {k for k in keys if sampled(k, 50)}  # a bigger sample contains a smaller one


def test_copy_matches_by_recorded_or_own_etag() -> None:
    multipart_copy = {"ContentLength": 10, "ETag": '"abc-2"', "Metadata": {SOURCE_ETAG_META: "src"}}
    plain_copy = {"ContentLength": 10, "ETag": '"src"', "Metadata": {}}
    assert copy_matches(10, "src", multipart_copy)
    assert copy_matches(10, "src", plain_copy)
    assert not copy_matches(11, "src", multipart_copy)
    assert not copy_matches(10, "other", multipart_copy)
    assert not copy_matches(10, "src", None)


def test_the_etag_a_copy_must_have() -> None:
    import hashlib

    from datacloud.replication.copier import CONTENT_MD5_META
    from datacloud.replication.verify import expected_etag

    md5 = hashlib.md5(b"data", usedforsecurity=False).hexdigest()
    other = hashlib.md5(b"other", usedforsecurity=False).hexdigest()
    # A single-part source: the copy's own ETag must be the source's, whatever it records.
    assert expected_etag(md5, {"ETag": f'"{other}"', "Metadata": {SOURCE_ETAG_META: md5}}) == md5
    # A multipart source copied whole: the recorded content MD5, or unknown without it.
    assert expected_etag("abc-3", {"ETag": f'"{other}"', "Metadata": {CONTENT_MD5_META: md5}}) == md5
    assert expected_etag("abc-3", {"ETag": f'"{other}"', "Metadata": {}}) is None
    # Copied in parts: the same multipart ETag proves the same parts; otherwise it must be computed.
    assert expected_etag("abc-3", {"ETag": '"abc-3"'}) == "abc-3"
    assert expected_etag(md5, {"ETag": '"def-2"'}) is None


def test_multipart_etag_is_the_md5_of_the_part_md5s() -> None:
    import hashlib

    from datacloud.replication.copier import multipart_etag

    parts = [hashlib.md5(p, usedforsecurity=False).digest() for p in (b"a" * 10, b"b")]
    assert multipart_etag(parts) == hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest() + "-2"


def test_verification_shows_progress() -> None:
    from datacloud.replication.progress import ProgressReporter

    reporter = ProgressReporter(tty=False)
    assert "verified" not in reporter.line()
    reporter.progress.add(verify_pending=4, verify_done=1, verify_bytes=3 * 1024 * 1024)
    assert "verified 1/4 objects (3.0 MiB read)" in reporter.line()


def test_only_32_lower_case_hex_digits_are_an_md5() -> None:
    from datacloud.replication.copier import is_md5

    assert is_md5("0123456789abcdef0123456789abcdef")
    for other in (
        "",
        "0123456789abcdef0123456789abcde",  # 31
        "0123456789abcdef0123456789abcdef0",  # 33
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef-123456789abcdef",
        "0123456789abcdef0123456789abcde\n",
        "0123456789abcdef0123456789abcdef-2",
        "0123456789abcdeg0123456789abcdef",
    ):
        assert not is_md5(other), other
