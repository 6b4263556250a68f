"""The lean client's SigV4 signer agrees with botocore's for generated requests: any key, query and user
metadata S3 allows (every Unicode class, `+`, `%`, empty values, RFC 2047 encoded words, many headers),
and sends a header value as the very bytes it signed."""

from __future__ import annotations

import string

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.adapters.http11 import parse_head, request_head
from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.adapters.s3_wire import Signer, canonical_query, canonical_value, object_path, put_headers

ENDPOINT = S3Endpoint("http://127.0.0.1:9000", "cn-fujian-1", S3Credentials("AKEXAMPLE", "s3cr3t/with+chars"))
STAMP = "20261130T101010Z"

# Any character but surrogates (not text) and NUL; keys may hold every other class.
key_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), min_size=1, max_size=40)
# Header values: anything HTTP can carry in a field; inside a value no whitespace but the space itself,
# which botocore folds by Python's idea of whitespace where the stores fold only spaces
# (`test_only_spaces_are_folded_inside` covers those).
WHITESPACE = "".join(c for c in map(chr, range(0x3100)) if c.isspace())
value_text = st.builds(
    lambda edge, inner, tail: edge + inner + tail,
    st.sampled_from(["", " ", "\t", "\u3000", "\xa0 "]),
    st.text(
        st.characters(exclude_categories=["Cs", "Cc"], exclude_characters=WHITESPACE) | st.just(" "),
        max_size=30,
    ),
    st.sampled_from(["", " ", "\u2028", "\t "]),
)
rfc2047 = st.builds(
    lambda text: "=?UTF-8?B?" + __import__("base64").b64encode(text.encode()).decode() + "?=", value_text
)
meta_name = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=20)
metadata = st.dictionaries(
    meta_name, value_text | rfc2047 | st.sampled_from(["", "中文", "a+b%20c", "  x  y  "]), max_size=40
)


def botocore_signature(method: str, target: str, headers: dict[str, str]) -> str:
    request = AWSRequest(method=method, url=f"http://127.0.0.1:9000{target}", headers=dict(headers))
    request.context["timestamp"] = STAMP
    auth = S3SigV4Auth(Credentials("AKEXAMPLE", "s3cr3t/with+chars"), "s3", "cn-fujian-1")
    return str(auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request))


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "PUT", "HEAD", "POST", "DELETE"]),
    bucket=st.from_regex(r"\A[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]\Z"),
    key=key_text,
    query=st.dictionaries(
        key_text, st.text(st.characters(exclude_categories=["Cs"]), max_size=20), max_size=5
    ),
    meta=metadata,
    content_type=st.sampled_from(["", "text/plain; charset=utf-8", "application/x-www-form-urlencoded"]),
)
def test_the_signature_is_botocores(
    method: str, bucket: str, key: str, query: dict[str, str], meta: dict[str, str], content_type: str
) -> None:
    path = object_path(bucket, key)
    headers = {"host": "127.0.0.1:9000", **put_headers(meta, {"ContentType": content_type})}
    canonical = canonical_query(query)
    Signer(ENDPOINT).sign(method, path, headers, "UNSIGNED-PAYLOAD", canonical, stamp=STAMP)

    ours = headers.pop("authorization").rpartition("Signature=")[2]
    target = f"{path}?{canonical}" if canonical else path
    assert ours == botocore_signature(method, target, headers)


@given(meta=metadata)
def test_a_header_value_is_sent_as_the_bytes_it_was_read_as(meta: dict[str, str]) -> None:
    """What a store answers is sent on to the other as the same bytes (UTF-8, or raw when it was not)."""
    head = request_head("PUT", "/b/k", put_headers(meta, {}), 0)
    lines = head.split(b"\r\n")[1:-3]
    _, headers = parse_head(b"\r\n".join([b"HTTP/1.1 200 OK", *lines, b"", b""]))
    parsed = dict(headers)
    # (HTTP drops the blanks around a field value; other whitespace stays part of it.)
    assert parsed == {f"x-amz-meta-{k}": v.strip(" \t") for k, v in meta.items()}


def test_bytes_that_are_not_utf8_survive_the_round_trip() -> None:
    _, [(name, value)] = parse_head(b"HTTP/1.1 200 OK\r\nx-amz-meta-legacy: caf\xe9 \xff\r\n\r\n")
    assert (
        request_head("GET", "/", {name: value}, None).split(b"\r\n")[1] == b"x-amz-meta-legacy: caf\xe9 \xff"
    )


def test_only_spaces_are_folded_inside() -> None:
    assert canonical_value("\u3000 a  b\t\tc\u3000\u3000d \xa0") == "a b\t\tc\u3000\u3000d"
    assert canonical_value("") == ""


def test_query_names_sort_by_their_escaped_form() -> None:
    # Sorted raw, "~" (0x7e) comes before "é"; escaped, "%C3%A9" comes before "~".
    assert canonical_query({"~": "1", "é": "2"}) == "%C3%A9=2&~=1"


def test_a_value_that_would_break_the_header_is_refused() -> None:
    import pytest

    for bad in ("a\r\nx-amz-meta-evil: 1", "a\nb", "nul\0"):
        with pytest.raises(ValueError, match="line break or NUL"):
            put_headers({"x": bad}, {})


# Keys and buckets drawn mostly from what needs no escaping, so both ways of building a path are tried:
# one character of another kind among them is enough to need `quote`.
path_text = st.text(st.sampled_from("abcXYZ019_.-~/"), max_size=12).flatmap(
    lambda plain: st.sampled_from(
        ["", " ", "%", "+", "?", "#", "é", "中", "\u3000", ":", "@", "!", "*", "'", "(", "&", "=", "\x7f"]
    ).map(lambda odd: plain[: len(plain) // 2] + odd + plain[len(plain) // 2 :])
) | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=500)
@given(bucket=path_text, key=path_text)
def test_a_path_is_escaped_as_quote_escapes_it(bucket: str, key: str) -> None:
    from urllib.parse import quote

    assert object_path(bucket, key) == "/" + quote(bucket, safe="") + "/" + quote(key, safe="/~")


@settings(max_examples=500)
@given(key=path_text)
def test_a_listed_key_is_decoded_as_unquote_plus_decodes_it(key: str) -> None:
    from urllib.parse import quote, quote_plus, unquote_plus

    from datacloud.adapters.s3_wire import unquote_key

    for encoded in (quote(key, safe=""), quote_plus(key, safe="/"), key, quote(key, safe="/~%+")):
        assert unquote_key(encoded) == unquote_plus(encoded)
