"""The protect path's S3 calls go through the lean client; what they raise must keep boto3's verdicts.

A store that does not answer (connection refused, timed out, cut off) is a `BotoCoreError`: the copy is
unreachable, and an unplanned failover may go on once its write lease has run out. A store that answers
(AccessDenied, NoSuchBucket, ...) is a `ClientError`: it is alive, and nothing may be promoted past it.
Real sockets on 127.0.0.1 stand in for the stores' failures the real gateway cannot be made to show.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from datacloud.adapters import s3_wire
from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.failover import fencing
from datacloud.failover.writable import Writable, probe_write
from datacloud.reconcile import dr_buckets
from tests.support.servers import OneShotServer

PROBE = S3Credentials("probe", "probe-secret")


def answer(status: int, code: str) -> bytes:
    body = f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode()
    head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


@pytest.fixture
def refused() -> S3Endpoint:
    """An address where nothing listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", S3Credentials("AK", "SK"))


@pytest.fixture
def silent() -> Iterator[S3Endpoint]:
    """A store that takes connections and never answers (hung, or black-holed behind a proxy)."""
    s = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield S3Endpoint(f"http://127.0.0.1:{s.getsockname()[1]}", "us-east-1", S3Credentials("AK", "SK"))
    finally:
        s.close()


def test_a_refused_fence_is_unreachable_not_an_answer(refused: S3Endpoint) -> None:
    with pytest.raises(BotoCoreError) as found:
        fencing.fence(refused, "b", "p", "o" * 16, 2, timeout_s=1.0)
    assert isinstance(found.value, EndpointConnectionError)
    assert not fencing.in_place(refused, "b", "p", "o" * 16, 2)


def test_a_store_that_never_answers_is_unreachable_within_the_timeout(silent: S3Endpoint) -> None:
    with pytest.raises(BotoCoreError):
        fencing.apply(silent, "b", "p", "o" * 16, 3, timeout_s=0.2)
    with pytest.raises(BotoCoreError):
        fencing.is_fenced(silent, "b", "o" * 16, timeout_s=0.2)


@pytest.mark.parametrize(
    ("status", "code"), [(403, "AccessDenied"), (404, "NoSuchBucket"), (400, "MalformedPolicy")]
)
def test_an_answer_stays_an_answer_with_its_code(status: int, code: str) -> None:
    server = OneShotServer(answer(status, code))
    try:
        with pytest.raises(ClientError) as found:
            fencing.fence(server.endpoint, "b", "p", "o" * 16, 2, timeout_s=1.0)
        assert found.value.response["Error"]["Code"] == code
        assert not isinstance(found.value, BotoCoreError)
    finally:
        server.close()


def test_a_garbled_answer_is_no_answer() -> None:
    server = OneShotServer(b"this is not HTTP\r\n\r\n")
    try:
        with pytest.raises(BotoCoreError):
            fencing.fence(server.endpoint, "b", "p", "o" * 16, 2, timeout_s=1.0)
    finally:
        server.close()


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (answer(403, "AccessDenied"), Writable.NO),
        (answer(400, "BadDigest"), Writable.YES),
        (answer(403, "InvalidAccessKeyId"), Writable.UNKNOWN),
        (b"garbage\r\n\r\n", Writable.UNKNOWN),
    ],
)
def test_the_probe_reads_the_stores_answer(reply: bytes, verdict: Writable) -> None:
    server = OneShotServer(reply)
    try:
        assert probe_write(server.endpoint, PROBE, "b", "p", "o" * 16, timeout_s=1.0)[0] is verdict
    finally:
        server.close()


def test_a_probe_of_a_dead_store_is_unknown(refused: S3Endpoint) -> None:
    answer_, why = probe_write(refused, PROBE, "b", "p", "o" * 16, timeout_s=1.0)
    assert answer_ is Writable.UNKNOWN
    assert why.startswith("unreachable")


@pytest.mark.parametrize("code", ["BucketAlreadyOwnedByYou", "BucketAlreadyExists"])
def test_a_target_bucket_already_there_is_used(code: str) -> None:
    server = OneShotServer(answer(409, code))
    try:
        dr_buckets.ensure_target(s3_wire.WireClient(server.endpoint), "b", "us-east-1")
    finally:
        server.close()


def test_a_refused_creation_of_a_missing_target_is_reported() -> None:
    server = OneShotServer(answer(403, "AccessDenied"))  # the HEAD that follows is refused too
    try:
        with pytest.raises(dr_buckets.CreateFailed):
            dr_buckets.ensure_target(s3_wire.WireClient(server.endpoint), "b", "us-east-1")
    finally:
        server.close()


TRANSPORT = st.sampled_from(
    [
        s3_wire.NotSent("no connection"),
        ConnectionRefusedError(),
        ConnectionResetError(),
        BrokenPipeError(),
        TimeoutError(),
        socket.gaierror(),
        OSError(101, "Network is unreachable"),
        http.client.RemoteDisconnected(),
        http.client.BadStatusLine("x"),
        http.client.IncompleteRead(b""),
    ]
)


@given(TRANSPORT)
def test_every_transport_failure_is_no_answer(error: BaseException) -> None:
    with pytest.raises(BotoCoreError), s3_wire.botocore_errors("http://127.0.0.1:1"):
        raise error


@given(st.sampled_from(["AccessDenied", "NoSuchBucket", "NoSuchBucketPolicy", "SlowDown", "InternalError"]))
def test_every_answer_is_left_as_it_came(code: str) -> None:
    error = ClientError({"Error": {"Code": code}}, "GetBucketPolicy")
    with pytest.raises(ClientError) as found, s3_wire.botocore_errors("http://127.0.0.1:1"):
        raise error
    assert found.value is error
