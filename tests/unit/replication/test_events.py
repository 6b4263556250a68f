from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacloud.metrics import notifications
from datacloud.metrics.registry import REGISTRY
from datacloud.replication.events import (
    CONNECTION_WORKERS,
    BadNotification,
    Change,
    EventReceiver,
    key_readings,
    parse_notification,
)

# What versitygw 1.x actually posts (captured from a real server): the key is not URL-encoded.
VERSITYGW_PUT = {
    "Records": [
        {
            "eventVersion": "2.2",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-27T07:46:02Z",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "webhook-global",
                "bucket": {"name": "bucket1", "arn": "arn:aws:s3:::/bucket1/中文 a+b%#?.txt"},
                "object": {"key": "中文 a+b%#?.txt", "size": 1, "eTag": '"9dd4"', "sequencer": "1"},
            },
        }
    ]
}
VERSITYGW_TEST_EVENT = {
    "Bucket": "Test-Bucket",
    "Event": "s3:TestEvent",
    "Service": "S3",
    "Time": "2026-11-27T07:46:01Z",
}


def record(event: str, key: str, bucket: str = "b") -> dict[str, Any]:
    return {"eventName": event, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}


def test_versitygw_notification_with_a_raw_key() -> None:
    changes = parse_notification(json.dumps(VERSITYGW_PUT).encode(), "raw")
    assert changes == [Change("bucket1", "中文 a+b%#?.txt", False, "s3:ObjectCreated:Put")]


def test_aws_style_url_encoded_key() -> None:
    body = json.dumps({"Records": [record("s3:ObjectRemoved:Delete", "%E7%A6%8F+%E5%BB%BA%2Bx")]}).encode()
    assert parse_notification(body, "url") == [Change("b", "福 建+x", True, "s3:ObjectRemoved:Delete")]


def test_auto_encoding_offers_both_readings() -> None:
    assert key_readings("a+b%41", "auto") == ["a+b%41", "a bA"]
    assert key_readings("plain/key", "auto") == ["plain/key"]
    changes = parse_notification(json.dumps(VERSITYGW_PUT).encode())
    assert [c.key for c in changes] == ["中文 a+b%#?.txt", "中文 a b%#?.txt"]


def test_test_event_carries_no_change() -> None:
    assert parse_notification(json.dumps(VERSITYGW_TEST_EVENT).encode()) == []


def test_several_records_and_delete_objects() -> None:
    body = {"Records": [record("s3:ObjectRemoved:DeleteObjects", "x"), record("ObjectCreated:Copy", "y")]}
    changes = parse_notification(json.dumps(body).encode(), "raw")
    assert [(c.key, c.removed, c.event) for c in changes] == [
        ("x", True, "s3:ObjectRemoved:DeleteObjects"),
        ("y", False, "s3:ObjectCreated:Copy"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"Records": {}}',
        b'{"Records": [1]}',
        json.dumps({"Records": [{"eventName": "s3:ObjectCreated:Put"}]}).encode(),
        json.dumps({"Records": [record("s3:ObjectCreated:Put", "")]}).encode(),
        json.dumps(
            {
                "Records": [
                    {
                        "eventName": "s3:ObjectCreated:Put",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": 5}},
                    }
                ]
            }
        ).encode(),
    ],
)
def test_malformed_notifications(body: bytes) -> None:
    with pytest.raises(BadNotification):
        parse_notification(body)


TOKEN = "t0ken-for-the-unit-tests-only"


@pytest.fixture
def receiver() -> Iterator[tuple[EventReceiver, list[list[Change]]]]:
    got: list[list[Change]] = []
    server = EventReceiver().start()
    server.register(TOKEN, got.append)
    yield server, got
    server.stop()


def post(server: EventReceiver, path: str, body: bytes, method: str = "POST") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback test server
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_receiver_routes_by_token(receiver: tuple[EventReceiver, list[list[Change]]]) -> None:
    server, got = receiver
    body = json.dumps({"Records": [record("s3:ObjectCreated:Put", "k")]}).encode()

    assert post(server, f"/events/{TOKEN}", body) == 200
    assert got == [[Change("b", "k", False, "s3:ObjectCreated:Put")]]
    assert server.url(TOKEN).endswith(f"/events/{TOKEN}")


@pytest.mark.parametrize(
    ("path", "body", "method", "status"),
    [
        (f"/events/{TOKEN}x", b"{}", "POST", 401),
        (f"/events/{TOKEN[:-1]}", b"{}", "POST", 401),
        ("/events/", b"{}", "POST", 401),
        (f"/hooks/{TOKEN}", b"{}", "POST", 404),
        ("/", b"{}", "POST", 404),
        (f"/events/{TOKEN}", b"{broken", "POST", 400),
        (f"/events/{TOKEN}", b'{"Records": [{"s3": {}}]}', "POST", 400),
        (f"/events/{TOKEN}", b"", "GET", 404),
    ],
)
def test_receiver_refuses(
    receiver: tuple[EventReceiver, list[list[Change]]], path: str, body: bytes, method: str, status: int
) -> None:
    server, got = receiver
    assert post(server, path, body if method == "POST" else b"", method) == status
    assert got == []
    assert server.rejected == 1
    # Still serving afterwards.
    assert post(server, f"/events/{TOKEN}", json.dumps(VERSITYGW_TEST_EVENT).encode()) == 200


