"""Which S3 failures are worth retrying, which end a run at once, and the retry policy itself.

Three kinds of failure reach the engine:
- transient (timeouts, resets, 5xx, throttling): retried here with jittered exponential backoff;
- permanent for the whole run (bad credentials, missing bucket, access denied): raised at once as
  `PermanentS3Error`, because retrying cannot help and every other object would fail the same way;
- anything else is a failure of one object (e.g. a key the target store cannot represent): the engine
  records it and carries on, and the next pass tries again.
"""

from __future__ import annotations

import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


# The exception classes of botocore, urllib3 and http.client are looked up where they are loaded, not
# imported here: an exception of a library can only exist once the library is loaded, and importing
# them cost a sync about 50 ms of start-up (urllib3 alone 30-40 ms), before its first byte moves.
def _loaded(name: str) -> ModuleType | None:
    return sys.modules.get(name)


def _is_client_error(exc: BaseException) -> bool:
    boto = _loaded("botocore.exceptions")
    return boto is not None and isinstance(exc, boto.ClientError)


def _is_http_exception(exc: BaseException) -> bool:
    http_client = _loaded("http.client")
    return http_client is not None and isinstance(exc, http_client.HTTPException)


def _library_transient(exc: BaseException) -> bool:
    """A transport failure raised by botocore, urllib3 or http.client (whichever are loaded)."""
    boto = _loaded("botocore.exceptions")
    if boto is not None and isinstance(
        exc,
        boto.ConnectionError  # EndpointConnectionError, ConnectionClosedError, timeouts on connect
        | boto.HTTPClientError  # ConnectionClosedError, ReadTimeoutError
        | boto.ResponseStreamingError
        | boto.IncompleteReadError,
    ):
        return True
    urllib3 = _loaded("urllib3.exceptions")
    if urllib3 is not None and isinstance(exc, urllib3.HTTPError):
        return True
    return _is_http_exception(exc)


# Codes after which no other request to the same bucket can succeed either.
PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "AuthorizationHeaderMalformed",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
        "XAdminUserNotFound",  # versitygw's word for an unknown access key
    }
)

TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequests",
        "OperationAborted",
    }
)

# Keys that disappeared between listing and copying: not an error, the next listing will agree.
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class ReplicationError(Exception):
    """Base of the engine's own errors."""


class PermanentS3Error(ReplicationError):
    """A failure that retrying cannot fix: wrong credentials, missing bucket, access denied.

    The message names the operation, the endpoint and bucket and the S3 error code, never a credential.
    """

    def __init__(self, code: str, operation: str, where: str, detail: str = "") -> None:
        self.code = code
        self.operation = operation
        self.where = where
        text = f"{code} on {operation} at {where}"
        super().__init__(f"{text}: {detail}" if detail else text)


class Unreachable(ReplicationError):
    """A store could not be reached (refused, unknown host, timed out) even after the retries.

    The message names the endpoint and bucket and the operation, and the network's reason.
    """

    def __init__(self, operation: str, where: str, cause: BaseException) -> None:
        self.operation = operation
        self.where = where
        super().__init__(f"cannot reach {where} for {operation}: {network_reason(cause)}")


