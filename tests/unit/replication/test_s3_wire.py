"""The lean S3 client: signatures agree with botocore's, and malformed answers become the right errors."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from datacloud.adapters.s3 import S3Credentials, S3Endpoint
from datacloud.adapters.s3_wire import (
    Signer,
    WireClient,
    canonical_query,
    object_path,
    parse_listing,
    parse_uploads,
)
from datacloud.replication.errors import error_code, is_permanent, is_transient
from tests.support.servers import OneShotServer

ENDPOINT = S3Endpoint("http://127.0.0.1:9000", "cn-fujian-1", S3Credentials("AKEXAMPLE", "s3cr3t/with+chars"))


def botocore_signature(method: str, path: str, headers: dict[str, str], stamp: str) -> str:
    request = AWSRequest(method=method, url=f"http://127.0.0.1:9000{path}", headers=dict(headers))
    request.context["timestamp"] = stamp
    auth = S3SigV4Auth(Credentials("AKEXAMPLE", "s3cr3t/with+chars"), "s3", "cn-fujian-1")
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


@pytest.mark.parametrize(
    "key",
    ["plain.txt", "中文 目录/文件+1.txt", "a+b c%41#?&=;.bin", "dir/", "tilde~and'quote(1)*!"],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_signature_matches_botocore(key: str, method: str) -> None:
    path = object_path("bucket-1", key)
    headers = {"host": "127.0.0.1:9000", "content-type": "text/plain", "x-amz-meta-owner": "fj  dsj"}
    Signer(ENDPOINT).sign(method, path, headers, "e3b0c44298fc1c149afbf4c8996fb924" * 2)

    ours = headers["authorization"].rpartition("Signature=")[2]
    signed = {k: v for k, v in headers.items() if k != "authorization"}
    assert ours == botocore_signature(method, path, signed, headers["x-amz-date"])
    assert "s3cr3t" not in headers["authorization"]


def test_the_secret_stays_out_of_reprs() -> None:
    assert "s3cr3t" not in repr(Signer(ENDPOINT)) + repr(WireClient(ENDPOINT))


def client_for(serve: list[OneShotServer], reply: bytes) -> WireClient:
    server = OneShotServer(reply)
    serve.append(server)
    return WireClient(server.endpoint, connect_timeout=2, read_timeout=2)


def test_garbage_instead_of_http_is_transient(serve: list[OneShotServer]) -> None:
    wire = client_for(serve, b"this is not HTTP\r\n\r\n")
    with pytest.raises(http.client.BadStatusLine) as caught:
        wire.get_object(Bucket="b", Key="k")
    assert is_transient(caught.value)


def test_server_error_with_an_html_body_is_a_transient_client_error(serve: list[OneShotServer]) -> None:
    body = b"<html><body>502 Bad Gateway</body></html>"
    wire = client_for(serve, b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(ClientError) as caught:
        wire.get_object(Bucket="b", Key="k")
    assert error_code(caught.value) == "502"
    assert is_transient(caught.value)


def test_an_s3_error_document_gives_its_code(serve: list[OneShotServer]) -> None:
    body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    wire = client_for(serve, b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(ClientError) as caught:
        wire.put_object(Bucket="b", Key="k", Body=b"x")
    assert error_code(caught.value) == "AccessDenied"
    assert is_permanent(caught.value)


def test_a_truncated_body_is_transient(serve: list[OneShotServer]) -> None:
    wire = client_for(serve, b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "x"\r\n\r\nonly ten b')
    got = wire.get_object(Bucket="b", Key="k")
    with pytest.raises(http.client.IncompleteRead) as caught:
        got["Body"].read()
    assert is_transient(caught.value)


def test_a_connection_closed_without_an_answer_is_transient(serve: list[OneShotServer]) -> None:
    wire = client_for(serve, b"")
    with pytest.raises(http.client.RemoteDisconnected) as caught:
        wire.head_object(Bucket="b", Key="k")
    assert is_transient(caught.value)


def test_a_silent_server_times_out_as_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:  # connects (backlog), never answers
        port = listening.getsockname()[1]
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", S3Credentials("AK", "SK"))
        wire = WireClient(endpoint, connect_timeout=0.5, read_timeout=0.5)
        with pytest.raises(TimeoutError) as caught:
            wire.head_object(Bucket="b", Key="k")
    assert is_transient(caught.value)


def test_unsupported_put_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="StorageClass"):
        WireClient(ENDPOINT).put_object(Bucket="b", Key="k", Body=b"", StorageClass="GLACIER")


def test_a_listing_request_is_signed_as_botocore_signs_it() -> None:
    params = {"list-type": "2", "prefix": "目录/a b+c", "continuation-token": "tok/en+=="}
    query = canonical_query(params)
    headers = {"host": "127.0.0.1:9000"}
    Signer(ENDPOINT).sign("GET", "/bucket-1", headers, "e3b0c44298fc1c149afbf4c8996fb924" * 2, query)

    signed = {k: v for k, v in headers.items() if k != "authorization"}
    theirs = botocore_signature("GET", f"/bucket-1?{query}", signed, headers["x-amz-date"])
    assert headers["authorization"].rpartition("Signature=")[2] == theirs


LISTING = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>next+1</NextContinuationToken>
  <Contents><Key>%E4%B8%AD%E6%96%87+a%2Bb%25.txt</Key><Size>12</Size><ETag>"abc"</ETag>
    <LastModified>2026-11-27T10:00:01.500Z</LastModified></Contents>
  <Contents><Key>dir/</Key><Size>0</Size><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag></Contents>
</ListBucketResult>"""


