"""The operator's lean Kubernetes writes: answers of every shape become ApiException as the client's own
calls raise it, and a kept-alive connection the server has closed is replaced."""

from __future__ import annotations

import json

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from datacloud.adapters.kube import Kube
from tests.support.servers import OneShotServer


def kube_for(serve: list[OneShotServer], reply: bytes) -> Kube:
    server = OneShotServer(reply)
    serve.append(server)
    config = kubernetes.client.Configuration()
    config.host = server.url
    return Kube(ApiClient(config), timeout_s=2)


def answer(status: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


STATUS = {"kind": "DataZone", "metadata": {"name": "z", "resourceVersion": "7"}, "status": {"phase": "Ready"}}


def test_a_written_status_comes_back_and_a_closed_connection_is_replaced(
    serve: list[OneShotServer],
) -> None:
    # The server answers once per connection and closes it, as an idle timeout would between writes.
    kube = kube_for(serve, answer("200 OK", json.dumps(STATUS).encode()))
    for _ in range(3):
        assert kube.merge_status("datazones", "z", {"phase": "Ready"}) == STATUS


@pytest.mark.parametrize(
    ("reply", "status", "reason"),
    [
        (b"this is not HTTP\r\n\r\n", 0, "BadStatusLine"),
        (answer("200 OK", b"<html>proxy error</html>"), 0, "not JSON"),
        (answer("200 OK", b'{"kind": "DataZ')[:-5], 0, "IncompleteRead"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 0, "malformed header"),
        (b"", 0, "RemoteDisconnected"),
        (answer("409 Conflict", b'{"reason": "AlreadyExists"}'), 409, "Conflict"),
        (answer("422 Unprocessable Entity", b'{"message": "spec.x: Invalid"}'), 422, "Unprocessable"),
    ],
)
def test_malformed_and_refused_answers_become_api_exceptions(
    serve: list[OneShotServer], reply: bytes, status: int, reason: str
) -> None:
    kube = kube_for(serve, reply)
    with pytest.raises(ApiException) as caught:
        kube.merge_status("datazones", "z", {"phase": "Ready"})
    assert caught.value.status == status
    assert reason in str(caught.value.reason)
    if status:
        assert caught.value.body  # the server's explanation is kept for the condition message


def test_an_unreachable_server_is_status_0() -> None:
    config = kubernetes.client.Configuration()
    config.host = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(ApiException) as caught:
        Kube(ApiClient(config), timeout_s=2).merge_status("datazones", "z", {})
    assert caught.value.status == 0