def network_reason(exc: BaseException) -> str:
    """What went wrong on the network, in words ("connection refused"), without a traceback."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class AlteredInTransit(ReplicationError):
    """A copy's stored MD5 differs from its source's: it was removed and the copy is tried again."""


class ListingOrderError(ReplicationError):
    """A store listed keys out of order; merge-joining such a listing could delete the wrong objects."""


def error_code(exc: BaseException) -> str:
    if _is_client_error(exc):
        return str(exc.response.get("Error", {}).get("Code", ""))  # type: ignore[attr-defined]
    return ""


def http_status(exc: BaseException) -> int:
    if _is_client_error(exc):
        metadata = exc.response.get("ResponseMetadata", {})  # type: ignore[attr-defined]
        return int(metadata.get("HTTPStatusCode", 0) or 0)
    return 0


def is_missing_key(exc: BaseException) -> bool:
    return _is_client_error(exc) and error_code(exc) in MISSING_KEY_CODES


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, PermanentS3Error) or (_is_client_error(exc) and error_code(exc) in PERMANENT_CODES)


def is_transient(exc: BaseException) -> bool:
    if _is_client_error(exc):
        code = error_code(exc)
        if code in PERMANENT_CODES:
            return False
        return code in TRANSIENT_CODES or http_status(exc) >= 500 or http_status(exc) == 429
    return isinstance(
        exc,
        AlteredInTransit
        | ConnectionError  # resets, refused, broken pipe
        | TimeoutError
        | socket.timeout,
    ) or _library_transient(exc)


def describe(exc: BaseException) -> str:
    """A one-line description of a failure that is safe to log (botocore messages hold no secrets)."""
    if _is_client_error(exc):
        message = exc.response.get("Error", {}).get("Message", "")  # type: ignore[attr-defined]
        return f"{error_code(exc) or http_status(exc)}: {message}"
    boto = _loaded("botocore.exceptions")
    if isinstance(exc, ReplicationError) or (boto is not None and isinstance(exc, boto.BotoCoreError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def as_permanent(exc: BaseException, operation: str, where: str) -> PermanentS3Error | None:
    """Wrap a permanent S3 failure in `PermanentS3Error`; None when the failure is not permanent."""
    if isinstance(exc, PermanentS3Error):
        return exc
    if not _is_client_error(exc):
        return None
    code = error_code(exc)
    # HEAD has no body, so a missing bucket or a refusal only shows as a bare status.
    if operation == "HeadBucket" and code in {"404", "NotFound"}:
        code = "NoSuchBucket"
    if operation == "HeadBucket" and code in {"403", "Forbidden"}:
        code = "AccessDenied"
    if code not in PERMANENT_CODES:
        return None
    # The store's own words, first line: a region refused names the one the store expects.
    message = str(exc.response.get("Error", {}).get("Message") or "")  # type: ignore[attr-defined]
    return PermanentS3Error(code, operation, where, message.strip().partition("\n")[0][:200])


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff: waits of up to initial·2ⁿ seconds, capped at `maximum`."""

    attempts: int = 8
    initial: float = 0.2
    maximum: float = 10.0

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn`, retrying transient failures; anything else (or the last failure) is raised as is.

        The first attempt runs bare: setting tenacity up costs more CPU than a small object's GET or
        PUT, and almost every request succeeds the first time.
        """
        try:
            return fn()
        except Exception as exc:
            if self.attempts <= 1 or not is_transient(exc):
                raise
            first_wait = random.uniform(0, min(self.maximum, self.initial))
        time.sleep(first_wait)
        import tenacity  # only when a request failed: most runs never retry

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts - 1),
            # The series goes on where the bare attempt left it: up to initial·2ⁿ after attempt n+1.
            wait=tenacity.wait_random_exponential(multiplier=self.initial * 2, max=self.maximum),
            retry=tenacity.retry_if_exception(is_transient),
            reraise=True,
        )
        return retrying(fn)


def s3op(operation: str, where: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """One S3 request, with permanent failures turned into `PermanentS3Error` (no retry here)."""
    try:
        return fn(**kwargs)
    except Exception as exc:
        if not _is_client_error(exc):
            raise
        permanent = as_permanent(exc, operation, where)
        if permanent is not None:
            raise permanent from None
        raise


def call_s3(policy: RetryPolicy, operation: str, where: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """One S3 request under the retry policy, with permanent failures raised as `PermanentS3Error` and
    a store that stayed out of reach as `Unreachable` (both name the operation and the endpoint)."""
    try:
        return policy.call(lambda: s3op(operation, where, fn, **kwargs))
    except Exception as exc:
        if isinstance(exc, OSError) or _is_http_exception(exc):
            raise Unreachable(operation, where, exc) from None
        raise