def test_a_listing_page_is_read_in_boto3s_shape() -> None:
    page = parse_listing(LISTING)

    assert [item["Key"] for item in page["Contents"]] == ["中文 a+b%.txt", "dir/"]
    assert page["Contents"][0]["Size"] == 12
    assert page["Contents"][0]["LastModified"].timestamp() == pytest.approx(1795773601.5)
    assert page["Contents"][1]["LastModified"] is None
    assert page["IsTruncated"] is True
    assert page["NextContinuationToken"] == "next+1"


def test_a_listing_that_is_not_xml_is_transient() -> None:
    with pytest.raises(http.client.HTTPException) as caught:
        parse_listing(b"<ListBucketResult><Contents>")
    assert is_transient(caught.value)


def test_a_chunked_body_is_read_whole(serve: list[OneShotServer]) -> None:
    head = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "e"\r\n\r\n'
    reply = head + b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    got = client_for(serve, reply).get_object(Bucket="b", Key="k")
    assert got["Body"].read(3) + got["Body"].read() == b"hello world"
    assert got["ETag"] == '"e"'


def test_a_broken_chunk_size_is_transient(serve: list[OneShotServer]) -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    got = client_for(serve, reply).get_object(Bucket="b", Key="k")
    with pytest.raises(http.client.IncompleteRead) as caught:
        got["Body"].read()
    assert is_transient(caught.value)


def test_a_malformed_header_line_is_transient(serve: list[OneShotServer]) -> None:
    wire = client_for(serve, b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")
    with pytest.raises(http.client.HTTPException) as caught:
        wire.head_object(Bucket="b", Key="k")
    assert is_transient(caught.value)


def test_a_closed_connection_is_replaced_for_the_next_request(serve: list[OneShotServer]) -> None:
    # The server answers once per connection and closes it, saying so or not: either way the next
    # request goes out on a new connection and succeeds.
    for close in (b"Connection: close\r\n", b""):
        wire = client_for(serve, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + close + b'ETag: "x"\r\n\r\n')
        assert wire.head_object(Bucket="b", Key="k")["ETag"] == '"x"'
        assert wire.head_object(Bucket="b", Key="k")["ETag"] == '"x"'


@pytest.mark.parametrize("chunks", [[b"12345"], [b"12345", b"678901"]], ids=["short", "long"])
def test_a_stream_that_breaks_its_length_is_refused(serve: list[OneShotServer], chunks: list[bytes]) -> None:
    wire = client_for(serve, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(http.client.HTTPException, match="10 bytes"):
        wire.put_object_stream(Bucket="b", Key="k", Chunks=iter(chunks), ContentLength=10)


def test_an_upload_listing_is_read_in_boto3s_shape() -> None:
    body = b"""<?xml version="1.0"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextKeyMarker>%E7%9B%AE%E5%BD%95/b</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <Upload><Key>%E7%9B%AE%E5%BD%95/a+b</Key><UploadId>u1</UploadId>
    <Initiated>2026-11-27T10:00:00.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"""
    page = parse_uploads(body)

    assert page["Uploads"][0]["Key"] == "目录/a b"
    assert page["Uploads"][0]["UploadId"] == "u1"
    assert page["Uploads"][0]["Initiated"].year == 2026
    assert page["IsTruncated"] is True
    assert (page["NextKeyMarker"], page["NextUploadIdMarker"]) == ("目录/b", "u2")
    with pytest.raises(http.client.HTTPException, match="upload listing"):
        parse_uploads(b"not xml")


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"], ids=["crlf", "bare-lf"])
def test_a_head_that_arrives_in_pieces_is_read_whole(line_end: bytes) -> None:
    """The head is usually in the read buffer at once; when it is not, it is read line by line."""
    first = b"HTTP/1.1 200 OK" + line_end + b"Content-Length: 2" + line_end
    rest = b'ETag: "e"' + line_end + b"X-Amz-Meta-Owner: \xe7\xa6\x8f" + line_end + line_end + b"ok"
    server = socket.create_server(("127.0.0.1", 0))
    sent = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(first)
            sent.wait(0.2)  # the client reads the first piece alone before the rest arrives
            conn.sendall(rest)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = server.getsockname()[1]
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", S3Credentials("AK", "SK"))
        wire = WireClient(endpoint, connect_timeout=2, read_timeout=2)
        got = wire.get_object(Bucket="b", Key="k")
        assert got["Body"].read() == b"ok"
        assert (got["ETag"], got["Metadata"]) == ('"e"', {"owner": "福"})
        wire.close()
    finally:
        thread.join(2)
        server.close()


def test_a_server_that_stops_reading_times_out_the_send_as_transient() -> None:
    """Plain connections leave the timeouts to the kernel: a send blocked past it must still end as a
    timeout (not `BlockingIOError`), and the connection must not be used again."""
    with socket.create_server(("127.0.0.1", 0)) as listening:  # accepts into the backlog, never reads
        port = listening.getsockname()[1]
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}", "us-east-1", S3Credentials("AK", "SK"))
        wire = WireClient(endpoint, connect_timeout=0.5, read_timeout=0.5)
        body = b"x" * (64 * 1024 * 1024)  # more than the socket buffers of both ends hold
        with pytest.raises(TimeoutError) as caught:
            wire.put_object_stream(Bucket="b", Key="k", Chunks=[body], ContentLength=len(body))
        assert is_transient(caught.value)
        wire.close()


def test_the_lean_client_loads_without_botocore() -> None:
    """botocore is loaded only when a store refuses a request (to build its `ClientError`)."""
    code = "import sys, datacloud.adapters.s3_wire; print(any(m.startswith('botocore') for m in sys.modules))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
