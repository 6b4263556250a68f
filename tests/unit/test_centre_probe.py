"""The centre probe's verdicts through the lean client: no answer is Unreachable, a refusal of the
credentials is AuthenticationFailed, any other answer an S3Error with its code, a listing Up. Real
sockets on 127.0.0.1 stand in for stores misbehaving."""

from __future__ import annotations

import socket

import pytest

from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.failover.probe import probe_store
from tests.support.servers import OneShotServer


def reply(status: int, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


def error(code: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode()


LISTING = b"<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>"


def test_a_refused_connection_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = probe_store(S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", S3Credentials("A", "S")), 0.5)
    assert not outcome.ok
    assert outcome.error.startswith("Unreachable: ")


def test_a_store_that_never_answers_is_unreachable() -> None:
    s = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        endpoint = S3Endpoint(f"http://127.0.0.1:{s.getsockname()[1]}", "us-east-1", S3Credentials("A", "S"))
        outcome = probe_store(endpoint, 0.2)
    finally:
        s.close()
    assert not outcome.ok
    assert outcome.error.startswith("Unreachable: ")


@pytest.mark.parametrize(
    ("status", "code", "verdict"),
    [
        (403, "InvalidAccessKeyId", "AuthenticationFailed: InvalidAccessKeyId"),
        (403, "SignatureDoesNotMatch", "AuthenticationFailed: SignatureDoesNotMatch"),
        (404, "XAdminUserNotFound", "AuthenticationFailed: XAdminUserNotFound"),
        (503, "SlowDown", "S3Error: SlowDown (HTTP 503)"),
        (500, "InternalError", "S3Error: InternalError (HTTP 500)"),
    ],
)
def test_an_answer_keeps_its_verdict(status: int, code: str, verdict: str) -> None:
    server = OneShotServer(reply(status, error(code)))
    try:
        outcome = probe_store(server.endpoint, 1.0)
    finally:
        server.close()
    assert not outcome.ok
    assert outcome.error == verdict


def test_a_listing_is_up() -> None:
    server = OneShotServer(reply(200, LISTING))
    try:
        outcome = probe_store(server.endpoint, 1.0)
    finally:
        server.close()
    assert outcome.ok, outcome.error


@pytest.mark.parametrize(
    "page",
    [
        b"<!DOCTYPE HTML><html><head><title>Directory listing for /</title></head><body></body></html>",
        b"",
        b'{"status": "ok"}',
        b"<?xml version='1.0'?><Error><Code>OK</Code></Error>",
    ],
)
def test_a_200_that_is_no_bucket_listing_is_not_up(page: bytes) -> None:
    """An endpoint pointing at a web server (a wrong port, a proxy's page) answered 200 and read Up."""
    server = OneShotServer(reply(200, page))
    try:
        outcome = probe_store(server.endpoint, 1.0)
    finally:
        server.close()
    assert not outcome.ok
    assert outcome.error == "S3Error: NotAnS3Listing (HTTP 200)"
