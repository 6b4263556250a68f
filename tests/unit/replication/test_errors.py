from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from datacloud.replication.errors import (
    PermanentS3Error,
    RetryPolicy,
    as_permanent,
    call_s3,
    is_missing_key,
    is_permanent,
    is_transient,
)


def client_error(code: str, status: int = 400, operation: str = "GetObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


@pytest.mark.parametrize(
    "exc",
    [
        client_error("SlowDown", 503),
        client_error("InternalError", 500),
        client_error("ServiceUnavailable", 503),
        client_error("RequestTimeout", 400),
        client_error("Throttling", 400),
        client_error("Whatever", 502),
        client_error("TooManyRequests", 429),
        EndpointConnectionError(endpoint_url="http://x"),
        ConnectionClosedError(endpoint_url="http://x"),
        ReadTimeoutError(endpoint_url="http://x"),
        ConnectionResetError(),
        TimeoutError(),
    ],
)
def test_transient(exc: Exception) -> None:
    assert is_transient(exc)
    assert not is_permanent(exc)


@pytest.mark.parametrize(
    "code",
    ["AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "XAdminUserNotFound"],
)
def test_permanent(code: str) -> None:
    exc = client_error(code, 403)
    assert is_permanent(exc)
    assert not is_transient(exc)


def test_other_client_errors_are_neither() -> None:
    for exc in (client_error("NoSuchKey", 404), client_error("InvalidArgument", 400), ValueError()):
        assert not is_transient(exc)
        assert not is_permanent(exc)
    assert is_missing_key(client_error("NoSuchKey", 404))
    assert is_missing_key(client_error("404", 404, "HeadObject"))


def test_head_bucket_status_codes_become_permanent_errors() -> None:
    missing = as_permanent(client_error("404", 404, "HeadBucket"), "HeadBucket", "http://x/b")
    assert missing is not None
    assert missing.code == "NoSuchBucket"
    assert as_permanent(client_error("NoSuchKey", 404), "GetObject", "http://x/b") is None


class Flaky:
    def __init__(self, failures: list[Exception], result: Any = "ok") -> None:
        self.failures = failures
        self.calls = 0
        self.result = result

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


INSTANT = RetryPolicy(attempts=5, initial=0.0, maximum=0.0)


def test_transient_failures_are_retried_until_success() -> None:
    flaky = Flaky([client_error("SlowDown", 503), EndpointConnectionError(endpoint_url="http://x")])
    assert call_s3(INSTANT, "GetObject", "http://x/b", flaky, Bucket="b") == "ok"
    assert flaky.calls == 3


def test_retries_give_up_after_the_last_attempt() -> None:
    flaky = Flaky([client_error("SlowDown", 503) for _ in range(10)])
    with pytest.raises(ClientError):
        call_s3(INSTANT, "GetObject", "http://x/b", flaky)
    assert flaky.calls == 5


def test_permanent_failures_are_raised_at_once_with_a_clear_message() -> None:
    flaky = Flaky([client_error("SignatureDoesNotMatch", 403)])
    with pytest.raises(PermanentS3Error) as caught:
        call_s3(INSTANT, "ListObjectsV2", "http://centre:9000/bucket", flaky)
    assert flaky.calls == 1
    # The store's own words follow (here "m"): a refused region names the one the store expects.
    assert str(caught.value) == "SignatureDoesNotMatch on ListObjectsV2 at http://centre:9000/bucket: m"


def test_per_object_failures_are_not_retried() -> None:
    flaky = Flaky([client_error("InvalidArgument", 400)])
    with pytest.raises(ClientError):
        call_s3(INSTANT, "PutObject", "http://x/b", flaky)
    assert flaky.calls == 1


def test_failures_are_classified_without_loading_botocore_or_urllib3() -> None:
    """The classification looks botocore's and urllib3's exceptions up only where those are loaded (an
    exception of theirs cannot exist before): in a process that never loaded them, network failures
    are still transient, an unknown failure is not, and a transient one is retried (tenacity loaded
    then, at the first retry)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from datacloud.replication.errors import RetryPolicy, call_s3, describe, is_transient, Unreachable\n"
        "assert is_transient(ConnectionResetError()) and is_transient(TimeoutError())\n"
        "assert not is_transient(ValueError('no'))\n"
        "assert describe(ValueError('no')) == 'ValueError: no'\n"
        "loaded = sorted(m for m in ('botocore', 'urllib3', 'tenacity') if m in sys.modules)\n"
        "calls = []\n"
        "def flaky():\n"
        "    calls.append(1)\n"
        "    if len(calls) < 3:\n"
        "        raise ConnectionResetError('reset')\n"
        "    return 'done'\n"
        "assert RetryPolicy(attempts=4, initial=0.001).call(flaky) == 'done' and len(calls) == 3\n"
        "def refused():\n"
        "    raise ConnectionRefusedError('refused')\n"
        "try:\n"
        "    call_s3(RetryPolicy(attempts=2, initial=0.001), 'GetObject', 'http://h/b', refused)\n"
        "except Unreachable as exc:\n"
        "    assert 'GetObject' in str(exc) and 'connection refused' in str(exc), exc\n"
        "print(loaded, 'tenacity' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[] True"
