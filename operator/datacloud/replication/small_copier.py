"""Small objects copied on an event loop: many in flight from one thread instead of a thread each.

A full pass hands every object of up to `SMALL_MAX` bytes here (when both sides have the lean client and
no bandwidth limit applies); `concurrency` workers on one asyncio loop each keep a connection to the
source and one to the target and copy GET → PUT, with the same metadata, recorded source ETag, retry
policy and error classes as `Copier`. Results come back through a callback, on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from datacloud.adapters.s3_async import AsyncConnection, AsyncObjects
from datacloud.adapters.s3_wire import WireClient

from .copier import STREAM_ABOVE, Copied, Side, SourceVanished, check_arrival, whole_put
from .errors import AlteredInTransit, RetryPolicy, as_permanent, is_missing_key, is_transient
from .listing import strip_etag

log = logging.getLogger(__name__)

SMALL_MAX = STREAM_ABOVE
Done = Callable[[str, Copied | BaseException], None]


class TooLarge(Exception):
    """The object grew past `SMALL_MAX` after it was listed; the caller copies it the other way."""


class SmallCopier:
    """Use as a context manager; `submit` from any thread, results through `done` on the loop thread."""

    def __init__(
        self, source: Side, target: Side, *, concurrency: int, retry: RetryPolicy, done: Done
    ) -> None:
        if not isinstance(source.wire, WireClient) or not isinstance(target.wire, WireClient):
            raise ValueError("both sides need the lean client")
        self._source, self._target = source, target
        self._src, self._dst = AsyncObjects(source.wire), AsyncObjects(target.wire)
        self._concurrency = concurrency
        self._retry = retry
        self._done = done
        self._loop = _new_loop()
        self._keys: deque[str] = deque()  # appended by the submitting thread, popped on the loop
        self._wake = asyncio.Event()
        self._sleeping = False
        self._closing = False
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dc-small", daemon=True)

    @staticmethod
    def usable(source: Side, target: Side, bandwidth_limited: bool) -> bool:
        """The loop cannot wait on the (blocking) bandwidth limit, and needs the lean client both sides."""
        return (
            not bandwidth_limited
            and isinstance(source.wire, WireClient)
            and isinstance(target.wire, WireClient)
        )

    def __enter__(self) -> SmallCopier:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(self, key: str) -> None:
        """Queue a key; the loop is woken only if its workers sleep (a wake-up costs a system call)."""
        self._keys.append(key)
        if self._sleeping:
            self._sleeping = False
            self._loop.call_soon_threadsafe(self._wake.set)

    def close(self) -> None:
        """Finish what was submitted, then stop the loop and close its connections."""
        if self._thread.is_alive():
            self._closing = True
            self._loop.call_soon_threadsafe(self._wake.set)
            self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._ready.set()
        await asyncio.gather(*(self._worker() for _ in range(self._concurrency)))

    async def _next_key(self) -> str | None:
        """The next key to copy, waiting for one; None once closing and nothing is left."""
        while True:
            if self._keys:
                return self._keys.popleft()
            if self._closing:
                return None
            # Say we sleep before looking once more, so a key appended meanwhile is never missed.
            self._sleeping = True
            if self._keys or self._closing:
                self._sleeping = False
                continue
            self._wake.clear()
            await self._wake.wait()

    async def _worker(self) -> None:
        src, dst = self._src.connection(), self._dst.connection()
        try:
            while (key := await self._next_key()) is not None:
                try:
                    outcome: Copied | BaseException = await self._copy(src, dst, key)
                except Exception as exc:  # handed to the caller, who tallies it
                    outcome = exc
                try:
                    self._done(key, outcome)
                except Exception:
                    log.exception("%s: recording the copy failed", key)
        finally:
            src.close()
            dst.close()

    async def _copy(self, src: AsyncConnection, dst: AsyncConnection, key: str) -> Copied:
        """GET then PUT under the retry policy: transient failures wait and try again."""
        attempt = 1
        while True:
            try:
                return await self._attempt(src, dst, key)
            except Exception as exc:
                if attempt >= self._retry.attempts or not is_transient(exc):
                    raise
                ceiling = min(self._retry.maximum, self._retry.initial * 2**attempt)
                await asyncio.sleep(random.uniform(0, ceiling))
                attempt += 1

    async def _attempt(self, src: AsyncConnection, dst: AsyncConnection, key: str) -> Copied:
        source, target = self._source, self._target
        try:
            got, data = await self._src.get_object(src, source.bucket, source.key(key))
        except Exception as exc:
            if is_missing_key(exc):
                raise SourceVanished(key) from None
            raise _permanent(exc, "GetObject", source.where) from None
        if len(data) > SMALL_MAX:
            raise TooLarge(key)
        arguments, expected = whole_put(got, data)
        try:
            put: dict[str, Any] = await self._dst.put_object(
                dst, target.bucket, target.key(key), data, **arguments
            )
        except Exception as exc:
            raise _permanent(exc, "PutObject", target.where) from None
        arrived = strip_etag(put.get("ETag"))
        try:
            check_arrival(key, arrived, expected)
        except AlteredInTransit:
            # Rare: removed (off the loop, with the blocking client) so no pass takes it for good.
            remove = partial(self._target.objects.delete_object, Bucket=target.bucket, Key=target.key(key))
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, remove)
            raise
        return Copied(len(data), strip_etag(got.get("ETag")), arrived, expected)


def _permanent(exc: Exception, operation: str, where: str) -> Exception:
    """The failure as `PermanentS3Error` when no retry can help, as it is otherwise."""
    return as_permanent(exc, operation, where) or exc


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (its I/O path costs less CPU per request: the client
    used 8% less CPU in `bench/sync_bench.py --phases small`), the standard one otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