def test_receiver_refuses_oversized_and_unsized_bodies(
    receiver: tuple[EventReceiver, list[list[Change]]],
) -> None:
    server, _ = receiver
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(f"POST /events/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n".encode())
        assert b" 413 " in conn.recv(1024)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(f"POST /events/{TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert b" 411 " in conn.recv(1024)


def test_short_tokens_are_refused() -> None:
    server = EventReceiver()
    try:
        with pytest.raises(ValueError, match="token"):
            server.register("short", lambda changes: None)
    finally:
        server.stop()


def test_notifications_on_connections_never_reused_hold_no_thread(
    receiver: tuple[EventReceiver, list[list[Change]]],
) -> None:
    """versitygw posts each notification on a new connection and never reads the answer (so never
    reuses or closes it): the receiver closes each after its answer, on a fixed pool of threads."""
    server, got = receiver
    body = json.dumps({"Records": [record("s3:ObjectCreated:Put", "k")]}).encode()
    request = (
        f"POST /events/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    conns = [
        socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3 * CONNECTION_WORKERS)
    ]
    try:
        for conn in conns:
            conn.sendall(request)
        answers = []
        for conn in conns:
            answer = b""
            while chunk := conn.recv(1024):  # until the receiver closes the connection
                answer += chunk
            answers.append(answer)
    finally:
        for conn in conns:
            conn.close()
    assert all(a.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in a for a in answers)
    assert len(got) == len(conns)
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if "process_request_thread" in n]
    assert len([n for n in names if n.startswith("event-conn")]) <= CONNECTION_WORKERS


def test_a_burst_of_connections_waits_for_the_receiver_instead_of_being_dropped() -> None:
    """While the receiver is not accepting (its thread waits for the GIL, say), a burst of notification
    connections queues in the kernel; with a backlog of 5 the rest were dropped and versitygw gave up."""
    got: list[list[Change]] = []
    server = EventReceiver()  # listening, not yet accepting
    server.register(TOKEN, got.append)
    body = json.dumps({"Records": [record("s3:ObjectCreated:Put", "k")]}).encode()
    request = (
        f"POST /events/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    conns = []
    try:
        for _ in range(64):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=3)
            conn.sendall(request)
            conns.append(conn)
        server.start()
        for conn in conns:
            assert conn.recv(1024).startswith(b"HTTP/1.1 200 ")
    finally:
        for conn in conns:
            conn.close()
        server.stop()
    assert len(got) == 64


def test_notifications_are_counted_in_the_metrics(receiver: tuple[EventReceiver, list[list[Change]]]) -> None:
    """`datacloud_notifications_total` follows the receiver: a shortfall against the writes shows loss."""
    server, _ = receiver
    notifications.register(lambda: (server.accepted, server.rejected, server.misnamed))
    body = json.dumps({"Records": [record("s3:ObjectCreated:Put", "k")]}).encode()
    for _ in range(3):
        assert post(server, f"/events/{TOKEN}", body) == 200
    assert post(server, "/events/wrong-token-of-some-length", body) == 401

    def value(result: str) -> float | None:
        return REGISTRY.get_sample_value("datacloud_notifications_total", {"result": result})

    assert (value("accepted"), value("refused")) == (3, 1)


def versitygw_record(name: str, key: str, arn_bucket: str, arn_key: str) -> dict[str, Any]:
    return {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {
            "bucket": {"name": name, "arn": f"arn:aws:s3:::/{arn_bucket}/{arn_key}"},
            "object": {"key": key},
        },
    }


def test_a_record_naming_another_bucket_than_its_arn_is_followed_both_ways() -> None:
    """versitygw 1.8 under load: the name field held another request's bucket (seen in the replicas
    bench: r-00066 for an object PUT to r-00069), the ARN the right one."""
    body = json.dumps({"Records": [versitygw_record("r-00066", "lag/0000769", "r-00069", "lag/0000769")]})
    changes = parse_notification(body.encode(), "raw")
    assert changes == [
        Change("r-00066", "lag/0000769", False, "s3:ObjectCreated:Put"),
        Change("r-00069", "lag/0000769", False, "s3:ObjectCreated:Put", from_arn=True),
    ]


def test_an_arn_naming_only_the_bucket_is_not_read_for_the_key() -> None:
    aws = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": "b", "arn": "arn:aws:s3:::b"}, "object": {"key": "k"}},
    }
    assert parse_notification(json.dumps({"Records": [aws]}).encode()) == [
        Change("b", "k", False, "s3:ObjectCreated:Put")
    ]


BUCKETS = st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True)
KEYS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60)


@given(bucket=BUCKETS, other=BUCKETS, key=KEYS)
def test_the_arn_reading_is_added_exactly_when_the_names_disagree(bucket: str, other: str, key: str) -> None:
    """Any key S3 allows (every Unicode class, slashes anywhere, a leading one too): a record whose ARN
    agrees gives one reading per key reading; one whose bucket name is another's adds the ARN's."""
    agreeing = parse_notification(
        json.dumps({"Records": [versitygw_record(bucket, key, bucket, key)]}).encode(), "raw"
    )
    assert agreeing == [Change(bucket, key, False, "s3:ObjectCreated:Put")]
    misnamed = parse_notification(
        json.dumps({"Records": [versitygw_record(other, key, bucket, key)]}).encode(), "raw"
    )
    assert Change(bucket, key, False, "s3:ObjectCreated:Put", from_arn=bucket != other) in misnamed
    assert len(misnamed) == (1 if bucket == other else 2)


def test_misnamed_records_are_counted(receiver: tuple[EventReceiver, list[list[Change]]]) -> None:
    server, got = receiver
    body = json.dumps({"Records": [versitygw_record("a-bucket", "k/1", "b-bucket", "k/1")]}).encode()
    assert post(server, f"/events/{TOKEN}", body) == 200
    assert server.misnamed == 1
    assert {c.bucket for c in got[0]} == {"a-bucket", "b-bucket"}
